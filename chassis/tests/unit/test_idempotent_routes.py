"""Idempotent routes (`EventRouter.on(..., idempotent=True)`): the inbox records the event
without deciding whether the handler runs; on SQLite a consumed batch then commits as one group
commit, never taking the consumer store's writer, and a redelivered batch changes nothing."""

from __future__ import annotations

import contextlib
import sqlite3
import uuid
from collections.abc import Callable
from pathlib import Path

from polling import eventually  # type: ignore[import-not-found]

from bsante.chassis.bus.embedded import EmbeddedBus
from bsante.chassis.messaging import EventRouter, Messaging, UnitOfWork
from bsante.chassis.store.sqlite import SqliteStore
from bsante.contracts.envelope import Envelope
from bsante.contracts.events import PatientDataAccessed
from bsante.contracts.topics import AUDIT

GROUP = "bsante.trail"


async def test_a_redelivered_batch_is_handled_again_and_changes_nothing(
    tmp_path: Path, writer_begins: Callable[[SqliteStore], list[str]]
) -> None:
    producer_store, trail_store = SqliteStore(tmp_path / "p.db"), SqliteStore(tmp_path / "c.db")
    await producer_store.start()
    await trail_store.start()
    begun = writer_begins(trail_store)
    producer = Messaging("p", producer_store, EmbeddedBus(tmp_path))
    handled: list[str] = []
    router = EventRouter("c")

    @router.on(PatientDataAccessed, idempotent=True)
    async def keep(uow: UnitOfWork, envelope: Envelope, payload: PatientDataAccessed) -> None:
        handled.append(str(envelope.event_id))
        await uow.tx.keep("trail", str(envelope.event_id), {"patient_id": payload.patient_id})

    async def consume() -> EmbeddedBus:
        bus = EmbeddedBus(tmp_path, poll_interval=0.05)
        Messaging("c", trail_store, bus).subscribe([AUDIT], GROUP, router)
        await bus.start()
        return bus

    await producer.bus.start()
    patients = [str(uuid.uuid4()) for _ in range(60)]
    for patient_id in patients:
        async with producer.unit_of_work() as uow:
            await uow.audit(
                user_id="u",
                acting_structure="s",
                patient_id=patient_id,
                action="read",
                resource="patient",
            )
    assert await producer.relay_once() == 60
    bus = await consume()

    async def all_handled(expected: int) -> bool:
        return len(handled) == expected

    await eventually(lambda: all_handled(60))
    await bus.stop()
    assert await trail_store.count("trail") == 60
    first = {d.id: d.data for d in await trail_store.find("trail")}
    assert sorted(d["patient_id"] for d in first.values()) == sorted(patients)
    assert all([await trail_store.inbox_contains(GROUP, event_id) for event_id in first])
    assert begun == []  # every batch went through a group commit

    # The consumer group's offset goes back: the whole log is delivered again.
    with contextlib.closing(sqlite3.connect(tmp_path / "bus.db")) as conn, conn:
        conn.execute("UPDATE offsets SET committed = 0 WHERE consumer_group = ?", (GROUP,))
    bus = await consume()
    await eventually(lambda: all_handled(120))
    await bus.stop()
    assert sorted(handled[60:]) == sorted(handled[:60])
    assert {d.id: d.data for d in await trail_store.find("trail")} == first
    await producer.bus.stop()
    await producer_store.close()
    await trail_store.close()
