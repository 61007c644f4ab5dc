"""Fixtures of the mss-connector tests: the loopback operator, and the connector beside it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from mss_kit import Connector, connector, running_operator  # type: ignore[import-not-found]

from bsante.mss_connector import dovecot
from bsante.mss_connector.simulator import Operator


@pytest.fixture
async def operator(tmp_path: Path) -> AsyncIterator[Operator]:
    async with running_operator(tmp_path / "operator", with_imap=dovecot.available()) as op:
        yield op


@pytest.fixture
async def mss(tmp_path: Path, operator: Operator) -> AsyncIterator[Connector]:
    async with connector(tmp_path / "connector", operator) as kit:
        yield kit
