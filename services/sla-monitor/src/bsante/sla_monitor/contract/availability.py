"""Availability from probe samples on both bases, burn rates and the multi-window alert decision."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo

from bsante.sla_monitor.contract.calendars import (
    PARIS,
    ZERO,
    Calendar,
    Interval,
    merge_intervals,
    utc,
)
from bsante.sla_monitor.contract.indicators import AVAILABILITY_OBJECTIVE, CalendarKind


@dataclass(frozen=True)
class Sample:
    """One probe result; its state holds until the next sample of the same service."""

    at: datetime
    up: bool


@dataclass(frozen=True)
class Timeline:
    """What the probes saw of one service (or the platform): observed span and down intervals."""

    observed_from: datetime
    observed_to: datetime
    down: tuple[Interval, ...]


def timeline(samples: Iterable[Sample], until: datetime) -> Timeline:
    """Samples in any order to a timeline; the last sample's state holds until `until`."""
    until = utc(until, "until")
    ordered = sorted((Sample(utc(s.at, "sample.at"), s.up) for s in samples), key=lambda s: s.at)
    if not ordered:
        return Timeline(until, until, ())
    down: list[Interval] = []
    down_since: datetime | None = None
    for sample in ordered:
        if not sample.up and down_since is None:
            down_since = sample.at
        elif sample.up and down_since is not None:
            down.append((down_since, sample.at))
            down_since = None
    if down_since is not None and down_since < until:
        down.append((down_since, until))
    return Timeline(ordered[0].at, until, tuple(merge_intervals(down)))


def platform_timeline(services: Sequence[Timeline]) -> Timeline:
    """The platform is down when any service is; observed only where every service is."""
    if not services:
        raise ValueError("at least one service timeline is needed")
    start = max(t.observed_from for t in services)
    end = min(t.observed_to for t in services)
    down = merge_intervals(iv for t in services for iv in t.down)
    return Timeline(start, max(start, end), tuple(down))


@dataclass(frozen=True)
class Availability:
    start: datetime
    end: datetime
    basis: CalendarKind
    observed: timedelta  # calendar time in [start, end) covered by probes
    down: timedelta

    @property
    def ratio(self) -> float | None:
        if self.observed <= ZERO:
            return None
        return 1 - self.down / self.observed

    def meets(self, objective: float = AVAILABILITY_OBJECTIVE) -> bool | None:
        ratio = self.ratio
        return None if ratio is None else ratio >= objective


def availability(
    line: Timeline, calendar: Calendar, basis: CalendarKind, start: datetime, end: datetime
) -> Availability:
    """Availability over [start, end) counted on `calendar` (24/7 or service hours)."""
    start, end = utc(start, "start"), utc(end, "end")
    lo, hi = max(start, line.observed_from), min(end, line.observed_to)
    observed = calendar.elapsed(lo, hi) if hi > lo else ZERO
    down = ZERO
    for a, b in line.down:
        a, b = max(a, lo), min(b, hi)
        if b > a:
            down += calendar.elapsed(a, b)
    return Availability(start, end, basis, observed, down)


class Period(StrEnum):
    DAY = "day"
    WEEK = "week"
    MONTH = "month"


def periods(kind: Period, start: datetime, end: datetime, tz: ZoneInfo = PARIS) -> list[Interval]:
    """Local days, ISO weeks (from Monday) or months overlapping [start, end), as aware bounds."""
    end = utc(end, "end")
    local = utc(start, "start").astimezone(tz)
    day = local.date()
    if kind is Period.WEEK:
        day -= timedelta(days=day.weekday())
    elif kind is Period.MONTH:
        day = day.replace(day=1)
    out: list[Interval] = []
    while True:
        a = datetime(day.year, day.month, day.day, tzinfo=tz)
        if a >= end:
            return out
        if kind is Period.DAY:
            day += timedelta(days=1)
        elif kind is Period.WEEK:
            day += timedelta(days=7)
        else:
            day = (day.replace(day=28) + timedelta(days=4)).replace(day=1)
        out.append((a, datetime(day.year, day.month, day.day, tzinfo=tz)))


def availability_report(
    line: Timeline,
    calendars: Mapping[CalendarKind, Calendar],
    kind: Period,
    start: datetime,
    end: datetime,
) -> list[tuple[Availability, Availability]]:
    """Per period, the 24/7 and the service-hours figures side by side (both are reported)."""
    return [
        (
            availability(line, calendars[CalendarKind.ALWAYS], CalendarKind.ALWAYS, a, b),
            availability(
                line, calendars[CalendarKind.SERVICE_HOURS], CalendarKind.SERVICE_HOURS, a, b
            ),
        )
        for a, b in periods(kind, start, end)
    ]


# --- burn rate -------------------------------------------------------------------------------


def burn_rate(error_ratio: float, objective: float = AVAILABILITY_OBJECTIVE) -> float:
    """Observed error ratio over the error budget (1 − objective): 1.0 spends it exactly."""
    return error_ratio / (1 - objective)


def error_ratio(line: Timeline, start: datetime, end: datetime) -> float | None:
    """Down share of the observed real time in [start, end) (24/7: the budget is real time)."""
    start, end = utc(start, "start"), utc(end, "end")
    lo, hi = max(start, line.observed_from), min(end, line.observed_to)
    if hi <= lo:
        return None
    down = ZERO
    for a, b in line.down:
        a, b = max(a, lo), min(b, hi)
        if b > a:
            down += b - a
    return down / (hi - lo)


class Action(StrEnum):
    PAGE = "page"
    TICKET = "ticket"


@dataclass(frozen=True)
class BurnRateRule:
    action: Action
    long: timedelta
    short: timedelta
    factor: float


# SRE Workbook, ch. 5, table 5-8: both windows must burn faster than the factor.
SRE_WORKBOOK: tuple[BurnRateRule, ...] = (
    BurnRateRule(Action.PAGE, timedelta(hours=1), timedelta(minutes=5), 14.4),
    BurnRateRule(Action.PAGE, timedelta(hours=6), timedelta(minutes=30), 6.0),
    BurnRateRule(Action.TICKET, timedelta(days=3), timedelta(hours=6), 1.0),
)


_EPSILON = 1e-9


def windows(rules: Iterable[BurnRateRule] = SRE_WORKBOOK) -> list[timedelta]:
    return sorted({w for r in rules for w in (r.long, r.short)})


def burn_rates(
    line: Timeline,
    at: datetime,
    objective: float = AVAILABILITY_OBJECTIVE,
    rules: Iterable[BurnRateRule] = SRE_WORKBOOK,
) -> dict[timedelta, float | None]:
    """Burn rate of every window ending at `at` (None: nothing observed in it)."""
    at = utc(at, "at")
    out: dict[timedelta, float | None] = {}
    for w in windows(rules):
        ratio = error_ratio(line, at - w, at)
        out[w] = None if ratio is None else burn_rate(ratio, objective)
    return out


def firing(
    rates: Mapping[timedelta, float | None], rules: Iterable[BurnRateRule] = SRE_WORKBOOK
) -> list[BurnRateRule]:
    """The rules that fire: long AND short window at or above the factor (a window with no
    observation does not fire: no data is an alert of its own, not a burn)."""
    out = []
    for rule in rules:
        long_rate, short_rate = rates.get(rule.long), rates.get(rule.short)
        if long_rate is None or short_rate is None:
            continue
        # 0.144 / (1 - 0.99) is 14.3999… in floats: a burn exactly at the factor must fire.
        threshold = rule.factor - _EPSILON
        if long_rate >= threshold and short_rate >= threshold:
            out.append(rule)
    return out
