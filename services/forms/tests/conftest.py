"""Fixtures of the forms tests: the forms service alone, with a fake patient directory."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from forms_kit import Forms, forms_alone  # type: ignore[import-not-found]


@pytest.fixture
async def forms(tmp_path: Path) -> AsyncIterator[Forms]:
    async with forms_alone(tmp_path) as kit:
        yield kit
