"""DLQ replay: a dead letter goes back to the group that gave up on it, once, after a fix.

On the embedded log (with the command line as ops run it) and on the Kafka wiring through
FastStream's TestKafkaBroker.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
from faststream.kafka import TestKafkaBroker

from bsante.chassis.bus import EventBus, Message, RetryPolicy
from bsante.chassis.bus.delivery import H_REPLAY_FOR_GROUP
from bsante.chassis.bus.embedded import EmbeddedBus
from bsante.chassis.bus.kafka import KafkaBus
from bsante.chassis.dlq import UnknownDeadLetter, dead_letters, replay, select
from bsante.chassis.messaging import EventRouter, Messaging, UnitOfWork
from bsante.chassis.store.sqlite import SqliteStore
from bsante.contracts.envelope import Envelope
from bsante.contracts.events import PatientCreated
from bsante.contracts.topics import PATIENT, dlq

FAST = RetryPolicy(max_attempts=2, initial_backoff=0.001, max_backoff=0.01)


class CountingRouter(EventRouter):
    """Counts the messages its group's delivery handed over (before the inbox)."""

    dispatches = 0

    async def dispatch(self, messaging: Messaging, group: str, message: Message) -> None:
        self.dispatches += 1
        await super().dispatch(messaging, group, message)


class Consumer:
    """A service consuming PatientCreated, whose handler can be broken until a fix."""

    def __init__(self, name: str, data: Path, bus: EventBus, *, broken: bool = False) -> None:
        self.name = name
        self.group = f"bsante.{name}"
        self.broken = broken
        self.calls = 0
        self.store = SqliteStore(data / f"{name}.db")
        self.messaging = Messaging(name, self.store, bus)
        router = self.router = CountingRouter(name)

        @router.on(PatientCreated)
        async def count(uow: UnitOfWork, envelope: Envelope, payload: PatientCreated) -> None:
            self.calls += 1
            if self.broken:
                raise RuntimeError("projection bug\nsecond line")
            doc = await uow.tx.get("effects", "count")
            if doc is None:
                await uow.tx.insert("effects", "count", {"n": 1})
            else:
                await uow.tx.update("effects", "count", {"n": doc.data["n"] + 1}, doc.version)

        self.messaging.subscribe([PATIENT], self.group, router)

    async def effects(self) -> int:
        doc = await self.store.get("effects", "count")
        return int(doc.data["n"]) if doc else 0


def patient_created() -> Message:
    patient_id = uuid.uuid4()
    envelope = Envelope(
        event_type="PatientCreated",
        schema_version=1,
        producer="patient",
        structure_id="s1",
        subject_id=str(patient_id),
        correlation_id="c-1",
        payload=PatientCreated(
            patient_id=patient_id, identity_status="provisoire", created_by="u1"
        ).model_dump(mode="json"),
    )
    return Message(PATIENT, str(patient_id), envelope.to_json(), {"x-correlation-id": "c-1"})


def event_id(message: Message) -> str:
    return str(Envelope.from_json(message.value).event_id)


async def eventually(check: Callable[[], Awaitable[bool]], timeout: float = 60.0) -> None:
    async with asyncio.timeout(timeout):
        while not await check():
            await asyncio.sleep(0.02)


async def last_offset(bus: EmbeddedBus, topic: str) -> int:
    messages = await bus.read(topic)
    return messages[-1].offset or 0 if messages else 0


async def test_embedded_replay_reaches_only_the_group_that_gave_up_and_applies_once(
    tmp_path: Path,
) -> None:
    bus = EmbeddedBus(tmp_path, retry=FAST, poll_interval=0.02)
    timeline = Consumer("timeline", tmp_path, bus, broken=True)
    dmp = Consumer("dmp-connector", tmp_path, bus)
    for consumer in (timeline, dmp):
        await consumer.store.start()
    await bus.start()
    try:
        original = patient_created()
        await bus.publish(original)

        async def dead_lettered() -> bool:
            return len(await bus.read(dlq(PATIENT))) == 1 and await dmp.effects() == 1

        await eventually(dead_lettered)
        letters = await dead_letters(bus, PATIENT, timeline.group)
        assert [letter.event_id for letter in letters] == [event_id(original)]
        assert letters[0].summary()["error_message"] == "projection bug"
        assert await dead_letters(bus, PATIENT, dmp.group) == []
        with pytest.raises(UnknownDeadLetter):
            select(letters, str(uuid.uuid4()))

        timeline.broken = False  # the fix is deployed
        dmp_calls, dmp_dispatches = dmp.calls, dmp.router.dispatches
        assert await replay(bus, select(letters, event_id(original))) == 1
        replayed = (await bus.read(PATIENT))[-1]
        assert replayed.value == original.value and replayed.key == original.key
        assert replayed.headers[H_REPLAY_FOR_GROUP] == timeline.group
        assert "x-error-type" not in replayed.headers

        async def all_caught_up() -> bool:
            end = await last_offset(bus, PATIENT)
            return (
                await bus.committed(timeline.group, PATIENT) == end
                and await bus.committed(dmp.group, PATIENT) == end
            )

        await eventually(all_caught_up)
        assert await timeline.effects() == 1
        assert dmp.router.dispatches == dmp_dispatches, "other groups skip it unread"
        assert dmp.calls == dmp_calls and await dmp.effects() == 1

        # Replaying again is absorbed by the timeline's inbox.
        timeline_calls = timeline.calls
        await replay(bus, select(letters, None))
        await eventually(all_caught_up)
        assert await timeline.effects() == 1
        assert timeline.calls == timeline_calls, "recognised as a duplicate before the handler"
    finally:
        await bus.stop()
        for consumer in (timeline, dmp):
            await consumer.store.close()


