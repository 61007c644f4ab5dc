"""Patient HTTP API: create, read and correct a patient's identity traits."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Header, Request, Response
from pydantic import BaseModel

from bsante.chassis.auth import Principal, allowed
from bsante.chassis.errors import DomainError, NotFound
from bsante.chassis.service import Service
from bsante.contracts.events import PatientCreated
from bsante.contracts.permissions import Action
from bsante.patient import repository
from bsante.patient.domain import IdentityStatus, IdentityTraits, new_patient

router = APIRouter(prefix="/patients", tags=["patients"])


def service(request: Request) -> Service:
    svc: Service = request.app.state.service
    return svc


ServiceDep = Annotated[Service, Depends(service)]
Reader = Annotated[Principal, allowed(Action.READ_PATIENT)]
Editor = Annotated[Principal, allowed(Action.EDIT_PATIENT)]


class PatientOut(BaseModel):
    id: uuid.UUID
    structure_id: str
    traits: IdentityTraits
    identity_status: IdentityStatus
    version: int
    created_at: datetime
    updated_at: datetime


class PreconditionRequired(DomainError):
    status = 428
    kind = "precondition-required"


def _etag(version: int) -> str:
    return f'"{version}"'


def _parse_if_match(value: str | None) -> int:
    if value is None:
        raise PreconditionRequired(
            "Send If-Match with the version you read (the ETag of GET)",
            errors=[{"field": "If-Match", "message": "required"}],
        )
    raw = value.strip().removeprefix("W/").strip('"')
    if not raw.isdigit():
        raise DomainError(
            "If-Match must be the ETag of the version you read",
            errors=[{"field": "If-Match", "message": "not a version ETag"}],
        )
    return int(raw)


@router.post("", status_code=201, response_model=PatientOut)
async def create_patient(
    traits: IdentityTraits, principal: Editor, svc: ServiceDep, response: Response
) -> PatientOut:
    patient = new_patient(principal.acting_structure, traits, principal.user_id)
    async with svc.messaging.unit_of_work() as uow:
        version = await repository.add(uow.tx, patient)
        await uow.emit(
            PatientCreated(
                patient_id=patient.id,
                identity_status=patient.identity_status,
                created_by=principal.user_id,
            ),
            structure_id=patient.structure_id,
            subject_id=str(patient.id),
        )
        await uow.audit(
            user_id=principal.user_id,
            acting_structure=principal.acting_structure,
            patient_id=str(patient.id),
            action="create",
            resource="patient",
        )
    response.headers["ETag"] = _etag(version)
    response.headers["Location"] = f"patients/{patient.id}"
    return PatientOut(**patient.model_dump(), version=version)


@router.get("/{patient_id}", response_model=PatientOut)
async def read_patient(
    patient_id: uuid.UUID, principal: Reader, svc: ServiceDep, response: Response
) -> PatientOut:
    found = await repository.get(svc.store, principal.acting_structure, str(patient_id))
    if found is None:
        raise NotFound("No such patient")
    patient, version = found
    async with svc.messaging.unit_of_work() as uow:
        await uow.audit(
            user_id=principal.user_id,
            acting_structure=principal.acting_structure,
            patient_id=str(patient.id),
            action="read",
            resource="patient",
        )
    response.headers["ETag"] = _etag(version)
    return PatientOut(**patient.model_dump(), version=version)


@router.put("/{patient_id}/traits", response_model=PatientOut)
async def correct_traits(
    patient_id: uuid.UUID,
    traits: IdentityTraits,
    principal: Editor,
    svc: ServiceDep,
    response: Response,
    if_match: Annotated[str | None, Header(max_length=50)] = None,
) -> PatientOut:
    expected = _parse_if_match(if_match)
    found = await repository.get(svc.store, principal.acting_structure, str(patient_id))
    if found is None:
        raise NotFound("No such patient")
    patient, _ = found
    updated = patient.model_copy(update={"traits": traits, "updated_at": datetime.now(UTC)})
    async with svc.messaging.unit_of_work() as uow:
        version = await repository.save(uow.tx, updated, expected)
        await uow.audit(
            user_id=principal.user_id,
            acting_structure=principal.acting_structure,
            patient_id=str(patient.id),
            action="update",
            resource="patient",
        )
    response.headers["ETag"] = _etag(version)
    return PatientOut(**updated.model_dump(), version=version)
