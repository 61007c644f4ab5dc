"""Use cases of submissions: start (or complete at once), revise, complete, correct, read."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from bsante.chassis.store import ConcurrencyConflict
from bsante.forms import domain, repository
from bsante.forms.domain import Status, Submission
from bsante.forms.engine import FormContext, FormDefinition
from bsante.forms.errors import ConflictError
from bsante.forms.handlers.common import (
    Caller,
    Ports,
    audit,
    audited_read,
    context,
    definition,
    on_completed,
    patient,
    submission,
)


@dataclass(frozen=True)
class Saved:
    """A submission as stored, its version, and the completed correction replacing it."""

    submission: Submission
    version: int
    superseded_by: str | None = None


@dataclass(frozen=True)
class StartSubmission:
    patient_id: uuid.UUID
    form_id: str
    version: int | None
    answers: dict[str, Any]
    complete: bool


async def _store_new(
    ports: Ports,
    caller: Caller,
    draft: Submission,
    form: FormDefinition,
    ctx: FormContext,
    complete: bool,
) -> Saved:
    """Insert a new submission (completed at once if asked), its event and its audit record."""
    stored = draft
    if complete:
        stored = domain.complete(draft, form, author=caller.user, context=ctx)
    async with ports.unit_of_work() as uow:
        version = await repository.add(uow.tx, stored)
        if stored.completed:
            await on_completed(uow, stored, form)
        await audit(uow, caller, stored.patient_id, "create")
    return Saved(stored, version)


async def start(ports: Ports, caller: Caller, command: StartSubmission) -> Saved:
    """A draft (prefilled for the DLU), or a completed submission with `complete`."""
    form = definition(command.form_id, command.version)
    facts = await patient(ports, caller, command.patient_id)
    ctx = await context(ports, caller, facts, form)
    draft = domain.new_draft(
        form,
        structure_id=caller.structure,
        patient_id=command.patient_id,
        author=caller.user,
        answers=command.answers,
        context=ctx,
    )
    return await _store_new(ports, caller, draft, form, ctx, command.complete)


def ensure_version(submission_id: uuid.UUID, current: int, expected: int | None) -> None:
    """The version the client read is still the current one, checked before any other work
    (a stale If-Match fails first, whatever else is wrong with the request)."""
    if expected is not None and expected != current:
        raise ConcurrencyConflict(repository.SUBMISSIONS, str(submission_id), expected)


async def revise(
    ports: Ports,
    caller: Caller,
    submission_id: uuid.UUID,
    answers: dict[str, Any],
    expected: int | None,
) -> Saved:
    """Replace a draft's answers, at the version the client read (or the one just read)."""
    current, version = await submission(ports, caller, submission_id)
    ensure_version(submission_id, version, expected)
    form = definition(current.form_id, current.form_version)
    revised = domain.revise(current, form, author=caller.user, answers=answers, at=ports.clock())
    async with ports.unit_of_work() as uow:
        new_version = await repository.save(
            uow.tx, revised, version if expected is None else expected
        )
        await audit(uow, caller, revised.patient_id, "update")
    return Saved(revised, new_version)


async def complete(
    ports: Ports, caller: Caller, submission_id: uuid.UUID, expected: int | None
) -> Saved:
    """Check every rule, compute the results, freeze the submission, raise FormCompleted.

    A correction claims the corrected submission in the same transaction: of two corrections
    completed together, one wins and the other gets a conflict."""
    current, version = await submission(ports, caller, submission_id)
    ensure_version(submission_id, version, expected)
    domain.ensure_draft(current)
    form = definition(current.form_id, current.form_version)
    facts = await patient(ports, caller, current.patient_id)
    ctx = await context(ports, caller, facts, form)
    completed = domain.complete(current, form, author=caller.user, context=ctx)
    async with ports.unit_of_work() as uow:
        new_version = await repository.save(
            uow.tx, completed, version if expected is None else expected
        )
        await on_completed(uow, completed, form)
        await audit(uow, caller, completed.patient_id, "update")
    return Saved(completed, new_version)


async def correct(
    ports: Ports,
    caller: Caller,
    submission_id: uuid.UUID,
    answers: dict[str, Any] | None,
    complete_now: bool,
) -> Saved:
    """A new version of a completed submission, referencing it; the original never changes."""
    original, _ = await submission(ports, caller, submission_id)
    # Early answer for the common case; the rule itself is the claim taken at completion.
    if await repository.correction_id(ports.store, original.id) is not None:
        raise domain.AlreadyCorrected()
    form = definition(original.form_id, original.form_version)
    facts = await patient(ports, caller, original.patient_id)
    ctx = await context(ports, caller, facts, form)
    draft = domain.correction_of(original, form, author=caller.user, answers=answers, at=ctx.at)
    return await _store_new(ports, caller, draft, form, ctx, complete_now)


async def read(ports: Ports, caller: Caller, submission_id: uuid.UUID) -> Saved:
    found, version = await submission(ports, caller, submission_id)
    replaced_by = await repository.correction_id(ports.store, found.id)
    await audited_read(ports, caller, found.patient_id)
    return Saved(found, version, replaced_by)


async def results(ports: Ports, caller: Caller, submission_id: uuid.UUID) -> Submission:
    """A completed submission (its results); a draft has none yet."""
    found, _ = await submission(ports, caller, submission_id)
    if not found.completed or found.completed_at is None:
        raise ConflictError(
            "Results exist once the submission is completed",
            errors=[{"field": "status", "message": "draft"}],
        )
    await audited_read(ports, caller, found.patient_id)
    return found


@dataclass(frozen=True)
class ListSubmissions:
    patient_id: uuid.UUID
    form_id: str | None = None
    status: Status | None = None
    limit: int = 100
    offset: int = 0


async def list_for_patient(ports: Ports, caller: Caller, query: ListSubmissions) -> list[Saved]:
    """A patient's submissions, newest first, each telling which correction replaced it."""
    await patient(ports, caller, query.patient_id)
    where: dict[str, Any] = {}
    if query.form_id is not None:
        where["form_id"] = query.form_id
    if query.status is not None:
        where["status"] = query.status
    pid = str(query.patient_id)
    found = await repository.find(
        ports.store,
        caller.structure,
        pid,
        where=where,
        order_by=(("created_at", True),),
        limit=query.limit,
        offset=query.offset,
    )
    replaced = await repository.superseded(ports.store, caller.structure, pid, query.form_id)
    await audited_read(ports, caller, query.patient_id)
    return [Saved(s, v, replaced.get(str(s.id))) for s, v in found]
