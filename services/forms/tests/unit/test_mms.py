"""Unit tests of the MMS GRECO: item bounds, totals, norms by age and education, severity."""

from __future__ import annotations

import itertools

import pytest
from pydantic import ValidationError

from bsante.forms.scoring.mms import (
    ITEM_POINTS,
    LANGUAGE_ITEMS,
    MAX_POINTS,
    MAX_TOTAL,
    AgeBand,
    EducationLevel,
    MmsAnswers,
    MmsItem,
    Severity,
    cutoff,
    interpret,
    severity_band,
)

FULL_MARKS: dict[str, object] = {item.value: MAX_POINTS[item] for item in MmsItem}
ZERO: dict[str, object] = {item.value: 0 for item in MmsItem}


def test_item_structure_matches_the_greco_version() -> None:
    assert dict(MAX_POINTS) == {
        MmsItem.ORIENTATION_TIME: 5,
        MmsItem.ORIENTATION_SPACE: 5,
        MmsItem.REGISTRATION: 3,
        MmsItem.ATTENTION_CALCULATION: 5,
        MmsItem.RECALL: 3,
        MmsItem.NAMING: 2,
        MmsItem.REPETITION: 1,
        MmsItem.THREE_STAGE_COMMAND: 3,
        MmsItem.READING: 1,
        MmsItem.WRITING: 1,
        MmsItem.COPYING: 1,
    }
    assert sum(MAX_POINTS.values()) == MAX_TOTAL == 30
    assert sum(MAX_POINTS[item] for item in LANGUAGE_ITEMS) == 8
    assert ITEM_POINTS[MmsItem.ATTENTION_CALCULATION] == ("93", "86", "79", "72", "65")


def test_full_and_zero_totals() -> None:
    full = MmsAnswers.model_validate(FULL_MARKS)
    assert full.total == 30
    assert full.language == 8
    assert MmsAnswers.model_validate(ZERO).total == 0


def test_per_point_flags_are_counted() -> None:
    answers = MmsAnswers.model_validate(
        FULL_MARKS
        | {
            "orientation_time": [True, True, False, True, False],
            "attention_calculation": [True, False, False, True, True],
            "recall": [False, False, True],
            "naming": [True, True],
            "three_stage_command": [True, False, True],
            "copying": [False],
        }
    )
    assert answers.points(MmsItem.ORIENTATION_TIME) == 3
    assert answers.points(MmsItem.ATTENTION_CALCULATION) == 3
    assert answers.points(MmsItem.RECALL) == 1
    assert answers.language == 7
    assert answers.total == 30 - 2 - 2 - 2 - 1 - 1


def test_flags_and_points_can_be_mixed_per_item() -> None:
    answers = MmsAnswers.model_validate(ZERO | {"registration": [True, True, True], "reading": 1})
    assert answers.total == 4


def test_json_list_input() -> None:
    payload = '{"orientation_time": [true, true, true, true, true], ' + ", ".join(
        f'"{item.value}": 0' for item in MmsItem if item is not MmsItem.ORIENTATION_TIME
    )
    assert MmsAnswers.model_validate_json(payload + "}").total == 5


@pytest.mark.parametrize("item", list(MmsItem))
def test_each_item_bounds(item: MmsItem) -> None:
    maximum = MAX_POINTS[item]
    for points in range(maximum + 1):
        assert MmsAnswers.model_validate(ZERO | {item.value: points}).points(item) == points
    for bad in (-1, maximum + 1):
        with pytest.raises(ValidationError, match=item.value):
            MmsAnswers.model_validate(ZERO | {item.value: bad})
    for length in (maximum - 1, maximum + 1):
        with pytest.raises(ValidationError, match=f"expected {maximum} correct/incorrect flags"):
            MmsAnswers.model_validate(ZERO | {item.value: [True] * length})


