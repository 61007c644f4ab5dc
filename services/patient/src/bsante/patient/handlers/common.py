"""What every use case of the patient record shares: its ports, loading, audit, events."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from datetime import datetime

from bsante.chassis.auth import Principal
from bsante.chassis.messaging import UnitOfWork
from bsante.chassis.store import ConcurrencyConflict, DuplicateDocument, Store
from bsante.contracts.events import AccessAction, PatientCreated, PatientUpdated
from bsante.patient import repository
from bsante.patient.domain import PatientRecord, now
from bsante.patient.errors import ConflictError, NotFoundError

UnitOfWorkFactory = Callable[[], AbstractAsyncContextManager[UnitOfWork]]


@dataclass(frozen=True)
class Ports:
    """The narrow ports a use case needs: committed reads, a unit of work, the clock."""

    store: Store
    unit_of_work: UnitOfWorkFactory
    clock: Callable[[], datetime] = field(default=now)


async def audit(
    uow: UnitOfWork,
    principal: Principal,
    patient_id: str,
    action: AccessAction,
    resource: str = "patient",
) -> None:
    await uow.audit(
        user_id=principal.user_id,
        acting_structure=principal.acting_structure,
        patient_id=patient_id,
        action=action,
        resource=resource,
    )


async def load(ports: Ports, principal: Principal, patient_id: str) -> tuple[PatientRecord, int]:
    found = await repository.get(ports.store, principal.acting_structure, patient_id)
    if found is None:
        raise NotFoundError("No such patient")
    return found


def require_active(patient: PatientRecord) -> None:
    if not patient.active:
        raise ConflictError(
            "This record was merged into another one; work on that one",
            errors=[{"field": "patient_id", "message": f"merged into {patient.merged_into}"}],
        )


async def load_active(ports: Ports, principal: Principal, patient_id: str) -> PatientRecord:
    patient, _ = await load(ports, principal, patient_id)
    require_active(patient)
    return patient


async def emit_updated(
    uow: UnitOfWork, patient: PatientRecord, changes: list[str], by: str
) -> None:
    await uow.emit(
        PatientUpdated(
            patient_id=patient.id,
            identity_status=patient.identity_status,
            changes=changes,
            updated_by=by,
        ),
        structure_id=patient.structure_id,
        subject_id=str(patient.id),
    )


Build = Callable[[str], PatientRecord]


async def insert_new(
    ports: Ports,
    principal: Principal,
    build: Build,
    matricule_field: str,
    *,
    confirm_not_duplicate: bool,
) -> tuple[PatientRecord, int]:
    """Insert a new record; `build(ipp)` makes it. Retries when the IPP counter moved.

    In the same transaction: the IPP counter, the matricule's key document and the traits key
    document are claimed, so neither "the same INS twice" nor "the same traits twice
    unconfirmed" can pass, even for concurrent requests (a concurrent claim fails the commit
    or the insert, the transaction is retried and then sees the winner's claim).
    """
    for attempt in range(4):
        try:
            async with ports.unit_of_work() as uow:
                ipp = await repository.next_ipp(uow.tx, principal.acting_structure)
                patient = build(ipp)
                if patient.matricule:
                    await repository.claim_matricule(
                        uow.tx,
                        patient.structure_id,
                        patient.matricule,
                        str(patient.id),
                        field=matricule_field,
                    )
                homonyms = await repository.claim_traits(
                    uow.tx, patient, confirmed=confirm_not_duplicate
                )
                if homonyms:
                    patient = patient.flagged_homonym()
                    for other in await repository.flag_homonyms(
                        uow.tx, principal.acting_structure, homonyms
                    ):
                        await emit_updated(uow, other, ["attributes"], principal.user_id)
                version = await repository.add(uow.tx, patient)
                await uow.emit(
                    PatientCreated(
                        patient_id=patient.id,
                        identity_status=patient.identity_status,
                        created_by=principal.user_id,
                        origin=patient.origin,
                    ),
                    structure_id=patient.structure_id,
                    subject_id=str(patient.id),
                )
                await audit(uow, principal, str(patient.id), "create")
            return patient, version
        except (ConcurrencyConflict, DuplicateDocument):
            if attempt == 3:
                raise
    raise AssertionError("unreachable")
