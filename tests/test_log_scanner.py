"""The scanner of every captured log (tests/log_scanner.py): what it finds, what it shows."""

from __future__ import annotations

from pathlib import Path

import pytest
from log_scanner import ALLOWED, Allowed, Scanner, collect_secrets, nir_key_valid

SECRETS = collect_secrets()
JWT = "eyJhbGciOiJFZERTQSIsImtpZCI6ImFiYyJ9.eyJzdWIiOiJ1c2VyLTEyMyJ9.c2lnbmF0dXJlLWJ5dGVz"
NIR = "279035121518989"  # a test patient's (valid key)


def kinds(text: str, scanner: Scanner | None = None) -> set[str]:
    return {f.kind for f in (scanner or Scanner(SECRETS)).scan("t", "Captured log call", text)}


def test_the_demo_accounts_and_fixture_data_are_known() -> None:
    assert {"Tilleuls-Demo-2026", "Medecin-Tilleuls-2026", "Exploitation-Demo-2026"} <= set(
        SECRETS.passwords
    )
    assert "DUPONT" in SECRETS.names and "1941-03-02" in SECRETS.birth_dates


@pytest.mark.parametrize(
    ("line", "kind"),
    [
        (f'{{"event": "login", "token": "{JWT}"}}', "token (JWT)"),
        ("key=-----BEGIN PRIVATE KEY-----\nMC4CAQ", "private key"),
        ("-----BEGIN EC PRIVATE KEY-----", "private key"),
        ("password=Tilleuls-Demo-2026", "password"),
        (f"ins={NIR}", "NIR/INS"),
        ("ins=2 79 03 51 215 189 89", "NIR/INS"),
        ("patient DUPONT created", "patient name"),
        ("born 1941-03-02", "birth date"),
    ],
)
def test_each_kind_is_found(line: str, kind: str) -> None:
    assert kind in kinds(line)


@pytest.mark.parametrize(
    "line",
    [
        "duration_ms=1764590000123 status=200",  # 13 digits, not a NIR
        "id=279035121518988",  # a NIR's shape with a wrong key
        "route=/patients/{patient_id} status=200 service=patient",
        "DUPONTEL and MARTINEZA are not names of the test data",
    ],
)
def test_ordinary_log_lines_are_not_findings(line: str) -> None:
    assert kinds(line) == set()


def test_the_key_of_a_nir_is_checked() -> None:
    assert nir_key_valid(NIR[:13], NIR[13:])
    assert not nir_key_valid(NIR[:13], "88")


def test_the_excerpt_names_the_test_and_hides_every_secret_of_the_line() -> None:
    text = f"before\nWARNING login {JWT} pw Tilleuls-Demo-2026 ins {NIR}\nafter"
    findings = list(Scanner(SECRETS).scan("tests/x.py::test_y", "Captured stdout call", text))
    assert {f.kind for f in findings} == {"token (JWT)", "password", "NIR/INS"}
    for finding in findings:
        assert finding.test == "tests/x.py::test_y"
        for secret in (JWT, "Tilleuls-Demo-2026", NIR):
            assert secret not in finding.excerpt
        assert "redacted" in finding.excerpt and "before" not in finding.excerpt


def test_an_allowed_entry_needs_its_test_and_exact_text() -> None:
    entry = Allowed("password", "tests/x.py::", "Tilleuls-Demo-2026", "a documented example")
    scanner = Scanner(SECRETS, (*ALLOWED, entry))
    assert [f.kind for f in scanner.scan("tests/x.py::t", "s", "pw Tilleuls-Demo-2026")] == []
    assert [f.kind for f in scanner.scan("tests/z.py::t", "s", "pw Tilleuls-Demo-2026")] == [
        "password"
    ]


def test_a_leak_in_a_passing_test_fails_the_session(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    # In a subprocess: in-process, this test's own log capture would see the planted leaks.
    monkeypatch.setenv("PYTHONPATH", str(Path(__file__).parent))
    pytester.makeini("[pytest]\nasyncio_default_fixture_loop_scope = function\n")
    pytester.makepyfile(
        test_leaky=f"""
        import logging, sys

        def test_prints():
            print("issued {JWT}")

        def test_logs():
            logging.getLogger("x").warning("qualified ins {NIR}")

        def test_stderr():
            sys.stderr.write("password Medecin-Tilleuls-2026")

        def test_clean():
            print("http_request status=200")
        """
    )
    result = pytester.runpytest_subprocess("-p", "log_scanner", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=4)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    out = result.stdout.str()
    assert "secrets or personal data in captured logs" in out
    for name in ("test_prints", "test_logs", "test_stderr"):
        assert f"test_leaky.py::{name}" in out
    assert "test_clean" not in out
    for secret in (JWT, NIR, "Medecin-Tilleuls-2026"):
        assert secret not in out
