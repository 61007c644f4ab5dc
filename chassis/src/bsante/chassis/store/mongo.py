"""MongoDB adapter of the store port (distributed topology), on PyMongo's AsyncMongoClient.

Multi-document transactions need a replica set (a single-node one is enough). Errors are mapped
to the port's: a duplicate key is `DuplicateDocument` (and MongoDB has then aborted the
transaction), WriteConflict / TransientTransactionError is `TransientConflict`, a commit whose
outcome stays unknown after bounded retries is `CommitUnknown` (both are ConcurrencyConflicts).
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

from bson.binary import Binary
from pymongo import ASCENDING, DESCENDING, AsyncMongoClient, ReturnDocument
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError, OperationFailure, PyMongoError

from bsante.chassis.store import (
    CommitUnknown,
    ConcurrencyConflict,
    Document,
    DocumentNotFound,
    DuplicateDocument,
    Filter,
    Index,
    OutboxFailure,
    OutboxRecord,
    Query,
    Store,
    StoreError,
    Transaction,
    TransactionAborted,
    TransientConflict,
    check_filter,
)

OUTBOX = "_outbox"
INBOX = "_inbox"
LEASES = "_leases"
PURGE_BATCH = 1000
COMMIT_ATTEMPTS = 3
WRITE_CONFLICT = 112
_INDEX_NAME = re.compile(r"index: (\S+)")


def _mongo_filter(where: Filter) -> dict[str, Any]:
    check_filter(where)
    result: dict[str, Any] = {}
    for name, condition in where.items():
        result["data." + name] = (
            dict(condition) if isinstance(condition, Mapping) else {"$eq": condition}
        )
    return result


def _document(collection: str, raw: Mapping[str, Any]) -> Document:
    return Document(collection, str(raw["_id"]), int(raw["version"]), dict(raw["data"]))


def _record(raw: Mapping[str, Any]) -> OutboxRecord:
    return OutboxRecord(
        event_id=raw["_id"],
        topic=raw["topic"],
        key=raw["key"],
        value=bytes(raw["value"]),
        headers=dict(raw["headers"]),
        created_at=raw["created_at"],
        attempts=int(raw.get("attempts", 0)),
        last_error=raw.get("last_error"),
        parked_at=raw.get("parked_at"),
    )


def _duplicate(collection: str, doc_id: str, error: DuplicateKeyError) -> DuplicateDocument:
    found = _INDEX_NAME.search(str(error))
    index = found.group(1) if found and found.group(1) != "_id_" else None
    return DuplicateDocument(collection, doc_id, index=index)


def _transient(error: PyMongoError) -> bool:
    return error.has_error_label("TransientTransactionError") or (
        isinstance(error, OperationFailure) and error.code == WRITE_CONFLICT
    )


class _MongoTransaction(Transaction):
    """Every operation maps MongoDB's errors; after a duplicate or a transient error MongoDB
    has aborted the transaction, so every further operation raises at once."""

    def __init__(self, db: AsyncDatabase[dict[str, Any]], session: AsyncClientSession) -> None:
        self._db = db
        self._s = session
        self.aborted: StoreError | None = None

    def _check(self) -> None:
        if isinstance(self.aborted, DuplicateDocument):
            raise TransactionAborted(self.aborted)
        if isinstance(self.aborted, TransientConflict):
            raise TransientConflict(self.aborted.collection, self.aborted.doc_id, "aborted")

    def _mapped(self, collection: str, doc_id: str, error: PyMongoError) -> Exception:
        if isinstance(error, DuplicateKeyError):
            self.aborted = _duplicate(collection, doc_id, error)
            return self.aborted
        if _transient(error):
            self.aborted = TransientConflict(collection, doc_id, type(error).__name__)
            return self.aborted
        return error

    async def get(self, collection: str, doc_id: str) -> Document | None:
        self._check()
        try:
            raw = await self._db[collection].find_one({"_id": doc_id}, session=self._s)
        except PyMongoError as error:
            raise self._mapped(collection, doc_id, error) from error
        return _document(collection, raw) if raw else None

    async def insert(self, collection: str, doc_id: str, data: dict[str, Any]) -> Document:
        self._check()
        try:
            await self._db[collection].insert_one(
                {"_id": doc_id, "version": 1, "data": data}, session=self._s
            )
        except PyMongoError as error:
            raise self._mapped(collection, doc_id, error) from error
        return Document(collection, doc_id, 1, data)

    async def insert_if_absent(
        self, collection: str, doc_id: str, data: dict[str, Any]
    ) -> Document | None:
        self._check()
        try:
            # An upsert that changes nothing on an existing id: no duplicate-key abort.
            result = await self._db[collection].update_one(
                {"_id": doc_id},
                {"$setOnInsert": {"version": 1, "data": data}},
                upsert=True,
                session=self._s,
            )
        except PyMongoError as error:
            raise self._mapped(collection, doc_id, error) from error
        return Document(collection, doc_id, 1, data) if result.upserted_id is not None else None

    async def update(
        self, collection: str, doc_id: str, data: dict[str, Any], expected_version: int
    ) -> Document:
        self._check()
        try:
            result = await self._db[collection].update_one(
                {"_id": doc_id, "version": expected_version},
                {"$set": {"data": data}, "$inc": {"version": 1}},
                session=self._s,
            )
        except PyMongoError as error:
            raise self._mapped(collection, doc_id, error) from error
        if result.matched_count != 1:
            raise ConcurrencyConflict(collection, doc_id, expected_version)
        return Document(collection, doc_id, expected_version + 1, data)

    async def delete(
        self, collection: str, doc_id: str, expected_version: int | None = None
    ) -> None:
        self._check()
        condition: dict[str, Any] = {"_id": doc_id}
        if expected_version is not None:
            condition["version"] = expected_version
        try:
            result = await self._db[collection].delete_one(condition, session=self._s)
        except PyMongoError as error:
            raise self._mapped(collection, doc_id, error) from error
        if result.deleted_count != 1:
            if expected_version is None:
                raise DocumentNotFound(collection, doc_id)
            raise ConcurrencyConflict(collection, doc_id, expected_version)

    async def add_outbox(self, record: OutboxRecord) -> None:
        self._check()
        try:
            await self._db[OUTBOX].insert_one(
                {
                    "_id": record.event_id,
                    "topic": record.topic,
                    "key": record.key,
                    "value": Binary(record.value),
                    "headers": record.headers,
                    "created_at": record.created_at,
                    "sent_at": None,
                    "attempts": 0,
                    "retry_at": None,
                    "parked_at": None,
                },
                session=self._s,
            )
        except PyMongoError as error:
            raise self._mapped(OUTBOX, record.event_id, error) from error

    async def claim_inbox(self, group: str, event_id: str) -> bool:
        self._check()
        key = f"{group}\x1f{event_id}"
        # An upsert, not find-then-insert: a duplicate-key error would abort the transaction,
        # and two concurrent claims meet in a WriteConflict that a re-run resolves.
        try:
            result = await self._db[INBOX].update_one(
                {"_id": key},
                {
                    "$setOnInsert": {
                        "group": group,
                        "event_id": event_id,
                        "handled_at": datetime.now(UTC),
                    }
                },
                upsert=True,
                session=self._s,
            )
        except PyMongoError as error:
            raise self._mapped(INBOX, key, error) from error
        return result.upserted_id is not None


class MongoStore(Store):
    def __init__(self, uri: str, database: str) -> None:
        self._client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(
            uri, tz_aware=True, serverSelectionTimeoutMS=5000
        )
        self._db = self._client[database]

    async def start(self) -> None:
        outbox = self._db[OUTBOX]
        await outbox.create_index(
            [("sent_at", ASCENDING), ("created_at", ASCENDING), ("_id", ASCENDING)]
        )
        # The keys held back by a parked row or a row waiting for its retry.
        await outbox.create_index(
            [("sent_at", ASCENDING), ("attempts", ASCENDING), ("key", ASCENDING)],
            name="outbox_held",
        )
        await outbox.create_index(
            [("parked_at", ASCENDING), ("created_at", ASCENDING)], name="outbox_parked"
        )
        await self._db[INBOX].create_index([("handled_at", ASCENDING)], name="inbox_handled")

    async def close(self) -> None:
        await self._client.close()

    async def ping(self) -> bool:
        try:
            await self._client.admin.command("ping")
            return True
        except PyMongoError:
            return False

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Transaction]:
        async with self._client.start_session() as session:
            await session.start_transaction()
            tx = _MongoTransaction(self._db, session)
            try:
                yield tx
                if tx.aborted is not None:
                    tx._check()  # the caller caught the error and went on: never commit
            except BaseException:
                if session.in_transaction:
                    await session.abort_transaction()
                raise
            await self._commit(session)

    async def _commit(self, session: AsyncClientSession) -> None:
        # The driver's own rule (with_transaction): retry a commit whose outcome is unknown;
        # a transient commit error means the whole transaction may be run again.
        for attempt in range(1, COMMIT_ATTEMPTS + 1):
            try:
                await session.commit_transaction()
                return
            except PyMongoError as error:
                if error.has_error_label("UnknownTransactionCommitResult"):
                    if attempt == COMMIT_ATTEMPTS:
                        raise CommitUnknown(type(error).__name__) from error
                    continue
                if _transient(error):
                    raise TransientConflict("*", "*", type(error).__name__) from error
                raise

    async def get(self, collection: str, doc_id: str) -> Document | None:
        raw = await self._db[collection].find_one({"_id": doc_id})
        return _document(collection, raw) if raw else None

    async def get_many(self, collection: str, doc_ids: Sequence[str]) -> dict[str, Document]:
        cursor = self._db[collection].find({"_id": {"$in": list(dict.fromkeys(doc_ids))}})
        return {str(raw["_id"]): _document(collection, raw) async for raw in cursor}

    async def find(self, collection: str, query: Query | None = None) -> list[Document]:
        query = query or Query()
        check_filter({name: None for name, _ in query.order_by})
        sort = [
            ("data." + name, DESCENDING if desc else ASCENDING) for name, desc in query.order_by
        ]
        # Ties are broken by id, in the direction of the last sort field: a declared index
        # (which ends with the id) then gives the whole order, read forwards or backwards.
        last_desc = bool(query.order_by) and query.order_by[-1][1]
        sort.append(("_id", DESCENDING if last_desc else ASCENDING))
        cursor = (
            self._db[collection]
            .find(_mongo_filter(query.where))
            .sort(sort)
            .skip(query.offset)
            .limit(query.limit)
        )
        return [_document(collection, raw) async for raw in cursor]

    async def count(self, collection: str, where: Filter | None = None) -> int:
        return await self._db[collection].count_documents(_mongo_filter(where or {}))

    async def purge(self, collection: str, where: Filter) -> int:
        return await self._delete_batches(collection, _mongo_filter(where))

    async def _delete_batches(self, collection: str, condition: dict[str, Any]) -> int:
        deleted = 0
        while True:
            ids = [
                raw["_id"]
                async for raw in self._db[collection].find(condition, {"_id": 1}).limit(PURGE_BATCH)
            ]
            if not ids:
                return deleted
            # Re-check the condition: a document changed since it was listed stays.
            result = await self._db[collection].delete_many({**condition, "_id": {"$in": ids}})
            deleted += result.deleted_count
            if len(ids) < PURGE_BATCH:
                return deleted

    # -- indexes --------------------------------------------------------------------------------

    async def ensure_index(
        self, collection: str, fields: Sequence[str], *, unique: bool = False
    ) -> Index:
        index = self._declare(collection, fields, unique)
        options: dict[str, Any] = {"name": index.name, "unique": unique}
        if unique:
            # As in SQLite, where NULLs are distinct: documents lacking a field do not collide.
            options["partialFilterExpression"] = {
                "data." + name: {"$exists": True} for name in index.fields
            }
        keys = [("data." + name, ASCENDING) for name in index.fields]
        if not unique:
            # As in SQLite: queries sort ties by id, so the index gives the whole order.
            keys.append(("_id", ASCENDING))
        try:
            await self._db[collection].create_index(keys, **options)
        except DuplicateKeyError as error:
            self._declared().pop(index.name, None)
            raise StoreError(f"{index.name}: stored documents already repeat a value") from error
        return index

    # -- outbox ---------------------------------------------------------------------------------

    async def outbox_pending(self, limit: int = 100) -> list[OutboxRecord]:
        now = datetime.now(UTC)
        held = await self._db[OUTBOX].distinct(
            "key",
            {
                "sent_at": None,
                "attempts": {"$gt": 0},
                "$or": [{"parked_at": {"$ne": None}}, {"retry_at": {"$gt": now}}],
            },
        )
        cursor = (
            self._db[OUTBOX]
            .find(
                {
                    "sent_at": None,
                    "parked_at": None,
                    "key": {"$nin": held},
                    "$or": [{"retry_at": None}, {"retry_at": {"$lte": now}}],
                }
            )
            .sort([("created_at", ASCENDING), ("_id", ASCENDING)])
            .limit(limit)
        )
        return [_record(raw) async for raw in cursor]

    async def outbox_mark_sent_many(self, event_ids: Sequence[str]) -> None:
        if event_ids:
            await self._db[OUTBOX].update_many(
                {"_id": {"$in": list(event_ids)}},
                {"$set": {"sent_at": datetime.now(UTC), "retry_at": None}},
            )

    async def outbox_record_failures(self, failures: Sequence[OutboxFailure]) -> None:
        now = datetime.now(UTC)
        for failure in failures:
            await self._db[OUTBOX].update_one(
                {"_id": failure.event_id, "sent_at": None},
                {
                    "$inc": {"attempts": 1},
                    "$set": {
                        "last_error": failure.error[:500],
                        "retry_at": failure.retry_at,
                        "parked_at": now if failure.park else None,
                    },
                },
            )

    async def outbox_parked(self, limit: int = 100, offset: int = 0) -> list[OutboxRecord]:
        cursor = (
            self._db[OUTBOX]
            .find({"parked_at": {"$ne": None}})
            .sort([("created_at", ASCENDING), ("_id", ASCENDING)])
            .skip(offset)
            .limit(limit)
        )
        return [_record(raw) async for raw in cursor]

    async def outbox_replay(self, event_id: str) -> bool:
        result = await self._db[OUTBOX].update_one(
            {"_id": event_id, "parked_at": {"$ne": None}},
            {"$set": {"parked_at": None, "retry_at": None, "attempts": 0}},
        )
        return result.modified_count == 1

    async def outbox_purge_sent(self, older_than: datetime) -> int:
        return await self._delete_batches(OUTBOX, {"sent_at": {"$ne": None, "$lt": older_than}})

    # -- inbox ----------------------------------------------------------------------------------

    async def inbox_contains(self, group: str, event_id: str) -> bool:
        return bool(await self._db[INBOX].find_one({"_id": f"{group}\x1f{event_id}"}))

    async def inbox_purge(self, older_than: datetime) -> int:
        return await self._delete_batches(INBOX, {"handled_at": {"$lt": older_than}})

    # -- leases ---------------------------------------------------------------------------------

    async def acquire_lease(self, name: str, holder: str, ttl: float) -> bool:
        now = datetime.now(UTC)
        try:
            # One atomic conditional update; when another holder's lease is alive the filter
            # matches nothing and the upsert collides with the existing _id.
            await self._db[LEASES].find_one_and_update(
                {"_id": name, "$or": [{"holder": holder}, {"expires_at": {"$lte": now}}]},
                {"$set": {"holder": holder, "expires_at": now + timedelta(seconds=ttl)}},
                upsert=True,
                return_document=ReturnDocument.AFTER,
            )
        except DuplicateKeyError:
            return False
        return True

    async def release_lease(self, name: str, holder: str) -> None:
        await self._db[LEASES].delete_one({"_id": name, "holder": holder})

    async def lease_holder(self, name: str) -> str | None:
        raw = await self._db[LEASES].find_one(
            {"_id": name, "expires_at": {"$gt": datetime.now(UTC)}}
        )
        return str(raw["holder"]) if raw else None
