"""The access-audit trail: `PatientDataAccessed` events from every service, kept append-only.

Records are only ever inserted (id = the event id, so a redelivered event cannot add a second
copy); nothing in identity updates or deletes them, and no route offers to.
"""

from __future__ import annotations

from datetime import UTC
from typing import Any

from bsante.chassis.messaging import EventRouter, UnitOfWork
from bsante.chassis.store import Index, Query, Store
from bsante.contracts.envelope import Envelope
from bsante.contracts.events import PatientDataAccessed

ACCESS_AUDIT = "access_audit"
# The history of a patient or of a user in one structure, newest first.
INDEXES: list[Index] = [
    Index(ACCESS_AUDIT, ("acting_structure", "patient_id", "at")),
    Index(ACCESS_AUDIT, ("acting_structure", "user_id", "at")),
]

events = EventRouter("identity")


def record(envelope: Envelope, payload: PatientDataAccessed) -> dict[str, Any]:
    return {
        "event_id": str(envelope.event_id),
        "user_id": payload.user_id,
        "acting_structure": payload.acting_structure,
        "patient_id": payload.patient_id,
        "action": payload.action,
        "resource": payload.resource,
        "service": payload.service,
        # One fixed format, so that ordering by the text is ordering by time.
        "at": payload.at.astimezone(UTC).isoformat(timespec="microseconds"),
        "request_id": payload.request_id,
        "client_address": payload.client_address,
        "service_client": payload.service_client,
        "correlation_id": envelope.correlation_id,
    }


@events.on(PatientDataAccessed, idempotent=True)
async def keep_access(uow: UnitOfWork, envelope: Envelope, payload: PatientDataAccessed) -> None:
    # Keyed by the event id: a redelivered event finds its record and changes nothing.
    await uow.tx.keep(ACCESS_AUDIT, str(envelope.event_id), record(envelope, payload))


async def history(
    store: Store, *, structure_id: str, field: str, value: str, limit: int, offset: int
) -> tuple[list[dict[str, Any]], int]:
    """Accesses recorded in one structure for a patient or a user, newest first."""
    where = {"acting_structure": structure_id, field: value}
    docs = await store.find(
        ACCESS_AUDIT, Query(where=where, order_by=[("at", True)], limit=limit, offset=offset)
    )
    return [d.data for d in docs], await store.count(ACCESS_AUDIT, where)
