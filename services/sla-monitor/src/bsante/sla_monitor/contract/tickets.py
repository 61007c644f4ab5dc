"""Support tickets and incidents: the state machine, its dated history and the clocks it drives."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from bsante.sla_monitor.contract.calendars import utc
from bsante.sla_monitor.contract.clocks import Clock, StopReason
from bsante.sla_monitor.contract.errors import AlreadyDone, InvalidTransition, TimeOutOfOrder
from bsante.sla_monitor.contract.indicators import (
    BY_ID,
    INDICATORS,
    CalendarKind,
    Calendars,
    Category,
    Event,
    Indicator,
    IndicatorId,
    Phase,
    Priority,
)


class State(StrEnum):
    NEW = "new"
    TAKEN_IN = "taken_in"
    QUALIFIED = "qualified"
    ESCALATED = "escalated"
    WAITING_FOR_CUSTOMER = "waiting_for_customer"
    RESOLVED = "resolved"
    CLOSED = "closed"


_WORKING = frozenset({State.TAKEN_IN, State.QUALIFIED, State.ESCALATED})


@dataclass(frozen=True)
class Step:
    """One dated line of a ticket's history."""

    action: str
    at: datetime
    state: State
    priority: Priority


class _Subject:
    """What tickets and incidents share: an id, a dated history and clocks."""

    id: str
    calendars: Calendars
    clocks: list[Clock]
    history: list[Step]
    priority: Priority

    def _check_time(self, action: str, at: datetime) -> datetime:
        """`at` in UTC (every stored time is), not before the last step."""
        at = utc(at, "at")
        if self.history and at < self.history[-1].at:
            raise TimeOutOfOrder(action, at.isoformat(), self.history[-1].at.isoformat())
        return at

    def _next_sequence(self, indicator: IndicatorId) -> int:
        return 1 + sum(1 for c in self.clocks if c.indicator is indicator)

    def _start(self, indicator: Indicator, at: datetime) -> None:
        self.clocks.append(
            Clock.start(
                indicator, at, self.priority, self.calendars, self._next_sequence(indicator.id)
            )
        )

    def _stop_on(self, event: Event, at: datetime) -> None:
        self.clocks = [
            c.stop(at) if c.running and BY_ID[c.indicator].stops_on is event else c
            for c in self.clocks
        ]

    def running_clocks(self) -> list[Clock]:
        return [c for c in self.clocks if c.running]


