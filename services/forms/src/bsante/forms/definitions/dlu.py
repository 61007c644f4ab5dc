"""Dossier de liaison d'urgence (DLU) v1, HAS/ANESM 2015, fields of the CI-SIS DLU-EHPAD volet.

Header persons (patient, legal representative, person to notify, trusted person, médecin
traitant, 24h contact), then the sections: preferred hospital, current conditions, history,
allergies, long-term treatments, palliative care, advance directives, observations (SNOMED CT,
yes/no), BMR, vaccinations, comments, and the checklist of annexed documents (JDV_ChecklistDLU).
Prefilled from the patient record and the latest completed AGGIR.
"""

from __future__ import annotations

from typing import Final

from bsante.chassis.text import fold
from bsante.forms.engine import (
    JSON,
    Choice,
    FieldDef,
    FieldError,
    FieldType,
    FormContext,
    FormDefinition,
    PatientFacts,
    boolean,
    choice,
    group,
    text,
)

SNOMED_CT: Final = "2.16.840.1.113883.6.96"
CHECKLIST_SYSTEM: Final = "1.2.250.1.213.1.1.4.322"

# (field id, SNOMED CT code, label) as in the DLU-EHPAD example (JDV_ObservationEtatPatient).
OBSERVATIONS: Final = (
    ("can_communicate", "288575003", "Capable de communiquer"),
    ("oriented", "247663003", "Bien orienté(e)"),
    ("disoriented", "62476001", "Désorienté(e)"),
    ("agitation", "24199005", "Agitation"),
    ("non_compliant", "248043008", "Comportement non conciliant"),
    ("suicidal", "425104003", "Comportement suicidaire"),
    ("visual_impairment", "397540003", "Malvoyance"),
    ("hearing_loss", "15188001", "Perte auditive"),
    ("language_disorder", "62305002", "Trouble du langage"),
    ("falls", "161898004", "Chutes"),
    ("wandering", "50239007", "Errance"),
    ("runaway", "248046000", "Fugue"),
    ("restraint", "386423001", "Contention physique"),
    ("pressure_ulcer_risk", "285304000", "À risque d'escarre"),
    ("swallowing_disorder", "249492002", "Fausse route alimentaire"),
)

# JDV_ChecklistDLU_CISIS (1.2.250.1.213.1.1.5.71).
CHECKLIST: Final = (
    ("DLU_006", "Attestation de la carte vitale"),
    ("DLU_007", "Attestation de mutuelle"),
    ("DLU_008", "Photocopie de la carte d'identité"),
    ("DLU_009", "Grille AGGIR (la plus récente)"),
    ("DLU_010", "Photocopie des directives anticipées"),
    ("DLU_011", "Photocopies des ordonnances en cours"),
    ("DLU_012", "Tableau d'administration des médicaments"),
    (
        "DLU_013",
        "Résultats récents de biologie (1 à 3 mois) avec clairance de la créatinine et "
        "INR (si AVK)",
    ),
    ("DLU_014", "CR de la dernière hospitalisation"),
    ("DLU_015", "Fiche BMR (bactérie multi-résistante)"),
    (
        "DLU_016",
        "Fiche ou carnet de suivi des soins (glycémie, pansements, perfusion, "
        "ventilation, nutrition, etc.)",
    ),
    ("DLU_017", "Carnet de suivi du pacemaker ou du défibrillateur implantable"),
    ("DLU_018", "Carte de groupe sanguin (si à jour)"),
    ("DLU_019", "Liste des capacités en soins de l'EHPAD"),
)
AGGIR_ANNEX: Final = "DLU_009"


def _person(fid: str, label: str, *, relationship: bool = True) -> FieldDef:
    members = [text("name", "Nom et prénom", max_length=200)]
    if relationship:
        members.append(text("relationship", "Lien", max_length=100))
    members.append(text("phone", "Téléphone", max_length=30))
    return group(fid, label, members, personal=True)


