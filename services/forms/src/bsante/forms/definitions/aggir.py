"""AGGIR grid v1 (guide de remplissage 2008): the 10 discriminant and 7 illustrative variables.

Variables carry their official codes (COH, ORI, TOI...); sub-variables their French names. Each
answer is A/B/C or the four adverbs S/T/C/H; the GIR comes from `scoring.aggir`.
"""

from __future__ import annotations

from typing import Any, Final

from bsante.forms.engine import (
    JSON,
    Choice,
    FieldDef,
    FieldType,
    FormContext,
    FormDefinition,
    group,
)
from bsante.forms.scoring import aggir

# The accepted values, listed in the definition so that a client need not guess them.
CODES: Final = (
    Choice(code="A", label="Fait seul, totalement, habituellement et correctement"),
    Choice(code="B", label="Fait partiellement, ou non habituellement, ou non correctement"),
    Choice(code="C", label="Ne fait pas"),
)
ADVERBS: Final = (
    Choice(code="S", label="Spontanément"),
    Choice(code="T", label="Totalement"),
    Choice(code="C", label="Correctement"),
    Choice(code="H", label="Habituellement"),
)


def _answer(fid: str, label: str, *, required: bool = True) -> FieldDef:
    return FieldDef(
        id=fid,
        label=label,
        type=FieldType.AGGIR,
        required=required,
        choices=CODES,
        adverbs=ADVERBS,
        help="A, B or C; or the adverbs as an object {S, T, C, H} of true/false",
    )


def _split(fid: str, label: str, parts: list[tuple[str, str]]) -> FieldDef:
    return group(fid, label, [_answer(p, lbl) for p, lbl in parts], required=True)


FIELDS: Final = (
    _split(
        "COH", "Cohérence", [("communication", "Communication"), ("comportement", "Comportement")]
    ),
    _split("ORI", "Orientation", [("temps", "Dans le temps"), ("espace", "Dans l'espace")]),
    _split("TOI", "Toilette", [("haut", "Haut"), ("bas", "Bas")]),
    _split("HAB", "Habillage", [("haut", "Haut"), ("moyen", "Moyen"), ("bas", "Bas")]),
    _split("ALI", "Alimentation", [("se_servir", "Se servir"), ("manger", "Manger")]),
    _split("ELI", "Élimination", [("urinaire", "Urinaire"), ("fecale", "Fécale")]),
    _answer("TRA", "Transferts"),
    _answer("DPI", "Déplacements à l'intérieur"),
    _answer("DPE", "Déplacements à l'extérieur"),
    _answer("COM", "Communication à distance (alerter)"),
    _answer("GES", "Gestion", required=False),
    _answer("CUI", "Cuisine", required=False),
    _answer("MEN", "Ménage", required=False),
    _answer("TRS", "Transports", required=False),
    _answer("ACH", "Achats", required=False),
    _answer("SUI", "Suivi du traitement", required=False),
    _answer("TEM", "Activités de temps libre", required=False),
)


def _scored(value: Any) -> aggir.Code | aggir.Adverbs:
    if isinstance(value, str):
        return aggir.Code(value)
    return aggir.Adverbs(
        spontaneously=value["S"], totally=value["T"], correctly=value["C"], habitually=value["H"]
    )


def grid(answers: JSON) -> aggir.AggirGrid:
    """The scoring model of completed, checked answers."""
    a, s = answers, _scored
    return aggir.AggirGrid(
        coherence=aggir.Coherence(
            communication=s(a["COH"]["communication"]), behaviour=s(a["COH"]["comportement"])
        ),
        orientation=aggir.Orientation(time=s(a["ORI"]["temps"]), space=s(a["ORI"]["espace"])),
        washing=aggir.Washing(upper=s(a["TOI"]["haut"]), lower=s(a["TOI"]["bas"])),
        dressing=aggir.Dressing(
            upper=s(a["HAB"]["haut"]), middle=s(a["HAB"]["moyen"]), lower=s(a["HAB"]["bas"])
        ),
        alimentation=aggir.Alimentation(
            serving=s(a["ALI"]["se_servir"]), eating=s(a["ALI"]["manger"])
        ),
        elimination=aggir.Elimination(
            urinary=s(a["ELI"]["urinaire"]), faecal=s(a["ELI"]["fecale"])
        ),
        transfers=s(a["TRA"]),
        indoor_mobility=s(a["DPI"]),
        outdoor_mobility=s(a["DPE"]),
        alerting=s(a["COM"]),
    )


def _code(value: Any) -> aggir.Code:
    if isinstance(value, str):
        return aggir.Code(value)
    return aggir.code_from_adverbs(value["S"], value["T"], value["C"], value["H"])


def codes(answers: JSON) -> tuple[aggir.Code, ...]:
    """The 8 weighted codes of checked answers, in the official order (no model built)."""
    a, c = answers, _code
    return (
        aggir.combine_coherence(c(a["COH"]["communication"]), c(a["COH"]["comportement"])),
        aggir.combine_orientation(c(a["ORI"]["temps"]), c(a["ORI"]["espace"])),
        aggir.combine_washing(c(a["TOI"]["haut"]), c(a["TOI"]["bas"])),
        aggir.combine_dressing(c(a["HAB"]["haut"]), c(a["HAB"]["moyen"]), c(a["HAB"]["bas"])),
        aggir.combine_alimentation(c(a["ALI"]["se_servir"]), c(a["ALI"]["manger"])),
        aggir.combine_elimination(c(a["ELI"]["urinaire"]), c(a["ELI"]["fecale"])),
        c(a["TRA"]),
        c(a["DPI"]),
    )


def compute(answers: JSON, _: FormContext) -> JSON:
    result = aggir.score_codes(codes(answers))
    discriminant = result.codes
    evaluated = {"evaluated_on": answers["evaluation_date"]} if "evaluation_date" in answers else {}
    return {
        **evaluated,
        "gir": result.gir,
        "rang": result.rang,
        "group": result.group.value if result.group else None,
        "group_score": result.group_score,
        "codes": discriminant.as_string(),
        "variables": {
            v.value: c.value for v, c in zip(aggir.Variable, discriminant.as_tuple(), strict=True)
        },
    }


DEFINITION_V1: Final = FormDefinition(
    id="aggir",
    version=1,
    title="Grille AGGIR",
    description="Autonomie Gérontologie Groupes Iso-Ressources (CASF annexe 2-1): GIR 1 à 6",
    fields=FIELDS,
    compute=compute,
    notes=(
        "Only COH ORI TOI HAB ALI ELI TRA DPI weigh in the GIR; DPE, COM and the illustrative "
        "variables are recorded only.",
    ),
)

# v2: the date of the evaluation, which cannot be in the future (v1 dated it by completion).
DEFINITION: Final = FormDefinition(
    id="aggir",
    version=2,
    title=DEFINITION_V1.title,
    description=DEFINITION_V1.description,
    fields=(
        FieldDef(
            id="evaluation_date",
            label="Date de l'évaluation",
            type=FieldType.DATE,
            past=True,
            help="Par défaut, le jour où la grille est complétée",
        ),
        *FIELDS,
    ),
    compute=compute,
    notes=DEFINITION_V1.notes,
)
