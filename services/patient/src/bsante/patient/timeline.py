"""The timeline ("ligne de vie"): a projection, per patient, of what happens across the platform.

Built by consuming events; an entry is generic (kind, at, summary, ref), so a new source
only needs a handler that maps its event to one entry.
"""

from __future__ import annotations

from datetime import UTC, datetime

from pydantic import BaseModel

from bsante.chassis.messaging import EventRouter, UnitOfWork
from bsante.contracts.envelope import Envelope
from bsante.contracts.events import (
    FormCompleted,
    InsQualified,
    PatientCreated,
    PatientsMerged,
    PatientUpdated,
)

COLLECTION = "timeline"
KINDS = (
    "patient_created",
    "patient_updated",
    "ins_qualified",
    "patients_merged",
    "form_completed",
)


class Ref(BaseModel):
    type: str
    id: str


class TimelineEntry(BaseModel):
    id: str
    patient_id: str
    structure_id: str
    kind: str
    at: str
    summary: str
    ref: Ref
    by: str | None = None


def stamp(at: datetime) -> str:
    """Fixed-width UTC form, so that timestamps compare as strings in every store adapter."""
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


async def record(
    uow: UnitOfWork,
    envelope: Envelope,
    *,
    patient_id: str,
    kind: str,
    summary: str,
    ref: Ref,
    by: str | None,
    at: datetime | None = None,
) -> None:
    entry = TimelineEntry(
        id=str(envelope.event_id),
        patient_id=patient_id,
        structure_id=envelope.structure_id,
        kind=kind,
        at=stamp(at or envelope.occurred_at),
        summary=summary,
        ref=ref,
        by=by,
    )
    if await uow.tx.get(COLLECTION, entry.id) is None:
        await uow.tx.insert(COLLECTION, entry.id, entry.model_dump(mode="json"))


def register(events: EventRouter) -> None:
    @events.on(PatientCreated)
    async def on_created(uow: UnitOfWork, envelope: Envelope, p: PatientCreated) -> None:
        origin = " depuis la carte Vitale" if p.origin == "vitale" else ""
        await record(
            uow,
            envelope,
            patient_id=str(p.patient_id),
            kind="patient_created",
            summary=f"Dossier créé{origin} (identité {p.identity_status})",
            ref=Ref(type="patient", id=str(p.patient_id)),
            by=p.created_by,
        )

    @events.on(PatientUpdated)
    async def on_updated(uow: UnitOfWork, envelope: Envelope, p: PatientUpdated) -> None:
        await record(
            uow,
            envelope,
            patient_id=str(p.patient_id),
            kind="patient_updated",
            summary=f"Identité mise à jour ({', '.join(p.changes)}) : {p.identity_status}",
            ref=Ref(type="patient", id=str(p.patient_id)),
            by=p.updated_by,
        )

    @events.on(InsQualified)
    async def on_qualified(uow: UnitOfWork, envelope: Envelope, p: InsQualified) -> None:
        via = "téléservice INSi" if p.via == "insi" else "pièce d'identité"
        await record(
            uow,
            envelope,
            patient_id=str(p.patient_id),
            kind="ins_qualified",
            summary=f"INS qualifiée (dernière étape : {via})",
            ref=Ref(type="patient", id=str(p.patient_id)),
            by=p.qualified_by,
            at=p.qualified_at,
        )

    @events.on(PatientsMerged)
    async def on_merged(uow: UnitOfWork, envelope: Envelope, p: PatientsMerged) -> None:
        await record(
            uow,
            envelope,
            patient_id=str(p.kept_patient_id),
            kind="patients_merged",
            summary="Doublon fusionné dans ce dossier",
            ref=Ref(type="patient", id=str(p.merged_patient_id)),
            by=p.merged_by,
        )

    @events.on(FormCompleted)
    async def on_form(uow: UnitOfWork, envelope: Envelope, p: FormCompleted) -> None:
        results = ", ".join(f"{k} {v}" for k, v in sorted(p.results.items()) if _scalar(v))
        correction = " (correction)" if p.corrects else ""
        await record(
            uow,
            envelope,
            patient_id=str(p.patient_id),
            kind="form_completed",
            summary=f"Formulaire {p.form_id} complété{correction}"
            + (f" : {results}" if results else ""),
            ref=Ref(type="form_submission", id=str(p.submission_id)),
            by=p.completed_by,
            at=p.completed_at,
        )


def _scalar(value: object) -> bool:
    return isinstance(value, int | float | str) and len(str(value)) <= 20
