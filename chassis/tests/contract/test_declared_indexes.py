"""Declared indexes: SQLite's planner uses them, and `assert_queries_indexed` finds the gaps."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bsante.chassis.store import Index, Query
from bsante.chassis.store.sqlite import SqliteStore, _collection_sql, _where_sql
from bsante.chassis.store.testing import QueryShape, assert_queries_indexed, backs


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqliteStore]:
    adapter = SqliteStore(tmp_path / "idx.db")
    await adapter.start()
    yield adapter
    await adapter.close()


async def plan(store: SqliteStore, collection: str, query: Query) -> str:
    where, params = _where_sql(query.where)
    # As the adapter sorts: the query's fields, then the id in the last field's direction.
    order = "".join(
        f"json_extract(data, '$.{name}') {'DESC' if desc else 'ASC'}, "
        for name, desc in query.order_by
    )
    last = "DESC" if query.order_by and query.order_by[-1][1] else "ASC"
    sql = (
        f"EXPLAIN QUERY PLAN SELECT id FROM documents WHERE {_collection_sql(collection)} "
        f"AND {where} ORDER BY {order}id {last}"
    )
    # A real query first: an EXPLAIN alone does not notice the schema changed since the
    # connection last read it.
    await store.find(collection, Query(limit=1))
    return " / ".join(str(row[-1]) for row in await store._read(sql, params))


async def test_sqlite_serves_a_filter_from_its_declared_expression_index(
    store: SqliteStore,
) -> None:
    index = await store.ensure_index("audit", ["structure_id", "at"])
    query = Query(where={"structure_id": "s1"}, order_by=[("at", True)])
    text = await plan(store, "audit", query)
    assert index.name in text and "USE TEMP B-TREE" not in text, text
    assert index.name not in await plan(store, "other", Query(where={"structure_id": "s1"}))
    # An equality field the index lacks is checked on the rows found, still in index order.
    narrower = Query(where={"structure_id": "s1", "kind": "k"}, order_by=[("at", True)])
    text = await plan(store, "audit", narrower)
    assert index.name in text and "USE TEMP B-TREE" not in text, text


def test_the_backing_rule() -> None:
    index = Index("audit", ("structure_id", "patient_id", "at"))
    shape = QueryShape.of
    assert backs(index, shape("audit", {"structure_id": "s", "patient_id": "p"}, ("at",)))
    assert backs(index, shape("audit", {"patient_id": "p", "structure_id": "s"}))
    assert backs(index, shape("audit", {"structure_id": "s"}))  # a prefix
    assert backs(index, shape("audit", {"structure_id": {"$in": ["a"]}, "kind": "x"}))
    assert not backs(index, shape("audit", {"patient_id": "p"}))  # not a prefix
    assert not backs(index, shape("audit", {"structure_id": "s"}, ("at",)))  # sort after a gap
    # A further equality field is checked on the documents found, in the index's order.
    sorted_index = Index("audit", ("structure_id", "at"))
    assert backs(sorted_index, shape("audit", {"structure_id": "s", "kind": "x"}, ("at",)))
    assert not backs(sorted_index, shape("audit", {"kind": "x"}, ("at",)))  # not a prefix
    assert not backs(Index("audit", ("at",)), shape("audit", {"kind": "x"}, ("at",)))  # a scan
    assert backs(Index("audit", ("at",)), shape("audit", {"at": {"$gte": "2026"}}, ("at",)))
    assert not backs(index, shape("other", {"structure_id": "s"}))
    assert backs(Index("d", ("day",)), shape("d", {"day": {"$gte": "2026-01-01"}}))
    assert backs(index, shape("audit", {}))  # whole collection


async def test_assert_queries_indexed_lists_the_unbacked_queries(store: SqliteStore) -> None:
    await store.ensure_indexes([Index("audit", ("structure_id", "at"))])
    with assert_queries_indexed(store) as shapes:
        await store.find("audit", Query(where={"structure_id": "s"}, order_by=[("at", True)]))
        await store.count("audit", {"structure_id": "s"})
    assert len(shapes) == 2
    assert "find" not in store.__dict__, "the store is restored after the block"

    with pytest.raises(AssertionError) as failed:
        with assert_queries_indexed(store):
            await store.find("audit", Query(where={"user_id": "u"}))
            await store.count("audit", {"structure_id": "s"})
    assert "audit: equality ['user_id']" in str(failed.value)
    assert "structure_id']" not in str(failed.value).split("declared")[0]
