"""Forms HTTP API: definitions, submissions (draft, complete, correct), results, surveillance
chart, targeted transmissions and the DLU prefill.

Every route names the action it needs; everything is scoped to the acting structure (another
structure's submission or patient answers 404), and every read or write of a patient's form data
records an access-audit event in the same unit of work.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Header, Query, Request, Response
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from bsante.chassis.api import ServiceDep, check_if_match, etag
from bsante.chassis.auth import Principal, allowed
from bsante.chassis.errors import Conflict, DomainError, NotFound
from bsante.chassis.messaging import UnitOfWork
from bsante.chassis.openapi import problems
from bsante.chassis.service import Service
from bsante.contracts.events import AccessAction
from bsante.contracts.permissions import Action
from bsante.forms import chart, definitions, domain, repository
from bsante.forms.definitions import aggir as aggir_form
from bsante.forms.definitions import surveillance, transmission
from bsante.forms.domain import Submission
from bsante.forms.engine import JSON, FieldDef, FormContext, FormDefinition, PatientFacts, fold
from bsante.forms.patients import PatientDirectory
from bsante.forms.vitals import AnyReading

# Most routes ask the patient service about the patient: 503 when it does not answer.
router = APIRouter(responses=problems(503))

MAX_PERIOD = timedelta(days=366)
DEFAULT_PERIOD = timedelta(days=30)
# matplotlib's rc_context is process-global: one chart at a time, off the event loop.
_RENDER_LOCK = asyncio.Lock()


Reader = Annotated[Principal, allowed(Action.READ_PATIENT)]
Filler = Annotated[Principal, allowed(Action.FILL_FORM)]


# -- schemas ------------------------------------------------------------------------------------


class DefinitionOut(BaseModel):
    id: str
    version: int
    title: str
    description: str
    fields: list[FieldDef]
    computes: bool = Field(description="Completion computes results (score, GIR, ...)")
    prefilled: bool = Field(description="New drafts are prefilled from the patient record")


class SubmissionOut(BaseModel):
    id: uuid.UUID
    structure_id: str
    patient_id: uuid.UUID
    form_id: str
    form_version: int
    status: domain.Status
    answers: JSON
    results: JSON | None
    revision: int
    corrects: uuid.UUID | None
    superseded_by: uuid.UUID | None = Field(
        None, description="The completed correction that replaces this submission"
    )
    created_by: str
    created_at: datetime
    updated_by: str
    updated_at: datetime
    completed_by: str | None
    completed_at: datetime | None
    version: int = Field(description="Storage version, also sent as ETag")


class NewSubmission(BaseModel):
    model_config = ConfigDict(extra="forbid")

    form_id: str = Field(max_length=50)
    version: int | None = Field(
        None, ge=1, le=1_000, description="Definition version; default the latest"
    )
    answers: dict[str, Any] = Field(default_factory=dict)
    complete: bool = Field(False, description="Complete at once instead of keeping a draft")


class Answers(BaseModel):
    model_config = ConfigDict(extra="forbid")

    answers: dict[str, Any]


class NewCorrection(BaseModel):
    model_config = ConfigDict(extra="forbid")

    answers: dict[str, Any] | None = Field(
        None, description="The corrected answers; default a copy of the corrected submission's"
    )
    complete: bool = False


class ResultsOut(BaseModel):
    submission_id: uuid.UUID
    form_id: str
    form_version: int
    completed_at: datetime
    results: JSON


class SubmissionList(BaseModel):
    items: list[SubmissionOut]


class TransmissionOut(BaseModel):
    submission_id: uuid.UUID
    occurred_at: datetime
    target: str
    data: str
    actions: str
    results: str | None
    shift: str | None
    author: str
    completed_at: datetime
    corrects: uuid.UUID | None


class TransmissionList(BaseModel):
    patient_id: uuid.UUID
    target: str | None
    items: list[TransmissionOut]


class ReadingOut(BaseModel):
    submission_id: uuid.UUID
    measured_at: datetime
    values: dict[str, float]
    bands: dict[str, str]


class ReadingList(BaseModel):
    patient_id: uuid.UUID
    start: datetime
    end: datetime
    items: list[ReadingOut]


class Prefill(BaseModel):
    form_id: str
    form_version: int
    answers: JSON


# -- helpers ------------------------------------------------------------------------------------


def _definition_out(d: FormDefinition) -> DefinitionOut:
    return DefinitionOut(
        id=d.id,
        version=d.version,
        title=d.title,
        description=d.description,
        fields=list(d.fields),
        computes=d.computes,
        prefilled=d.prefill is not None,
    )


def _definition(form_id: str, version: int | None = None) -> FormDefinition:
    found = definitions.get(form_id, version)
    if found is None:
        what = f"{form_id} v{version}" if version else form_id
        raise NotFound(
            f"No form definition {what}", errors=[{"field": "form_id", "message": "unknown form"}]
        )
    return found


def _out(s: Submission, version: int, superseded_by: str | None = None) -> SubmissionOut:
    return SubmissionOut(
        **s.model_dump(),
        version=version,
        superseded_by=uuid.UUID(superseded_by) if superseded_by else None,
    )


def _if_match(value: str | None, current: int) -> int:
    """The version the client read (If-Match), or the one just read when it sent none."""
    return check_if_match(value, current)


async def _patient(request: Request, principal: Principal, patient_id: uuid.UUID) -> PatientFacts:
    """The patient, if the acting structure knows it (asked to the patient service); else 404."""
    directory: PatientDirectory = request.app.state.patients
    facts = await directory.find(
        str(patient_id),
        authorization=request.headers.get("authorization", ""),
        structure_id=principal.acting_structure,
    )
    if facts is None:
        raise NotFound("No such patient")
    return facts


async def _submission(
    svc: Service, principal: Principal, submission_id: uuid.UUID
) -> tuple[Submission, int]:
    found = await repository.get(svc.store, principal.acting_structure, str(submission_id))
    if found is None:
        raise NotFound("No such submission")
    return found


async def _audit(
    uow: UnitOfWork, principal: Principal, patient_id: uuid.UUID, action: AccessAction
) -> None:
    await uow.audit(
        user_id=principal.user_id,
        acting_structure=principal.acting_structure,
        patient_id=str(patient_id),
        action=action,
        resource="form",
    )


async def _audited_read(svc: Service, principal: Principal, patient_id: uuid.UUID) -> None:
    async with svc.messaging.unit_of_work() as uow:
        await _audit(uow, principal, patient_id, "read")


async def _context(
    svc: Service, principal: Principal, patient: PatientFacts, definition: FormDefinition
) -> FormContext:
    latest_aggir = None
    if definition.prefill is not None:
        found = await repository.latest_completed(
            svc.store, principal.acting_structure, patient.id, aggir_form.DEFINITION.id
        )
        if found is not None and found.completed_at is not None and found.results:
            latest_aggir = (str(found.id), found.completed_at, found.results)
    return FormContext(at=datetime.now(UTC), patient=patient, latest_aggir=latest_aggir)


async def _store_new(
    svc: Service,
    principal: Principal,
    draft: Submission,
    definition: FormDefinition,
    context: FormContext,
    complete: bool,
) -> tuple[Submission, int]:
    """Insert a new submission (completed at once if asked), its event and its audit record."""
    submission = draft
    if complete:
        submission = domain.complete(draft, definition, author=principal.user_id, context=context)
    async with svc.messaging.unit_of_work() as uow:
        version = await repository.add(uow.tx, submission)
        if submission.completed:
            await _on_completed(uow, submission, definition)
        await _audit(uow, principal, submission.patient_id, "create")
    return submission, version


async def _on_completed(
    uow: UnitOfWork, submission: Submission, definition: FormDefinition
) -> None:
    if submission.corrects is not None:
        await repository.claim_correction(uow.tx, submission.corrects, submission.id)
    await uow.emit(
        domain.completed_event(submission, definition),
        structure_id=submission.structure_id,
        subject_id=str(submission.patient_id),
    )


def _period(start: datetime | None, end: datetime | None) -> tuple[datetime, datetime]:
    end = (end or datetime.now(UTC)).astimezone(UTC)
    start = (start or end - DEFAULT_PERIOD).astimezone(UTC)
    if start >= end:
        raise DomainError(
            "`from` must be before `to`", errors=[{"field": "from", "message": "not before `to`"}]
        )
    if end - start > MAX_PERIOD:
        raise DomainError(
            "The period is limited to 366 days",
            errors=[{"field": "from", "message": "period longer than 366 days"}],
        )
    return start, end


# -- definitions --------------------------------------------------------------------------------


@router.get("/definitions", response_model=list[DefinitionOut], tags=["definitions"])
async def list_definitions(principal: Reader) -> list[DefinitionOut]:
    """The latest version of every standard form."""
    return [_definition_out(d) for d in definitions.latest()]


@router.get("/definitions/{form_id}", response_model=DefinitionOut, tags=["definitions"])
async def read_definition(
    form_id: str,
    principal: Reader,
    response: Response,
    version: Annotated[int | None, Query(ge=1, le=1_000)] = None,
) -> DefinitionOut:
    """One definition, the latest version unless `version` names an older one."""
    definition = _definition(form_id, version)
    # A published version never changes: its number is a validator (If-None-Match → 304).
    response.headers["ETag"] = etag(definition.version)
    return _definition_out(definition)


# -- submissions --------------------------------------------------------------------------------


@router.post(
    "/patients/{patient_id}/submissions",
    status_code=201,
    response_model=SubmissionOut,
    tags=["submissions"],
)
async def create_submission(
    patient_id: uuid.UUID,
    body: NewSubmission,
    principal: Filler,
    svc: ServiceDep,
    request: Request,
    response: Response,
) -> SubmissionOut:
    """Start a draft (prefilled for the DLU), or complete at once with `complete: true`."""
    definition = _definition(body.form_id, body.version)
    patient = await _patient(request, principal, patient_id)
    context = await _context(svc, principal, patient, definition)
    draft = domain.new_draft(
        definition,
        structure_id=principal.acting_structure,
        patient_id=patient_id,
        author=principal.user_id,
        answers=body.answers,
        context=context,
    )
    submission, version = await _store_new(
        svc, principal, draft, definition, context, body.complete
    )
    response.headers["ETag"] = etag(version)
    response.headers["Location"] = f"../../submissions/{submission.id}"
    return _out(submission, version)


@router.get(
    "/patients/{patient_id}/submissions", response_model=SubmissionList, tags=["submissions"]
)
async def list_submissions(
    patient_id: uuid.UUID,
    principal: Reader,
    svc: ServiceDep,
    request: Request,
    form_id: Annotated[str | None, Query(max_length=50)] = None,
    status: domain.Status | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    offset: Annotated[int, Query(ge=0, le=100_000)] = 0,
) -> SubmissionList:
    """A patient's submissions, newest first, each telling which correction replaced it."""
    await _patient(request, principal, patient_id)
    where: dict[str, Any] = {}
    if form_id is not None:
        where["form_id"] = form_id
    if status is not None:
        where["status"] = status
    found = await repository.find(
        svc.store,
        principal.acting_structure,
        str(patient_id),
        where=where,
        order_by=(("created_at", True),),
        limit=limit,
        offset=offset,
    )
    replaced = await repository.superseded(
        svc.store, principal.acting_structure, str(patient_id), form_id
    )
    await _audited_read(svc, principal, patient_id)
    return SubmissionList(items=[_out(s, v, replaced.get(str(s.id))) for s, v in found])


