"""Forms figures: AGGIR scoring of 100 000 grids; a 30-day surveillance chart read every 4 h."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

from bsante.forms.chart import render_png, render_svg
from bsante.forms.definitions import aggir as aggir_form
from bsante.forms.scoring import aggir
from bsante.forms.vitals import AnyReading, BloodPressureReading, Reading, VitalKind

GRIDS = 100_000
CODES = ("A", "B", "C")


def _grids(count: int, seed: int = 42) -> list[aggir.AggirGrid]:
    """Grids as a front-end sends them (sub-variables coded A/B/C), validated once."""
    rng = random.Random(seed)

    def c() -> str:
        return rng.choice(CODES)

    return [
        aggir.AggirGrid.model_validate(
            {
                "coherence": {"communication": c(), "behaviour": c()},
                "orientation": {"time": c(), "space": c()},
                "washing": {"upper": c(), "lower": c()},
                "dressing": {"upper": c(), "middle": c(), "lower": c()},
                "alimentation": {"serving": c(), "eating": c()},
                "elimination": {"urinary": c(), "faecal": c()},
                "transfers": c(),
                "indoor_mobility": c(),
                "outdoor_mobility": c(),
                "alerting": c(),
            }
        )
        for _ in range(count)
    ]


def _form_answers(count: int, seed: int = 43) -> list[dict[str, Any]]:
    rng = random.Random(seed)

    def c() -> str:
        return rng.choice(CODES)

    return [
        {
            "COH": {"communication": c(), "comportement": c()},
            "ORI": {"temps": c(), "espace": c()},
            "TOI": {"haut": c(), "bas": c()},
            "HAB": {"haut": c(), "moyen": c(), "bas": c()},
            "ALI": {"se_servir": c(), "manger": c()},
            "ELI": {"urinaire": c(), "fecale": c()},
            "TRA": c(),
            "DPI": c(),
            "DPE": c(),
            "COM": c(),
        }
        for _ in range(count)
    ]


def test_score_100k_aggir_grids(benchmark: Any) -> None:
    grids = _grids(GRIDS)
    results = benchmark(aggir.score_many, grids)
    assert len(results) == GRIDS and all(1 <= r.gir <= 6 for r in results)


def test_check_and_score_100k_aggir_form_answers(benchmark: Any) -> None:
    """The service's path: check the raw answers against the definition, then score."""
    answers = _form_answers(GRIDS)
    definition = aggir_form.DEFINITION

    def run() -> list[int]:
        girs = []
        for raw in answers:
            checked, errors = definition.check(raw, complete=True)
            assert not errors
            girs.append(aggir.score_codes(aggir_form.codes(checked)).gir)
        return girs

    girs = benchmark.pedantic(run, rounds=3, iterations=1)
    assert len(girs) == GRIDS


def _month(seed: int = 7) -> list[AnyReading]:
    rng = random.Random(seed)
    start = datetime(2026, 3, 1, 6, 0, tzinfo=UTC)
    readings: list[AnyReading] = []
    for i in range(30 * 6):
        at = start + timedelta(hours=4 * i)
        readings.append(
            BloodPressureReading(
                at=at, systolic=rng.uniform(95, 165), diastolic=rng.uniform(55, 92)
            )
        )
        readings.append(Reading(at=at, kind=VitalKind.PULSE, value=rng.uniform(50, 115)))
        readings.append(Reading(at=at, kind=VitalKind.TEMPERATURE, value=rng.uniform(35.8, 38.9)))
        readings.append(Reading(at=at, kind=VitalKind.SPO2, value=rng.uniform(88, 100)))
    return readings


def test_render_30_day_chart_svg(benchmark: Any) -> None:
    readings = _month()
    svg = benchmark(render_svg, readings)
    assert svg.startswith(b"<?xml")


def test_render_30_day_chart_png(benchmark: Any) -> None:
    readings = _month()
    png = benchmark(render_png, readings)
    assert png.startswith(b"\x89PNG")
