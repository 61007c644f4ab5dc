"""Patient HTTP API: post-its, correspondents and the timeline of a record."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query, Response
from pydantic import BaseModel

from bsante.chassis.api import ServiceDep
from bsante.chassis.auth import Principal
from bsante.chassis.errors import Conflict, DomainError, Forbidden, NotFound
from bsante.chassis.service import Service
from bsante.patient import handlers, repository
from bsante.patient.annotations import Correspondent, CorrespondentRole, PostIt
from bsante.patient.domain import PatientRecord, now
from bsante.patient.http import Editor, Reader
from bsante.patient.schemas import CorrespondentIn, PostItIn
from bsante.patient.timeline import KINDS, TimelineEntry, stamp

router = APIRouter(prefix="/patients", tags=["patients"])
KIND_HELP = f"One or more of {', '.join(KINDS)}"


class PostItList(BaseModel):
    items: list[PostIt]


class CorrespondentList(BaseModel):
    items: list[Correspondent]


class TimelinePage(BaseModel):
    items: list[TimelineEntry]
    total: int
    limit: int
    offset: int


async def _active(svc: Service, principal: Principal, patient_id: uuid.UUID) -> PatientRecord:
    patient, _ = await handlers.load(svc, principal, str(patient_id))
    handlers.require_active(patient)
    return patient


# -- post-its -------------------------------------------------------------------------------


@router.post("/{patient_id}/postits", status_code=201, response_model=PostIt)
async def add_postit(
    patient_id: uuid.UUID, body: PostItIn, principal: Editor, svc: ServiceDep
) -> PostIt:
    """A short note; `author` visibility keeps it to its author."""
    patient = await _active(svc, principal, patient_id)
    postit = PostIt(
        id=uuid.uuid4(),
        patient_id=patient.id,
        structure_id=patient.structure_id,
        author=principal.user_id,
        text=body.text,
        visibility=body.visibility,
        created_at=now(),
    )
    async with svc.messaging.unit_of_work() as uow:
        await repository.add_postit(uow.tx, postit)
        await handlers.audit(uow, principal, str(patient.id), "create", "postit")
    return postit


@router.get("/{patient_id}/postits", response_model=PostItList)
async def list_postits(patient_id: uuid.UUID, principal: Reader, svc: ServiceDep) -> PostItList:
    patient, _ = await handlers.load(svc, principal, str(patient_id))
    found = await repository.postits(svc.store, patient.lineage)
    async with svc.messaging.unit_of_work() as uow:
        await handlers.audit(uow, principal, str(patient.id), "read", "postit")
    return PostItList(items=[p for p in found if p.visible_to(principal.user_id)])


@router.delete("/{patient_id}/postits/{postit_id}", status_code=204)
async def delete_postit(
    patient_id: uuid.UUID, postit_id: uuid.UUID, principal: Editor, svc: ServiceDep
) -> Response:
    """Only its author removes a post-it (it is kept, marked deleted)."""
    patient, _ = await handlers.load(svc, principal, str(patient_id))
    async with svc.messaging.unit_of_work() as uow:
        found = await repository.get_postit(uow.tx, str(postit_id))
        if found is None or str(found[0].patient_id) not in patient.lineage:
            raise NotFound("No such post-it")
        postit, version = found
        if not postit.visible_to(principal.user_id):
            raise NotFound("No such post-it")
        if postit.author != principal.user_id:
            raise Forbidden("Only the author removes a post-it")
        await repository.save_postit(uow.tx, postit.model_copy(update={"deleted": True}), version)
        await handlers.audit(uow, principal, str(patient.id), "delete", "postit")
    return Response(status_code=204)


# -- correspondents -------------------------------------------------------------------------


@router.post("/{patient_id}/correspondents", status_code=201, response_model=Correspondent)
async def add_correspondent(
    patient_id: uuid.UUID, body: CorrespondentIn, principal: Editor, svc: ServiceDep
) -> Correspondent:
    """Attach a professional (RPPS) with a role; one médecin traitant at a time.

    The RPPS is checked for shape (11 digits, Luhn), not yet looked up in identity's
    directory: the display name is the caller's.
    """
    patient = await _active(svc, principal, patient_id)
    current = await repository.correspondents(svc.store, patient.lineage)
    if any(c.rpps == body.rpps and c.role == body.role for c in current):
        raise Conflict(
            "This professional is already attached with this role",
            errors=[{"field": "rpps", "message": "already attached"}],
        )
    if body.role is CorrespondentRole.MEDECIN_TRAITANT and any(
        c.role is CorrespondentRole.MEDECIN_TRAITANT for c in current
    ):
        raise Conflict(
            "The patient already has a médecin traitant: remove it first",
            errors=[{"field": "role", "message": "one médecin traitant at a time"}],
        )
    correspondent = Correspondent(
        id=uuid.uuid4(),
        patient_id=patient.id,
        structure_id=patient.structure_id,
        rpps=body.rpps,
        role=body.role,
        display_name=body.display_name,
        specialty=body.specialty,
        added_by=principal.user_id,
        added_at=now(),
    )
    async with svc.messaging.unit_of_work() as uow:
        await repository.add_correspondent(uow.tx, correspondent)
        await handlers.audit(uow, principal, str(patient.id), "update", "correspondent")
    return correspondent


@router.get("/{patient_id}/correspondents", response_model=CorrespondentList)
async def list_correspondents(
    patient_id: uuid.UUID, principal: Reader, svc: ServiceDep
) -> CorrespondentList:
    patient, _ = await handlers.load(svc, principal, str(patient_id))
    found = await repository.correspondents(svc.store, patient.lineage)
    async with svc.messaging.unit_of_work() as uow:
        await handlers.audit(uow, principal, str(patient.id), "read", "correspondent")
    return CorrespondentList(items=found)


@router.delete("/{patient_id}/correspondents/{correspondent_id}", status_code=204)
async def remove_correspondent(
    patient_id: uuid.UUID, correspondent_id: uuid.UUID, principal: Editor, svc: ServiceDep
) -> Response:
    patient, _ = await handlers.load(svc, principal, str(patient_id))
    async with svc.messaging.unit_of_work() as uow:
        found = await repository.get_correspondent(uow.tx, str(correspondent_id))
        if found is None or str(found[0].patient_id) not in patient.lineage or found[0].removed:
            raise NotFound("No such correspondent")
        correspondent, version = found
        await repository.save_correspondent(
            uow.tx, correspondent.model_copy(update={"removed": True}), version
        )
        await handlers.audit(uow, principal, str(patient.id), "update", "correspondent")
    return Response(status_code=204)


# -- timeline -------------------------------------------------------------------------------


@router.get("/{patient_id}/timeline", response_model=TimelinePage)
async def read_timeline(
    patient_id: uuid.UUID,
    principal: Reader,
    svc: ServiceDep,
    kind: Annotated[
        list[str] | None, Query(description=f"One or more of {', '.join(KINDS)}")
    ] = None,
    since: Annotated[datetime | None, Query(description="From this instant (included)")] = None,
    until: Annotated[datetime | None, Query(description="Until this instant (excluded)")] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Annotated[int, Query(ge=0, le=100_000)] = 0,
) -> TimelinePage:
    """What happened to the patient across the platform, newest first (includes the records
    merged into this one). Built from events: it can lag a moment behind a write."""
    kinds = kind or []
    unknown = sorted(set(kinds) - set(KINDS))
    errors = [{"field": "query.kind", "location": "query", "message": f"unknown kinds {unknown}"}]
    for name, value in (("since", since), ("until", until)):
        if value is not None and value.tzinfo is None:
            errors.append(
                {"field": f"query.{name}", "location": "query", "message": "give a time zone"}
            )
    if unknown or len(errors) > 1:
        raise DomainError("The request has invalid fields", errors=errors[0 if unknown else 1 :])
    patient, _ = await handlers.load(svc, principal, str(patient_id))
    items, total = await repository.timeline(
        svc.store,
        patient.lineage,
        kinds=kinds,
        since=stamp(since) if since else None,
        until=stamp(until) if until else None,
        limit=limit,
        offset=offset,
    )
    async with svc.messaging.unit_of_work() as uow:
        await handlers.audit(uow, principal, str(patient.id), "read", "timeline")
    return TimelinePage(items=items, total=total, limit=limit, offset=offset)
