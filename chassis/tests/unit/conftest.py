"""Fixtures of the chassis unit tests."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bsante.chassis.store.sqlite import SqliteStore


@pytest.fixture
async def sqlite_store(tmp_path: Path) -> AsyncIterator[SqliteStore]:
    """A started SQLite store on a fresh file, closed after the test."""
    adapter = SqliteStore(tmp_path / "store.db")
    await adapter.start()
    try:
        yield adapter
    finally:
        await adapter.close()
