"""Usage indicators per structure and local day, fed by domain events (seed 003, HOP'EN/Ségur).

Counters per (structure, indicator, day); rates are ratios of two counters over a period:
DMP feeding (documents fed to the DMP over signed documents whose patient had a qualifiée INS
when signed), MSSanté sending (messages sent over signed documents with MSSanté recipients),
qualifiée INS share (qualifications over patients created) and documents per type and month.

`COUNTED` is the table of events counted by name: an event whose contract has not landed yet
(`DmpDocumentSubmitted`, `MssMessageSent`) is one entry here, consumed as soon as it is
registered in `bsante.contracts.events` (its topic then joins the manifest's `consumes`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, cast
from zoneinfo import ZoneInfo

from bsante.chassis.messaging import EventRouter, UnitOfWork
from bsante.chassis.store import Index, Query, Store
from bsante.contracts.envelope import Envelope
from bsante.contracts.events import (
    DocumentSigned,
    InsQualified,
    JobFailed,
    PatientCreated,
    Payload,
)
from bsante.contracts.registry import registry

COLLECTION = "usage_daily"
QUALIFIED_PATIENTS = "usage_qualified_patients"
PATIENTS_CREATED = "patients_created"
INS_QUALIFIED = "ins_qualified"
DOCUMENTS_SIGNED = "documents_signed"
SIGNED_INS_QUALIFIED = "documents_signed_ins_qualified"
SIGNED_WITH_MSS = "documents_signed_with_mssante"
DMP_FED = "dmp_documents_fed"
MSS_SENT = "mssante_messages_sent"
DOCUMENT_TYPE_PREFIX = "documents_signed_type:"
# The days of a period for one structure's indicator; every structure's days (support).
INDEXES: list[Index] = [
    Index(COLLECTION, ("structure_id", "indicator", "day")),
    Index(COLLECTION, ("day",)),
]


@dataclass(frozen=True)
class Rate:
    name: str
    numerator: str
    denominator: str


RATES: tuple[Rate, ...] = (
    Rate("dmp_feeding_rate", DMP_FED, SIGNED_INS_QUALIFIED),
    Rate("mssante_sending_rate", MSS_SENT, SIGNED_WITH_MSS),
    Rate("ins_qualified_share", INS_QUALIFIED, PATIENTS_CREATED),
)


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


@dataclass(frozen=True)
class Counted:
    """An event counted by name under `indicator`, dated by its envelope."""

    event_type: str
    indicator: str


COUNTED: tuple[Counted, ...] = (
    Counted("DmpDocumentSubmitted", DMP_FED),
    Counted("MssMessageSent", MSS_SENT),
)

Recorder = Callable[[UnitOfWork, JobFailed], Awaitable[None]]


def subscriptions(tz: ZoneInfo, on_job_failed: Recorder | None = None) -> EventRouter:
    events = EventRouter("sla-monitor")

    @events.on(PatientCreated)
    async def on_patient_created(uow: UnitOfWork, envelope: Envelope, _: PatientCreated) -> None:
        await increment(uow, envelope.structure_id, PATIENTS_CREATED, envelope.occurred_at, tz)

    @events.on(InsQualified)
    async def on_ins_qualified(uow: UnitOfWork, envelope: Envelope, e: InsQualified) -> None:
        # Raised once per entry into the status; the patient is remembered as qualified for
        # the DMP feeding rate's denominator.
        await uow.tx.insert_if_absent(QUALIFIED_PATIENTS, str(e.patient_id), {"q": True})
        await increment(uow, envelope.structure_id, INS_QUALIFIED, envelope.occurred_at, tz)

    @events.on(DocumentSigned)
    async def on_document_signed(uow: UnitOfWork, envelope: Envelope, e: DocumentSigned) -> None:
        s, at = envelope.structure_id, envelope.occurred_at
        await increment(uow, s, DOCUMENTS_SIGNED, at, tz)
        await increment(uow, s, DOCUMENT_TYPE_PREFIX + e.type_code, at, tz)
        if await uow.tx.get(QUALIFIED_PATIENTS, str(e.patient_id)) is not None:
            await increment(uow, s, SIGNED_INS_QUALIFIED, at, tz)
        if e.mssante:
            await increment(uow, s, SIGNED_WITH_MSS, at, tz)

    if on_job_failed is not None:
        recorder = on_job_failed

        @events.on(JobFailed)
        async def on_job_failed_event(uow: UnitOfWork, _: Envelope, e: JobFailed) -> None:
            await recorder(uow, e)

    for counted in COUNTED:
        try:
            spec = registry.latest(counted.event_type)
        except KeyError:
            continue  # its contract has not landed yet
        indicator = counted.indicator

        async def count(uow: UnitOfWork, envelope: Envelope, _: Any, name: str = indicator) -> None:
            await increment(uow, envelope.structure_id, name, envelope.occurred_at, tz)

        events.on(cast(type[Payload], spec.payload))(count)
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


async def totals(
    store: Store, structure_id: str | None, start: date, end: date
) -> dict[str, dict[str, int]]:
    """Per month (YYYY-MM), every counter of the period (one structure, or all of them)."""
    where: dict[str, Any] = {"day": {"$gte": start.isoformat(), "$lte": end.isoformat()}}
    if structure_id is not None:
        where["structure_id"] = structure_id
    docs = await store.find(COLLECTION, Query(where=where, limit=100_000))
    out: dict[str, dict[str, int]] = {}
    for d in docs:
        month = d.data["day"][:7]
        row = out.setdefault(month, {})
        row[d.data["indicator"]] = row.get(d.data["indicator"], 0) + int(d.data["count"])
    return out


def rates(counters: dict[str, int]) -> dict[str, float | None]:
    return {
        r.name: (counters.get(r.numerator, 0) / counters[r.denominator])
        if counters.get(r.denominator)
        else None
        for r in RATES
    }
