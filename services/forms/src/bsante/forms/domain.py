"""The submission aggregate: a draft, then completed and immutable; a correction is a new one.

No I/O here: the caller brings the definition, the answers and the context (patient facts,
latest AGGIR) and stores what comes back.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from bsante.contracts.events import FormCompleted
from bsante.forms.engine import JSON, FieldError, FormContext, FormDefinition, without_personal
from bsante.forms.errors import ConflictError, InvalidRequest

Status = Literal["draft", "completed"]


class InvalidAnswers(InvalidRequest):
    kind = "validation"

    def __init__(self, errors: list[FieldError]) -> None:
        super().__init__(
            "Some answers are invalid", errors=[error.as_problem() for error in errors]
        )


class SubmissionCompleted(ConflictError):
    kind = "submission-completed"


class AlreadyCorrected(ConflictError):
    kind = "already-corrected"

    def __init__(self) -> None:
        super().__init__(
            "This submission was already corrected: correct the latest version instead",
            errors=[{"field": "corrects", "message": "already corrected"}],
        )


class Submission(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: uuid.UUID
    structure_id: str
    patient_id: uuid.UUID
    form_id: str
    form_version: int
    status: Status = "draft"
    answers: JSON
    results: JSON | None = None
    # 1 for a first submission; a correction is the corrected one's revision + 1.
    revision: int = 1
    corrects: uuid.UUID | None = None
    created_by: str
    created_at: datetime
    updated_by: str
    updated_at: datetime
    completed_by: str | None = None
    completed_at: datetime | None = None

    @property
    def completed(self) -> bool:
        return self.status == "completed"


def merge_answers(base: JSON, given: JSON) -> JSON:
    """`given` over `base`, objects merged key by key (a prefill never hides a typed answer)."""
    merged = dict(base)
    for key, value in given.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = merge_answers(merged[key], value)
        else:
            merged[key] = value
    return merged


def _checked(definition: FormDefinition, answers: Any, at: datetime) -> JSON:
    normalised, errors = definition.check(answers, complete=False, at=at)
    if errors:
        raise InvalidAnswers(errors)
    return normalised


def new_draft(
    definition: FormDefinition,
    *,
    structure_id: str,
    patient_id: uuid.UUID,
    author: str,
    answers: Any,
    context: FormContext,
) -> Submission:
    given = answers
    if definition.prefill is not None and isinstance(given, dict):
        given = merge_answers(definition.prefill(context), given)
    now = context.at
    return Submission(
        id=uuid.uuid4(),
        structure_id=structure_id,
        patient_id=patient_id,
        form_id=definition.id,
        form_version=definition.version,
        answers=_checked(definition, given, now),
        created_by=author,
        created_at=now,
        updated_by=author,
        updated_at=now,
    )


def correction_of(
    original: Submission,
    definition: FormDefinition,
    *,
    author: str,
    answers: Any | None,
    at: datetime | None = None,
) -> Submission:
    """A new draft that will replace `original` once completed; starts from its answers."""
    if not original.completed:
        raise ConflictError(
            "A draft is edited, not corrected: change its answers instead",
            errors=[{"field": "status", "message": "the submission is a draft"}],
        )
    now = at or datetime.now(UTC)
    return Submission(
        id=uuid.uuid4(),
        structure_id=original.structure_id,
        patient_id=original.patient_id,
        form_id=original.form_id,
        form_version=original.form_version,
        answers=_checked(definition, original.answers if answers is None else answers, now),
        revision=original.revision + 1,
        corrects=original.id,
        created_by=author,
        created_at=now,
        updated_by=author,
        updated_at=now,
    )


def ensure_draft(submission: Submission) -> None:
    if submission.completed:
        raise SubmissionCompleted(
            "A completed submission cannot be changed: send a correction instead",
            errors=[{"field": "status", "message": "completed"}],
        )


def revise(
    submission: Submission,
    definition: FormDefinition,
    *,
    author: str,
    answers: Any,
    at: datetime | None = None,
) -> Submission:
    """Replace a draft's answers."""
    ensure_draft(submission)
    now = at or datetime.now(UTC)
    return submission.model_copy(
        update={
            "answers": _checked(definition, answers, now),
            "updated_by": author,
            "updated_at": now,
        }
    )


def complete(
    submission: Submission, definition: FormDefinition, *, author: str, context: FormContext
) -> Submission:
    """Check every rule, compute the results and freeze the submission."""
    ensure_draft(submission)
    answers, errors = definition.check(submission.answers, complete=True, at=context.at)
    if not errors:
        errors = definition.rules(answers, context)
    if errors:
        raise InvalidAnswers(errors)
    return submission.model_copy(
        update={
            "status": "completed",
            "answers": answers,
            "results": definition.compute(answers, context),
            "updated_by": author,
            "updated_at": context.at,
            "completed_by": author,
            "completed_at": context.at,
        }
    )


def completed_event(submission: Submission, definition: FormDefinition) -> FormCompleted:
    assert submission.completed_at is not None and submission.completed_by is not None
    return FormCompleted(
        submission_id=submission.id,
        patient_id=submission.patient_id,
        form_id=submission.form_id,
        form_version=submission.form_version,
        completed_by=submission.completed_by,
        completed_at=submission.completed_at,
        corrects=submission.corrects,
        data=without_personal(definition, submission.answers),
        results=submission.results or {},
    )
