"""Persistence of submissions over the store port, always scoped to one structure."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any, Final

from bsante.chassis.store import DuplicateDocument, Index, Query, Store, Transaction
from bsante.forms.domain import AlreadyCorrected, Submission

SUBMISSIONS: Final = "submissions"
# One document per corrected submission: its unique id makes "corrected at most once" atomic.
CORRECTIONS: Final = "corrections"
PAGE: Final = 500
# A patient's submissions in creation order (lists, with any form or status; transmissions;
# the corrections that replace others), a form's latest completed one, and the surveillance
# rounds of a period in measurement order.
INDEXES: list[Index] = [
    Index(SUBMISSIONS, ("structure_id", "patient_id", "created_at")),
    Index(SUBMISSIONS, ("structure_id", "patient_id", "form_id", "completed_at")),
    Index(SUBMISSIONS, ("structure_id", "patient_id", "form_id", "results.measured_at")),
]


async def add(tx: Transaction, submission: Submission) -> int:
    doc = await tx.insert(SUBMISSIONS, str(submission.id), submission.model_dump(mode="json"))
    return doc.version


async def save(tx: Transaction, submission: Submission, expected_version: int) -> int:
    doc = await tx.update(
        SUBMISSIONS, str(submission.id), submission.model_dump(mode="json"), expected_version
    )
    return doc.version


async def get(store: Store, structure_id: str, submission_id: str) -> tuple[Submission, int] | None:
    """The submission and its version, or None when absent or of another structure."""
    doc = await store.get(SUBMISSIONS, submission_id)
    if doc is None or doc.data.get("structure_id") != structure_id:
        return None
    return Submission.model_validate(doc.data), doc.version


async def claim_correction(tx: Transaction, original: uuid.UUID, correction: uuid.UUID) -> None:
    """Record that `correction` replaces `original`; Conflict if another correction did."""
    try:
        await tx.insert(CORRECTIONS, str(original), {"correction_id": str(correction)})
    except DuplicateDocument:
        raise AlreadyCorrected() from None


async def correction_id(store: Store, original: uuid.UUID) -> str | None:
    doc = await store.get(CORRECTIONS, str(original))
    return str(doc.data["correction_id"]) if doc else None


async def find(
    store: Store,
    structure_id: str,
    patient_id: str,
    *,
    where: Mapping[str, Any] | None = None,
    order_by: tuple[tuple[str, bool], ...] = (("created_at", False),),
    limit: int | None = None,
    offset: int = 0,
) -> list[tuple[Submission, int]]:
    """A patient's submissions (with versions) matching `where`; all pages when `limit` is None."""
    query_where = {"structure_id": structure_id, "patient_id": patient_id, **(where or {})}
    found: list[tuple[Submission, int]] = []
    start = offset
    while True:
        size = PAGE if limit is None else min(PAGE, limit - len(found))
        docs = await store.find(
            SUBMISSIONS, Query(where=query_where, order_by=order_by, limit=size, offset=start)
        )
        found.extend((Submission.model_validate(d.data), d.version) for d in docs)
        start += len(docs)
        if len(docs) < size or (limit is not None and len(found) >= limit):
            return found


async def superseded(
    store: Store, structure_id: str, patient_id: str, form_id: str | None = None
) -> dict[str, str]:
    """{corrected submission id: id of the completed correction that replaces it}."""
    where: dict[str, Any] = {"status": "completed", "revision": {"$gt": 1}}
    if form_id is not None:
        where["form_id"] = form_id
    corrections = await find(store, structure_id, patient_id, where=where)
    return {str(c.corrects): str(c.id) for c, _ in corrections if c.corrects is not None}


async def latest_completed(
    store: Store, structure_id: str, patient_id: str, form_id: str
) -> Submission | None:
    """The most recently completed submission of a form that no correction replaced."""
    replaced = await superseded(store, structure_id, patient_id, form_id)
    recent = await find(
        store,
        structure_id,
        patient_id,
        where={"form_id": form_id, "status": "completed"},
        order_by=(("completed_at", True),),
        limit=len(replaced) + 1,
    )
    return next((s for s, _ in recent if str(s.id) not in replaced), None)