@router.get("/submissions/{submission_id}", response_model=SubmissionOut, tags=["submissions"])
async def read_submission(
    submission_id: uuid.UUID, principal: Reader, svc: ServiceDep, response: Response
) -> SubmissionOut:
    submission, version = await _submission(svc, principal, submission_id)
    replaced_by = await repository.correction_id(svc.store, submission.id)
    await _audited_read(svc, principal, submission.patient_id)
    response.headers["ETag"] = etag(version)
    return _out(submission, version, replaced_by)


@router.put(
    "/submissions/{submission_id}/answers", response_model=SubmissionOut, tags=["submissions"]
)
async def revise_submission(
    submission_id: uuid.UUID,
    body: Answers,
    principal: Filler,
    svc: ServiceDep,
    response: Response,
    if_match: Annotated[str | None, Header(max_length=50)] = None,
) -> SubmissionOut:
    """Replace a draft's answers (409 once completed)."""
    submission, current = await _submission(svc, principal, submission_id)
    expected = _if_match(if_match, current)
    definition = _definition(submission.form_id, submission.form_version)
    revised = domain.revise(submission, definition, author=principal.user_id, answers=body.answers)
    async with svc.messaging.unit_of_work() as uow:
        version = await repository.save(uow.tx, revised, expected)
        await _audit(uow, principal, revised.patient_id, "update")
    response.headers["ETag"] = etag(version)
    return _out(revised, version)


