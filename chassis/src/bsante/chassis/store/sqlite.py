"""SQLite adapter of the store port (embedded topology): one file per service under `var/`."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiosqlite

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

SCHEMA = """
CREATE TABLE IF NOT EXISTS documents (
    collection TEXT NOT NULL,
    id TEXT NOT NULL,
    version INTEGER NOT NULL,
    data TEXT NOT NULL,
    PRIMARY KEY (collection, id)
);
CREATE TABLE IF NOT EXISTS outbox (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id TEXT NOT NULL UNIQUE,
    topic TEXT NOT NULL,
    key TEXT NOT NULL,
    value BLOB NOT NULL,
    headers TEXT NOT NULL,
    created_at TEXT NOT NULL,
    sent_at TEXT,
    attempts INTEGER NOT NULL DEFAULT 0,
    last_error TEXT
);
CREATE INDEX IF NOT EXISTS outbox_pending ON outbox (seq) WHERE sent_at IS NULL;
CREATE TABLE IF NOT EXISTS inbox (
    consumer_group TEXT NOT NULL,
    event_id TEXT NOT NULL,
    handled_at TEXT NOT NULL,
    PRIMARY KEY (consumer_group, event_id)
);
"""

_SQL_OPS = {"$eq": "=", "$gt": ">", "$gte": ">=", "$lt": "<", "$lte": "<="}


def _path(name: str) -> str:
    return "$." + name


def _where_sql(where: Filter) -> tuple[str, list[Any]]:
    check_filter(where)
    clauses: list[str] = []
    params: list[Any] = []
    for name, condition in where.items():
        conds = condition if isinstance(condition, Mapping) else {"$eq": condition}
        for op, value in conds.items():
            expr = "json_extract(data, ?)"
            if op == "$in":
                values = list(value)
                if not values:
                    clauses.append("0")
                    continue
                clauses.append(f"{expr} IN ({', '.join('?' for _ in values)})")
                params.extend([_path(name), *(_sql_value(v) for v in values)])
            elif value is None and op == "$eq":
                clauses.append(f"{expr} IS NULL")
                params.append(_path(name))
            else:
                clauses.append(f"{expr} {_SQL_OPS[op]} ?")
                params.extend([_path(name), _sql_value(value)])
    return (" AND ".join(clauses) or "1"), params


def _sql_value(value: Any) -> Any:
    # json_extract yields 1/0 for JSON booleans.
    if isinstance(value, bool):
        return int(value)
    return value


def _document(collection: str, row: aiosqlite.Row | tuple[Any, ...]) -> Document:
    doc_id, version, data = row[0], row[1], row[2]
    return Document(collection, str(doc_id), int(version), json.loads(data))


def _now() -> str:
    return datetime.now(UTC).isoformat()


class _SqliteTransaction(Transaction):
    def __init__(self, conn: aiosqlite.Connection) -> None:
        self._conn = conn

    async def get(self, collection: str, doc_id: str) -> Document | None:
        async with self._conn.execute(
            "SELECT id, version, data FROM documents WHERE collection = ? AND id = ?",
            (collection, doc_id),
        ) as cursor:
            row = await cursor.fetchone()
        return _document(collection, row) if row else None

    async def insert(self, collection: str, doc_id: str, data: dict[str, Any]) -> Document:
        try:
            await self._conn.execute(
                "INSERT INTO documents (collection, id, version, data) VALUES (?, ?, 1, ?)",
                (collection, doc_id, json.dumps(data)),
            )
        except aiosqlite.IntegrityError as error:
            raise DuplicateDocument(collection, doc_id) from error
        return Document(collection, doc_id, 1, data)

    async def update(
        self, collection: str, doc_id: str, data: dict[str, Any], expected_version: int
    ) -> Document:
        cursor = await self._conn.execute(
            "UPDATE documents SET version = version + 1, data = ? "
            "WHERE collection = ? AND id = ? AND version = ?",
            (json.dumps(data), collection, doc_id, expected_version),
        )
        if cursor.rowcount != 1:
            raise ConcurrencyConflict(collection, doc_id, expected_version)
        return Document(collection, doc_id, expected_version + 1, data)

    async def add_outbox(self, record: OutboxRecord) -> None:
        await self._conn.execute(
            "INSERT INTO outbox (event_id, topic, key, value, headers, created_at) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            (
                record.event_id,
                record.topic,
                record.key,
                record.value,
                json.dumps(record.headers),
                record.created_at.isoformat(),
            ),
        )

    async def claim_inbox(self, group: str, event_id: str) -> bool:
        cursor = await self._conn.execute(
            "INSERT OR IGNORE INTO inbox (consumer_group, event_id, handled_at) VALUES (?, ?, ?)",
            (group, event_id, _now()),
        )
        return cursor.rowcount == 1


class SqliteStore(Store):
    """One writer connection serialised by a lock; a separate reader sees only committed data."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._writer: aiosqlite.Connection | None = None
        self._reader: aiosqlite.Connection | None = None
        self._lock = asyncio.Lock()

    async def _connect(self) -> aiosqlite.Connection:
        conn = await aiosqlite.connect(self.path, isolation_level=None)
        await conn.execute("PRAGMA journal_mode=WAL")
        await conn.execute("PRAGMA synchronous=FULL")
        await conn.execute("PRAGMA busy_timeout=10000")
        return conn

    async def start(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._writer = await self._connect()
        await self._writer.executescript(SCHEMA)
        self._reader = await self._connect()

    async def close(self) -> None:
        for conn in (self._reader, self._writer):
            if conn is not None:
                await conn.close()
        self._reader = self._writer = None

    @property
    def _r(self) -> aiosqlite.Connection:
        if self._reader is None:
            raise RuntimeError("store not started")
        return self._reader

    async def ping(self) -> bool:
        try:
            async with self._r.execute("SELECT 1") as cursor:
                return (await cursor.fetchone()) is not None
        except Exception:
            return False

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Transaction]:
        if self._writer is None:
            raise RuntimeError("store not started")
        async with self._lock:
            conn = self._writer
            await conn.execute("BEGIN IMMEDIATE")
            tx = _SqliteTransaction(conn)
            try:
                yield tx
            except BaseException:
                await conn.execute("ROLLBACK")
                raise
            await conn.execute("COMMIT")

    async def get(self, collection: str, doc_id: str) -> Document | None:
        async with self._r.execute(
            "SELECT id, version, data FROM documents WHERE collection = ? AND id = ?",
            (collection, doc_id),
        ) as cursor:
            row = await cursor.fetchone()
        return _document(collection, row) if row else None

    async def get_many(self, collection: str, doc_ids: Sequence[str]) -> dict[str, Document]:
        found: dict[str, Document] = {}
        ids = list(dict.fromkeys(doc_ids))
        for start in range(0, len(ids), 500):  # stay under SQLite's bound-parameter limit
            chunk = ids[start : start + 500]
            async with self._r.execute(
                "SELECT id, version, data FROM documents WHERE collection = ? "
                f"AND id IN ({', '.join('?' for _ in chunk)})",
                [collection, *chunk],
            ) as cursor:
                for row in await cursor.fetchall():
                    doc = _document(collection, row)
                    found[doc.id] = doc
        return found

    async def find(self, collection: str, query: Query | None = None) -> list[Document]:
        query = query or Query()
        where, params = _where_sql(query.where)
        check_filter({name: None for name, _ in query.order_by})
        order = ", ".join(
            f"json_extract(data, '{_path(name)}') {'DESC' if desc else 'ASC'}"
            for name, desc in query.order_by
        )
        sql = (
            f"SELECT id, version, data FROM documents WHERE collection = ? AND {where} "
            f"ORDER BY {order + ', ' if order else ''}id LIMIT ? OFFSET ?"
        )
        async with self._r.execute(sql, [collection, *params, query.limit, query.offset]) as cur:
            rows = await cur.fetchall()
        return [_document(collection, row) for row in rows]

    async def count(self, collection: str, where: Filter | None = None) -> int:
        clause, params = _where_sql(where or {})
        async with self._r.execute(
            f"SELECT COUNT(*) FROM documents WHERE collection = ? AND {clause}",
            [collection, *params],
        ) as cursor:
            row = await cursor.fetchone()
        return int(row[0]) if row else 0

    async def outbox_pending(self, limit: int = 100) -> list[OutboxRecord]:
        async with self._r.execute(
            "SELECT event_id, topic, key, value, headers, created_at, attempts, seq FROM outbox "
            "WHERE sent_at IS NULL ORDER BY seq LIMIT ?",
            (limit,),
        ) as cursor:
            rows = await cursor.fetchall()
        return [
            OutboxRecord(
                event_id=r[0],
                topic=r[1],
                key=r[2],
                value=bytes(r[3]),
                headers=json.loads(r[4]),
                created_at=datetime.fromisoformat(r[5]),
                attempts=int(r[6]),
                seq=int(r[7]),
            )
            for r in rows
        ]

    async def _write(self, sql: str, params: tuple[Any, ...]) -> None:
        if self._writer is None:
            raise RuntimeError("store not started")
        async with self._lock:
            await self._writer.execute(sql, params)

    async def outbox_mark_sent(self, event_id: str) -> None:
        await self._write("UPDATE outbox SET sent_at = ? WHERE event_id = ?", (_now(), event_id))

    async def outbox_mark_failed(self, event_id: str, error: str) -> None:
        await self._write(
            "UPDATE outbox SET attempts = attempts + 1, last_error = ? WHERE event_id = ?",
            (error[:500], event_id),
        )

    async def inbox_contains(self, group: str, event_id: str) -> bool:
        async with self._r.execute(
            "SELECT 1 FROM inbox WHERE consumer_group = ? AND event_id = ?", (group, event_id)
        ) as cursor:
            return (await cursor.fetchone()) is not None
