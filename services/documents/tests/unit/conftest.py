"""Fixtures of the documents toolkit tests: the CI-SIS kit (skipped when absent), one validator."""

from __future__ import annotations

import pytest

from bsante.documents.conformance import (
    CisisKit,
    ConformanceValidator,
    KitNotFound,
    shared_validator,
)


@pytest.fixture(scope="session")
def kit() -> CisisKit:
    try:
        return CisisKit.locate()
    except KitNotFound as exc:
        pytest.skip(f"CI-SIS test kit absent ({exc}); set BSANTE_CISIS_KIT")


@pytest.fixture(scope="session")
def validator(kit: CisisKit) -> ConformanceValidator:
    """One validator for the session: structurationMinimale compiles once (tens of seconds).

    The generated stylesheet is kept in the default cache directory between sessions. It is the
    process-wide validator `validate_for_signing` uses, so that one compiles nothing more.
    """
    validator = shared_validator(kit)
    assert validator is not None
    validator.prepare(kit.structuration_minimale)
    return validator
