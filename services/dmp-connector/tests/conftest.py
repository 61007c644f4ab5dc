"""Fixtures of the DMP connector tests: a demo PKI, the simulator process, the connector."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from dmp_kit import (  # type: ignore[import-not-found]
    DATASET,
    Connector,
    Simulator,
    connector,
    simulator,
)

from bsante.dmp_connector import pki
from bsante.dmp_connector.standards import StandardsNotFound, ihe_root


@pytest.fixture(scope="session")
def demo_pki(tmp_path_factory: pytest.TempPathFactory) -> pki.Pki:
    return pki.generate(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="session")
def ihe() -> Path:
    try:
        return ihe_root()
    except StandardsNotFound as error:
        pytest.skip(f"IHE schemas not found: {error}")


@pytest.fixture(scope="session")
def shared_dmp(demo_pki: pki.Pki, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Simulator]:
    """One simulator process for the session (tests use fresh document ids)."""
    with simulator(demo_pki.ca_cert, DATASET, tmp_path_factory.mktemp("sim")) as sim:
        yield sim


@pytest.fixture
def dmp(shared_dmp: Simulator) -> Iterator[Simulator]:
    yield shared_dmp
    shared_dmp.clear_faults()


@pytest.fixture
async def conn(tmp_path: Path, dmp: Simulator, demo_pki: pki.Pki) -> AsyncIterator[Connector]:
    async with connector(tmp_path, dmp.url, demo_pki) as kit:
        yield kit
