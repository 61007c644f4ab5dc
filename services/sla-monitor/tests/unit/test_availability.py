"""Availability from probe samples on both bases; burn rates and the multi-window alert table."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from bsante.sla_monitor.contract.availability import (
    SRE_WORKBOOK,
    Action,
    Period,
    Sample,
    availability,
    availability_report,
    burn_rate,
    burn_rates,
    error_ratio,
    firing,
    periods,
    platform_timeline,
    timeline,
)
from bsante.sla_monitor.contract.calendars import PARIS
from bsante.sla_monitor.contract.indicators import CalendarKind, Calendars

CAL = Calendars()
H = timedelta(hours=1)
M = timedelta(minutes=1)


def paris(*args: int) -> datetime:
    return datetime(*args, tzinfo=PARIS)  # type: ignore[misc]


def every(start: datetime, end: datetime, step: timedelta, down: list[tuple[datetime, datetime]]):  # type: ignore[no-untyped-def]
    out, t = [], start.astimezone(UTC)
    while t < end:
        out.append(Sample(t, not any(a <= t < b for a, b in down)))
        t += step
    return out


def test_a_night_outage_counts_on_24x7_only() -> None:
    day = (paris(2026, 12, 7), paris(2026, 12, 8))  # Monday
    samples = every(*day, M, [(paris(2026, 12, 7, 2), paris(2026, 12, 7, 4))])
    line = timeline(samples, day[1])
    assert line.down == ((paris(2026, 12, 7, 2), paris(2026, 12, 7, 4)),)
    always, service = availability_report(line, CAL, Period.DAY, *day)[0]
    assert always.basis is CalendarKind.ALWAYS and always.observed == 24 * H
    assert always.down == 2 * H and always.ratio == pytest.approx(22 / 24)
    assert service.observed == 10 * H and service.down == timedelta(0) and service.ratio == 1.0
    assert not always.meets() and service.meets()


def test_a_daytime_outage_weighs_more_on_service_hours() -> None:
    day = (paris(2026, 12, 7), paris(2026, 12, 8))
    line = timeline(
        [
            Sample(day[0], True),
            Sample(paris(2026, 12, 7, 9), False),
            Sample(paris(2026, 12, 7, 10), True),
        ],
        day[1],
    )
    always = availability(line, CAL[CalendarKind.ALWAYS], CalendarKind.ALWAYS, *day)
    service = availability(line, CAL[CalendarKind.SERVICE_HOURS], CalendarKind.SERVICE_HOURS, *day)
    assert always.ratio == pytest.approx(1 - 1 / 24)
    assert service.ratio == pytest.approx(0.9)


def test_unobserved_time_is_not_counted_as_up_or_down() -> None:
    line = timeline([Sample(paris(2026, 12, 7, 12), False)], paris(2026, 12, 7, 13))
    a = availability(
        line, CAL[CalendarKind.ALWAYS], CalendarKind.ALWAYS, paris(2026, 12, 7), paris(2026, 12, 8)
    )
    assert (a.observed, a.down, a.ratio) == (H, H, 0.0)
    empty = timeline([], paris(2026, 12, 8))
    e = availability(
        empty, CAL[CalendarKind.ALWAYS], CalendarKind.ALWAYS, paris(2026, 12, 7), paris(2026, 12, 8)
    )
    assert e.ratio is None and e.meets() is None


def test_the_platform_is_down_when_any_service_is() -> None:
    end = paris(2026, 12, 7, 12)
    a = timeline(
        [
            Sample(paris(2026, 12, 7, 8), True),
            Sample(paris(2026, 12, 7, 9), False),
            Sample(paris(2026, 12, 7, 10), True),
        ],
        end,
    )
    b = timeline(
        [
            Sample(paris(2026, 12, 7, 8, 30), True),
            Sample(paris(2026, 12, 7, 9, 30), False),
            Sample(paris(2026, 12, 7, 11), True),
        ],
        end,
    )
    p = platform_timeline([a, b])
    assert p.observed_from == paris(2026, 12, 7, 8, 30)
    assert p.down == ((paris(2026, 12, 7, 9), paris(2026, 12, 7, 11)),)


def test_periods_are_local_days_iso_weeks_and_months() -> None:
    days = periods(Period.DAY, paris(2027, 3, 27, 12), paris(2027, 3, 29))
    assert [b - a for a, b in ((x.astimezone(UTC), y.astimezone(UTC)) for x, y in days)] == [
        24 * H,
        23 * H,  # the spring-forward day
    ]
    weeks = periods(Period.WEEK, paris(2026, 12, 2), paris(2026, 12, 15))
    assert [a for a, _ in weeks] == [paris(2026, 11, 30), paris(2026, 12, 7), paris(2026, 12, 14)]
    months = periods(Period.MONTH, paris(2026, 11, 15), paris(2027, 2, 1))
    assert [(a.month, b.month) for a, b in months] == [(11, 12), (12, 1), (1, 2)]


def test_monthly_budget_of_99_percent() -> None:
    month = (paris(2026, 11, 1), paris(2026, 12, 1))  # 30 days
    budget = timedelta(hours=7, minutes=12)  # 1 % of 720 h
    start = paris(2026, 11, 10, 20)
    line = timeline(
        [Sample(month[0], True), Sample(start, False), Sample(start + budget, True)], month[1]
    )
    always, _ = availability_report(line, CAL, Period.MONTH, *month)[0]
    assert always.ratio == pytest.approx(0.99) and always.meets()


def test_burn_rate_formula() -> None:
    assert burn_rate(0.01, 0.99) == pytest.approx(1.0)
    assert burn_rate(0.144, 0.99) == pytest.approx(14.4)


def test_the_workbook_table() -> None:
    assert [(r.action, r.long, r.short, r.factor) for r in SRE_WORKBOOK] == [
        (Action.PAGE, H, 5 * M, 14.4),
        (Action.PAGE, 6 * H, 30 * M, 6.0),
        (Action.TICKET, timedelta(days=3), 6 * H, 1.0),
    ]


def rates(**by_window: float | None) -> dict[timedelta, float | None]:
    names = {
        "h1": H,
        "m5": 5 * M,
        "h6": 6 * H,
        "m30": 30 * M,
        "d3": timedelta(days=3),
        "h6s": 6 * H,
    }
    return {names[k]: v for k, v in by_window.items()}


def test_both_windows_must_burn() -> None:
    page_fast = next(r for r in SRE_WORKBOOK if r.long == H)
    # Long window burning but the short one recovered: no page (the alert resets fast).
    assert page_fast not in firing(rates(h1=20.0, m5=0.0, h6=1.0, m30=0.0, d3=0.1))
    assert page_fast not in firing(rates(h1=1.0, m5=100.0, h6=1.0, m30=1.0, d3=0.1))
    assert firing(rates(h1=14.4, m5=14.4, h6=1.0, m30=1.0, d3=0.1)) == [page_fast]
    assert firing(rates(h1=None, m5=50.0)) == []


def test_a_full_outage_fires_the_fast_page_after_the_long_window_burns() -> None:
    at = paris(2026, 12, 10, 12)
    start = at - timedelta(days=4)
    # Down for the last 9 minutes: 9/60 of the hour = 15 % > 14.4 %, and 100 % of 5 min.
    line = timeline([Sample(start, True), Sample(at - 9 * M, False)], at)
    assert error_ratio(line, at - H, at) == pytest.approx(0.15)
    r = burn_rates(line, at)
    assert r[5 * M] == pytest.approx(100.0) and r[H] == pytest.approx(15.0)
    assert [x.long for x in firing(r)] == [H]
    # 8 minutes only: 13.3× on the hour, no page yet.
    line8 = timeline([Sample(start, True), Sample(at - 8 * M, False)], at)
    assert firing(burn_rates(line8, at)) == []


def test_a_slow_leak_opens_a_ticket_not_a_page() -> None:
    at = paris(2026, 12, 10, 12)
    start = at - timedelta(days=4)
    samples = []
    t = start
    # 2 down minutes in every hour: 3.3 % errors, 3.3×: over 1× but under 6× and 14.4×.
    while t < at:
        samples += [Sample(t, True), Sample(t + 58 * M, False)]
        t += H
    line = timeline(samples, at)
    assert [x.action for x in firing(burn_rates(line, at))] == [Action.TICKET]
