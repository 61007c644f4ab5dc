"""Usage indicators per structure and local day, fed by domain events."""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

from bsante.chassis.messaging import EventRouter, UnitOfWork
from bsante.chassis.store import Index, Query, Store
from bsante.contracts.envelope import Envelope
from bsante.contracts.events import PatientCreated

COLLECTION = "usage_daily"
PATIENTS_CREATED = "patients_created"
# The days of a period for one structure's indicator.
INDEXES: list[Index] = [Index(COLLECTION, ("structure_id", "indicator", "day"))]


def day_key(structure_id: str, indicator: str, day: date) -> str:
    return f"{structure_id}:{indicator}:{day.isoformat()}"


async def increment(
    uow: UnitOfWork, structure_id: str, indicator: str, at: datetime, tz: ZoneInfo
) -> None:
    day = at.astimezone(tz).date()
    key = day_key(structure_id, indicator, day)
    doc = await uow.tx.get(COLLECTION, key)
    if doc is None:
        await uow.tx.insert(
            COLLECTION,
            key,
            {
                "structure_id": structure_id,
                "indicator": indicator,
                "day": day.isoformat(),
                "count": 1,
            },
        )
    else:
        await uow.tx.update(
            COLLECTION, key, {**doc.data, "count": doc.data["count"] + 1}, doc.version
        )


def subscriptions(tz: ZoneInfo) -> EventRouter:
    events = EventRouter("sla-monitor")

    @events.on(PatientCreated)
    async def on_patient_created(uow: UnitOfWork, envelope: Envelope, _: PatientCreated) -> None:
        await increment(uow, envelope.structure_id, PATIENTS_CREATED, envelope.occurred_at, tz)

    return events


async def daily(
    store: Store, structure_id: str, indicator: str, start: date, end: date
) -> list[tuple[date, int]]:
    docs = await store.find(
        COLLECTION,
        Query(
            where={
                "structure_id": structure_id,
                "indicator": indicator,
                "day": {"$gte": start.isoformat(), "$lte": end.isoformat()},
            },
            order_by=[("day", False)],
            limit=1000,
        ),
    )
    return [(date.fromisoformat(d.data["day"]), int(d.data["count"])) for d in docs]
