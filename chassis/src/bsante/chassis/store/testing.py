"""Test helper: check that every query a test made through a store is served by a declared index.

    with assert_queries_indexed(service.store):
        ...  # drive the service (HTTP calls, events)

records the shape of every `find` and `count` call made on that store object inside the block
(collection, equality fields, range fields, sort fields; never the values), and fails at the end
listing each shape no index declared with `Store.ensure_index` backs.

An index backs a query when, as MongoDB's equality-sort-range rule and SQLite's planner want:
its leading fields are equality fields of the query (`$eq`, `$in`), at least one when the query
has any; when the query sorts, the sort fields follow those leading equality fields, in order
(so the index gives the documents already sorted); a query filtering on ranges only starts the
index with one of them. Equality fields the index lacks are checked on the documents it finds
(the query is then as selective as the index's leading fields). A query with neither filter nor
sort (a whole-collection count or page) needs no index.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from bsante.chassis.store import Document, Filter, Index, Query, Store

_RANGE = frozenset({"$gt", "$gte", "$lt", "$lte"})


@dataclass(frozen=True)
class QueryShape:
    collection: str
    equality: frozenset[str]
    ranges: frozenset[str]
    order: tuple[str, ...]

    @classmethod
    def of(cls, collection: str, where: Filter, order: tuple[str, ...] = ()) -> QueryShape:
        equality: set[str] = set()
        ranges: set[str] = set()
        for name, condition in where.items():
            ops = set(condition) if isinstance(condition, Mapping) else {"$eq"}
            if ops - _RANGE:
                equality.add(name)
            if ops & _RANGE:
                ranges.add(name)
        return cls(collection, frozenset(equality), frozenset(ranges - equality), order)

    def __str__(self) -> str:
        return (
            f"{self.collection}: equality {sorted(self.equality)}, ranges {sorted(self.ranges)}, "
            f"order {list(self.order)}"
        )


def backs(index: Index, shape: QueryShape) -> bool:
    """True when `index` serves `shape` (the rule in this module's docstring)."""
    if index.collection != shape.collection:
        return False
    fields = index.fields
    if not shape.equality and not shape.ranges and not shape.order:
        return True
    if shape.order:
        # The sort may start after any run of leading equality fields (none when the query
        # has no equality field: then the index must start with the sort).
        for n in range(len(fields)):
            if n > 0 and fields[n - 1] not in shape.equality:
                return False
            if (n > 0 or not shape.equality) and fields[n : n + len(shape.order)] == shape.order:
                return True
        return False
    if shape.equality:
        return fields[0] in shape.equality
    return fields[0] in shape.ranges


def unbacked(store: Store, shapes: set[QueryShape]) -> list[QueryShape]:
    indexes = store.declared_indexes()
    missing = [s for s in shapes if not any(backs(index, s) for index in indexes)]
    return sorted(missing, key=str)


@contextmanager
def recording_queries(store: Store) -> Iterator[set[QueryShape]]:
    """The shapes of the `find`/`count` calls made on `store` inside the block."""
    shapes: set[QueryShape] = set()
    find, count = store.find, store.count

    async def recorded_find(collection: str, query: Query | None = None) -> list[Document]:
        q = query or Query()
        shapes.add(QueryShape.of(collection, q.where, tuple(name for name, _ in q.order_by)))
        return await find(collection, query)

    async def recorded_count(collection: str, where: Filter | None = None) -> int:
        shapes.add(QueryShape.of(collection, where or {}))
        return await count(collection, where)

    patched: dict[str, Any] = {"find": recorded_find, "count": recorded_count}
    store.__dict__.update(patched)
    try:
        yield shapes
    finally:
        for name in patched:
            store.__dict__.pop(name, None)


@contextmanager
def assert_queries_indexed(store: Store) -> Iterator[set[QueryShape]]:
    """Fail when a query made on `store` inside the block has no declared index backing it."""
    with recording_queries(store) as shapes:
        yield shapes
    missing = unbacked(store, shapes)
    if missing:
        declared = "\n  ".join(f"{i.collection} {list(i.fields)}" for i in store.declared_indexes())
        raise AssertionError(
            "queries without a declared index:\n  "
            + "\n  ".join(map(str, missing))
            + f"\ndeclared:\n  {declared or '(none)'}"
        )
