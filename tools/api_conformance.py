"""Schemathesis against the embedded platform's merged OpenAPI document.

`make test` runs the examples and coverage phases as the demo médecin (tests/api);
`make fuzz` runs this script as every demo role: the stateless phases for half of each role's
time, then the stateful phase (chains through the document's OpenAPI links) as its own run for
the other half, and a summary line per role.
The platform is started the way users start it (a real uvicorn on a free port, fresh data);
a few records are created first so that path parameters name things that exist.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

CHECKS = (
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_schema_conformance",
)
# username, password of every demo role (see identity's seed).
ROLES = {
    "medecin": ("medecin@tilleuls.demo", "Medecin-Tilleuls-2026"),
    "infirmier": ("infirmier@tilleuls.demo", "Infirmier-Tilleuls-2026"),
    "structure_admin": ("admin@tilleuls.demo", "Tilleuls-Demo-2026"),
    "ops": ("ops@bsante.demo", "Exploitation-Demo-2026"),
}
# Not exercised: CPS login answers 503 on the demo platform, which has no CPS trust store (its
# behaviour has its own tests). Login, refresh, logout and password change are: generated
# user names and passwords never match a demo account, so nothing gets locked or changed.
EXCLUDED = r"/api/identity/auth/cps/.*$"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_ready(base: str, process: subprocess.Popen[bytes], timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the platform exited early with {process.returncode}")
        try:
            if httpx.get(f"{base}/health/ready", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)  # polling a condition, not synchronising on time
    raise RuntimeError(f"{base} not ready in {timeout} s")


@contextmanager
def running_platform(running: str | None = None) -> Iterator[str]:
    if running:
        yield running.rstrip("/")
        return
    data = Path(tempfile.mkdtemp(prefix="bsante-conformance-"))
    port = free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "bsante.platform",
            "--port",
            str(port),
            "--data",
            str(data),
            "--log-level",
            "WARNING",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_ready(base, process)
        yield base
    finally:
        process.terminate()
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)
        shutil.rmtree(data, ignore_errors=True)


def login(base: str, role: str, attempts: int = 5) -> tuple[str, str]:
    username, password = ROLES[role]
    for _ in range(attempts):
        response = httpx.post(
            f"{base}/api/identity/auth/token",
            json={"username": username, "password": password},
            timeout=30,
        )
        # The fuzzing of the token endpoint spends this address's login budget: wait as told.
        if response.status_code != 429:
            break
        time.sleep(min(int(response.headers.get("Retry-After", "5")), 60))
    response.raise_for_status()
    body = response.json()
    return str(body["access_token"]), str(body["acting_structure"])


def seed(base: str) -> dict[str, str]:
    """Records the parameters name: a patient, a post-it, a correspondent, a draft, a template."""
    token, structure = login(base, "medecin")
    headers = {"Authorization": f"Bearer {token}", "X-Structure-Id": structure}
    with httpx.Client(base_url=base, headers=headers, timeout=30) as client:
        patient = client.post(
            "/api/patient/patients",
            params={"confirm_not_duplicate": "true"},
            json={
                "birth_name": "CONFORME",
                "birth_given_names": "Alice",
                "sex": "F",
                "birth_date": "1940-05-12",
            },
        )
        patient.raise_for_status()
        patient_id = patient.json()["id"]
        postit = client.post(f"/api/patient/patients/{patient_id}/postits", json={"text": "Test"})
        correspondent = client.post(
            f"/api/patient/patients/{patient_id}/correspondents",
            json={
                "rpps": "10001000016",
                "role": "specialiste",
                "display_name": "Dr Claire Lemaire",
            },
        )
        draft = client.post(
            f"/api/forms/patients/{patient_id}/submissions", json={"form_id": "aggir"}
        )
        me = client.get("/api/identity/me")
        templates = client.get("/api/documents/templates")
    values = {"path.patient_id": patient_id, "path.user_id": me.json()["user_id"]}
    # A draft needs a template and a form that exist (a random one is a 404 before any work).
    values["path.form_id"] = values["body.form_id"] = "aggir"
    if templates.status_code == 200 and templates.json():
        values["body.template_id"] = templates.json()[0]["id"]
    values["path.identifier"] = "810001000016"
    for name, response in (
        ("path.postit_id", postit),
        ("path.correspondent_id", correspondent),
        ("path.submission_id", draft),
    ):
        if response.status_code == 201:
            values[name] = response.json()["id"]
    return values


def config_file(directory: Path, parameters: dict[str, Any]) -> Path:
    lines = ["[parameters]"] + [f'"{key}" = "{value}"' for key, value in parameters.items()]
    path = directory / "schemathesis.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


@dataclass
class Outcome:
    """What one schemathesis invocation did, from its JSON report and its summary."""

    returncode: int
    output: str
    report: dict[str, Any] = field(default_factory=dict)

    @property
    def phases_run(self) -> list[str]:
        phases = self.report.get("phases", {})
        return [name for name, phase in phases.items() if phase.get("status") not in ("skip", None)]

    @property
    def tested(self) -> int:
        return int(self.report.get("operations", {}).get("tested", 0))

    def failures(self, server_errors: bool) -> int:
        """Unique failures: server errors (5xx) or the other (conformance) checks."""
        return sum(
            int(group.get("count", 1))
            for group in self.report.get("failures", [])
            if (group.get("type") == "ServerError") == server_errors
        )

    @property
    def errors(self) -> int:
        return sum(int(group.get("count", 1)) for group in self.report.get("errors", []))

    @property
    def scenarios(self) -> int:
        found = re.search(r"Scenarios:\s+(\d+)", self.output)
        return int(found.group(1)) if found else 0

    @property
    def links(self) -> tuple[int, int]:
        """Links covered by the stateful phase, and links it selected."""
        found = re.search(r"API Links:\s+(\d+) covered / (\d+) selected", self.output)
        return (int(found.group(1)), int(found.group(2))) if found else (0, 0)


def run(
    base: str,
    role: str,
    *,
    phases: str,
    max_examples: int,
    max_time: int = 0,
    extra: list[str] | None = None,
) -> Outcome:
    """One schemathesis run as `role` with its acting structure pinned."""
    token, structure = login(base, role)
    work = Path(tempfile.mkdtemp(prefix="bsante-schemathesis-"))
    parameters = seed(base)
    if "stateful" not in phases.split(","):
        # Valid bodies make every generated draft real work (rendering, merge fields): twice
        # the time of the stateless phases, for chains only the stateful phase follows.
        parameters = {k: v for k, v in parameters.items() if not k.startswith("body.")}
    config = config_file(work, parameters)
    executable = Path(sys.executable).with_name("schemathesis")
    report = work / "report.json"
    command = [
        str(executable),
        "--no-color",
        "--config-file",
        str(config),
        "run",
        f"{base}/openapi.json",
        "--phases",
        phases,
        "--checks",
        ",".join(CHECKS),
        "--header",
        f"Authorization: Bearer {token}",
        "--header",
        f"X-Structure-Id: {structure}",
        "--exclude-path-regex",
        EXCLUDED,
        "--max-examples",
        str(max_examples),
        # One worker: with threads, CPython 3.11's ast.parse (used by hypothesis to describe
        # filters) can fail with "AST constructor recursion depth mismatch".
        "--workers",
        "1",
        "--seed",
        "20261201",
        "--request-timeout",
        "30",
        "--report",
        "json",
        "--report-json-path",
        str(report),
        *(["--max-time", str(max_time)] if max_time else []),
        *(extra or []),
    ]
    try:
        result = subprocess.run(command, cwd=work, capture_output=True, text=True, check=False)
        document = json.loads(report.read_text()) if report.exists() else {}
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return Outcome(result.returncode, result.stdout + result.stderr, document)


def campaign(
    base: str, role: str, phases: list[str], max_examples: int, seconds: int
) -> list[Outcome]:
    """The stateless phases, then the stateful one as its own run with its own share of the
    time: in one run, examples and coverage may spend the whole budget before it starts."""
    stateless = [phase for phase in phases if phase != "stateful"]
    runs: list[tuple[list[str], int]] = []
    if stateless and "stateful" in phases:
        share = seconds // 2 if seconds else 0
        runs = [(stateless, share), (["stateful"], seconds - share if seconds else 0)]
    else:
        runs = [(phases, seconds)]
    outcomes = []
    for selected, budget in runs:
        outcome = run(
            base, role, phases=",".join(selected), max_examples=max_examples, max_time=budget
        )
        print(outcome.output[-20_000:], flush=True)
        outcomes.append(outcome)
    return outcomes


def summary_line(role: str, outcomes: list[Outcome]) -> str:
    phases = [phase for outcome in outcomes for phase in outcome.phases_run]
    covered = sum(outcome.links[0] for outcome in outcomes)
    selected = max((outcome.links[1] for outcome in outcomes), default=0)
    return (
        f"{role:<16} phases: {','.join(phases) or 'none'}"
        f" | operations tested: {max((o.tested for o in outcomes), default=0)}"
        f" | stateful scenarios: {sum(o.scenarios for o in outcomes)}"
        f" (links {covered} covered / {selected})"
        f" | server errors: {sum(o.failures(server_errors=True) for o in outcomes)}"
        f" | conformance failures: {sum(o.failures(server_errors=False) for o in outcomes)}"
        f" | errors: {sum(o.errors for o in outcomes)}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--roles", default=",".join(ROLES), help="Comma-separated demo roles")
    parser.add_argument("--phases", default="examples,coverage,fuzzing,stateful")
    parser.add_argument("--max-examples", type=int, default=50)
    parser.add_argument(
        "--max-time",
        type=int,
        default=0,
        help="Seconds per role (0: no cap); with stateful, half of it is the stateful phase's",
    )
    parser.add_argument("--base", help="A platform already running (default: start one)")
    args = parser.parse_args(argv)
    started = time.monotonic()
    lines, failed = [], []
    with running_platform(args.base) as base:
        ready = time.monotonic() - started
        for role in args.roles.split(","):
            print(f"== schemathesis as {role} ==", flush=True)
            outcomes = campaign(
                base, role, args.phases.split(","), args.max_examples, args.max_time
            )
            lines.append(summary_line(role, outcomes))
            if any(outcome.returncode != 0 for outcome in outcomes):
                failed.append(role)
    print(
        f"== summary: platform ready in {ready:.0f} s, {time.monotonic() - started:.0f} s in all =="
    )
    print("\n".join(lines), flush=True)
    if failed:
        print(f"schemathesis found failures as: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
