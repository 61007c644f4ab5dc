"""Server-side surveillance chart of vital signs, rendered to SVG and PNG with matplotlib (Agg).

One panel per kind present, stacked on a shared time axis in Europe/Paris time, normal band
shaded, points joined by lines except across a gap longer than ``max_gap`` (no measurement was
taken, so drawing a line would invent values).
"""

from __future__ import annotations

import io
import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Final, cast
from zoneinfo import ZoneInfo

import matplotlib as mpl
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.dates import AutoDateLocator, ConciseDateFormatter
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter
from matplotlib.typing import RcKeyType

from bsante.forms.vitals import SPECS, AnyReading, BloodPressureReading, Interval, VitalKind

PARIS: Final = ZoneInfo("Europe/Paris")
DEFAULT_MAX_GAP: Final = timedelta(hours=12)

Point = tuple[datetime, float]

# Clinical reading order: haemodynamics first, then temperature and respiration, then the rest.
PANEL_ORDER: Final = (
    VitalKind.SYSTOLIC_BP,
    VitalKind.PULSE,
    VitalKind.TEMPERATURE,
    VitalKind.SPO2,
    VitalKind.RESPIRATORY_RATE,
    VitalKind.GLYCAEMIA,
    VitalKind.PAIN,
    VitalKind.WEIGHT,
)

_COLOURS: Final = {
    VitalKind.SYSTOLIC_BP: "#1f4e9c",
    VitalKind.DIASTOLIC_BP: "#5fa2dd",
    VitalKind.PULSE: "#c0392b",
    VitalKind.TEMPERATURE: "#d35400",
    VitalKind.SPO2: "#16808a",
    VitalKind.RESPIRATORY_RATE: "#6c3483",
    VitalKind.GLYCAEMIA: "#7d6608",
    VitalKind.PAIN: "#a93226",
    VitalKind.WEIGHT: "#34495e",
}
_BAND_COLOUR: Final = "#2ecc71"
_OUT_OF_BAND_COLOUR: Final = "#e00000"

# Matplotlib's date numbers are days since this epoch; pinned so our own conversion matches.
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)

_RC: Final[dict[RcKeyType, Any]] = {
    "date.epoch": "1970-01-01T00:00:00",
    # Keep text as <text> so the SVG stays small, selectable and searchable.
    "svg.fonttype": "none",
    # Fixed salt and no date make successive renders byte-identical.
    "svg.hashsalt": "bsante-forms-chart",
    "font.family": "DejaVu Sans",
    "font.size": 9,
    "axes.titlesize": 10,
    "axes.titleweight": "bold",
    "axes.grid": True,
    "grid.alpha": 0.35,
    "path.simplify": False,
}


@dataclass(frozen=True, slots=True)
class ChartOptions:
    """Rendering options; sizes are in inches at ``dpi`` pixels per inch."""

    max_gap: timedelta = DEFAULT_MAX_GAP
    # Per-kind gaps for kinds measured less often than the default gap (e.g. a daily weight).
    gap_by_kind: Mapping[VitalKind, timedelta] = field(default_factory=dict)
    subject: str | None = None  # e.g. the patient's name, printed before the period
    width_in: float = 12.0
    panel_height_in: float = 1.9
    header_height_in: float = 1.0
    dpi: int = 100

    def gap_for(self, kind: VitalKind) -> timedelta:
        return self.gap_by_kind.get(kind, self.max_gap)

    def figure_size_in(self, panels: int) -> tuple[float, float]:
        return self.width_in, self.header_height_in + panels * self.panel_height_in

    def figure_size_px(self, panels: int) -> tuple[int, int]:
        width, height = self.figure_size_in(panels)
        return round(width * self.dpi), round(height * self.dpi)


@dataclass(frozen=True, slots=True)
class Series:
    kind: VitalKind
    label: str
    points: tuple[Point, ...]


@dataclass(frozen=True, slots=True)
class Panel:
    """One stacked chart: its title, unit, series and shaded normal bands."""

    kind: VitalKind  # SYSTOLIC_BP stands for the blood pressure panel
    title: str
    unit: str
    series: tuple[Series, ...]
    bands: tuple[Interval, ...] = field(default=())


