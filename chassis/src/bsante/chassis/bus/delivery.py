"""Retry-then-dead-letter delivery shared by every bus adapter."""

from __future__ import annotations

import asyncio
import traceback
from collections.abc import Awaitable, Callable

import structlog

from bsante.chassis.bus import Handler, Message, RetryPolicy
from bsante.contracts.topics import dlq

log = structlog.get_logger(__name__)

# Header names carried by a dead-lettered message.
H_ERROR_TYPE = "x-error-type"
H_ERROR_MESSAGE = "x-error-message"
H_ORIGINAL_TOPIC = "x-original-topic"
H_ORIGINAL_OFFSET = "x-original-offset"
H_ATTEMPTS = "x-attempts"
H_CONSUMER_GROUP = "x-consumer-group"
# Set on a dead letter replayed to its original topic: only that consumer group handles it.
H_REPLAY_FOR_GROUP = "x-replay-for-group"
H_REPLAY_OF = "x-replay-of"


class PoisonMessage(Exception):  # noqa: N818  (a kind of message, not an error state)
    """Raised by a handler for a message that no retry can fix: straight to the DLQ."""


def dead_letter(message: Message, group: str, error: BaseException, attempts: int) -> Message:
    headers = dict(message.headers)
    headers.update(
        {
            H_ERROR_TYPE: type(error).__name__,
            # Only the first line: a traceback may quote payload content.
            H_ERROR_MESSAGE: (str(error).splitlines() or [""])[0][:500],
            H_ORIGINAL_TOPIC: message.topic,
            H_ORIGINAL_OFFSET: "" if message.offset is None else str(message.offset),
            H_ATTEMPTS: str(attempts),
            H_CONSUMER_GROUP: group,
        }
    )
    return Message(topic=dlq(message.topic), key=message.key, value=message.value, headers=headers)


def for_another_group(message: Message, group: str) -> bool:
    """A replayed dead letter names the one consumer group it is for."""
    target = message.headers.get(H_REPLAY_FOR_GROUP)
    return target is not None and target != group


async def deliver(
    message: Message,
    group: str,
    handler: Handler,
    policy: RetryPolicy,
    publish: Callable[[Message], Awaitable[None]],
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> None:
    """Run the handler with bounded retries; on final failure publish to the DLQ.

    A replayed dead letter (`x-replay-for-group`) reaches only the group it names.

    Returns normally once the message is handled or dead-lettered: the caller may then commit
    the offset. Raises only when the DLQ itself cannot be written, so nothing is lost.
    """
    if for_another_group(message, group):
        # A replay for another group: acknowledged without running the handler.
        log.debug("replay_skipped", topic=message.topic, group=group)
        return
    attempt = 0
    while True:
        attempt += 1
        try:
            await handler(message)
            return
        except asyncio.CancelledError:
            raise
        except Exception as error:
            final = isinstance(error, PoisonMessage) or attempt >= policy.max_attempts
            log.warning(
                "handler_failed",
                topic=message.topic,
                group=group,
                offset=message.offset,
                attempt=attempt,
                error_type=type(error).__name__,
                final=final,
                where=traceback.extract_tb(error.__traceback__)[-1].name
                if error.__traceback__
                else None,
            )
            if final:
                await publish(dead_letter(message, group, error, attempt))
                log.error(
                    "message_dead_lettered", topic=message.topic, group=group, offset=message.offset
                )
                return
            await sleep(policy.backoff(attempt))
