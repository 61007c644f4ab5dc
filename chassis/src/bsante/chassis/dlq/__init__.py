"""Dead letters: list them, and replay them to the consumer group that gave up, after a fix.

A replay republishes the original message (key, value, original headers) to its original
topic with `x-replay-for-group` naming that group; every other group's delivery acknowledges
it without running its handler (`bus.delivery.deliver`). The target group's inbox makes the
replay idempotent: replaying twice, or replaying an event the group handled meanwhile, has
one effect.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from bsante.chassis.bus import EventBus, Message
from bsante.chassis.bus.delivery import (
    H_ATTEMPTS,
    H_CONSUMER_GROUP,
    H_ERROR_MESSAGE,
    H_ERROR_TYPE,
    H_ORIGINAL_OFFSET,
    H_ORIGINAL_TOPIC,
    H_REPLAY_FOR_GROUP,
    H_REPLAY_OF,
)
from bsante.contracts.topics import dlq

# What the dead-letter step added; a replay sends the message as it was first published.
DEAD_LETTER_HEADERS = frozenset(
    {
        H_ERROR_TYPE,
        H_ERROR_MESSAGE,
        H_ORIGINAL_TOPIC,
        H_ORIGINAL_OFFSET,
        H_ATTEMPTS,
        H_CONSUMER_GROUP,
    }
)


class UnknownDeadLetter(LookupError):
    """No dead letter of that event for that group on that topic: nothing is replayed."""


class DeadLetterSource(Protocol):
    async def read(self, topic: str) -> list[Message]:
        """Every message of a topic, oldest first."""
        ...


def consumer_group(service: str) -> str:
    """A service's consumer group (`Service.consumer_group`)."""
    return f"bsante.{service}"


@dataclass(frozen=True)
class DeadLetter:
    message: Message

    @property
    def group(self) -> str:
        return self.message.headers.get(H_CONSUMER_GROUP, "")

    @property
    def original_topic(self) -> str:
        return self.message.headers.get(H_ORIGINAL_TOPIC) or self.message.topic.removesuffix(".dlq")

    @property
    def envelope(self) -> dict[str, Any]:
        """The envelope's fields, read leniently: a dead letter may be a malformed message."""
        try:
            raw = json.loads(self.message.value)
        except ValueError:
            return {}
        return raw if isinstance(raw, dict) else {}

    @property
    def event_id(self) -> str | None:
        value = self.envelope.get("event_id")
        return str(value) if value is not None else None

    def summary(self) -> dict[str, Any]:
        """What ops need to decide, without the payload (it may name a patient)."""
        envelope, headers = self.envelope, self.message.headers
        return {
            "event_id": self.event_id,
            "event_type": envelope.get("event_type"),
            "schema_version": envelope.get("schema_version"),
            "subject_id": envelope.get("subject_id"),
            "structure_id": envelope.get("structure_id"),
            "correlation_id": envelope.get("correlation_id"),
            "group": self.group,
            "original_topic": self.original_topic,
            "original_offset": headers.get(H_ORIGINAL_OFFSET),
            "dlq_offset": self.message.offset,
            "attempts": headers.get(H_ATTEMPTS),
            "error_type": headers.get(H_ERROR_TYPE),
            "error_message": headers.get(H_ERROR_MESSAGE),
            "replay_of": headers.get(H_REPLAY_OF),
        }

    def replay_message(self) -> Message:
        headers = {k: v for k, v in self.message.headers.items() if k not in DEAD_LETTER_HEADERS}
        headers[H_REPLAY_FOR_GROUP] = self.group
        headers[H_REPLAY_OF] = f"{self.message.topic}@{self.message.offset}"
        return Message(self.original_topic, self.message.key, self.message.value, headers)


async def dead_letters(source: DeadLetterSource, topic: str, group: str) -> list[DeadLetter]:
    """The dead letters `group` left on `topic` (read from `<topic>.dlq`), oldest first."""
    return [
        letter
        for letter in (DeadLetter(m) for m in await source.read(dlq(topic)))
        if letter.group == group
    ]


def select(letters: Sequence[DeadLetter], event_id: str | None) -> list[DeadLetter]:
    """One dead letter per event (the latest), all of them or only `event_id`'s."""
    latest: dict[str, DeadLetter] = {}
    for letter in letters:
        # A malformed message has no event id: its dead-letter offset stands for it.
        latest[letter.event_id or f"offset:{letter.message.offset}"] = letter
    chosen = [letter for key, letter in latest.items() if event_id is None or key == event_id]
    if event_id is not None and not chosen:
        raise UnknownDeadLetter(f"no dead letter of event {event_id} for this group and topic")
    return chosen


async def replay(bus: EventBus, letters: Sequence[DeadLetter]) -> int:
    """Republish each dead letter to its original topic, for its group only."""
    for letter in letters:
        await bus.publish(letter.replay_message())
    return len(letters)
