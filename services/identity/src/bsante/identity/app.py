"""Composition root of the identity service."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any

from bsante.chassis.auth import JwksSource
from bsante.chassis.embedded import EmbeddedContext
from bsante.chassis.service import Service
from bsante.identity import accounts, audit, keys, service_clients
from bsante.identity.accounts import backfill_claims
from bsante.identity.audit import events
from bsante.identity.cps_login import load_trust
from bsante.identity.directory import repository as directory
from bsante.identity.http import routers
from bsante.identity.ports import Clock, PasswordHasher, system_clock
from bsante.identity.psc import PscClient, PscClientConfig
from bsante.identity.seed import seed_demo
from bsante.identity.service_clients import ServiceClientSpec, hash_secret
from bsante.identity.settings import IdentitySettings

INDEXES = [*accounts.INDEXES, *audit.INDEXES, *directory.INDEXES]


def build(
    settings: IdentitySettings | None = None,
    *,
    standalone: bool = False,
    clock: Clock = system_clock,
    extra_service_clients: Callable[[], Mapping[str, ServiceClientSpec]] | None = None,
) -> Service[IdentitySettings]:
    """The identity service. `clock` is what sessions and lockouts read the time from; tests
    replace `app.state.clock` to move it. `extra_service_clients` adds service clients known
    only at start (the embedded platform draws their secrets)."""
    settings = settings or IdentitySettings()
    signing_keys: list[keys.SigningKey] = []
    token_ttl = timedelta(seconds=settings.access_token_ttl_seconds)
    state: dict[str, Any] = {
        # One list shared by the key ring, the JWKS route and in-process verifiers.
        "signing_keys": signing_keys,
        "cps_verifier": load_trust(settings),
        "clock": clock,
        "hasher": PasswordHasher(),
        "psc_client": None,
    }
    psc_config = PscClientConfig.from_settings(settings)

    async def local_jwks() -> dict[str, Any]:
        return {"keys": [k.public_jwk() for k in await svc.app.state.keyring.current()]}

    async def start(service: Service[IdentitySettings]) -> None:
        if psc_config is not None:
            # Created on the running loop; discovery happens at the first login, so a provider
            # that is down at start delays nothing and only PSC logins answer 503.
            service.app.state.psc_client = PscClient(psc_config)
        directory = Path(settings.signing_keys_dir) if settings.signing_keys_dir else None
        ring = keys.KeyRing(
            service.store, signing_keys, token_ttl, settings.key_cache_seconds, directory
        )
        service.app.state.keyring = ring
        await ring.reload()
        await backfill_claims(service.store)
        if extra_service_clients is not None:
            # Known from now on as configured clients (the token and admin routes read them).
            settings.service_clients.update(extra_service_clients())
        await service_clients.sync_from_settings(
            service.store,
            settings.service_clients,
            timedelta(seconds=settings.service_secret_overlap_seconds),
        )
        if settings.seed_demo:
            await seed_demo(service.store)

    async def stop(service: Service[IdentitySettings]) -> None:
        client: PscClient | None = service.app.state.psc_client
        if client is not None:
            await client.aclose()

    jwks: JwksSource = local_jwks
    svc = Service(
        settings,
        title="Bureautique Santé — identity",
        routers=routers,
        events=events,
        jwks=jwks,
        indexes=INDEXES,
        on_start=[start],
        on_stop=[stop],
        standalone=standalone,
        state=state,
    )
    return svc


def build_embedded(context: EmbeddedContext) -> Service[IdentitySettings]:
    """In the embedded platform: the other services read the signing keys in-process, and
    their service clients' secrets are drawn at each start (kept in memory only)."""

    def clients() -> dict[str, ServiceClientSpec]:
        return {
            name: ServiceClientSpec(scopes=list(scopes), secret_hash=hash_secret(secret))
            for name, (secret, scopes) in context.service_clients.items()
        }

    svc = build(
        IdentitySettings(
            store_url=context.store_url("identity"), bus_url=context.bus_url, seed_demo=True
        ),
        extra_service_clients=clients,
    )
    signing_keys: list[keys.SigningKey] = svc.app.state.signing_keys

    async def jwks() -> dict[str, Any]:
        return {"keys": [k.public_jwk() for k in signing_keys]}

    context.provide_jwks(jwks)
    return svc
