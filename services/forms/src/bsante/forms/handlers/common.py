"""What every use case of the forms service shares: its ports, the caller, lookups, audit."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta

from bsante.chassis.auth import Principal
from bsante.chassis.messaging import UnitOfWork
from bsante.chassis.store import Store
from bsante.contracts.events import AccessAction
from bsante.forms import definitions, domain, repository
from bsante.forms.definitions import aggir as aggir_form
from bsante.forms.domain import Submission
from bsante.forms.engine import FormContext, FormDefinition, PatientFacts
from bsante.forms.errors import InvalidRequest, NotFoundError
from bsante.forms.patients import PatientDirectory

UnitOfWorkFactory = Callable[[], AbstractAsyncContextManager[UnitOfWork]]

MAX_PERIOD = timedelta(days=366)
DEFAULT_PERIOD = timedelta(days=30)


def _utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class Ports:
    """The narrow ports a use case needs."""

    store: Store
    unit_of_work: UnitOfWorkFactory
    patients: PatientDirectory
    clock: Callable[[], datetime] = field(default=_utc_now)


@dataclass(frozen=True)
class Caller:
    """Who calls, and the credentials the patient directory is asked with."""

    principal: Principal
    authorization: str = ""

    @property
    def structure(self) -> str:
        return self.principal.acting_structure

    @property
    def user(self) -> str:
        return self.principal.user_id


def definition(form_id: str, version: int | None = None) -> FormDefinition:
    found = definitions.get(form_id, version)
    if found is None:
        what = f"{form_id} v{version}" if version else form_id
        raise NotFoundError(
            f"No form definition {what}", errors=[{"field": "form_id", "message": "unknown form"}]
        )
    return found


async def patient(ports: Ports, caller: Caller, patient_id: uuid.UUID) -> PatientFacts:
    """The patient, if the acting structure knows it (asked to the patient service); else 404."""
    facts = await ports.patients.find(
        str(patient_id), authorization=caller.authorization, structure_id=caller.structure
    )
    if facts is None:
        raise NotFoundError("No such patient")
    return facts


async def submission(
    ports: Ports, caller: Caller, submission_id: uuid.UUID
) -> tuple[Submission, int]:
    found = await repository.get(ports.store, caller.structure, str(submission_id))
    if found is None:
        raise NotFoundError("No such submission")
    return found


async def audit(
    uow: UnitOfWork, caller: Caller, patient_id: uuid.UUID, action: AccessAction
) -> None:
    await uow.audit(
        user_id=caller.user,
        acting_structure=caller.structure,
        patient_id=str(patient_id),
        action=action,
        resource="form",
    )


async def audited_read(ports: Ports, caller: Caller, patient_id: uuid.UUID) -> None:
    async with ports.unit_of_work() as uow:
        await audit(uow, caller, patient_id, "read")


async def context(
    ports: Ports, caller: Caller, facts: PatientFacts, form: FormDefinition
) -> FormContext:
    latest_aggir = None
    if form.prefill is not None:
        found = await repository.latest_completed(
            ports.store, caller.structure, facts.id, aggir_form.DEFINITION.id
        )
        if found is not None and found.completed_at is not None and found.results:
            latest_aggir = (str(found.id), found.completed_at, found.results)
    return FormContext(at=ports.clock(), patient=facts, latest_aggir=latest_aggir)


async def on_completed(uow: UnitOfWork, completed: Submission, form: FormDefinition) -> None:
    """In the completion's unit of work: claim the corrected submission, raise FormCompleted."""
    if completed.corrects is not None:
        await repository.claim_correction(uow.tx, completed.corrects, completed.id)
    await uow.emit(
        domain.completed_event(completed, form),
        structure_id=completed.structure_id,
        subject_id=str(completed.patient_id),
    )


Moment = datetime | date


def _instant(value: Moment, *, end: bool) -> datetime:
    """A date-time as given, or a plain date: its start (`from`) or the next day's (`to`)."""
    if isinstance(value, datetime):
        return value.astimezone(UTC)
    day = value + timedelta(days=1) if end else value
    return datetime.combine(day, time(), tzinfo=UTC)


def period(start: Moment | None, end: Moment | None, now: datetime) -> tuple[datetime, datetime]:
    """The period asked (`to` excluded when a plain date, so that day is included)."""
    stop = _instant(end, end=True) if end is not None else now.astimezone(UTC)
    begin = _instant(start, end=False) if start is not None else stop - DEFAULT_PERIOD
    if begin >= stop:
        raise InvalidRequest(
            "`from` must be before `to`", errors=[{"field": "from", "message": "not before `to`"}]
        )
    if stop - begin > MAX_PERIOD:
        raise InvalidRequest(
            "The period is limited to 366 days",
            errors=[{"field": "from", "message": "period longer than 366 days"}],
        )
    return begin, stop
