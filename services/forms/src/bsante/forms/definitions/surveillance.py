"""Feuille de surveillance v1: one round of vital signs; the chart is the time series of rounds.

Values are checked against the plausible ranges of `vitals` (typing errors, not alerts).
Glycaemia may be typed in g/L or mmol/L and is kept in g/L in the results.
"""

from __future__ import annotations

from datetime import datetime
from typing import Final

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
from bsante.forms.vitals import (
    SPECS,
    AnyReading,
    BloodPressureReading,
    Reading,
    VitalKind,
    VitalValueError,
    classify,
    validate_value,
)

MEASURES: Final = tuple(VitalKind)


def _measure(kind: VitalKind) -> FieldDef:
    spec = SPECS[kind]
    glycaemia = kind is VitalKind.GLYCAEMIA
    return FieldDef(
        id=kind.value,
        label=spec.label,
        type=FieldType.NUMBER,
        # Glycaemia's range depends on the unit typed: checked by the rules.
        minimum=None if glycaemia else spec.plausible.low,
        maximum=None if glycaemia else spec.plausible.high,
        unit=spec.unit,
    )


FIELDS: Final = (
    FieldDef(
        id="measured_at", label="Date et heure", type=FieldType.DATETIME, required=True, past=True
    ),
    *(_measure(kind) for kind in MEASURES),
    choice("glycaemia_unit", "Unité de la glycémie", [("g/L", "g/L"), ("mmol/L", "mmol/L")]),
    text("comment", "Commentaire", max_length=1000),
)


def rules(answers: JSON, context: FormContext) -> list[FieldError]:
    errors: list[FieldError] = []
    if not any(kind.value in answers for kind in MEASURES):
        errors.append(FieldError("answers", "record at least one measure", "missing"))
    systolic = answers.get(VitalKind.SYSTOLIC_BP.value)
    diastolic = answers.get(VitalKind.DIASTOLIC_BP.value)
    if (systolic is None) != (diastolic is None):
        missing = VitalKind.DIASTOLIC_BP if diastolic is None else VitalKind.SYSTOLIC_BP
        errors.append(
            FieldError(f"answers.{missing.value}", "blood pressure needs both values", "missing")
        )
    elif systolic is not None and diastolic is not None and diastolic >= systolic:
        errors.append(
            FieldError(
                f"answers.{VitalKind.DIASTOLIC_BP.value}", "must be below the systolic pressure"
            )
        )
    if VitalKind.GLYCAEMIA.value in answers:
        unit = answers.get("glycaemia_unit")
        if unit is None:
            # No silent default: 1.2 g/L and 1.2 mmol/L are very different patients.
            errors.append(
                FieldError("answers.glycaemia_unit", "give the glycaemia's unit", "missing")
            )
        else:
            try:
                validate_value(
                    VitalKind.GLYCAEMIA,
                    answers[VitalKind.GLYCAEMIA.value],
                    unit=unit,
                    field=f"answers.{VitalKind.GLYCAEMIA.value}",
                )
            except VitalValueError as error:
                errors.append(FieldError(error.field, str(error).split(": ", 1)[1]))
    return errors


def compute(answers: JSON, _: FormContext) -> JSON:
    values: dict[str, float] = {}
    for kind in MEASURES:
        if kind.value in answers:
            unit = answers.get("glycaemia_unit") if kind is VitalKind.GLYCAEMIA else None
            values[kind.value] = round(validate_value(kind, answers[kind.value], unit=unit), 3)
    bands = {k: band.value for k, v in values.items() if (band := classify(VitalKind(k), v))}
    return {"measured_at": answers["measured_at"], "values": values, "bands": bands}


def readings(results: JSON) -> list[AnyReading]:
    """Chart readings of one completed round (its results)."""
    at = datetime.fromisoformat(results["measured_at"])
    values: dict[str, float] = results["values"]
    out: list[AnyReading] = []
    systolic = values.get(VitalKind.SYSTOLIC_BP.value)
    diastolic = values.get(VitalKind.DIASTOLIC_BP.value)
    if systolic is not None and diastolic is not None:
        out.append(BloodPressureReading(at=at, systolic=systolic, diastolic=diastolic))
    for name, value in values.items():
        kind = VitalKind(name)
        if kind not in (VitalKind.SYSTOLIC_BP, VitalKind.DIASTOLIC_BP):
            out.append(Reading(at=at, kind=kind, value=value))
    return out


DEFINITION: Final = FormDefinition(
    id="surveillance",
    version=1,
    title="Feuille de surveillance (constantes)",
    description="Pouls, pression artérielle, température, SpO₂, fréquence respiratoire, poids, "
    "douleur, glycémie",
    fields=FIELDS,
    rules=rules,
    compute=compute,
)
