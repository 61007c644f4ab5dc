"""Login (password, CPS card), refresh, logout, JWKS and the caller's own account.

Pro Santé Connect login is `api/psc.py`; it answers with the same `TokenResponse`.
"""

from __future__ import annotations

import base64
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Response
from pydantic import BaseModel, Field

from bsante.chassis.api import ServiceDep
from bsante.chassis.auth import CurrentPrincipal
from bsante.chassis.openapi import problems
from bsante.identity import cps_login
from bsante.identity.api.deps import (
    RATE_LIMITED,
    AccountsDep,
    ClockDep,
    CpsVerifierDep,
    HasherDep,
    KeyRingDep,
    LockoutDep,
    SessionPortsDep,
    SettingsDep,
    UnitOfWorkDep,
)
from bsante.identity.handlers import accounts as account_handlers
from bsante.identity.handlers import login as login_handlers
from bsante.identity.handlers import sessions

router = APIRouter(tags=["auth"])

StructureId = Annotated[
    str | None,
    Field(
        max_length=100,
        description="Structure the session acts for by default (else the account's first)",
    ),
]


class PasswordLogin(BaseModel):
    username: str = Field(min_length=1, max_length=200)
    password: str = Field(min_length=1, max_length=200)
    structure_id: StructureId = None


class TokenResponse(BaseModel):
    access_token: str
    token_type: str = "Bearer"
    expires_in: int
    refresh_token: str
    refresh_expires_in: int
    acting_structure: str


def token_response(pair: sessions.TokenPair) -> TokenResponse:
    return TokenResponse(
        access_token=pair.access_token,
        expires_in=pair.expires_in,
        refresh_token=pair.refresh_token,
        refresh_expires_in=pair.refresh_expires_in,
        acting_structure=pair.acting_structure,
    )


@router.post(
    "/auth/token",
    response_model=TokenResponse,
    responses=problems(401, 429),
    dependencies=RATE_LIMITED,
)
async def login(
    body: PasswordLogin,
    ports: SessionPortsDep,
    accounts: AccountsDep,
    hasher: HasherDep,
    lockout: LockoutDep,
) -> Any:
    """Password login. Repeated failures lock the user name for a growing time (429); every
    token route also limits the requests of one client address (429).

    Unknown user names are throttled exactly like existing ones, so the answer never tells
    whether an account exists.
    """
    pair = await login_handlers.password_login(
        login_handlers.PasswordLogin(body.username, body.password, body.structure_id),
        sessions=ports,
        accounts=accounts,
        hasher=hasher,
        lockout=lockout,
    )
    return token_response(pair)


class RefreshRequest(BaseModel):
    refresh_token: str = Field(min_length=1, max_length=200)


@router.post(
    "/auth/refresh",
    response_model=TokenResponse,
    responses=problems(401, 429),
    dependencies=RATE_LIMITED,
)
async def refresh(body: RefreshRequest, ports: SessionPortsDep) -> Any:
    """Exchange a refresh token for a new access token and a new refresh token.

    Within a short grace window (IDENTITY_REFRESH_GRACE_SECONDS) the same token returns the
    same new pair again; after it, a reuse revokes the session.
    """
    return token_response(await sessions.refresh_session(ports, body.refresh_token))


@router.post("/auth/logout", status_code=204)
async def logout(body: RefreshRequest, uow: UnitOfWorkDep) -> Response:
    """End the session: its refresh tokens stop working. The access token expires on its own."""
    await sessions.logout(uow, body.refresh_token)
    return Response(status_code=204)


class CpsChallengeOut(BaseModel):
    nonce: str
    message: str = Field(description="Base64 of the exact bytes the card signs")
    expires_at: datetime


@router.post("/auth/cps/challenge", response_model=CpsChallengeOut, responses=problems(503))
async def cps_challenge(
    svc: ServiceDep, settings: SettingsDep, verifier: CpsVerifierDep
) -> CpsChallengeOut:
    """A single-use nonce for the card to sign (RSA PKCS#1 v1.5/SHA-256 or ECDSA P-256)."""
    if verifier is None:
        raise cps_login.CpsNotConfigured("CPS login is not configured (no trust store)")
    challenge = await cps_login.issue_challenge(svc.store, settings.cps_nonce_ttl_seconds)
    return CpsChallengeOut(
        nonce=challenge.nonce,
        message=base64.b64encode(challenge.message).decode(),
        expires_at=challenge.expires_at,
    )


class CpsLogin(BaseModel):
    nonce: str = Field(min_length=1, max_length=100)
    certificate: str = Field(
        min_length=1,
        max_length=20_000,
        description="Card authentication certificate, PEM or base64 DER",
    )
    signature: str = Field(min_length=1, max_length=2_000, description="Base64 signature")
    intermediates: list[str] = Field(default_factory=list, max_length=5)
    structure_id: StructureId = None


@router.post(
    "/auth/cps/token",
    response_model=TokenResponse,
    responses=problems(401, 429, 503),
    dependencies=RATE_LIMITED,
)
async def cps_token(
    body: CpsLogin,
    svc: ServiceDep,
    ports: SessionPortsDep,
    accounts: AccountsDep,
    verifier: CpsVerifierDep,
) -> Any:
    """CPS card login: nonce, certificate chain and CRL, signature, then the account by PSIdNat."""
    pair = await login_handlers.card_login(
        login_handlers.CardLogin(
            body.nonce, body.certificate, body.signature, body.intermediates, body.structure_id
        ),
        sessions=ports,
        accounts=accounts,
        challenges=svc.store,
        verifier=verifier,
    )
    return token_response(pair)


@router.get("/.well-known/jwks.json")
async def jwks(keys: KeyRingDep) -> dict[str, Any]:
    """Public keys: the signing key first, then retired keys whose tokens may still be valid."""
    return {"keys": [key.public_jwk() for key in await keys.current()]}


class Me(BaseModel):
    user_id: str
    acting_structure: str
    structures: list[str]
    roles: list[str]
    profession: str | None = None
    ps_id_nat: str | None = None


@router.get("/me", response_model=Me)
async def me(principal: CurrentPrincipal) -> Me:
    return Me(
        user_id=principal.user_id,
        acting_structure=principal.acting_structure,
        structures=list(principal.structures),
        roles=list(principal.roles),
        profession=principal.profession,
        ps_id_nat=principal.claims.get("ps_id_nat"),
    )


class PasswordChange(BaseModel):
    current_password: str = Field(min_length=1, max_length=200)
    new_password: str = Field(min_length=1, max_length=200)


@router.put("/me/password", status_code=204, responses=problems(429))
async def change_password(
    body: PasswordChange,
    principal: CurrentPrincipal,
    uow: UnitOfWorkDep,
    accounts: AccountsDep,
    hasher: HasherDep,
    clock: ClockDep,
    lockout: LockoutDep,
) -> Response:
    """Change the caller's password. A wrong current password is 403 (the session is valid)."""
    await account_handlers.change_password(
        account_handlers.ChangePassword(
            principal.user_id, body.current_password, body.new_password
        ),
        uow=uow,
        accounts=accounts,
        hasher=hasher,
        clock=clock,
        lockout=lockout,
    )
    return Response(status_code=204)
