"""Write-only SQLite transactions run whole on the write thread: one hand-over per transaction
(outbox group commits, rows marked sent, log appends), atomic, ended even when the caller is
cancelled, and TransientConflict when another process keeps the writer."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from bsante.chassis.bus import Message
from bsante.chassis.bus.embedded import EmbeddedBus
from bsante.chassis.store import OutboxRecord, TransientConflict
from bsante.chassis.store.sqlite import SqliteStore, WriteThread, insert_rows


def _table(path: Path) -> None:
    setup = sqlite3.connect(path, isolation_level=None)
    setup.execute("PRAGMA journal_mode=WAL")
    setup.execute("CREATE TABLE t (n INTEGER UNIQUE)")
    setup.close()


def _rows(path: Path) -> list[int]:
    conn = sqlite3.connect(path)
    try:
        return [row[0] for row in conn.execute("SELECT n FROM t ORDER BY n")]
    finally:
        conn.close()


def _count_hand_overs(writes: WriteThread, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    calls = [0]
    original = writes._call

    async def counted(work: Callable[[], Any]) -> Any:
        calls[0] += 1
        return await original(work)

    monkeypatch.setattr(writes, "_call", counted)
    return calls


async def test_a_transaction_commits_whole_or_not_at_all(tmp_path: Path) -> None:
    path = tmp_path / "w.db"
    _table(path)
    writes = WriteThread(path, "w.db")
    await writes.start()
    try:
        assert (
            await writes.run(
                lambda c: c.executemany("INSERT INTO t VALUES (?)", [(1,), (2,)]).rowcount
            )
            == 2
        )
        with pytest.raises(sqlite3.IntegrityError):
            # The second row breaks the unique rule: the first is not kept either.
            await writes.run(lambda c: c.executemany("INSERT INTO t VALUES (?)", [(3,), (1,)]))
        await writes.run(lambda c: c.execute("INSERT INTO t VALUES (4)"))
        assert _rows(path) == [1, 2, 4]
    finally:
        await writes.close()


async def test_a_cancelled_caller_leaves_its_transaction_to_end_on_the_thread(
    tmp_path: Path,
) -> None:
    path = tmp_path / "w.db"
    _table(path)
    writes = WriteThread(path, "w.db")
    await writes.start()
    running, release = threading.Event(), threading.Event()

    def slow(conn: sqlite3.Connection) -> None:
        conn.execute("INSERT INTO t VALUES (1)")
        running.set()
        release.wait(30)

    try:
        task = asyncio.create_task(writes.run(slow))
        await asyncio.to_thread(running.wait, 30)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        release.set()
        # The next transaction runs once the first has committed.
        await writes.run(lambda c: c.execute("INSERT INTO t VALUES (2)"))
        assert _rows(path) == [1, 2]
    finally:
        release.set()
        await writes.close()


async def test_another_process_keeping_the_writer_is_a_transient_conflict(tmp_path: Path) -> None:
    path = tmp_path / "w.db"
    _table(path)
    writes = WriteThread(path, "w.db", busy_timeout_ms=50)
    await writes.start()
    other = sqlite3.connect(path, isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")
        with pytest.raises(TransientConflict):
            await writes.run(lambda c: c.execute("INSERT INTO t VALUES (1)"))
        other.execute("ROLLBACK")
        await writes.run(lambda c: c.execute("INSERT INTO t VALUES (1)"))
        assert _rows(path) == [1]
    finally:
        other.close()
        await writes.close()


async def test_a_group_commit_and_the_rows_marked_sent_are_one_hand_over_each(
    sqlite_store: SqliteStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    from datetime import UTC, datetime

    from bsante.chassis.store import OutboxRecord

    assert sqlite_store._writes is not None
    calls = _count_hand_overs(sqlite_store._writes, monkeypatch)
    records = [
        OutboxRecord(f"e{n}", "topic.v1", "k", b"{}", {}, datetime.now(UTC)) for n in range(3)
    ]

    async def emit(record: OutboxRecord) -> None:
        async with sqlite_store.transaction() as tx:
            await tx.add_outbox(record)

    await asyncio.gather(*(emit(r) for r in records))
    assert 1 <= calls[0] <= len(records)  # one per group commit, however many rows joined
    pending = await sqlite_store.outbox_pending()
    assert [r.event_id for r in pending] == ["e0", "e1", "e2"]
    calls[0] = 0
    await sqlite_store.outbox_mark_sent_many([r.event_id for r in pending])
    assert calls[0] == 1
    assert await sqlite_store.outbox_pending() == []


async def test_a_log_append_is_one_hand_over(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bus = EmbeddedBus(tmp_path)
    await bus.start()
    try:
        assert bus._writes is not None
        calls = _count_hand_overs(bus._writes, monkeypatch)
        messages = [Message("topic.v1", f"k{n}", b"{}", {}) for n in range(5)]
        assert await bus.publish_many(messages) == [None] * 5
        assert calls[0] == 1
        assert [m.key for m in await bus.read("topic.v1")] == [f"k{n}" for n in range(5)]
    finally:
        await bus.stop()


def test_insert_rows_writes_every_row_in_order_one_statement_per_chunk(tmp_path: Path) -> None:
    path = tmp_path / "w.db"
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("CREATE TABLE t (seq INTEGER PRIMARY KEY AUTOINCREMENT, n INTEGER, s TEXT)")
    statements: list[str] = []
    conn.set_trace_callback(statements.append)
    rows = [(n, f"row {n}") for n in range(1_201)]  # 999 variables: 499 rows per chunk
    insert_rows(conn, "INSERT INTO t (n, s)", rows)
    conn.set_trace_callback(None)
    # One SQLite statement (one step, one GIL hand-back) per chunk, not one per row.
    assert len(statements) == 3
    assert conn.execute("SELECT n, s FROM t ORDER BY seq").fetchall() == rows
    insert_rows(conn, "INSERT INTO t (n, s)", [])  # nothing to write: no statement
    assert conn.execute("SELECT count(*) FROM t").fetchone() == (1_201,)
    conn.close()


async def test_a_group_commit_keeps_the_rows_order_across_chunks(
    sqlite_store: SqliteStore,
) -> None:
    records = [
        OutboxRecord(
            event_id=f"e{n:04d}",
            topic="t",
            key=f"k{n % 7}",
            value=b"{}",
            headers={},
            created_at=datetime.now(UTC),
        )
        for n in range(1_100)
    ]
    async with sqlite_store.transaction() as tx:  # outbox rows only: the group commit
        for record in records:
            await tx.add_outbox(record)
    pending = await sqlite_store.outbox_pending(limit=2_000)
    assert [r.event_id for r in pending] == [r.event_id for r in records]
