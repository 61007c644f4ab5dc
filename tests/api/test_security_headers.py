"""Security headers on every answer of the platform: nosniff, no referrer, a CSP refusing
framing, and HSTS exactly when the request came over TLS (itself, or a trusted proxy saying so).
Routes are discovered from the OpenAPI document, so a new route is covered too."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import pytest_asyncio
from asgi_lifespan import LifespanManager
from kit import Platform

from bsante.gateway.app import build_embedded
from bsante.gateway.settings import GatewaySettings
from bsante.platform.embedded import build_services, demo_gateway_settings

pytestmark = pytest.mark.asyncio(loop_scope="module")


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def platform(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Platform]:
    """The demo platform: it trusts the loopback proxy (X-Forwarded-*), the client is local."""
    data: Path = tmp_path_factory.mktemp("security")
    services = build_services(data)
    app = build_embedded(demo_gateway_settings(), services)
    async with LifespanManager(app, startup_timeout=120, shutdown_timeout=60) as manager:
        transport = httpx.ASGITransport(app=manager.app, client=("127.0.0.1", 50000))
        async with httpx.AsyncClient(transport=transport, base_url="http://platform") as client:
            yield Platform(client, services, data)


def assert_protected(response: httpx.Response) -> None:
    where = f"{response.request.method} {response.request.url.path} ({response.status_code})"
    assert response.headers.get("x-content-type-options") == "nosniff", where
    assert response.headers.get("referrer-policy") == "no-referrer", where
    csp = response.headers.get("content-security-policy", "")
    assert "frame-ancestors 'none'" in csp, where
    # Never twice (the embedded gateway's pass-through and the mounted service both add them).
    assert len(response.headers.get_list("content-security-policy")) == 1, where
    assert len(response.headers.get_list("x-content-type-options")) == 1, where


async def test_every_route_answers_with_the_security_headers(platform: Platform) -> None:
    document = (await platform.client.get("/openapi.json")).json()
    assert_protected(await platform.client.get("/openapi.json"))
    seen = 0
    for path, operations in document["paths"].items():
        if "get" not in operations or "{" in path:
            continue
        # Without a token: the 401 problems, the public pages and the health checks.
        assert_protected(await platform.client.get(path))
        seen += 1
    assert seen > 20
    for extra in ("/docs", "/api/patient/redoc", "/metrics", "/nowhere", "/api/patient/nowhere"):
        assert_protected(await platform.client.get(extra))
    # A refusal the gateway's pass-through writes itself, before any service runs.
    too_big = await platform.client.post(
        "/api/patient/patients",
        content=b"x" * (2 * 1024 * 1024),
        headers={"content-type": "application/json"},
    )
    assert too_big.status_code == 413
    assert_protected(too_big)


async def test_json_answers_allow_nothing_and_pages_keep_their_scripts(platform: Platform) -> None:
    data = await platform.client.get("/health/live")
    assert data.headers["content-security-policy"].startswith("default-src 'none'")
    page = await platform.client.get("/api/sla-monitor/pages/status")
    assert page.headers["content-type"].startswith("text/html")
    # The dashboards and the docs run inline scripts: no script-src that would stop them.
    assert "script-src" not in page.headers["content-security-policy"]
    assert "default-src" not in page.headers["content-security-policy"]


async def test_hsts_only_over_tls(platform: Platform) -> None:
    plain = await platform.client.get("/health/live")
    assert "strict-transport-security" not in plain.headers
    forwarded = await platform.client.get("/health/live", headers={"X-Forwarded-Proto": "https"})
    assert forwarded.headers["strict-transport-security"].startswith("max-age=31536000")
    mounted = await platform.client.get(
        "/api/identity/.well-known/jwks.json", headers={"X-Forwarded-Proto": "https"}
    )
    assert len(mounted.headers.get_list("strict-transport-security")) == 1
    transport = platform.client._transport  # the same app, reached over https
    async with httpx.AsyncClient(transport=transport, base_url="https://platform") as tls:
        direct = await tls.get("/api/patient/health/live")
    assert "strict-transport-security" in direct.headers


async def test_an_untrusted_peer_cannot_claim_tls(tmp_path: Path) -> None:
    services = build_services(tmp_path)
    app = build_embedded(GatewaySettings(), services)  # trusts no proxy
    async with LifespanManager(app, startup_timeout=120, shutdown_timeout=60) as manager:
        transport = httpx.ASGITransport(app=manager.app, client=("203.0.113.7", 50000))
        async with httpx.AsyncClient(transport=transport, base_url="http://platform") as client:
            for path in ("/health/live", "/api/identity/.well-known/jwks.json"):
                answer = await client.get(path, headers={"X-Forwarded-Proto": "https"})
                assert "strict-transport-security" not in answer.headers, path
                assert_protected(answer)
