"""What the connector keeps: each document's DMP submission, and each patient's INS status.

A patient's projection lists the submissions waiting for it (`pending`), so that an event about
the patient resumes them inside its own transaction (a transaction reads by id only).
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, Field

from bsante.chassis.store import Index, Store, Transaction
from bsante.contracts.events import DmpVisibility

SUBMISSIONS = "submissions"
PATIENTS = "patients"
# Submissions and patients are read by id only: no query, no index of their own.
INDEXES: list[Index] = []


class State(StrEnum):
    WAITING_INS = "waiting_qualified_ins"
    BLOCKED_OPPOSITION = "blocked_patient_opposition"
    QUEUED = "queued"
    SUBMITTED = "submitted"
    FAILED = "failed"
    WITHDRAWN = "withdrawn"


# States that a patient event may move on (they hold a place in the patient's `pending`).
WAITING = (State.WAITING_INS, State.BLOCKED_OPPOSITION)


def now_iso() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class Step(BaseModel):
    at: str
    state: str
    reason: str | None = None


class Submission(BaseModel):
    document_id: str
    structure_id: str
    patient_id: str
    set_id: str
    version: int
    parent_document_id: str | None = None
    author_id: str
    type_code: str
    class_code: str | None = None
    title: str | None = None
    cda_sha256: str
    cda_size: int
    visibility: list[DmpVisibility] = Field(default_factory=list)
    state: State
    reason: str | None = None
    error_code: str | None = None
    round: int = 1
    entry_uuid: str
    logical_id: str | None = None
    registry_version: int = 0
    unique_id: str | None = None
    replaces_unique_id: str | None = None
    pending_change: str | None = None
    created_at: str
    updated_at: str
    history: list[Step] = Field(default_factory=list)

    def moved(self, state: State, reason: str | None = None, **changes: Any) -> Submission:
        at = now_iso()
        return self.model_copy(
            update={
                "state": state,
                "reason": reason,
                "updated_at": at,
                "history": [*self.history, Step(at=at, state=state.value, reason=reason)][-30:],
                **changes,
            }
        )


class PatientView(BaseModel):
    patient_id: str
    structure_id: str
    identity_status: str = "provisoire"
    opposed: bool = False
    merged_into: str | None = None
    pending: list[str] = Field(default_factory=list)

    @property
    def qualified(self) -> bool:
        return self.identity_status == "qualifiee"


async def get_submission(
    tx: Transaction | Store, document_id: str
) -> tuple[Submission, int] | None:
    doc = await tx.get(SUBMISSIONS, document_id)
    return (Submission.model_validate(doc.data), doc.version) if doc is not None else None


async def save_submission(tx: Transaction, submission: Submission, version: int) -> int:
    doc = await tx.update(
        SUBMISSIONS, submission.document_id, submission.model_dump(mode="json"), version
    )
    return doc.version


async def get_patient(tx: Transaction | Store, patient_id: str) -> tuple[PatientView, int] | None:
    doc = await tx.get(PATIENTS, patient_id)
    return (PatientView.model_validate(doc.data), doc.version) if doc is not None else None


async def save_patient(tx: Transaction, view: PatientView, version: int | None) -> None:
    data = view.model_dump(mode="json")
    if version is None:
        await tx.insert(PATIENTS, view.patient_id, data)
    else:
        await tx.update(PATIENTS, view.patient_id, data, version)
