"""Business-time calendars of the contract: service hours, 24/7 and working days, with pauses."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import holidays as holidays_lib

from bsante.sla_monitor.contract.errors import NaiveDatetime, NoOpenTime

PARIS = ZoneInfo("Europe/Paris")
ZERO = timedelta(0)
# A calendar with no open time in ten years is a configuration error, not a long wait.
_SEARCH_LIMIT_DAYS = 3660

Interval = tuple[datetime, datetime]


def require_aware(at: datetime, name: str = "datetime") -> datetime:
    """Reject naive datetimes: a naive time has no place on a calendar with DST changes."""
    if at.tzinfo is None or at.utcoffset() is None:
        raise NaiveDatetime(name)
    return at


def utc(at: datetime, name: str = "datetime") -> datetime:
    """Aware, in UTC. Python subtracts and compares two datetimes of the same zone on the wall
    clock (a fall-back night would count 3 hours as 4), so arithmetic is done in UTC only, and
    only UTC is stored and returned; local time is for display."""
    tz = at.tzinfo
    if tz is UTC:
        return at
    if tz is None or at.utcoffset() is None:
        raise NaiveDatetime(name)
    return at.astimezone(UTC)


def merge_intervals(intervals: Iterable[Interval]) -> list[Interval]:
    """Sorted, disjoint, non-empty intervals (overlapping or touching ones are joined)."""
    out: list[Interval] = []
    for a, b in sorted((utc(a, "pause start"), utc(b, "pause end")) for a, b in intervals):
        if b <= a:
            continue
        if out and a <= out[-1][1]:
            if b > out[-1][1]:
                out[-1] = (out[-1][0], b)
        else:
            out.append((a, b))
    return out


def _subtract(a: datetime, b: datetime, holes: Sequence[Interval]) -> Iterator[Interval]:
    """Parts of [a, b) outside the merged `holes`."""
    cursor = a
    for ha, hb in holes:
        if hb <= cursor:
            continue
        if ha >= b:
            break
        if ha > cursor:
            yield cursor, ha
        cursor = max(cursor, hb)
        if cursor >= b:
            return
    if cursor < b:
        yield cursor, b


@dataclass(frozen=True, slots=True)
class Segment:
    """Open hours of one weekday, in local wall-clock minutes since midnight (1440 = midnight)."""

    start_minute: int
    end_minute: int

    def __post_init__(self) -> None:
        if not 0 <= self.start_minute < self.end_minute <= 1440:
            raise ValueError("a segment is 0 <= start < end <= 1440 minutes")


def hours(start: int, end: int) -> Segment:
    return Segment(start * 60, end * 60)


class FrenchHolidays:
    """French public holidays from the `holidays` package, optionally with Alsace-Moselle's two."""

    def __init__(self, *, alsace_moselle: bool = False) -> None:
        self.alsace_moselle = alsace_moselle
        # "57" (Moselle) carries Good Friday and 26 December; "6AE" (Alsace) has the same days.
        # The deprecated "GES" code silently gives the 11 national days only.
        self._subdivision = "57" if alsace_moselle else None
        self._years: dict[int, dict[date, str]] = {}

    def _year(self, year: int) -> dict[date, str]:
        days = self._years.get(year)
        if days is None:
            table = holidays_lib.country_holidays("FR", subdiv=self._subdivision, years=year)
            days = {d: str(name) for d, name in table.items()}
            self._years[year] = days
        return days

    def __contains__(self, day: object) -> bool:
        return isinstance(day, date) and day in self._year(day.year)

    def name(self, day: date) -> str | None:
        return self._year(day.year).get(day)

    def between(self, first: date, last: date) -> list[date]:
        return sorted(
            d for y in range(first.year, last.year + 1) for d in self._year(y) if first <= d <= last
        )


class NoHolidays:
    """The empty holiday set (24/7)."""

    def __contains__(self, day: object) -> bool:
        return False

    def name(self, day: date) -> str | None:
        return None


HolidaySet = FrenchHolidays | NoHolidays


