"""Clocks: the immutable record of one indicator measured on a ticket or incident; alerts."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import StrEnum

from bsante.sla_monitor.contract.calendars import Interval, utc
from bsante.sla_monitor.contract.errors import ClockStopped, TimeOutOfOrder
from bsante.sla_monitor.contract.indicators import (
    BY_ID,
    CalendarKind,
    Calendars,
    Indicator,
    IndicatorId,
    Priority,
)


class StopReason(StrEnum):
    STOP_EVENT = "stop_event"  # the indicator's stop event happened (taken in, resolved, ...)
    PRIORITY_CHANGED = "priority_changed"  # superseded by a new clock at the new priority


class Outcome(StrEnum):
    MET = "met"
    BREACHED = "breached"
    RUNNING = "running"  # not stopped, within target so far
    SUPERSEDED = "superseded"  # ended by a priority change before its target was spent


@dataclass(frozen=True)
class Pause:
    """A waiting-for-customer interval; `end` is None while the ticket still waits."""

    start: datetime
    end: datetime | None = None


@dataclass(frozen=True)
class Clock:
    """One measured promise. Never edited in place: pausing, resuming and stopping return a new
    record that keeps everything before it, so a deadline only moves by a recorded pause.

    `deadline` is None while paused (the remaining time is frozen, the end is not known yet);
    `initial_deadline` is the deadline computed when the clock started.
    """

    indicator: IndicatorId
    sequence: int  # n-th clock of this indicator on its subject (a priority change adds one)
    calendar: CalendarKind
    target: timedelta
    priority: Priority
    started_at: datetime
    initial_deadline: datetime
    deadline: datetime | None
    pausable: bool = False
    pauses: tuple[Pause, ...] = ()
    stopped_at: datetime | None = None
    stop_reason: StopReason | None = None

    @classmethod
    def start(
        cls,
        indicator: Indicator,
        at: datetime,
        priority: Priority,
        calendars: Calendars,
        sequence: int = 1,
    ) -> Clock:
        at = utc(at, "at")
        deadline = calendars[indicator.calendar].add(at, indicator.target)
        return cls(
            indicator=indicator.id,
            sequence=sequence,
            calendar=indicator.calendar,
            target=indicator.target,
            priority=priority,
            started_at=at,
            initial_deadline=deadline,
            deadline=deadline,
            pausable=indicator.pausable,
        )

    @property
    def running(self) -> bool:
        return self.stopped_at is None

    @property
    def paused(self) -> bool:
        return bool(self.pauses) and self.pauses[-1].end is None

    def pause_intervals(self, at: datetime) -> list[Interval]:
        """Pauses as intervals, an ongoing one ending at `at`."""
        return [(p.start, p.end if p.end is not None else at) for p in self.pauses]

    def _check_running(self, at: datetime) -> datetime:
        at = utc(at, "at")
        if not self.running:
            raise ClockStopped(f"{self.indicator} clock {self.sequence} is stopped")
        last = self.started_at
        if self.pauses:
            last = self.pauses[-1].end or self.pauses[-1].start
        if at < last:
            raise TimeOutOfOrder(str(self.indicator), at.isoformat(), last.isoformat())
        return at

    def pause(self, at: datetime) -> Clock:
        at = self._check_running(at)
        if not self.pausable or self.paused:
            return self
        return replace(self, pauses=(*self.pauses, Pause(at)), deadline=None)

    def resume(self, at: datetime, calendars: Calendars) -> Clock:
        at = self._check_running(at)
        if not self.paused:
            return self
        pauses = (*self.pauses[:-1], Pause(self.pauses[-1].start, at))
        resumed = replace(self, pauses=pauses)
        deadline = calendars[self.calendar].add(
            self.started_at, self.target, resumed.pause_intervals(at)
        )
        return replace(resumed, deadline=deadline)

    def stop(self, at: datetime, reason: StopReason = StopReason.STOP_EVENT) -> Clock:
        at = self._check_running(at)
        # Stopping a paused clock closes its pause at the same instant.
        pauses = self.pauses
        if self.paused:
            pauses = (*pauses[:-1], Pause(pauses[-1].start, at))
        return replace(self, pauses=pauses, stopped_at=at, stop_reason=reason)

    def elapsed(self, calendars: Calendars, at: datetime) -> timedelta:
        """Open, unpaused time consumed up to `at` (or up to the stop)."""
        at = utc(at, "at")
        end = at if self.stopped_at is None else min(at, self.stopped_at)
        return calendars[self.calendar].elapsed(self.started_at, end, self.pause_intervals(end))

    def remaining(self, calendars: Calendars, at: datetime) -> timedelta:
        return self.target - self.elapsed(calendars, at)

    def outcome(self, calendars: Calendars, at: datetime) -> Outcome:
        """Where the clock stands at `at` (a running clock past its target is already breached)."""
        at = utc(at, "at")
        end = at if self.stopped_at is None else min(at, self.stopped_at)
        # Up to the deadline, at most the target is spent: skip the calendar walk. After it, the
        # walk decides (stopping at 19:00 after an 18:00 deadline with nothing open in between
        # spends exactly the target: met).
        if self.deadline is None or end > self.deadline:
            if self.elapsed(calendars, at) > self.target:
                return Outcome.BREACHED
        if self.stopped_at is None:
            return Outcome.RUNNING
        if self.stop_reason is StopReason.PRIORITY_CHANGED:
            return Outcome.SUPERSEDED
        return Outcome.MET


def deadline_of(
    indicator: IndicatorId,
    start: datetime,
    calendars: Calendars,
    pauses: Iterable[Interval] = (),
) -> datetime:
    """The deadline of `indicator` for a clock started at `start` with these pauses: the check
    ops can run from outside against any ticket."""
    spec = BY_ID[indicator]
    return calendars[spec.calendar].add(start, spec.target, pauses if spec.pausable else ())


@dataclass(frozen=True)
class EscalationLevel:
    """An alert at `offset` from the deadline, in the clock's own calendar time (negative: before;
    GLPI's SLA levels). `name` says who is warned."""

    name: str
    offset: timedelta


