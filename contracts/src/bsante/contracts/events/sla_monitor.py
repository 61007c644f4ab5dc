"""Events of the SLA monitor (topic bsante.sla-monitor.v1): tickets, incidents, SLA breaches.

Subjects are ticket or incident ids; payloads carry states and times, never a ticket's text.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import Field

from bsante.contracts import topics
from bsante.contracts.events.base import Payload, event

TicketPriority = Literal["bloquant", "majeur", "mineur"]
TicketCategory = Literal["incident", "request", "card_reader_replacement"]
IncidentSource = Literal["probe", "job_failures", "dead_letters"]


@event(topics.SLA_MONITOR)
class TicketOpened(Payload):
    """A support ticket was opened, by a user of a structure or automatically for an incident."""

    ticket_id: str = Field(max_length=100)
    structure_id: str = Field(max_length=100)
    category: TicketCategory
    priority: TicketPriority
    opened_at: datetime
    opened_by: str = Field(max_length=100, description="User id, or `sla-monitor` for incidents")
    incident_id: str | None = Field(default=None, max_length=200)
    opened_in_service_hours: bool
    deadlines: dict[str, datetime] = Field(
        default_factory=dict, description="Indicator id -> deadline of the clock it started"
    )


@event(topics.SLA_MONITOR)
class TicketStatusChanged(Payload):
    """A ticket moved (taken in, qualified, escalated, waiting, resolved, closed, ...)."""

    ticket_id: str = Field(max_length=100)
    structure_id: str = Field(max_length=100)
    action: str = Field(max_length=40)
    state: str = Field(max_length=40)
    priority: TicketPriority
    at: datetime


@event(topics.SLA_MONITOR)
class IncidentOpened(Payload):
    """An outage was seen (failed probes, job failures or dead letters above a threshold); its
    restoration clock (4 h, 24/7) started at the first failure, not at this event."""

    incident_id: str = Field(max_length=200)
    scope: str = Field(max_length=200, description="`platform`, a service or a capability")
    source: IncidentSource
    priority: TicketPriority
    first_failed_at: datetime
    opened_at: datetime
    restoration_deadline: datetime


@event(topics.SLA_MONITOR)
class IncidentClosed(Payload):
    """The outage ended (the probes succeed again, or the failures stopped)."""

    incident_id: str = Field(max_length=200)
    scope: str = Field(max_length=200)
    restored_at: datetime
    within_restoration_target: bool


@event(topics.SLA_MONITOR)
class SlaBreached(Payload):
    """A contract clock spent its target without its stop event: raised once per clock."""

    subject_kind: Literal["ticket", "incident"]
    subject_id: str = Field(max_length=200)
    indicator: str = Field(max_length=60)
    clock_sequence: int = Field(ge=1)
    started_at: datetime
    deadline: datetime | None = Field(description="None when breached while paused")
    detected_at: datetime


@event(topics.SLA_MONITOR)
class SlaDeadlineNear(Payload):
    """An escalation level before the deadline (80 % of the target spent): warn support."""

    subject_kind: Literal["ticket", "incident"]
    subject_id: str = Field(max_length=200)
    indicator: str = Field(max_length=60)
    clock_sequence: int = Field(ge=1)
    deadline: datetime
    detected_at: datetime
