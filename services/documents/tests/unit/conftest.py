"""Fixtures of the documents toolkit tests: the CI-SIS kit (skipped when absent), one validator."""

from __future__ import annotations

import pytest

from bsante.documents.conformance import CisisKit, ConformanceValidator, KitNotFound


@pytest.fixture(scope="session")
def kit() -> CisisKit:
    try:
        return CisisKit.locate()
    except KitNotFound as exc:
        pytest.skip(f"CI-SIS test kit absent ({exc}); set BSANTE_CISIS_KIT")


@pytest.fixture(scope="session")
def validator(kit: CisisKit) -> ConformanceValidator:
    """One validator for the session: structurationMinimale compiles once (tens of seconds).

    The generated stylesheet is kept in the default cache directory between sessions.
    """
    validator = ConformanceValidator(kit)
    validator.prepare(kit.structuration_minimale)
    return validator
