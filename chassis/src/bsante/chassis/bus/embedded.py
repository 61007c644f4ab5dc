"""Embedded adapter of the bus port: a durable append-only log on SQLite, for one machine.

Each consumer group keeps its own committed offset per topic, so a restarted service resumes
where it stopped; an offset moves only after the handler (or the dead-letter write) returned.

Retention (`purge`): an entry is dropped once it is older than the retention AND every consumer
group known on its topic has committed past it (groups are recorded when a bus subscribing them
starts, so a group that has not consumed anything yet still holds the log). A topic no group
consumes keeps only its retention, as on Kafka; a dead-letter topic (`.dlq`) without a consumer
group is never purged, so no dead letter is lost before someone replayed it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import weakref
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiosqlite
import structlog

from bsante.chassis.bus import BatchScope, EventBus, Handler, Message, RetryPolicy
from bsante.chassis.bus.delivery import deliver, for_another_group
from bsante.chassis.metrics import WRITE_TRANSACTIONS
from bsante.chassis.store.sqlite import LoopReader, WriteThread, insert_rows

log = structlog.get_logger(__name__)

SCHEMA = """
CREATE TABLE IF NOT EXISTS log (
    offset INTEGER PRIMARY KEY AUTOINCREMENT,
    topic TEXT NOT NULL,
    key TEXT NOT NULL,
    value BLOB NOT NULL,
    headers TEXT NOT NULL,
    appended_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS log_topic ON log (topic, offset);
CREATE INDEX IF NOT EXISTS log_appended ON log (appended_at);
CREATE TABLE IF NOT EXISTS offsets (
    consumer_group TEXT NOT NULL,
    topic TEXT NOT NULL,
    committed INTEGER NOT NULL,
    PRIMARY KEY (consumer_group, topic)
);
"""

PURGE_BATCH = 1000

# Wakes consumers of the same log file in this process as soon as something is appended.
_appended: weakref.WeakValueDictionary[str, _Signal] = weakref.WeakValueDictionary()


class _Signal:
    """Each waiting consumer with its topics: an append wakes only those reading its topics
    (every consumer of the process waking on every append, each to run its query, cost more
    than the append itself)."""

    def __init__(self) -> None:
        self.waiters: dict[asyncio.Event, frozenset[str]] = {}

    def notify(self, topics: set[str]) -> None:
        for event, wanted in self.waiters.items():
            if not wanted.isdisjoint(topics):
                event.set()


@dataclass(frozen=True)
class _Subscription:
    topics: tuple[str, ...]
    group: str
    handler: Handler
    batch: BatchScope | None = None


class EmbeddedBus(EventBus):
    def __init__(
        self,
        directory: str | Path,
        *,
        retry: RetryPolicy | None = None,
        poll_interval: float = 0.5,
        batch_size: int = 100,
    ) -> None:
        self.path = Path(directory) / "bus.db"
        self.retry = retry or RetryPolicy()
        self.poll_interval = poll_interval
        self.batch_size = batch_size
        self._subscriptions: list[_Subscription] = []
        self._tasks: list[asyncio.Task[None]] = []
        self._conn: aiosqlite.Connection | None = None
        self._loop_reader: LoopReader | None = None
        self._writes: WriteThread | None = None
        key = str(self.path.resolve())
        signal = _appended.get(key)
        if signal is None:
            signal = _Signal()
            _appended[key] = signal
        self._signal = signal
        self._write_lock = asyncio.Lock()

    async def _connect(self) -> aiosqlite.Connection:
        conn = await aiosqlite.connect(self.path, isolation_level=None)
        await conn.execute("PRAGMA journal_mode=WAL")
        await conn.execute("PRAGMA synchronous=FULL")
        await conn.execute("PRAGMA busy_timeout=10000")
        return conn

    async def start(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._conn = await self._connect()
        await self._conn.executescript(SCHEMA)
        self._loop_reader = LoopReader(self.path, self.path.name)
        self._writes = WriteThread(self.path, self.path.name)
        await self._writes.start()
        async with self._write_lock:
            # Known from now on: the purge keeps what this group has not consumed yet.
            await self._conn.executemany(
                "INSERT OR IGNORE INTO offsets (consumer_group, topic, committed) VALUES (?, ?, 0)",
                [(sub.group, topic) for sub in self._subscriptions for topic in sub.topics],
            )
        for sub in self._subscriptions:
            self._tasks.append(asyncio.create_task(self._consume(sub), name=f"consume:{sub.group}"))

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        if self._conn is not None:
            await self._conn.close()
            self._conn = None
        if self._loop_reader is not None:
            self._loop_reader.close()
            self._loop_reader = None
        if self._writes is not None:
            await self._writes.close()
            self._writes = None

    async def ping(self) -> bool:
        if self._conn is None:
            return False
        try:
            async with self._conn.execute("SELECT 1") as cursor:
                return (await cursor.fetchone()) is not None
        except Exception:
            return False

    async def publish(self, message: Message) -> None:
        if self._conn is None:
            raise RuntimeError("bus not started")
        async with self._write_lock:
            await self._conn.execute(
                "INSERT INTO log (topic, key, value, headers, appended_at) VALUES (?, ?, ?, ?, ?)",
                _row(message, _now()),
            )
        WRITE_TRANSACTIONS.labels(self.path.name).inc()
        self._signal.notify({message.topic})

    async def publish_many(self, messages: Sequence[Message]) -> list[Exception | None]:
        """The whole batch in one transaction (one fsync): all appended, or it raises."""
        if self._writes is None:
            raise RuntimeError("bus not started")
        if not messages:
            return []
        now = _now()
        rows = [_row(message, now) for message in messages]
        async with self._write_lock:
            # One hand-over to the write thread for the whole transaction.
            await self._writes.run(
                lambda conn: insert_rows(
                    conn, "INSERT INTO log (topic, key, value, headers, appended_at)", rows
                )
            )
        self._signal.notify({message.topic for message in messages})
        return [None] * len(messages)

    async def purge(self, older_than: datetime) -> int:
        if self._conn is None:
            raise RuntimeError("bus not started")
        cutoff = older_than.astimezone(UTC).isoformat(timespec="microseconds")
        async with self._conn.execute(
            "SELECT DISTINCT topic FROM log WHERE appended_at < ?", (cutoff,)
        ) as cursor:
            topics = [str(row[0]) for row in await cursor.fetchall()]
        deleted = 0
        for topic in topics:
            async with self._conn.execute(
                "SELECT MIN(committed), COUNT(*) FROM offsets WHERE topic = ?", (topic,)
            ) as cursor:
                row = await cursor.fetchone()
            groups = int(row[1]) if row else 0
            if groups:
                upto = int(row[0]) if row else 0
            elif topic.endswith(".dlq"):
                continue
            else:
                upto = 2**63 - 1
            while True:
                async with self._write_lock:
                    cursor = await self._conn.execute(
                        "DELETE FROM log WHERE offset IN (SELECT offset FROM log "
                        "WHERE topic = ? AND offset <= ? AND appended_at < ? "
                        f"ORDER BY offset LIMIT {PURGE_BATCH})",
                        (topic, upto, cutoff),
                    )
                    count = cursor.rowcount
                deleted += count
                if count < PURGE_BATCH:
                    break
        return deleted

    def subscribe(
        self,
        topics: Sequence[str],
        group: str,
        handler: Handler,
        *,
        batch: BatchScope | None = None,
    ) -> None:
        if self._tasks:
            raise RuntimeError("subscribe before start")
        self._subscriptions.append(_Subscription(tuple(topics), group, handler, batch))

    async def committed(self, group: str, topic: str) -> int:
        """The last offset `group` finished with on `topic` (0 when none)."""
        if self._conn is None:
            raise RuntimeError("bus not started")
        async with self._conn.execute(
            "SELECT committed FROM offsets WHERE consumer_group = ? AND topic = ?", (group, topic)
        ) as cursor:
            row = await cursor.fetchone()
        return int(row[0]) if row else 0

    async def read(self, topic: str, after: int = 0) -> list[Message]:
        """Every message of a topic after an offset (inspection, DLQ replay)."""
        if self._conn is None:
            raise RuntimeError("bus not started")
        async with self._conn.execute(
            "SELECT offset, topic, key, value, headers FROM log "
            "WHERE topic = ? AND offset > ? ORDER BY offset",
            (topic, after),
        ) as cursor:
            rows = await cursor.fetchall()
        return [_message(row) for row in rows]

    async def _commit(
        self, conn: aiosqlite.Connection, group: str, messages: list[Message]
    ) -> None:
        """The offset of each topic's last message of those handled, in one statement (one
        transaction): a batch can span several topics."""
        last = {m.topic: m.offset for m in messages}  # in offset order: the last one stays
        await conn.execute(
            "INSERT INTO offsets (consumer_group, topic, committed) VALUES "
            + ", ".join(["(?, ?, ?)"] * len(last))
            + " ON CONFLICT (consumer_group, topic) DO UPDATE SET committed = excluded.committed",
            [value for topic, offset in last.items() for value in (group, topic, offset)],
        )
        WRITE_TRANSACTIONS.labels(self.path.name).inc()

    async def _batch(self, sub: _Subscription, messages: list[Message]) -> bool:
        """Handle a batch in one scope (one transaction): True when all of it committed.

        False (nothing of it kept) when a handler raised: the caller then delivers each
        message on its own, with retries and the DLQ, exactly as without batching.
        """
        assert sub.batch is not None
        try:
            async with sub.batch():
                for message in messages:
                    if not for_another_group(message, sub.group):
                        await sub.handler(message)
        except asyncio.CancelledError:
            raise
        except Exception as error:
            log.info("batch_undone", group=sub.group, error_type=type(error).__name__)
            return False
        return True

    async def _consume(self, sub: _Subscription) -> None:
        wake = asyncio.Event()
        self._signal.waiters[wake] = frozenset(sub.topics)
        conn = await self._connect()
        sql, params = _next_batch(sub.topics, sub.group, self.batch_size)
        try:
            while True:
                wake.clear()
                found = self._loop_reader.fetchall(sql, params) if self._loop_reader else None
                if found is None:
                    found = list(await conn.execute_fetchall(sql, params))
                rows = found
                pending = [_message(row) for row in rows]
                if sub.batch is not None and len(pending) > 1 and await self._batch(sub, pending):
                    await self._commit(conn, sub.group, pending)
                    pending = []
                for message in pending:
                    try:
                        await deliver(message, sub.group, sub.handler, self.retry, self.publish)
                    except asyncio.CancelledError:
                        raise
                    except Exception as error:
                        # The dead-letter write failed: keep the offset, try again later.
                        log.error(
                            "delivery_failed", group=sub.group, error_type=type(error).__name__
                        )
                        await asyncio.sleep(self.retry.max_backoff)
                        break
                    await self._commit(conn, sub.group, [message])
                if len(rows) < self.batch_size:
                    # asyncio.timeout, not wait_for: on 3.11 wait_for can swallow the cancellation
                    # that stop() sends when the event fires at the same moment (CPython gh-86296).
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(self.poll_interval):
                            await wake.wait()
        finally:
            self._signal.waiters.pop(wake, None)
            await conn.close()


def _next_batch(topics: Sequence[str], group: str, limit: int) -> tuple[str, tuple[Any, ...]]:
    """The query of a consumer's next messages, oldest first, and its parameters.

    One range per topic on the (topic, offset) index, starting after that topic's committed
    offset: the cost follows the batch, not the log. (A join on the offsets table bounded only
    the topic, so every poll scanned the topic's whole retained history: 2 ms at 10 000
    entries, and a week of retention holds far more.)"""
    one = (
        "SELECT offset, topic, key, value, headers FROM log WHERE topic = ? AND offset > "
        "COALESCE((SELECT committed FROM offsets WHERE consumer_group = ? AND topic = ?), 0) "
        "ORDER BY offset LIMIT ?"
    )
    params: list[Any] = []
    for topic in topics:
        params += [topic, group, topic, limit]
    if len(topics) == 1:
        return one, tuple(params)
    union = " UNION ALL ".join(f"SELECT * FROM ({one})" for _ in topics)
    return f"{union} ORDER BY offset LIMIT ?", (*params, limit)


def _now() -> str:
    # One fixed format, so that comparing the texts compares the times.
    return datetime.now(UTC).isoformat(timespec="microseconds")


def _row(message: Message, appended_at: str) -> tuple[Any, ...]:
    return (message.topic, message.key, message.value, json.dumps(message.headers), appended_at)


def _message(row: Any) -> Message:
    return Message(
        topic=str(row[1]),
        key=str(row[2]),
        value=bytes(row[3]),
        headers=json.loads(row[4]),
        offset=int(row[0]),
    )
