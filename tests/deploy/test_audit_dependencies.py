"""The verdict of `make audit` (tools/audit_dependencies.py) on pip-audit's answers."""

from __future__ import annotations

import importlib.util
import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

TOOL = Path(__file__).resolve().parents[2] / "tools" / "audit_dependencies.py"
spec = importlib.util.spec_from_file_location("audit_dependencies", TOOL)
assert spec is not None and spec.loader is not None
audit: Any = importlib.util.module_from_spec(spec)
spec.loader.exec_module(audit)


def answer(
    dependencies: list[dict[str, Any]], stderr: str = ""
) -> subprocess.CompletedProcess[str]:
    stdout = json.dumps({"dependencies": dependencies, "fixes": []})
    return subprocess.CompletedProcess([], 1, stdout, stderr)


CLEAN = {"name": "fastapi", "version": "1.0", "vulns": []}
VULNERABLE = {"name": "jinja2", "version": "2.0", "vulns": [{"id": "PYSEC-2099-1"}]}
UNKNOWN = {"name": "aiokafka", "skip_reason": "Dependency not found on PyPI"}


def test_a_known_vulnerability_fails(capsys: pytest.CaptureFixture[str]) -> None:
    assert audit.verdict(answer([CLEAN, VULNERABLE]), strict=False) == 1
    assert "jinja2 2.0: PYSEC-2099-1" in capsys.readouterr().err


def test_a_listed_vulnerability_passes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(audit.ALLOWED, "PYSEC-2099-1", "the vulnerable filter is never used")
    assert audit.verdict(answer([CLEAN, VULNERABLE]), strict=False) == 0


def test_nothing_audited_is_said_and_fails_only_when_strict(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert audit.verdict(answer([UNKNOWN]), strict=False) == 0
    assert "SKIPPED" in capsys.readouterr().err
    assert audit.verdict(answer([UNKNOWN]), strict=True) == 1


def test_an_unreachable_service_is_a_skip_not_a_pass(capsys: pytest.CaptureFixture[str]) -> None:
    down = subprocess.CompletedProcess(
        [], 1, "", "requests.exceptions.ConnectionError: Max retries exceeded (NameResolutionError)"
    )
    assert audit.verdict(down, strict=False) == 0
    assert "SKIPPED: the vulnerability service is unreachable" in capsys.readouterr().err
    assert audit.verdict(down, strict=True) == 1


def test_a_crash_of_pip_audit_fails() -> None:
    assert audit.verdict(subprocess.CompletedProcess([], 2, "", "usage: ..."), strict=False) == 2
