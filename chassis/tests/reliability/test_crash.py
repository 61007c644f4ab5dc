"""Nothing is lost and nothing is done twice when a process dies at the worst moment."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import uuid
from pathlib import Path

from bsante.chassis.bus.embedded import EmbeddedBus
from bsante.chassis.messaging import Messaging
from bsante.chassis.store.sqlite import SqliteStore
from bsante.contracts.envelope import Envelope
from bsante.contracts.events import PatientCreated

WORKER = Path(__file__).with_name("crash_worker.py")
TOPIC = "bsante.patient.v1"


def run_worker(mode: str, data: Path) -> int:
    done = subprocess.run(
        [sys.executable, str(WORKER), mode, str(data)], timeout=60, capture_output=True
    )
    return done.returncode


async def test_an_event_committed_before_a_crash_is_still_delivered(tmp_path: Path) -> None:
    assert run_worker("after-commit", tmp_path) == 17

    bus = EmbeddedBus(tmp_path)
    await bus.start()
    assert await bus.read(TOPIC) == [], "nothing was published before the crash"

    store = SqliteStore(tmp_path / "producer.db")
    await store.start()
    pending = await store.outbox_pending()
    assert len(pending) == 1, "the event was committed with the write"

    # The restarted producer's relay publishes what the dead one could not.
    messaging = Messaging("producer", store, bus)
    assert await messaging.relay_once() == 1
    delivered = await bus.read(TOPIC)
    assert len(delivered) == 1
    envelope = Envelope.from_json(delivered[0].value)
    assert envelope.event_type == "PatientCreated"
    assert delivered[0].key == envelope.subject_id
    assert await store.outbox_pending() == []
    await store.close()
    await bus.stop()


async def test_a_consumer_killed_before_acknowledging_does_not_apply_twice(
    tmp_path: Path,
) -> None:
    from crash_worker import GROUP, counting_router  # type: ignore[import-not-found]

    producer_store = SqliteStore(tmp_path / "producer.db")
    bus = EmbeddedBus(tmp_path, poll_interval=0.05)
    await producer_store.start()
    await bus.start()
    producer = Messaging("producer", producer_store, bus)
    patient_id = uuid.uuid4()
    async with producer.unit_of_work() as uow:
        await uow.emit(
            PatientCreated(patient_id=patient_id, identity_status="provisoire", created_by="u"),
            structure_id="s1",
            subject_id=str(patient_id),
        )
    await producer.relay_once()
    await bus.stop()
    await producer_store.close()

    assert run_worker("before-ack", tmp_path) == 17

    store = SqliteStore(tmp_path / "consumer.db")
    await store.start()
    effect = await store.get("effects", "count")
    assert effect is not None and effect.data["n"] == 1, "the effect committed before the crash"

    # Restart: the uncommitted offset makes the event come again; the inbox absorbs it.
    consumer_bus = EmbeddedBus(tmp_path, poll_interval=0.05)
    messaging = Messaging("consumer", store, consumer_bus)
    messaging.subscribe([TOPIC], GROUP, counting_router())
    await consumer_bus.start()
    deadline = asyncio.get_running_loop().time() + 60
    while asyncio.get_running_loop().time() < deadline:
        if await consumer_bus.committed(GROUP, TOPIC) == 1:
            break
        await asyncio.sleep(0.02)
    assert await consumer_bus.committed(GROUP, TOPIC) == 1, "redelivered and acknowledged"
    effect = await store.get("effects", "count")
    assert effect is not None and effect.data["n"] == 1, "no second effect"
    await consumer_bus.stop()
    await store.close()
