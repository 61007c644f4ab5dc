"""Monthly compliance per indicator: share of clocks within target and the list of breaches."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Protocol
from zoneinfo import ZoneInfo

from bsante.sla_monitor.contract.calendars import PARIS, utc
from bsante.sla_monitor.contract.clocks import Clock, Outcome
from bsante.sla_monitor.contract.indicators import BY_ID, Calendars, IndicatorId


class Measured(Protocol):
    """A ticket or an incident: anything with an id, its calendars and its clocks."""

    @property
    def id(self) -> str: ...

    @property
    def calendars(self) -> Calendars: ...

    @property
    def clocks(self) -> list[Clock]: ...


@dataclass(frozen=True)
class Breach:
    subject_id: str
    indicator: IndicatorId
    sequence: int
    started_at: datetime
    deadline: datetime | None  # None: breached while paused (waiting for the customer)
    elapsed: timedelta
    target: timedelta
    stopped_at: datetime | None  # None: still running, already late


@dataclass
class IndicatorMonth:
    """One indicator in one month; a clock belongs to the month (local time) it started in."""

    month: str
    indicator: IndicatorId
    objective: float
    met: int = 0
    running: int = 0  # not stopped and still within target at the computation time
    superseded: int = 0  # ended by a priority change in time: replaced, not measured
    breaches: list[Breach] = field(default_factory=list)

    @property
    def measured(self) -> int:
        return self.met + len(self.breaches)

    @property
    def share(self) -> float | None:
        return self.met / self.measured if self.measured else None

    @property
    def compliant(self) -> bool:
        share = self.share
        return share is None or share >= self.objective


def month_of(at: datetime, tz: ZoneInfo = PARIS) -> str:
    local = at.astimezone(tz)
    return f"{local.year:04d}-{local.month:02d}"


def compliance(
    subjects: Iterable[Measured], at: datetime, tz: ZoneInfo = PARIS
) -> dict[tuple[str, IndicatorId], IndicatorMonth]:
    """Every clock of every subject judged at `at`, grouped by (month, indicator).

    A running clock past its target is a breach already (the alert must not wait for the
    ticket to close); a clock superseded by a priority change counts only if it was late then.
    """
    at = utc(at, "at")
    out: dict[tuple[str, IndicatorId], IndicatorMonth] = {}
    for subject in subjects:
        calendars = subject.calendars
        for clock in subject.clocks:
            if clock.started_at > at:
                continue
            key = (month_of(clock.started_at, tz), clock.indicator)
            row = out.get(key)
            if row is None:
                row = IndicatorMonth(key[0], clock.indicator, BY_ID[clock.indicator].objective)
                out[key] = row
            outcome = clock.outcome(calendars, at)
            if outcome is Outcome.MET:
                row.met += 1
            elif outcome is Outcome.RUNNING:
                row.running += 1
            elif outcome is Outcome.SUPERSEDED:
                row.superseded += 1
            else:
                row.breaches.append(
                    Breach(
                        subject.id,
                        clock.indicator,
                        clock.sequence,
                        clock.started_at,
                        clock.deadline,
                        clock.elapsed(calendars, at),
                        clock.target,
                        clock.stopped_at,
                    )
                )
    return out
