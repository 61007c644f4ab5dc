"""Unit tests of the surveillance chart: gap segmentation, panels, SVG/PNG output and speed."""

from __future__ import annotations

import io
import math
import random
import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from matplotlib.lines import Line2D
from PIL import Image

from bsante.forms.chart import (
    DEFAULT_MAX_GAP,
    ChartOptions,
    build_figure,
    build_panels,
    chart_title,
    format_paris,
    french_number,
    render_png,
    render_svg,
    segments,
    with_gaps,
)
from bsante.forms.vitals import AnyReading, BloodPressureReading, Reading, VitalKind

T0 = datetime(2026, 3, 1, 6, 0, tzinfo=UTC)
H = timedelta(hours=1)
SVG_NS = "{http://www.w3.org/2000/svg}"


def _pulse(hours: float, value: float = 80) -> Reading:
    return Reading(at=T0 + hours * H, kind=VitalKind.PULSE, value=value)


def _ydata(line: Line2D) -> list[float]:
    return [float(y) for y in np.asarray(line.get_ydata(), dtype=float)]


def month_of_readings(seed: int = 7) -> list[AnyReading]:
    """30 days, every 4 hours, every kind (weight once a day)."""
    rng = random.Random(seed)
    readings: list[AnyReading] = []
    for i in range(30 * 6):
        at = T0 + i * 4 * H
        readings.append(
            BloodPressureReading(
                at=at, systolic=rng.uniform(95, 165), diastolic=rng.uniform(55, 92)
            )
        )
        for kind, low, high in (
            (VitalKind.PULSE, 50, 115),
            (VitalKind.TEMPERATURE, 35.8, 38.9),
            (VitalKind.SPO2, 88, 100),
            (VitalKind.RESPIRATORY_RATE, 10, 26),
            (VitalKind.GLYCAEMIA, 0.6, 2.2),
            (VitalKind.PAIN, 0, 8),
        ):
            readings.append(Reading(at=at, kind=kind, value=round(rng.uniform(low, high), 2)))
        if i % 6 == 0:
            readings.append(Reading(at=at, kind=VitalKind.WEIGHT, value=rng.uniform(58, 61)))
    return readings


# --------------------------------------------------------------------------------------------
# Gap segmentation
# --------------------------------------------------------------------------------------------


def test_default_gap_is_12_hours() -> None:
    assert DEFAULT_MAX_GAP == timedelta(hours=12)
    assert ChartOptions().max_gap == DEFAULT_MAX_GAP


def test_segments_break_only_on_gaps_longer_than_max() -> None:
    hours = [0, 4, 8, 20, 32.5, 36, 60]  # 8->20 is exactly 12 h, 20->32.5 is 12.5 h
    points = [(T0 + h * H, float(i)) for i, h in enumerate(hours)]
    runs = segments(points)
    assert [[v for _, v in run] for run in runs] == [[0, 1, 2, 3], [4, 5], [6]]


def test_segments_sort_points_and_handle_edge_cases() -> None:
    a, b, c = (T0, 1.0), (T0 + 2 * H, 2.0), (T0 + 30 * H, 3.0)
    assert segments([c, a, b]) == [[a, b], [c]]
    assert segments([]) == []
    assert segments([a]) == [[a]]
    assert segments([a, b, c], max_gap=timedelta(hours=1)) == [[a], [b], [c]]
    assert segments([a, b, c], max_gap=timedelta(days=2)) == [[a, b, c]]
    with pytest.raises(ValueError, match="max_gap"):
        segments([a], max_gap=timedelta(0))


def test_with_gaps_inserts_nan_between_segments() -> None:
    points = [(T0, 1.0), (T0 + 2 * H, 2.0), (T0 + 20 * H, 3.0)]
    xs, ys = with_gaps(points)
    assert xs == [T0, T0 + 2 * H, T0 + 11 * H, T0 + 20 * H]
    assert ys[:2] == [1.0, 2.0] and math.isnan(ys[2]) and ys[3] == 3.0
    assert with_gaps([]) == ([], [])


def test_figure_line_is_broken_at_the_gap() -> None:
    readings = [_pulse(h, 70 + h) for h in (0, 4, 8, 30, 34)]
    fig = build_figure(readings)
    (ax,) = fig.axes
    line = ax.get_lines()[0]
    ys = _ydata(line)
    assert len(ys) == 6
    assert [i for i, y in enumerate(ys) if math.isnan(y)] == [3]


def test_per_kind_gap_override() -> None:
    weights = [
        Reading(at=T0 + d * 24 * H, kind=VitalKind.WEIGHT, value=60 + d / 10) for d in range(5)
    ]
    joined = ChartOptions(gap_by_kind={VitalKind.WEIGHT: timedelta(hours=36)})
    default_line = build_figure(weights).axes[0].get_lines()[0]
    joined_line = build_figure(weights, joined).axes[0].get_lines()[0]
    assert sum(math.isnan(y) for y in _ydata(default_line)) == 4
    assert sum(math.isnan(y) for y in _ydata(joined_line)) == 0


# --------------------------------------------------------------------------------------------
# Panels
# --------------------------------------------------------------------------------------------


