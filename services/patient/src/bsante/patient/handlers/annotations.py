"""Use cases of what hangs off a record: post-its, correspondents, the timeline."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from bsante.chassis.auth import Principal
from bsante.patient import repository
from bsante.patient.annotations import Correspondent, CorrespondentRole, PostIt
from bsante.patient.errors import ConflictError, InvalidRequest, NotAllowed, NotFoundError
from bsante.patient.handlers.common import Ports, audit, load, load_active
from bsante.patient.schemas import CorrespondentIn, PostItIn
from bsante.patient.timeline import KINDS, TimelineEntry, stamp

# -- post-its -------------------------------------------------------------------------------


async def add_postit(ports: Ports, principal: Principal, patient_id: str, body: PostItIn) -> PostIt:
    patient = await load_active(ports, principal, patient_id)
    postit = PostIt(
        id=uuid.uuid4(),
        patient_id=patient.id,
        structure_id=patient.structure_id,
        author=principal.user_id,
        text=body.text,
        visibility=body.visibility,
        created_at=ports.clock(),
    )
    async with ports.unit_of_work() as uow:
        await repository.add_postit(uow.tx, postit)
        await audit(uow, principal, str(patient.id), "create", "postit")
    return postit


async def list_postits(ports: Ports, principal: Principal, patient_id: str) -> list[PostIt]:
    patient, _ = await load(ports, principal, patient_id)
    found = await repository.postits(ports.store, patient.lineage)
    async with ports.unit_of_work() as uow:
        await audit(uow, principal, str(patient.id), "read", "postit")
    return [p for p in found if p.visible_to(principal.user_id)]


async def delete_postit(
    ports: Ports, principal: Principal, patient_id: str, postit_id: str
) -> None:
    """Only its author removes a post-it (it is kept, marked deleted)."""
    patient, _ = await load(ports, principal, patient_id)
    async with ports.unit_of_work() as uow:
        found = await repository.get_postit(uow.tx, postit_id)
        if found is None or str(found[0].patient_id) not in patient.lineage:
            raise NotFoundError("No such post-it")
        postit, version = found
        if not postit.visible_to(principal.user_id):
            raise NotFoundError("No such post-it")
        if postit.author != principal.user_id:
            raise NotAllowed("Only the author removes a post-it")
        await repository.save_postit(uow.tx, postit.model_copy(update={"deleted": True}), version)
        await audit(uow, principal, str(patient.id), "delete", "postit")


# -- correspondents -------------------------------------------------------------------------


def _role_key(patient_id: str, role: CorrespondentRole) -> str:
    return f"{patient_id}:role:{role.value}"


def _person_key(patient_id: str, rpps: str, role: CorrespondentRole) -> str:
    return f"{patient_id}:rpps:{rpps}:{role.value}"


async def add_correspondent(
    ports: Ports, principal: Principal, patient_id: str, body: CorrespondentIn
) -> Correspondent:
    """Attach a professional with a role; one médecin traitant at a time.

    Both rules are claims taken in the write transaction (a key document per patient and
    role, per patient, professional and role): two concurrent attachments cannot both pass.
    """
    patient = await load_active(ports, principal, patient_id)
    correspondent = Correspondent(
        id=uuid.uuid4(),
        patient_id=patient.id,
        structure_id=patient.structure_id,
        rpps=body.rpps,
        role=body.role,
        display_name=body.display_name,
        specialty=body.specialty,
        added_by=principal.user_id,
        added_at=ports.clock(),
    )
    pid, cid = str(patient.id), str(correspondent.id)
    async with ports.unit_of_work() as uow:
        if await repository.claim(uow.tx, _person_key(pid, body.rpps, body.role), cid):
            raise ConflictError(
                "This professional is already attached with this role",
                errors=[{"field": "rpps", "message": "already attached"}],
            )
        if body.role is CorrespondentRole.MEDECIN_TRAITANT and await repository.claim(
            uow.tx, _role_key(pid, body.role), cid
        ):
            raise ConflictError(
                "The patient already has a médecin traitant: remove it first",
                errors=[{"field": "role", "message": "one médecin traitant at a time"}],
            )
        await repository.add_correspondent(uow.tx, correspondent)
        await audit(uow, principal, pid, "update", "correspondent")
    return correspondent


async def list_correspondents(
    ports: Ports, principal: Principal, patient_id: str, *, audited: bool = True
) -> list[Correspondent]:
    patient, _ = await load(ports, principal, patient_id)
    found = await repository.correspondents(ports.store, patient.lineage)
    if audited:
        async with ports.unit_of_work() as uow:
            await audit(uow, principal, str(patient.id), "read", "correspondent")
    return found


async def remove_correspondent(
    ports: Ports, principal: Principal, patient_id: str, correspondent_id: str
) -> None:
    patient, _ = await load(ports, principal, patient_id)
    async with ports.unit_of_work() as uow:
        found = await repository.get_correspondent(uow.tx, correspondent_id)
        if found is None or str(found[0].patient_id) not in patient.lineage or found[0].removed:
            raise NotFoundError("No such correspondent")
        correspondent, version = found
        await repository.save_correspondent(
            uow.tx, correspondent.model_copy(update={"removed": True}), version
        )
        owner = str(correspondent.patient_id)
        await repository.release(
            uow.tx,
            _person_key(owner, correspondent.rpps, correspondent.role),
            correspondent_id,
        )
        await repository.release(uow.tx, _role_key(owner, correspondent.role), correspondent_id)
        await audit(uow, principal, str(patient.id), "update", "correspondent")


# -- timeline -------------------------------------------------------------------------------


@dataclass(frozen=True)
class TimelineQuery:
    kinds: list[str]
    since: datetime | None = None
    until: datetime | None = None
    limit: int = 50
    offset: int = 0


async def read_timeline(
    ports: Ports, principal: Principal, patient_id: str, query: TimelineQuery
) -> tuple[list[TimelineEntry], int]:
    unknown = sorted(set(query.kinds) - set(KINDS))
    errors = []
    if unknown:
        errors.append(
            {"field": "query.kind", "location": "query", "message": f"unknown kinds {unknown}"}
        )
    for name, value in (("since", query.since), ("until", query.until)):
        if value is not None and value.tzinfo is None:
            errors.append(
                {"field": f"query.{name}", "location": "query", "message": "give a time zone"}
            )
    if errors:
        raise InvalidRequest("The request has invalid fields", errors=errors)
    patient, _ = await load(ports, principal, patient_id)
    items, total = await repository.timeline(
        ports.store,
        patient.lineage,
        kinds=query.kinds,
        since=stamp(query.since) if query.since else None,
        until=stamp(query.until) if query.until else None,
        limit=query.limit,
        offset=query.offset,
    )
    async with ports.unit_of_work() as uow:
        await audit(uow, principal, str(patient.id), "read", "timeline")
    return items, total
