"""Annuaire Santé import: 100 000 synthetic personne-activité lines into a real SQLite store.

Target (issue #3): under 60 s on the development machine. One round: the import is a
minute-scale operation, and each round needs a fresh database.
"""

from __future__ import annotations

import asyncio
import itertools
from pathlib import Path

import pytest

from bsante.chassis.bus.factory import bus_from_url
from bsante.chassis.messaging import Messaging
from bsante.chassis.store.sqlite import SqliteStore
from bsante.identity.directory.annuaire import (
    Rejection,
    parse_personne_activite,
    write_synthetic_personne_activite,
)
from bsante.identity.directory.importer import ImportReport, import_annuaire

LINES = 100_000


@pytest.fixture(scope="module")
def extraction(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("annuaire") / "PS_LibreAcces_Personne_activite.txt"
    with path.open("wb") as out:
        write_synthetic_personne_activite(out, LINES, seed=2026)
    return path


async def _import(path: Path, db: Path) -> ImportReport:
    store = SqliteStore(db)
    await store.start()
    try:
        messaging = Messaging(
            "identity", store, bus_from_url(f"embedded://{db.parent}", client_id="b")
        )
        return await import_annuaire(messaging, path)
    finally:
        await store.close()


def test_import_100k_lines(benchmark, extraction: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    rounds = itertools.count()

    def run() -> ImportReport:
        return asyncio.run(_import(extraction, tmp_path / f"identity-{next(rounds)}.db"))

    report = benchmark.pedantic(run, rounds=1, iterations=1)
    assert report.accepted == LINES and report.rejected == 0
    assert benchmark.stats.stats.max < 60, f"{benchmark.stats.stats.max:.1f} s for {LINES} lines"


def test_parse_100k_lines(benchmark, extraction: Path) -> None:  # type: ignore[no-untyped-def]
    """Parsing alone (no store): the part of the import that runs on the event loop's thread."""

    def run() -> int:
        with extraction.open("rb") as source:
            return sum(1 for r in parse_personne_activite(source) if not isinstance(r, Rejection))

    assert benchmark.pedantic(run, rounds=3, iterations=1) == LINES