@pytest.mark.parametrize(
    "bad",
    [
        {"copying": True},  # a bare boolean is not a point count
        {"orientation_time": [1, 1, 1, 1, 1]},  # flags must be booleans
        {"recall": "3"},
        {"recall": 2.0},
        {"monde": 5},  # MONDE backwards is not scored in the GRECO version
    ],
)
def test_invalid_values_are_rejected(bad: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        MmsAnswers.model_validate(ZERO | bad)


def test_missing_item_is_rejected() -> None:
    data = dict(ZERO)
    del data["writing"]
    with pytest.raises(ValidationError, match="writing"):
        MmsAnswers.model_validate(data)


# --------------------------------------------------------------------------------------------
# Norms (Kalafat 2003, 5th percentiles) - every cell, with the boundary on both sides
# --------------------------------------------------------------------------------------------

NO, PRI, BAC = EducationLevel.NO_DIPLOMA, EducationLevel.PRIMARY, EducationLevel.BACCALAUREATE
CUTOFF_TABLE = {
    # (age band representative ages), cut-offs for no diploma / primary / bac
    (50, 79): (22, 23, 26),
    (80, 84): (21, 22, 25),
    (85, 100): (20, 21, 24),
}
CELLS = [
    (age, level, cut)
    for ages, cuts in CUTOFF_TABLE.items()
    for age in ages
    for level, cut in zip((NO, PRI, BAC), cuts, strict=True)
]


@pytest.mark.parametrize(("age", "education", "expected"), CELLS)
def test_cutoff_cells_and_their_boundaries(
    age: int, education: EducationLevel, expected: int
) -> None:
    assert cutoff(age, education) == expected
    at_cutoff = interpret(expected, age, education)
    assert at_cutoff.cutoff == expected
    assert not at_cutoff.pathological  # a score equal to the 5th percentile is not below it
    assert at_cutoff.severity is None
    below = interpret(expected - 1, age, education)
    assert below.pathological
    assert below.severity is (Severity.MODERATE if expected == 20 else Severity.MILD)
    assert interpret(expected + 1, age, education).pathological is False


@pytest.mark.parametrize(
    ("age", "band"),
    [
        (18, AgeBand.UNDER_80),
        (79, AgeBand.UNDER_80),
        (80, AgeBand.FROM_80_TO_84),
        (84, AgeBand.FROM_80_TO_84),
        (85, AgeBand.FROM_85),
        (130, AgeBand.FROM_85),
    ],
)
def test_age_band_boundaries(age: int, band: AgeBand) -> None:
    assert AgeBand.of(age) is band
    assert interpret(25, age, PRI).age_band is band


@pytest.mark.parametrize(
    ("nsc", "level"),
    [(1, NO), (2, NO), (3, PRI), (4, PRI), (5, PRI), (6, BAC), (7, BAC)],
)
def test_education_from_cultural_level(nsc: int, level: EducationLevel) -> None:
    assert EducationLevel.from_cultural_level(nsc) is level


@pytest.mark.parametrize("nsc", [0, -1, True, 3.0])
def test_education_rejects_invalid_cultural_level(nsc: int) -> None:
    with pytest.raises(ValueError, match="NSC"):
        EducationLevel.from_cultural_level(nsc)


@pytest.mark.parametrize(
    ("total", "severity"),
    [(30, Severity.MILD), (20, Severity.MILD), (19, Severity.MODERATE)]
    + [(10, Severity.MODERATE), (9, Severity.SEVERE), (0, Severity.SEVERE)],
)
def test_severity_band_boundaries(total: int, severity: Severity) -> None:
    assert severity_band(total) is severity


def test_severity_is_reported_only_when_pathological() -> None:
    assert interpret(9, 70, BAC).severity is Severity.SEVERE
    assert interpret(15, 90, NO).severity is Severity.MODERATE
    assert interpret(21, 90, NO).severity is None


def test_pathological_is_exactly_below_cutoff_for_every_score() -> None:
    for age, level in itertools.product((60, 82, 88), EducationLevel):
        threshold = cutoff(age, level)
        for total in range(MAX_TOTAL + 1):
            assert interpret(total, age, level).pathological is (total < threshold)


@pytest.mark.parametrize("total", [-1, 31, True, 25.0])
def test_interpret_rejects_invalid_total(total: int) -> None:
    with pytest.raises(ValueError, match="MMS total"):
        interpret(total, 70, PRI)
    with pytest.raises(ValueError, match="MMS total"):
        severity_band(total)


@pytest.mark.parametrize("age", [17, 131, -5, False])
def test_interpret_rejects_invalid_age(age: int) -> None:
    with pytest.raises(ValueError, match="age"):
        interpret(25, age, PRI)


def test_interpretation_of_answers() -> None:
    answers = MmsAnswers.model_validate(FULL_MARKS | {"recall": 0, "attention_calculation": 2})
    result = interpret(answers.total, 86, EducationLevel.from_cultural_level(4))
    assert (result.total, result.cutoff, result.pathological) == (24, 21, False)
