"""Ops over jobs: the HTTP routes (role ops, problem+json) and the command line."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from pydantic import BaseModel

from bsante.chassis.auth import SigningKey, TokenVerifier, issue_token
from bsante.chassis.bus.embedded import EmbeddedBus
from bsante.chassis.errors import install_problem_handlers
from bsante.chassis.jobs import (
    Job,
    JobKind,
    JobPolicy,
    JobWorker,
    PermanentJobError,
    schedule,
)
from bsante.chassis.jobs.api import jobs_router
from bsante.chassis.messaging import Messaging
from bsante.chassis.store.sqlite import SqliteStore

KEY = SigningKey.generate()


class Send(BaseModel):
    message_id: str


async def refuse(job: Job[Send]) -> None:
    raise PermanentJobError("550 mailbox unknown")


SEND = JobKind("mss.send", Send, refuse, policy=JobPolicy(max_attempts=1))


def token(role: str) -> str:
    return issue_token(
        KEY,
        subject=f"user-{role}",
        structures=["s1"],
        roles={"s1": [role]},
        profession=None,
        issuer="bsante-identity",
        audience="bsante",
        ttl_seconds=600,
    )


async def seed(messaging: Messaging) -> tuple[str, str]:
    """One failed job and one pending job."""
    ids = []
    for key in ("m-1", "m-2"):
        async with messaging.unit_of_work() as uow:
            scheduled = await schedule(
                uow.tx,
                kind=SEND,
                idempotency_key=key,
                payload=Send(message_id=key),
                structure_id="s1",
            )
        ids.append(scheduled.job_id)
        if key == "m-1":
            assert await JobWorker(messaging, [SEND]).run_once() == 1
    return ids[0], ids[1]


@pytest.fixture
async def messaging(tmp_path: Path) -> AsyncIterator[Messaging]:
    store = SqliteStore(tmp_path / "mss.db")
    await store.start()
    yield Messaging("mss-connector", store, EmbeddedBus(tmp_path))
    await store.close()


@pytest.fixture
async def client(messaging: Messaging) -> AsyncIterator[httpx.AsyncClient]:
    async def jwks() -> dict[str, Any]:
        return {"keys": [KEY.public_jwk()]}

    app = FastAPI()
    app.state.verifier = TokenVerifier(jwks, issuer="bsante-identity", audience="bsante")
    install_problem_handlers(app)
    app.include_router(jobs_router(messaging.store))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://mss") as http:
        http.headers["authorization"] = f"Bearer {token('ops')}"
        yield http


async def test_ops_list_inspect_and_retry_a_failed_job(
    client: httpx.AsyncClient, messaging: Messaging
) -> None:
    failed, pending = await seed(messaging)

    listing = (await client.get("/ops/jobs")).json()
    assert listing["total"] == 2
    assert {j["id"] for j in listing["items"]} == {failed, pending}
    assert all("payload" not in j for j in listing["items"])
    only_failed = (await client.get("/ops/jobs", params={"state": "failed"})).json()
    assert [j["id"] for j in only_failed["items"]] == [failed]
    assert (await client.get("/ops/jobs", params={"kind": "dmp.submit"})).json()["total"] == 0

    shown = (await client.get(f"/ops/jobs/{failed}")).json()
    assert shown["state"] == "failed"
    assert shown["failure_reason"] == "permanent_error"
    assert shown["last_error"]["message"] == "550 mailbox unknown"
    assert shown["payload"] == {"message_id": "m-1"}

    retried = await client.post(f"/ops/jobs/{failed}/retry")
    assert retried.status_code == 200
    assert retried.json()["state"] == "pending"
    assert retried.json()["attempts"] == 0 and retried.json()["retries"] == 1
    assert retried.json()["last_error"]["message"] == "550 mailbox unknown", "kept for ops"


async def test_unknown_job_is_404_and_a_job_not_failed_is_409_problems(
    client: httpx.AsyncClient, messaging: Messaging
) -> None:
    _, pending = await seed(messaging)
    for response in (
        await client.get("/ops/jobs/0123abcd"),
        await client.post("/ops/jobs/0123abcd/retry"),
    ):
        assert response.status_code == 404
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["type"].endswith("/job-not-found")

    refused = await client.post(f"/ops/jobs/{pending}/retry")
    assert refused.status_code == 409
    assert refused.headers["content-type"] == "application/problem+json"
    assert refused.json()["errors"] == [{"field": "state", "message": "is pending, not failed"}]
    assert (await client.get(f"/ops/jobs/{pending}")).json()["state"] == "pending", "untouched"

    bad = await client.get("/ops/jobs", params={"state": "lost", "limit": 0})
    assert bad.status_code == 422
    assert {e["field"] for e in bad.json()["errors"]} == {"query.state", "query.limit"}


async def test_only_the_ops_role_reaches_the_job_routes(
    client: httpx.AsyncClient, messaging: Messaging
) -> None:
    failed, _ = await seed(messaging)
    as_doctor = {"authorization": f"Bearer {token('medecin')}"}
    assert (await client.get("/ops/jobs", headers=as_doctor)).status_code == 403
    assert (await client.post(f"/ops/jobs/{failed}/retry", headers=as_doctor)).status_code == 403
    assert (await client.get("/ops/jobs", headers={"authorization": ""})).status_code == 401
    assert (await client.get(f"/ops/jobs/{failed}")).json()["state"] == "failed"


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bsante.chassis.jobs", *args],
        capture_output=True,
        text=True,
        timeout=60,
    )


async def test_the_command_line_lists_shows_and_retries_on_the_store(
    messaging: Messaging, tmp_path: Path
) -> None:
    failed, pending = await seed(messaging)
    url = f"sqlite:///{tmp_path / 'mss.db'}"

    listed = cli("list", "--store-url", url, "--state", "failed")
    assert listed.returncode == 0, listed.stderr
    assert failed in listed.stdout and pending not in listed.stdout
    assert "550 mailbox unknown" in listed.stdout

    shown = cli("show", "--store-url", url, failed)
    assert shown.returncode == 0 and '"state": "failed"' in shown.stdout

    unknown = cli("retry", "--store-url", url, "0123abcd")
    assert unknown.returncode == 2 and "No job 0123abcd" in unknown.stderr
    not_failed = cli("retry", "--store-url", url, pending)
    assert not_failed.returncode == 2 and "is pending" in not_failed.stderr

    retried = cli("retry", "--store-url", url, failed)
    assert retried.returncode == 0, retried.stderr
    job = await messaging.store.get("_jobs", failed)
    assert job is not None and job.data["state"] == "pending"
    assert job.data["retried_by"] == "cli"