FIELDS: Final = (
    group(
        "patient",
        "Patient",
        [
            text("birth_name", "Nom de naissance", required=True, max_length=100),
            text("first_name", "Prénom", required=True, max_length=100),
            text("used_name", "Nom d'usage", max_length=100),
            choice(
                "sex",
                "Sexe",
                [("M", "Masculin"), ("F", "Féminin"), ("I", "Indéterminé")],
                required=True,
            ),
            FieldDef(
                id="birth_date", label="Date de naissance", type=FieldType.DATE, required=True
            ),
            text("address", "Adresse", max_length=300),
            text("phone", "Téléphone", max_length=30),
        ],
        required=True,
        personal=True,
    ),
    group(
        "legal_representative",
        "Représentant légal",
        [
            text("name", "Nom et prénom", max_length=200),
            choice(
                "measure",
                "Mesure",
                [
                    ("tutelle", "Tutelle"),
                    ("curatelle", "Curatelle"),
                    ("habilitation_familiale", "Habilitation familiale"),
                    ("sauvegarde", "Sauvegarde de justice"),
                ],
            ),
            text("phone", "Téléphone", max_length=30),
        ],
        personal=True,
    ),
    _person("person_to_notify", "Personne à prévenir"),
    _person("trusted_person", "Personne de confiance"),
    group(
        "attending_physician",
        "Médecin traitant",
        [
            text("name", "Nom", required=True, max_length=200),
            text("phone", "Téléphone", max_length=30),
        ],
        required=True,
    ),
    group(
        "coordinating_physician",
        "Médecin coordonnateur",
        [text("name", "Nom", max_length=200), text("phone", "Téléphone", max_length=30)],
    ),
    text("contact_24h", "Contact de l'établissement 24h/24", required=True, max_length=30),
    text("preferred_hospital", "Établissement de santé de préférence", max_length=300),
    text("active_conditions", "Pathologies en cours", required=True),
    text("medical_history", "Antécédents"),
    text(
        "allergies",
        "Allergies et hypersensibilités",
        required=True,
        help="« aucune connue » si aucune",
    ),
    text("long_term_treatments", "Traitements au long cours", required=True),
    group(
        "palliative_care",
        "Soins palliatifs",
        [boolean("in_progress", "Soins palliatifs en cours"), text("details", "Précisions")],
    ),
    group(
        "advance_directives",
        "Directives anticipées",
        [boolean("written", "Rédigées"), text("location", "Lieu de conservation")],
    ),
    group(
        "observations",
        "Observations",
        [
            FieldDef(id=fid, label=label, type=FieldType.BOOLEAN, code=f"{SNOMED_CT}|{code}")
            for fid, code, label in OBSERVATIONS
        ],
    ),
    group(
        "bmr",
        "Bactérie multirésistante (BMR)",
        [boolean("carrier", "Porteur de BMR"), text("details", "Précisions")],
    ),
    text("vaccinations", "Vaccinations"),
    group(
        "autonomy",
        "Autonomie (dernière grille AGGIR)",
        [
            FieldDef(id="gir", label="GIR", type=FieldType.INTEGER, minimum=1, maximum=6),
            FieldDef(id="evaluated_on", label="Date de l'évaluation", type=FieldType.DATE),
            text("aggir_submission_id", "Grille AGGIR de référence", max_length=40),
        ],
    ),
    text("comments", "Commentaires"),
    FieldDef(
        id="annexes",
        label="Documents annexés au DLU",
        type=FieldType.MULTI_CHOICE,
        choices=tuple(Choice(code=c, label=lbl, system=CHECKLIST_SYSTEM) for c, lbl in CHECKLIST),
    ),
)


def _identity(patient: PatientFacts) -> JSON:
    return {
        "birth_name": patient.birth_name,
        "first_name": patient.first_name,
        "used_name": patient.used_name,
        "sex": patient.sex,
        "birth_date": patient.birth_date.isoformat() if patient.birth_date else None,
    }


def prefill(context: FormContext) -> JSON:
    answers: JSON = {}
    patient = context.patient
    if patient is not None:
        block = {
            **_identity(patient),
            "address": patient.address,
            "phone": patient.phone or patient.mobile,
        }
        answers["patient"] = {k: v for k, v in block.items() if v is not None}
        if patient.attending_physician:
            answers["attending_physician"] = {"name": patient.attending_physician}
    if context.latest_aggir is not None:
        submission_id, completed_at, results = context.latest_aggir
        answers["autonomy"] = {
            "gir": results["gir"],
            "evaluated_on": results.get("evaluated_on") or completed_at.date().isoformat(),
            "aggir_submission_id": submission_id,
        }
        answers["annexes"] = [AGGIR_ANNEX]
    return answers


def rules(answers: JSON, context: FormContext) -> list[FieldError]:
    errors: list[FieldError] = []
    observed = answers.get("observations", {})
    if observed.get("oriented") and observed.get("disoriented"):
        errors.append(
            FieldError("answers.observations.disoriented", "contradicts « bien orienté »")
        )
    # The DLU travels with the patient to the emergency room: its identity block must be
    # the record's (identitovigilance), not a retyped variant.
    if context.patient is not None:
        typed = answers.get("patient", {})
        for name, known in _identity(context.patient).items():
            if known is not None and fold(str(typed.get(name) or "")) != fold(str(known)):
                errors.append(
                    FieldError(
                        f"answers.patient.{name}",
                        "differs from the patient record: correct the record, not the DLU",
                        "identity_mismatch",
                    )
                )
    return errors


def compute(answers: JSON, _: FormContext) -> JSON:
    observed = answers.get("observations", {})
    return {
        "gir": answers.get("autonomy", {}).get("gir"),
        "observed": [code for fid, code, _ in OBSERVATIONS if observed.get(fid)],
        "annexes": answers.get("annexes", []),
    }


DEFINITION: Final = FormDefinition(
    id="dlu",
    version=1,
    title="Dossier de liaison d'urgence (DLU)",
    description="HAS/ANESM 2015, modèle CI-SIS DLU-EHPAD; prérempli depuis le dossier patient "
    "et la dernière grille AGGIR",
    fields=FIELDS,
    rules=rules,
    compute=compute,
    prefill=prefill,
)
