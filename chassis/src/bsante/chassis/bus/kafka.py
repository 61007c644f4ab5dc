"""Kafka adapter of the event bus port, on a plain FastStream `KafkaBroker`."""

import inspect
from collections.abc import Sequence
from typing import Any, Final, cast

from aiokafka import ConsumerRecord
from faststream.kafka import KafkaBroker
from faststream.kafka.annotations import KafkaMessage
from faststream.kafka.opentelemetry import KafkaTelemetryMiddleware
from faststream.middlewares import AckPolicy
from faststream.security import BaseSecurity
from opentelemetry import context as otel_context
from opentelemetry import propagate
from opentelemetry.metrics import MeterProvider
from opentelemetry.trace import TracerProvider

from bsante.chassis.bus import BatchScope, EventBus, Handler, Message, RetryPolicy
from bsante.chassis.bus.delivery import deliver

# Headers FastStream writes itself on every record (or acts upon, for `reply_to`): they are
# transport metadata, not part of a `Message`, so a message may not carry its own.
RESERVED_HEADERS: Final = frozenset({"content-type", "correlation_id", "reply_to"})

PING_TIMEOUT: Final = 3.0


def _raw_body(message: Any) -> Any:
    # FastStream would JSON-decode a body without content-type; handlers want the bytes as sent.
    return message.body


def _check_headers(message: Message) -> None:
    reserved = RESERVED_HEADERS.intersection(message.headers)
    if reserved:
        raise ValueError(f"header names reserved by the Kafka transport: {sorted(reserved)}")


class KafkaBus(EventBus):
    """At-least-once per consumer group: the offset is committed only after `deliver()` returned.

    Ack policy NACK_ON_ERROR: FastStream then disables aiokafka's auto-commit, commits
    (`consumer.commit()`) when the callback returns, and when it raises (the DLQ could not be
    written) seeks the partition back to the message, which is therefore consumed again.
    """

    def __init__(
        self,
        bootstrap_servers: str,
        *,
        client_id: str,
        retry: RetryPolicy = RetryPolicy(),  # noqa: B008  (frozen dataclass, safe to share)
        tracer_provider: TracerProvider | None = None,
        meter_provider: MeterProvider | None = None,
        security: BaseSecurity | None = None,
    ) -> None:
        self.retry = retry
        self.broker = KafkaBroker(
            bootstrap_servers,
            client_id=client_id,
            security=security,
            enable_idempotence=True,
            acks="all",
            middlewares=(
                KafkaTelemetryMiddleware(
                    tracer_provider=tracer_provider, meter_provider=meter_provider
                ),
            ),
        )
        self._started = False

    async def start(self) -> None:
        await self.broker.start()
        self._started = True

    async def stop(self) -> None:
        self._started = False
        await self.broker.stop()

    async def ping(self) -> bool:
        try:
            return bool(await self.broker.ping(PING_TIMEOUT))
        except Exception:
            return False

    async def publish(self, message: Message) -> None:
        _check_headers(message)
        await self.broker.publish(
            message.value,
            message.topic,
            key=message.key.encode(),
            # A copy, so no publish middleware can write into the caller's (frozen) message.
            headers=dict(message.headers),
        )

    async def publish_many(self, messages: Sequence[Message]) -> list[Exception | None]:
        """Send the whole batch (the producer batches per partition), then await every ack.

        A message refused before sending (reserved header) fails alone and the later messages
        of its key are not sent. Once sent, a key's messages share a partition and the
        idempotent producer keeps their order; a failed ack fails that message only.
        """
        outcomes: list[Exception | None] = [None] * len(messages)
        failed: dict[str, Exception] = {}
        acks: list[tuple[int, Any]] = []
        for i, message in enumerate(messages):
            if message.key in failed:
                outcomes[i] = failed[message.key]
                continue
            # The telemetry middleware writes the current context into the record: make it the
            # one the message carries (the relay's producer span), not the relay task's.
            token = otel_context.attach(propagate.extract(dict(message.headers)))
            try:
                _check_headers(message)
                ack = await self.broker.publish(
                    message.value,
                    message.topic,
                    key=message.key.encode(),
                    headers=dict(message.headers),
                    no_confirm=True,
                )
            except Exception as error:
                failed[message.key] = error
                outcomes[i] = error
                continue
            finally:
                otel_context.detach(token)
            acks.append((i, ack))
        for i, ack in acks:
            try:
                if inspect.isawaitable(ack):  # TestKafkaBroker delivers inline, returns None
                    await ack
            except Exception as error:
                outcomes[i] = error
        return outcomes

    def subscribe(
        self,
        topics: Sequence[str],
        group: str,
        handler: Handler,
        *,
        batch: BatchScope | None = None,  # records are handled one by one here
    ) -> None:
        if self._started:
            raise RuntimeError("subscribe before start: a running broker ignores new subscribers")

        async def consume(record: KafkaMessage) -> None:
            # A non-batch subscriber: one record per message.
            raw = cast("ConsumerRecord[bytes, bytes]", record.raw_message)
            message = Message(
                topic=raw.topic,
                # Never raise here: the record would be sought back and fail forever.
                key=raw.key.decode(errors="backslashreplace") if raw.key is not None else "",
                value=record.body,
                headers={k: v for k, v in record.headers.items() if k not in RESERVED_HEADERS},
                offset=raw.offset,
            )
            await deliver(message, group, handler, self.retry, self.publish)

        subscriber = self.broker.subscriber(
            *topics,
            group_id=group,
            ack_policy=AckPolicy.NACK_ON_ERROR,
            # A group that joins late still sees what was published before it first ran.
            auto_offset_reset="earliest",
            decoder=_raw_body,
            no_reply=True,
            title=f"{','.join(topics)}:{group}",
        )
        subscriber(consume)
