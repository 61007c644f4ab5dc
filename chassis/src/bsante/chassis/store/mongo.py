"""MongoDB adapter of the store port (distributed topology), on PyMongo's AsyncMongoClient.

Multi-document transactions need a replica set (a single-node one is enough).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

from bson.binary import Binary
from pymongo import ASCENDING, DESCENDING, AsyncMongoClient
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError, PyMongoError

from bsante.chassis.store import (
    ConcurrencyConflict,
    Document,
    DuplicateDocument,
    Filter,
    OutboxRecord,
    Query,
    Store,
    Transaction,
    check_filter,
)

OUTBOX = "_outbox"
INBOX = "_inbox"


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


class _MongoTransaction(Transaction):
    def __init__(self, db: AsyncDatabase[dict[str, Any]], session: AsyncClientSession) -> None:
        self._db = db
        self._s = session

    async def get(self, collection: str, doc_id: str) -> Document | None:
        raw = await self._db[collection].find_one({"_id": doc_id}, session=self._s)
        return _document(collection, raw) if raw else None

    async def insert(self, collection: str, doc_id: str, data: dict[str, Any]) -> Document:
        try:
            await self._db[collection].insert_one(
                {"_id": doc_id, "version": 1, "data": data}, session=self._s
            )
        except DuplicateKeyError as error:
            raise DuplicateDocument(collection, doc_id) from error
        return Document(collection, doc_id, 1, data)

    async def update(
        self, collection: str, doc_id: str, data: dict[str, Any], expected_version: int
    ) -> Document:
        result = await self._db[collection].update_one(
            {"_id": doc_id, "version": expected_version},
            {"$set": {"data": data}, "$inc": {"version": 1}},
            session=self._s,
        )
        if result.matched_count != 1:
            raise ConcurrencyConflict(collection, doc_id, expected_version)
        return Document(collection, doc_id, expected_version + 1, data)

    async def add_outbox(self, record: OutboxRecord) -> None:
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
            },
            session=self._s,
        )

    async def claim_inbox(self, group: str, event_id: str) -> bool:
        key = f"{group}\x1f{event_id}"
        # A duplicate-key error would abort the whole transaction: look first.
        if await self._db[INBOX].find_one({"_id": key}, session=self._s):
            return False
        await self._db[INBOX].insert_one(
            {"_id": key, "group": group, "event_id": event_id, "handled_at": datetime.now(UTC)},
            session=self._s,
        )
        return True


class MongoStore(Store):
    def __init__(self, uri: str, database: str) -> None:
        self._client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(
            uri, tz_aware=True, serverSelectionTimeoutMS=5000
        )
        self._db = self._client[database]

    async def start(self) -> None:
        await self._db[OUTBOX].create_index(
            [("sent_at", ASCENDING), ("created_at", ASCENDING), ("_id", ASCENDING)]
        )

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
            async with await session.start_transaction():
                yield _MongoTransaction(self._db, session)

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
        sort.append(("_id", ASCENDING))
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

    async def outbox_pending(self, limit: int = 100) -> list[OutboxRecord]:
        cursor = (
            self._db[OUTBOX]
            .find({"sent_at": None})
            .sort([("created_at", ASCENDING), ("_id", ASCENDING)])
            .limit(limit)
        )
        return [
            OutboxRecord(
                event_id=raw["_id"],
                topic=raw["topic"],
                key=raw["key"],
                value=bytes(raw["value"]),
                headers=dict(raw["headers"]),
                created_at=raw["created_at"],
                attempts=int(raw["attempts"]),
            )
            async for raw in cursor
        ]

    async def outbox_mark_sent(self, event_id: str) -> None:
        await self._db[OUTBOX].update_one(
            {"_id": event_id}, {"$set": {"sent_at": datetime.now(UTC)}}
        )

    async def outbox_mark_failed(self, event_id: str, error: str) -> None:
        await self._db[OUTBOX].update_one(
            {"_id": event_id}, {"$inc": {"attempts": 1}, "$set": {"last_error": error[:500]}}
        )

    async def inbox_contains(self, group: str, event_id: str) -> bool:
        return bool(await self._db[INBOX].find_one({"_id": f"{group}\x1f{event_id}"}))
