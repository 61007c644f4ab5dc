"""One contract suite for every store adapter: SQLite always, MongoDB when MONGODB_URI is set."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bsante.chassis.store import (
    ConcurrencyConflict,
    DocumentNotFound,
    DuplicateDocument,
    OutboxRecord,
    Query,
    Store,
    StoreError,
    Transaction,
    TransactionAborted,
    TransientConflict,
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


# -- concurrency -------------------------------------------------------------------------------


async def test_parallel_writers_on_one_version_exactly_one_wins(store: Store) -> None:
    async with store.transaction() as tx:
        await tx.insert("things", "a", {"n": 0})
    doc = await store.get("things", "a")
    assert doc is not None

    async def write(n: int) -> int:
        async with store.transaction() as tx:
            await tx.update("things", "a", {"n": n}, expected_version=doc.version)
        return n

    results = await asyncio.gather(*(write(n) for n in range(1, 9)), return_exceptions=True)
    winners = [r for r in results if isinstance(r, int)]
    assert len(winners) == 1
    assert all(isinstance(r, ConcurrencyConflict) for r in results if not isinstance(r, int))
    got = await store.get("things", "a")
    assert got is not None and got.version == 2 and got.data == {"n": winners[0]}


async def test_parallel_inbox_claims_of_one_event_claim_once(store: Store) -> None:
    async def claim(_: int) -> bool:
        async def block(tx: Transaction) -> bool:
            return await tx.claim_inbox("g", "e-race")

        return await store.run_in_transaction(block, attempts=10)

    results = await asyncio.gather(*(claim(n) for n in range(6)))
    assert sorted(results) == [False] * 5 + [True]


async def test_a_duplicate_aborts_the_whole_transaction(store: Store) -> None:
    async with store.transaction() as tx:
        await tx.insert("things", "taken", {"n": 0})
    with pytest.raises(DuplicateDocument):
        async with store.transaction() as tx:
            await tx.insert("things", "mine", {"n": 1})
            await tx.add_outbox(_record(1))
            assert await tx.claim_inbox("g", "e1")
            with pytest.raises(DuplicateDocument) as caught:
                await tx.insert("things", "taken", {"n": 2})
            assert not isinstance(caught.value, TransactionAborted)
            # Going on after the duplicate is refused, on both adapters.
            with pytest.raises(TransactionAborted):
                await tx.get("things", "mine")
            with pytest.raises(TransactionAborted):
                await tx.insert("things", "other", {"n": 3})
            # Leaving the block normally does not commit it either.
    assert await store.get("things", "mine") is None
    assert await store.get("things", "other") is None
    assert await store.outbox_pending() == []
    assert not await store.inbox_contains("g", "e1")
    got = await store.get("things", "taken")
    assert got is not None and got.data == {"n": 0}


async def test_run_in_transaction_reruns_transient_conflicts_a_bounded_number_of_times(
    store: Store,
) -> None:
    calls = 0

    async def flaky(tx: Transaction) -> str:
        nonlocal calls
        calls += 1
        await tx.insert("things", f"try-{calls}", {})
        if calls < 3:
            raise TransientConflict("things", f"try-{calls}", "simulated")
        return "done"

    assert await store.run_in_transaction(flaky, attempts=3) == "done"
    assert calls == 3
    # Only the last run committed.
    assert [d.id for d in await store.find("things")] == ["try-3"]

    async def always(tx: Transaction) -> None:
        raise TransientConflict("things", "x", "simulated")

    with pytest.raises(ConcurrencyConflict):
        await store.run_in_transaction(always, attempts=2)

    stale = 0

    async def stale_version(tx: Transaction) -> None:
        nonlocal stale
        stale += 1
        await tx.update("things", "try-3", {}, expected_version=7)

    with pytest.raises(ConcurrencyConflict):
        await store.run_in_transaction(stale_version)
    assert stale == 1, "a stale version is the caller's to decide, never re-run"


# -- delete and purge --------------------------------------------------------------------------


async def test_delete_checks_presence_and_version(store: Store) -> None:
    async with store.transaction() as tx:
        await tx.insert("things", "a", {"n": 1})
        await tx.insert("things", "b", {"n": 2})
    with pytest.raises(ConcurrencyConflict):
        async with store.transaction() as tx:
            await tx.delete("things", "a", expected_version=5)
    assert await store.get("things", "a") is not None
    with pytest.raises(RuntimeError):
        async with store.transaction() as tx:
            await tx.delete("things", "a", expected_version=1)
            assert await tx.get("things", "a") is None
            raise RuntimeError("rolled back")
    assert await store.get("things", "a") is not None
    async with store.transaction() as tx:
        await tx.delete("things", "a", expected_version=1)
        await tx.delete("things", "b")
    assert await store.get("things", "a") is None and await store.get("things", "b") is None
    with pytest.raises(DocumentNotFound):
        async with store.transaction() as tx:
            await tx.delete("things", "a")
    # The id is free again.
    async with store.transaction() as tx:
        assert (await tx.insert("things", "a", {"n": 9})).version == 1


async def test_purge_deletes_only_the_matching_documents(store: Store) -> None:
    async with store.transaction() as tx:
        for n in range(1100):  # more than one purge batch
            await tx.insert(
                "events", f"e{n:04d}", {"day": "2026-01-01" if n < 1050 else "2026-02-01"}
            )
        await tx.insert("other", "o", {"day": "2026-01-01"})
    assert await store.purge("events", {"day": {"$lt": "2026-01-15"}}) == 1050
    assert await store.count("events") == 50
    assert await store.count("other") == 1
    assert await store.purge("events", {"day": {"$lt": "2026-01-15"}}) == 0


# -- indexes -----------------------------------------------------------------------------------


async def test_a_unique_index_refuses_a_second_value(store: Store) -> None:
    index = await store.ensure_index("users", ["username"], unique=True)
    assert await store.ensure_index("users", ["username"], unique=True) == index  # idempotent
    assert index in store.declared_indexes()
    async with store.transaction() as tx:
        await tx.insert("users", "u1", {"username": "jeanne"})
        await tx.insert("users", "u2", {"username": "paul"})
        await tx.insert("users", "u3", {})  # no value: no collision
        await tx.insert("users", "u4", {})
        await tx.insert("others", "x", {"username": "jeanne"})  # another collection
    with pytest.raises(DuplicateDocument) as caught:
        async with store.transaction() as tx:
            await tx.insert("users", "u5", {"username": "jeanne"})
    assert caught.value.index == index.name
    assert await store.get("users", "u5") is None
    doc = await store.get("users", "u2")
    assert doc is not None
    with pytest.raises(DuplicateDocument):
        async with store.transaction() as tx:
            await tx.update("users", "u2", {"username": "jeanne"}, doc.version)
    got = await store.get("users", "u2")
    assert got is not None and got.data == {"username": "paul"}


async def test_parallel_inserts_under_a_unique_index_one_wins(store: Store) -> None:
    await store.ensure_index("users", ["username"], unique=True)

    async def create(n: int) -> int:
        async with store.transaction() as tx:
            await tx.insert("users", f"u{n}", {"username": "same"})
        return n

    results = await asyncio.gather(*(create(n) for n in range(5)), return_exceptions=True)
    assert len([r for r in results if isinstance(r, int)]) == 1
    # MongoDB may report the loser as a write conflict rather than a duplicate: both are 409s.
    assert all(
        isinstance(r, DuplicateDocument | ConcurrencyConflict)
        for r in results
        if not isinstance(r, int)
    )
    assert await store.count("users", {"username": "same"}) == 1


async def test_a_unique_index_over_repeated_values_is_refused(store: Store) -> None:
    async with store.transaction() as tx:
        await tx.insert("users", "a", {"email": "x"})
        await tx.insert("users", "b", {"email": "x"})
    with pytest.raises(StoreError):
        await store.ensure_index("users", ["email"], unique=True)
    assert all(i.fields != ("email",) for i in store.declared_indexes())


# -- outbox states, retention, leases ----------------------------------------------------------


def _keyed(n: int, key: str) -> OutboxRecord:
    return OutboxRecord(
        event_id=f"evt-{n:04d}",
        topic="t",
        key=key,
        value=f"v{n}".encode(),
        headers={},
        created_at=datetime.now(UTC),
    )


async def test_a_failing_row_holds_back_only_its_own_key(store: Store) -> None:
    async with store.transaction() as tx:
        for n, key in enumerate(["a", "b", "a", "c", "b"]):
            await tx.add_outbox(_keyed(n, key))
    later = datetime.now(UTC) + timedelta(hours=1)
    await store.outbox_mark_failed("evt-0000", "Boom: first line", retry_at=later)
    pending = await store.outbox_pending()
    assert [r.event_id for r in pending] == ["evt-0001", "evt-0003", "evt-0004"]
    await store.outbox_mark_sent_many(["evt-0001", "evt-0003", "evt-0004"])
    assert await store.outbox_pending() == []

    await store.outbox_mark_failed("evt-0000", "Boom: again", park=True)
    parked = await store.outbox_parked()
    assert [r.event_id for r in parked] == ["evt-0000"]
    assert parked[0].state == "failed" and parked[0].attempts == 2
    assert parked[0].last_error == "Boom: again" and parked[0].parked_at is not None
    assert await store.outbox_pending() == []  # evt-0002 (key a) still waits

    assert not await store.outbox_replay("evt-0001")  # sent, not parked
    assert not await store.outbox_replay("unknown")
    assert await store.outbox_replay("evt-0000")
    assert await store.outbox_parked() == []
    pending = await store.outbox_pending()
    assert [r.event_id for r in pending] == ["evt-0000", "evt-0002"]
    assert pending[0].attempts == 0 and pending[0].last_error == "Boom: again"


async def test_purges_drop_only_old_sent_rows_and_old_claims(store: Store) -> None:
    async with store.transaction() as tx:
        for n in range(3):
            await tx.add_outbox(_record(n))
        assert await tx.claim_inbox("g", "old")
    await store.outbox_mark_sent_many(["evt-0000", "evt-0001"])
    now = datetime.now(UTC)
    assert await store.outbox_purge_sent(now - timedelta(hours=1)) == 0
    assert await store.inbox_purge(now - timedelta(hours=1)) == 0
    later = now + timedelta(seconds=1)
    assert await store.outbox_purge_sent(later) == 2
    assert [r.event_id for r in await store.outbox_pending()] == ["evt-0002"]  # unsent kept
    assert await store.inbox_purge(later) == 1
    assert not await store.inbox_contains("g", "old")


async def test_a_lease_has_one_holder_until_it_expires(store: Store) -> None:
    assert await store.acquire_lease("relay", "a", ttl=60)
    assert await store.acquire_lease("relay", "a", ttl=60)  # renewal
    assert not await store.acquire_lease("relay", "b", ttl=60)
    assert await store.lease_holder("relay") == "a"
    await store.release_lease("relay", "b")  # not b's: nothing happens
    assert await store.lease_holder("relay") == "a"
    await store.release_lease("relay", "a")
    assert await store.lease_holder("relay") is None
    assert await store.acquire_lease("relay", "b", ttl=0)  # expires at once
    assert await store.lease_holder("relay") is None
    assert await store.acquire_lease("relay", "c", ttl=60)  # b's lease had expired
    assert await store.lease_holder("relay") == "c"


async def test_parallel_lease_takers_one_wins(store: Store) -> None:
    results = await asyncio.gather(
        *(store.acquire_lease("relay", f"h{n}", ttl=60) for n in range(6))
    )
    assert sum(results) == 1
    assert await store.lease_holder("relay") == f"h{results.index(True)}"


async def test_insert_if_absent_claims_a_key_without_aborting(store: Store) -> None:
    async with store.transaction() as tx:
        assert await tx.insert_if_absent("claims", "k", {"by": "first"}) is not None
        assert await tx.insert_if_absent("claims", "k", {"by": "second"}) is None
        await tx.insert("things", "after", {})  # the transaction goes on
    got = await store.get("claims", "k")
    assert got is not None and got.data == {"by": "first"} and got.version == 1
    assert await store.get("things", "after") is not None

    async def claim(n: int) -> bool:
        async def block(tx: Transaction) -> bool:
            return await tx.insert_if_absent("claims", "race", {"by": n}) is not None

        return await store.run_in_transaction(block, attempts=10)

    assert sorted(await asyncio.gather(*(claim(n) for n in range(5)))) == [False] * 4 + [True]


async def test_keep_writes_once_and_the_transaction_reads_it(store: Store) -> None:
    await store.ensure_index("kept", ("patient_id",))
    async with store.transaction() as tx:
        await tx.keep("kept", "e1", {"patient_id": "p1", "n": 1})
        await tx.keep("kept", "e1", {"patient_id": "p1", "n": 2})  # the same id: nothing
        await tx.mark_inbox("audit", "e1")
        seen = await tx.get("kept", "e1")  # a read later in the transaction sees it
        await tx.keep("kept", "e2", {"patient_id": "p1", "n": 3})
    assert seen is not None and seen.data == {"patient_id": "p1", "n": 1}
    assert [d.id for d in await store.find("kept", Query(where={"patient_id": "p1"}))] == [
        "e1",
        "e2",
    ]
    assert await store.inbox_contains("audit", "e1")
    async with store.transaction() as tx:
        await tx.keep("kept", "e1", {"patient_id": "p9", "n": 9})  # a redelivery
        await tx.mark_inbox("audit", "e1")
    got = await store.get("kept", "e1")
    assert got is not None and got.data == {"patient_id": "p1", "n": 1} and got.version == 1


async def test_keep_and_inbox_marks_roll_back_with_their_transaction(store: Store) -> None:
    with pytest.raises(RuntimeError):
        async with store.transaction() as tx:
            await tx.keep("kept", "gone", {"n": 1})
            await tx.mark_inbox("audit", "gone")
            await tx.add_outbox(_record(1))
            raise RuntimeError("the handler failed")
    assert await store.get("kept", "gone") is None
    assert not await store.inbox_contains("audit", "gone")
    assert await store.outbox_pending() == []


async def test_keep_in_parallel_transactions_all_commit(store: Store) -> None:
    async def one(n: int) -> None:
        async with store.transaction() as tx:
            await tx.keep("kept", f"p{n}", {"n": n})
            await tx.mark_inbox("audit", f"p{n}")
            await tx.add_outbox(_record(n))

    await asyncio.gather(*(one(n) for n in range(20)))
    assert await store.count("kept") == 20
    assert all([await store.inbox_contains("audit", f"p{n}") for n in range(20)])
    assert len(await store.outbox_pending()) == 20


async def test_keep_on_a_unique_index_refuses_the_duplicate(store: Store) -> None:
    await store.ensure_index("kept", ("code",), unique=True)
    async with store.transaction() as tx:
        await tx.keep("kept", "a", {"code": "X"})
    with pytest.raises(DuplicateDocument):
        async with store.transaction() as tx:
            await tx.keep("kept", "b", {"code": "X"})
    assert await store.get("kept", "b") is None
