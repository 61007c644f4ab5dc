"""Fixtures of the forms tests: the embedded platform (tests/kit.py) and a forms helper."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from forms_kit import Forms  # type: ignore[import-not-found]
from kit import Platform, eventually, platform  # type: ignore[import-not-found]  # noqa: F401

from bsante.chassis.bus.embedded import EmbeddedBus


@pytest.fixture
async def forms(platform: Platform) -> AsyncIterator[Forms]:  # noqa: F811
    yield Forms(platform)

    # Let the relays and consumers go idle before the platform stops: every outbox row sent
    # and every consumer group's committed offset at the end of its topics (checked again after
    # the consumers, since a handler may have raised new events meanwhile).
    async def outboxes_sent() -> bool:
        for svc in platform.services.values():
            if await svc.store.outbox_pending(limit=1):
                return False
        return True

    async def consumers_caught_up() -> bool:
        for svc in platform.services.values():
            if not isinstance(svc.bus, EmbeddedBus) or svc.events is None:
                continue
            for topic in svc.events.topics:
                if await svc.bus.read(
                    topic, after=await svc.bus.committed(svc.consumer_group, topic)
                ):
                    return False
        return True

    async def idle() -> bool:
        return await outboxes_sent() and await consumers_caught_up() and await outboxes_sent()

    await eventually(idle)