class Ticket(_Subject):
    """A support ticket of a structure. Transitions check the state and the order of times;
    each step stops the clocks it ends and starts the ones it begins."""

    def __init__(
        self,
        ticket_id: str,
        structure_id: str,
        category: Category,
        priority: Priority,
        opened_at: datetime,
        calendars: Calendars,
        phase: Phase | None = None,
    ) -> None:
        opened_at = utc(opened_at, "opened_at")
        self.id = ticket_id
        self.structure_id = structure_id
        self.category = category
        self.priority = priority
        self.phase = phase
        self.calendars = calendars
        self.opened_at = opened_at
        # Kept: a ticket opened on a Sunday is measured from its opening, and its service-hours
        # clocks only start consuming on Monday 08:00 (calendar.next_open).
        self.opened_in_service_hours = calendars[CalendarKind.SERVICE_HOURS].is_open(opened_at)
        self.state = State.NEW
        self.needs_level2 = False
        self._resume_to: State | None = None
        self.clocks = []
        self.history = [Step("open", opened_at, State.NEW, priority)]
        self._events: set[Event] = {Event.OPENED}
        self._start_applicable(Event.OPENED, opened_at)

    def __repr__(self) -> str:
        return f"Ticket({self.id!r}, {self.state.value}, {self.priority.value})"

    def _applies(self, indicator: Indicator, priority: Priority) -> bool:
        return indicator.applies(self.category, priority, self.phase, self.opened_in_service_hours)

    def _start_applicable(self, event: Event, at: datetime) -> None:
        for indicator in INDICATORS:
            if indicator.starts_on is event and self._applies(indicator, self.priority):
                self._start(indicator, at)

    def _record(self, action: str, at: datetime, state: State, *events: Event) -> None:
        self.state = state
        self.history.append(Step(action, at, state, self.priority))
        for event in events:
            self._events.add(event)
            self._stop_on(event, at)
            self._start_applicable(event, at)

    def _require(self, action: str, at: datetime, allowed: frozenset[State]) -> datetime:
        if self.state not in allowed:
            raise InvalidTransition(action, self.state.value)
        return self._check_time(action, at)

    def take_in(self, at: datetime) -> None:
        if self.state is not State.NEW:
            raise AlreadyDone("take in", self.state.value)
        at = self._check_time("take in", at)
        self._record("take_in", at, State.TAKEN_IN, Event.TAKEN_IN)

    def qualify(self, at: datetime, *, needs_level2: bool = False) -> None:
        if Event.QUALIFIED in self._events:
            raise AlreadyDone("qualify", self.state.value)
        at = self._require("qualify", at, frozenset({State.TAKEN_IN}))
        self.needs_level2 = needs_level2
        events = (Event.QUALIFIED, Event.LEVEL2_REQUIRED) if needs_level2 else (Event.QUALIFIED,)
        self._record("qualify", at, State.QUALIFIED, *events)

    def escalate(self, at: datetime) -> None:
        if Event.ESCALATED in self._events:
            raise AlreadyDone("escalate", self.state.value)
        at = self._require("escalate", at, frozenset({State.QUALIFIED}))
        self._record("escalate", at, State.ESCALATED, Event.ESCALATED)

    def intervene(self, at: datetime) -> None:
        """A technician starts acting (on site for a card reader); once, no state change."""
        if Event.INTERVENED in self._events:
            raise AlreadyDone("intervene on", self.state.value)
        at = self._require("intervene on", at, _WORKING)
        self._record("intervene", at, self.state, Event.INTERVENED)

    def announce(self, at: datetime) -> None:
        """The card-reader replacement is announced to the structure; recorded once."""
        if self.category is not Category.CARD_READER_REPLACEMENT:
            raise InvalidTransition("announce a replacement on", self.category.value)
        if Event.ANNOUNCED in self._events:
            raise AlreadyDone("announce", self.state.value)
        at = self._require("announce", at, _WORKING)
        self._record("announce", at, self.state, Event.ANNOUNCED)

    def wait_for_customer(self, at: datetime) -> None:
        at = self._require("wait for the customer on", at, _WORKING)
        self._resume_to = self.state
        self.clocks = [c.pause(at) if c.running else c for c in self.clocks]
        self._record("wait_for_customer", at, State.WAITING_FOR_CUSTOMER)

    def customer_replied(self, at: datetime) -> None:
        at = self._require("resume", at, frozenset({State.WAITING_FOR_CUSTOMER}))
        resume_to = self._resume_to or State.TAKEN_IN  # always set by wait_for_customer
        self.clocks = [c.resume(at, self.calendars) if c.running else c for c in self.clocks]
        self._record("customer_replied", at, resume_to)
        self._resume_to = None

    def change_priority(self, at: datetime, priority: Priority) -> None:
        """Priority-bound clocks end (recorded as superseded) and new ones start at `at`."""
        at = self._require(
            "change the priority of", at, _WORKING | {State.NEW, State.WAITING_FOR_CUSTOMER}
        )
        if priority is self.priority:
            return
        self.clocks = [
            c.stop(at, StopReason.PRIORITY_CHANGED)
            if c.running and BY_ID[c.indicator].priority_bound
            else c
            for c in self.clocks
        ]
        self.priority = priority
        self.history.append(Step("change_priority", at, self.state, priority))
        for indicator in INDICATORS:
            if (
                indicator.priority_bound
                and indicator.starts_on in self._events
                and indicator.stops_on not in self._events
                and self._applies(indicator, priority)
            ):
                self._start(indicator, at)
                if self.state is State.WAITING_FOR_CUSTOMER:
                    self.clocks[-1] = self.clocks[-1].pause(at)

    def resolve(self, at: datetime) -> None:
        if self.state in (State.RESOLVED, State.CLOSED):
            raise AlreadyDone("resolve", self.state.value)
        at = self._require("resolve", at, frozenset({State.QUALIFIED, State.ESCALATED}))
        self._record("resolve", at, State.RESOLVED, Event.RESOLVED)
        # Nothing is measured after resolution: a clock still running (an intervention never
        # recorded separately) ends here, at the latest possible moment.
        self.clocks = [c.stop(at) if c.running else c for c in self.clocks]

    def close(self, at: datetime) -> None:
        if self.state is State.CLOSED:
            raise AlreadyDone("close", self.state.value)
        at = self._require("close", at, frozenset({State.RESOLVED}))
        self._record("close", at, State.CLOSED)


class Incident(_Subject):
    """A platform or capability outage seen by the probes; restoration is measured 24/7 from the
    first failed probe (not from the moment the incident was opened after N failures)."""

    def __init__(
        self,
        incident_id: str,
        first_failed_at: datetime,
        calendars: Calendars,
        priority: Priority = Priority.BLOQUANT,
    ) -> None:
        first_failed_at = utc(first_failed_at, "first_failed_at")
        self.id = incident_id
        self.priority = priority
        self.calendars = calendars
        self.first_failed_at = first_failed_at
        self.restored_at: datetime | None = None
        self.clocks = []
        self.history = [Step("first_failed_probe", first_failed_at, State.NEW, priority)]
        self._start(BY_ID[IndicatorId.RESTORATION], first_failed_at)

    def restore(self, at: datetime) -> None:
        if self.restored_at is not None:
            raise AlreadyDone("restore", "restored")
        at = self._check_time("restore", at)
        self.restored_at = at
        self.history.append(Step("restored", at, State.RESOLVED, self.priority))
        self._stop_on(Event.RESTORED, at)
