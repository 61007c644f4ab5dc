"""Identity's HTTP API: password login, JWKS."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, Field

from bsante.chassis.auth import CurrentPrincipal, issue_token
from bsante.chassis.errors import Unauthorized
from bsante.chassis.service import Service
from bsante.chassis.store import Query
from bsante.contracts.events import UserLoggedIn
from bsante.identity.domain import User, verify_password
from bsante.identity.settings import IdentitySettings

router = APIRouter(tags=["identity"])


def service(request: Request) -> Service:
    svc: Service = request.app.state.service
    return svc


ServiceDep = Annotated[Service, Depends(service)]


class PasswordLogin(BaseModel):
    username: str = Field(min_length=1, max_length=200)
    password: str = Field(min_length=1, max_length=200)


class TokenResponse(BaseModel):
    access_token: str
    token_type: str = "Bearer"
    expires_in: int


@router.post("/auth/token", response_model=TokenResponse)
async def login(body: PasswordLogin, svc: ServiceDep, request: Request) -> TokenResponse:
    found = await svc.store.find("users", Query(where={"username": body.username.lower()}, limit=1))
    user = User.from_json(found[0].data) if found else None
    if user is None or not user.active or not verify_password(user.password_hash, body.password):
        raise Unauthorized("Unknown user or wrong password")
    settings: IdentitySettings = request.app.state.settings
    keys = request.app.state.signing_keys
    token = issue_token(
        keys[0],
        subject=user.id,
        structures=user.structures,
        roles=user.roles,
        profession=user.profession,
        issuer=settings.token_issuer,
        audience=settings.token_audience,
        ttl_seconds=settings.access_token_ttl_seconds,
        extra={"name": user.display_name},
    )
    async with svc.messaging.unit_of_work() as uow:
        await uow.emit(
            UserLoggedIn(user_id=user.id, method="password"),
            structure_id=user.structures[0],
            subject_id=user.id,
        )
    return TokenResponse(access_token=token, expires_in=settings.access_token_ttl_seconds)


@router.get("/.well-known/jwks.json")
async def jwks(request: Request) -> dict[str, Any]:
    return {"keys": [key.public_jwk() for key in request.app.state.signing_keys]}


class Me(BaseModel):
    user_id: str
    acting_structure: str
    structures: list[str]
    roles: list[str]


@router.get("/me", response_model=Me)
async def me(principal: CurrentPrincipal) -> Me:
    return Me(
        user_id=principal.user_id,
        acting_structure=principal.acting_structure,
        structures=list(principal.structures),
        roles=list(principal.roles),
    )
