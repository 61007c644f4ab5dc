"""Transmission ciblée v1 (DAR): a target, then Données, Actions, Résultats.

Results are often known only later: they come as a correction of the transmission, which keeps
the original text and its author.
"""

from __future__ import annotations

from datetime import datetime
from typing import Final

from bsante.forms.engine import (
    CLOCK_SKEW,
    JSON,
    FieldDef,
    FieldError,
    FieldType,
    FormContext,
    FormDefinition,
    choice,
    iso_utc,
    text,
)

FIELDS: Final = (
    text(
        "target",
        "Cible",
        required=True,
        max_length=200,
        help="Problème, événement ou comportement (ex. douleur, chute, refus alimentaire)",
    ),
    text("data", "Données", required=True),
    text("actions", "Actions", required=True),
    text("results", "Résultats"),
    FieldDef(
        id="occurred_at",
        label="Date et heure",
        type=FieldType.DATETIME,
        help="Par défaut, l'heure de validation",
    ),
    choice("shift", "Équipe", [("matin", "Matin"), ("apres_midi", "Après-midi"), ("nuit", "Nuit")]),
)


def rules(answers: JSON, context: FormContext) -> list[FieldError]:
    at = answers.get("occurred_at")
    if at and datetime.fromisoformat(at) > context.at + CLOCK_SKEW:
        return [FieldError("answers.occurred_at", "is in the future")]
    return []


def compute(answers: JSON, context: FormContext) -> JSON:
    occurred = answers.get("occurred_at") or iso_utc(context.at)
    return {"target": answers["target"], "occurred_at": occurred}


DEFINITION: Final = FormDefinition(
    id="transmission",
    version=1,
    title="Transmission ciblée (DAR)",
    description="Cible, données, actions, résultats",
    fields=FIELDS,
    rules=rules,
    compute=compute,
)
