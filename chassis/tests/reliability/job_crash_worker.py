"""A job worker process for the crash tests: it calls the fake remote, and may die on purpose.

job_crash_worker.py run DATA REMOTE_URL                  run until the job succeeded
job_crash_worker.py die-before-outcome DATA REMOTE_URL   die once the remote answered
"""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import httpx
from pydantic import BaseModel

from bsante.chassis.bus.embedded import EmbeddedBus
from bsante.chassis.jobs import JOBS, Job, JobKind, JobPolicy, JobWorker, PermanentJobError
from bsante.chassis.messaging import Messaging, UnitOfWork
from bsante.chassis.store.sqlite import SqliteStore

KIND = "remote.apply"
# A short lease, so a restarted worker takes the dead one's job back within seconds.
POLICY = JobPolicy(max_attempts=5, timeout=2.0, initial_backoff=0.05, max_backoff=0.2)
LEASE_MARGIN = 0.5


class Apply(BaseModel):
    order_id: str


class Applied(BaseModel):
    remote_id: str
    duplicate: bool


def apply_kind(remote_url: str, *, die_before_outcome: bool = False) -> JobKind[Apply, Applied]:
    async def call(job: Job[Apply]) -> Applied:
        async with httpx.AsyncClient(timeout=1.5) as client:
            response = await client.post(
                f"{remote_url}/apply",
                json=job.payload.model_dump(),
                headers={"Idempotency-Key": job.idempotency_key},
            )
        if response.status_code >= 500:
            raise ConnectionError(f"remote answered {response.status_code}")
        if response.status_code >= 400:
            raise PermanentJobError(f"remote refused: {response.status_code}")
        body = response.json()
        return Applied(remote_id=body["id"], duplicate=body["duplicate"])

    async def record(uow: UnitOfWork, job: Job[Apply], outcome: Applied) -> None:
        if die_before_outcome:
            os._exit(17)  # the remote answered; the transaction recording it never commits
        doc = await uow.tx.get("effects", "completions")
        if doc is None:
            await uow.tx.insert("effects", "completions", {"n": 1})
        else:
            await uow.tx.update("effects", "completions", {"n": doc.data["n"] + 1}, doc.version)

    return JobKind(KIND, Apply, call, on_success=record, policy=POLICY)


async def main(mode: str, data: Path, remote_url: str) -> None:
    store = SqliteStore(data / "jobs.db")
    await store.start()
    messaging = Messaging("crash-test", store, EmbeddedBus(data))
    kind = apply_kind(remote_url, die_before_outcome=mode == "die-before-outcome")
    worker = JobWorker(messaging, [kind], lease_margin=LEASE_MARGIN, poll_interval=0.05)
    async with asyncio.timeout(50):
        while True:
            await worker.run_once()
            if await store.count(JOBS, {"state": {"$in": ["succeeded", "failed"]}}) == 1:
                break
            await asyncio.sleep(0.05)  # poll for the dead worker's lease to expire
    await store.close()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], Path(sys.argv[2]), sys.argv[3]))
