"""Pytest plugin: one scanner over every log captured during the whole test suite.

Each test's captured stdout, stderr and log records (the report sections of every phase) are
searched for access tokens (JWT shape), private keys, the passwords of the demo accounts and of
the test fixtures, NIR/INS-shaped numbers (with a valid key), and the names and birth dates of
the test patients. Any finding fails the session, naming the test and a redacted excerpt.

A finding that is not a leak goes to ALLOWED with its reason; the patterns are not weakened.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# Where the demo accounts and the test data are written down.
SOURCES = ("tests", "chassis/tests", "platform/tests", "services")

JWT = re.compile(r"\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*")
PRIVATE_KEY = re.compile(r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY-----")
# 13 digits (Corsica: 2A/2B) and the 2-digit key, contiguous or in the usual groups.
NIR = re.compile(
    r"(?<![0-9A-Za-z])([1-478])\s?(\d{2})\s?(\d{2})\s?(\d{2}|2[AB])\s?(\d{3})\s?(\d{3})\s?(\d{2})"
    r"(?![0-9A-Za-z])"
)
PASSWORD_LITERAL = re.compile(
    r"""\b(?:\w+_)?(?:password|secret)(?:_\w+)?["']?\s*[:=,]\s*["']([^"'\s/]{10,})["']"""
    r"""|\(\s*["'][^"'\s]+@[^"'\s]+["']\s*,\s*["']([^"'\s/]*\d[^"'\s/]*)["']""",
    re.IGNORECASE,
)
NAME_LITERAL = re.compile(
    r"""["'](?:birth_name|used_name|birth_given_names|first_given_name)["']\s*:\s*["']([^"']+)["']"""
    r"""|\b(?:birth_name|used_name|birth_given_names)\s*=\s*["']([^"']+)["']"""
)
BIRTH_DATE_LITERAL = re.compile(r"""birth_date["']?\s*[:=]\s*["'](\d{4}-\d{2}-\d{2})["']""")
# Names too short or too common to mean a patient when they appear in a log line.
NOT_NAMES = {"ONLY", "AUTRE", "PATIENT", "TEST", "NONE", "NULL"}


@dataclass(frozen=True)
class Allowed:
    kind: str
    test: str  # a node id prefix
    text: str  # the matched text (exact)
    reason: str


ALLOWED: tuple[Allowed, ...] = ()


@dataclass(frozen=True)
class Finding:
    test: str
    section: str
    kind: str
    excerpt: str


def nir_key_valid(digits13: str, key: str) -> bool:
    number = int(digits13.replace("2A", "19").replace("2B", "18"))
    return 97 - number % 97 == int(key)


def _masked(found: str) -> str:
    return f"{found[: min(4, len(found) // 3)]}…[{len(found)} chars redacted]"


def redact(text: str, start: int, end: int, spans: Iterable[tuple[int, int]] = ()) -> str:
    """The line around the match, with every finding in it shortened to its first characters."""
    line_start = text.rfind("\n", 0, start) + 1
    line_end = text.find("\n", end)
    line_end = len(text) if line_end == -1 else line_end
    lo, hi = max(line_start, start - 80), min(line_end, end + 80)
    masks = sorted({(a, b) for a, b in [*spans, (start, end)] if a < hi and b > lo})
    parts, at = [], lo
    for a, b in masks:
        a, b = max(a, at), min(b, hi)
        if a >= b:
            continue
        parts += [text[at:a], _masked(text[a:b])]
        at = b
    parts.append(text[at:hi])
    return "".join(parts).strip()


@dataclass
class Secrets:
    passwords: frozenset[str]
    names: frozenset[str]
    birth_dates: frozenset[str]


