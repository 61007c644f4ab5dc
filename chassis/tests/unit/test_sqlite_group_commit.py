"""SQLite: transactions that only emit events share one commit; each returns once its rows are
committed, a failing row fails only its own transaction, and the other writes keep theirs."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime

import pytest

from bsante.chassis.metrics import WRITE_TRANSACTIONS
from bsante.chassis.store import DuplicateDocument, OutboxRecord
from bsante.chassis.store.sqlite import SqliteStore


def _record(event_id: str) -> OutboxRecord:
    return OutboxRecord(
        event_id=event_id,
        topic="t",
        key=event_id,
        value=event_id.encode(),
        headers={},
        created_at=datetime.now(UTC),
    )


@pytest.fixture
def store(sqlite_store: SqliteStore) -> SqliteStore:
    return sqlite_store


def _commits(store: SqliteStore) -> float:
    return WRITE_TRANSACTIONS.labels(store.path.name)._value.get()


async def _emit(store: SqliteStore, *event_ids: str) -> None:
    async with store.transaction() as tx:
        for event_id in event_ids:
            await tx.add_outbox(_record(event_id))


async def _pending(store: SqliteStore) -> set[str]:
    return {r.event_id for r in await store.outbox_pending(1000)}


async def test_concurrent_emit_only_transactions_share_a_commit(store: SqliteStore) -> None:
    before = _commits(store)
    await asyncio.gather(*(_emit(store, f"e{n}", f"e{n}-bis") for n in range(20)))
    # Every row is committed (visible to the reader connection) once the calls returned.
    assert await _pending(store) == {f"e{n}{s}" for n in range(20) for s in ("", "-bis")}
    assert _commits(store) - before < 20


async def test_a_failing_row_fails_only_its_own_transaction(store: SqliteStore) -> None:
    await _emit(store, "taken")
    outcomes = await asyncio.gather(
        _emit(store, "a"), _emit(store, "taken"), _emit(store, "b"), return_exceptions=True
    )
    assert outcomes[0] is None and outcomes[2] is None
    assert isinstance(outcomes[1], Exception)
    assert await _pending(store) == {"taken", "a", "b"}


async def test_rows_of_a_transaction_that_raises_are_not_kept(store: SqliteStore) -> None:
    with pytest.raises(RuntimeError):
        async with store.transaction() as tx:
            await tx.add_outbox(_record("lost"))
            await tx.insert("c", "d1", {"n": 1})
            raise RuntimeError("undone")
    with pytest.raises(RuntimeError):
        async with store.transaction() as tx:
            await tx.add_outbox(_record("lost-too"))
            raise RuntimeError("undone")
    assert await _pending(store) == set()
    assert await store.get("c", "d1") is None


async def test_rows_commit_with_the_documents_of_their_transaction(store: SqliteStore) -> None:
    async with store.transaction() as tx:
        await tx.add_outbox(_record("first"))
        await tx.insert("c", "d1", {"n": 1})
        await tx.add_outbox(_record("second"))
    assert [r.event_id for r in await store.outbox_pending(10)] == ["first", "second"]
    assert await store.get("c", "d1") is not None


async def _keep(store: SqliteStore, event_id: str, data: dict[str, object]) -> None:
    async with store.transaction() as tx:
        await tx.mark_inbox("audit", event_id)
        await tx.keep("trail", event_id, data)


async def test_keep_only_transactions_share_a_commit_and_never_take_the_writer(
    store: SqliteStore, writer_begins: Callable[[SqliteStore], list[str]]
) -> None:
    begun = writer_begins(store)
    before = _commits(store)
    await asyncio.gather(*(_keep(store, f"e{n}", {"n": n}) for n in range(20)))
    assert begun == []
    assert _commits(store) - before < 20
    assert await store.count("trail") == 20
    assert all([await store.inbox_contains("audit", f"e{n}") for n in range(20)])


async def test_an_undeclared_unique_index_refuses_a_held_keep_at_the_commit(
    store: SqliteStore,
) -> None:
    # Another store object on the same file declared the index; this one did not, so it holds
    # the write until the commit, where the index refuses it: only that transaction fails.
    other = SqliteStore(store.path)
    await other.start()
    try:
        await other.ensure_index("trail", ("code",), unique=True)
    finally:
        await other.close()
    await _keep(store, "first", {"code": "X"})
    outcomes = await asyncio.gather(
        _keep(store, "a", {"code": "A"}),
        _keep(store, "again", {"code": "X"}),
        _keep(store, "b", {"code": "B"}),
        return_exceptions=True,
    )
    assert outcomes[0] is None and outcomes[2] is None
    assert isinstance(outcomes[1], DuplicateDocument)
    assert {d.id for d in await store.find("trail")} == {"first", "a", "b"}
    assert not await store.inbox_contains("audit", "again")
