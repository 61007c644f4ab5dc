"""Dependency aliases shared by identity's routers: the ports its use cases take."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Query, Request
from pydantic import BaseModel

from bsante.chassis import context
from bsante.chassis.api import ServiceDep
from bsante.chassis.service import service_settings
from bsante.identity.accounts import Accounts
from bsante.identity.cps import CpsLoginVerifier
from bsante.identity.domain import AddressLimit, LockoutPolicy
from bsante.identity.handlers import throttle
from bsante.identity.handlers.sessions import SessionPolicy, SessionPorts
from bsante.identity.keys import KeyRing
from bsante.identity.ports import Clock, PasswordHasher, UnitOfWorkFactory
from bsante.identity.psc import PscClient
from bsante.identity.settings import IdentitySettings

settings = service_settings(IdentitySettings)


async def keyring(request: Request) -> KeyRing:
    ring: KeyRing = request.app.state.keyring
    return ring


async def cps_verifier(request: Request) -> CpsLoginVerifier | None:
    verifier: CpsLoginVerifier | None = request.app.state.cps_verifier
    return verifier


async def psc_client(request: Request) -> PscClient | None:
    client: PscClient | None = request.app.state.psc_client
    return client


async def clock(request: Request) -> Clock:
    value: Clock = request.app.state.clock
    return value


async def hasher(request: Request) -> PasswordHasher:
    value: PasswordHasher = request.app.state.hasher
    return value


async def unit_of_work(svc: ServiceDep) -> UnitOfWorkFactory:
    return svc.messaging.unit_of_work


async def accounts(svc: ServiceDep) -> Accounts:
    return Accounts(svc.store)


async def lockout(request: Request) -> LockoutPolicy:
    s = await settings(request)
    return LockoutPolicy(s.lockout_threshold, s.lockout_base_seconds, s.lockout_max_seconds)


async def address_rate_limit(request: Request, svc: ServiceDep) -> None:
    """Route dependency of the token endpoints: count the request against the client address
    (the audited one: X-Forwarded-For believed from trusted proxies only), 429 when over."""
    s = await settings(request)
    await throttle.count_address_request(
        svc.messaging.unit_of_work,
        context.client_address.get() or "unknown",
        (await clock(request))(),
        AddressLimit(s.address_limit_requests, s.address_limit_window_seconds),
    )


async def session_ports(request: Request, svc: ServiceDep) -> SessionPorts:
    s = await settings(request)
    return SessionPorts(
        uow=svc.messaging.unit_of_work,
        keyring=await keyring(request),
        policy=SessionPolicy(
            issuer=s.token_issuer,
            audience=s.token_audience,
            access_ttl_seconds=s.access_token_ttl_seconds,
            refresh_ttl_seconds=s.refresh_token_ttl_seconds,
            refresh_grace_seconds=s.refresh_grace_seconds,
        ),
        clock=await clock(request),
    )


SettingsDep = Annotated[IdentitySettings, Depends(settings)]
KeyRingDep = Annotated[KeyRing, Depends(keyring)]
CpsVerifierDep = Annotated[CpsLoginVerifier | None, Depends(cps_verifier)]
PscClientDep = Annotated[PscClient | None, Depends(psc_client)]
ClockDep = Annotated[Clock, Depends(clock)]
HasherDep = Annotated[PasswordHasher, Depends(hasher)]
UnitOfWorkDep = Annotated[UnitOfWorkFactory, Depends(unit_of_work)]
AccountsDep = Annotated[Accounts, Depends(accounts)]
LockoutDep = Annotated[LockoutPolicy, Depends(lockout)]
SessionPortsDep = Annotated[SessionPorts, Depends(session_ports)]
# On every route that issues tokens.
RATE_LIMITED = [Depends(address_rate_limit)]
Limit = Annotated[int, Query(ge=1, le=200, description="Page size")]
Offset = Annotated[int, Query(ge=0, le=1_000_000, description="Items to skip")]


class PageInfo(BaseModel):
    total: int
    limit: int
    offset: int