@router.post(
    "/submissions/{submission_id}/complete", response_model=SubmissionOut, tags=["submissions"]
)
async def complete_submission(
    submission_id: uuid.UUID,
    principal: Filler,
    svc: ServiceDep,
    request: Request,
    response: Response,
    if_match: Annotated[str | None, Header(max_length=50)] = None,
) -> SubmissionOut:
    """Check every rule, compute the results, freeze the submission, raise FormCompleted."""
    submission, current = await _submission(svc, principal, submission_id)
    expected = _if_match(if_match, current)
    domain.ensure_draft(submission)
    definition = _definition(submission.form_id, submission.form_version)
    patient = await _patient(request, principal, submission.patient_id)
    context = await _context(svc, principal, patient, definition)
    completed = domain.complete(submission, definition, author=principal.user_id, context=context)
    async with svc.messaging.unit_of_work() as uow:
        version = await repository.save(uow.tx, completed, expected)
        await _on_completed(uow, completed, definition)
        await _audit(uow, principal, completed.patient_id, "update")
    response.headers["ETag"] = etag(version)
    return _out(completed, version)


@router.post(
    "/submissions/{submission_id}/corrections",
    status_code=201,
    response_model=SubmissionOut,
    tags=["submissions"],
)
async def correct_submission(
    submission_id: uuid.UUID,
    body: NewCorrection,
    principal: Filler,
    svc: ServiceDep,
    request: Request,
    response: Response,
) -> SubmissionOut:
    """A new version of a completed submission, referencing it; the original never changes."""
    original, _ = await _submission(svc, principal, submission_id)
    if await repository.correction_id(svc.store, original.id) is not None:
        raise domain.AlreadyCorrected()
    definition = _definition(original.form_id, original.form_version)
    patient = await _patient(request, principal, original.patient_id)
    context = await _context(svc, principal, patient, definition)
    draft = domain.correction_of(
        original, definition, author=principal.user_id, answers=body.answers
    )
    submission, version = await _store_new(
        svc, principal, draft, definition, context, body.complete
    )
    response.headers["ETag"] = etag(version)
    response.headers["Location"] = f"../../submissions/{submission.id}"
    return _out(submission, version)


