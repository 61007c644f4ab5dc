"""Helpers for cross-service tests: the embedded platform in-process."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
from asgi_lifespan import LifespanManager
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute

from bsante.chassis.service import Service
from bsante.gateway.app import build_embedded
from bsante.gateway.settings import GatewaySettings
from bsante.platform.embedded import build_services

T = TypeVar("T")

TILLEULS = ("admin@tilleuls.demo", "Tilleuls-Demo-2026")
VAL = ("admin@val.demo", "ValDuSoin-Demo-2026")
# A professional: administrators do not read clinical content (habilitation matrix).
MEDECIN = ("medecin@tilleuls.demo", "Medecin-Tilleuls-2026")
PATIENT = {
    "birth_name": "DUPONT",
    "birth_given_names": "Marie",
    "sex": "F",
    "birth_date": "1941-03-02",
}


@dataclass
class Platform:
    client: httpx.AsyncClient
    services: dict[str, Service]
    data: Path

    async def login(self, credentials: tuple[str, str] = TILLEULS) -> dict[str, str]:
        response = await self.client.post(
            "/api/identity/auth/token",
            json={"username": credentials[0], "password": credentials[1]},
        )
        assert response.status_code == 200, response.text
        return {"Authorization": f"Bearer {response.json()['access_token']}"}

    def as_role(
        self, role: str, structure: str = "demo-ehpad", user: str | None = None
    ) -> dict[str, str]:
        """Headers of a user holding only `role` in `structure` (a token signed by identity)."""
        from bsante.chassis.auth import issue_token

        token = issue_token(
            self.services["identity"].app.state.signing_keys[0],
            subject=user or f"{role}-{structure}",
            structures=[structure],
            roles={structure: [role]},
            profession=None,
            issuer="bsante-identity",
            audience="bsante",
            ttl_seconds=900,
        )
        return {"Authorization": f"Bearer {token}", "X-Structure-Id": structure}

    async def create_patient(self, headers: dict[str, str], **traits: Any) -> httpx.Response:
        return await self.client.post(
            "/api/patient/patients", json={**PATIENT, **traits}, headers=headers
        )


async def eventually(check: Callable[[], Awaitable[bool]], timeout: float = 60.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not await check():
        if loop.time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.05)


def api_routes(routes: list[Any]) -> Iterator[tuple[str, set[str], Dependant]]:
    """(path, methods, dependant) of every API route, through included routers too.

    FastAPI 0.16x mounts included routers lazily (`_IncludedRouter`), whose effective routes
    carry the full path and dependant; older versions list plain `APIRoute`s.
    """
    for route in routes:
        if isinstance(route, APIRoute):
            yield route.path, set(route.methods or ()), route.dependant
        elif hasattr(route, "effective_route_contexts"):
            for context in route.effective_route_contexts():
                if context.dependant is not None:
                    yield context.path, set(context.methods or ()), context.dependant


def marked_routes(
    platform: Platform, attribute: str, kind: type[T]
) -> list[tuple[str, str, str, T]]:
    """(service, method, path, mark) of every route whose dependencies carry `attribute`
    (`allowed(...)` marks its check with `.action`, `service_scope(...)` with `.scope`)."""

    def marks(dependant: Dependant) -> Iterator[T]:
        for sub in dependant.dependencies:
            mark = getattr(sub.call, attribute, None)
            if isinstance(mark, kind):
                yield mark
            yield from marks(sub)

    found = []
    for name, service in platform.services.items():
        for path, methods, dependant in api_routes(list(service.app.routes)):
            for mark in set(marks(dependant)):
                for method in sorted(methods):
                    found.append((name, method, path, mark))
    return found


@pytest.fixture
async def platform(tmp_path: Path) -> AsyncIterator[Platform]:
    services = build_services(tmp_path)
    app = build_embedded(GatewaySettings(max_body_bytes=64 * 1024), services)
    async with LifespanManager(app, startup_timeout=120, shutdown_timeout=60) as manager:
        transport = httpx.ASGITransport(app=manager.app, client=("203.0.113.7", 50000))
        async with httpx.AsyncClient(transport=transport, base_url="http://platform") as client:
            yield Platform(client, services, tmp_path)
