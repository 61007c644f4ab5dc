"""HTTP bodies of the forms API, and their conversion from the use cases' results."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from bsante.forms import domain
from bsante.forms.domain import Submission
from bsante.forms.engine import JSON, FieldDef, FormDefinition
from bsante.forms.handlers.submissions import Saved


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


def definition_out(d: FormDefinition) -> DefinitionOut:
    return DefinitionOut(
        id=d.id,
        version=d.version,
        title=d.title,
        description=d.description,
        fields=list(d.fields),
        computes=d.computes,
        prefilled=d.prefill is not None,
    )


def submission_out(saved: Saved) -> SubmissionOut:
    return SubmissionOut(
        **saved.submission.model_dump(),
        version=saved.version,
        superseded_by=uuid.UUID(saved.superseded_by) if saved.superseded_by else None,
    )


def transmission_out(s: Submission) -> TransmissionOut:
    return TransmissionOut(
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


def reading_out(s: Submission) -> ReadingOut:
    results = s.results or {}
    return ReadingOut(
        submission_id=s.id,
        measured_at=results["measured_at"],
        values=results["values"],
        bands=results["bands"],
    )
