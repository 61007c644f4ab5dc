"""Document store port: versioned JSON documents, transactions, outbox, inbox, leases, indexes.

Adapters: `sqlite` (embedded default) and `mongodb` (PyMongo's AsyncMongoClient). A service's
state change, the events it raises (outbox) and the events it consumed (inbox) commit in one
transaction of its own store.

Both adapters behave alike under concurrency: a stale version or a transaction that lost a race
raises `ConcurrencyConflict` (a retryable `TransientConflict` when the database itself gave up the
transaction: MongoDB's WriteConflict / TransientTransactionError, SQLite's busy writer), a
duplicate id or unique-index value raises `DuplicateDocument`, and after a duplicate or a
transient error the transaction is aborted: every further operation on it raises, and it never
commits. `Store.run_in_transaction` re-runs a whole block on `TransientConflict`, a bounded number
of times.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar

JSON = dict[str, Any]
T = TypeVar("T")
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


class TransientConflict(ConcurrencyConflict):
    """The database gave the transaction up (lost a race, or could not get the writer in time).

    Nothing of the transaction was committed; running the whole block again may succeed
    (`Store.run_in_transaction` does, a bounded number of times).
    """

    def __init__(self, collection: str, doc_id: str, reason: str) -> None:
        StoreError.__init__(self, f"transaction on {collection}/{doc_id} gave up: {reason}")
        self.collection, self.doc_id, self.expected = collection, doc_id, -1
        self.reason = reason


class CommitUnknown(ConcurrencyConflict):
    """The commit's outcome stayed unknown after bounded retries (MongoDB only); not re-run."""

    def __init__(self, reason: str) -> None:
        StoreError.__init__(self, f"commit outcome unknown: {reason}")
        self.collection, self.doc_id, self.expected = "", "", -1


class DuplicateDocument(StoreError):
    """A document with this id, or with this value of a unique index, already exists."""

    def __init__(self, collection: str, doc_id: str, index: str | None = None) -> None:
        what = f" (unique index {index})" if index else ""
        super().__init__(f"{collection}/{doc_id} already exists{what}")
        self.collection, self.doc_id, self.index = collection, doc_id, index


class TransactionAborted(DuplicateDocument):
    """An operation on, or the commit of, a transaction that a duplicate already aborted.

    MongoDB aborts a transaction on a duplicate key; SQLite behaves the same way here, so code
    that catches `DuplicateDocument` and carries on fails on both adapters alike.
    """

    def __init__(self, cause: DuplicateDocument) -> None:
        StoreError.__init__(self, f"transaction aborted by an earlier duplicate: {cause}")
        self.collection, self.doc_id, self.index = cause.collection, cause.doc_id, cause.index


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
    """One event waiting to be published, with the trace context of the write that raised it.

    State: pending (neither sent nor parked), sent, or failed (`parked_at` set: it failed the
    relay's last allowed attempt; `last_error` says why; later rows of its key wait for it).
    """

    event_id: str
    topic: str
    key: str
    value: bytes
    headers: dict[str, str]
    created_at: datetime
    attempts: int = 0
    seq: int = 0
    last_error: str | None = None
    parked_at: datetime | None = None

    @property
    def state(self) -> str:
        return "failed" if self.parked_at is not None else "pending"


@dataclass(frozen=True)
class OutboxFailure:
    """A failed publication of one row: retry it after `retry_at`, or park it."""

    event_id: str
    error: str
    retry_at: datetime | None = None
    park: bool = False


@dataclass(frozen=True)
class Index:
    """A declared index of a collection, on fields of its documents' data."""

    collection: str
    fields: tuple[str, ...]
    unique: bool = False

    @property
    def name(self) -> str:
        kind = "uniq" if self.unique else "idx"
        return f"{kind}__{self.collection}__{'__'.join(f.replace('.', '_') for f in self.fields)}"


@dataclass(frozen=True)
class Query:
    where: Filter = field(default_factory=dict)
    order_by: Sequence[tuple[str, bool]] = ()  # (field, descending)
    limit: int = 100
    offset: int = 0


_COLLECTION = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,99}")


