"""The acting structure (tenant) itself, and key rotation for the platform operator."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated

from fastapi import APIRouter
from pydantic import BaseModel, Field

from bsante.chassis.api import ServiceDep
from bsante.chassis.auth import CurrentPrincipal, Principal, allowed
from bsante.chassis.errors import DomainError, NotFound
from bsante.chassis.text import SafeText
from bsante.contracts.permissions import Action
from bsante.identity import keys
from bsante.identity.api.deps import KeyRingDep, SettingsDep
from bsante.identity.directory.identifiers import FINESS

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
    doc = await svc.store.get("structures", principal.acting_structure)
    if doc is None:
        raise NotFound("No such structure")
    return TenantOut.model_validate(doc.data)


@router.put("/structures/current", response_model=TenantOut)
async def update_structure(body: TenantIn, principal: StructureAdmin, svc: ServiceDep) -> TenantOut:
    """Rename the acting structure or set its FINESS (check digit verified)."""
    if body.finess is not None:
        try:
            FINESS(body.finess)
        except ValueError as error:
            raise DomainError(
                "Invalid FINESS", errors=[{"field": "finess", "message": str(error)}]
            ) from None
    doc = await svc.store.get("structures", principal.acting_structure)
    if doc is None:
        raise NotFound("No such structure")
    data = {**doc.data, "name": body.name, "finess": body.finess}
    async with svc.store.transaction() as tx:
        await tx.update("structures", doc.id, data, doc.version)
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


@router.post("/admin/signing-keys/rotate", response_model=RotatedKey)
async def rotate_signing_key(
    _: Operator,
    svc: ServiceDep,
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
    async with svc.messaging.unit_of_work() as uow:
        kid, previous, activates_at = await keys.rotate(
            uow,
            timedelta(seconds=settings.access_token_ttl_seconds),
            timedelta(seconds=delay),
        )
    await ring.reload()
    return RotatedKey(
        kid=kid,
        previous_kid=previous,
        activates_at=activates_at,
        published_kids=[k.kid for k in ring.keys],
    )
