"""Use case: merge a duplicate record into the one kept."""

from __future__ import annotations

from bsante.chassis.auth import Principal
from bsante.contracts.events import PatientsMerged
from bsante.patient import domain, repository
from bsante.patient.domain import PatientRecord
from bsante.patient.errors import ConflictError
from bsante.patient.handlers.common import Ports, audit, load


async def merge(
    ports: Ports, principal: Principal, kept_id: str, duplicate_id: str
) -> tuple[PatientRecord, int]:
    kept, kept_version = await load(ports, principal, kept_id)
    duplicate, dup_version = await load(ports, principal, duplicate_id)
    try:
        new_kept, retired = domain.merge(kept, duplicate, principal.user_id)
    except domain.MergeRefusedError as error:
        raise ConflictError(
            str(error), errors=[{"field": "duplicate_id", "message": str(error)}]
        ) from None
    async with ports.unit_of_work() as uow:
        version = await repository.save(uow.tx, new_kept, kept_version)
        await repository.save(uow.tx, retired, dup_version)
        # The retired record no longer counts as a person with these traits.
        await repository.release_traits(uow.tx, duplicate)
        for matricule in {duplicate.nir, duplicate.ins.matricule if duplicate.ins else None}:
            if matricule:
                await repository.move_matricule(uow.tx, kept.structure_id, matricule, kept_id)
        await uow.emit(
            PatientsMerged(
                kept_patient_id=kept.id, merged_patient_id=duplicate.id, merged_by=principal.user_id
            ),
            structure_id=kept.structure_id,
            subject_id=kept_id,
        )
        await audit(uow, principal, kept_id, "update")
        await audit(uow, principal, duplicate_id, "update")
    return new_kept, version
