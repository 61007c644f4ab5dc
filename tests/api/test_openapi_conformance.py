"""The merged OpenAPI document equals the behaviour: schemathesis finds nothing undocumented.

Examples and coverage phases over every operation, as the demo médecin with the acting
structure pinned, against the embedded platform started as users start it. The longer
fuzzing and stateful campaign for every role is `make fuzz`.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.timeout(300)
def test_schemathesis_finds_no_undocumented_status_content_type_or_schema() -> None:
    result = subprocess.run(
        [
            sys.executable,
            str(ROOT / "tools" / "api_conformance.py"),
            "--roles",
            "medecin",
            "--phases",
            "examples,coverage",
            "--max-examples",
            "20",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    report = result.stdout + result.stderr
    assert result.returncode == 0, report[-15_000:]
    assert "Tested:" in report  # schemathesis ran, and tested operations
    summary = next(line for line in report.splitlines() if line.startswith("medecin "))
    assert "phases: examples,coverage" in summary, summary
    assert "server errors: 0 | conformance failures: 0" in summary, summary
