"""Unit tests of the AGGIR grid: adverbs, combination rules, GIR algorithm, oracle, throughput."""

from __future__ import annotations

import itertools
import random
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest
from pydantic import ValidationError

from bsante.forms.scoring.aggir import (
    Adverbs,
    AggirGrid,
    AggirResult,
    Alimentation,
    Code,
    Coherence,
    DiscriminantCodes,
    Dressing,
    Elimination,
    Group,
    Orientation,
    Washing,
    answer_code,
    code_from_adverbs,
    combine_alimentation,
    combine_coherence,
    combine_dressing,
    combine_elimination,
    combine_orientation,
    combine_washing,
    group_score,
    score,
    score_codes,
    score_many,
)

ALL_CODE_STRINGS = ["".join(p) for p in itertools.product("ABC", repeat=8)]

# --------------------------------------------------------------------------------------------
# Independent oracle: the fact sheet's table transcribed literally as text, parsed here, and a
# straightforward loop over groups. It shares no code or data structure with the implementation.
# --------------------------------------------------------------------------------------------

ORACLE_TABLE = """
var  A         B         C         D         E         F         G         H
COH  2000/0    1500/320  0/0       0/0       400/0     200/100   150/0     0/0
ORI  1200/0    1200/120  0/0       0/0       400/0     200/100   150/0     0/0
TOI  40/16     40/16     40/16     0/0       400/100   500/100   300/200   3000/2000
HAB  40/16     40/16     40/16     0/0       400/100   500/100   300/200   3000/2000
ALI  60/20     60/0      60/20     2000/200  400/100   500/100   500/200   3000/2000
ELI  100/16    100/16    160/20    400/200   800/100   500/100   500/200   3000/2000
TRA  800/120   800/120   1000/200  2000/200  800/100   500/100   400/200   1000/2000
DPI  200/32    -80/-40   400/40    200/0     200/0     200/0     200/100   1000/1000
"""

ORACLE_THRESHOLDS = {
    "A": [4380, 4140, 3390],
    "B": [2016],
    "C": [1700, 1432],
    "D": [2400],
    "E": [1200],
    "F": [800],
    "G": [650],
    "H": [4000, 2000],
}


def _oracle_weights() -> dict[str, list[dict[str, int]]]:
    """group letter -> per variable position, {"A": 0, "B": b, "C": c}."""
    lines = [line.split() for line in ORACLE_TABLE.strip().splitlines()]
    header, rows = lines[0][1:], lines[1:]
    weights: dict[str, list[dict[str, int]]] = {group: [] for group in header}
    for row in rows:
        for group, cell in zip(header, row[1:], strict=True):
            c, b = cell.split("/")
            weights[group].append({"A": 0, "B": int(b), "C": int(c)})
    return weights


ORACLE_WEIGHTS = _oracle_weights()


def oracle(codes: str) -> tuple[int, int, str | None, int | None]:
    """(gir, rang, group, group score) for an 8-letter code string."""
    rang = 0
    for group in "ABCDEFGH":
        total = sum(ORACLE_WEIGHTS[group][i][letter] for i, letter in enumerate(codes))
        for threshold in ORACLE_THRESHOLDS[group]:
            rang += 1
            if total >= threshold:
                return _oracle_gir(rang), rang, group, total
    return 6, 13, None, None


def _oracle_gir(rang: int) -> int:
    if rang == 1:
        return 1
    if rang <= 7:
        return 2
    if rang <= 9:
        return 3
    if rang <= 11:
        return 4
    return 5  # rang 12; rang 13 never reaches here


def test_oracle_table_is_well_formed() -> None:
    assert sorted(ORACLE_WEIGHTS) == list("ABCDEFGH")
    assert all(len(column) == 8 for column in ORACLE_WEIGHTS.values())
    assert sum(len(t) for t in ORACLE_THRESHOLDS.values()) == 12


def test_implementation_agrees_with_oracle_on_all_6561_inputs() -> None:
    disagreements = []
    for codes in ALL_CODE_STRINGS:
        result = score_codes(codes)
        mine = (result.gir, result.rang, result.group.value if result.group else None)
        expected = oracle(codes)
        if (*mine, result.group_score) != expected:
            disagreements.append((codes, mine, expected))
    assert disagreements == []


