"""The merge-field catalogue of the documents service, and the values of one document's fields.

A template's body refers to these fields (`editor.FieldRun` / `editor.MergeField`); a document
drafted from it takes their values once, from the patient, author, structure and forms facts
fetched when it is created (so a document never changes because a record did afterwards).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Literal

from bsante.documents.sources import AuthorFacts, PatientRecordFacts, ResultFacts, StructureFacts

FieldType = Literal["text", "date", "datetime", "number", "address"]


@dataclass(frozen=True)
class MergeFieldSpec:
    name: str
    label: str
    type: FieldType
    group: Literal["patient", "author", "structure", "context", "forms"]
    description: str = ""


CATALOGUE: tuple[MergeFieldSpec, ...] = (
    MergeFieldSpec("patient.birth_name", "Nom de naissance", "text", "patient"),
    MergeFieldSpec("patient.used_name", "Nom utilisé", "text", "patient"),
    MergeFieldSpec("patient.birth_given_names", "Prénoms de naissance", "text", "patient"),
    MergeFieldSpec("patient.first_given_name", "Premier prénom de naissance", "text", "patient"),
    MergeFieldSpec("patient.used_given_name", "Prénom utilisé", "text", "patient"),
    MergeFieldSpec("patient.birth_date", "Date de naissance", "date", "patient"),
    MergeFieldSpec("patient.sex", "Sexe", "text", "patient"),
    MergeFieldSpec(
        "patient.ins", "INS", "text", "patient", "Only when the identity is qualifiée; else empty"
    ),
    MergeFieldSpec("patient.ipp", "IPP", "text", "patient"),
    MergeFieldSpec("patient.address", "Adresse du patient", "address", "patient"),
    MergeFieldSpec("author.name", "Nom de l'auteur", "text", "author"),
    MergeFieldSpec("author.profession", "Profession de l'auteur", "text", "author"),
    MergeFieldSpec("author.specialty", "Spécialité de l'auteur", "text", "author"),
    MergeFieldSpec("author.rpps", "RPPS de l'auteur", "text", "author"),
    MergeFieldSpec("structure.name", "Nom de la structure", "text", "structure"),
    MergeFieldSpec("structure.finess", "FINESS de la structure", "text", "structure"),
    MergeFieldSpec("structure.address", "Adresse de la structure", "address", "structure"),
    MergeFieldSpec("structure.phone", "Téléphone de la structure", "text", "structure"),
    MergeFieldSpec("context.date", "Date du document", "date", "context"),
    MergeFieldSpec("context.datetime", "Date et heure du document", "datetime", "context"),
    MergeFieldSpec("forms.latest_gir", "Dernier GIR", "number", "forms"),
    MergeFieldSpec("forms.latest_gir_date", "Date du dernier GIR", "date", "forms"),
    MergeFieldSpec("forms.latest_mms", "Dernier score MMS (sur 30)", "number", "forms"),
    MergeFieldSpec("forms.latest_mms_date", "Date du dernier MMS", "date", "forms"),
    MergeFieldSpec("forms.latest_vitals", "Dernières constantes", "text", "forms"),
)
NAMES = frozenset(f.name for f in CATALOGUE)

_SEX = {"M": "Masculin", "F": "Féminin", "I": "Indéterminé", "U": "Inconnu"}


def unknown(fields: set[str]) -> list[str]:
    """The fields a body refers to that the catalogue does not publish, sorted."""
    return sorted(fields - NAMES)


def _day(value: date | datetime | None) -> str:
    return value.strftime("%d/%m/%Y") if value is not None else ""


def values(
    *,
    patient: PatientRecordFacts,
    author: AuthorFacts | None,
    structure: StructureFacts | None,
    results: ResultFacts,
    at: datetime,
) -> dict[str, str]:
    """Every catalogue field's value for one document (empty when unknown)."""
    out: dict[str, str] = dict.fromkeys(NAMES, "")
    out.update(
        {
            "patient.birth_name": patient.birth_name,
            "patient.used_name": patient.used_name or "",
            "patient.birth_given_names": patient.birth_given_names,
            "patient.first_given_name": patient.first_given_name,
            "patient.used_given_name": patient.used_given_name or patient.first_given_name,
            "patient.birth_date": _day(patient.birth_date),
            "patient.sex": _SEX.get(patient.sex, patient.sex),
            "patient.ins": patient.ins if patient.ins_qualified and patient.ins else "",
            "patient.ipp": patient.ipp or "",
            "patient.address": patient.address_text(),
            "context.date": _day(at),
            "context.datetime": at.strftime("%d/%m/%Y %H:%M"),
        }
    )
    if author is not None:
        out.update(
            {
                "author.name": author.display_name,
                "author.profession": author.profession_label or "",
                "author.specialty": author.specialty_label or "",
                "author.rpps": author.rpps or "",
            }
        )
    if structure is not None:
        out.update(
            {
                "structure.name": structure.name,
                "structure.finess": structure.finess or "",
                "structure.address": structure.address or "",
                "structure.phone": structure.phone or "",
            }
        )
    if results.gir is not None:
        out["forms.latest_gir"] = str(results.gir)
        out["forms.latest_gir_date"] = _day(results.gir_at)
    if results.mms is not None:
        out["forms.latest_mms"] = str(results.mms)
        out["forms.latest_mms_date"] = _day(results.mms_at)
    out["forms.latest_vitals"] = vitals_text(results.vitals)
    return out


_VITAL_LABELS = {
    "systolic": ("TA systolique", "mmHg"),
    "diastolic": ("TA diastolique", "mmHg"),
    "heart_rate": ("Pouls", "/min"),
    "temperature": ("Température", "°C"),
    "spo2": ("SpO2", "%"),
    "weight": ("Poids", "kg"),
    "respiratory_rate": ("Fréquence respiratoire", "/min"),
    "glycemia": ("Glycémie", "g/L"),
    "pain": ("Douleur (EVA)", "/10"),
}


def vitals_text(vitals: Mapping[str, Any]) -> str:
    """`Pouls 72 /min, Température 37.2 °C, ...` from the latest round's readings."""
    parts = []
    for key, value in vitals.items():
        if isinstance(value, bool) or not isinstance(value, int | float | str):
            continue
        label, unit = _VITAL_LABELS.get(key, (key, ""))
        parts.append(f"{label} {value}{' ' + unit if unit else ''}")
    return ", ".join(parts)
