"""The timeline ("ligne de vie"): a projection, per patient, of what happens across the platform.

Built by consuming events; an entry is generic (kind, at, summary, ref), so a new source
only needs a handler that maps its event to one entry.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TypeVar
from uuid import UUID

from pydantic import BaseModel

from bsante.chassis.messaging import EventRouter, UnitOfWork
from bsante.contracts.envelope import Envelope
from bsante.contracts.events import (
    DmpDocumentSubmitted,
    DmpDocumentUpdated,
    DmpOppositionRecorded,
    DmpSubmissionFailed,
    DocumentSigned,
    ExternalDocumentAttached,
    FormCompleted,
    InsQualified,
    MssDeliveryFailed,
    MssMessageAcknowledged,
    MssMessageSent,
    PatientCreated,
    PatientsMerged,
    PatientUpdated,
    Payload,
)

P = TypeVar("P", bound=Payload)

COLLECTION = "timeline"
KINDS = (
    "patient_created",
    "patient_updated",
    "ins_qualified",
    "patients_merged",
    "form_completed",
    "document_signed",
    "document_attached",
    "dmp_opposition",
    "dmp_submitted",
    "dmp_updated",
    "dmp_failed",
    "mss_sent",
    "mss_acknowledged",
    "mss_failed",
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


# Summaries are read by professionals: French sentences, never field names or codes.
STATUS_WORDS = {
    "provisoire": "provisoire",
    "recuperee": "récupérée",
    "validee": "validée",
    "qualifiee": "qualifiée",
}
CHANGE_WORDS = {
    "traits": "traits d'identité",
    "contact": "coordonnées",
    "identity_status": "statut de l'identité",
    "ins": "INS",
    "attributes": "homonymie signalée",
}
FORM_NAMES = {
    "aggir": ("La grille AGGIR", "complétée"),
    "mms": ("Le MMS", "complété"),
    "rcp": ("La fiche de RCP", "complétée"),
    "recueil": ("Le recueil de données d'entrée", "complété"),
    "habitudes_vie": ("Le recueil des habitudes de vie", "complété"),
    "surveillance": ("Une surveillance des constantes", "notée"),
    "transmission": ("Une transmission ciblée", "écrite"),
    "dlu": ("Le dossier de liaison d'urgence", "complété"),
}


MSS_FAILURE_WORDS = {
    "smtp": "refusé par le serveur de messagerie",
    "dsn": "non remis au destinataire",
    "mdn": "non intégré par le destinataire",
    "policy": "non envoyé (destinataire non autorisé)",
}


def created_summary(p: PatientCreated) -> str:
    origin = " depuis la carte Vitale" if p.origin == "vitale" else ""
    return (
        f"Dossier créé{origin}, identité {STATUS_WORDS.get(p.identity_status, p.identity_status)}."
    )


def updated_summary(p: PatientUpdated) -> str:
    words = [CHANGE_WORDS.get(c, "autres données") for c in p.changes]
    status = STATUS_WORDS.get(p.identity_status, p.identity_status)
    return f"Dossier mis à jour ({', '.join(dict.fromkeys(words))}), identité {status}."


def form_summary(p: FormCompleted) -> str:
    name, done = FORM_NAMES.get(p.form_id, (f"Le formulaire {p.form_id}", "complété"))
    if p.corrects:
        done = "corrigée" if done.endswith("e") else "corrigé"
    detail = _form_detail(p)
    return f"{name} a été {done}{detail}."


def _form_detail(p: FormCompleted) -> str:
    r = p.results
    if p.form_id in ("aggir", "dlu") and isinstance(r.get("gir"), int):
        return f" : GIR {r['gir']}"
    if p.form_id == "mms" and isinstance(r.get("total"), int):
        return f" : score {r['total']} sur {r.get('max', 30)}"
    if p.form_id == "rcp" and isinstance(r.get("quorum_reached"), bool):
        return " : quorum atteint" if r["quorum_reached"] else " : quorum non atteint"
    if p.form_id == "recueil" and isinstance(r.get("bmi"), int | float):
        return f" : IMC {r['bmi']:.1f}".replace(".", ",")
    return ""


def signed_summary(p: DocumentSigned) -> str:
    title = p.title or "Un document"
    version = f" (version {p.version})" if p.version > 1 else ""
    return f"{title}{version} : document signé."


def attached_summary(p: ExternalDocumentAttached) -> str:
    origin = "reçu par MSSanté" if p.origin == "mssante" else "ajouté au dossier"
    return f"Document externe {origin}."


def stamp(at: datetime) -> str:
    """Fixed-width UTC form, so that timestamps compare as strings in every store adapter."""
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass(frozen=True)
class Fact:
    """What an event says on a patient's timeline; `at` defaults to when it occurred."""

    patient_id: UUID | str
    kind: str
    summary: str
    ref: Ref
    by: str | None = None
    at: datetime | None = None


async def record(uow: UnitOfWork, envelope: Envelope, fact: Fact) -> None:
    entry = TimelineEntry(
        id=str(envelope.event_id),
        patient_id=str(fact.patient_id),
        structure_id=envelope.structure_id,
        kind=fact.kind,
        at=stamp(fact.at or envelope.occurred_at),
        summary=fact.summary,
        ref=fact.ref,
        by=fact.by,
    )
    if await uow.tx.get(COLLECTION, entry.id) is None:
        await uow.tx.insert(COLLECTION, entry.id, entry.model_dump(mode="json"))


