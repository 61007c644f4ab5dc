"""One contract suite for every store adapter: SQLite always, MongoDB when MONGODB_URI is set."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bsante.chassis.store import (
    ConcurrencyConflict,
    DuplicateDocument,
    OutboxRecord,
    Query,
    Store,
)
from bsante.chassis.store.sqlite import SqliteStore

MONGODB_URI = os.environ.get("MONGODB_URI")


@pytest.fixture(params=["sqlite", pytest.param("mongodb", marks=pytest.mark.mongodb)])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    if request.param == "sqlite":
        adapter: Store = SqliteStore(tmp_path / "contract.db")
    else:
        if not MONGODB_URI:
            pytest.skip("MONGODB_URI not set: MongoDB variant of the store contract skipped")
        from bsante.chassis.store.mongo import MongoStore

        adapter = MongoStore(MONGODB_URI, f"bsante_contract_{uuid.uuid4().hex[:8]}")
    await adapter.start()
    try:
        yield adapter
    finally:
        if request.param == "mongodb":
            from bsante.chassis.store.mongo import MongoStore

            assert isinstance(adapter, MongoStore)
            await adapter._client.drop_database(adapter._db.name)
        await adapter.close()


def _record(n: int) -> OutboxRecord:
    return OutboxRecord(
        event_id=f"evt-{n:04d}",
        topic="t",
        key=f"k{n}",
        value=f"v{n}".encode(),
        headers={"traceparent": f"00-{n:032x}-{n:016x}-01"},
        created_at=datetime.now(UTC),
    )


async def test_insert_get_and_versions(store: Store) -> None:
    async with store.transaction() as tx:
        doc = await tx.insert("things", "a", {"n": 1, "nested": {"x": "y"}})
    assert doc.version == 1
    got = await store.get("things", "a")
    assert got is not None and got.data == {"n": 1, "nested": {"x": "y"}} and got.version == 1
    async with store.transaction() as tx:
        updated = await tx.update("things", "a", {"n": 2}, expected_version=1)
    assert updated.version == 2
    got = await store.get("things", "a")
    assert got is not None and got.version == 2 and got.data == {"n": 2}
    assert await store.get("things", "missing") is None
    assert await store.get("other", "a") is None


async def test_stale_version_conflicts_and_changes_nothing(store: Store) -> None:
    async with store.transaction() as tx:
        await tx.insert("things", "a", {"n": 1})
    async with store.transaction() as tx:
        await tx.update("things", "a", {"n": 2}, expected_version=1)
    with pytest.raises(ConcurrencyConflict):
        async with store.transaction() as tx:
            await tx.update("things", "a", {"n": 3}, expected_version=1)
    got = await store.get("things", "a")
    assert got is not None and got.data == {"n": 2}


async def test_duplicate_insert_is_refused(store: Store) -> None:
    async with store.transaction() as tx:
        await tx.insert("things", "a", {"n": 1})
    with pytest.raises(DuplicateDocument):
        async with store.transaction() as tx:
            await tx.insert("things", "a", {"n": 9})
    got = await store.get("things", "a")
    assert got is not None and got.data == {"n": 1}


async def test_a_failed_transaction_leaves_nothing_behind(store: Store) -> None:
    with pytest.raises(RuntimeError):
        async with store.transaction() as tx:
            await tx.insert("things", "a", {"n": 1})
            await tx.add_outbox(_record(1))
            assert await tx.claim_inbox("g", "e1")
            raise RuntimeError("boom")
    assert await store.get("things", "a") is None
    assert await store.outbox_pending() == []
    assert not await store.inbox_contains("g", "e1")


async def test_reads_outside_a_transaction_see_only_committed_data(store: Store) -> None:
    async with store.transaction() as tx:
        await tx.insert("things", "a", {"n": 1})
        assert await tx.get("things", "a") is not None
        assert await store.get("things", "a") is None


async def test_find_filters_sorts_and_pages(store: Store) -> None:
    async with store.transaction() as tx:
        for i in range(10):
            await tx.insert(
                "things", f"id{i}", {"n": i, "kind": "even" if i % 2 == 0 else "odd", "on": i > 4}
            )
    evens = await store.find("things", Query(where={"kind": "even"}, order_by=[("n", True)]))
    assert [d.data["n"] for d in evens] == [8, 6, 4, 2, 0]
    page = await store.find(
        "things",
        Query(where={"n": {"$gte": 3, "$lt": 8}}, order_by=[("n", False)], limit=2, offset=1),
    )
    assert [d.data["n"] for d in page] == [4, 5]
    assert [d.id for d in await store.find("things", Query(where={"n": {"$in": [1, 9]}}))] == [
        "id1",
        "id9",
    ]
    assert await store.count("things", {"on": True}) == 5
    assert await store.count("things") == 10
    with pytest.raises(ValueError):
        await store.find("things", Query(where={"n; DROP": 1}))


async def test_outbox_keeps_order_and_marks(store: Store) -> None:
    async with store.transaction() as tx:
        for n in range(5):
            await tx.add_outbox(_record(n))
    pending = await store.outbox_pending()
    assert [r.event_id for r in pending] == [f"evt-{n:04d}" for n in range(5)]
    assert pending[0].headers["traceparent"].startswith("00-")
    assert pending[0].value == b"v0"
    await store.outbox_mark_failed("evt-0000", "Timeout")
    await store.outbox_mark_sent("evt-0001")
    pending = await store.outbox_pending()
    assert [r.event_id for r in pending] == ["evt-0000", "evt-0002", "evt-0003", "evt-0004"]
    assert pending[0].attempts == 1


async def test_inbox_claims_once_per_group(store: Store) -> None:
    async with store.transaction() as tx:
        assert await tx.claim_inbox("g1", "e1")
        assert await tx.claim_inbox("g2", "e1")
    async with store.transaction() as tx:
        assert not await tx.claim_inbox("g1", "e1")
    assert await store.inbox_contains("g1", "e1")
    assert not await store.inbox_contains("g3", "e1")


async def test_concurrent_writers_serialise_without_losing_updates(store: Store) -> None:
    async with store.transaction() as tx:
        await tx.insert("counters", "c", {"n": 0})

    async def bump() -> None:
        while True:
            doc = await store.get("counters", "c")
            assert doc is not None
            try:
                async with store.transaction() as tx:
                    await tx.update("counters", "c", {"n": doc.data["n"] + 1}, doc.version)
                return
            except ConcurrencyConflict:
                await asyncio.sleep(0)

    await asyncio.gather(*(bump() for _ in range(20)))
    doc = await store.get("counters", "c")
    assert doc is not None and doc.data["n"] == 20 and doc.version == 21


async def test_ping(store: Store) -> None:
    assert await store.ping()


async def test_get_many_returns_the_committed_documents_found(store: Store) -> None:
    async with store.transaction() as tx:
        for n in range(3):
            await tx.insert("bulk", f"d{n}", {"n": n})
        await tx.update("bulk", "d1", {"n": 10}, expected_version=1)
    found = await store.get_many("bulk", ["d0", "d1", "missing", "d0"])
    assert set(found) == {"d0", "d1"}
    assert found["d1"].version == 2 and found["d1"].data == {"n": 10}
    assert await store.get_many("bulk", []) == {}
    many = [f"x{n}" for n in range(1200)]  # more than one SQL chunk
    async with store.transaction() as tx:
        for doc_id in many:
            await tx.insert("bulk", doc_id, {})
    assert len(await store.get_many("bulk", many)) == 1200
