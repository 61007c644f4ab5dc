"""A process that dies at a chosen point, for the crash tests (run as a script)."""

from __future__ import annotations

import asyncio
import os
import sys
import uuid
from pathlib import Path

from bsante.chassis.bus.embedded import EmbeddedBus
from bsante.chassis.messaging import EventRouter, Messaging, UnitOfWork
from bsante.chassis.store.sqlite import SqliteStore
from bsante.contracts.envelope import Envelope
from bsante.contracts.events import PatientCreated

GROUP = "bsante.crash-test"


def counting_router() -> EventRouter:
    events = EventRouter("crash-test")

    @events.on(PatientCreated)
    async def count(uow: UnitOfWork, envelope: Envelope, payload: PatientCreated) -> None:
        doc = await uow.tx.get("effects", "count")
        if doc is None:
            await uow.tx.insert("effects", "count", {"n": 1})
        else:
            await uow.tx.update("effects", "count", {"n": doc.data["n"] + 1}, doc.version)

    return events


async def die_after_commit(data: Path) -> None:
    """Write a patient and its event in one transaction, then die before the relay runs."""
    store = SqliteStore(data / "producer.db")
    bus = EmbeddedBus(data)
    await store.start()
    await bus.start()
    messaging = Messaging("producer", store, bus)
    patient_id = uuid.uuid4()
    async with messaging.unit_of_work() as uow:
        await uow.tx.insert("patients", str(patient_id), {"structure_id": "s1"})
        await uow.emit(
            PatientCreated(patient_id=patient_id, identity_status="provisoire", created_by="u1"),
            structure_id="s1",
            subject_id=str(patient_id),
        )
    os._exit(17)


async def die_before_ack(data: Path) -> None:
    """Consume: the handler's transaction commits, then the process dies before the offset."""

    async def crash(*_: object) -> None:
        os._exit(17)

    bus = EmbeddedBus(data, poll_interval=0.05)
    bus._commit = crash  # type: ignore[method-assign]
    store = SqliteStore(data / "consumer.db")
    await store.start()
    messaging = Messaging("consumer", store, bus)
    messaging.subscribe(["bsante.patient.v1"], GROUP, counting_router())
    await bus.start()
    # Runs until the crash ends the process; the test's subprocess timeout bounds it.
    await asyncio.Event().wait()


if __name__ == "__main__":
    mode, directory = sys.argv[1], Path(sys.argv[2])
    asyncio.run({"after-commit": die_after_commit, "before-ack": die_before_ack}[mode](directory))
