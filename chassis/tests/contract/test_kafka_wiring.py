"""Kafka wiring of the event bus: topics, keys, headers, trace context, groups, retries, DLQ.

Every scenario runs on FastStream's `TestKafkaBroker` and, when KAFKA_BOOTSTRAP_SERVERS is set,
against that real Kafka too.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, cast

import pytest
from faststream.kafka import TestKafkaBroker
from faststream.kafka.message import KafkaAckableMessage
from faststream.kafka.subscriber.usecase import LogicSubscriber
from faststream.middlewares import AckPolicy
from opentelemetry import propagate, trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from bsante.chassis.bus import Message, RetryPolicy
from bsante.chassis.bus.delivery import (
    H_ATTEMPTS,
    H_CONSUMER_GROUP,
    H_ERROR_MESSAGE,
    H_ERROR_TYPE,
    H_ORIGINAL_TOPIC,
    PoisonMessage,
)
from bsante.chassis.bus.kafka import RESERVED_HEADERS, KafkaBus
from bsante.contracts.topics import dlq

KAFKA_ENV = "KAFKA_BOOTSTRAP_SERVERS"
FAST_RETRY = RetryPolicy(max_attempts=3, initial_backoff=0.001, max_backoff=0.01)
# An envelope-like JSON body: it must reach the handler as these exact bytes, never decoded.
BODY = b'{"event_type": "PatientCreated", "payload": {"n": 1}}'


@dataclass
class Backend:
    """How a scenario gets a bus, runs it, and how long it waits for deliveries."""

    name: str
    bootstrap_servers: str
    timeout: float
    run_id: str = field(default_factory=lambda: uuid.uuid4().hex[:10])

    def topic(self, name: str) -> str:
        return f"bsante.test-{name}.{self.run_id}.v1"

    def group(self, name: str) -> str:
        return f"test-{name}-{self.run_id}"

    def bus(self, tracer_provider: TracerProvider | None = None) -> KafkaBus:
        return KafkaBus(
            self.bootstrap_servers,
            client_id=f"wiring-test-{self.run_id}",
            retry=FAST_RETRY,
            tracer_provider=tracer_provider,
        )

    def running(self, bus: KafkaBus) -> AbstractAsyncContextManager[None]:
        return _in_memory(bus) if self.name == "test_broker" else _real(bus)


@asynccontextmanager
async def _in_memory(bus: KafkaBus) -> AsyncIterator[None]:
    async with TestKafkaBroker(bus.broker):
        await bus.start()
        try:
            yield
        finally:
            await bus.stop()


@asynccontextmanager
async def _real(bus: KafkaBus) -> AsyncIterator[None]:
    await bus.start()
    try:
        yield
    finally:
        await bus.stop()


@pytest.fixture(params=["test_broker", pytest.param("real_kafka", marks=pytest.mark.kafka)])
def backend(request: pytest.FixtureRequest) -> Backend:
    if request.param == "test_broker":
        return Backend("test_broker", "localhost:9092", timeout=30.0)
    servers = os.environ.get(KAFKA_ENV)
    if not servers:
        pytest.skip(f"{KAFKA_ENV} not set: real-Kafka variant skipped")
    return Backend("real_kafka", servers, timeout=60.0)


@pytest.fixture
def spans() -> InMemorySpanExporter:
    return InMemorySpanExporter()


@pytest.fixture
def tracer_provider(spans: InMemorySpanExporter) -> TracerProvider:
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(spans))
    return provider


async def eventually(condition: Callable[[], bool], timeout: float, what: str) -> None:
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.01)
    assert condition(), what


# Published after a scenario's messages: once a handler saw it, whatever it was still to
# receive before it has arrived (same key, so same partition and order), so "nothing more
# arrives" is checked without waiting for a quiet period a busy machine can outrun.
SENTINEL = b'{"sentinel": true}'


class Recorder:
    """A handler that remembers what it saw, and can be told to fail (never on the sentinel)."""

    def __init__(self, fail_times: int = 0, error: type[Exception] = RuntimeError) -> None:
        self.fail_times = fail_times
        self.error = error
        self.messages: list[Message] = []
        self.trace_ids: list[int] = []
        self.sentinels = 0

    async def __call__(self, message: Message) -> None:
        if message.value == SENTINEL:
            self.sentinels += 1
            return
        self.messages.append(message)
        self.trace_ids.append(trace.get_current_span().get_span_context().trace_id)
        if len(self.messages) <= self.fail_times:
            raise self.error(f"boom #{len(self.messages)}\nsecond line never leaves")

    @property
    def calls(self) -> int:
        return len(self.messages)


def message(topic: str, key: str = "patient-42", headers: dict[str, str] | None = None) -> Message:
    return Message(topic=topic, key=key, value=BODY, headers=headers or {})


async def settle(
    bus: KafkaBus, backend: Backend, topic: str, *recorders: Recorder, key: str = "patient-42"
) -> None:
    """Publish the sentinel on `topic` and wait until every recorder has seen it."""
    await bus.publish(Message(topic=topic, key=key, value=SENTINEL, headers={}))
    await eventually(
        lambda: all(r.sentinels == 1 for r in recorders), backend.timeout, "sentinel arrived"
    )


async def test_publish_carries_topic_key_body_headers_and_trace(
    backend: Backend, tracer_provider: TracerProvider, spans: InMemorySpanExporter
) -> None:
    topic = backend.topic("publish")
    bus = backend.bus(tracer_provider)
    probe = Recorder()
    bus.subscribe([topic], backend.group("probe"), probe)

    async with backend.running(bus):
        with tracer_provider.get_tracer("test").start_as_current_span("command") as span:
            await bus.publish(message(topic, headers={"x-structure-id": "s-1"}))
            publish_trace_id = span.get_span_context().trace_id
        await eventually(lambda: probe.calls == 1, backend.timeout, "probe got the message")

    received = probe.messages[0]
    assert received.topic == topic
    assert received.key == "patient-42"
    assert received.value == BODY
    assert isinstance(received.value, bytes)
    assert isinstance(received.offset, int)
    assert received.headers["x-structure-id"] == "s-1"
    assert not RESERVED_HEADERS & received.headers.keys()
    traceparent = received.headers["traceparent"]
    assert traceparent.split("-")[1] == format(publish_trace_id, "032x")
    # The handler runs inside the trace of the publishing span, carried by the header only.
    assert probe.trace_ids == [publish_trace_id]
    consumer_spans = [
        s
        for s in spans.get_finished_spans()
        if s.kind is trace.SpanKind.CONSUMER and s.context.trace_id == publish_trace_id
    ]
    assert consumer_spans, "a consumer span joined the publisher's trace"


async def test_each_group_gets_the_message_once(backend: Backend) -> None:
    topic = backend.topic("groups")
    bus = backend.bus()
    timeline, dmp_connector = Recorder(), Recorder()
    bus.subscribe([topic], backend.group("timeline"), timeline)
    bus.subscribe([topic], backend.group("dmp-connector"), dmp_connector)

    async with backend.running(bus):
        await bus.publish(message(topic))
        await eventually(
            lambda: timeline.calls == 1 and dmp_connector.calls == 1,
            backend.timeout,
            "both groups got the message",
        )
        await settle(bus, backend, topic, timeline, dmp_connector)

    assert timeline.calls == 1
    assert dmp_connector.calls == 1


async def test_subscribers_of_one_group_share_the_message() -> None:
    # In-memory only: on a real Kafka a rebalance between two members of a group may
    # legitimately deliver the message twice (at-least-once), so "exactly one" is not a contract.
    bus = KafkaBus("localhost:9092", client_id="wiring-test", retry=FAST_RETRY)
    first, second = Recorder(), Recorder()
    bus.subscribe(["bsante.patient.v1"], "timeline", first)
    bus.subscribe(["bsante.patient.v1"], "timeline", second)

    async with _in_memory(bus):
        await bus.publish(message("bsante.patient.v1"))

    assert first.calls + second.calls == 1


async def test_transient_failure_is_retried_without_dead_letter(backend: Backend) -> None:
    topic = backend.topic("transient")
    bus = backend.bus()
    handler = Recorder(fail_times=2)
    dead = Recorder()
    bus.subscribe([topic], backend.group("worker"), handler)
    bus.subscribe([dlq(topic)], backend.group("dlq-probe"), dead)

    async with backend.running(bus):
        await bus.publish(message(topic))
        await eventually(lambda: handler.calls == 3, backend.timeout, "handler retried")
        # Handled in order: past the sentinel, the message was neither retried nor
        # dead-lettered any more, and a dead letter would reach the probe before its sentinel.
        await settle(bus, backend, topic, handler)
        await settle(bus, backend, dlq(topic), dead)

    assert handler.calls == 3
    assert dead.calls == 0


async def test_persistent_failure_goes_to_dlq_after_max_attempts(backend: Backend) -> None:
    topic = backend.topic("persistent")
    bus = backend.bus()
    handler = Recorder(fail_times=10**6, error=ValueError)
    dead = Recorder()
    bus.subscribe([topic], backend.group("worker"), handler)
    bus.subscribe([dlq(topic)], backend.group("dlq-probe"), dead)

    async with backend.running(bus):
        await bus.publish(message(topic, key="patient-7", headers={"x-structure-id": "s-1"}))
        await eventually(lambda: dead.calls == 1, backend.timeout, "message dead-lettered")
        await settle(bus, backend, topic, handler, key="patient-7")
        await settle(bus, backend, dlq(topic), dead, key="patient-7")

    assert handler.calls == FAST_RETRY.max_attempts
    assert dead.calls == 1
    dead_letter = dead.messages[0]
    assert dead_letter.topic == dlq(topic)
    assert dead_letter.key == "patient-7"
    assert dead_letter.value == BODY
    assert dead_letter.headers[H_ERROR_TYPE] == "ValueError"
    assert dead_letter.headers[H_ERROR_MESSAGE] == "boom #3"
    assert dead_letter.headers[H_ORIGINAL_TOPIC] == topic
    assert dead_letter.headers[H_ATTEMPTS] == str(FAST_RETRY.max_attempts)
    assert dead_letter.headers[H_CONSUMER_GROUP] == backend.group("worker")
    assert dead_letter.headers["x-structure-id"] == "s-1"


async def test_poison_message_goes_to_dlq_at_once(backend: Backend) -> None:
    topic = backend.topic("poison")
    bus = backend.bus()
    handler = Recorder(fail_times=10**6, error=PoisonMessage)
    dead = Recorder()
    bus.subscribe([topic], backend.group("worker"), handler)
    bus.subscribe([dlq(topic)], backend.group("dlq-probe"), dead)

    async with backend.running(bus):
        await bus.publish(message(topic))
        await eventually(lambda: dead.calls == 1, backend.timeout, "message dead-lettered")
        await settle(bus, backend, topic, handler)
        await settle(bus, backend, dlq(topic), dead)

    assert handler.calls == 1
    assert dead.calls == 1
    assert dead.messages[0].headers[H_ERROR_TYPE] == "PoisonMessage"
    assert dead.messages[0].headers[H_ATTEMPTS] == "1"


# FastStream wiring that only the in-memory broker can show directly.


def test_subscribers_commit_after_the_handler() -> None:
    bus = KafkaBus("localhost:9092", client_id="wiring-test")
    bus.subscribe(["bsante.patient.v1"], "timeline", Recorder())
    (registered,) = bus.broker.subscribers
    subscriber = cast("LogicSubscriber[Any]", registered)

    assert subscriber.ack_policy is AckPolicy.NACK_ON_ERROR
    assert subscriber._connection_args["enable_auto_commit"] is False
    assert subscriber._connection_args["auto_offset_reset"] == "earliest"
    assert subscriber.group_id == "timeline"


def test_producer_is_idempotent_with_acks_all() -> None:
    bus = KafkaBus("localhost:9092", client_id="wiring-test")
    producer_args = bus.broker._connection_kwargs
    assert producer_args["enable_idempotence"] is True
    assert producer_args["acks"] == "all"


async def test_handled_message_is_acked(monkeypatch: pytest.MonkeyPatch) -> None:
    outcomes: list[str] = []

    async def ack(self: KafkaAckableMessage) -> None:
        outcomes.append("ack")

    async def nack(self: KafkaAckableMessage) -> None:
        outcomes.append("nack")

    monkeypatch.setattr(KafkaAckableMessage, "ack", ack)
    monkeypatch.setattr(KafkaAckableMessage, "nack", nack)
    bus = KafkaBus("localhost:9092", client_id="wiring-test", retry=FAST_RETRY)
    bus.subscribe(["bsante.patient.v1"], "timeline", Recorder(fail_times=1))

    async with _in_memory(bus):
        await bus.publish(message("bsante.patient.v1"))

    assert outcomes == ["ack"]


async def test_unwritable_dlq_leaves_the_message_uncommitted(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    outcomes: list[str] = []

    async def ack(self: KafkaAckableMessage) -> None:
        outcomes.append("ack")

    async def nack(self: KafkaAckableMessage) -> None:
        outcomes.append("nack")

    monkeypatch.setattr(KafkaAckableMessage, "ack", ack)
    monkeypatch.setattr(KafkaAckableMessage, "nack", nack)
    bus = KafkaBus("localhost:9092", client_id="wiring-test", retry=FAST_RETRY)
    handler = Recorder(fail_times=10**6)
    bus.subscribe(["bsante.patient.v1"], "timeline", handler)
    real_publish = bus.publish

    async def publish(msg: Message) -> None:
        if msg.topic.endswith(".dlq"):
            raise ConnectionError("DLQ unwritable")
        await real_publish(msg)

    monkeypatch.setattr(bus, "publish", publish)

    async with _in_memory(bus):
        # TestKafkaBroker runs the consumer inline and re-raises what escaped deliver().
        with pytest.raises(ConnectionError):
            await bus.publish(message("bsante.patient.v1"))

    assert handler.calls == FAST_RETRY.max_attempts
    assert outcomes == ["nack"]


async def test_reserved_header_is_refused() -> None:
    bus = KafkaBus("localhost:9092", client_id="wiring-test")
    with pytest.raises(ValueError, match="correlation_id"):
        await bus.publish(message("bsante.patient.v1", headers={"correlation_id": "c-1"}))


async def test_ping_is_false_and_quiet_when_not_connected() -> None:
    bus = KafkaBus("localhost:1", client_id="wiring-test")
    assert await bus.ping() is False


async def test_ping_is_true_on_a_running_broker(backend: Backend) -> None:
    bus = backend.bus()
    async with backend.running(bus):
        assert await bus.ping() is True


def test_subscribe_after_start_is_refused() -> None:
    bus = KafkaBus("localhost:9092", client_id="wiring-test")
    bus._started = True
    with pytest.raises(RuntimeError):
        bus.subscribe(["bsante.patient.v1"], "timeline", Recorder())


async def test_undecodable_key_does_not_block_the_partition() -> None:
    bus = KafkaBus("localhost:9092", client_id="wiring-test", retry=FAST_RETRY)
    handler = Recorder()
    bus.subscribe(["bsante.patient.v1"], "timeline", handler)

    async with _in_memory(bus):
        # A foreign producer's key: converting it must not raise, or the record loops forever.
        await bus.broker.publish(BODY, "bsante.patient.v1", key=b"\xffpatient")

    assert [m.key for m in handler.messages] == ["\\xffpatient"]


async def test_publish_many_sends_a_batch_in_order_with_each_trace(
    backend: Backend, tracer_provider: TracerProvider
) -> None:
    topic = backend.topic("batch")
    bus = backend.bus(tracer_provider)
    probe = Recorder()
    bus.subscribe([topic], backend.group("batch"), probe)
    tracer = tracer_provider.get_tracer("test")
    batch: list[Message] = []
    trace_ids: list[int] = []
    for n in range(4):
        # Each message carries the trace of the write that raised it, as outbox rows do.
        with tracer.start_as_current_span(f"write {n}") as span:
            carrier: dict[str, str] = {"n": str(n)}
            propagate.inject(carrier)
            trace_ids.append(span.get_span_context().trace_id)
        batch.append(Message(topic, f"k{n % 2}", BODY, carrier))
    # Refused before sending: fails alone, and the later message of its key is not sent.
    batch.insert(1, Message(topic, "k1", BODY, {"reply_to": "x"}))

    async with backend.running(bus):
        outcomes = await bus.publish_many(batch)
        await eventually(lambda: probe.calls == 2, backend.timeout, "the batch was delivered")
        await settle(bus, backend, topic, probe, key="k1")  # nothing else comes after them

    # [n0 k0, refused k1, n1 k1, n2 k0, n3 k1]: the k1 messages after the refusal are held.
    assert outcomes[0] is None and outcomes[3] is None
    assert isinstance(outcomes[1], ValueError)
    assert outcomes[2] is outcomes[1] and outcomes[4] is outcomes[1]
    assert [m.headers["n"] for m in probe.messages] == ["0", "2"]
    for received in probe.messages:
        expected = trace_ids[int(received.headers["n"])]
        assert received.headers["traceparent"].split("-")[1] == format(expected, "032x")