# --------------------------------------------------------------------------------------------
# Fact sheet figures
# --------------------------------------------------------------------------------------------

WORKED_EXAMPLES = [
    # codes, group, group score, rang, GIR
    ("AAAAAAAA", None, None, 13, 6),
    ("CCCCCCCC", "A", 4440, 1, 1),
    ("CCBBBBBB", "A", 3420, 3, 2),
    ("AACCCCCC", "C", 1700, 5, 2),
    ("AAAAABCC", "D", 2400, 7, 2),
    ("AAAABCBC", "E", 1200, 8, 3),
    ("AAAAACBC", "F", 800, 9, 3),
    ("BBBBBBBB", "G", 1100, 10, 4),
    ("AAAAABBA", "H", 4000, 11, 4),
    ("AAAAAABA", "H", 2000, 12, 5),
]


@pytest.mark.parametrize(("codes", "group", "group_total", "rang", "gir"), WORKED_EXAMPLES)
def test_worked_examples(
    codes: str, group: str | None, group_total: int | None, rang: int, gir: int
) -> None:
    result = score_codes(codes)
    assert result.gir == gir
    assert result.rang == rang
    assert result.group == (Group(group) if group else None)
    assert result.group_score == group_total
    assert result.codes.as_string() == codes


def test_exhaustive_distribution() -> None:
    distribution = Counter(score_codes(codes).gir for codes in ALL_CODE_STRINGS)
    assert distribution == {1: 8, 2: 3208, 3: 2400, 4: 760, 5: 157, 6: 28}


