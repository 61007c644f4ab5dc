"""SQLite reads on the event loop: a quick read is answered there, a read over the step budget
or meeting a lock is answered on the reader's thread, with the same rows either way."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from bsante.chassis.metrics import SQLITE_READS
from bsante.chassis.store import Query
from bsante.chassis.store.sqlite import LOOP_READ_STEPS, LoopReader, SqliteStore


@pytest.fixture
def store(sqlite_store: SqliteStore) -> SqliteStore:
    return sqlite_store


def _reads(store: SqliteStore, on: str) -> float:
    return SQLITE_READS.labels(store.path.name, on)._value.get()


async def test_a_point_read_is_answered_on_the_loop_and_sees_the_last_commit(
    store: SqliteStore,
) -> None:
    async with store.transaction() as tx:
        await tx.insert("patients", "p1", {"n": 1})
    before = _reads(store, "loop"), _reads(store, "thread")
    found = await store.get("patients", "p1")
    assert found is not None and found.data == {"n": 1} and found.version == 1
    assert (_reads(store, "loop"), _reads(store, "thread")) == (before[0] + 1, before[1])
    async with store.transaction() as tx:
        await tx.update("patients", "p1", {"n": 2}, expected_version=1)
    again = await store.get("patients", "p1")
    assert again is not None and again.data == {"n": 2} and again.version == 2


async def test_a_read_over_the_step_budget_is_answered_on_the_thread_with_every_row(
    store: SqliteStore,
) -> None:
    # Enough rows that counting them by a scan of their JSON takes more steps than allowed.
    rows = LOOP_READ_STEPS
    for start in range(0, rows, 1000):
        async with store.transaction() as tx:
            for n in range(start, start + 1000):
                await tx.insert("items", f"i{n:05d}", {"kind": "even" if n % 2 == 0 else "odd"})
    before = _reads(store, "thread")
    assert await store.count("items", {"kind": "even"}) == rows // 2
    assert _reads(store, "thread") == before + 1
    found = await store.find("items", Query(where={"kind": "odd"}, limit=5000))
    assert len(found) == rows // 2 and {d.data["kind"] for d in found} == {"odd"}


def test_the_loop_reader_gives_up_at_once_on_a_lock_and_on_a_long_read(tmp_path: Path) -> None:
    path = tmp_path / "locked.db"
    setup = sqlite3.connect(path, isolation_level=None)
    setup.execute("CREATE TABLE t (n INTEGER)")
    with setup:
        setup.execute("BEGIN")
        setup.executemany("INSERT INTO t VALUES (?)", [(n,) for n in range(LOOP_READ_STEPS)])
    reader = LoopReader(path, "locked.db")
    try:
        assert reader.fetchall("SELECT n FROM t WHERE rowid = 8") == [(7,)]
        # A scan whose steps exceed the budget is interrupted, not finished on the loop.
        assert reader.fetchall("SELECT COUNT(*) FROM t WHERE n % 3 = 1") is None
        # Rollback journal (not WAL) with a writer holding the lock: no wait, None.
        setup.execute("BEGIN EXCLUSIVE")
        assert reader.fetchall("SELECT n FROM t WHERE rowid = 8") is None
        setup.execute("ROLLBACK")
        assert reader.fetchall("SELECT n FROM t WHERE rowid = 8") == [(7,)]
    finally:
        reader.close()
        setup.close()
