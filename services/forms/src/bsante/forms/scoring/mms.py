"""MMS (Mini-Mental State), version consensuelle GRECO: item scoring, total /30 and interpretation.

Sources (see the shared specs, french-ehealth.md section 2): Derouesné et al., Presse Méd
1999;28:1141 for the items; Kalafat, Hugonot-Diener, Poitrenaud, Rev Neuropsychol 2003;13(2):209
for the norms, as quoted by wikimedecine.fr (the primary paper could not be read).
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import Annotated, Final

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, model_validator

MAX_TOTAL: Final = 30


class MmsItem(StrEnum):
    """Scored items of the GRECO version, in the order of administration."""

    ORIENTATION_TIME = "orientation_time"
    ORIENTATION_SPACE = "orientation_space"
    REGISTRATION = "registration"
    ATTENTION_CALCULATION = "attention_calculation"
    RECALL = "recall"
    NAMING = "naming"
    REPETITION = "repetition"
    THREE_STAGE_COMMAND = "three_stage_command"
    READING = "reading"
    WRITING = "writing"
    COPYING = "copying"


# Each point of each item, so that per-point answers can be checked against the form.
ITEM_POINTS: Final[Mapping[MmsItem, tuple[str, ...]]] = {
    MmsItem.ORIENTATION_TIME: ("année", "saison", "mois", "jour du mois", "jour de la semaine"),
    MmsItem.ORIENTATION_SPACE: ("hôpital ou cabinet", "ville", "département", "région", "étage"),
    MmsItem.REGISTRATION: ("cigare", "fleur", "porte"),
    MmsItem.ATTENTION_CALCULATION: ("93", "86", "79", "72", "65"),
    MmsItem.RECALL: ("cigare", "fleur", "porte"),
    MmsItem.NAMING: ("crayon", "montre"),
    MmsItem.REPETITION: ("« Pas de mais, de si, ni de et »",),
    MmsItem.THREE_STAGE_COMMAND: (
        "prend la feuille de la main droite",
        "la plie en deux",
        "la jette par terre",
    ),
    MmsItem.READING: ("« Fermez les yeux »",),
    MmsItem.WRITING: ("écrit une phrase",),
    MmsItem.COPYING: ("copie des deux pentagones",),
}

MAX_POINTS: Final[Mapping[MmsItem, int]] = {item: len(p) for item, p in ITEM_POINTS.items()}

LANGUAGE_ITEMS: Final = (
    MmsItem.NAMING,
    MmsItem.REPETITION,
    MmsItem.THREE_STAGE_COMMAND,
    MmsItem.READING,
    MmsItem.WRITING,
)

ItemAnswer = StrictInt | tuple[StrictBool, ...]
"""Either the points obtained for the item, or one correct/incorrect flag per point, in order."""


class MmsAnswers(BaseModel):
    """Answers to every scored item.

    MONDE spelled backwards is asked in the GRECO version but is not part of the total, so it has
    no field here. Flags are strict booleans and points strict integers so that ``True`` is never
    silently read as 1 point.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    orientation_time: ItemAnswer
    orientation_space: ItemAnswer
    registration: ItemAnswer
    attention_calculation: ItemAnswer
    recall: ItemAnswer
    naming: ItemAnswer
    repetition: ItemAnswer
    three_stage_command: ItemAnswer
    reading: ItemAnswer
    writing: ItemAnswer
    copying: ItemAnswer

    @model_validator(mode="after")
    def _within_bounds(self) -> MmsAnswers:
        for item in MmsItem:
            answer: ItemAnswer = getattr(self, item.value)
            maximum = MAX_POINTS[item]
            if isinstance(answer, tuple):
                if len(answer) != maximum:
                    raise ValueError(
                        f"{item.value}: expected {maximum} correct/incorrect flags "
                        f"({', '.join(ITEM_POINTS[item])}), got {len(answer)}"
                    )
            elif not 0 <= answer <= maximum:
                raise ValueError(f"{item.value}: {answer} points is outside 0..{maximum}")
        return self

    def points(self, item: MmsItem) -> int:
        answer: ItemAnswer = getattr(self, item.value)
        return sum(answer) if isinstance(answer, tuple) else answer

    @property
    def language(self) -> int:
        """Langage subtotal (/8)."""
        return sum(self.points(item) for item in LANGUAGE_ITEMS)

    @property
    def total(self) -> int:
        """Total score (/30)."""
        return sum(self.points(item) for item in MmsItem)


