"""Pro Santé Connect login (e-CPS or card through the national provider) and its logout."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi.responses import RedirectResponse
from pydantic import BaseModel, Field

from bsante.chassis.api import ServiceDep
from bsante.chassis.openapi import problems
from bsante.identity import psc_login
from bsante.identity.api.auth import RefreshRequest, TokenResponse, token_response
from bsante.identity.api.deps import (
    RATE_LIMITED,
    AccountsDep,
    ClockDep,
    PscClientDep,
    SessionPortsDep,
    SettingsDep,
    UnitOfWorkDep,
)
from bsante.identity.handlers import sessions

router = APIRouter(tags=["auth"])

Bounded = Annotated[str | None, Query(max_length=2000)]


@router.get(
    "/auth/psc/authorize",
    status_code=302,
    response_class=RedirectResponse,
    responses={
        302: {
            "description": "To Pro Santé Connect's authorization endpoint",
            "headers": {"Location": {"schema": {"type": "string"}}},
        },
        **problems(503),
    },
)
async def psc_authorize(
    svc: ServiceDep,
    settings: SettingsDep,
    client: PscClientDep,
    clock: ClockDep,
    structure_id: Annotated[
        str | None,
        Query(max_length=100, description="Structure the session will act for by default"),
    ] = None,
) -> RedirectResponse:
    """Start a Pro Santé Connect login: the browser is sent to PSC (authorization code flow,
    PKCE, state and nonce kept server-side). PSC sends it back to the redirect URI with a
    code, which `GET /auth/psc/callback` exchanges. 503 when PSC is unreachable."""
    url = await psc_login.begin(
        svc.store,
        client,
        structure_id=structure_id,
        now=clock(),
        ttl_seconds=settings.psc_state_ttl_seconds,
    )
    return RedirectResponse(url, status_code=302)


@router.get(
    "/auth/psc/callback",
    response_model=TokenResponse,
    responses=problems(401, 403, 429, 503),
    dependencies=RATE_LIMITED,
)
async def psc_callback(
    svc: ServiceDep,
    client: PscClientDep,
    ports: SessionPortsDep,
    accounts: AccountsDep,
    state: Annotated[str, Query(min_length=1, max_length=200)],
    code: Bounded = None,
    error: Annotated[str | None, Query(max_length=200)] = None,
) -> Any:
    """Where PSC sends the browser back: the state is spent (once), the code exchanged, the ID
    token verified (signature, iss, aud, exp, nonce, acr), and the professional (userinfo
    `SubjectNameID`) mapped to the account linked to them in the directory (403 when none).
    The platform's tokens are then those of any login (`UserLoggedIn` with method `psc`)."""
    pair = await psc_login.complete(
        psc_login.PscCallback(state, code, error),
        store=svc.store,
        client=client,
        sessions=ports,
        accounts=accounts,
    )
    return token_response(pair)


class PscLogoutOut(BaseModel):
    end_session_url: str | None = Field(
        description="Send the browser here to end the Pro Santé Connect session too (null when "
        "the session was not a PSC one or PSC is unreachable)"
    )


@router.post("/auth/psc/logout", response_model=PscLogoutOut)
async def psc_logout(
    body: RefreshRequest, uow: UnitOfWorkDep, client: PscClientDep
) -> PscLogoutOut:
    """End the platform session (as `POST /auth/logout`) and offer PSC's end-session URL."""
    ended = await sessions.logout(uow, body.refresh_token)
    provider = (ended or {}).get("provider") or {}
    if client is None or provider.get("name") != "psc":
        return PscLogoutOut(end_session_url=None)
    return PscLogoutOut(end_session_url=await client.end_session_url(provider.get("id_token")))
