"""Composition root of the identity service."""

from __future__ import annotations

from typing import Any

from bsante.chassis.auth import JwksSource
from bsante.chassis.service import Service
from bsante.identity import keys
from bsante.identity.http import router
from bsante.identity.seed import seed_demo
from bsante.identity.settings import IdentitySettings


def build(settings: IdentitySettings | None = None, *, standalone: bool = False) -> Service:
    settings = settings or IdentitySettings()
    state: dict[str, Any] = {"settings": settings, "signing_keys": []}

    async def local_jwks() -> dict[str, Any]:
        return {"keys": [k.public_jwk() for k in svc.app.state.signing_keys]}

    async def load_keys(service: Service) -> None:
        service.app.state.signing_keys = await keys.load_or_create(service.store)
        if settings.seed_demo:
            await seed_demo(service.store)

    jwks: JwksSource = local_jwks
    svc = Service(
        settings,
        title="Bureautique Santé — identity",
        routers=[router],
        jwks=jwks,
        on_start=[load_keys],
        standalone=standalone,
        state=state,
    )
    return svc
