"""Fixtures of the forms tests: the embedded platform (tests/kit.py) and a forms helper."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from forms_kit import Forms  # type: ignore[import-not-found]
from kit import Platform, eventually, platform  # type: ignore[import-not-found]  # noqa: F401


@pytest.fixture
async def forms(platform: Platform) -> AsyncIterator[Forms]:  # noqa: F811
    yield Forms(platform)

    # Let the relays and consumers go idle before the platform stops. On Python 3.11 a
    # consumer cancelled while woken inside asyncio.wait_for may swallow the cancellation
    # (CPython gh-86296), and the shutdown then hangs; see the report on the embedded bus.
    async def drained() -> bool:
        for svc in platform.services.values():
            if await svc.store.outbox_pending(limit=1):
                return False
        return True

    await eventually(drained)
    await asyncio.sleep(0.6)
