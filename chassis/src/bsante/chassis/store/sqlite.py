"""SQLite adapter of the store port (embedded topology): one file per service under `var/`."""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import sqlite3
import time
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import aiosqlite

from bsante.chassis.metrics import SQLITE_READS, WRITE_TRANSACTIONS
from bsante.chassis.store import (
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
    check_collection,
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
    last_error TEXT,
    retry_at TEXT,
    parked_at TEXT
);
CREATE INDEX IF NOT EXISTS outbox_pending ON outbox (seq) WHERE sent_at IS NULL;
CREATE TABLE IF NOT EXISTS inbox (
    consumer_group TEXT NOT NULL,
    event_id TEXT NOT NULL,
    handled_at TEXT NOT NULL,
    PRIMARY KEY (consumer_group, event_id)
);
CREATE TABLE IF NOT EXISTS leases (
    name TEXT PRIMARY KEY,
    holder TEXT NOT NULL,
    expires_at REAL NOT NULL
);
"""

# Created after the columns they use were added to files made by an older version.
INDEXES = """
CREATE INDEX IF NOT EXISTS outbox_held ON outbox (key) WHERE sent_at IS NULL AND attempts > 0;
CREATE INDEX IF NOT EXISTS outbox_sent ON outbox (sent_at) WHERE sent_at IS NOT NULL;
CREATE INDEX IF NOT EXISTS outbox_parked ON outbox (seq) WHERE parked_at IS NOT NULL;
CREATE INDEX IF NOT EXISTS inbox_handled ON inbox (handled_at);
"""

OUTBOX_COLUMNS = {"retry_at": "TEXT", "parked_at": "TEXT"}
PURGE_BATCH = 1000
_SQL_OPS = {"$eq": "=", "$gt": ">", "$gte": ">=", "$lt": "<", "$lte": "<="}
_RECORD = "event_id, topic, key, value, headers, created_at, attempts, seq, last_error, parked_at"
_UNIQUE_INDEX = re.compile(r"UNIQUE constraint failed: index '([^']+)'")


# SQLite virtual-machine steps a read may take on the event loop's thread before it is
# interrupted and run again on the reader's thread: about 0.15 ms of a scan over JSON
# documents; a point read by key takes under a hundred, a page of an indexed query a few
# hundred.
LOOP_READ_STEPS = 4_000
_STEPS_PER_CHECK = 100


class LoopReader:
    """Reads answered on the event loop's thread, when SQLite answers them at once.

    A read through aiosqlite costs two thread switches and a wake-up of the loop, several times
    the read itself when its pages are cached. This connection (read-only, no busy wait) runs a
    read on the loop within `LOOP_READ_STEPS` steps; a read that would take longer, or meet a
    lock, is interrupted and `fetchall` returns None: the caller then asks its thread reader.
    In WAL mode a reader never waits for the writer, so the loop never waits for a lock.
    """

    def __init__(self, path: str | Path, db: str) -> None:
        self._conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._conn.execute("PRAGMA busy_timeout=0")
        self._conn.execute("PRAGMA query_only=1")
        self._checks = 0
        self._conn.set_progress_handler(self._over_budget, _STEPS_PER_CHECK)
        self._on_loop = SQLITE_READS.labels(db, "loop")
        self._on_thread = SQLITE_READS.labels(db, "thread")

    def _over_budget(self) -> int:
        self._checks += 1
        return 1 if self._checks * _STEPS_PER_CHECK > LOOP_READ_STEPS else 0

    def fetchall(self, sql: str, params: Sequence[Any] = ()) -> list[Any] | None:
        self._checks = 0
        try:
            rows = self._conn.execute(sql, params).fetchall()
        except sqlite3.OperationalError:  # interrupted (over budget), busy or locked
            self._on_thread.inc()
            return None
        self._on_loop.inc()
        return rows

    def close(self) -> None:
        self._conn.close()


T = TypeVar("T")


def _writer_taken(error: sqlite3.OperationalError) -> TransientConflict | None:
    """For a failed `BEGIN IMMEDIATE`: TransientConflict when another process kept the writer
    longer than busy_timeout (the caller may run its transaction again), else None."""
    if "locked" not in str(error) and "busy" not in str(error):
        return None
    return TransientConflict("*", "*", str(error))


# Bound variables per multi-row INSERT: the limit of every SQLite build (999 before 3.32).
_VARIABLES_PER_INSERT = 999


def insert_rows(
    conn: sqlite3.Connection, insert: str, rows: Sequence[Sequence[Any]], then: str = ""
) -> None:
    """`insert` ("INSERT INTO t (a, b)") of every row, in multi-row statements ending with
    `then` (an ON CONFLICT clause).

    One statement runs as one SQLite step: the calling thread gives the GIL back and takes it
    again once per statement, where `executemany` does so once per row (each re-take can wait
    for the event loop's thread, which holds the GIL)."""
    if not rows:
        return
    width = len(rows[0])
    one = "(" + ", ".join("?" * width) + ")"
    per_statement = max(1, _VARIABLES_PER_INSERT // width)
    for start in range(0, len(rows), per_statement):
        chunk = rows[start : start + per_statement]
        conn.execute(
            f"{insert} VALUES {', '.join([one] * len(chunk))}{then}",
            [value for row in chunk for value in row],
        )


class WriteThread:
    """Write-only transactions (outbox group commits, rows marked sent, log appends) run whole
    on a thread and a connection of their own: one hand-over to the thread and one back per
    transaction, where aiosqlite hands over at every statement (BEGIN, the rows, COMMIT).

    Under load each hand-back waits for the event loop's next turn, and a read's access audit
    waits for the group commit of its outbox row; the SQLite work itself stays off the loop's
    thread (it runs beside it, without the GIL). The caller serialises these transactions with
    its other writers (the store's and the log's write lock), so in WAL mode the connections
    never wait for each other; another process's writer is waited for up to `busy_timeout_ms`.
    """

    def __init__(self, path: str | Path, db: str, *, busy_timeout_ms: int = 10_000) -> None:
        self._path = path
        self._db = db
        self._busy_timeout_ms = busy_timeout_ms
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"sqlite-write:{db}")
        self._conn: sqlite3.Connection | None = None

    def _open(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self._path, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA synchronous=FULL")
        conn.execute(f"PRAGMA busy_timeout={int(self._busy_timeout_ms)}")
        return conn

    async def _call(self, work: Callable[[], T]) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._pool, work)

    async def start(self) -> None:
        self._conn = await self._call(self._open)

    async def run(self, work: Callable[[sqlite3.Connection], T]) -> T:
        """`work(conn)` inside BEGIN IMMEDIATE ... COMMIT on the thread; rolled back when it
        raises. Another process holding the writer past busy_timeout: TransientConflict.

        Once the thread has begun a transaction it ends it there, committed or rolled back,
        even when the caller is cancelled; the thread runs them one at a time, in order."""
        conn = self._conn
        if conn is None:
            raise RuntimeError("store not started")

        def transaction() -> T:
            try:
                conn.execute("BEGIN IMMEDIATE")
            except sqlite3.OperationalError as error:
                if (conflict := _writer_taken(error)) is None:
                    raise
                raise conflict from error
            try:
                result = work(conn)
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:  # a failed COMMIT may have ended it already
                    with contextlib.suppress(sqlite3.OperationalError):
                        conn.execute("ROLLBACK")
                raise
            return result

        result = await self._call(transaction)
        WRITE_TRANSACTIONS.labels(self._db).inc()
        return result

    async def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            await self._call(conn.close)
        self._pool.shutdown(wait=True)


def _path(name: str) -> str:
    return "$." + name


def _extract(name: str) -> str:
    # Paths are checked by check_filter, so they can be literals: an expression index on
    # json_extract(data, '$.x') is used only by a query spelling the same expression.
    return f"json_extract(data, '{_path(name)}')"


def _collection_sql(collection: str) -> str:
    # A literal too, so that an index partial on `collection = '...'` can serve the query.
    return f"collection = '{check_collection(collection)}'"


def _where_sql(where: Filter) -> tuple[str, list[Any]]:
    check_filter(where)
    clauses: list[str] = []
    params: list[Any] = []
    for name, condition in where.items():
        conds = condition if isinstance(condition, Mapping) else {"$eq": condition}
        for op, value in conds.items():
            expr = _extract(name)
            if op == "$in":
                values = list(value)
                if not values:
                    clauses.append("0")
                    continue
                clauses.append(f"{expr} IN ({', '.join('?' for _ in values)})")
                params.extend(_sql_value(v) for v in values)
            elif value is None and op == "$eq":
                clauses.append(f"{expr} IS NULL")
            else:
                clauses.append(f"{expr} {_SQL_OPS[op]} ?")
                params.append(_sql_value(value))
    return (" AND ".join(clauses) or "1"), params


def _sql_value(value: Any) -> Any:
    # json_extract yields 1/0 for JSON booleans.
    if isinstance(value, bool):
        return int(value)
    return value


def _document(collection: str, row: aiosqlite.Row | tuple[Any, ...]) -> Document:
    doc_id, version, data = row[0], row[1], row[2]
    return Document(collection, str(doc_id), int(version), json.loads(data))


def _record(r: Any) -> OutboxRecord:
    return OutboxRecord(
        event_id=r[0],
        topic=r[1],
        key=r[2],
        value=bytes(r[3]),
        headers=json.loads(r[4]),
        created_at=datetime.fromisoformat(r[5]),
        attempts=int(r[6]),
        seq=int(r[7]),
        last_error=r[8],
        parked_at=datetime.fromisoformat(r[9]) if r[9] else None,
    )


_OUTBOX_INSERT = "INSERT INTO outbox (event_id, topic, key, value, headers, created_at)"
_INSERT_OUTBOX = f"{_OUTBOX_INSERT} VALUES (?, ?, ?, ?, ?, ?)"
_DOCUMENT_KEEP = "INSERT INTO documents (collection, id, version, data)"
_KEEP_THEN = " ON CONFLICT (collection, id) DO NOTHING"
_INBOX_MARK = "INSERT OR IGNORE INTO inbox (consumer_group, event_id, handled_at)"


@dataclass
class _Writes:
    """The rows of a transaction that took no writer: they commit together at its end."""

    outbox: list[tuple[Any, ...]] = field(default_factory=list)
    kept: list[tuple[Any, ...]] = field(default_factory=list)  # documents, by `keep`
    marked: list[tuple[Any, ...]] = field(default_factory=list)  # inbox rows, by `mark_inbox`

    def __bool__(self) -> bool:
        return bool(self.outbox or self.kept or self.marked)

    def extend(self, other: _Writes) -> None:
        self.outbox.extend(other.outbox)
        self.kept.extend(other.kept)
        self.marked.extend(other.marked)

    def apply(self, conn: sqlite3.Connection) -> None:
        try:
            insert_rows(conn, _DOCUMENT_KEEP, self.kept, _KEEP_THEN)
        except sqlite3.IntegrityError as error:  # a unique index, not the id
            raise _duplicate(self.kept[0][0], self.kept[0][1], error) from error
        insert_rows(conn, _INBOX_MARK, self.marked)
        insert_rows(conn, _OUTBOX_INSERT, self.outbox)


def _outbox_row(record: OutboxRecord) -> tuple[Any, ...]:
    return (
        record.event_id,
        record.topic,
        record.key,
        record.value,
        json.dumps(record.headers),
        record.created_at.isoformat(),
    )


def _iso(moment: datetime) -> str:
    # One fixed format, so that comparing the texts compares the times.
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


def _now() -> str:
    return _iso(datetime.now(UTC))


def _duplicate(collection: str, doc_id: str, error: sqlite3.IntegrityError) -> DuplicateDocument:
    found = _UNIQUE_INDEX.search(str(error))
    return DuplicateDocument(collection, doc_id, index=found.group(1) if found else None)


class _SqliteTransaction(Transaction):
    """Takes the writer (BEGIN IMMEDIATE) at its first statement, not when it opens: outbox
    rows, `keep` and `mark_inbox` are held until the commit, so a transaction that only emits
    events (a read's access audit) or only keeps records (the audit trail consuming them)
    never holds the writer on its own and joins a group commit instead. Once it has begun,
    what it held is written first, then each statement as it comes."""

    def __init__(self, store: SqliteStore) -> None:
        self._store = store
        self._begun: aiosqlite.Connection | None = None
        self.held = _Writes()
        self.aborted: DuplicateDocument | None = None

    def _check(self) -> None:
        if self.aborted is not None:
            raise TransactionAborted(self.aborted)

    @property
    def connection(self) -> aiosqlite.Connection | None:
        """The writer, once the transaction began (else None)."""
        return self._begun

    async def _conn_begun(self) -> aiosqlite.Connection:
        self._check()
        if self._begun is None:
            self._begun = await self._store._begin()
            kept, self.held.kept = self.held.kept, []
            marked, self.held.marked = self.held.marked, []
            if kept:
                try:
                    await self._begun.executemany(
                        f"{_DOCUMENT_KEEP} VALUES (?, ?, ?, ?){_KEEP_THEN}", kept
                    )
                except sqlite3.IntegrityError as error:
                    self.aborted = _duplicate(kept[0][0], kept[0][1], error)
                    raise self.aborted from error
            if marked:
                await self._begun.executemany(f"{_INBOX_MARK} VALUES (?, ?, ?)", marked)
        return self._begun

    async def get(self, collection: str, doc_id: str) -> Document | None:
        conn = await self._conn_begun()
        rows = list(
            await conn.execute_fetchall(
                "SELECT id, version, data FROM documents WHERE collection = ? AND id = ?",
                (collection, doc_id),
            )
        )
        return _document(collection, rows[0]) if rows else None

    async def insert(self, collection: str, doc_id: str, data: dict[str, Any]) -> Document:
        conn = await self._conn_begun()
        try:
            await conn.execute(
                "INSERT INTO documents (collection, id, version, data) VALUES (?, ?, 1, ?)",
                (collection, doc_id, json.dumps(data)),
            )
        except sqlite3.IntegrityError as error:
            self.aborted = _duplicate(collection, doc_id, error)
            raise self.aborted from error
        return Document(collection, doc_id, 1, data)

    async def insert_if_absent(
        self, collection: str, doc_id: str, data: dict[str, Any]
    ) -> Document | None:
        conn = await self._conn_begun()
        try:
            cursor = await conn.execute(
                "INSERT INTO documents (collection, id, version, data) VALUES (?, ?, 1, ?) "
                "ON CONFLICT (collection, id) DO NOTHING",
                (collection, doc_id, json.dumps(data)),
            )
        except sqlite3.IntegrityError as error:  # a unique index, not the id
            self.aborted = _duplicate(collection, doc_id, error)
            raise self.aborted from error
        return Document(collection, doc_id, 1, data) if cursor.rowcount == 1 else None

    async def update(
        self, collection: str, doc_id: str, data: dict[str, Any], expected_version: int
    ) -> Document:
        conn = await self._conn_begun()
        try:
            cursor = await conn.execute(
                "UPDATE documents SET version = version + 1, data = ? "
                "WHERE collection = ? AND id = ? AND version = ?",
                (json.dumps(data), collection, doc_id, expected_version),
            )
        except sqlite3.IntegrityError as error:  # a unique index
            self.aborted = _duplicate(collection, doc_id, error)
            raise self.aborted from error
        if cursor.rowcount != 1:
            raise ConcurrencyConflict(collection, doc_id, expected_version)
        return Document(collection, doc_id, expected_version + 1, data)

    async def delete(
        self, collection: str, doc_id: str, expected_version: int | None = None
    ) -> None:
        conn = await self._conn_begun()
        if expected_version is None:
            cursor = await conn.execute(
                "DELETE FROM documents WHERE collection = ? AND id = ?", (collection, doc_id)
            )
            if cursor.rowcount != 1:
                raise DocumentNotFound(collection, doc_id)
            return
        cursor = await conn.execute(
            "DELETE FROM documents WHERE collection = ? AND id = ? AND version = ?",
            (collection, doc_id, expected_version),
        )
        if cursor.rowcount != 1:
            raise ConcurrencyConflict(collection, doc_id, expected_version)

    async def keep(self, collection: str, doc_id: str, data: dict[str, Any]) -> None:
        self._check()
        if self._begun is not None or self._store._unique(collection):
            # A unique index could refuse it: written now, so the refusal names this record.
            await self.insert_if_absent(collection, doc_id, data)
            return
        self.held.kept.append((collection, doc_id, 1, json.dumps(data)))

    async def add_outbox(self, record: OutboxRecord) -> None:
        self._check()
        self.held.outbox.append(_outbox_row(record))

    async def mark_inbox(self, group: str, event_id: str) -> None:
        self._check()
        if self._begun is not None:
            await self.claim_inbox(group, event_id)
            return
        self.held.marked.append((group, event_id, _now()))

    async def claim_inbox(self, group: str, event_id: str) -> bool:
        conn = await self._conn_begun()
        cursor = await conn.execute(
            "INSERT OR IGNORE INTO inbox (consumer_group, event_id, handled_at) VALUES (?, ?, ?)",
            (group, event_id, _now()),
        )
        return cursor.rowcount == 1


async def _rollback(conn: aiosqlite.Connection) -> None:
    """After a failed (or cancelled) COMMIT: a cancelled one may have run in the connection's
    thread all the same, and then there is nothing left to roll back."""
    if conn.in_transaction:
        with contextlib.suppress(sqlite3.OperationalError):
            await conn.execute("ROLLBACK")


def _settle(waiter: asyncio.Future[None], error: BaseException | None) -> None:
    if waiter.done():  # its caller was cancelled: its rows are committed all the same
        return
    if error is None:
        waiter.set_result(None)
    else:
        waiter.set_exception(error)


class SqliteStore(Store):
    """One writer connection serialised by a lock; a separate reader sees only committed data."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._writer: aiosqlite.Connection | None = None
        self._reader: aiosqlite.Connection | None = None
        self._loop_reader: LoopReader | None = None
        self._writes: WriteThread | None = None
        self._lock = asyncio.Lock()
        self._queued: list[tuple[_Writes, asyncio.Future[None]]] = []
        self._flusher: asyncio.Task[None] | None = None
        self._uniques: set[str] | None = None  # collections with a declared unique index

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
        async with self._writer.execute("PRAGMA table_info(outbox)") as cursor:
            present = {row[1] for row in await cursor.fetchall()}
        for column, kind in OUTBOX_COLUMNS.items():
            if column not in present:
                await self._writer.execute(f"ALTER TABLE outbox ADD COLUMN {column} {kind}")
        await self._writer.executescript(INDEXES)
        self._reader = await self._connect()
        self._loop_reader = LoopReader(self.path, self.path.name)
        self._writes = WriteThread(self.path, self.path.name)
        await self._writes.start()

    async def close(self) -> None:
        if self._flusher is not None and not self._flusher.done():
            await asyncio.wait([self._flusher])
        for conn in (self._reader, self._writer):
            if conn is not None:
                await conn.close()
        if self._loop_reader is not None:
            self._loop_reader.close()
        if self._writes is not None:
            await self._writes.close()
        self._reader = self._writer = None
        self._loop_reader = None
        self._writes = None

    @property
    def _r(self) -> aiosqlite.Connection:
        if self._reader is None:
            raise RuntimeError("store not started")
        return self._reader

    async def _read(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        """The rows of a read: on the loop when SQLite answers at once, else on the thread."""
        if self._loop_reader is None:
            raise RuntimeError("store not started")
        rows = self._loop_reader.fetchall(sql, params)
        if rows is None:
            rows = list(await self._r.execute_fetchall(sql, params))
        return rows

    async def ping(self) -> bool:
        try:
            async with self._r.execute("SELECT 1") as cursor:
                return (await cursor.fetchone()) is not None
        except Exception:
            return False

    async def _begin_locked(self) -> aiosqlite.Connection:
        """BEGIN IMMEDIATE on the writer, whose lock the caller holds."""
        if self._writer is None:
            raise RuntimeError("store not started")
        conn = self._writer
        try:
            await conn.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as error:
            if (conflict := _writer_taken(error)) is None:
                raise
            raise conflict from error
        return conn

    async def _begin(self) -> aiosqlite.Connection:
        """Takes the writer's lock and begins; `_end` commits or rolls back and releases it."""
        await self._lock.acquire()
        try:
            return await self._begin_locked()
        except BaseException:
            self._lock.release()
            raise

    async def _end(self, conn: aiosqlite.Connection, commit: bool) -> None:
        try:
            if not commit:
                await conn.execute("ROLLBACK")
                return
            try:
                await conn.execute("COMMIT")
            except BaseException:
                await _rollback(conn)
                raise
            WRITE_TRANSACTIONS.labels(self.path.name).inc()
        finally:
            self._lock.release()

    @asynccontextmanager
    async def _immediate(self) -> AsyncIterator[aiosqlite.Connection]:
        """The writer inside BEGIN IMMEDIATE; commits when the block exits normally."""
        conn = await self._begin()
        try:
            yield conn
        except BaseException:
            await self._end(conn, commit=False)
            raise
        await self._end(conn, commit=True)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Transaction]:
        tx = _SqliteTransaction(self)
        try:
            yield tx
            if tx.aborted is not None:
                # The caller caught the duplicate and went on: refuse to commit the rest.
                raise TransactionAborted(tx.aborted)
            if tx.connection is not None and tx.held.outbox:
                await tx.connection.executemany(_INSERT_OUTBOX, tx.held.outbox)
        except BaseException:
            if tx.connection is not None:
                await self._end(tx.connection, commit=False)
            raise
        if tx.connection is not None:
            await self._end(tx.connection, commit=True)
        elif tx.held:
            await self._group_commit(tx.held)

    # -- group commit -----------------------------------------------------------------------------

    async def _group_commit(self, rows: _Writes) -> None:
        """The held rows of a transaction that took no writer, committed with those of the
        other such transactions waiting meanwhile: one transaction (one fsync) for all of them.
        Returns once they are committed; a failure of the shared commit commits each alone."""
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._queued.append((rows, waiter))
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush_queued(), name=f"commit:{self.path}")
        await waiter

    async def _flush_queued(self) -> None:
        # A task of its own: a caller cancelled while waiting leaves the others' commit alone.
        while self._queued:
            async with self._lock:
                batch, self._queued = self._queued, []
                try:
                    if len(batch) == 1:
                        together = batch[0][0]
                    else:
                        together = _Writes()
                        for rows, _ in batch:
                            together.extend(rows)
                    await self._commit_rows(together)
                except Exception as error:
                    if len(batch) == 1:
                        _settle(batch[0][1], error)
                        continue
                    for rows, waiter in batch:
                        try:
                            await self._commit_rows(rows)
                        except Exception as alone:
                            _settle(waiter, alone)
                        else:
                            _settle(waiter, None)
                    continue
                except BaseException as error:
                    for _, waiter in batch:
                        _settle(waiter, error)
                    raise
                for _, waiter in batch:
                    _settle(waiter, None)

    @property
    def _w(self) -> WriteThread:
        if self._writes is None:
            raise RuntimeError("store not started")
        return self._writes

    async def _commit_rows(self, rows: _Writes) -> None:
        """On the write thread, whose transactions the caller's writer lock serialises."""
        await self._w.run(rows.apply)

    def _unique(self, collection: str) -> bool:
        """A unique index of `collection` was declared on this store."""
        if self._uniques is None:
            self._uniques = {i.collection for i in self._declared().values() if i.unique}
        return collection in self._uniques

    async def get(self, collection: str, doc_id: str) -> Document | None:
        rows = await self._read(
            "SELECT id, version, data FROM documents WHERE collection = ? AND id = ?",
            (collection, doc_id),
        )
        return _document(collection, rows[0]) if rows else None

    async def get_many(self, collection: str, doc_ids: Sequence[str]) -> dict[str, Document]:
        found: dict[str, Document] = {}
        ids = list(dict.fromkeys(doc_ids))
        for start in range(0, len(ids), 500):  # stay under SQLite's bound-parameter limit
            chunk = ids[start : start + 500]
            for row in await self._read(
                "SELECT id, version, data FROM documents WHERE collection = ? "
                f"AND id IN ({', '.join('?' for _ in chunk)})",
                [collection, *chunk],
            ):
                doc = _document(collection, row)
                found[doc.id] = doc
        return found

    async def find(self, collection: str, query: Query | None = None) -> list[Document]:
        query = query or Query()
        where, params = _where_sql(query.where)
        check_filter({name: None for name, _ in query.order_by})
        # Ties are broken by id, in the direction of the last sort field: a declared index
        # (which ends with the id) then gives the whole order, read forwards or backwards.
        last_desc = bool(query.order_by) and query.order_by[-1][1]
        order = "".join(
            f"{_extract(name)} {'DESC' if desc else 'ASC'}, " for name, desc in query.order_by
        )
        sql = (
            f"SELECT id, version, data FROM documents WHERE {_collection_sql(collection)} "
            f"AND {where} ORDER BY {order}id {'DESC' if last_desc else 'ASC'} LIMIT ? OFFSET ?"
        )
        rows = await self._read(sql, [*params, query.limit, query.offset])
        return [_document(collection, row) for row in rows]

    async def count(self, collection: str, where: Filter | None = None) -> int:
        clause, params = _where_sql(where or {})
        rows = await self._read(
            f"SELECT COUNT(*) FROM documents WHERE {_collection_sql(collection)} AND {clause}",
            params,
        )
        return int(rows[0][0]) if rows else 0

    async def purge(self, collection: str, where: Filter) -> int:
        clause, params = _where_sql(where)
        return await self._delete_batches(
            "DELETE FROM documents WHERE rowid IN (SELECT rowid FROM documents "
            f"WHERE {_collection_sql(collection)} AND {clause} LIMIT {PURGE_BATCH})",
            tuple(params),
        )

    async def _delete_batches(self, sql: str, params: tuple[Any, ...]) -> int:
        # Short transactions: a purge never keeps the single writer from the service for long.
        deleted = 0
        while True:
            async with self._immediate() as conn:
                cursor = await conn.execute(sql, params)
                count = cursor.rowcount
            deleted += count
            if count < PURGE_BATCH:
                return deleted

    # -- indexes --------------------------------------------------------------------------------

    async def ensure_index(
        self, collection: str, fields: Sequence[str], *, unique: bool = False
    ) -> Index:
        index = self._declare(collection, fields, unique)
        self._uniques = None
        # `collection` first: the planner then sees more equality columns here than in the
        # primary key (collection, id) and picks this index without statistics. `id` last
        # (not in a unique index, where it would make every entry distinct): queries sort by
        # `id` after their own fields, so the index then gives the whole order.
        tail = [] if unique else ["id"]
        columns = ", ".join(["collection", *(_extract(name) for name in index.fields), *tail])
        try:
            async with self._immediate() as conn:
                await conn.execute(
                    f'CREATE {"UNIQUE " if unique else ""}INDEX IF NOT EXISTS "{index.name}" '
                    f"ON documents ({columns}) WHERE {_collection_sql(collection)}"
                )
        except sqlite3.IntegrityError as error:
            self._declared().pop(index.name, None)
            self._uniques = None
            raise StoreError(f"{index.name}: stored documents already repeat a value") from error
        return index

    # -- outbox ---------------------------------------------------------------------------------

    async def outbox_pending(self, limit: int = 100) -> list[OutboxRecord]:
        now = _now()
        rows = await self._read(
            f"SELECT {_RECORD} FROM outbox "
            "WHERE sent_at IS NULL AND parked_at IS NULL AND (retry_at IS NULL OR retry_at <= ?) "
            "AND key NOT IN (SELECT key FROM outbox WHERE sent_at IS NULL AND attempts > 0 "
            "AND (parked_at IS NOT NULL OR retry_at > ?)) "
            "ORDER BY seq LIMIT ?",
            (now, now, limit),
        )
        return [_record(r) for r in rows]

    async def outbox_mark_sent_many(self, event_ids: Sequence[str]) -> None:
        if not event_ids:
            return
        now = _now()
        chunks = [list(event_ids[i : i + 500]) for i in range(0, len(event_ids), 500)]

        def mark(conn: sqlite3.Connection) -> None:
            for chunk in chunks:
                conn.execute(
                    "UPDATE outbox SET sent_at = ?, retry_at = NULL "
                    f"WHERE event_id IN ({', '.join('?' for _ in chunk)})",
                    [now, *chunk],
                )

        async with self._lock:
            await self._w.run(mark)

    async def outbox_record_failures(self, failures: Sequence[OutboxFailure]) -> None:
        if not failures:
            return
        now = _now()
        async with self._immediate() as conn:
            await conn.executemany(
                "UPDATE outbox SET attempts = attempts + 1, last_error = ?, retry_at = ?, "
                "parked_at = ? WHERE event_id = ? AND sent_at IS NULL",
                [
                    (
                        f.error[:500],
                        _iso(f.retry_at) if f.retry_at else None,
                        now if f.park else None,
                        f.event_id,
                    )
                    for f in failures
                ],
            )

    async def outbox_parked(self, limit: int = 100, offset: int = 0) -> list[OutboxRecord]:
        async with self._r.execute(
            f"SELECT {_RECORD} FROM outbox WHERE parked_at IS NOT NULL "
            "ORDER BY seq LIMIT ? OFFSET ?",
            (limit, offset),
        ) as cursor:
            rows = await cursor.fetchall()
        return [_record(r) for r in rows]

    async def outbox_replay(self, event_id: str) -> bool:
        async with self._immediate() as conn:
            cursor = await conn.execute(
                "UPDATE outbox SET parked_at = NULL, retry_at = NULL, attempts = 0 "
                "WHERE event_id = ? AND parked_at IS NOT NULL",
                (event_id,),
            )
            return cursor.rowcount == 1

    async def outbox_purge_sent(self, older_than: datetime) -> int:
        return await self._delete_batches(
            "DELETE FROM outbox WHERE seq IN (SELECT seq FROM outbox "
            f"WHERE sent_at IS NOT NULL AND sent_at < ? LIMIT {PURGE_BATCH})",
            (_iso(older_than),),
        )

    # -- inbox ----------------------------------------------------------------------------------

    async def inbox_contains(self, group: str, event_id: str) -> bool:
        rows = await self._read(
            "SELECT 1 FROM inbox WHERE consumer_group = ? AND event_id = ?", (group, event_id)
        )
        return bool(rows)

    async def inbox_purge(self, older_than: datetime) -> int:
        return await self._delete_batches(
            "DELETE FROM inbox WHERE rowid IN (SELECT rowid FROM inbox "
            f"WHERE handled_at < ? LIMIT {PURGE_BATCH})",
            (_iso(older_than),),
        )

    # -- leases ---------------------------------------------------------------------------------

    async def acquire_lease(self, name: str, holder: str, ttl: float) -> bool:
        now = time.time()
        async with self._immediate() as conn:
            cursor = await conn.execute(
                "INSERT INTO leases (name, holder, expires_at) VALUES (?, ?, ?) "
                "ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, "
                "expires_at = excluded.expires_at "
                "WHERE leases.holder = excluded.holder OR leases.expires_at <= ?",
                (name, holder, now + ttl, now),
            )
            return cursor.rowcount == 1

    async def release_lease(self, name: str, holder: str) -> None:
        async with self._immediate() as conn:
            await conn.execute("DELETE FROM leases WHERE name = ? AND holder = ?", (name, holder))

    async def lease_holder(self, name: str) -> str | None:
        rows = await self._read(
            "SELECT holder FROM leases WHERE name = ? AND expires_at > ?", (name, time.time())
        )
        return str(rows[0][0]) if rows else None
