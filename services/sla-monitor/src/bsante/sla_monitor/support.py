"""Support tickets (the online support site): open, move through the contract's steps, watch.

Use cases over the service's store and outbox; the HTTP layer only translates. Each step is one
transaction: the document is read, the ticket rebuilt from its steps, the step applied by the
contract core (which refuses impossible transitions and times out of order), and the document
written over the version read, so two concurrent steps cannot both land.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from bsante.chassis.errors import ConflictError, NotFoundError, RuleViolation
from bsante.chassis.messaging import Messaging, UnitOfWork
from bsante.chassis.store import Query, Store
from bsante.contracts.events import (
    SlaBreached,
    SlaDeadlineNear,
    TicketOpened,
    TicketStatusChanged,
)
from bsante.sla_monitor import metrics
from bsante.sla_monitor.contract.calendars import utc
from bsante.sla_monitor.contract.clocks import Alert, Clock, due_alerts
from bsante.sla_monitor.contract.errors import InvalidTransition, NaiveDatetime, TimeOutOfOrder
from bsante.sla_monitor.contract.indicators import Category, Phase, Priority
from bsante.sla_monitor.contract.tickets import Ticket
from bsante.sla_monitor.records import (
    TICKETS,
    StoredSubject,
    apply,
    calendars,
    step,
    ticket_json,
    ticket_of,
)

# A step dated further in the future than this is a client clock gone wrong, not a plan.
FUTURE_TOLERANCE = timedelta(minutes=5)
# Nothing is backdated more than a year: the compliance of closed months is settled.
MAX_AGE = timedelta(days=366)


class TicketNotFound(NotFoundError):
    pass


class ImpossibleTransition(ConflictError):
    pass


class DateOutOfReason(RuleViolation):
    pass


def check_time(at: datetime | None, now: datetime, field: str) -> datetime:
    """`at` (default: now) in UTC, refused when naive, in the future or too old."""
    if at is None:
        return now
    try:
        at = utc(at, field)
    except NaiveDatetime as error:
        raise DateOutOfReason(
            str(error), errors=[{"field": field, "message": "no UTC offset"}]
        ) from error
    if at > now + FUTURE_TOLERANCE:
        raise DateOutOfReason(
            f"{field} is in the future", errors=[{"field": field, "message": "in the future"}]
        )
    if at < now - MAX_AGE:
        raise DateOutOfReason(
            f"{field} is more than a year ago",
            errors=[{"field": field, "message": "more than 366 days ago"}],
        )
    return at


def _refused(error: Exception, field: str) -> Exception:
    if isinstance(error, InvalidTransition):
        return ImpossibleTransition(str(error), errors=[{"field": "state", "message": str(error)}])
    if isinstance(error, TimeOutOfOrder):
        return DateOutOfReason(
            str(error), errors=[{"field": field, "message": "before the ticket's last step"}]
        )
    return error


def _out_of_scope(data: dict[str, Any], structure: str | None) -> bool:
    return structure is not None and data["structure_id"] != structure


async def open_ticket(
    uow: UnitOfWork,
    *,
    structure_id: str,
    category: Category,
    priority: Priority,
    summary: str,
    opened_by: str,
    at: datetime,
    alsace_moselle: bool,
    phase: Phase | None = None,
    incident_id: str | None = None,
    ticket_id: str | None = None,
) -> dict[str, Any]:
    """A new ticket and its clocks; `TicketOpened` with the deadline of every clock started."""
    ticket_id = ticket_id or str(uuid.uuid4())
    if category is Category.CARD_READER_REPLACEMENT and phase is None:
        raise RuleViolation(
            "A card-reader replacement needs the structure's deployment phase",
            errors=[{"field": "phase", "message": "required for card_reader_replacement"}],
        )
    ticket = Ticket(
        ticket_id, structure_id, category, priority, at, calendars(alsace_moselle), phase
    )
    data = ticket_json(
        ticket,
        steps=[],
        initial_priority=priority,
        alsace_moselle=alsace_moselle,
        summary=summary,
        opened_by=opened_by,
        incident_id=incident_id,
        fired=[],
        at=at,
    )
    await uow.tx.insert(TICKETS, ticket_id, data)
    await uow.emit(
        TicketOpened(
            ticket_id=ticket_id,
            structure_id=structure_id,
            category=category.value,
            priority=priority.value,
            opened_at=ticket.opened_at,
            opened_by=opened_by,
            incident_id=incident_id,
            opened_in_service_hours=ticket.opened_in_service_hours,
            deadlines={
                c.indicator.value: c.deadline for c in ticket.clocks if c.deadline is not None
            },
        ),
        structure_id=structure_id,
        subject_id=ticket_id,
    )
    metrics.TICKETS_OPENED.labels(category.value, priority.value).inc()
    return data


async def act(
    messaging: Messaging,
    ticket_id: str,
    action: str,
    at: datetime,
    now: datetime,
    *,
    structure: str | None,
    **args: Any,
) -> dict[str, Any]:
    """One step on a ticket; `structure`: the caller's (None for support, who sees all)."""

    async def block(uow: UnitOfWork) -> dict[str, Any]:
        doc = await uow.tx.get(TICKETS, ticket_id)
        if doc is None or _out_of_scope(doc.data, structure):
            raise TicketNotFound(
                "No such ticket", errors=[{"field": "ticket_id", "message": "not found"}]
            )
        ticket = ticket_of(doc.data)
        s = step(action, at, **args)
        before = {(c.indicator, c.sequence) for c in ticket.clocks if c.running}
        try:
            apply(ticket, s)
        except (InvalidTransition, TimeOutOfOrder) as error:
            raise _refused(error, "at") from error
        data = ticket_json(
            ticket,
            steps=[*doc.data["steps"], s],
            initial_priority=Priority(doc.data["initial_priority"]),
            alsace_moselle=bool(doc.data.get("alsace_moselle")),
            summary=doc.data.get("summary", ""),
            opened_by=doc.data.get("opened_by", ""),
            incident_id=doc.data.get("incident_id"),
            fired=list(doc.data.get("fired", [])),
            at=now,
        )
        await uow.tx.update(TICKETS, ticket_id, data, doc.version)
        await uow.emit(
            TicketStatusChanged(
                ticket_id=ticket_id,
                structure_id=ticket.structure_id,
                action=action,
                state=ticket.state.value,
                priority=ticket.priority.value,
                at=utc(at),
            ),
            structure_id=ticket.structure_id,
            subject_id=ticket_id,
        )
        for clock in ticket.clocks:
            if (clock.indicator, clock.sequence) in before and not clock.running:
                metrics.observe_clock(clock, ticket.calendars)
        return data

    return await messaging.run_unit_of_work(block)


