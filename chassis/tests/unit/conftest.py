"""Fixtures of the chassis unit tests."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
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


@pytest.fixture
def writer_begins(monkeypatch: pytest.MonkeyPatch) -> Callable[[SqliteStore], list[str]]:
    """`writer_begins(store)`: a list that grows each time `store` takes its writer (its lock,
    then BEGIN IMMEDIATE through aiosqlite), as opposed to committing on its write thread."""

    def spy(store: SqliteStore) -> list[str]:
        begun: list[str] = []
        original = store._begin

        async def spied() -> object:
            begun.append("writer")
            return await original()

        monkeypatch.setattr(store, "_begin", spied)
        return begun

    return spy
