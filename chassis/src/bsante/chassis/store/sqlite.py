"""SQLite adapter of the store port (embedded topology): one file per service under `var/`."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiosqlite

from bsante.chassis.metrics import WRITE_TRANSACTIONS
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

    async def execute(self, sql: str, params: tuple[Any, ...]) -> None:
        await self._conn.execute(sql, params)

    async def get(self, collection: str, doc_id: str) -> Document | None:
        rows = list(
            await self._conn.execute_fetchall(
                "SELECT id, version, data FROM documents WHERE collection = ? AND id = ?",
                (collection, doc_id),
            )
        )
        row = rows[0] if rows else None
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


class _CommitGroup:
    """Units of work sharing one SQLite transaction (group commit)."""

    def __init__(self) -> None:
        self.members = 0
        self.poisoned = False
        self._done: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def succeed(self) -> None:
        if not self._done.done():
            self._done.set_result(None)

    def fail(self, error: BaseException) -> None:
        if not self._done.done():
            self._done.set_exception(error)
            self._done.exception()  # retrieved: members re-raise it themselves

    async def durable(self) -> None:
        """Returns once the group is committed; raises if its COMMIT failed."""
        await asyncio.shield(self._done)


class SqliteStore(Store):
    """One writer connection serialised by a lock; a separate reader sees only committed data."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._writer: aiosqlite.Connection | None = None
        self._reader: aiosqlite.Connection | None = None
        self._lock = asyncio.Lock()
        self._group: _CommitGroup | None = None
        self._queued = 0

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
            return len(list(await self._r.execute_fetchall("SELECT 1"))) == 1
        except Exception:
            return False

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Transaction]:
        """Group commit: units of work queued behind an open group join it, one COMMIT each.

        Each unit of work runs alone on the writer. The first (the leader) opens the group's
        transaction; those queued behind it while it ran join it, each inside its own SAVEPOINT
        (a failing one is rolled back to its savepoint, the others are kept); then the leader
        commits for all. Every block exits only after that COMMIT: nothing is acknowledged
        before it is durable, and N queued units of work cost one fsync instead of N.
        """
        if self._writer is None:
            raise RuntimeError("store not started")
        conn = self._writer
        self._queued += 1
        try:
            await self._lock.acquire()
        finally:
            self._queued -= 1
        group = self._group
        if group is None:
            # The leader: nobody joins while its block runs, since it holds the lock.
            try:
                await conn.execute("BEGIN IMMEDIATE")
            except BaseException:
                self._lock.release()
                raise
            group = self._group = _CommitGroup()
            try:
                yield _SqliteTransaction(conn)
            except BaseException:
                self._group = None
                try:
                    await conn.execute("ROLLBACK")
                finally:
                    self._lock.release()
                raise
            if self._queued == 0:
                try:
                    await self._commit_locked(group)  # nobody waits: commit at once
                finally:
                    self._lock.release()
                return
            self._lock.release()
            # Shielded: the group is committed even if the leader is cancelled meanwhile.
            await asyncio.shield(self._commit(group))
            return
        savepoint = f"uow{group.members}"
        group.members += 1
        try:
            await conn.execute(f"SAVEPOINT {savepoint}")
        except BaseException:
            group.poisoned = True
            self._lock.release()
            raise
        failed: BaseException | None = None
        try:
            yield _SqliteTransaction(conn)
        except BaseException as error:
            failed = error
        try:
            if failed is not None:
                await conn.execute(f"ROLLBACK TO {savepoint}")
            await conn.execute(f"RELEASE {savepoint}")
        except BaseException as error:
            # The group's transaction is in an unknown state: its COMMIT must not happen.
            group.poisoned = True
            failed = failed or error
        finally:
            self._lock.release()
        await group.durable()
        if failed is not None:
            raise failed

    async def _commit(self, group: _CommitGroup) -> None:
        """Wait for the writers queued behind the group (FIFO lock), then commit for all."""
        async with self._lock:
            await self._commit_locked(group)

    async def _commit_locked(self, group: _CommitGroup) -> None:
        assert self._writer is not None
        self._group = None
        try:
            if group.poisoned:
                raise RuntimeError("a unit of work of this commit group failed to close")
            await self._writer.execute("COMMIT")
            WRITE_TRANSACTIONS.labels(self.path.name).inc()
        except BaseException as error:
            with contextlib.suppress(Exception):
                await self._writer.execute("ROLLBACK")
            group.fail(error)
            raise
        group.succeed()

    async def get(self, collection: str, doc_id: str) -> Document | None:
        rows = list(
            await self._r.execute_fetchall(
                "SELECT id, version, data FROM documents WHERE collection = ? AND id = ?",
                (collection, doc_id),
            )
        )
        row = rows[0] if rows else None
        return _document(collection, row) if row else None

    async def get_many(self, collection: str, doc_ids: Sequence[str]) -> dict[str, Document]:
        found: dict[str, Document] = {}
        ids = list(dict.fromkeys(doc_ids))
        for start in range(0, len(ids), 500):  # stay under SQLite's bound-parameter limit
            chunk = ids[start : start + 500]
            rows = list(
                await self._r.execute_fetchall(
                    "SELECT id, version, data FROM documents WHERE collection = ? "
                    f"AND id IN ({', '.join('?' for _ in chunk)})",
                    [collection, *chunk],
                )
            )
            for row in rows:
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
        rows = list(
            await self._r.execute_fetchall(sql, [collection, *params, query.limit, query.offset])
        )
        return [_document(collection, row) for row in rows]

    async def count(self, collection: str, where: Filter | None = None) -> int:
        clause, params = _where_sql(where or {})
        rows = list(
            await self._r.execute_fetchall(
                f"SELECT COUNT(*) FROM documents WHERE collection = ? AND {clause}",
                [collection, *params],
            )
        )
        row = rows[0] if rows else None
        return int(row[0]) if row else 0

    async def outbox_pending(self, limit: int = 100) -> list[OutboxRecord]:
        rows = list(
            await self._r.execute_fetchall(
                "SELECT event_id, topic, key, value, headers, created_at, attempts, seq "
                "FROM outbox WHERE sent_at IS NULL ORDER BY seq LIMIT ?",
                (limit,),
            )
        )
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
        # Through a unit of work, so that it joins the open commit group.
        async with self.transaction() as tx:
            assert isinstance(tx, _SqliteTransaction)
            await tx.execute(sql, params)

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