def test_panels_only_for_kinds_present_in_clinical_order() -> None:
    readings: list[AnyReading] = [
        Reading(at=T0, kind=VitalKind.WEIGHT, value=60),
        Reading(at=T0, kind=VitalKind.TEMPERATURE, value=37.2),
        BloodPressureReading(at=T0 + H, systolic=130, diastolic=80),
        BloodPressureReading(at=T0, systolic=120, diastolic=70),
    ]
    panels = build_panels(readings)
    assert [p.title for p in panels] == ["Pression artérielle", "Température", "Poids"]
    assert [p.unit for p in panels] == ["mmHg", "°C", "kg"]
    bp = panels[0]
    assert [s.label for s in bp.series] == ["systolique", "diastolique"]
    assert [v for _, v in bp.series[0].points] == [120, 130]  # sorted by time
    assert [(b.low, b.high) for b in bp.bands] == [(90, 140), (60, 90)]
    assert panels[2].bands == ()  # no normal band for weight


def test_empty_readings_are_rejected() -> None:
    with pytest.raises(ValueError, match="empty"):
        render_svg([])


# --------------------------------------------------------------------------------------------
# Dates and title (Europe/Paris, French format)
# --------------------------------------------------------------------------------------------


def test_format_paris_handles_daylight_saving() -> None:
    assert format_paris(datetime(2026, 1, 15, 12, 0, tzinfo=UTC)) == "15/01/2026 13h00"
    # 29 March 2026: clocks go from 02:00 to 03:00 in Paris.
    assert format_paris(datetime(2026, 3, 29, 0, 30, tzinfo=UTC)) == "29/03/2026 01h30"
    assert format_paris(datetime(2026, 3, 29, 1, 30, tzinfo=UTC)) == "29/03/2026 03h30"
    assert format_paris(datetime(2026, 7, 14, 22, 5, tzinfo=UTC)) == "15/07/2026 00h05"


@pytest.mark.parametrize(
    ("value", "label"), [(37.5, "37,5"), (100.0, "100"), (0.30000000000000004, "0,3"), (-2, "−2")]
)
def test_french_number(value: float, label: str) -> None:
    assert french_number(value) == label


def test_chart_title() -> None:
    end = datetime(2026, 3, 31, 18, 0, tzinfo=UTC)
    assert chart_title(T0, end) == (
        "Surveillance du 01/03/2026 07h00 au 31/03/2026 20h00 (heure de Paris)"
    )
    assert chart_title(T0, end, "Mme DUPONT Jeanne").startswith("Mme DUPONT Jeanne — Surveillance")


# --------------------------------------------------------------------------------------------
# SVG and PNG output
# --------------------------------------------------------------------------------------------


def _svg_texts(svg: bytes) -> list[str]:
    root = ET.fromstring(svg)
    assert root.tag == f"{SVG_NS}svg"
    return ["".join(el.itertext()) for el in root.iter(f"{SVG_NS}text")]


def test_svg_is_valid_xml_with_titles_units_and_dates() -> None:
    svg = render_svg(month_of_readings(), ChartOptions(subject="M. MARTIN Paul"))
    texts = _svg_texts(svg)
    for title in (
        "Pression artérielle",
        "Pouls",
        "Température",
        "SpO₂",
        "Fréquence respiratoire",
        "Glycémie",
        "Douleur (EVA)",
        "Poids",
    ):
        assert title in texts
    for unit in ("mmHg", "bpm", "°C", "%", "/min", "g/L", "/10", "kg"):
        assert unit in texts
    assert any(
        t.startswith("M. MARTIN Paul — Surveillance du 01/03/2026 07h00 au 31/03/2026 04h00")
        for t in texts
    )
    assert "Date et heure (heure de Paris)" in texts
    assert any(t in texts for t in ("05/03", "08/03", "09/03", "15/03"))  # dd/mm tick labels
    assert "systolique" in texts and "diastolique" in texts
    assert "37,5" in texts or "1,5" in texts  # decimal comma on the value axes
    assert not any(t.replace(".", "").isdigit() and "." in t for t in texts)


def test_svg_is_deterministic() -> None:
    readings = month_of_readings()
    assert render_svg(readings) == render_svg(readings)


def test_png_signature_and_dimensions() -> None:
    readings = month_of_readings()
    png = render_png(readings)
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    options = ChartOptions()
    with Image.open(io.BytesIO(png)) as image:
        assert image.format == "PNG"
        assert image.size == options.figure_size_px(8) == (1200, 1620)


def test_png_size_follows_panel_count_and_options() -> None:
    options = ChartOptions(width_in=8, panel_height_in=2, header_height_in=1, dpi=50)
    png = render_png([_pulse(0), _pulse(4)], options)
    with Image.open(io.BytesIO(png)) as image:
        assert image.size == (400, 150)


def test_single_reading_renders() -> None:
    svg = render_svg([_pulse(0, 72)])
    assert "Pouls" in _svg_texts(svg)


def test_month_chart_renders() -> None:
    # The timing of a 30-day chart is in bench/test_bench_forms.py; here only the output counts.
    readings = month_of_readings()
    assert "Pouls" in _svg_texts(render_svg(readings))
    with Image.open(io.BytesIO(render_png(readings))) as image:
        assert image.format == "PNG" and image.size[0] > 0
