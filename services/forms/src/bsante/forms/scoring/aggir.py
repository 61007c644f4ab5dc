"""AGGIR grid: variable coding (adverbs S/T/C/H), sub-variable combination and GIR 1-6 scoring.

Sources (see the shared specs, french-ehealth.md section 1): CASF art. R.232-3 and annexe 2-1
(guide de remplissage, décret 2008-821); the group/rank algorithm published with décret 97-427
(JO 30/04/1997), as transcribed by the INED/INSEE SAS program GIRCALC2, E. Maeker's
AGGIR_Calculator and CareLink, which agree on all 6561 inputs.

Only the first 8 discriminant variables (COH ORI TOI HAB ALI ELI TRA DPI) enter the computation;
DPE (déplacements extérieurs), COM (communication à distance / alerter) and the 7 illustrative
variables are recorded on the grid but have no weight.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from enum import StrEnum
from functools import lru_cache
from typing import Annotated, Any, Final, TypeVar

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag


class Code(StrEnum):
    """Modality of an AGGIR (sub-)variable."""

    A = "A"  # fait seul, totalement, habituellement et correctement
    B = "B"  # fait partiellement
    C = "C"  # ne fait pas


class Variable(StrEnum):
    """The 8 weighted discriminant variables, in the official order of the computation."""

    COH = "COH"  # cohérence
    ORI = "ORI"  # orientation
    TOI = "TOI"  # toilette
    HAB = "HAB"  # habillage
    ALI = "ALI"  # alimentation
    ELI = "ELI"  # élimination
    TRA = "TRA"  # transferts
    DPI = "DPI"  # déplacements à l'intérieur


class Group(StrEnum):
    """Groups A..H of the published algorithm, evaluated in this order."""

    A = "A"
    B = "B"
    C = "C"
    D = "D"
    E = "E"
    F = "F"
    G = "G"
    H = "H"


_FROZEN: Final = ConfigDict(frozen=True, extra="forbid")


class Adverbs(BaseModel):
    """Answers to the four adverbs; True means "yes, the person does it this way".

    All four yes gives A, all four no gives C, anything in between gives B.
    """

    model_config = _FROZEN

    spontaneously: bool  # S : spontanément
    totally: bool  # T : totalement
    correctly: bool  # C : correctement
    habitually: bool  # H : habituellement

    @property
    def code(self) -> Code:
        return code_from_adverbs(self.spontaneously, self.totally, self.correctly, self.habitually)


def _answer_shape(value: Any) -> str:
    # Routing on the input's shape validates one union member instead of trying each in turn,
    # which makes grid validation several times faster.
    if isinstance(value, str):
        return "code"
    if isinstance(value, Adverbs) or (isinstance(value, dict) and "spontaneously" in value):
        return "adverbs"
    return "parts"


_BY_SHAPE: Final = Discriminator(
    _answer_shape,
    custom_error_type="aggir_answer",
    custom_error_message="expected a code A/B/C, the four adverbs, or the sub-variables",
)

Answer = Annotated[Annotated[Code, Tag("code")] | Annotated[Adverbs, Tag("adverbs")], _BY_SHAPE]
"""A (sub-)variable answered either directly (A/B/C) or by the four adverbs."""

_Parts = TypeVar("_Parts", bound=BaseModel)

WholeOrParts = Annotated[
    Annotated[_Parts, Tag("parts")]
    | Annotated[Code, Tag("code")]
    | Annotated[Adverbs, Tag("adverbs")],
    _BY_SHAPE,
]
"""A variable given by its sub-variables, or coded as a whole (directly or by adverbs)."""


def code_from_adverbs(
    spontaneously: bool, totally: bool, correctly: bool, habitually: bool
) -> Code:
    """Apply the adverb rule: 4 yes -> A, 4 no -> C, 1 to 3 no -> B."""
    yes = sum((spontaneously, totally, correctly, habitually))
    if yes == 4:
        return Code.A
    if yes == 0:
        return Code.C
    return Code.B


def answer_code(answer: Answer) -> Code:
    """Code of one (sub-)variable answer."""
    return answer if isinstance(answer, Code) else answer.code


def combine_coherence(communication: Code, behaviour: Code) -> Code:
    """COH from communication and comportement: AA -> A, any C -> C, else B.

    The 2008 guide introduced the split but the fact sheet could not verify the combination rule;
    this is CareLink's rule, also the one ELI uses.
    """
    return _a_if_all_a_c_if_any_c(communication, behaviour)


def combine_orientation(time: Code, space: Code) -> Code:
    """ORI from temps and espace: AA -> A, any C -> C, else B (same caveat as COH)."""
    return _a_if_all_a_c_if_any_c(time, space)


def combine_washing(upper: Code, lower: Code) -> Code:
    """TOI from haut and bas: AA -> A, CC -> C, else B."""
    return _a_if_all_a_c_if_all_c(upper, lower)


def combine_dressing(upper: Code, middle: Code, lower: Code) -> Code:
    """HAB from haut, moyen and bas: AAA -> A, CCC -> C, else B."""
    return _a_if_all_a_c_if_all_c(upper, middle, lower)


def combine_alimentation(serving: Code, eating: Code) -> Code:
    """ALI from se servir and manger: AA -> A; CC, BC, CB -> C; else B (AC and CA give B)."""
    if serving is Code.A and eating is Code.A:
        return Code.A
    if Code.A not in (serving, eating) and Code.C in (serving, eating):
        return Code.C
    return Code.B


def combine_elimination(urinary: Code, faecal: Code) -> Code:
    """ELI from urinaire and fécale: AA -> A, any C -> C, else B."""
    return _a_if_all_a_c_if_any_c(urinary, faecal)


def _a_if_all_a_c_if_any_c(*codes: Code) -> Code:
    if all(code is Code.A for code in codes):
        return Code.A
    if Code.C in codes:
        return Code.C
    return Code.B


def _a_if_all_a_c_if_all_c(*codes: Code) -> Code:
    if all(code is Code.A for code in codes):
        return Code.A
    if all(code is Code.C for code in codes):
        return Code.C
    return Code.B


class Coherence(BaseModel):
    """COH cohérence, split into communication and comportement since the 2008 guide."""

    model_config = _FROZEN

    communication: Answer
    behaviour: Answer

    @property
    def code(self) -> Code:
        return combine_coherence(answer_code(self.communication), answer_code(self.behaviour))


class Orientation(BaseModel):
    """ORI orientation, split into temps and espace since the 2008 guide."""

    model_config = _FROZEN

    time: Answer
    space: Answer

    @property
    def code(self) -> Code:
        return combine_orientation(answer_code(self.time), answer_code(self.space))


class Washing(BaseModel):
    """TOI toilette: haut (visage, tronc, membres supérieurs...) and bas."""

    model_config = _FROZEN

    upper: Answer
    lower: Answer

    @property
    def code(self) -> Code:
        return combine_washing(answer_code(self.upper), answer_code(self.lower))


class Dressing(BaseModel):
    """HAB habillage: haut, moyen and bas."""

    model_config = _FROZEN

    upper: Answer
    middle: Answer
    lower: Answer

    @property
    def code(self) -> Code:
        return combine_dressing(
            answer_code(self.upper), answer_code(self.middle), answer_code(self.lower)
        )


class Alimentation(BaseModel):
    """ALI alimentation: se servir and manger."""

    model_config = _FROZEN

    serving: Answer
    eating: Answer

    @property
    def code(self) -> Code:
        return combine_alimentation(answer_code(self.serving), answer_code(self.eating))


class Elimination(BaseModel):
    """ELI élimination: urinaire and fécale."""

    model_config = _FROZEN

    urinary: Answer
    faecal: Answer

    @property
    def code(self) -> Code:
        return combine_elimination(answer_code(self.urinary), answer_code(self.faecal))


Composite = Coherence | Orientation | Washing | Dressing | Alimentation | Elimination


def variable_code(value: Composite | Answer) -> Code:
    """Code of a discriminant variable given by sub-variables or as a whole."""
    if isinstance(value, Code):
        return value
    return value.code


class DiscriminantCodes(BaseModel):
    """The 8 weighted variable codes, the only input of the GIR computation."""

    model_config = _FROZEN

    coh: Code
    ori: Code
    toi: Code
    hab: Code
    ali: Code
    eli: Code
    tra: Code
    dpi: Code

    def as_tuple(self) -> tuple[Code, Code, Code, Code, Code, Code, Code, Code]:
        return (self.coh, self.ori, self.toi, self.hab, self.ali, self.eli, self.tra, self.dpi)

    def as_string(self) -> str:
        """Compact form in the official order, e.g. ``"CCBBBBBB"``."""
        return "".join(code.value for code in self.as_tuple())

    @classmethod
    def from_string(cls, codes: str) -> DiscriminantCodes:
        c = _parse_code_string(codes)
        return cls(coh=c[0], ori=c[1], toi=c[2], hab=c[3], ali=c[4], eli=c[5], tra=c[6], dpi=c[7])


class AggirGrid(BaseModel):
    """A completed AGGIR grid.

    Every discriminant variable is required because the grid is only valid when fully completed,
    even though DPE and COM carry no weight. A variable that has sub-variables may also be coded
    as a whole (direct A/B/C or adverbs), e.g. to transcribe a pre-2008 grid. Illustrative
    variables are optional and never used in the computation.
    """

    model_config = _FROZEN

    coherence: WholeOrParts[Coherence]  # COH
    orientation: WholeOrParts[Orientation]  # ORI
    washing: WholeOrParts[Washing]  # TOI
    dressing: WholeOrParts[Dressing]  # HAB
    alimentation: WholeOrParts[Alimentation]  # ALI
    elimination: WholeOrParts[Elimination]  # ELI
    transfers: Answer  # TRA
    indoor_mobility: Answer  # DPI déplacements à l'intérieur
    outdoor_mobility: Answer  # DPE déplacements à l'extérieur, no weight
    alerting: Answer  # COM communication à distance (alerter), no weight

    management: Answer | None = None  # gestion
    cooking: Answer | None = None  # cuisine
    housework: Answer | None = None  # ménage
    transport: Answer | None = None  # transports
    shopping: Answer | None = None  # achats
    treatment_follow_up: Answer | None = None  # suivi du traitement
    leisure: Answer | None = None  # activités de temps libre

    def code_tuple(self) -> tuple[Code, ...]:
        """The 8 weighted codes in the official order, without building a model (fast path)."""
        return (
            variable_code(self.coherence),
            variable_code(self.orientation),
            variable_code(self.washing),
            variable_code(self.dressing),
            variable_code(self.alimentation),
            variable_code(self.elimination),
            answer_code(self.transfers),
            answer_code(self.indoor_mobility),
        )

    def codes(self) -> DiscriminantCodes:
        c = self.code_tuple()
        return DiscriminantCodes(
            coh=c[0], ori=c[1], toi=c[2], hab=c[3], ali=c[4], eli=c[5], tra=c[6], dpi=c[7]
        )


class AggirResult(BaseModel):
    """Outcome of the GIR computation.

    ``group`` is the group whose score reached a threshold and ``group_score`` that score. When no
    threshold is reached (rang 13, GIR 6) both are None: no group "decided", and reporting H's
    sub-threshold score would suggest otherwise.
    """

    model_config = _FROZEN

    gir: Annotated[int, Field(ge=1, le=6)]
    rang: Annotated[int, Field(ge=1, le=13)]
    group: Group | None
    group_score: int | None
    codes: DiscriminantCodes


# Per group and variable: (coefficient when C, coefficient when B); A always weighs 0.
COEFFICIENTS: Final[Mapping[Group, Mapping[Variable, tuple[int, int]]]] = {
    Group.A: {
        Variable.COH: (2000, 0),
        Variable.ORI: (1200, 0),
        Variable.TOI: (40, 16),
        Variable.HAB: (40, 16),
        Variable.ALI: (60, 20),
        Variable.ELI: (100, 16),
        Variable.TRA: (800, 120),
        Variable.DPI: (200, 32),
    },
    Group.B: {
        Variable.COH: (1500, 320),
        Variable.ORI: (1200, 120),
        Variable.TOI: (40, 16),
        Variable.HAB: (40, 16),
        Variable.ALI: (60, 0),
        Variable.ELI: (100, 16),
        Variable.TRA: (800, 120),
        Variable.DPI: (-80, -40),
    },
    Group.C: {
        Variable.COH: (0, 0),
        Variable.ORI: (0, 0),
        Variable.TOI: (40, 16),
        Variable.HAB: (40, 16),
        Variable.ALI: (60, 20),
        Variable.ELI: (160, 20),
        Variable.TRA: (1000, 200),
        Variable.DPI: (400, 40),
    },
    Group.D: {
        Variable.COH: (0, 0),
        Variable.ORI: (0, 0),
        Variable.TOI: (0, 0),
        Variable.HAB: (0, 0),
        Variable.ALI: (2000, 200),
        Variable.ELI: (400, 200),
        Variable.TRA: (2000, 200),
        Variable.DPI: (200, 0),
    },
    Group.E: {
        Variable.COH: (400, 0),
        Variable.ORI: (400, 0),
        Variable.TOI: (400, 100),
        Variable.HAB: (400, 100),
        Variable.ALI: (400, 100),
        Variable.ELI: (800, 100),
        Variable.TRA: (800, 100),
        Variable.DPI: (200, 0),
    },
    Group.F: {
        Variable.COH: (200, 100),
        Variable.ORI: (200, 100),
        Variable.TOI: (500, 100),
        Variable.HAB: (500, 100),
        Variable.ALI: (500, 100),
        Variable.ELI: (500, 100),
        Variable.TRA: (500, 100),
        Variable.DPI: (200, 0),
    },
    Group.G: {
        Variable.COH: (150, 0),
        Variable.ORI: (150, 0),
        Variable.TOI: (300, 200),
        Variable.HAB: (300, 200),
        Variable.ALI: (500, 200),
        Variable.ELI: (500, 200),
        Variable.TRA: (400, 200),
        Variable.DPI: (200, 100),
    },
    Group.H: {
        Variable.COH: (0, 0),
        Variable.ORI: (0, 0),
        Variable.TOI: (3000, 2000),
        Variable.HAB: (3000, 2000),
        Variable.ALI: (3000, 2000),
        Variable.ELI: (3000, 2000),
        Variable.TRA: (1000, 2000),
        Variable.DPI: (1000, 1000),
    },
}

# Per group, (minimum score, rang) pairs tried from the highest threshold down.
THRESHOLDS: Final[Mapping[Group, tuple[tuple[int, int], ...]]] = {
    Group.A: ((4380, 1), (4140, 2), (3390, 3)),
    Group.B: ((2016, 4),),
    Group.C: ((1700, 5), (1432, 6)),
    Group.D: ((2400, 7),),
    Group.E: ((1200, 8),),
    Group.F: ((800, 9),),
    Group.G: ((650, 10),),
    Group.H: ((4000, 11), (2000, 12)),
}

LAST_RANG: Final = 13

RANG_TO_GIR: Final[Mapping[int, int]] = {
    1: 1,
    2: 2,
    3: 2,
    4: 2,
    5: 2,
    6: 2,
    7: 2,
    8: 3,
    9: 3,
    10: 4,
    11: 4,
    12: 5,
    13: 6,
}

_VARIABLES: Final = tuple(Variable)
_DIGIT: Final[Mapping[Code, int]] = {Code.A: 0, Code.B: 1, Code.C: 2}
_CODE_OF_CHAR: Final[Mapping[str, Code]] = {"A": Code.A, "B": Code.B, "C": Code.C}


def _parse_code_string(codes: str) -> tuple[Code, ...]:
    if len(codes) != len(_VARIABLES) or any(ch not in _CODE_OF_CHAR for ch in codes):
        raise ValueError(f"AGGIR codes must be 8 letters among A, B, C (got {codes!r})")
    return tuple(_CODE_OF_CHAR[ch] for ch in codes)


def group_score(group: Group, codes: Sequence[Code]) -> int:
    """Score of one group for the 8 codes given in the official order."""
    weights = COEFFICIENTS[group]
    total = 0
    for variable, code in zip(_VARIABLES, codes, strict=True):
        if code is Code.C:
            total += weights[variable][0]
        elif code is Code.B:
            total += weights[variable][1]
    return total


def _compute(codes: tuple[Code, ...]) -> AggirResult:
    discriminant = DiscriminantCodes(
        coh=codes[0],
        ori=codes[1],
        toi=codes[2],
        hab=codes[3],
        ali=codes[4],
        eli=codes[5],
        tra=codes[6],
        dpi=codes[7],
    )
    for group in Group:
        score = group_score(group, codes)
        for threshold, rang in THRESHOLDS[group]:
            if score >= threshold:
                return AggirResult(
                    gir=RANG_TO_GIR[rang],
                    rang=rang,
                    group=group,
                    group_score=score,
                    codes=discriminant,
                )
    return AggirResult(
        gir=RANG_TO_GIR[LAST_RANG], rang=LAST_RANG, group=None, group_score=None, codes=discriminant
    )


@lru_cache(maxsize=3**8)
def _result_for(codes: tuple[Code, ...]) -> AggirResult:
    # Only 6561 distinct inputs exist, so memoising turns bulk scoring into a dict lookup.
    return _compute(codes)


def score_codes(codes: str | Sequence[Code] | DiscriminantCodes) -> AggirResult:
    """Score from the 8 variable codes (official order COH ORI TOI HAB ALI ELI TRA DPI)."""
    key: tuple[Code, ...]
    if isinstance(codes, DiscriminantCodes):
        key = codes.as_tuple()
    elif isinstance(codes, str):
        key = _parse_code_string(codes)
    else:
        key = tuple(codes)
        if len(key) != len(_VARIABLES) or any(not isinstance(c, Code) for c in key):
            raise ValueError(f"AGGIR codes must be 8 Code values (got {codes!r})")
    return _result_for(key)


def score(grid: AggirGrid) -> AggirResult:
    """Score a completed grid."""
    return _result_for(grid.code_tuple())


def score_many(
    items: Iterable[AggirGrid | DiscriminantCodes | str | Sequence[Code]],
) -> list[AggirResult]:
    """Score many grids or code strings; results are shared immutable instances."""
    return [score(item) if isinstance(item, AggirGrid) else score_codes(item) for item in items]
