"""Fixtures of identity's tests: the embedded platform (from tests/kit.py) and a bare store."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from identity_kit import FakeClock  # type: ignore[import-not-found]
from kit import Platform, platform  # type: ignore[import-not-found]  # noqa: F401

from bsante.chassis.bus.factory import bus_from_url
from bsante.chassis.messaging import Messaging
from bsante.chassis.store.sqlite import SqliteStore


@pytest.fixture
async def messaging(tmp_path: Path) -> AsyncIterator[Messaging]:
    """Identity's store on a real SQLite file; the bus is never started (outbox only)."""
    store = SqliteStore(tmp_path / "identity.db")
    await store.start()
    try:
        yield Messaging("identity", store, bus_from_url(f"embedded://{tmp_path}", client_id="t"))
    finally:
        await store.close()


@pytest.fixture
def clock(platform: Platform) -> FakeClock:  # noqa: F811
    """Replace the platform identity's clock (sessions and lockouts read it)."""
    fake = FakeClock()
    platform.services["identity"].app.state.clock = fake
    return fake
