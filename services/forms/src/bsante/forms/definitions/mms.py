"""Mini-Mental State, version consensuelle GRECO v1: points per item, total /30, norms.

The interpretation needs the age on the day of the test (from the patient record) and the
cultural level; without either the total is still given, the interpretation is left out.
"""

from __future__ import annotations

from datetime import date
from typing import Final

from bsante.forms.engine import JSON, FieldDef, FieldType, FormContext, FormDefinition, choice
from bsante.forms.scoring import mms

_LABELS: Final = {
    mms.MmsItem.ORIENTATION_TIME: "Orientation dans le temps",
    mms.MmsItem.ORIENTATION_SPACE: "Orientation dans l'espace",
    mms.MmsItem.REGISTRATION: "Apprentissage",
    mms.MmsItem.ATTENTION_CALCULATION: "Attention et calcul",
    mms.MmsItem.RECALL: "Rappel",
    mms.MmsItem.NAMING: "Dénomination",
    mms.MmsItem.REPETITION: "Répétition",
    mms.MmsItem.THREE_STAGE_COMMAND: "Ordre triple",
    mms.MmsItem.READING: "Lecture",
    mms.MmsItem.WRITING: "Écriture",
    mms.MmsItem.COPYING: "Praxies constructives (copie)",
}

FIELDS: Final = (
    FieldDef(id="evaluation_date", label="Date de passation", type=FieldType.DATE, past=True),
    choice(
        "education",
        "Niveau socio-culturel",
        [
            (mms.EducationLevel.NO_DIPLOMA.value, "Sans diplôme (NSC 1-2)"),
            (mms.EducationLevel.PRIMARY.value, "CEP à brevet/CAP (NSC 3-5)"),
            (mms.EducationLevel.BACCALAUREATE.value, "Baccalauréat et plus (NSC ≥ 6)"),
        ],
    ),
    *(
        FieldDef(
            id=item.value,
            label=_LABELS[item],
            type=FieldType.INTEGER,
            required=True,
            minimum=0,
            maximum=mms.MAX_POINTS[item],
            help=" ; ".join(mms.ITEM_POINTS[item]),
        )
        for item in mms.MmsItem
    ),
    FieldDef(
        id="monde",
        label="MONDE à l'envers (non compté dans le total GRECO)",
        type=FieldType.INTEGER,
        minimum=0,
        maximum=5,
    ),
)


def compute(answers: JSON, context: FormContext) -> JSON:
    scored = mms.MmsAnswers.model_validate(
        {item.value: answers[item.value] for item in mms.MmsItem}
    )
    day = (
        date.fromisoformat(answers["evaluation_date"])
        if "evaluation_date" in answers
        else context.at.date()
    )
    age = context.patient.age_on(day) if context.patient else None
    interpretation: JSON | None = None
    if age is not None and mms.MIN_AGE <= age <= mms.MAX_AGE and "education" in answers:
        interpretation = mms.interpret(
            scored.total, age, mms.EducationLevel(answers["education"])
        ).model_dump(mode="json")
    return {
        "total": scored.total,
        "max": mms.MAX_TOTAL,
        "language": scored.language,
        "age": age,
        "interpretation": interpretation,
    }


DEFINITION: Final = FormDefinition(
    id="mms",
    version=1,
    title="Mini-Mental State (MMS, version GRECO)",
    description="Évaluation des fonctions cognitives, total sur 30",
    fields=FIELDS,
    compute=compute,
)
