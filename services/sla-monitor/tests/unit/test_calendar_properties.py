"""Properties of business-time arithmetic, checked with hypothesis on the contract's calendars."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from bsante.sla_monitor.contract.calendars import (
    Calendar,
    NoHolidays,
    Segment,
    always_open,
    service_hours,
    working_days,
)

CALENDARS = {
    "service_hours": service_hours(),
    "service_hours_am": service_hours(alsace_moselle=True),
    "working_days": working_days(),
    "24x7": always_open(),
}
GENERIC_ALWAYS = Calendar("all", {wd: (Segment(0, 1440),) for wd in range(7)}, NoHolidays())

# 2026–2028 cover both DST changes, Easter on a DST Sunday (2027) and Christmas on weekdays.
instants = st.datetimes(
    min_value=datetime(2026, 1, 1), max_value=datetime(2028, 12, 31), timezones=st.just(UTC)
).map(lambda d: d.replace(microsecond=0))
durations = st.integers(min_value=0, max_value=200 * 3600).map(lambda s: timedelta(seconds=s))
calendar_names = st.sampled_from(sorted(CALENDARS))
FAST = settings(max_examples=100, deadline=None)


def _inside_open_hours(cal: Calendar, at: datetime) -> bool:
    """Open hours taken as closed intervals: a deadline may be exactly closing time."""
    day = at.astimezone(cal.tz).date()
    return any(
        a <= at <= b for d in (day - timedelta(days=1), day) for a, b in cal.day_intervals(d)
    )


@FAST
@given(calendar_names, instants, durations)
def test_add_then_elapsed_gives_back_the_duration(name: str, start: datetime, d: timedelta) -> None:
    cal = CALENDARS[name]
    assert cal.elapsed(start, cal.add(start, d)) == d


@FAST
@given(calendar_names, instants, instants)
def test_add_of_elapsed_is_the_end_when_the_end_is_in_open_hours(
    name: str, a: datetime, b: datetime
) -> None:
    cal = CALENDARS[name]
    start, end = min(a, b), max(a, b)
    spent = cal.elapsed(start, end)
    if spent > timedelta(0) and _inside_open_hours(cal, end):
        assert cal.add(start, spent) == end
    elif cal.is_open(end):
        # Nothing open between them: the end is where a clock started at `start` starts.
        assert cal.add(start, spent) == end == cal.next_open(start)


@FAST
@given(calendar_names, instants, instants, instants)
def test_elapsed_is_additive(name: str, a: datetime, b: datetime, c: datetime) -> None:
    cal = CALENDARS[name]
    x, y, z = sorted((a, b, c))
    assert cal.elapsed(x, z) == cal.elapsed(x, y) + cal.elapsed(y, z)


@FAST
@given(calendar_names, instants, durations.filter(lambda d: d > timedelta(0)))
def test_deadlines_never_fall_outside_open_hours(name: str, start: datetime, d: timedelta) -> None:
    cal = CALENDARS[name]
    deadline = cal.add(start, d)
    assert _inside_open_hours(cal, deadline)
    assert deadline.tzinfo is UTC


@FAST
@given(
    calendar_names,
    instants,
    durations,
    st.lists(st.tuples(instants, st.integers(0, 72 * 3600)), max_size=4),
)
def test_pauses_extend_the_deadline_by_exactly_the_paused_open_time(
    name: str, start: datetime, d: timedelta, raw: list[tuple[datetime, int]]
) -> None:
    cal = CALENDARS[name]
    pauses = [(p, p + timedelta(seconds=s)) for p, s in raw]
    deadline = cal.add(start, d, pauses)
    assert deadline >= cal.add(start, d)
    assert cal.elapsed(start, deadline, pauses) == d


@FAST
@given(instants, durations, st.lists(st.tuples(instants, st.integers(0, 72 * 3600)), max_size=3))
def test_the_24x7_shortcut_equals_the_generic_engine(
    start: datetime, d: timedelta, raw: list[tuple[datetime, int]]
) -> None:
    pauses = [(p, p + timedelta(seconds=s)) for p, s in raw]
    fast = always_open()
    assert fast.add(start, d, pauses) == GENERIC_ALWAYS.add(start, d, pauses)
    end = start + d
    assert fast.elapsed(start, end, pauses) == GENERIC_ALWAYS.elapsed(start, end, pauses)
