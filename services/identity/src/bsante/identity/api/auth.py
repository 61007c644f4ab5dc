"""Login (password, CPS card), refresh, logout, JWKS and the caller's own account."""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Response
from pydantic import BaseModel, Field

from bsante.chassis.api import ServiceDep
from bsante.chassis.auth import CurrentPrincipal
from bsante.chassis.errors import Forbidden, TooManyRequests, Unauthorized
from bsante.chassis.openapi import problems
from bsante.chassis.store import ConcurrencyConflict, DuplicateDocument, Query
from bsante.contracts.events import UserLockedOut
from bsante.identity import cps_login, sessions
from bsante.identity.api.deps import CpsVerifierDep, KeyRingDep, SettingsDep
from bsante.identity.domain import (
    LockoutPolicy,
    LoginThrottle,
    User,
    check_password_rules,
    hash_password,
    normalise_username,
    throttle_key,
    verify_password,
)

router = APIRouter(tags=["auth"])

THROTTLES = "login_throttles"
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


def _response(pair: sessions.TokenPair) -> TokenResponse:
    return TokenResponse(
        access_token=pair.access_token,
        expires_in=pair.expires_in,
        refresh_token=pair.refresh_token,
        refresh_expires_in=pair.refresh_expires_in,
        acting_structure=pair.acting_structure,
    )


class TooManyAttempts(TooManyRequests):
    kind = "too-many-attempts"


@router.post("/auth/token", response_model=TokenResponse, responses=problems(401, 429))
async def login(
    body: PasswordLogin, svc: ServiceDep, settings: SettingsDep, keys: KeyRingDep
) -> Any:
    """Password login. Repeated failures lock the user name for a growing time (429).

    Unknown user names are throttled exactly like existing ones, so the answer never tells
    whether an account exists.
    """
    store = svc.store
    username = normalise_username(body.username)
    policy = LockoutPolicy(
        settings.lockout_threshold, settings.lockout_base_seconds, settings.lockout_max_seconds
    )
    key = throttle_key(username)
    now = datetime.now(UTC)
    throttle_doc = await store.get(THROTTLES, key)
    throttle = LoginThrottle.from_json(throttle_doc.data) if throttle_doc else LoginThrottle()
    remaining = throttle.locked(now)
    if remaining is not None:
        seconds = max(1, int(remaining.total_seconds()) + 1)
        raise TooManyAttempts(
            f"Too many failed attempts; try again in {seconds} seconds",
            retry_after=seconds,
            errors=[{"field": "username", "message": f"locked for {seconds} s"}],
        )
    found = await store.find("users", Query(where={"username": username}, limit=1))
    user = User.from_json(found[0].data) if found else None
    ok = verify_password(user.password_hash if user else None, body.password)
    if not ok or user is None or not user.active:
        locked = throttle.failed(now, policy)
        try:
            async with svc.messaging.unit_of_work() as uow:
                if throttle_doc is None:
                    await uow.tx.insert(THROTTLES, key, throttle.to_json())
                else:
                    await uow.tx.update(THROTTLES, key, throttle.to_json(), throttle_doc.version)
                if locked and user is not None and user.structures:
                    await uow.emit(
                        UserLockedOut(
                            user_id=user.id, failures=throttle.failures, locked_seconds=locked
                        ),
                        structure_id=user.structures[0],
                        subject_id=user.id,
                    )
        except (ConcurrencyConflict, DuplicateDocument):
            pass  # a concurrent failure was recorded; one of the two is enough
        raise Unauthorized("Unknown user or wrong password")
    if throttle_doc is not None and throttle.failures:
        try:
            async with store.transaction() as tx:
                await tx.update(THROTTLES, key, LoginThrottle().to_json(), throttle_doc.version)
        except ConcurrencyConflict:
            pass
    pair = await sessions.open_session(
        svc.messaging, keys, settings, user, method="password", acting_structure=body.structure_id
    )
    return _response(pair)


class RefreshRequest(BaseModel):
    refresh_token: str = Field(min_length=1, max_length=200)


@router.post("/auth/refresh", response_model=TokenResponse, responses=problems(401))
async def refresh(
    body: RefreshRequest, svc: ServiceDep, settings: SettingsDep, keys: KeyRingDep
) -> Any:
    """Exchange a refresh token (once) for a new access token and a new refresh token."""
    return _response(
        await sessions.refresh_session(svc.messaging, keys, settings, body.refresh_token)
    )


@router.post("/auth/logout", status_code=204)
async def logout(body: RefreshRequest, svc: ServiceDep) -> Response:
    """End the session: its refresh tokens stop working. The access token expires on its own."""
    await sessions.logout(svc.store, body.refresh_token)
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


@router.post("/auth/cps/token", response_model=TokenResponse, responses=problems(401, 503))
async def cps_token(
    body: CpsLogin,
    svc: ServiceDep,
    settings: SettingsDep,
    keys: KeyRingDep,
    verifier: CpsVerifierDep,
) -> Any:
    """CPS card login: nonce, certificate chain and CRL, signature, then the account by PSIdNat."""
    holder = await cps_login.verify_card_login(
        svc.store,
        verifier,
        nonce=body.nonce,
        certificate=body.certificate,
        signature=body.signature,
        intermediates=body.intermediates,
    )
    found = await svc.store.find(
        "users", Query(where={"ps_id_nat": holder.ps_id_nat.value, "active": True}, limit=1)
    )
    if not found:
        raise cps_login.CpsLoginRefused("No active account for this card's professional")
    user = User.from_json(found[0].data)
    pair = await sessions.open_session(
        svc.messaging, keys, settings, user, method="cps", acting_structure=body.structure_id
    )
    return _response(pair)


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


@router.put("/me/password", status_code=204)
async def change_password(
    body: PasswordChange, principal: CurrentPrincipal, svc: ServiceDep
) -> Response:
    doc = await svc.store.get("users", principal.user_id)
    if doc is None:
        raise Unauthorized("Unknown account")
    user = User.from_json(doc.data)
    if not verify_password(user.password_hash, body.current_password):
        # Not 401: a client reads 401 as "session expired" and would log the user out.
        raise Forbidden(
            "Wrong current password",
            errors=[{"field": "current_password", "message": "does not match"}],
        )
    check_password_rules(body.new_password, username=user.username)
    user.password_hash = hash_password(body.new_password)
    async with svc.store.transaction() as tx:
        await tx.update("users", user.id, user.to_json(), doc.version)
    return Response(status_code=204)