def segments(points: Sequence[Point], max_gap: timedelta = DEFAULT_MAX_GAP) -> list[list[Point]]:
    """Split chronological runs where consecutive points are more than ``max_gap`` apart.

    A gap exactly equal to ``max_gap`` keeps the points joined.
    """
    if max_gap <= timedelta(0):
        raise ValueError(f"max_gap must be positive, got {max_gap}")
    runs: list[list[Point]] = []
    for point in sorted(points, key=lambda p: p[0]):
        if runs and point[0] - runs[-1][-1][0] <= max_gap:
            runs[-1].append(point)
        else:
            runs.append([point])
    return runs


def with_gaps(
    points: Sequence[Point], max_gap: timedelta = DEFAULT_MAX_GAP
) -> tuple[list[datetime], list[float]]:
    """Flatten the segments into plottable x/y, with a NaN between segments to break the line."""
    xs: list[datetime] = []
    ys: list[float] = []
    for run in segments(points, max_gap):
        if xs:
            xs.append(xs[-1] + (run[0][0] - xs[-1]) / 2)
            ys.append(math.nan)
        xs.extend(at for at, _ in run)
        ys.extend(value for _, value in run)
    return xs, ys


def build_panels(readings: Sequence[AnyReading]) -> list[Panel]:
    """Group readings into panels, in PANEL_ORDER, keeping only kinds that were measured."""
    by_kind: dict[VitalKind, list[Point]] = {}
    for reading in readings:
        if isinstance(reading, BloodPressureReading):
            by_kind.setdefault(VitalKind.SYSTOLIC_BP, []).append((reading.at, reading.systolic))
            by_kind.setdefault(VitalKind.DIASTOLIC_BP, []).append((reading.at, reading.diastolic))
        else:
            by_kind.setdefault(reading.kind, []).append((reading.at, reading.value))

    panels: list[Panel] = []
    for kind in PANEL_ORDER:
        if kind not in by_kind:
            continue
        members: tuple[VitalKind, ...]
        labels: tuple[str, ...]
        if kind is VitalKind.SYSTOLIC_BP:
            members = (VitalKind.SYSTOLIC_BP, VitalKind.DIASTOLIC_BP)
            title = "Pression artérielle"
            labels = ("systolique", "diastolique")
        else:
            members = (kind,)
            title = SPECS[kind].label
            labels = (SPECS[kind].label,)
        series = tuple(
            Series(member, label, tuple(sorted(by_kind[member], key=lambda p: p[0])))
            for member, label in zip(members, labels, strict=True)
        )
        bands = tuple(band for m in members if (band := SPECS[m].normal) is not None)
        panels.append(Panel(kind, title, SPECS[kind].unit, series, bands))
    return panels


def format_paris(at: datetime) -> str:
    """French date and time in Paris time, e.g. ``05/03/2026 14h30``."""
    return at.astimezone(PARIS).strftime("%d/%m/%Y %Hh%M")


def french_number(value: float, _position: int | None = None) -> str:
    """Tick label with a decimal comma, without touching the process-wide locale."""
    return f"{value:g}".replace(".", ",").replace("-", "\u2212")


def chart_title(start: datetime, end: datetime, subject: str | None = None) -> str:
    period = f"Surveillance du {format_paris(start)} au {format_paris(end)} (heure de Paris)"
    return f"{subject} — {period}" if subject else period


def build_figure(
    readings: Sequence[AnyReading],
    options: ChartOptions | None = None,
    *,
    period: tuple[datetime, datetime] | None = None,
) -> Figure:
    """Lay out the chart; no pyplot, so nothing global is touched and threads are safe.

    Without readings, the chart of `period` says that nothing was measured."""
    opts = options or ChartOptions()
    if not readings:
        if period is None:
            raise ValueError("cannot chart an empty series of readings without a period")
        return _empty_figure(period, opts)
    panels = build_panels(readings)
    times = [r.at for r in readings]
    start, end = min(times), max(times)
    with _rc():
        fig = Figure(figsize=opts.figure_size_in(len(panels)), dpi=opts.dpi, layout="constrained")
        FigureCanvasAgg(fig)
        fig.suptitle(chart_title(start, end, opts.subject), fontsize=12, fontweight="bold")
        axes = fig.subplots(len(panels), 1, sharex=True, squeeze=False)[:, 0]
        for ax, panel in zip(axes, panels, strict=True):
            _draw_panel(ax, panel, opts)
        _format_time_axis(axes[-1], start, end)
    return fig


