"""The outbox relay drains in batches, parks what keeps failing, and shares one lease."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime
from pathlib import Path

import pytest
from fastapi import FastAPI
from httpx import ASGITransport, AsyncClient
from polling import eventually  # type: ignore[import-not-found]
from prometheus_client import REGISTRY

from bsante.chassis.auth import Principal, current_principal
from bsante.chassis.bus import EventBus, Handler, Message
from bsante.chassis.bus.embedded import EmbeddedBus
from bsante.chassis.errors import install_problem_handlers
from bsante.chassis.messaging import BusUnavailable, Messaging, RelayPolicy
from bsante.chassis.ops import outbox_ops_router
from bsante.chassis.store import OutboxRecord, Store
from bsante.chassis.store.sqlite import SqliteStore

TOPIC = "bsante.test.v1"
FAST = RelayPolicy(batch_size=50, max_attempts=3, initial_backoff=0.0, max_backoff=0.0)


class RecordingBus(EventBus):
    """Wraps the embedded log: counts batches, and fails the messages of chosen keys."""

    def __init__(self, inner: EmbeddedBus) -> None:
        self.inner = inner
        self.retry = inner.retry
        self.batches: list[int] = []
        self.failing_keys: set[str] = set()
        self.down = False

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    async def ping(self) -> bool:
        return not self.down and await self.inner.ping()

    async def publish(self, message: Message) -> None:
        await self.publish_many([message])

    async def publish_many(self, messages: Sequence[Message]) -> list[Exception | None]:
        if self.down:
            raise ConnectionError("bus down")
        self.batches.append(len(messages))
        good = [m for m in messages if m.key not in self.failing_keys]
        await self.inner.publish_many(good)
        return [
            ValueError("refused by the transport\nsecond line")
            if m.key in self.failing_keys
            else None
            for m in messages
        ]

    def subscribe(self, topics: Sequence[str], group: str, handler: Handler) -> None:
        raise NotImplementedError


@pytest.fixture
async def log(tmp_path: Path) -> AsyncIterator[EmbeddedBus]:
    bus = EmbeddedBus(tmp_path)
    await bus.start()
    yield bus
    await bus.stop()


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqliteStore]:
    adapter = SqliteStore(tmp_path / "producer.db")
    await adapter.start()
    yield adapter
    await adapter.close()


async def add_rows(store: Store, keys: Sequence[str], start: int = 0) -> list[str]:
    ids = []
    async with store.transaction() as tx:
        for n, key in enumerate(keys, start):
            event_id = f"evt-{n:05d}-{uuid.uuid4().hex[:6]}"
            await tx.add_outbox(
                OutboxRecord(event_id, TOPIC, key, f"{key}:{n}".encode(), {}, datetime.now(UTC))
            )
            ids.append(event_id)
    return ids


def values_by_key(messages: Sequence[Message]) -> dict[str, list[int]]:
    by_key: dict[str, list[int]] = {}
    for m in messages:
        key, n = m.value.decode().split(":")
        by_key.setdefault(key, []).append(int(n))
    return by_key


def metric(name: str, service: str) -> float:
    return REGISTRY.get_sample_value(name, {"service": service}) or 0.0


async def test_the_relay_drains_the_whole_backlog_in_batches(
    store: SqliteStore, log: EmbeddedBus
) -> None:
    bus = RecordingBus(log)
    keys = [f"k{n % 7}" for n in range(520)]
    await add_rows(store, keys)
    messaging = Messaging("drain", store, bus, policy=RelayPolicy(batch_size=200))
    assert await messaging.relay_once() == 520
    assert bus.batches == [200, 200, 120]
    assert await store.outbox_pending() == []
    published = await log.read(TOPIC)
    assert [m.value for m in published] == [f"{k}:{n}".encode() for n, k in enumerate(keys)]


async def test_a_row_failing_n_times_is_parked_and_holds_back_only_its_key(
    store: SqliteStore, log: EmbeddedBus
) -> None:
    bus = RecordingBus(log)
    bus.failing_keys = {"bad"}
    keys = ["good", "bad", "other", "bad", "good", "other", "bad"]
    ids = await add_rows(store, keys)
    messaging = Messaging("park", store, bus, policy=FAST)
    parked_before = metric("bsante_outbox_parked_total", "park")

    assert await messaging.relay_once() == 4
    assert values_by_key(await log.read(TOPIC)) == {"good": [0, 4], "other": [2, 5]}
    parked = await messaging.outbox_parked()
    assert [r.event_id for r in parked] == [ids[1]]  # the first of its key; the others wait
    assert parked[0].attempts == FAST.max_attempts
    assert parked[0].last_error == "ValueError: refused by the transport"
    assert metric("bsante_outbox_parked_total", "park") == parked_before + 1
    # Other subjects keep flowing while the row stays parked.
    await add_rows(store, ["other", "bad"], start=7)
    assert await messaging.relay_once() == 1
    assert values_by_key(await log.read(TOPIC))["other"] == [2, 5, 7]

    # Fixed: a replay publishes the parked row, then the rows of its key, in order.
    bus.failing_keys.clear()
    assert not await messaging.outbox_replay("no-such-event")
    assert await messaging.outbox_replay(ids[1])
    assert await messaging.relay_once() == 4
    assert values_by_key(await log.read(TOPIC))["bad"] == [1, 3, 6, 8]
    assert await messaging.outbox_parked() == []


async def test_a_failed_row_waits_its_backoff_without_blocking_other_keys(
    store: SqliteStore, log: EmbeddedBus
) -> None:
    bus = RecordingBus(log)
    bus.failing_keys = {"bad"}
    await add_rows(store, ["bad", "bad", "good"])
    policy = RelayPolicy(max_attempts=5, initial_backoff=3600, max_backoff=3600)
    messaging = Messaging("backoff", store, bus, policy=policy)
    assert await messaging.relay_once() == 1
    assert await messaging.relay_once() == 0, "the failed row waits for its retry time"
    assert await messaging.outbox_parked() == []
    assert await store.outbox_pending() == [], "the failing key's rows wait for the retry time"


async def test_a_bus_refusing_everything_blames_no_row(
    store: SqliteStore, log: EmbeddedBus
) -> None:
    bus = RecordingBus(log)
    await add_rows(store, ["a", "b"])
    messaging = Messaging("down", store, bus, policy=FAST)
    bus.down = True
    for _ in range(FAST.max_attempts + 1):
        with pytest.raises(BusUnavailable):
            await messaging.relay_once()
    pending = await store.outbox_pending()
    assert [r.attempts for r in pending] == [0, 0]
    assert await messaging.outbox_parked() == []
    bus.down = False
    assert await messaging.relay_once() == 2


def replica_stores(kind: str, tmp_path: Path) -> list[Store]:
    """Two store objects on one database, as two replicas of a service have."""
    if kind == "sqlite":
        return [SqliteStore(tmp_path / "shared.db"), SqliteStore(tmp_path / "shared.db")]
    uri = os.environ.get("MONGODB_URI")
    if not uri:
        pytest.skip("MONGODB_URI not set: MongoDB variant of the two-relay test skipped")
    from bsante.chassis.store.mongo import MongoStore

    database = f"bsante_relay_{uuid.uuid4().hex[:8]}"
    return [MongoStore(uri, database), MongoStore(uri, database)]


@pytest.mark.parametrize("kind", ["sqlite", pytest.param("mongodb", marks=pytest.mark.mongodb)])
async def test_two_relays_on_one_store_publish_each_row_once_in_key_order(
    kind: str, tmp_path: Path, log: EmbeddedBus
) -> None:
    # Two replicas: two store objects on one database, two Messaging objects, both relays
    # running.
    stores = replica_stores(kind, tmp_path)
    for s in stores:
        await s.start()
    buses = [RecordingBus(log), RecordingBus(log)]
    relays = [
        Messaging("shared", s, b, poll_interval=0.01, policy=RelayPolicy(batch_size=20))
        for s, b in zip(stores, buses, strict=True)
    ]
    for relay in relays:
        await relay.start_relay()
    keys = [f"k{n % 5}" for n in range(300)]
    written = 0
    try:
        for chunk in range(0, len(keys), 30):  # rows keep arriving while both relays run
            await add_rows(stores[chunk // 30 % 2], keys[chunk : chunk + 30], start=chunk)
            written += 30
        await eventually(lambda: _all_sent(stores[0], written))
    finally:
        for relay in relays:
            await relay.stop_relay()
    published = await log.read(TOPIC)
    assert len(published) == 300, "each row published exactly once"
    assert len({m.value for m in published}) == 300
    by_key = values_by_key(published)
    assert all(ns == sorted(ns) for ns in by_key.values()), "per-key order kept"
    assert sorted(n for ns in by_key.values() for n in ns) == list(range(300))
    assert [bool(b.batches) for b in buses].count(True) == 1, "one holder published"

    # The holder stopped and released the lease: the other takes over at once.
    ghost = "crashed-replica"
    assert await stores[1].acquire_lease(relays[1].lease_name, ghost, ttl=3600)
    await add_rows(stores[0], ["late"], start=300)
    assert await relays[0].relay_once() == 0, "a live lease of another holder is respected"
    assert await stores[1].acquire_lease(relays[1].lease_name, ghost, ttl=0)  # it expires
    assert await relays[0].relay_once() == 1
    if kind == "mongodb":
        from bsante.chassis.store.mongo import MongoStore

        assert isinstance(stores[0], MongoStore)
        await stores[0]._client.drop_database(stores[0]._db.name)
    for s in stores:
        await s.close()


async def _all_sent(store: Store, written: int) -> bool:
    return written == 300 and await store.outbox_pending(1) == []


async def test_the_ops_router_lists_and_replays_parked_rows(
    store: SqliteStore, log: EmbeddedBus
) -> None:
    bus = RecordingBus(log)
    bus.failing_keys = {"bad"}
    ids = await add_rows(store, ["bad", "bad"])
    messaging = Messaging("ops", store, bus, policy=FAST)
    await messaging.relay_once()

    app = FastAPI()
    install_problem_handlers(app)
    app.include_router(outbox_ops_router(messaging))
    roles: tuple[str, ...] = ("ops",)

    async def principal() -> Principal:
        return Principal("u1", ("bsante-ops",), "bsante-ops", roles, None, {})

    app.dependency_overrides[current_principal] = principal
    async with AsyncClient(transport=ASGITransport(app=app), base_url="http://t") as client:
        listed = await client.get("/ops/outbox/parked")
        assert listed.status_code == 200
        items = listed.json()["items"]
        assert [i["event_id"] for i in items] == [ids[0]]
        assert items[0]["state"] == "failed" and items[0]["attempts"] == FAST.max_attempts
        assert "value" not in items[0]
        missing = await client.post("/ops/outbox/parked/nope/replay")
        assert missing.status_code == 404
        assert missing.headers["content-type"] == "application/problem+json"
        assert (await client.get("/ops/outbox/parked?limit=100000")).status_code == 422
        bus.failing_keys.clear()
        replayed = await client.post(f"/ops/outbox/parked/{ids[0]}/replay")
        assert replayed.status_code == 200 and replayed.json()["state"] == "pending"
        roles = ("structure_admin",)
        assert (await client.get("/ops/outbox/parked")).status_code == 403
    assert await messaging.relay_once() == 2


async def test_published_rows_carry_a_producer_span_under_the_writer_trace(
    store: SqliteStore, log: EmbeddedBus
) -> None:
    trace_id = "0af7651916cd43dd8448eb211c80319c"
    async with store.transaction() as tx:
        await tx.add_outbox(
            OutboxRecord(
                "evt-t",
                TOPIC,
                "k",
                b"k:0",
                {"traceparent": f"00-{trace_id}-b7ad6b7169203331-01", "x-correlation-id": "c"},
                datetime.now(UTC),
            )
        )
    assert await Messaging("trace", store, log).relay_once() == 1
    [message] = await log.read(TOPIC)
    assert message.headers["x-correlation-id"] == "c"
    # Without an SDK tracer provider the producer span is the stored context itself.
    assert message.headers["traceparent"].split("-")[1] == trace_id
