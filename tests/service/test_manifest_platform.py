"""The embedded platform is built from the service manifest, and the services agree with it."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from asgi_lifespan import LifespanManager

from bsante.contracts.manifest import ManifestError, load, parse
from bsante.gateway.app import build_embedded
from bsante.gateway.settings import GatewaySettings
from bsante.platform.embedded import build_services

MANIFEST = load()


def test_each_service_is_what_its_manifest_entry_says(tmp_path: Path) -> None:
    services = build_services(tmp_path)
    assert list(services) == [e.name for e in MANIFEST.of_kind("service")]
    for entry in MANIFEST.of_kind("service"):
        svc = services[entry.name]
        assert svc.settings.port == entry.port, f"{entry.name}: default port"
        assert svc.settings.model_config.get("env_prefix") == entry.env_prefix
        consumed = svc.events.topics if svc.events else []
        assert sorted(consumed) == sorted(entry.consumes), f"{entry.name}: consumed topics"


def test_the_gateway_routes_to_every_service_by_default() -> None:
    settings = GatewaySettings()
    assert settings.services == {
        e.name: f"http://{e.name}:8080" for e in MANIFEST.of_kind("service")
    }
    assert settings.port == MANIFEST.get("gateway").port


def test_a_manifest_entry_naming_a_missing_module_stops_the_build(tmp_path: Path) -> None:
    ghost = '[services.ghost]\nkind = "service"\nmodule = "bsante.ghost"\n'
    ghost += 'folder = "services/ghost"\nport = 8099\n'
    text = (Path(__file__).parents[2] / "contracts/src/bsante/contracts/services.toml").read_text()
    with pytest.raises(ManifestError, match="'ghost' names module 'bsante.ghost.app'"):
        build_services(tmp_path, parse(text + ghost))


@pytest.fixture
def extra_service(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A new service folder: one package whose app exports build_embedded."""
    package = tmp_path / "src" / "bsante" / "extra"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text('"""A service added by a test."""\n')
    (package / "app.py").write_text(
        '"""Composition root of the extra service."""\n'
        "from fastapi import APIRouter\n"
        "from bsante.chassis.service import Service\n"
        "from bsante.chassis.settings import ServiceSettings\n"
        "router = APIRouter()\n"
        "@router.get('/hello')\n"
        "async def hello() -> dict[str, str]:\n"
        "    return {'hello': 'world'}\n"
        "def build_embedded(context):\n"
        "    settings = ServiceSettings(service_name='extra', store_url=context.store_url('extra'),"
        " bus_url=context.bus_url)\n"
        "    return Service(settings, routers=[router], jwks=context.jwks)\n"
    )
    # The namespace package `bsante` picks up the new folder, as an editable install would.
    monkeypatch.syspath_prepend(str(tmp_path / "src"))
    try:
        yield (
            '[services.extra]\nkind = "service"\nmodule = "bsante.extra"\n'
            'folder = "services/extra"\nport = 8099\n'
        )
    finally:
        for name in [m for m in sys.modules if m.startswith("bsante.extra")]:
            del sys.modules[name]


async def test_adding_a_service_is_its_folder_and_one_manifest_entry(
    tmp_path: Path, extra_service: str
) -> None:
    text = (Path(__file__).parents[2] / "contracts/src/bsante/contracts/services.toml").read_text()
    services = build_services(tmp_path / "data", parse(text + extra_service))
    app = build_embedded(GatewaySettings(), services)
    async with LifespanManager(app, startup_timeout=120, shutdown_timeout=60) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://platform") as client:
            assert (await client.get("/api/extra/hello")).json() == {"hello": "world"}
            ready = await client.get("/health/ready")
            assert ready.status_code == 200 and ready.json()["checks"]["extra"] is True
            assert "/api/extra/hello" in (await client.get("/openapi.json")).json()["paths"]