class Calendar:
    """A weekly calendar with holidays in a time zone; durations are real elapsed open time.

    Open time is measured in real seconds (UTC differences), so a 24/7 night that loses or gains
    an hour at a DST change counts 23 or 25 hours, while 8–18 service hours never cross a change.
    """

    def __init__(
        self,
        name: str,
        week: Mapping[int, Sequence[Segment]],
        holidays: HolidaySet,
        tz: ZoneInfo = PARIS,
    ) -> None:
        self.name = name
        self.tz = tz
        self.holidays = holidays
        self._week = {
            wd: tuple(sorted(week.get(wd, ()), key=lambda s: s.start_minute)) for wd in range(7)
        }
        if not any(self._week.values()):
            raise NoOpenTime(name)
        self._days: dict[date, tuple[Interval, ...]] = {}

    def __repr__(self) -> str:
        return f"Calendar({self.name!r})"

    # Per local day, its open intervals as UTC datetimes; cached, calendars are long-lived.
    def day_intervals(self, day: date) -> tuple[Interval, ...]:
        cached = self._days.get(day)
        if cached is not None:
            return cached
        if day in self.holidays:
            out: tuple[Interval, ...] = ()
        else:
            midnight = datetime(day.year, day.month, day.day, tzinfo=self.tz)
            # Wall-clock arithmetic on a same-zone aware datetime, then to UTC: 08:00 stays 08:00
            # local whatever the offset of the day.
            out = tuple(
                (
                    (midnight + timedelta(minutes=s.start_minute)).astimezone(UTC),
                    (midnight + timedelta(minutes=s.end_minute)).astimezone(UTC),
                )
                for s in self._week[day.weekday()]
            )
        self._days[day] = out
        return out

    def _local_day(self, at: datetime) -> date:
        return at.astimezone(self.tz).date()

    def open_intervals(self, start: datetime, end: datetime | None = None) -> Iterator[Interval]:
        """Open intervals from `start` (clipped), up to `end` when given, in time order (UTC)."""
        start = utc(start, "start")
        stop = utc(end, "end") if end is not None else None
        day = self._local_day(start) - timedelta(days=1)
        empty_days = 0
        while True:
            found = False
            for a, b in self.day_intervals(day):
                found = True
                if b <= start:
                    continue
                if stop is not None and a >= stop:
                    return
                yield max(a, start), (min(b, stop) if stop is not None else b)
            if stop is not None and self._local_day(stop) < day:
                return
            empty_days = 0 if found else empty_days + 1
            if empty_days > _SEARCH_LIMIT_DAYS:
                raise NoOpenTime(self.name)
            day += timedelta(days=1)

    def is_open(self, at: datetime) -> bool:
        at = utc(at, "at")
        return any(a <= at < b for a, b in self.day_intervals(self._local_day(at)))

    def next_open(self, at: datetime) -> datetime:
        """The first open instant at or after `at` (where a clock started at `at` really starts)."""
        return self.add(at, ZERO)

    def elapsed(self, start: datetime, end: datetime, pauses: Iterable[Interval] = ()) -> timedelta:
        """Open time in [start, end) outside the pauses."""
        start, end = utc(start, "start"), utc(end, "end")
        if end <= start:
            return ZERO
        holes = merge_intervals(pauses)
        total = ZERO
        for a, b in self.open_intervals(start, end):
            for x, y in _subtract(a, b, holes):
                total += y - x
        return total

    def add(
        self, start: datetime, duration: timedelta, pauses: Iterable[Interval] = ()
    ) -> datetime:
        """The deadline: the first instant where `duration` of open, unpaused time has elapsed.

        A positive duration ends inside open hours (possibly exactly at closing time); a zero
        duration gives the first open instant, which is where a clock opened on a Sunday starts.
        Returned in UTC, like every time this package returns: a Paris time in the repeated
        autumn hour (fold=1) never compares equal to a time of another zone (PEP 495).
        """
        start = utc(start, "start")
        if duration < ZERO:
            raise ValueError("duration must not be negative")
        holes = merge_intervals(pauses)
        remaining = duration
        for a, b in self.open_intervals(start):
            for x, y in _subtract(a, b, holes):
                if remaining == ZERO:
                    return x
                span = y - x
                if span >= remaining:
                    return x + remaining
                remaining -= span
        raise NoOpenTime(self.name)  # pragma: no cover - open_intervals raises first


class AlwaysOpenCalendar(Calendar):
    """24/7: every real second counts; same answers as the weekly engine, computed directly."""

    def __init__(self, tz: ZoneInfo = PARIS) -> None:
        super().__init__("24x7", {wd: (Segment(0, 1440),) for wd in range(7)}, NoHolidays(), tz)

    def is_open(self, at: datetime) -> bool:
        require_aware(at, "at")
        return True

    def elapsed(self, start: datetime, end: datetime, pauses: Iterable[Interval] = ()) -> timedelta:
        start, end = utc(start, "start"), utc(end, "end")
        if end <= start:
            return ZERO
        total = end - start
        for a, b in merge_intervals(pauses):
            lo, hi = max(a, start), min(b, end)
            if hi > lo:
                total -= hi - lo
        return total

    def add(
        self, start: datetime, duration: timedelta, pauses: Iterable[Interval] = ()
    ) -> datetime:
        if duration < ZERO:
            raise ValueError("duration must not be negative")
        cursor, remaining = utc(start, "start"), duration
        for a, b in merge_intervals(pauses):
            if b <= cursor:
                continue
            if a > cursor + remaining or (remaining > ZERO and a == cursor + remaining):
                break
            remaining -= max(a - cursor, ZERO)
            cursor = b
        return cursor + remaining


WEEKDAYS = (0, 1, 2, 3, 4)
SATURDAY = 5


def service_hours(*, alsace_moselle: bool = False, tz: ZoneInfo = PARIS) -> Calendar:
    """The contract's support hours: Monday–Friday 8–18, Saturday 8–12, French public holidays."""
    week: dict[int, tuple[Segment, ...]] = {wd: (hours(8, 18),) for wd in WEEKDAYS}
    week[SATURDAY] = (hours(8, 12),)
    name = "service_hours_alsace_moselle" if alsace_moselle else "service_hours"
    return Calendar(name, week, FrenchHolidays(alsace_moselle=alsace_moselle), tz)


def working_days(*, alsace_moselle: bool = False, tz: ZoneInfo = PARIS) -> Calendar:
    """Jours ouvrés: whole days Monday–Friday except public holidays.

    A working day is 24 real hours (Europe/Paris changes its offset on Sunday nights only), so
    "4 jours ouvrés" is `timedelta(days=4)` on this calendar: from Wednesday 10:00, Tuesday 10:00.
    """
    week = {wd: (Segment(0, 1440),) for wd in WEEKDAYS}
    name = "working_days_alsace_moselle" if alsace_moselle else "working_days"
    return Calendar(name, week, FrenchHolidays(alsace_moselle=alsace_moselle), tz)


def always_open(tz: ZoneInfo = PARIS) -> AlwaysOpenCalendar:
    return AlwaysOpenCalendar(tz)