@router.get(
    "/submissions/{submission_id}/results",
    response_model=ResultsOut,
    responses=problems(409),
    tags=["submissions"],
)
async def read_results(submission_id: uuid.UUID, principal: Reader, svc: ServiceDep) -> ResultsOut:
    """The computed results (GIR, MMS total, quorum...) of a completed submission."""
    submission, _ = await _submission(svc, principal, submission_id)
    if not submission.completed or submission.completed_at is None:
        raise Conflict(
            "Results exist once the submission is completed",
            errors=[{"field": "status", "message": "draft"}],
        )
    await _audited_read(svc, principal, submission.patient_id)
    return ResultsOut(
        submission_id=submission.id,
        form_id=submission.form_id,
        form_version=submission.form_version,
        completed_at=submission.completed_at,
        results=submission.results or {},
    )


# -- DLU ----------------------------------------------------------------------------------------


@router.get("/patients/{patient_id}/dlu/prefill", response_model=Prefill, tags=["dlu"])
async def dlu_prefill(
    patient_id: uuid.UUID, principal: Reader, svc: ServiceDep, request: Request
) -> Prefill:
    """What a new DLU draft would be prefilled with (patient record, latest AGGIR)."""
    definition = _definition("dlu")
    assert definition.prefill is not None
    patient = await _patient(request, principal, patient_id)
    context = await _context(svc, principal, patient, definition)
    await _audited_read(svc, principal, patient_id)
    return Prefill(
        form_id=definition.id, form_version=definition.version, answers=definition.prefill(context)
    )


# -- transmissions ------------------------------------------------------------------------------


@router.get(
    "/patients/{patient_id}/transmissions", response_model=TransmissionList, tags=["transmissions"]
)
async def list_transmissions(
    patient_id: uuid.UUID,
    principal: Reader,
    svc: ServiceDep,
    request: Request,
    target: Annotated[str | None, Query(max_length=200)] = None,
) -> TransmissionList:
    """Completed targeted transmissions, oldest first; `target` keeps those whose target
    contains it (case and accents ignored). A corrected transmission shows its latest version."""
    await _patient(request, principal, patient_id)
    structure, pid = principal.acting_structure, str(patient_id)
    form = transmission.DEFINITION.id
    found = await repository.find(
        svc.store, structure, pid, where={"form_id": form, "status": "completed"}
    )
    replaced = await repository.superseded(svc.store, structure, pid, form)
    wanted = fold(target) if target else None
    items = [
        TransmissionOut(
            submission_id=s.id,
            occurred_at=(s.results or {})["occurred_at"],
            target=s.answers["target"],
            data=s.answers["data"],
            actions=s.answers["actions"],
            results=s.answers.get("results"),
            shift=s.answers.get("shift"),
            author=s.completed_by or s.created_by,
            completed_at=s.completed_at or s.updated_at,
            corrects=s.corrects,
        )
        for s, _ in found
        if str(s.id) not in replaced and (wanted is None or wanted in fold(s.answers["target"]))
    ]
    items.sort(key=lambda t: (t.occurred_at, t.completed_at))
    await _audited_read(svc, principal, patient_id)
    return TransmissionList(patient_id=patient_id, target=target, items=items)