def test_every_rang_is_reachable_and_maps_to_its_gir() -> None:
    seen = {score_codes(codes).rang: score_codes(codes).gir for codes in ALL_CODE_STRINGS}
    assert seen == {
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


def test_group_score_of_worked_example() -> None:
    codes = [Code(c) for c in "CCBBBBBB"]
    assert group_score(Group.A, codes) == 2000 + 1200 + 16 + 16 + 20 + 16 + 120 + 32


def test_group_decides_only_when_threshold_reached() -> None:
    for codes in ALL_CODE_STRINGS:
        result = score_codes(codes)
        assert (result.group is None) == (result.rang == 13)
        assert (result.group_score is None) == (result.rang == 13)


# --------------------------------------------------------------------------------------------
# Adverb rule
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("answers", list(itertools.product([True, False], repeat=4)))
def test_adverb_rule(answers: tuple[bool, bool, bool, bool]) -> None:
    noes = answers.count(False)
    expected = Code.A if noes == 0 else Code.C if noes == 4 else Code.B
    assert code_from_adverbs(*answers) is expected
    s, t, c, h = answers
    adverbs = Adverbs(spontaneously=s, totally=t, correctly=c, habitually=h)
    assert adverbs.code is expected
    assert answer_code(adverbs) is expected


def test_direct_coding() -> None:
    for code in Code:
        assert answer_code(code) is code


def test_adverbs_reject_missing_or_extra_fields() -> None:
    with pytest.raises(ValidationError):
        Adverbs.model_validate({"spontaneously": True, "totally": True, "correctly": True})
    with pytest.raises(ValidationError):
        Adverbs.model_validate(
            {"spontaneously": 1, "totally": 1, "correctly": 1, "habitually": 1, "seul": 1}
        )


# --------------------------------------------------------------------------------------------
# Combination rules, every sub-variable combination, transcribed from the fact sheet
# --------------------------------------------------------------------------------------------

TOI_RULE = {
    "AA": "A", "AB": "B", "AC": "B",
    "BA": "B", "BB": "B", "BC": "B",
    "CA": "B", "CB": "B", "CC": "C",
}  # fmt: skip
ALI_RULE = {
    "AA": "A", "AB": "B", "AC": "B",
    "BA": "B", "BB": "B", "BC": "C",
    "CA": "B", "CB": "C", "CC": "C",
}  # fmt: skip
ANY_C_RULE = {
    "AA": "A", "AB": "B", "AC": "C",
    "BA": "B", "BB": "B", "BC": "C",
    "CA": "C", "CB": "C", "CC": "C",
}  # fmt: skip


@pytest.mark.parametrize(
    ("combine", "rule"),
    [
        (combine_washing, TOI_RULE),
        (combine_alimentation, ALI_RULE),
        (combine_elimination, ANY_C_RULE),
        (combine_coherence, ANY_C_RULE),
        (combine_orientation, ANY_C_RULE),
    ],
    ids=["TOI", "ALI", "ELI", "COH", "ORI"],
)
def test_two_part_combinations(combine: Callable[[Code, Code], Code], rule: dict[str, str]) -> None:
    assert len(rule) == 9
    for pair, expected in rule.items():
        assert combine(Code(pair[0]), Code(pair[1])) is Code(expected), pair


@pytest.mark.parametrize("triple", ["".join(p) for p in itertools.product("ABC", repeat=3)])
def test_dressing_combination(triple: str) -> None:
    expected = {"AAA": "A", "CCC": "C"}.get(triple, "B")
    assert combine_dressing(*(Code(c) for c in triple)) is Code(expected)


def test_composite_models_apply_their_rule() -> None:
    a, b, c = Code.A, Code.B, Code.C
    assert Coherence(communication=a, behaviour=c).code is c
    assert Orientation(time=b, space=a).code is b
    assert Washing(upper=a, lower=c).code is b
    assert Dressing(upper=c, middle=c, lower=c).code is c
    assert Alimentation(serving=c, eating=a).code is b
    assert Alimentation(serving=b, eating=c).code is c
    assert Elimination(urinary=a, faecal=c).code is c


# --------------------------------------------------------------------------------------------
# Grid model
# --------------------------------------------------------------------------------------------

YES = {"spontaneously": True, "totally": True, "correctly": True, "habitually": True}
NO = {"spontaneously": False, "totally": False, "correctly": False, "habitually": False}
PARTLY = {"spontaneously": True, "totally": False, "correctly": True, "habitually": True}


def _grid_json(**overrides: object) -> dict[str, object]:
    grid: dict[str, object] = {
        "coherence": {"communication": "A", "behaviour": "A"},
        "orientation": {"time": "A", "space": "A"},
        "washing": {"upper": "A", "lower": "A"},
        "dressing": {"upper": "A", "middle": "A", "lower": "A"},
        "alimentation": {"serving": "A", "eating": "A"},
        "elimination": {"urinary": "A", "faecal": "A"},
        "transfers": "A",
        "indoor_mobility": "A",
        "outdoor_mobility": "A",
        "alerting": "A",
    }
    grid.update(overrides)
    return grid


def test_autonomous_grid_is_gir6() -> None:
    result = score(AggirGrid.model_validate(_grid_json()))
    assert (result.gir, result.rang, result.group) == (6, 13, None)


def test_grid_with_adverbs_and_sub_variables() -> None:
    grid = AggirGrid.model_validate(
        _grid_json(
            coherence={"communication": NO, "behaviour": "C"},
            orientation={"time": NO, "space": NO},
            washing={"upper": PARTLY, "lower": "B"},
            dressing={"upper": "B", "middle": PARTLY, "lower": "B"},
            alimentation={"serving": PARTLY, "eating": YES},
            elimination={"urinary": "B", "faecal": PARTLY},
            transfers=PARTLY,
            indoor_mobility="B",
        )
    )
    assert grid.codes().as_string() == "CCBBBBBB"
    assert score(grid).gir == 2
    assert score(grid).rang == 3


def test_composite_variable_may_be_coded_as_a_whole() -> None:
    whole = AggirGrid.model_validate(
        _grid_json(coherence="C", orientation=NO, elimination="B", transfers="C", washing=PARTLY)
    )
    assert whole.codes().as_string() == "CCBAABCA"


@pytest.mark.parametrize("code", ["A", "B", "C"])
def test_unweighted_variables_do_not_change_the_result(code: str) -> None:
    base = score(AggirGrid.model_validate(_grid_json(transfers="B", elimination="C")))
    illustrative = dict.fromkeys(
        (
            "management",
            "cooking",
            "housework",
            "transport",
            "shopping",
            "treatment_follow_up",
            "leisure",
        ),
        code,
    )
    varied = AggirGrid.model_validate(
        _grid_json(transfers="B", elimination="C", outdoor_mobility=code, alerting=NO)
        | illustrative
    )
    assert varied.management == Code(code)  # recorded...
    assert score(varied) == base  # ...but not used


def test_grid_round_trips_through_json() -> None:
    grid = AggirGrid.model_validate(_grid_json(washing={"upper": PARTLY, "lower": "C"}))
    again = AggirGrid.model_validate_json(grid.model_dump_json())
    assert again == grid
    assert isinstance(again.washing, Washing)
    assert isinstance(again.washing.upper, Adverbs)


@pytest.mark.parametrize(
    "bad",
    [
        {"transfers": "D"},
        {"transfers": None},
        {"washing": {"upper": "A"}},
        {"dressing": {"upper": "A", "middle": "A", "lower": "A", "feet": "A"}},
        {"unknown_variable": "A"},
    ],
)
def test_grid_rejects_invalid_input(bad: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        AggirGrid.model_validate(_grid_json(**bad))


def test_badly_shaped_answer_gets_a_clear_error() -> None:
    with pytest.raises(ValidationError, match="expected a code A/B/C, the four adverbs") as caught:
        AggirGrid.model_validate(_grid_json(transfers={"seul": True}))
    assert caught.value.errors()[0]["loc"] == ("transfers",)


def test_grid_from_model_instances() -> None:
    partly = Adverbs(spontaneously=False, totally=True, correctly=True, habitually=True)
    grid = AggirGrid(
        coherence=Coherence(communication=Code.C, behaviour=partly),
        orientation=Code.C,
        washing=Washing(upper=Code.B, lower=Code.B),
        dressing=partly,
        alimentation=Alimentation(serving=partly, eating=Code.B),
        elimination=Elimination(urinary=Code.B, faecal=partly),
        transfers=partly,
        indoor_mobility=Code.B,
        outdoor_mobility=Code.C,
        alerting=Code.C,
    )
    assert grid.codes() == DiscriminantCodes.from_string("CCBBBBBB")
    assert grid.code_tuple() == grid.codes().as_tuple()
    assert score(grid) == score_codes("CCBBBBBB")


def test_grid_requires_every_discriminant_variable() -> None:
    data = _grid_json()
    del data["alerting"]
    with pytest.raises(ValidationError):
        AggirGrid.model_validate(data)


def test_models_are_frozen() -> None:
    result = score_codes("BBBBBBBB")
    mutable: Any = result
    with pytest.raises(ValidationError):
        mutable.gir = 1


# --------------------------------------------------------------------------------------------
# Code-level entry points
# --------------------------------------------------------------------------------------------


def test_score_codes_accepts_every_form() -> None:
    expected = score_codes("AAAABCBC")
    assert score_codes([Code(c) for c in "AAAABCBC"]) == expected
    assert score_codes(DiscriminantCodes.from_string("AAAABCBC")) == expected
    assert isinstance(expected, AggirResult)


@pytest.mark.parametrize("bad", ["", "AAAAAAA", "AAAAAAAAA", "AAAAAAAD", "aaaaaaaa"])
def test_score_codes_rejects_malformed_strings(bad: str) -> None:
    with pytest.raises(ValueError, match="8 letters"):
        score_codes(bad)


def test_score_codes_rejects_malformed_sequences() -> None:
    with pytest.raises(ValueError, match="8 Code values"):
        score_codes([Code.A] * 7)
    with pytest.raises(ValueError, match="8 Code values"):
        score_codes(["A"] * 8)  # type: ignore[list-item]


def test_score_many_mixes_inputs() -> None:
    grid = AggirGrid.model_validate(_grid_json())
    results = score_many([grid, "CCCCCCCC", DiscriminantCodes.from_string("BBBBBBBB")])
    assert [r.gir for r in results] == [6, 1, 4]


def test_scoring_many_grids_matches_scoring_each() -> None:
    # The 100 000-grid timing is in bench/test_bench_forms.py; here only the results count.
    rng = random.Random(20260301)
    grids = [rng.choice(ALL_CODE_STRINGS) for _ in range(2_000)]
    results = score_many(grids)
    assert len(results) == 2_000
    assert [r.gir for r in results] == [oracle(g)[0] for g in grids]
