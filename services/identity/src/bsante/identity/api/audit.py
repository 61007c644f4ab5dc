"""Access histories: who read or wrote a patient's data, and what a user accessed (read only)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter
from pydantic import BaseModel

from bsante.chassis.api import ServiceDep
from bsante.chassis.auth import Principal, allowed
from bsante.chassis.errors import NotFoundError
from bsante.contracts.permissions import Action
from bsante.identity import audit
from bsante.identity.accounts import Accounts
from bsante.identity.api.deps import Limit, Offset, PageInfo

router = APIRouter(prefix="/audit", tags=["audit"])
Auditor = Annotated[Principal, allowed(Action.VIEW_AUDIT)]


class AccessRecord(BaseModel):
    event_id: str
    user_id: str
    acting_structure: str
    patient_id: str
    action: str
    resource: str
    service: str
    at: str
    request_id: str | None
    client_address: str | None
    service_client: str | None = None


class AccessPage(PageInfo):
    items: list[AccessRecord]


@router.get("/patients/{patient_id}", response_model=AccessPage)
async def patient_history(
    patient_id: str, principal: Auditor, svc: ServiceDep, limit: Limit = 50, offset: Offset = 0
) -> AccessPage:
    """Every recorded access to the patient in the acting structure, newest first.

    404 when the structure has no record of this patient (another structure's patient).
    """
    items, total = await audit.history(
        svc.store,
        structure_id=principal.acting_structure,
        field="patient_id",
        value=patient_id[:100],
        limit=limit,
        offset=offset,
    )
    if total == 0:
        raise NotFoundError("No such patient")
    return AccessPage(
        items=[AccessRecord.model_validate(i) for i in items],
        total=total,
        limit=limit,
        offset=offset,
    )


@router.get("/users/{user_id}", response_model=AccessPage)
async def user_history(
    user_id: str, principal: Auditor, svc: ServiceDep, limit: Limit = 50, offset: Offset = 0
) -> AccessPage:
    """The patient data a user of the acting structure accessed while acting for it."""
    if await Accounts(svc.store).member(principal.acting_structure, user_id) is None:
        raise NotFoundError("No such user in this structure")
    items, total = await audit.history(
        svc.store,
        structure_id=principal.acting_structure,
        field="user_id",
        value=user_id,
        limit=limit,
        offset=offset,
    )
    return AccessPage(
        items=[AccessRecord.model_validate(i) for i in items],
        total=total,
        limit=limit,
        offset=offset,
    )