class Captured:
    """A dead-letter source over messages a test captured (TestKafkaBroker keeps no log)."""

    def __init__(self) -> None:
        self.messages: list[Message] = []

    async def __call__(self, message: Message) -> None:
        self.messages.append(message)

    async def read(self, topic: str) -> list[Message]:
        return [m for m in self.messages if m.topic == topic]


async def test_kafka_replay_reaches_only_the_group_that_gave_up_and_applies_once(
    tmp_path: Path,
) -> None:
    bus = KafkaBus("localhost:9092", client_id="dlq-test", retry=FAST)
    timeline = Consumer("timeline", tmp_path, bus, broken=True)
    dmp = Consumer("dmp-connector", tmp_path, bus)
    captured = Captured()
    bus.subscribe([dlq(PATIENT)], "dlq-probe", captured)
    for consumer in (timeline, dmp):
        await consumer.store.start()
    try:
        async with TestKafkaBroker(bus.broker):
            await bus.start()
            original = patient_created()
            # TestKafkaBroker runs every group's handler inline, the DLQ write included.
            await bus.publish(original)
            assert timeline.calls == FAST.max_attempts and await dmp.effects() == 1
            letters = await dead_letters(captured, PATIENT, timeline.group)
            assert [letter.event_id for letter in letters] == [event_id(original)]

            timeline.broken = False
            dmp_calls, dmp_dispatches = dmp.calls, dmp.router.dispatches
            await replay(bus, select(letters, event_id(original)))
            assert await timeline.effects() == 1
            assert dmp.router.dispatches == dmp_dispatches, "other groups skip it unread"
            assert dmp.calls == dmp_calls and await dmp.effects() == 1

            timeline_calls = timeline.calls
            await replay(bus, select(letters, event_id(original)))
            assert await timeline.effects() == 1
            assert timeline.calls == timeline_calls, "the inbox absorbed the second replay"
            assert len(await captured.read(dlq(PATIENT))) == 1, "nothing dead-lettered again"
            await bus.stop()
    finally:
        for consumer in (timeline, dmp):
            await consumer.store.close()


def dlq_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bsante.chassis.dlq", *args],
        capture_output=True,
        text=True,
        timeout=60,
    )


async def test_the_command_line_lists_and_replays_and_refuses_an_unknown_event(
    tmp_path: Path,
) -> None:
    bus = EmbeddedBus(tmp_path, retry=FAST, poll_interval=0.02)
    timeline = Consumer("timeline", tmp_path, bus, broken=True)
    await timeline.store.start()
    await bus.start()
    where = ["--service", "timeline", "--topic", PATIENT, "--bus-url", f"embedded://{tmp_path}"]
    try:
        original = patient_created()
        await bus.publish(original)

        async def dead_lettered() -> bool:
            return len(await bus.read(dlq(PATIENT))) == 1

        await eventually(dead_lettered)
        listed = dlq_cli("list", *where)
        assert listed.returncode == 0, listed.stderr
        assert event_id(original) in listed.stdout
        assert "RuntimeError: projection bug" in listed.stdout

        shown = dlq_cli("show", *where, "--event-id", event_id(original))
        assert shown.returncode == 0, shown.stderr
        (summary,) = json.loads(shown.stdout)
        assert summary["error_type"] == "RuntimeError" and summary["group"] == "bsante.timeline"
        assert "payload" not in summary

        before = len(await bus.read(PATIENT))
        unknown = dlq_cli("replay", *where, "--event-id", str(uuid.uuid4()))
        assert unknown.returncode == 2 and "no dead letter of event" in unknown.stderr
        assert len(await bus.read(PATIENT)) == before, "nothing written"

        timeline.broken = False
        replayed = dlq_cli("replay", *where, "--event-id", event_id(original))
        assert replayed.returncode == 0, replayed.stderr

        async def applied() -> bool:
            return await timeline.effects() == 1

        await eventually(applied)
    finally:
        await bus.stop()
        await timeline.store.close()

    missing = tmp_path / "nowhere"
    absent = dlq_cli(
        "list", "--service", "timeline", "--topic", PATIENT, "--bus-url", f"embedded://{missing}"
    )
    assert absent.returncode == 2 and not missing.exists()


@pytest.mark.kafka
async def test_dead_letters_are_read_back_from_a_real_kafka() -> None:
    servers = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    if not servers:
        pytest.skip("KAFKA_BOOTSTRAP_SERVERS not set: reading a real Kafka DLQ skipped")
    from bsante.chassis.dlq.kafka import KafkaTopicReader

    topic = f"bsante.test-dlq-{uuid.uuid4().hex[:10]}.v1"
    bus = KafkaBus(servers, client_id="dlq-test", retry=FAST)
    original = patient_created()
    await bus.start()
    try:
        letter = Message(
            dlq(topic),
            original.key,
            original.value,
            {"x-consumer-group": "bsante.timeline", "x-original-topic": topic},
        )
        await bus.publish(letter)
        reader = KafkaTopicReader(servers)
        letters = await dead_letters(reader, topic, "bsante.timeline")
        assert [d.event_id for d in letters] == [event_id(original)]
        assert letters[0].replay_message().topic == topic
    finally:
        await bus.stop()
