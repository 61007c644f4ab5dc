"""End to end: the platform started the way users start it, driven over real HTTP."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from bsante.identity.psc_provider import DEMO_CLIENT_ID

pytestmark = pytest.mark.e2e

TILLEULS = {"username": "admin@tilleuls.demo", "password": "Tilleuls-Demo-2026"}
VAL = {"username": "admin@val.demo", "password": "ValDuSoin-Demo-2026"}
MEDECIN = {"username": "medecin@tilleuls.demo", "password": "Medecin-Tilleuls-2026"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_ready(url: str, process: subprocess.Popen[bytes], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"process exited early with {process.returncode}")
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"{url} not ready in {timeout}s")


@contextmanager
def started(
    args: list[str], env: dict[str, str] | None = None
) -> Iterator[subprocess.Popen[bytes]]:
    process = subprocess.Popen(
        [sys.executable, *args],
        env={**os.environ, **(env or {})},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        yield process
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10)


def stop(process: subprocess.Popen[bytes]) -> tuple[int, str, str]:
    """Ctrl-C, as a user stops `make run`."""
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=30)
    return process.returncode, out.decode(), err.decode()


def login(base: str, credentials: dict[str, str]) -> dict[str, str]:
    response = httpx.post(f"{base}/api/identity/auth/token", json=credentials, timeout=30)
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


def usage_total(base: str, headers: dict[str, str], expected: int) -> int:
    total = -1
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        response = httpx.get(
            f"{base}/api/sla-monitor/usage/patients-created", headers=headers, timeout=10
        )
        assert response.status_code == 200, response.text
        total = int(response.json()["total"])
        if total == expected:
            break
        time.sleep(0.1)
    return total


PATIENT = {
    "birth_name": "DURAND",
    "birth_given_names": "Paul",
    "sex": "M",
    "birth_date": "1938-07-14",
}


def create_patient(
    base: str, headers: dict[str, str], birth_name: str = "DURAND"
) -> dict[str, object]:
    response = httpx.post(
        f"{base}/api/patient/patients",
        json={**PATIENT, "birth_name": birth_name},
        headers=headers,
        timeout=30,
    )
    assert response.status_code == 201, response.text
    body: dict[str, object] = response.json()
    return body


# Whole platforms started as processes: minutes on a loaded machine, not the 120 s default.
@pytest.mark.timeout(300)
def test_embedded_platform_as_make_run_starts_it(tmp_path: Path) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    data = tmp_path / "var"
    args = ["-m", "bsante.platform", "--port", str(port), "--data", str(data)]
    with started(args) as platform:
        wait_ready(f"{base}/health/ready", platform)
        assert httpx.get(f"{base}/openapi.json").json()["paths"]
        assert httpx.get(f"{base}/asyncapi.json").json()["asyncapi"] == "3.0.0"

        assert httpx.post(f"{base}/api/patient/patients", json=PATIENT).status_code == 401
        headers = login(base, TILLEULS)
        patient = create_patient(base, headers)
        assert usage_total(base, headers, 1) == 1

        other = login(base, VAL)
        hidden = httpx.get(f"{base}/api/patient/patients/{patient['id']}", headers=other)
        assert hidden.status_code == 404
        assert hidden.headers["content-type"] == "application/problem+json"

        # The local Pro Santé Connect (issue 16): identity sends the browser to its issuer,
        # with the callback make run registered, and the issuer shows its e-CPS login page.
        started_login = httpx.get(f"{base}/api/identity/auth/psc/authorize")
        assert started_login.status_code == 302, started_login.text
        location = httpx.URL(started_login.headers["location"])
        assert location.params["client_id"] == DEMO_CLIENT_ID
        assert location.params["redirect_uri"] == f"{base}/api/identity/auth/psc/callback"
        assert location.params["code_challenge_method"] == "S256"
        page = httpx.get(location)
        assert page.status_code == 200, page.text
        assert "Pro Santé Connect (local)" in page.text

        code, _, err = stop(platform)
        assert code == 0, err
        assert f"{base}/openapi.json" in err and f"{base}/asyncapi.json" in err
        assert "Traceback" not in err
        announced = f"PSC login (local)  {base}/api/identity/auth/psc/authorize  ("
        assert announced in err, err
        issuer = err.split(announced, 1)[1].split(")", 1)[0]
        assert httpx.URL(issuer).host == "127.0.0.1" and httpx.URL(issuer).port != port
        assert str(location).startswith(issuer + "/"), (location, issuer)

    assert (data / "patient.db").exists() and (data / "bus.db").exists()
    with started(args) as again:
        wait_ready(f"{base}/health/ready", again)
        headers = login(base, TILLEULS)
        found = httpx.get(f"{base}/api/patient/patients/{patient['id']}", headers=headers)
        assert found.status_code == 200, "data persisted across the restart"
        # A new forms secret was drawn at this start; identity adopted it over the stored one.
        via_forms = httpx.get(
            f"{base}/api/forms/patients/{patient['id']}/submissions",
            headers=login(base, MEDECIN),
            timeout=30,
        )
        assert via_forms.status_code == 200, via_forms.text
        assert usage_total(base, headers, 1) == 1, "no event consumed twice after the restart"
        create_patient(base, headers, birth_name="LEGRAND")
        assert usage_total(base, headers, 2) == 2
        code, _, err = stop(again)
        assert code == 0, err


# Whole platforms started as processes: minutes on a loaded machine, not the 120 s default.
@pytest.mark.timeout(300)
def test_distributed_topology_each_service_alone_behind_the_proxy(tmp_path: Path) -> None:
    """`python -m bsante.<service>` per service, the gateway proxying to their URLs.

    Kafka and MongoDB are not available here: the services share the embedded log and use
    SQLite, but every hop between them is real HTTP, as in production.
    """
    names = ("identity", "patient", "sla-monitor", "forms", "gateway")
    ports = {name: free_port() for name in names}
    urls = {name: f"http://127.0.0.1:{port}" for name, port in ports.items()}
    common = {
        "BUS_URL": f"embedded://{tmp_path}",
        "JWKS_URL": f"{urls['identity']}/.well-known/jwks.json",
        # No load balancer to leave here: SIGTERM stops at once (tests/deploy/test_drain.py).
        "DRAIN_SECONDS": "0",
    }

    def env(prefix: str, name: str) -> dict[str, str]:
        values = {
            f"{prefix}_PORT": str(ports[name]),
            f"{prefix}_HOST": "127.0.0.1",
            f"{prefix}_STORE_URL": f"sqlite:///{tmp_path / (name + '.db')}",
        }
        values.update({f"{prefix}_{k}": v for k, v in common.items()})
        return values

    # forms reaches patient with its own service token: identity reads the secret from a
    # mounted file, forms from its environment.
    secret = "e2e-" + os.urandom(16).hex()
    (tmp_path / "forms.secret").write_text(secret)
    clients = {"forms": {"scopes": ["patient:read"], "secret_file": str(tmp_path / "forms.secret")}}
    identity_env = {
        **env("IDENTITY", "identity"),
        "IDENTITY_SERVICE_CLIENTS": json.dumps(clients),
        # Run alone, identity seeds nothing unless asked (the demo accounts log in below).
        "IDENTITY_SEED_DEMO": "true",
    }
    forms_env = {
        **env("FORMS", "forms"),
        "FORMS_PATIENT_URL": urls["patient"],
        "FORMS_SERVICE_TOKEN_URL": f"{urls['identity']}/oauth/token",
        "FORMS_SERVICE_CLIENT_SECRET": secret,
    }
    gateway_env = {
        "GATEWAY_PORT": str(ports["gateway"]),
        "GATEWAY_HOST": "127.0.0.1",
        "GATEWAY_DRAIN_SECONDS": "0",
        "GATEWAY_SERVICES": json.dumps(
            {n: urls[n] for n in ("identity", "patient", "sla-monitor", "forms")}
        ),
    }
    with (
        started(["-m", "bsante.identity"], identity_env) as identity,
        started(["-m", "bsante.patient"], env("PATIENT", "patient")) as patient,
        started(["-m", "bsante.sla_monitor"], env("SLA_MONITOR", "sla-monitor")) as sla,
        started(["-m", "bsante.forms"], forms_env) as forms,
        started(["-m", "bsante.gateway"], gateway_env) as gateway,
    ):
        for name, process in (
            ("identity", identity),
            ("patient", patient),
            ("sla-monitor", sla),
            ("forms", forms),
            ("gateway", gateway),
        ):
            wait_ready(f"{urls[name]}/health/ready", process)
        base = urls["gateway"]
        headers = login(base, TILLEULS)
        created = create_patient(base, headers)
        read = httpx.get(f"{base}/api/patient/patients/{created['id']}", headers=headers)
        assert read.status_code == 200 and read.headers["etag"] == '"1"'
        assert usage_total(base, headers, 1) == 1
        assert httpx.get(f"{base}/api/patient/patients/{created['id']}").status_code == 401
        assert httpx.get(f"{base}/api/nowhere/x").status_code == 404
        merged = httpx.get(f"{base}/openapi.json").json()
        assert "/api/patient/patients" in merged["paths"]
        # forms -> identity (client credentials) -> patient's service-only route, all over HTTP.
        # Form data is clinical: the médecin reads it, an administrator does not.
        submissions = httpx.get(
            f"{base}/api/forms/patients/{created['id']}/submissions",
            headers=login(base, MEDECIN),
            timeout=30,
        )
        assert submissions.status_code == 200, submissions.text
        refused = httpx.get(
            f"{base}/api/forms/patients/{created['id']}/submissions", headers=headers, timeout=10
        )
        assert refused.status_code == 403
        for process in (gateway, forms, sla, patient, identity):
            process.send_signal(signal.SIGTERM)
            out, err = process.communicate(timeout=30)
            # uvicorn shuts down gracefully, then re-raises the signal it captured.
            assert process.returncode in (0, -signal.SIGTERM), err.decode()
            assert "Traceback" not in err.decode() + out.decode()
            if process is not gateway:
                assert '"event": "service_stopped"' in out.decode()
