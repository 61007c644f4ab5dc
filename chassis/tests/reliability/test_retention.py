"""Retention: sent outbox rows, inbox claims and consumed log entries are purged, nothing else."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

from polling import eventually  # type: ignore[import-not-found]

from bsante.chassis.bus import Message
from bsante.chassis.bus.embedded import EmbeddedBus
from bsante.chassis.messaging import EventRouter, Messaging, RelayPolicy, UnitOfWork
from bsante.chassis.store.sqlite import SqliteStore
from bsante.contracts.envelope import Envelope
from bsante.contracts.events import PatientDataAccessed
from bsante.contracts.topics import AUDIT

GROUP = "bsante.consumer"
LATER = timedelta(days=30)  # a purge "now + LATER" sees everything as past the retention


def rows(db: Path, table: str) -> int:
    with contextlib.closing(sqlite3.connect(db)) as conn:
        return int(conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0])


def pages(db: Path) -> int:
    """Pages of the database (its size in pages, including what is still in the WAL)."""
    with contextlib.closing(sqlite3.connect(db)) as conn:
        return int(conn.execute("PRAGMA page_count").fetchone()[0])


async def test_the_log_keeps_what_a_known_group_has_not_consumed(tmp_path: Path) -> None:
    seen: list[Message] = []

    async def handle(message: Message) -> None:
        seen.append(message)

    consumer = EmbeddedBus(tmp_path, poll_interval=0.05)
    consumer.subscribe(["t"], "fast", handle)
    await consumer.start()
    # A second group is known (it started once) but has consumed nothing.
    lagging = EmbeddedBus(tmp_path)
    lagging.subscribe(["u"], "slow", handle)
    await lagging.start()
    await lagging.stop()

    for n in range(4):
        await consumer.publish(Message("t", "k", f"t{n}".encode()))
        await consumer.publish(Message("u", "k", f"u{n}".encode()))
    await consumer.publish(Message("nobody", "k", b"n"))
    await consumer.publish(Message("t.dlq", "k", b"dead"))

    last_t = (await consumer.read("t"))[-1].offset

    async def consumed() -> bool:
        # Handled and committed: the offset moves just after the handler returned.
        return len(seen) == 4 and await consumer.committed("fast", "t") == last_t

    await eventually(consumed)
    now = datetime.now(UTC)
    assert await consumer.purge(now - timedelta(hours=1)) == 0, "nothing is past the retention"
    # Past the retention: t (consumed by its only group) and the topic nobody consumes go;
    # u (its known group consumed nothing) and the dead letters stay.
    assert await consumer.purge(now + LATER) == 5
    assert await consumer.read("t") == []
    assert await consumer.read("nobody") == []
    assert [m.value for m in await consumer.read("u")] == [b"u0", b"u1", b"u2", b"u3"]
    assert [m.value for m in await consumer.read("t.dlq")] == [b"dead"]
    # Offsets keep counting from where they were: nothing is delivered again.
    await consumer.publish(Message("t", "k", b"t4"))

    async def fifth() -> bool:
        return len(seen) == 5

    await eventually(fifth)
    assert [m.value for m in seen] == [b"t0", b"t1", b"t2", b"t3", b"t4"]
    await consumer.stop()


async def test_purge_once_respects_the_retention(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "s.db")
    await store.start()
    bus = EmbeddedBus(tmp_path)
    await bus.start()
    messaging = Messaging("p", store, bus, policy=RelayPolicy(retention=timedelta(days=7)))
    patient = uuid.uuid4()
    async with messaging.unit_of_work() as uow:
        await uow.audit(
            user_id="u", acting_structure="s", patient_id=str(patient), action="read", resource="r"
        )
        assert await uow.tx.claim_inbox(GROUP, "e1")
    async with messaging.unit_of_work() as uow:  # not relayed: stays pending
        await uow.audit(
            user_id="u", acting_structure="s", patient_id=str(patient), action="read", resource="r"
        )
    assert await store.outbox_pending() != []
    sent = (await store.outbox_pending(1))[0].event_id
    await store.outbox_mark_sent(sent)
    await bus.publish(Message("nobody", "k", b"x"))

    assert await messaging.purge_once() == type(await messaging.purge_once())(0, 0, 0)
    report = await messaging.purge_once(now=datetime.now(UTC) + timedelta(days=8))
    assert (report.outbox, report.inbox, report.log) == (1, 1, 1)
    assert len(await store.outbox_pending()) == 1, "an unsent row is never purged"
    assert not await store.inbox_contains(GROUP, "e1")
    await bus.stop()
    await store.close()


async def test_run_purge_forever_purges_until_cancelled(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "s.db")
    await store.start()
    bus = EmbeddedBus(tmp_path)
    await bus.start()
    messaging = Messaging("p", store, bus, policy=RelayPolicy(retention=timedelta(0)))
    async with store.transaction() as tx:
        assert await tx.claim_inbox(GROUP, "e1")
    task = asyncio.create_task(messaging.run_purge_forever(interval=0.01))

    async def purged() -> bool:
        return not await store.inbox_contains(GROUP, "e1")

    await eventually(purged)
    async with store.transaction() as tx:  # and again, on the next round
        assert await tx.claim_inbox(GROUP, "e2")

    async def purged_again() -> bool:
        return not await store.inbox_contains(GROUP, "e2")

    await eventually(purged_again)
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    await bus.stop()
    await store.close()


async def test_the_files_stop_growing_under_a_steady_read_load(tmp_path: Path) -> None:
    """Reads with their access audit: producer store (outbox), log, consumer store (inbox).

    Measured: each database's `page_count` (its size in pages, WAL content included) after
    every round of reads, relaying, consuming and purging past the retention.
    """
    producer_db, consumer_db, log_db = tmp_path / "p.db", tmp_path / "c.db", tmp_path / "bus.db"
    producer_store, consumer_store = SqliteStore(producer_db), SqliteStore(consumer_db)
    producer_bus, consumer_bus = EmbeddedBus(tmp_path), EmbeddedBus(tmp_path, poll_interval=0.05)
    await producer_store.start()
    await consumer_store.start()
    producer = Messaging("p", producer_store, producer_bus)
    consumer = Messaging("c", consumer_store, consumer_bus)
    handled = 0
    router = EventRouter("c")

    @router.on(PatientDataAccessed)
    async def keep(uow: UnitOfWork, envelope: Envelope, payload: PatientDataAccessed) -> None:
        nonlocal handled
        handled += 1

    consumer.subscribe([AUDIT], GROUP, router)
    await producer_bus.start()
    await consumer_bus.start()
    async with producer_store.transaction() as tx:
        await tx.insert("patients", "p1", {"name": "x" * 200})

    sizes: list[tuple[int, int, int]] = []
    reads = 0
    for round_ in range(14):
        for _ in range(40):
            async with producer.unit_of_work() as uow:
                await uow.tx.get("patients", "p1")
                await uow.audit(
                    user_id="u",
                    acting_structure="s",
                    patient_id=str(uuid.uuid4()),
                    action="read",
                    resource="patient",
                )
            reads += 1
        assert await producer.relay_once() == 40

        async def consumed(expected: int = reads) -> bool:
            return handled == expected

        await eventually(consumed)
        # Rounds 0-3 purge before the retention has passed (nothing goes), then after it.
        purge_at = datetime.now(UTC) + (LATER if round_ >= 4 else timedelta(0))
        await producer.purge_once(now=purge_at)
        await consumer.purge_once(now=purge_at)
        sizes.append((pages(producer_db), pages(log_db), pages(consumer_db)))

    print("page counts per round (producer, log, consumer):", sizes)
    assert all(a < b for a, b in zip(sizes[0], sizes[3], strict=True)), "grows while retained"
    assert rows(producer_db, "outbox") == 0
    assert rows(consumer_db, "inbox") == 0
    assert rows(log_db, "log") == 0
    # Once the retention passed, freed pages are reused: no file grows any more.
    assert max(sizes[4:]) == sizes[4] == sizes[-1], sizes
    await consumer_bus.stop()
    await producer_bus.stop()
    await producer_store.close()
    await consumer_store.close()
