"""Recueil de données d'entrée v1: the admission nursing assessment, by Virginia Henderson's needs.

Structured items the team sorts and charts on (provenance, mobility, continence, diet, weight and
height, legal protection), then one free note per fundamental need.
"""

from __future__ import annotations

from typing import Final

from bsante.forms.engine import (
    JSON,
    FieldDef,
    FieldError,
    FieldType,
    FormContext,
    FormDefinition,
    boolean,
    choice,
    group,
    text,
)

HENDERSON_NEEDS: Final = [
    ("respirer", "Respirer"),
    ("boire_manger", "Boire et manger"),
    ("eliminer", "Éliminer"),
    ("se_mouvoir", "Se mouvoir et maintenir une bonne posture"),
    ("dormir", "Dormir et se reposer"),
    ("se_vetir", "Se vêtir et se dévêtir"),
    ("temperature", "Maintenir la température du corps"),
    ("proprete", "Être propre et protéger ses téguments"),
    ("securite", "Éviter les dangers"),
    ("communiquer", "Communiquer"),
    ("croyances", "Agir selon ses croyances et ses valeurs"),
    ("s_occuper", "S'occuper en vue de se réaliser"),
    ("se_recreer", "Se récréer"),
    ("apprendre", "Apprendre"),
]

FIELDS: Final = (
    FieldDef(id="admission_date", label="Date d'entrée", type=FieldType.DATE, required=True),
    choice(
        "provenance",
        "Provenance",
        [
            ("domicile", "Domicile"),
            ("hopital", "Hôpital (court séjour)"),
            ("ssr", "Soins de suite et de réadaptation"),
            ("ehpad", "Autre EHPAD"),
            ("autre", "Autre"),
        ],
        required=True,
    ),
    text("reason", "Motif d'entrée", required=True),
    text("medical_history", "Antécédents"),
    text("allergies", "Allergies", help="« aucune connue » si aucune"),
    text("treatments", "Traitements en cours"),
    choice(
        "mobility",
        "Mobilité",
        [
            ("autonome", "Autonome"),
            ("aide_technique", "Avec aide technique (canne, déambulateur)"),
            ("aide_humaine", "Avec aide humaine"),
            ("fauteuil", "Fauteuil roulant"),
            ("alite", "Alité(e)"),
        ],
        required=True,
    ),
    choice(
        "continence",
        "Continence",
        [
            ("continent", "Continent(e)"),
            ("incontinence_urinaire", "Incontinence urinaire"),
            ("incontinence_fecale", "Incontinence fécale"),
            ("incontinence_mixte", "Incontinence mixte"),
        ],
    ),
    choice(
        "diet_texture",
        "Texture des repas",
        [("normale", "Normale"), ("hachee", "Hachée"), ("mixee", "Mixée"), ("lisse", "Lisse")],
    ),
    boolean("swallowing_disorder", "Troubles de la déglutition"),
    FieldDef(
        id="weight_kg", label="Poids", type=FieldType.NUMBER, minimum=0.3, maximum=500, unit="kg"
    ),
    FieldDef(
        id="height_cm", label="Taille", type=FieldType.NUMBER, minimum=30, maximum=250, unit="cm"
    ),
    group(
        "sensory",
        "Appareillages",
        [
            boolean("glasses", "Lunettes"),
            boolean("hearing_aid", "Appareil auditif"),
            boolean("dentures", "Prothèse dentaire"),
        ],
    ),
    choice(
        "legal_protection",
        "Mesure de protection",
        [
            ("aucune", "Aucune"),
            ("sauvegarde", "Sauvegarde de justice"),
            ("curatelle", "Curatelle"),
            ("tutelle", "Tutelle"),
            ("habilitation_familiale", "Habilitation familiale"),
        ],
    ),
    boolean("advance_directives", "Directives anticipées rédigées"),
    text("trusted_person", "Personne de confiance", max_length=300, personal=True),
    group(
        "needs",
        "Besoins fondamentaux (V. Henderson)",
        [text(code, label) for code, label in HENDERSON_NEEDS],
    ),
)


def rules(answers: JSON, context: FormContext) -> list[FieldError]:
    if answers.get("admission_date", "") > context.at.date().isoformat():
        return [FieldError("answers.admission_date", "is in the future")]
    return []


def compute(answers: JSON, _: FormContext) -> JSON:
    weight, height = answers.get("weight_kg"), answers.get("height_cm")
    bmi = round(weight / (height / 100) ** 2, 1) if weight and height else None
    needs = answers.get("needs", {})
    return {"bmi": bmi, "needs_documented": sum(1 for v in needs.values() if v)}


DEFINITION: Final = FormDefinition(
    id="recueil",
    version=1,
    title="Recueil de données d'entrée",
    description="Données recueillies à l'admission, organisées selon les 14 besoins",
    fields=FIELDS,
    rules=rules,
    compute=compute,
)
