"""Document store port: versioned JSON documents, transactions, outbox and inbox.

Adapters: `sqlite` (embedded default) and `mongodb` (PyMongo's AsyncMongoClient). A service's
state change, the events it raises (outbox) and the events it consumed (inbox) commit in one
transaction of its own store.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

JSON = dict[str, Any]
# Equality on a (dotted) field, or an operator dict: {"$gte": v}, {"$lt": v}, {"$in": [...]}.
Filter = Mapping[str, Any]
OPERATORS = frozenset({"$eq", "$gt", "$gte", "$lt", "$lte", "$in"})


class StoreError(Exception):
    """Base of the store's own errors."""


class ConcurrencyConflict(StoreError):
    """The document changed since it was read (optimistic concurrency)."""

    def __init__(self, collection: str, doc_id: str, expected: int) -> None:
        super().__init__(f"{collection}/{doc_id} is not at version {expected}")
        self.collection, self.doc_id, self.expected = collection, doc_id, expected


class DuplicateDocument(StoreError):
    """A document with this id already exists."""

    def __init__(self, collection: str, doc_id: str) -> None:
        super().__init__(f"{collection}/{doc_id} already exists")
        self.collection, self.doc_id = collection, doc_id


class DocumentNotFound(StoreError):
    def __init__(self, collection: str, doc_id: str) -> None:
        super().__init__(f"{collection}/{doc_id} not found")
        self.collection, self.doc_id = collection, doc_id


@dataclass(frozen=True)
class Document:
    collection: str
    id: str
    version: int
    data: JSON


@dataclass(frozen=True)
class OutboxRecord:
    """One event waiting to be published, with the trace context of the write that raised it."""

    event_id: str
    topic: str
    key: str
    value: bytes
    headers: dict[str, str]
    created_at: datetime
    attempts: int = 0
    seq: int = 0


@dataclass(frozen=True)
class Query:
    where: Filter = field(default_factory=dict)
    order_by: Sequence[tuple[str, bool]] = ()  # (field, descending)
    limit: int = 100
    offset: int = 0


def check_filter(where: Filter) -> None:
    for name, condition in where.items():
        if not name.replace("_", "").replace(".", "").isalnum():
            raise ValueError(f"invalid field name {name!r}")
        if isinstance(condition, Mapping):
            unknown = set(condition) - OPERATORS
            if unknown:
                raise ValueError(f"unknown operators {sorted(unknown)}")


class Transaction(ABC):
    """A unit of work: everything done through it commits or rolls back together."""

    @abstractmethod
    async def get(self, collection: str, doc_id: str) -> Document | None: ...

    @abstractmethod
    async def insert(self, collection: str, doc_id: str, data: JSON) -> Document:
        """Create at version 1; DuplicateDocument if the id exists."""

    @abstractmethod
    async def update(
        self, collection: str, doc_id: str, data: JSON, expected_version: int
    ) -> Document:
        """Replace the data if stored at `expected_version`, else ConcurrencyConflict."""

    @abstractmethod
    async def add_outbox(self, record: OutboxRecord) -> None: ...

    @abstractmethod
    async def claim_inbox(self, group: str, event_id: str) -> bool:
        """Record that `group` handled `event_id`; False if it already had (skip the effects)."""


class Store(ABC):
    @abstractmethod
    async def start(self) -> None: ...

    @abstractmethod
    async def close(self) -> None: ...

    @abstractmethod
    async def ping(self) -> bool:
        """True when the database answers (readiness)."""

    @abstractmethod
    def transaction(self) -> AbstractAsyncContextManager[Transaction]:
        """Commits when the block exits normally, rolls back when it raises."""

    @abstractmethod
    async def get(self, collection: str, doc_id: str) -> Document | None: ...

    async def get_many(self, collection: str, doc_ids: Sequence[str]) -> dict[str, Document]:
        """Committed documents by id (absent ids are left out); adapters fetch them in bulk."""
        found = {}
        for doc_id in doc_ids:
            doc = await self.get(collection, doc_id)
            if doc is not None:
                found[doc_id] = doc
        return found

    @abstractmethod
    async def find(self, collection: str, query: Query | None = None) -> list[Document]: ...

    @abstractmethod
    async def count(self, collection: str, where: Filter | None = None) -> int: ...

    @abstractmethod
    async def outbox_pending(self, limit: int = 100) -> list[OutboxRecord]:
        """Unsent records, oldest first."""

    @abstractmethod
    async def outbox_mark_sent(self, event_id: str) -> None: ...

    @abstractmethod
    async def outbox_mark_failed(self, event_id: str, error: str) -> None: ...

    @abstractmethod
    async def inbox_contains(self, group: str, event_id: str) -> bool: ...


def matches(data: Mapping[str, Any], where: Filter) -> bool:
    """Reference semantics of a filter on one document (used by tests and small adapters)."""
    for name, condition in where.items():
        value: Any = data
        for part in name.split("."):
            value = value.get(part) if isinstance(value, Mapping) else None
        conds = condition if isinstance(condition, Mapping) else {"$eq": condition}
        for op, expected in conds.items():
            if op == "$eq" and value != expected:
                return False
            if op == "$in" and value not in expected:
                return False
            if op in {"$gt", "$gte", "$lt", "$lte"}:
                if value is None:
                    return False
                ok = {
                    "$gt": value > expected,
                    "$gte": value >= expected,
                    "$lt": value < expected,
                    "$lte": value <= expected,
                }[op]
                if not ok:
                    return False
    return True