def _patient(patient_id: UUID) -> Ref:
    return Ref(type="patient", id=str(patient_id))


def _document(document_id: UUID) -> Ref:
    return Ref(type="document", id=str(document_id))


def _message(message_id: str) -> Ref:
    return Ref(type="mssante_message", id=message_id)


def _qualified(p: InsQualified) -> Fact:
    via = "téléservice INSi" if p.via == "insi" else "pièce d'identité"
    summary = f"Identité qualifiée : INS vérifiée (dernière étape : {via})."
    return Fact(
        p.patient_id,
        "ins_qualified",
        summary,
        _patient(p.patient_id),
        p.qualified_by,
        p.qualified_at,
    )


def _dmp_opposition(p: DmpOppositionRecorded) -> Fact:
    summary = (
        "Opposition à l'alimentation du DMP enregistrée."
        if p.opposed
        else "Opposition à l'alimentation du DMP levée."
    )
    return Fact(
        p.patient_id,
        "dmp_opposition",
        summary,
        _patient(p.patient_id),
        p.recorded_by,
        p.recorded_at,
    )


def _dmp_submitted(p: DmpDocumentSubmitted) -> Fact:
    replaced = " (nouvelle version)" if p.replaces_unique_id else ""
    summary = f"Document envoyé au DMP{replaced}."
    return Fact(
        p.patient_id, "dmp_submitted", summary, _document(p.document_id), None, p.submitted_at
    )


def _dmp_updated(p: DmpDocumentUpdated) -> Fact:
    summary = (
        "Document retiré du DMP."
        if p.operation == "withdraw"
        else "Visibilité du document dans le DMP modifiée."
    )
    return Fact(
        p.patient_id, "dmp_updated", summary, _document(p.document_id), p.updated_by, p.updated_at
    )


def _mss_sent(p: MssMessageSent) -> Fact:
    plural = "s" if p.recipient_count > 1 else ""
    summary = f"Document envoyé par MSSanté à {p.recipient_count} destinataire{plural}."
    return Fact(p.patient_id, "mss_sent", summary, _message(p.message_id), None, p.sent_at)


def _mss_acknowledged(p: MssMessageAcknowledged) -> Fact:
    done = "lu par" if p.status == "read" else "remis à"
    summary = f"Message MSSanté {done} son destinataire."
    return Fact(
        p.patient_id, "mss_acknowledged", summary, _message(p.message_id), None, p.acknowledged_at
    )


def _on(events: EventRouter, payload: type[P], describe: Callable[[P], Fact]) -> None:
    async def handle(uow: UnitOfWork, envelope: Envelope, p: P) -> None:
        await record(uow, envelope, describe(p))

    events.on(payload)(handle)


def register(events: EventRouter) -> None:
    _on(
        events,
        PatientCreated,
        lambda p: Fact(
            p.patient_id,
            "patient_created",
            created_summary(p),
            _patient(p.patient_id),
            p.created_by,
        ),
    )
    _on(
        events,
        PatientUpdated,
        lambda p: Fact(
            p.patient_id,
            "patient_updated",
            updated_summary(p),
            _patient(p.patient_id),
            p.updated_by,
        ),
    )
    _on(events, InsQualified, _qualified)
    _on(
        events,
        PatientsMerged,
        lambda p: Fact(
            p.kept_patient_id,
            "patients_merged",
            "Un doublon a été fusionné dans ce dossier.",
            _patient(p.merged_patient_id),
            p.merged_by,
        ),
    )
    _on(
        events,
        FormCompleted,
        lambda p: Fact(
            p.patient_id,
            "form_completed",
            form_summary(p),
            Ref(type="form_submission", id=str(p.submission_id)),
            p.completed_by,
            p.completed_at,
        ),
    )
    _on(
        events,
        DocumentSigned,
        lambda p: Fact(
            p.patient_id,
            "document_signed",
            signed_summary(p),
            _document(p.document_id),
            p.legal_authenticator_id,
            p.signed_at,
        ),
    )
    _on(
        events,
        ExternalDocumentAttached,
        lambda p: Fact(
            p.patient_id,
            "document_attached",
            attached_summary(p),
            _document(p.document_id),
            p.attached_by,
        ),
    )
    _on(events, DmpOppositionRecorded, _dmp_opposition)
    _on(events, DmpDocumentSubmitted, _dmp_submitted)
    _on(events, DmpDocumentUpdated, _dmp_updated)
    _on(
        events,
        DmpSubmissionFailed,
        lambda p: Fact(
            p.patient_id,
            "dmp_failed",
            "L'envoi du document au DMP a échoué : voir son statut.",
            _document(p.document_id),
            None,
            p.failed_at,
        ),
    )
    _on(events, MssMessageSent, _mss_sent)
    _on(events, MssMessageAcknowledged, _mss_acknowledged)
    _on(
        events,
        MssDeliveryFailed,
        lambda p: Fact(
            p.patient_id,
            "mss_failed",
            f"Message MSSanté {MSS_FAILURE_WORDS[p.source]}.",
            _message(p.message_id),
            None,
            p.failed_at,
        ),
    )
