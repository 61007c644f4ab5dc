"""The demo templates seeded for the demo structures: compte rendu de consultation, lettre de
liaison, compte rendu d'évaluation AGGIR, and the DLU built from the DLU form's facts."""

from __future__ import annotations

from typing import Any

from bsante.documents.domain import TemplateDraft


def _f(name: str) -> dict[str, Any]:
    return {"kind": "field", "field": name}


def _t(text: str, **style: bool) -> dict[str, Any]:
    return {"text": text, **style}


def _p(*runs: dict[str, Any]) -> dict[str, Any]:
    return {"type": "paragraph", "runs": list(runs)}


_PATIENT = _p(
    _t("Patient : ", bold=True),
    _f("patient.birth_name"),
    _t(" "),
    _f("patient.first_given_name"),
    _t(", né(e) le "),
    _f("patient.birth_date"),
    _t(" — INS "),
    _f("patient.ins"),
)
_SIGNATURE = _p(
    _f("author.name"), _t(", "), _f("author.profession"), _t(" — RPPS "), _f("author.rpps")
)

DEMO_TEMPLATES: dict[str, TemplateDraft] = {
    "consultation": TemplateDraft(
        name="Compte rendu de consultation",
        type_code="11488-4",
        class_code="10",
        title="Compte rendu de consultation",
        body={
            "sections": [
                {
                    "title": "Motif de consultation",
                    "code": "29299-5",
                    "blocks": [_PATIENT, _p(_t("Motif : "))],
                },
                {"title": "Examen clinique", "code": "29545-1", "blocks": [
                    _p(_t("Tension artérielle : "), _f("forms.latest_bp"), _t(", pouls : "),
                       _f("forms.latest_pulse"), _t(", température : "),
                       _f("forms.latest_temperature")),
                    _p(_t("{% if forms.latest_weight %}Poids : {{ forms.latest_weight }} "
                          "({{ forms.latest_weight_date }}){% endif %}")),
                ]},
                {"title": "Conclusion", "blocks": [_p(_t("")), _SIGNATURE]},
            ]
        },
    ),
    "lettre_liaison": TemplateDraft(
        name="Lettre de liaison",
        type_code="11490-0",
        class_code="10",
        title="Lettre de liaison",
        body={
            "sections": [
                {
                    "title": "Lettre de liaison",
                    "blocks": [
                        _p(_f("structure.name"), _t(", le "), _f("context.document_date")),
                        _p(_t("Cher confrère, chère consœur,")),
                        _PATIENT,
                        _p(_t("Dernier GIR : "), _f("forms.latest_gir"), _t(" ("),
                           _f("forms.latest_gir_date"), _t(")")),
                        _p(_t("Traitements en cours : ")),
                        _SIGNATURE,
                    ],
                }
            ]
        },
    ),
    "aggir": TemplateDraft(
        name="Compte rendu d'évaluation AGGIR",
        type_code="11488-4",
        class_code="10",
        title="Compte rendu d'évaluation de l'autonomie (AGGIR)",
        body={
            "sections": [
                {
                    "title": "Évaluation de l'autonomie",
                    "blocks": [
                        _PATIENT,
                        {
                            "type": "table",
                            "header": [{"runs": [_t("Évaluation")]}, {"runs": [_t("Résultat")]},
                                       {"runs": [_t("Date")]}],
                            "rows": [
                                [{"runs": [_t("GIR (grille AGGIR)")]},
                                 {"runs": [_f("forms.latest_gir")]},
                                 {"runs": [_f("forms.latest_gir_date")]}],
                                [{"runs": [_t("MMS (sur 30)")]},
                                 {"runs": [_f("forms.latest_mms")]},
                                 {"runs": [_f("forms.latest_mms_date")]}],
                            ],
                        },
                        _p(_t("Commentaire : ")),
                        _SIGNATURE,
                    ],
                }
            ]
        },
    ),
    "dlu": TemplateDraft(
        name="Dossier de liaison d'urgence (DLU)",
        type_code="74207-2",
        class_code="11",
        title="Dossier de liaison d'urgence",
        body={
            "sections": [
                {
                    "title": "Identification",
                    "blocks": [
                        _PATIENT,
                        _p(_t("Adresse : "), _f("patient.address")),
                        _p(_t("Établissement : "), _f("structure.name"), _t(" — FINESS "),
                           _f("structure.finess"), _t(" — "), _f("structure.phone")),
                    ],
                },
                {
                    "title": "État du patient",
                    "blocks": [
                        {"type": "bulleted_list", "items": [
                            {"runs": [_t("GIR : "), _f("forms.latest_gir"), _t(" du "),
                                      _f("forms.latest_gir_date")]},
                            {"runs": [_t("Dernières constantes : TA "), _f("forms.latest_bp"),
                                      _t(", pouls "), _f("forms.latest_pulse"), _t(", SpO2 "),
                                      _f("forms.latest_spo2")]},
                        ]},
                        _p(_t("Antécédents, allergies, traitements : voir le formulaire DLU.")),
                    ],
                },
                {"title": "Rédacteur", "blocks": [_SIGNATURE]},
            ]
        },
    ),
}  # fmt: skip