@dataclass(frozen=True)
class Alert:
    key: str  # stable: subject, indicator, clock sequence, level; the caller records it once fired
    subject_id: str
    indicator: IndicatorId
    sequence: int
    level: str
    due_at: datetime


def levels_for(clock: Clock) -> tuple[EscalationLevel, ...]:
    """Default levels: at 80 % of the target, and when the target is spent."""
    return (
        EscalationLevel("warning", -(clock.target / 5)),
        EscalationLevel("deadline_reached", timedelta(0)),
    )


def due_alerts(
    subject_id: str,
    clocks: Iterable[Clock],
    calendars: Calendars,
    at: datetime,
    fired: Sequence[str] | frozenset[str] = frozenset(),
    levels: Sequence[EscalationLevel] | None = None,
) -> list[Alert]:
    """Alerts whose time has come at `at` and that were not fired yet.

    Decided from the active time consumed, not from a scheduled instant, so a late or restarted
    scheduler still fires every missed level once (GLPI's levels that never fired), a paused clock
    fires nothing while it waits, and each level belongs to one clock (a TTO level stays a TTO one).
    """
    at = utc(at, "at")
    done = frozenset(fired)
    out: list[Alert] = []
    for clock in clocks:
        if not clock.running:
            continue
        spent = clock.elapsed(calendars, at)
        for level in levels if levels is not None else levels_for(clock):
            threshold = clock.target + level.offset
            if spent < threshold or threshold < timedelta(0):
                continue
            key = f"{subject_id}:{clock.indicator}:{clock.sequence}:{level.name}"
            if key in done:
                continue
            due_at = calendars[clock.calendar].add(
                clock.started_at, threshold, clock.pause_intervals(at)
            )
            out.append(Alert(key, subject_id, clock.indicator, clock.sequence, level.name, due_at))
    return out