async def get_ticket(store: Store, ticket_id: str, structure: str | None) -> dict[str, Any]:
    doc = await store.get(TICKETS, ticket_id)
    if doc is None or _out_of_scope(doc.data, structure):
        raise TicketNotFound(
            "No such ticket", errors=[{"field": "ticket_id", "message": "not found"}]
        )
    return doc.data


async def list_tickets(
    store: Store, structure: str | None, *, open_only: bool, limit: int, offset: int
) -> list[dict[str, Any]]:
    where: dict[str, Any] = {}
    if structure is not None:
        where["structure_id"] = structure
    if open_only:
        where["open"] = True
    docs = await store.find(
        TICKETS,
        Query(where=where, order_by=[("opened_at", True)], limit=limit, offset=offset),
    )
    return [d.data for d in docs]


async def tickets_at_risk(
    store: Store, structure: str | None, now: datetime, within: timedelta, limit: int = 50
) -> list[dict[str, Any]]:
    """Open tickets whose next deadline falls before `now + within` (or has passed)."""
    where: dict[str, Any] = {"open": True, "next_deadline": {"$lte": (now + within).isoformat()}}
    if structure is not None:
        where["structure_id"] = structure
    docs = await store.find(
        TICKETS, Query(where=where, order_by=[("next_deadline", False)], limit=limit)
    )
    return [d.data for d in docs]


async def watch_tickets(messaging: Messaging, now: datetime, batch: int = 200) -> int:
    """Fire the escalation levels whose time has come on open tickets, once each: the level's
    key is recorded on the ticket in the same transaction as its event. Decided from the
    active time spent, so a watcher that was down fires every missed level when it is back."""
    fired_count = 0
    offset = 0
    while True:
        # Every open ticket, a page at a time; the stored clocks are enough (no replay).
        docs = await messaging.store.find(
            TICKETS,
            Query(
                where={"open": True}, order_by=[("opened_at", False)], limit=batch, offset=offset
            ),
        )
        for doc in docs:
            subject = StoredSubject.of(doc.data)
            alerts = due_alerts(
                subject.id, subject.clocks, subject.calendars, now, doc.data["fired"]
            )
            if alerts:
                fired_count += await fire_alerts(
                    messaging,
                    TICKETS,
                    "ticket",
                    doc.id,
                    doc.data["structure_id"],
                    alerts,
                    subject.clocks,
                    now,
                )
        if len(docs) < batch:
            return fired_count
        offset += batch


async def fire_alerts(
    messaging: Messaging,
    collection: str,
    kind: str,
    doc_id: str,
    structure_id: str,
    alerts: Sequence[Alert],
    clocks: Sequence[Clock],
    now: datetime,
) -> int:
    """Emit each alert not fired yet and record its key on the subject, in one transaction."""
    by_key = {(c.indicator, c.sequence): c for c in clocks}

    async def block(uow: UnitOfWork) -> int:
        current = await uow.tx.get(collection, doc_id)
        if current is None:
            return 0
        fired: list[str] = list(current.data.get("fired", []))
        emitted = 0
        for alert in alerts:
            if alert.key in fired:
                continue
            fired.append(alert.key)
            emitted += 1
            clock = by_key[(alert.indicator, alert.sequence)]
            await emit_alert(uow, kind, doc_id, structure_id, alert, clock, now)
        await uow.tx.update(collection, doc_id, {**current.data, "fired": fired}, current.version)
        return emitted

    return await messaging.run_unit_of_work(block)


async def emit_alert(
    uow: UnitOfWork,
    kind: str,
    subject_id: str,
    structure_id: str,
    alert: Alert,
    clock: Clock,
    now: datetime,
) -> None:
    if alert.level == "deadline_reached":
        metrics.BREACHES.labels(alert.indicator.value).inc()
        await uow.emit(
            SlaBreached(
                subject_kind=kind,
                subject_id=subject_id,
                indicator=alert.indicator.value,
                clock_sequence=alert.sequence,
                started_at=clock.started_at,
                deadline=clock.deadline,
                detected_at=now,
            ),
            structure_id=structure_id,
            subject_id=subject_id,
        )
    else:
        await uow.emit(
            SlaDeadlineNear(
                subject_kind=kind,
                subject_id=subject_id,
                indicator=alert.indicator.value,
                clock_sequence=alert.sequence,
                deadline=clock.deadline or alert.due_at,
                detected_at=now,
            ),
            structure_id=structure_id,
            subject_id=subject_id,
        )
