"""The embedded event log keeps the bus contract: groups, order, retries, DLQ, restarts."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path
from typing import Any

import pytest
from polling import eventually as eventually_of  # type: ignore[import-not-found]

from bsante.chassis.bus import Message, RetryPolicy
from bsante.chassis.bus.delivery import PoisonMessage
from bsante.chassis.bus.embedded import EmbeddedBus, _next_batch

FAST = RetryPolicy(max_attempts=3, initial_backoff=0.001, max_backoff=0.01)


async def eventually(check: Callable[[], bool], timeout: float = 60.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not check():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.01)


def msg(n: int, topic: str = "t") -> Message:
    return Message(topic, f"key-{n % 2}", f"value-{n}".encode(), {"traceparent": "x", "n": str(n)})


async def test_each_group_gets_every_message_in_order(tmp_path: Path) -> None:
    seen: dict[str, list[Message]] = {"a": [], "b": []}
    bus = EmbeddedBus(tmp_path, retry=FAST, poll_interval=0.05)

    def collector(group: str):  # type: ignore[no-untyped-def]
        async def handle(message: Message) -> None:
            seen[group].append(message)

        return handle

    bus.subscribe(["t"], "a", collector("a"))
    bus.subscribe(["t"], "b", collector("b"))
    await bus.start()
    for n in range(20):
        await bus.publish(msg(n))
    await bus.publish(msg(99, topic="other"))
    await eventually(lambda: len(seen["a"]) == 20 and len(seen["b"]) == 20)
    await bus.stop()
    for group in seen.values():
        assert [m.value for m in group] == [f"value-{n}".encode() for n in range(20)]
        assert group[3].key == "key-1" and group[3].headers["n"] == "3"
        assert group[0].offset is not None


async def test_retries_then_succeeds_without_dead_letter(tmp_path: Path) -> None:
    calls = 0
    handled: list[bytes] = []

    async def flaky(message: Message) -> None:
        nonlocal calls
        if message.value == b"value-1":
            calls += 1
            if calls < 3:
                raise RuntimeError("transient")
        handled.append(message.value)

    bus = EmbeddedBus(tmp_path, retry=FAST, poll_interval=0.05)
    bus.subscribe(["t"], "g", flaky)
    await bus.start()
    await bus.publish(msg(1))
    # Delivery is in order: once the sentinel is handled, message 1's outcome is final.
    await bus.publish(msg(2))
    await eventually(lambda: b"value-2" in handled)

    async def sentinel_committed() -> bool:
        return await bus.committed("g", "t") == 2

    await eventually_of(sentinel_committed)
    assert calls == 3 and handled == [b"value-1", b"value-2"]
    assert await bus.read("t.dlq") == []
    await bus.stop()


@pytest.mark.parametrize(("error", "calls_expected"), [(RuntimeError, 3), (PoisonMessage, 1)])
async def test_failing_message_goes_to_dlq_with_error_headers(
    tmp_path: Path, error: type[Exception], calls_expected: int
) -> None:
    calls = 0
    after: list[Message] = []

    async def failing(message: Message) -> None:
        nonlocal calls
        if message.value == b"value-1":
            calls += 1
            raise error("cannot handle\nsecond line with details")
        after.append(message)

    bus = EmbeddedBus(tmp_path, retry=FAST, poll_interval=0.05)
    bus.subscribe(["t"], "g", failing)
    await bus.start()
    await bus.publish(msg(1))
    await bus.publish(msg(2))
    await eventually(lambda: len(after) == 1)  # the next message is not blocked
    dead = await bus.read("t.dlq")
    await bus.stop()
    assert calls == calls_expected
    assert len(dead) == 1
    headers = dead[0].headers
    assert headers["x-error-type"] == error.__name__
    assert headers["x-error-message"] == "cannot handle"
    assert headers["x-original-topic"] == "t"
    assert headers["x-attempts"] == str(calls_expected)
    assert headers["x-consumer-group"] == "g"
    assert dead[0].value == b"value-1" and dead[0].key == "key-1"


async def test_a_restarted_consumer_resumes_from_its_committed_offset(tmp_path: Path) -> None:
    seen: list[bytes] = []

    async def handle(message: Message) -> None:
        seen.append(message.value)

    first = EmbeddedBus(tmp_path, retry=FAST, poll_interval=0.05)
    first.subscribe(["t"], "g", handle)
    await first.start()
    for n in range(3):
        await first.publish(msg(n))
    await eventually(lambda: len(seen) == 3)
    await first.stop()

    # Published while the consumer is down: kept in the log.
    producer = EmbeddedBus(tmp_path)
    await producer.start()
    for n in range(3, 5):
        await producer.publish(msg(n))
    await producer.stop()

    second = EmbeddedBus(tmp_path, retry=FAST, poll_interval=0.05)
    second.subscribe(["t"], "g", handle)
    await second.start()
    # A sentinel published after: once it arrives, anything redelivered would have come first.
    await second.publish(msg(5))
    await eventually(lambda: b"value-5" in seen)
    await second.stop()
    assert seen == [f"value-{n}".encode() for n in range(6)]


async def test_ping_reflects_the_log(tmp_path: Path) -> None:
    bus = EmbeddedBus(tmp_path)
    assert not await bus.ping()
    await bus.start()
    assert await bus.ping()
    await bus.stop()
    assert not await bus.ping()


@contextlib.asynccontextmanager
async def _no_scope() -> AsyncIterator[None]:
    yield


async def test_a_batch_over_two_topics_commits_each_topics_offset(tmp_path: Path) -> None:
    producer = EmbeddedBus(tmp_path)
    await producer.start()
    await producer.publish_many([msg(n, topic="a" if n % 2 else "b") for n in range(10)])
    await producer.stop()
    seen: list[bytes] = []

    async def handle(message: Message) -> None:
        seen.append(message.value)

    first = EmbeddedBus(tmp_path, retry=FAST, poll_interval=0.05)
    first.subscribe(["a", "b"], "g", handle, batch=_no_scope)
    await first.start()
    await eventually(lambda: len(seen) == 10)  # one batch: both topics, in offset order
    offsets = [m.offset for m in await first.read("a")], [m.offset for m in await first.read("b")]
    assert await first.committed("g", "a") == offsets[0][-1]
    assert await first.committed("g", "b") == offsets[1][-1]
    await first.stop()
    second = EmbeddedBus(tmp_path, retry=FAST, poll_interval=0.05)
    second.subscribe(["a", "b"], "g", handle, batch=_no_scope)
    await second.start()
    await second.publish(msg(99, topic="a"))  # once it arrives, a redelivery would be before
    await eventually(lambda: b"value-99" in seen)
    await second.stop()
    assert seen == [f"value-{n}".encode() for n in (*range(10), 99)]


def _steps(db: Path, sql: str, params: Sequence[Any]) -> int:
    """SQLite virtual-machine steps to answer `sql` (counted 10 at a time)."""
    with contextlib.closing(sqlite3.connect(db)) as conn:
        counted = [0]

        def tick() -> int:
            counted[0] += 10
            return 0

        conn.set_progress_handler(tick, 10)
        conn.execute(sql, params).fetchall()
    return counted[0]


async def test_a_consumers_next_batch_costs_what_is_new_not_the_history(tmp_path: Path) -> None:
    bus = EmbeddedBus(tmp_path, retry=FAST, poll_interval=0.05)
    handled: list[Message] = []

    async def handle(message: Message) -> None:
        handled.append(message)

    bus.subscribe(["t", "u"], "g", handle, batch=_no_scope)
    await bus.start()
    await bus.publish_many([msg(n) for n in range(3000)])
    await eventually(lambda: len(handled) == 3000)
    await bus.publish_many([msg(n, topic="u") for n in range(5)])
    await eventually(lambda: len(handled) == 3005)
    await bus.stop()
    # Everything consumed: the next poll finds nothing, past 3000 entries of "t" kept.
    sql, params = _next_batch(("t", "u"), "g", 100)
    assert _steps(tmp_path / "bus.db", sql, params) < 300
