"""Schemathesis against the embedded platform's merged OpenAPI document.

`make test` runs the examples and coverage phases as the demo médecin (tests/api);
`make fuzz` runs this script for a longer fuzzing and stateful campaign as every demo role.
The platform is started the way users start it (a real uvicorn on a free port, fresh data);
a few records are created first so that path parameters name things that exist.
"""

from __future__ import annotations

import argparse
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
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
def running_platform() -> Iterator[str]:
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


def login(base: str, role: str) -> tuple[str, str]:
    username, password = ROLES[role]
    response = httpx.post(
        f"{base}/api/identity/auth/token",
        json={"username": username, "password": password},
        timeout=30,
    )
    response.raise_for_status()
    body = response.json()
    return str(body["access_token"]), str(body["acting_structure"])


def seed(base: str) -> dict[str, str]:
    """Records the path parameters name: a patient, a post-it, a correspondent, a draft."""
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
    values = {"path.patient_id": patient_id, "path.user_id": me.json()["user_id"]}
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


def run(
    base: str,
    role: str,
    *,
    phases: str,
    max_examples: int,
    extra: list[str] | None = None,
    report: Path | None = None,
) -> subprocess.CompletedProcess[str]:
    """One schemathesis run as `role` with its acting structure pinned."""
    token, structure = login(base, role)
    work = Path(tempfile.mkdtemp(prefix="bsante-schemathesis-"))
    config = config_file(work, seed(base))
    executable = Path(sys.executable).with_name("schemathesis")
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
        *(extra or []),
    ]
    try:
        result = subprocess.run(command, cwd=work, capture_output=True, text=True, check=False)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if report is not None:
        report.write_text(result.stdout + result.stderr)
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--roles", default=",".join(ROLES), help="Comma-separated demo roles")
    parser.add_argument("--phases", default="examples,coverage,fuzzing,stateful")
    parser.add_argument("--max-examples", type=int, default=50)
    parser.add_argument("--max-time", type=int, default=0, help="Seconds per role (0: no cap)")
    args = parser.parse_args(argv)
    failed = []
    with running_platform() as base:
        for role in args.roles.split(","):
            print(f"== schemathesis as {role} ==", flush=True)
            result = run(
                base,
                role,
                phases=args.phases,
                max_examples=args.max_examples,
                extra=["--max-time", str(args.max_time)] if args.max_time else [],
            )
            print(result.stdout[-20_000:], result.stderr[-5_000:], sep="\n", flush=True)
            if result.returncode != 0:
                failed.append(role)
    if failed:
        print(f"schemathesis found failures as: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
