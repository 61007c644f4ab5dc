"""Fiche RCP v1 (réunion de concertation pluridisciplinaire): meeting, participants, decision.

Quorum: the proposal is valid only when at least three physicians of different specialties took
part (the rule the French cancer plans set for RCPs); other professionals attend without counting.
"""

from __future__ import annotations

from typing import Final

from bsante.chassis.text import fold
from bsante.forms.engine import (
    JSON,
    FieldDef,
    FieldError,
    FieldType,
    FormContext,
    FormDefinition,
    choice,
    text,
)

QUORUM_SPECIALTIES: Final = 3

PROFESSIONS: Final = [
    ("medecin", "Médecin"),
    ("infirmier", "Infirmier(ère)"),
    ("pharmacien", "Pharmacien(ne)"),
    ("psychologue", "Psychologue"),
    ("assistant_social", "Assistant(e) social(e)"),
    ("reeducateur", "Kinésithérapeute, ergothérapeute, orthophoniste"),
    ("dieteticien", "Diététicien(ne)"),
    ("autre", "Autre"),
]

FIELDS: Final = (
    FieldDef(id="meeting_date", label="Date de la réunion", type=FieldType.DATE, required=True),
    text("meeting_name", "Intitulé de la RCP", max_length=200),
    FieldDef(
        id="participants",
        label="Participants",
        type=FieldType.LIST,
        required=True,
        min_items=1,
        max_items=50,
        fields=(
            text("name", "Nom", required=True, max_length=200, personal=True),
            choice("profession", "Profession", PROFESSIONS, required=True),
            text("specialty", "Spécialité", max_length=100, help="Requise pour un médecin"),
            FieldDef(id="present", label="Présent", type=FieldType.BOOLEAN),
        ),
    ),
    text("question", "Question posée", required=True),
    text("proposal", "Proposition de la RCP", required=True),
    choice(
        "decision",
        "Décision",
        [
            ("retenue", "Proposition retenue"),
            ("a_rediscuter", "À rediscuter (dossier à représenter)"),
            ("non_retenue", "Proposition non retenue"),
        ],
        required=True,
    ),
    text("decision_details", "Détail de la décision"),
    FieldDef(id="next_review", label="Date de réévaluation", type=FieldType.DATE),
)


def _physician_specialties(answers: JSON) -> list[str]:
    seen: dict[str, str] = {}
    for p in answers.get("participants", []):
        if p.get("profession") == "medecin" and p.get("present", True) and p.get("specialty"):
            seen.setdefault(fold(p["specialty"]), p["specialty"])
    return sorted(seen.values(), key=fold)


def rules(answers: JSON, _: FormContext) -> list[FieldError]:
    errors = [
        FieldError(f"answers.participants.{i}.specialty", "is required for a physician", "missing")
        for i, p in enumerate(answers.get("participants", []))
        if p.get("profession") == "medecin" and not p.get("specialty")
    ]
    specialties = _physician_specialties(answers)
    if not errors and len(specialties) < QUORUM_SPECIALTIES:
        errors.append(
            FieldError(
                "answers.participants",
                f"quorum not reached: {QUORUM_SPECIALTIES} physicians of different specialties "
                f"must take part, found {len(specialties)}",
                "quorum",
            )
        )
    return errors


def compute(answers: JSON, _: FormContext) -> JSON:
    specialties = _physician_specialties(answers)
    return {
        "quorum_reached": len(specialties) >= QUORUM_SPECIALTIES,
        "specialties": specialties,
        "participants": len(answers.get("participants", [])),
        "decision": answers.get("decision"),
    }


DEFINITION: Final = FormDefinition(
    id="rcp",
    version=1,
    title="Fiche de réunion de concertation pluridisciplinaire (RCP)",
    description="Date, participants et spécialités, question, proposition et décision",
    fields=FIELDS,
    rules=rules,
    compute=compute,
)
