"""Routes of submissions: draft, complete, correct, read, results."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response

from bsante.chassis.api import etag
from bsante.chassis.openapi import creates, problems
from bsante.forms import domain
from bsante.forms.handlers import submissions
from bsante.forms.http.deps import (
    Filler,
    IfMatch,
    PortsDep,
    Reader,
    caller,
    expected_version,
)
from bsante.forms.http.schemas import (
    Answers,
    NewCorrection,
    NewSubmission,
    ResultsOut,
    SubmissionList,
    SubmissionOut,
    submission_out,
)

router = APIRouter()


def _sent(response: Response, saved: submissions.Saved, *, created: bool = False) -> SubmissionOut:
    response.headers["ETag"] = etag(saved.version)
    if created:
        response.headers["Location"] = f"../../submissions/{saved.submission.id}"
    return submission_out(saved)


@router.post(
    "/patients/{patient_id}/submissions",
    status_code=201,
    response_model=SubmissionOut,
    tags=["submissions"],
    openapi_extra=creates("submission_id"),
)
async def create_submission(
    patient_id: uuid.UUID,
    body: NewSubmission,
    principal: Filler,
    ports: PortsDep,
    request: Request,
    response: Response,
) -> SubmissionOut:
    """Start a draft (prefilled for the DLU), or complete at once with `complete: true`."""
    saved = await submissions.start(
        ports,
        caller(principal, request),
        submissions.StartSubmission(
            patient_id=patient_id,
            form_id=body.form_id,
            version=body.version,
            answers=body.answers,
            complete=body.complete,
        ),
    )
    return _sent(response, saved, created=True)


@router.get(
    "/patients/{patient_id}/submissions", response_model=SubmissionList, tags=["submissions"]
)
async def list_submissions(
    patient_id: uuid.UUID,
    principal: Reader,
    ports: PortsDep,
    request: Request,
    form_id: Annotated[str | None, Query(max_length=50)] = None,
    status: domain.Status | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    offset: Annotated[int, Query(ge=0, le=100_000)] = 0,
) -> SubmissionList:
    """A patient's submissions, newest first, each telling which correction replaced it."""
    found = await submissions.list_for_patient(
        ports,
        caller(principal, request),
        submissions.ListSubmissions(
            patient_id=patient_id, form_id=form_id, status=status, limit=limit, offset=offset
        ),
    )
    return SubmissionList(items=[submission_out(s) for s in found])


@router.get("/submissions/{submission_id}", response_model=SubmissionOut, tags=["submissions"])
async def read_submission(
    submission_id: uuid.UUID,
    principal: Reader,
    ports: PortsDep,
    request: Request,
    response: Response,
) -> SubmissionOut:
    saved = await submissions.read(ports, caller(principal, request), submission_id)
    return _sent(response, saved)


@router.put(
    "/submissions/{submission_id}/answers", response_model=SubmissionOut, tags=["submissions"]
)
async def revise_submission(
    submission_id: uuid.UUID,
    body: Answers,
    principal: Filler,
    ports: PortsDep,
    request: Request,
    response: Response,
    if_match: IfMatch = None,
) -> SubmissionOut:
    """Replace a draft's answers (409 once completed)."""
    saved = await submissions.revise(
        ports, caller(principal, request), submission_id, body.answers, expected_version(if_match)
    )
    return _sent(response, saved)


@router.post(
    "/submissions/{submission_id}/complete", response_model=SubmissionOut, tags=["submissions"]
)
async def complete_submission(
    submission_id: uuid.UUID,
    principal: Filler,
    ports: PortsDep,
    request: Request,
    response: Response,
    if_match: IfMatch = None,
) -> SubmissionOut:
    """Check every rule, compute the results, freeze the submission, raise FormCompleted."""
    saved = await submissions.complete(
        ports, caller(principal, request), submission_id, expected_version(if_match)
    )
    return _sent(response, saved)


@router.post(
    "/submissions/{submission_id}/corrections",
    status_code=201,
    response_model=SubmissionOut,
    tags=["submissions"],
    openapi_extra=creates("submission_id"),
)
async def correct_submission(
    submission_id: uuid.UUID,
    body: NewCorrection,
    principal: Filler,
    ports: PortsDep,
    request: Request,
    response: Response,
) -> SubmissionOut:
    """A new version of a completed submission, referencing it; the original never changes."""
    saved = await submissions.correct(
        ports, caller(principal, request), submission_id, body.answers, body.complete
    )
    return _sent(response, saved, created=True)


@router.get(
    "/submissions/{submission_id}/results",
    response_model=ResultsOut,
    responses=problems(409),
    tags=["submissions"],
)
async def read_results(
    submission_id: uuid.UUID, principal: Reader, ports: PortsDep, request: Request
) -> ResultsOut:
    """The computed results (GIR, MMS total, quorum...) of a completed submission."""
    found = await submissions.results(ports, caller(principal, request), submission_id)
    assert found.completed_at is not None
    return ResultsOut(
        submission_id=found.id,
        form_id=found.form_id,
        form_version=found.form_version,
        completed_at=found.completed_at,
        results=found.results or {},
    )
