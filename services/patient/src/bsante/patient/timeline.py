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
)

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
        await record(
            uow,
            envelope,
            patient_id=str(p.patient_id),
            kind="patient_created",
            summary=created_summary(p),
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
            summary=updated_summary(p),
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
            summary=f"Identité qualifiée : INS vérifiée (dernière étape : {via}).",
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
            summary="Un doublon a été fusionné dans ce dossier.",
            ref=Ref(type="patient", id=str(p.merged_patient_id)),
            by=p.merged_by,
        )

    @events.on(FormCompleted)
    async def on_form(uow: UnitOfWork, envelope: Envelope, p: FormCompleted) -> None:
        await record(
            uow,
            envelope,
            patient_id=str(p.patient_id),
            kind="form_completed",
            summary=form_summary(p),
            ref=Ref(type="form_submission", id=str(p.submission_id)),
            by=p.completed_by,
            at=p.completed_at,
        )

    @events.on(DocumentSigned)
    async def on_signed(uow: UnitOfWork, envelope: Envelope, p: DocumentSigned) -> None:
        await record(
            uow,
            envelope,
            patient_id=str(p.patient_id),
            kind="document_signed",
            summary=signed_summary(p),
            ref=Ref(type="document", id=str(p.document_id)),
            by=p.legal_authenticator_id,
            at=p.signed_at,
        )

    @events.on(ExternalDocumentAttached)
    async def on_attached(uow: UnitOfWork, envelope: Envelope, p: ExternalDocumentAttached) -> None:
        await record(
            uow,
            envelope,
            patient_id=str(p.patient_id),
            kind="document_attached",
            summary=attached_summary(p),
            ref=Ref(type="document", id=str(p.document_id)),
            by=p.attached_by,
        )

    @events.on(DmpOppositionRecorded)
    async def on_dmp_opposition(
        uow: UnitOfWork, envelope: Envelope, p: DmpOppositionRecorded
    ) -> None:
        await record(
            uow,
            envelope,
            patient_id=str(p.patient_id),
            kind="dmp_opposition",
            summary="Opposition à l'alimentation du DMP enregistrée."
            if p.opposed
            else "Opposition à l'alimentation du DMP levée.",
            ref=Ref(type="patient", id=str(p.patient_id)),
            by=p.recorded_by,
            at=p.recorded_at,
        )

    @events.on(DmpDocumentSubmitted)
    async def on_dmp_submitted(
        uow: UnitOfWork, envelope: Envelope, p: DmpDocumentSubmitted
    ) -> None:
        replaced = " (nouvelle version)" if p.replaces_unique_id else ""
        await record(
            uow,
            envelope,
            patient_id=str(p.patient_id),
            kind="dmp_submitted",
            summary=f"Document envoyé au DMP{replaced}.",
            ref=Ref(type="document", id=str(p.document_id)),
            by=None,
            at=p.submitted_at,
        )

    @events.on(DmpDocumentUpdated)
    async def on_dmp_updated(uow: UnitOfWork, envelope: Envelope, p: DmpDocumentUpdated) -> None:
        summary = (
            "Document retiré du DMP."
            if p.operation == "withdraw"
            else "Visibilité du document dans le DMP modifiée."
        )
        await record(
            uow,
            envelope,
            patient_id=str(p.patient_id),
            kind="dmp_updated",
            summary=summary,
            ref=Ref(type="document", id=str(p.document_id)),
            by=p.updated_by,
            at=p.updated_at,
        )

    @events.on(DmpSubmissionFailed)
    async def on_dmp_failed(uow: UnitOfWork, envelope: Envelope, p: DmpSubmissionFailed) -> None:
        await record(
            uow,
            envelope,
            patient_id=str(p.patient_id),
            kind="dmp_failed",
            summary="L'envoi du document au DMP a échoué : voir son statut.",
            ref=Ref(type="document", id=str(p.document_id)),
            by=None,
            at=p.failed_at,
        )

    @events.on(MssMessageSent)
    async def on_mss_sent(uow: UnitOfWork, envelope: Envelope, p: MssMessageSent) -> None:
        count = p.recipient_count
        await record(
            uow,
            envelope,
            patient_id=str(p.patient_id),
            kind="mss_sent",
            summary=f"Document envoyé par MSSanté à {count} destinataire"
            + ("s." if count > 1 else "."),
            ref=Ref(type="mssante_message", id=p.message_id),
            by=None,
            at=p.sent_at,
        )

    @events.on(MssMessageAcknowledged)
    async def on_mss_ack(uow: UnitOfWork, envelope: Envelope, p: MssMessageAcknowledged) -> None:
        done = "lu par" if p.status == "read" else "remis à"
        await record(
            uow,
            envelope,
            patient_id=str(p.patient_id),
            kind="mss_acknowledged",
            summary=f"Message MSSanté {done} son destinataire.",
            ref=Ref(type="mssante_message", id=p.message_id),
            by=None,
            at=p.acknowledged_at,
        )

    @events.on(MssDeliveryFailed)
    async def on_mss_failed(uow: UnitOfWork, envelope: Envelope, p: MssDeliveryFailed) -> None:
        await record(
            uow,
            envelope,
            patient_id=str(p.patient_id),
            kind="mss_failed",
            summary=f"Message MSSanté {MSS_FAILURE_WORDS[p.source]}.",
            ref=Ref(type="mssante_message", id=p.message_id),
            by=None,
            at=p.failed_at,
        )