def collect_secrets(root: Path = ROOT, sources: Iterable[str] = SOURCES) -> Secrets:
    passwords: set[str] = set()
    names: set[str] = set()
    dates: set[str] = set()
    for source in sources:
        for path in sorted((root / source).rglob("*.py")):
            if ".venv" in path.parts or path.name == "log_scanner.py":
                continue
            is_test_data = "tests" in path.parts or path.name == "seed.py"
            if not is_test_data:
                continue
            text = path.read_text(encoding="utf-8", errors="replace")
            for match in PASSWORD_LITERAL.finditer(text):
                passwords.add(match.group(1) or match.group(2))
            for match in NAME_LITERAL.finditer(text):
                name = (match.group(1) or match.group(2)).strip()
                for part in re.split(r"[\s,]+", name):
                    if len(part) >= 5 and part.upper() not in NOT_NAMES and part.isalpha():
                        names.add(part)
                    elif len(part) >= 5 and "-" in part:
                        names.add(part)
            dates.update(m.group(1) for m in BIRTH_DATE_LITERAL.finditer(text))
    return Secrets(frozenset(passwords), frozenset(names), frozenset(dates))


def _literal_pattern(values: Iterable[str], *, words: bool) -> re.Pattern[str] | None:
    ordered = sorted(set(values), key=len, reverse=True)
    if not ordered:
        return None
    body = "|".join(re.escape(v) for v in ordered)
    return re.compile(rf"(?<!\w)(?:{body})(?!\w)" if words else body)


class Scanner:
    def __init__(self, secrets: Secrets, allowed: Iterable[Allowed] = ALLOWED) -> None:
        self.allowed = tuple(allowed)
        names = set(secrets.names) | {n.upper() for n in secrets.names}
        self.patterns: list[tuple[str, re.Pattern[str]]] = [
            ("token (JWT)", JWT),
            ("private key", PRIVATE_KEY),
        ]
        for kind, values, words in (
            ("password", secrets.passwords, False),
            ("patient name", names, True),
            ("birth date", secrets.birth_dates, True),
        ):
            pattern = _literal_pattern(values, words=words)
            if pattern is not None:
                self.patterns.append((kind, pattern))

    def _allowed(self, kind: str, test: str, text: str) -> bool:
        return any(
            a.kind == kind and test.startswith(a.test) and a.text == text for a in self.allowed
        )

    def scan(self, test: str, section: str, text: str) -> Iterator[Finding]:
        found: list[tuple[str, int, int]] = []
        for kind, pattern in self.patterns:
            for match in pattern.finditer(text):
                if not self._allowed(kind, test, match.group(0)):
                    found.append((kind, *match.span()))
        for match in NIR.finditer(text):
            digits = "".join(match.groups()[:6])
            if nir_key_valid(digits, match.group(7)) and not self._allowed(
                "NIR/INS", test, match.group(0)
            ):
                found.append(("NIR/INS", *match.span()))
        spans = [(a, b) for _, a, b in found]
        for kind, start, end in found:
            yield Finding(test, section, kind, redact(text, start, end, spans))


class LogScannerPlugin:
    """Registered by the root conftest; `-p no:log_scanner` is not offered on purpose."""

    def __init__(self) -> None:
        self.scanner = Scanner(collect_secrets())
        self.findings: list[Finding] = []

    @pytest.hookimpl(trylast=True)
    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        for section, text in report.sections:
            if section.startswith("Captured"):
                self.findings.extend(self.scanner.scan(report.nodeid, section, text))

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        if self.findings and session.exitstatus == 0:
            session.exitstatus = pytest.ExitCode.TESTS_FAILED

    def pytest_terminal_summary(self, terminalreporter: pytest.TerminalReporter) -> None:
        if not self.findings:
            return
        terminalreporter.section("secrets or personal data in captured logs", red=True)
        seen: set[tuple[str, str, str]] = set()
        for finding in self.findings:
            key = (finding.test, finding.kind, finding.excerpt)
            if key in seen:
                continue
            seen.add(key)
            terminalreporter.line(
                f"{finding.test} [{finding.section}] {finding.kind}: {finding.excerpt}"
            )
        terminalreporter.line(
            f"{len(self.findings)} finding(s): fix the code that logs them, or add an "
            "entry with its reason to ALLOWED in tests/log_scanner.py"
        )


def pytest_configure(config: pytest.Config) -> None:
    config.pluginmanager.register(LogScannerPlugin(), "log-scanner-session")