def _empty_figure(period: tuple[datetime, datetime], opts: ChartOptions) -> Figure:
    with _rc():
        fig = Figure(figsize=opts.figure_size_in(1), dpi=opts.dpi, layout="constrained")
        FigureCanvasAgg(fig)
        fig.suptitle(chart_title(*period, opts.subject), fontsize=12, fontweight="bold")
        ax = fig.subplots()
        ax.set_axis_off()
        ax.text(0.5, 0.5, "Aucune mesure sur la période", ha="center", va="center")
    return fig


def render_svg(
    readings: Sequence[AnyReading],
    options: ChartOptions | None = None,
    *,
    period: tuple[datetime, datetime] | None = None,
) -> bytes:
    """UTF-8 SVG document."""
    return _render(readings, options, "svg", {"Date": None}, period)


def render_png(
    readings: Sequence[AnyReading],
    options: ChartOptions | None = None,
    *,
    period: tuple[datetime, datetime] | None = None,
) -> bytes:
    """PNG image of ``ChartOptions.figure_size_px`` pixels."""
    return _render(readings, options, "png", {"Software": None}, period)


def _render(
    readings: Sequence[AnyReading],
    options: ChartOptions | None,
    fmt: str,
    metadata: dict[str, str | None],
    period: tuple[datetime, datetime] | None = None,
) -> bytes:
    fig = build_figure(readings, options, period=period)
    buffer = io.BytesIO()
    with _rc():
        fig.savefig(buffer, format=fmt, metadata=metadata)
    return buffer.getvalue()


@contextmanager
def _rc() -> Iterator[None]:
    with mpl.rc_context(_RC):
        yield


def _draw_panel(ax: Axes, panel: Panel, opts: ChartOptions) -> None:
    for band in panel.bands:
        ax.axhspan(band.low, band.high, color=_BAND_COLOUR, alpha=0.15, linewidth=0, zorder=0)
    values: list[float] = []
    for series in panel.series:
        colour = _COLOURS[series.kind]
        xs, ys = with_gaps(series.points, opts.gap_for(series.kind))
        ax.plot(
            _date_nums(xs),
            ys,
            color=colour,
            marker="o",
            markersize=3,
            linewidth=1.4,
            label=series.label,
        )
        normal = SPECS[series.kind].normal
        if normal is not None:
            outside = [(at, v) for at, v in series.points if v not in normal]
            if outside:
                ax.plot(
                    _date_nums([at for at, _ in outside]),
                    [v for _, v in outside],
                    linestyle="none",
                    marker="o",
                    markersize=4.5,
                    markerfacecolor="none",
                    markeredgecolor=_OUT_OF_BAND_COLOUR,
                    markeredgewidth=1.2,
                    zorder=3,
                )
        values.extend(v for _, v in series.points)
    ax.set_title(panel.title, loc="left")
    ax.set_ylabel(panel.unit)
    ax.yaxis.set_major_formatter(FuncFormatter(french_number))
    low = min([*values, *(b.low for b in panel.bands)])
    high = max([*values, *(b.high for b in panel.bands)])
    pad = max((high - low) * 0.08, 10.0 ** -SPECS[panel.kind].decimals)
    ax.set_ylim(low - pad, high + pad)
    if len(panel.series) > 1:
        ax.legend(loc="upper right", fontsize=8, framealpha=0.8)


def _format_time_axis(ax: Axes, start: datetime, end: datetime) -> None:
    margin = max((end - start) * 0.02, timedelta(hours=1))
    low, high = _date_nums([start - margin, end + margin])
    ax.set_xlim(low, high)
    # matplotlib.dates is untyped; the casts keep strict type checking on our side of the call.
    locator = cast("Callable[..., AutoDateLocator]", AutoDateLocator)(
        tz=PARIS, minticks=4, maxticks=12
    )
    formatter = cast("Callable[..., ConciseDateFormatter]", ConciseDateFormatter)(
        locator,
        tz=PARIS,
        formats=["%Y", "%m/%Y", "%d/%m", "%Hh%M", "%Hh%M", "%S"],
        zero_formats=["", "%Y", "%m/%Y", "%d/%m", "%Hh%M", "%Hh%M"],
        offset_formats=["", "%Y", "%m/%Y", "%d/%m/%Y", "%d/%m/%Y", "%d/%m/%Y %Hh%M"],
    )
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(formatter)
    ax.set_xlabel("Date et heure (heure de Paris)")


def _date_nums(times: Sequence[datetime]) -> list[float]:
    return [(at - _EPOCH).total_seconds() / 86400 for at in times]