# -- surveillance -------------------------------------------------------------------------------

From = Annotated[AwareDatetime | None, Query(alias="from")]
To = Annotated[AwareDatetime | None, Query(alias="to")]


async def _rounds(
    svc: Service, principal: Principal, patient_id: uuid.UUID, start: datetime, end: datetime
) -> list[Submission]:
    structure, pid = principal.acting_structure, str(patient_id)
    form = surveillance.DEFINITION.id
    found = await repository.find(
        svc.store,
        structure,
        pid,
        where={
            "form_id": form,
            "status": "completed",
            "results.measured_at": {
                "$gte": start.strftime("%Y-%m-%dT%H:%M:%SZ"),
                "$lte": end.strftime("%Y-%m-%dT%H:%M:%SZ"),
            },
        },
        order_by=(("results.measured_at", False),),
    )
    replaced = await repository.superseded(svc.store, structure, pid, form)
    return [s for s, _ in found if str(s.id) not in replaced]


@router.get(
    "/patients/{patient_id}/surveillance/readings",
    response_model=ReadingList,
    tags=["surveillance"],
)
async def surveillance_readings(
    patient_id: uuid.UUID,
    principal: Reader,
    svc: ServiceDep,
    request: Request,
    start: From = None,
    end: To = None,
) -> ReadingList:
    """Vital signs of the period (default: the last 30 days), oldest first."""
    period = _period(start, end)
    await _patient(request, principal, patient_id)
    rounds = await _rounds(svc, principal, patient_id, *period)
    await _audited_read(svc, principal, patient_id)
    return ReadingList(
        patient_id=patient_id,
        start=period[0],
        end=period[1],
        items=[
            ReadingOut(
                submission_id=s.id,
                measured_at=(s.results or {})["measured_at"],
                values=(s.results or {})["values"],
                bands=(s.results or {})["bands"],
            )
            for s in rounds
        ],
    )


ChartFormat = Literal["svg", "png"]
MEDIA_TYPES: dict[str, str] = {"svg": "image/svg+xml", "png": "image/png"}


async def _chart(
    fmt: ChartFormat,
    patient_id: uuid.UUID,
    principal: Principal,
    svc: Service,
    request: Request,
    start: datetime | None,
    end: datetime | None,
) -> Response:
    period = _period(start, end)
    await _patient(request, principal, patient_id)
    rounds = await _rounds(svc, principal, patient_id, *period)
    readings: list[AnyReading] = [
        r for s in rounds if s.results for r in surveillance.readings(s.results)
    ]
    if not readings:
        raise NotFound(
            "No surveillance readings in this period",
            errors=[{"field": "from", "message": "no readings between `from` and `to`"}],
        )
    render = chart.render_svg if fmt == "svg" else chart.render_png
    async with _RENDER_LOCK:
        image = await asyncio.to_thread(render, readings)
    await _audited_read(svc, principal, patient_id)
    return Response(image, media_type=MEDIA_TYPES[fmt], headers={"Cache-Control": "no-store"})


def _image_responses(media_type: str) -> dict[int | str, dict[str, Any]]:
    return {
        200: {
            "content": {media_type: {"schema": {"type": "string", "format": "binary"}}},
            "description": "The chart",
        }
    }


@router.get(
    "/patients/{patient_id}/surveillance/chart.svg",
    response_class=Response,
    responses=_image_responses("image/svg+xml"),
    tags=["surveillance"],
)
async def surveillance_chart_svg(
    patient_id: uuid.UUID,
    principal: Reader,
    svc: ServiceDep,
    request: Request,
    start: From = None,
    end: To = None,
) -> Response:
    """The surveillance chart of the period as SVG (default: the last 30 days)."""
    return await _chart("svg", patient_id, principal, svc, request, start, end)


@router.get(
    "/patients/{patient_id}/surveillance/chart.png",
    response_class=Response,
    responses=_image_responses("image/png"),
    tags=["surveillance"],
)
async def surveillance_chart_png(
    patient_id: uuid.UUID,
    principal: Reader,
    svc: ServiceDep,
    request: Request,
    start: From = None,
    end: To = None,
) -> Response:
    """The surveillance chart of the period as PNG (default: the last 30 days)."""
    return await _chart("png", patient_id, principal, svc, request, start, end)
