"""Fixtures of the documents service tests: the service alone, with in-memory peers."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from documents_kit import Documents, documents_alone  # type: ignore[import-not-found]


@pytest.fixture
async def documents(tmp_path: Path) -> AsyncIterator[Documents]:
    async with documents_alone(tmp_path) as kit:
        yield kit
