"""Patient HTTP API: post-its, correspondents and the timeline of a record.

Post-its and the timeline are clinical content (`read_clinical` to read, `fill_form` to write
a post-it); correspondents are part of the administrative record.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query, Response
from pydantic import BaseModel

from bsante.chassis.auth import Principal, allowed
from bsante.chassis.openapi import creates
from bsante.contracts.permissions import Action
from bsante.patient.annotations import Correspondent, PostIt
from bsante.patient.handlers import annotations as attached
from bsante.patient.http import Editor, PortsDep, Reader
from bsante.patient.schemas import CorrespondentIn, PostItIn
from bsante.patient.timeline import KINDS, TimelineEntry

router = APIRouter(prefix="/patients", tags=["patients"])
KIND_HELP = f"One or more of {', '.join(KINDS)}"

ClinicalReader = Annotated[Principal, allowed(Action.READ_CLINICAL)]
NoteWriter = Annotated[Principal, allowed(Action.FILL_FORM)]


class PostItList(BaseModel):
    items: list[PostIt]


class CorrespondentList(BaseModel):
    items: list[Correspondent]


class TimelinePage(BaseModel):
    items: list[TimelineEntry]
    total: int
    limit: int
    offset: int


# -- post-its -------------------------------------------------------------------------------


@router.post(
    "/{patient_id}/postits",
    status_code=201,
    response_model=PostIt,
    openapi_extra=creates("postit_id"),
)
async def add_postit(
    patient_id: uuid.UUID, body: PostItIn, principal: NoteWriter, ports: PortsDep
) -> PostIt:
    """A short note; `author` visibility keeps it to its author."""
    return await attached.add_postit(ports, principal, str(patient_id), body)


@router.get("/{patient_id}/postits", response_model=PostItList)
async def list_postits(
    patient_id: uuid.UUID, principal: ClinicalReader, ports: PortsDep
) -> PostItList:
    return PostItList(items=await attached.list_postits(ports, principal, str(patient_id)))


@router.delete("/{patient_id}/postits/{postit_id}", status_code=204)
async def delete_postit(
    patient_id: uuid.UUID, postit_id: uuid.UUID, principal: NoteWriter, ports: PortsDep
) -> Response:
    """Only its author removes a post-it (it is kept, marked deleted)."""
    await attached.delete_postit(ports, principal, str(patient_id), str(postit_id))
    return Response(status_code=204)


# -- correspondents -------------------------------------------------------------------------


@router.post(
    "/{patient_id}/correspondents",
    status_code=201,
    response_model=Correspondent,
    openapi_extra=creates("correspondent_id"),
)
async def add_correspondent(
    patient_id: uuid.UUID, body: CorrespondentIn, principal: Editor, ports: PortsDep
) -> Correspondent:
    """Attach a professional (RPPS) with a role; one médecin traitant at a time (409).

    The RPPS is checked for shape (11 digits, Luhn), not yet looked up in identity's
    directory: the display name is the caller's.
    """
    return await attached.add_correspondent(ports, principal, str(patient_id), body)


@router.get("/{patient_id}/correspondents", response_model=CorrespondentList)
async def list_correspondents(
    patient_id: uuid.UUID, principal: Reader, ports: PortsDep
) -> CorrespondentList:
    found = await attached.list_correspondents(ports, principal, str(patient_id))
    return CorrespondentList(items=found)


@router.delete("/{patient_id}/correspondents/{correspondent_id}", status_code=204)
async def remove_correspondent(
    patient_id: uuid.UUID, correspondent_id: uuid.UUID, principal: Editor, ports: PortsDep
) -> Response:
    await attached.remove_correspondent(ports, principal, str(patient_id), str(correspondent_id))
    return Response(status_code=204)


# -- timeline -------------------------------------------------------------------------------


@router.get("/{patient_id}/timeline", response_model=TimelinePage)
async def read_timeline(
    patient_id: uuid.UUID,
    principal: ClinicalReader,
    ports: PortsDep,
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
    items, total = await attached.read_timeline(
        ports,
        principal,
        str(patient_id),
        attached.TimelineQuery(
            kinds=kind or [], since=since, until=until, limit=limit, offset=offset
        ),
    )
    return TimelinePage(items=items, total=total, limit=limit, offset=offset)
