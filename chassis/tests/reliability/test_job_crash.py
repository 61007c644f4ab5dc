"""A job's external call happens once at the remote when its worker dies at the worst moment.

Real processes, killed, then restarted; a real HTTP remote on loopback that records the
idempotency keys it receives and applies each key once.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from fake_remote import FakeRemote  # type: ignore[import-not-found]
from job_crash_worker import KIND, Apply  # type: ignore[import-not-found]

from bsante.chassis.bus.embedded import EmbeddedBus
from bsante.chassis.jobs import JOBS, JobRecord, JobState, schedule
from bsante.chassis.messaging import Messaging
from bsante.chassis.store.sqlite import SqliteStore

WORKER = Path(__file__).with_name("job_crash_worker.py")


def worker(mode: str, data: Path, remote: FakeRemote) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, str(WORKER), mode, str(data), remote.url],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


async def schedule_one(data: Path) -> str:
    store = SqliteStore(data / "jobs.db")
    await store.start()
    messaging = Messaging("crash-test", store, EmbeddedBus(data))
    async with messaging.unit_of_work() as uow:
        scheduled = await schedule(
            uow.tx,
            kind=KIND,
            idempotency_key="order-42",
            payload=Apply(order_id="42"),
            structure_id="s1",
        )
    await store.close()
    return scheduled.job_id


async def stored(data: Path, job_id: str) -> tuple[JobRecord, int]:
    store = SqliteStore(data / "jobs.db")
    await store.start()
    doc = await store.get(JOBS, job_id)
    effects = await store.get("effects", "completions")
    await store.close()
    assert doc is not None
    return JobRecord.from_document(doc), effects.data["n"] if effects else 0


def finish(process: subprocess.Popen[bytes], expected: int) -> None:
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == expected, stderr.decode(errors="replace")[-2000:]


async def test_a_worker_killed_during_the_call_runs_the_job_again_with_the_same_key(
    tmp_path: Path,
) -> None:
    job_id = await schedule_one(tmp_path)
    with FakeRemote() as remote:
        remote.hold_next()
        first = worker("run", tmp_path, remote)
        assert remote.arrived.wait(30), "the worker called the remote"
        first.kill()  # during the call: the remote has not answered
        first.communicate(timeout=30)
        remote.abandon()

        job, completions = await stored(tmp_path, job_id)
        assert job.state is JobState.RUNNING and completions == 0

        finish(worker("run", tmp_path, remote), 0)

    job, completions = await stored(tmp_path, job_id)
    assert remote.received == ["order-42", "order-42"], "called again, with the same key"
    assert list(remote.applied) == ["order-42"] and remote.duplicates == 0
    assert job.state is JobState.SUCCEEDED and job.attempts == 2
    assert job.outcome == {"remote_id": remote.applied["order-42"], "duplicate": False}
    assert completions == 1


async def test_a_worker_killed_before_recording_the_answer_completes_the_job_once(
    tmp_path: Path,
) -> None:
    job_id = await schedule_one(tmp_path)
    with FakeRemote() as remote:
        finish(worker("die-before-outcome", tmp_path, remote), 17)
        assert list(remote.applied) == ["order-42"], "the remote applied it before the crash"
        job, completions = await stored(tmp_path, job_id)
        assert job.state is JobState.RUNNING and completions == 0, "the outcome never committed"

        finish(worker("run", tmp_path, remote), 0)

    job, completions = await stored(tmp_path, job_id)
    assert remote.received == ["order-42", "order-42"]
    assert remote.duplicates == 1, "the retry was recognised as a duplicate"
    assert len(remote.applied) == 1
    assert job.state is JobState.SUCCEEDED and job.attempts == 2
    assert job.outcome == {"remote_id": remote.applied["order-42"], "duplicate": True}
    assert completions == 1, "completed once"