class EducationLevel(StrEnum):
    """Cultural level (niveau socio-culturel, NSC) bands of the GRECO norms.

    The norms use the Poitrenaud NSC scale; the fact sheet groups it as <3, 3-5 and 6 (>= bac).
    Levels above 6 (higher education) are grouped with 6.
    """

    NO_DIPLOMA = "no_diploma"  # NSC 1-2 : sans diplôme, pas de certificat d'études
    PRIMARY = "primary"  # NSC 3-5 : certificat d'études primaires (CEP) à brevet/CAP
    BACCALAUREATE = "baccalaureate"  # NSC >= 6 : baccalauréat et au-delà

    @classmethod
    def from_cultural_level(cls, nsc: int) -> EducationLevel:
        """Band of an NSC value (integer >= 1)."""
        if isinstance(nsc, bool) or not isinstance(nsc, int) or nsc < 1:
            raise ValueError(f"cultural level (NSC) must be an integer >= 1, got {nsc!r}")
        if nsc < 3:
            return cls.NO_DIPLOMA
        if nsc <= 5:
            return cls.PRIMARY
        return cls.BACCALAUREATE


class AgeBand(StrEnum):
    """Age bands of the GRECO norms."""

    UNDER_80 = "<80"
    FROM_80_TO_84 = "80-84"
    FROM_85 = ">=85"

    @classmethod
    def of(cls, age: int) -> AgeBand:
        if age < 80:
            return cls.UNDER_80
        if age < 85:
            return cls.FROM_80_TO_84
        return cls.FROM_85


# 5th percentile of healthy subjects (Kalafat 2003), by age band then education level.
CUTOFFS: Final[Mapping[AgeBand, Mapping[EducationLevel, int]]] = {
    AgeBand.UNDER_80: {
        EducationLevel.NO_DIPLOMA: 22,
        EducationLevel.PRIMARY: 23,
        EducationLevel.BACCALAUREATE: 26,
    },
    AgeBand.FROM_80_TO_84: {
        EducationLevel.NO_DIPLOMA: 21,
        EducationLevel.PRIMARY: 22,
        EducationLevel.BACCALAUREATE: 25,
    },
    AgeBand.FROM_85: {
        EducationLevel.NO_DIPLOMA: 20,
        EducationLevel.PRIMARY: 21,
        EducationLevel.BACCALAUREATE: 24,
    },
}


class Severity(StrEnum):
    """Commonly used severity bands of a pathological score."""

    MILD = "léger"  # >= 20
    MODERATE = "modéré"  # 10-19
    SEVERE = "sévère"  # < 10


def severity_band(total: int) -> Severity:
    """Band of a total score, regardless of the norms: >=20 léger, 10-19 modéré, <10 sévère."""
    _check_total(total)
    if total >= 20:
        return Severity.MILD
    if total >= 10:
        return Severity.MODERATE
    return Severity.SEVERE


class MmsInterpretation(BaseModel):
    """Total read against the norms of the subject's age and education level."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    total: Annotated[int, Field(ge=0, le=MAX_TOTAL)]
    age_band: AgeBand
    education: EducationLevel
    cutoff: int
    pathological: bool
    severity: Severity | None


# The norms come from healthy 50-89 year-olds; younger adults get the <80 cut-offs and older
# people the >=85 ones, an extrapolation the clinician must keep in mind. Not meant for children.
MIN_AGE: Final = 18
MAX_AGE: Final = 130


def cutoff(age: int, education: EducationLevel) -> int:
    """Pathological cut-off (5th percentile) for this age and education level."""
    _check_age(age)
    return CUTOFFS[AgeBand.of(age)][education]


def interpret(total: int, age: int, education: EducationLevel) -> MmsInterpretation:
    """Compare a total with the GRECO norms.

    The cut-offs are 5th percentiles of healthy subjects: a score *at* the 5th percentile is still
    within the healthy distribution, so the score is pathological only when strictly below it
    (``total < cutoff``), following the usual neuropsychological convention "inférieur au
    5e percentile". Kalafat 2003 could not be read to confirm this; revisit if it says otherwise.
    ``severity`` is given only for a pathological score: a mild-dementia band on a normal score
    would be misleading.
    """
    _check_total(total)
    threshold = cutoff(age, education)
    pathological = total < threshold
    return MmsInterpretation(
        total=total,
        age_band=AgeBand.of(age),
        education=education,
        cutoff=threshold,
        pathological=pathological,
        severity=severity_band(total) if pathological else None,
    )


def _check_total(total: int) -> None:
    if isinstance(total, bool) or not isinstance(total, int) or not 0 <= total <= MAX_TOTAL:
        raise ValueError(f"MMS total must be an integer in 0..{MAX_TOTAL}, got {total!r}")


def _check_age(age: int) -> None:
    if isinstance(age, bool) or not isinstance(age, int) or not MIN_AGE <= age <= MAX_AGE:
        raise ValueError(f"age must be an integer in {MIN_AGE}..{MAX_AGE} years, got {age!r}")
