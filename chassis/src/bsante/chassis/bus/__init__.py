"""Event bus port: publish messages to topics, consume them per consumer group.

Adapters: `embedded` (durable log on SQLite, one machine) and `kafka` (FastStream).
Both give the same guarantees: at-least-once delivery per consumer group, offsets committed
only after the handler returned, bounded retries with backoff, then `<topic>.dlq`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from datetime import datetime


@dataclass(frozen=True)
class Message:
    topic: str
    key: str
    value: bytes
    headers: dict[str, str] = field(default_factory=dict)
    offset: int | None = None


Handler = Callable[[Message], Awaitable[None]]
# Opens a scope around several handler calls whose effects commit together (one store
# transaction for a batch of messages); raising out of it undoes the whole batch.
BatchScope = Callable[[], AbstractAsyncContextManager[None]]


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how patiently a failing message is retried before the DLQ."""

    max_attempts: int = 5
    initial_backoff: float = 0.2
    multiplier: float = 2.0
    max_backoff: float = 10.0

    def backoff(self, attempt: int) -> float:
        """Delay before attempt `attempt + 1` (attempt counts from 1)."""
        return float(min(self.max_backoff, self.initial_backoff * self.multiplier ** (attempt - 1)))


class EventBus(ABC):
    """The port. Subscriptions are declared before `start`."""

    retry: RetryPolicy

    @abstractmethod
    async def start(self) -> None: ...

    @abstractmethod
    async def stop(self) -> None: ...

    @abstractmethod
    async def ping(self) -> bool:
        """True when the transport is reachable (readiness)."""

    @abstractmethod
    async def publish(self, message: Message) -> None:
        """Durably append the message; returns once the transport acknowledged it."""

    async def publish_many(self, messages: Sequence[Message]) -> list[Exception | None]:
        """Publish a batch in order; one outcome per message: None once acknowledged, else
        the error of that message. Raises when the transport failed as a whole (nothing of
        the batch may be taken as published).

        Within a key, order holds: after a message fails, the later messages of its key are
        not attempted (their outcome is that error). This default publishes one at a time;
        adapters batch (embedded: one transaction; Kafka: send all, then await the acks).
        """
        outcomes: list[Exception | None] = []
        failed: dict[str, Exception] = {}
        for message in messages:
            if message.key in failed:
                outcomes.append(failed[message.key])
                continue
            try:
                await self.publish(message)
            except Exception as error:
                failed[message.key] = error
                outcomes.append(error)
            else:
                outcomes.append(None)
        return outcomes

    async def purge(self, older_than: datetime) -> int:
        """Drop what the transport keeps that is no longer needed (embedded log); returns the
        number of entries dropped. Kafka keeps its own retention (`retention.ms`): nothing."""
        return 0

    @abstractmethod
    def subscribe(
        self,
        topics: Sequence[str],
        group: str,
        handler: Handler,
        *,
        batch: BatchScope | None = None,
    ) -> None:
        """Deliver every message of `topics` to `handler` once per consumer `group`.

        An adapter that reads messages in batches may run the handlers of a batch inside
        `batch()`, then commit the offset once; if the scope raises, it delivers the batch's
        messages again one by one (with retries and the DLQ), as without it.
        """
