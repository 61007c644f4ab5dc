"""Composition root of the identity service."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from bsante.chassis.auth import JwksSource
from bsante.chassis.embedded import EmbeddedContext
from bsante.chassis.service import Service
from bsante.identity import keys
from bsante.identity.audit import events
from bsante.identity.cps_login import load_trust
from bsante.identity.http import routers
from bsante.identity.seed import seed_demo
from bsante.identity.settings import IdentitySettings


def build(
    settings: IdentitySettings | None = None, *, standalone: bool = False
) -> Service[IdentitySettings]:
    settings = settings or IdentitySettings()
    signing_keys: list[keys.SigningKey] = []
    token_ttl = timedelta(seconds=settings.access_token_ttl_seconds)
    state: dict[str, Any] = {
        # One list shared by the key ring, the JWKS route and in-process verifiers.
        "signing_keys": signing_keys,
        "cps_verifier": load_trust(settings),
    }

    async def local_jwks() -> dict[str, Any]:
        return {"keys": [k.public_jwk() for k in await svc.app.state.keyring.current()]}

    async def start(service: Service[IdentitySettings]) -> None:
        ring = keys.KeyRing(service.store, signing_keys, token_ttl, settings.key_cache_seconds)
        service.app.state.keyring = ring
        await ring.reload()
        if settings.seed_demo:
            await seed_demo(service.store)

    jwks: JwksSource = local_jwks
    svc = Service(
        settings,
        title="Bureautique Santé — identity",
        routers=routers,
        events=events,
        jwks=jwks,
        on_start=[start],
        standalone=standalone,
        state=state,
    )
    return svc


def build_embedded(context: EmbeddedContext) -> Service[IdentitySettings]:
    """In the embedded platform: the other services read the signing keys in-process."""
    svc = build(IdentitySettings(store_url=context.store_url("identity"), bus_url=context.bus_url))
    signing_keys: list[keys.SigningKey] = svc.app.state.signing_keys

    async def jwks() -> dict[str, Any]:
        return {"keys": [k.public_jwk() for k in signing_keys]}

    context.provide_jwks(jwks)
    return svc
