"""Tickets and incidents as stored documents: their dated steps, replayed into the contract core.

A document keeps the steps (what happened, when) and a snapshot of the clocks they produced.
The subject is rebuilt by replaying the steps through `contract.tickets`, so the stored clocks
and the rebuilt ones are the same computation; a deadline is never edited, only a recorded
pause or priority change moves or supersedes it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from bsante.sla_monitor.contract.calendars import utc
from bsante.sla_monitor.contract.clocks import Clock, Outcome, Pause, StopReason
from bsante.sla_monitor.contract.compliance import month_of
from bsante.sla_monitor.contract.indicators import (
    BY_ID,
    CalendarKind,
    Calendars,
    Category,
    IndicatorId,
    Phase,
    Priority,
)
from bsante.sla_monitor.contract.tickets import Incident, Ticket

TICKETS = "tickets"
INCIDENTS = "incidents"
# One document per open incident scope: claimed by insertion, so two probe cycles (or two
# replicas) never open two incidents for the same outage.
OPEN_INCIDENTS = "incident_claims"

_CALENDARS: dict[bool, Calendars] = {}


def calendars(alsace_moselle: bool) -> Calendars:
    """The contract's calendars, built once per process (holiday tables are cached inside)."""
    found = _CALENDARS.get(alsace_moselle)
    if found is None:
        found = _CALENDARS[alsace_moselle] = Calendars(alsace_moselle=alsace_moselle)
    return found


def iso(at: datetime | None) -> str | None:
    return None if at is None else utc(at).isoformat()


def parse(at: str | None) -> datetime | None:
    return None if at is None else datetime.fromisoformat(at)


def step(action: str, at: datetime, **args: Any) -> dict[str, Any]:
    return {"action": action, "at": iso(at), **args}


def apply(ticket: Ticket, s: Mapping[str, Any]) -> None:
    """One stored step on a ticket (the same calls the API makes)."""
    at = datetime.fromisoformat(s["at"])
    action = s["action"]
    if action == "take_in":
        ticket.take_in(at)
    elif action == "qualify":
        ticket.qualify(at, needs_level2=bool(s.get("needs_level2", False)))
    elif action == "escalate":
        ticket.escalate(at)
    elif action == "intervene":
        ticket.intervene(at)
    elif action == "announce":
        ticket.announce(at)
    elif action == "wait_for_customer":
        ticket.wait_for_customer(at)
    elif action == "customer_replied":
        ticket.customer_replied(at)
    elif action == "change_priority":
        ticket.change_priority(at, Priority(s["priority"]))
    elif action == "resolve":
        ticket.resolve(at)
    elif action == "close":
        ticket.close(at)
    else:
        raise ValueError(f"unknown ticket step {action!r}")


def ticket_of(data: Mapping[str, Any]) -> Ticket:
    ticket = Ticket(
        data["id"],
        data["structure_id"],
        Category(data["category"]),
        Priority(data["initial_priority"]),
        datetime.fromisoformat(data["opened_at"]),
        calendars(bool(data.get("alsace_moselle", False))),
        Phase(data["phase"]) if data.get("phase") else None,
    )
    for s in data["steps"]:
        apply(ticket, s)
    return ticket


def clock_json(clock: Clock, cals: Calendars, at: datetime) -> dict[str, Any]:
    return {
        "indicator": clock.indicator.value,
        "sequence": clock.sequence,
        "calendar": clock.calendar.value,
        "target_seconds": int(clock.target.total_seconds()),
        "priority": clock.priority.value,
        "started_at": iso(clock.started_at),
        "initial_deadline": iso(clock.initial_deadline),
        "deadline": iso(clock.deadline),
        "pauses": [[iso(p.start), iso(p.end)] for p in clock.pauses],
        "stopped_at": iso(clock.stopped_at),
        "stop_reason": clock.stop_reason.value if clock.stop_reason else None,
        "outcome": clock.outcome(cals, at).value,
    }


def clock_of(d: Mapping[str, Any]) -> Clock:
    """A stored clock as the core's record (what `clock_json` wrote, minus the outcome)."""
    return Clock(
        indicator=IndicatorId(d["indicator"]),
        sequence=int(d["sequence"]),
        calendar=CalendarKind(d["calendar"]),
        target=timedelta(seconds=d["target_seconds"]),
        priority=Priority(d["priority"]),
        started_at=datetime.fromisoformat(d["started_at"]),
        initial_deadline=datetime.fromisoformat(d["initial_deadline"]),
        deadline=parse(d["deadline"]),
        pausable=BY_ID[IndicatorId(d["indicator"])].pausable,
        pauses=tuple(Pause(datetime.fromisoformat(a), parse(b)) for a, b in d.get("pauses", [])),
        stopped_at=parse(d["stopped_at"]),
        stop_reason=StopReason(d["stop_reason"]) if d.get("stop_reason") else None,
    )


@dataclass(frozen=True)
class StoredSubject:
    """A stored ticket's clocks, for compliance: read as stored, without replaying the steps
    (the snapshot is what the last step produced)."""

    id: str
    calendars: Calendars
    clocks: list[Clock]

    @classmethod
    def of(cls, data: Mapping[str, Any]) -> StoredSubject:
        return cls(
            data["id"],
            calendars(bool(data.get("alsace_moselle", False))),
            [clock_of(c) for c in data["clocks"]],
        )


def ticket_json(
    ticket: Ticket,
    *,
    steps: list[dict[str, Any]],
    initial_priority: Priority,
    alsace_moselle: bool,
    summary: str,
    opened_by: str,
    incident_id: str | None,
    fired: list[str],
    at: datetime,
) -> dict[str, Any]:
    """The stored document; `at_risk_until`: the earliest deadline of a running clock (query
    field of the dashboard's "tickets at risk")."""
    running = [c.deadline for c in ticket.clocks if c.running and c.deadline is not None]
    return {
        "id": ticket.id,
        "structure_id": ticket.structure_id,
        "category": ticket.category.value,
        "priority": ticket.priority.value,
        "initial_priority": initial_priority.value,
        "phase": ticket.phase.value if ticket.phase else None,
        "alsace_moselle": alsace_moselle,
        "opened_at": iso(ticket.opened_at),
        "opened_month": month_of(ticket.opened_at),
        "opened_by": opened_by,
        "opened_in_service_hours": ticket.opened_in_service_hours,
        "summary": summary,
        "incident_id": incident_id,
        "state": ticket.state.value,
        "open": ticket.state.value not in ("resolved", "closed"),
        "next_deadline": iso(min(running)) if running else None,
        "steps": steps,
        "fired": fired,
        "clocks": [clock_json(c, ticket.calendars, at) for c in ticket.clocks],
    }


def incident_of(data: Mapping[str, Any]) -> Incident:
    incident = Incident(
        data["id"],
        datetime.fromisoformat(data["first_failed_at"]),
        calendars(False),
        Priority(data["priority"]),
    )
    if data.get("restored_at"):
        incident.restore(datetime.fromisoformat(data["restored_at"]))
    return incident


def breached(clock: Clock, cals: Calendars, at: datetime) -> bool:
    return clock.outcome(cals, at) is Outcome.BREACHED


def seconds(delta: timedelta) -> float:
    return delta.total_seconds()
