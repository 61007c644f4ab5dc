"""The acting structure (tenant) itself, and key rotation for the platform operator."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated

from fastapi import APIRouter
from pydantic import BaseModel, Field

from bsante.chassis.api import ServiceDep
from bsante.chassis.auth import CurrentPrincipal, Principal, allowed
from bsante.chassis.openapi import problems
from bsante.chassis.text import SafeText
from bsante.contracts.permissions import Action
from bsante.identity.accounts import STRUCTURES
from bsante.identity.api.deps import KeyRingDep, SettingsDep, UnitOfWorkDep
from bsante.identity.directory import repository
from bsante.identity.handlers import structures as handlers

router = APIRouter(tags=["structures"])
StructureAdmin = Annotated[Principal, allowed(Action.MANAGE_STRUCTURE)]
Operator = Annotated[Principal, allowed(Action.MANAGE_PLATFORM)]


class TenantOut(BaseModel):
    id: str
    name: str
    finess: str | None = None


class TenantIn(BaseModel):
    name: SafeText = Field(min_length=1, max_length=200)
    finess: str | None = Field(None, pattern=r"^(?:[0-9]{2}|2[AB])[0-9]{7}$")


@router.get("/structures/current", response_model=TenantOut)
async def current_structure(principal: CurrentPrincipal, svc: ServiceDep) -> TenantOut:
    doc = await repository.get(svc.store, STRUCTURES, principal.acting_structure)
    if doc is None:
        raise handlers.NoSuchStructure()
    return TenantOut.model_validate(doc)


@router.put("/structures/current", response_model=TenantOut)
async def update_structure(
    body: TenantIn, principal: StructureAdmin, uow: UnitOfWorkDep
) -> TenantOut:
    """Rename the acting structure or set its FINESS (check digit verified)."""
    data = await handlers.update_structure(
        handlers.UpdateStructure(principal.acting_structure, body.name, body.finess), uow=uow
    )
    return TenantOut.model_validate(data)


class RotateKey(BaseModel):
    activate_in_seconds: int | None = Field(
        None, ge=0, le=3600, description="Default IDENTITY_KEY_ACTIVATION_SECONDS (15)"
    )


class RotatedKey(BaseModel):
    kid: str
    previous_kid: str | None
    activates_at: datetime
    published_kids: list[str]


@router.post("/admin/signing-keys/rotate", response_model=RotatedKey, responses=problems(409))
async def rotate_signing_key(
    _: Operator,
    uow: UnitOfWorkDep,
    settings: SettingsDep,
    ring: KeyRingDep,
    body: RotateKey | None = None,
) -> RotatedKey:
    """Sign with a new key from now on.

    The new key is published at once and signs after `activate_in_seconds`; the previous key
    stays in the JWKS until the tokens it signed have expired.
    """
    delay = settings.key_activation_seconds
    if body is not None and body.activate_in_seconds is not None:
        delay = body.activate_in_seconds
    rotated = await handlers.rotate_signing_key(
        uow=uow,
        ring=ring,
        token_ttl=timedelta(seconds=settings.access_token_ttl_seconds),
        delay=timedelta(seconds=delay),
    )
    return RotatedKey(
        kid=rotated.kid,
        previous_kid=rotated.previous_kid,
        activates_at=rotated.activates_at,
        published_kids=rotated.published_kids,
    )