def check_collection(collection: str) -> str:
    """Collection names are code constants; checked so adapters may write them into SQL."""
    if not _COLLECTION.fullmatch(collection):
        raise ValueError(f"invalid collection name {collection!r}")
    return collection


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
    async def insert_if_absent(self, collection: str, doc_id: str, data: JSON) -> Document | None:
        """Create at version 1, or None when the id exists (then nothing changes and, unlike a
        caught DuplicateDocument, the transaction goes on). One conditional write: the way to
        claim a key. A unique-index collision is still a DuplicateDocument."""

    async def keep(self, collection: str, doc_id: str, data: JSON) -> None:
        """`insert_if_absent` without its answer, for records written once and never changed
        (an audit entry keyed by its event id): an existing id changes nothing.

        Since nothing waits for the answer, an adapter may hold the write until the commit
        (reads later in the same transaction still see it). On SQLite a transaction of such
        writes, inbox marks and outbox rows only then joins a group commit and never takes the
        writer on its own. A unique-index collision is a DuplicateDocument, at the latest when
        the transaction commits."""
        await self.insert_if_absent(collection, doc_id, data)

    @abstractmethod
    async def update(
        self, collection: str, doc_id: str, data: JSON, expected_version: int
    ) -> Document:
        """Replace the data if stored at `expected_version`, else ConcurrencyConflict."""

    @abstractmethod
    async def delete(
        self, collection: str, doc_id: str, expected_version: int | None = None
    ) -> None:
        """Remove a document: DocumentNotFound if absent, ConcurrencyConflict if at another
        version than `expected_version` (when given)."""

    @abstractmethod
    async def add_outbox(self, record: OutboxRecord) -> None: ...

    @abstractmethod
    async def claim_inbox(self, group: str, event_id: str) -> bool:
        """Record that `group` handled `event_id`; False if it already had (skip the effects).

        One conditional write (never a read then a write): of two concurrent claims one wins,
        the other sees False or, on MongoDB, a TransientConflict that a re-run turns into False.
        """

    async def mark_inbox(self, group: str, event_id: str) -> None:
        """`claim_inbox` without its answer, for a handler whose effects are idempotent on
        their own (`keep` keyed by the event id): records the event as handled, and like
        `keep` may be held until the commit."""
        await self.claim_inbox(group, event_id)


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

    async def run_in_transaction(
        self, block: Callable[[Transaction], Awaitable[T]], *, attempts: int = 3
    ) -> T:
        """Run `block` in a transaction, again (at most `attempts` times in all) while the
        database gives the transaction up (`TransientConflict`); then that error propagates.

        A stale `expected_version` (plain ConcurrencyConflict) is not re-run: the caller read
        an old version and must decide. `block` must do nothing outside the store.
        """
        for attempt in range(1, attempts + 1):
            try:
                async with self.transaction() as tx:
                    return await block(tx)
            except TransientConflict:
                if attempt == attempts:
                    raise
        raise AssertionError("unreachable")

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
    async def purge(self, collection: str, where: Filter) -> int:
        """Delete the committed documents matching `where` (retention of service data); the
        number deleted. Done in bounded batches, each its own transaction."""

    # -- indexes --------------------------------------------------------------------------------

    @abstractmethod
    async def ensure_index(
        self, collection: str, fields: Sequence[str], *, unique: bool = False
    ) -> Index:
        """Create the index if absent (idempotent) and declare it. A unique index makes a
        second document with the same values (all fields present) a DuplicateDocument."""

    async def ensure_indexes(self, indexes: Sequence[Index]) -> None:
        """`ensure_index` for each of a service's declared indexes (call it at start)."""
        for index in indexes:
            await self.ensure_index(index.collection, index.fields, unique=index.unique)

    def declared_indexes(self) -> list[Index]:
        """The indexes declared through `ensure_index` on this store object."""
        return list(self._declared().values())

    def _declared(self) -> dict[str, Index]:
        declared: dict[str, Index] | None = self.__dict__.get("_declared_indexes")
        if declared is None:
            declared = {}
            self.__dict__["_declared_indexes"] = declared
        return declared

    def _declare(self, collection: str, fields: Sequence[str], unique: bool) -> Index:
        check_collection(collection)
        if not fields:
            raise ValueError("an index needs at least one field")
        check_filter(dict.fromkeys(fields))
        index = Index(collection, tuple(fields), unique)
        self._declared()[index.name] = index
        return index

    # -- outbox ---------------------------------------------------------------------------------

    @abstractmethod
    async def outbox_pending(self, limit: int = 100) -> list[OutboxRecord]:
        """Records the relay may publish now, in publication order (oldest first).

        Left out: sent and parked rows, rows waiting for their `retry_at`, and every row whose
        key has a parked row or a row waiting for its retry (so a key's order holds).
        """

    async def outbox_mark_sent(self, event_id: str) -> None:
        await self.outbox_mark_sent_many([event_id])

    @abstractmethod
    async def outbox_mark_sent_many(self, event_ids: Sequence[str]) -> None:
        """Mark rows sent, in one transaction."""

    async def outbox_mark_failed(
        self, event_id: str, error: str, *, retry_at: datetime | None = None, park: bool = False
    ) -> None:
        """Count a failed attempt, keep the error; `park` moves the row to Failed."""
        await self.outbox_record_failures([OutboxFailure(event_id, error, retry_at, park)])

    @abstractmethod
    async def outbox_record_failures(self, failures: Sequence[OutboxFailure]) -> None:
        """Count failed attempts (error kept, at most 500 characters), in one transaction."""

    @abstractmethod
    async def outbox_parked(self, limit: int = 100, offset: int = 0) -> list[OutboxRecord]:
        """Failed (parked) rows, oldest first."""

    @abstractmethod
    async def outbox_replay(self, event_id: str) -> bool:
        """Put a parked row back to pending with its attempts reset (its last error is kept);
        False when no parked row has this id."""

    @abstractmethod
    async def outbox_purge_sent(self, older_than: datetime) -> int:
        """Delete rows sent before `older_than`; the number deleted."""

    # -- inbox ----------------------------------------------------------------------------------

    @abstractmethod
    async def inbox_contains(self, group: str, event_id: str) -> bool: ...

    @abstractmethod
    async def inbox_purge(self, older_than: datetime) -> int:
        """Delete inbox claims recorded before `older_than`; the number deleted.

        After that a redelivery of such an event would be handled again: the retention must
        exceed how late the bus can redeliver (Kafka's topic retention, a DLQ replay)."""

    # -- leases ---------------------------------------------------------------------------------

    @abstractmethod
    async def acquire_lease(self, name: str, holder: str, ttl: float) -> bool:
        """Take or renew the lease `name` for `ttl` seconds; False while another holder's
        lease has not expired. One conditional write: two holders never hold it together."""

    @abstractmethod
    async def release_lease(self, name: str, holder: str) -> None:
        """Give the lease up (only if `holder` holds it)."""

    @abstractmethod
    async def lease_holder(self, name: str) -> str | None:
        """Who holds the lease now (None when free or expired)."""


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
