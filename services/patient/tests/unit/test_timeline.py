"""Timeline summaries are French sentences, never field names or codes."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime

from bsante.contracts.events import FormCompleted, PatientCreated, PatientUpdated
from bsante.patient.timeline import created_summary, form_summary, updated_summary

# Raw words: field names (with underscores), unaccented status words, result keys.
RAW = re.compile(r"_|\b(contact|attributes|ins|recuperee|validee|qualifiee|gir|total)\b")


def form(form_id: str, results: dict[str, object], corrects: uuid.UUID | None = None) -> str:
    return form_summary(
        FormCompleted(
            submission_id=uuid.uuid4(),
            patient_id=uuid.uuid4(),
            form_id=form_id,
            form_version=1,
            completed_by="u",
            completed_at=datetime.now(UTC),
            corrects=corrects,
            data={},
            results=results,
        )
    )


def test_form_summaries_are_sentences() -> None:
    assert form("aggir", {"gir": 2, "rang": 3}) == "La grille AGGIR a été complétée : GIR 2."
    assert form("mms", {"total": 24, "max": 30}) == "Le MMS a été complété : score 24 sur 30."
    assert form("aggir", {"gir": 3}, uuid.uuid4()) == "La grille AGGIR a été corrigée : GIR 3."
    assert form("rcp", {"quorum_reached": False}) == (
        "La fiche de RCP a été complétée : quorum non atteint."
    )
    assert form("recueil", {"bmi": 22.46}) == (
        "Le recueil de données d'entrée a été complété : IMC 22,5."
    )
    assert form("surveillance", {"values": {"pulse": 80}}) == (
        "Une surveillance des constantes a été notée."
    )


def test_record_summaries_name_no_field() -> None:
    pid = uuid.uuid4()
    updated = updated_summary(
        PatientUpdated(
            patient_id=pid,
            identity_status="recuperee",
            changes=["identity_status", "ins", "traits", "attributes"],
            updated_by="u",
        )
    )
    assert updated == (
        "Dossier mis à jour (statut de l'identité, INS, traits d'identité, homonymie signalée), "
        "identité récupérée."
    )
    created = created_summary(
        PatientCreated(
            patient_id=pid, identity_status="provisoire", created_by="u", origin="vitale"
        )
    )
    assert created == "Dossier créé depuis la carte Vitale, identité provisoire."
    assert not RAW.search(updated) and not RAW.search(created)
