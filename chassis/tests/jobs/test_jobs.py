"""The job queue: scheduling, retries with backoff, failure, breakers, leases, two workers.

Time is a fake clock handed to the worker, so nothing here waits for a real delay. Runs on
SQLite, and on MongoDB too when MONGODB_URI is set.
"""

from __future__ import annotations

import asyncio
import os
import random
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import REGISTRY
from pydantic import BaseModel

from bsante.chassis.bus.embedded import EmbeddedBus
from bsante.chassis.jobs import (
    JOBS,
    BreakerPolicy,
    BreakerState,
    CircuitBreaker,
    Job,
    JobFailure,
    JobKind,
    JobPolicy,
    JobRecord,
    JobState,
    JobWorker,
    PermanentJobError,
    get_job,
    job_id,
    schedule,
)
from bsante.chassis.messaging import Messaging, UnitOfWork
from bsante.chassis.store import Store
from bsante.chassis.store.sqlite import SqliteStore
from bsante.contracts.envelope import Envelope
from bsante.contracts.topics import OPERATIONS

MONGODB_URI = os.environ.get("MONGODB_URI")
T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


class Submit(BaseModel):
    document_id: str


class Receipt(BaseModel):
    remote_id: str


class Clock:
    def __init__(self, start: datetime = T0) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


class Ticks:
    """A monotonic clock for the breakers, moved by hand."""

    def __init__(self) -> None:
        self.value = 0.0

    def __call__(self) -> float:
        return self.value


@dataclass
class Remote:
    """Stands for the external system: fails as told, records the keys it was sent."""

    errors: list[Exception] = field(default_factory=list)
    keys: list[str] = field(default_factory=list)

    async def call(self, job: Job[Submit]) -> Receipt:
        self.keys.append(job.idempotency_key)
        if self.errors:
            raise self.errors.pop(0)
        return Receipt(remote_id=f"r-{job.payload.document_id}")


StoreFactory = Callable[[], Awaitable[Store]]


@pytest.fixture(params=["sqlite", pytest.param("mongodb", marks=pytest.mark.mongodb)])
async def open_store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[StoreFactory]:
    """Opens stores on one database: several are several replicas of one service."""
    if request.param == "mongodb" and not MONGODB_URI:
        pytest.skip("MONGODB_URI not set: MongoDB variant of the job tests skipped")
    database = f"bsante_jobs_{uuid.uuid4().hex[:8]}"
    opened: list[Store] = []

    async def factory() -> Store:
        store: Store
        if request.param == "sqlite":
            store = SqliteStore(tmp_path / "jobs.db")
        else:
            from bsante.chassis.store.mongo import MongoStore

            assert MONGODB_URI
            store = MongoStore(MONGODB_URI, database)
        await store.start()
        opened.append(store)
        return store

    yield factory
    for store in opened:
        from bsante.chassis.store.mongo import MongoStore

        if isinstance(store, MongoStore) and store is opened[0]:
            await store._client.drop_database(database)
        await store.close()


@pytest.fixture
async def messaging(open_store: StoreFactory, tmp_path: Path) -> Messaging:
    # The bus is never started: these tests read the outbox, the relay is not under test.
    return Messaging("dmp-connector", await open_store(), EmbeddedBus(tmp_path))


def kind(remote: Remote, **overrides: Any) -> JobKind[Submit, Receipt]:
    async def done(uow: UnitOfWork, job: Job[Submit], receipt: Receipt) -> None:
        await uow.tx.insert("submissions", job.payload.document_id, {"remote": receipt.remote_id})

    async def failed(uow: UnitOfWork, record: JobRecord, failure: JobFailure) -> None:
        await uow.tx.insert("submission_failures", record.id, {"reason": failure.reason})

    fields: dict[str, Any] = {
        "name": "dmp.submit",
        "payload": Submit,
        "handler": remote.call,
        "on_success": done,
        "on_failure": failed,
        "policy": JobPolicy(max_attempts=3, initial_backoff=1.0, max_backoff=60.0),
    }
    fields.update(overrides)
    return JobKind(**fields)


async def add(messaging: Messaging, key: str = "doc-1", **kwargs: Any) -> str:
    async with messaging.unit_of_work() as uow:
        scheduled = await schedule(
            uow.tx,
            kind=kwargs.pop("kind", "dmp.submit"),
            idempotency_key=key,
            payload=kwargs.pop("payload", {"document_id": key}),
            structure_id="s1",
            now=kwargs.pop("now", T0),
            **kwargs,
        )
    return scheduled.job_id


async def job_failed_events(store: Store) -> list[Envelope]:
    return [
        Envelope.from_json(r.value)
        for r in await store.outbox_pending(limit=1000)
        if r.topic == OPERATIONS
    ]


# -- policy ---------------------------------------------------------------------------------


def test_backoff_is_exponential_and_jitter_stays_within_its_bounds() -> None:
    policy = JobPolicy(initial_backoff=1.0, multiplier=2.0, max_backoff=10.0, jitter=0.5)
    rng = random.Random(7)
    for attempt, full in [(1, 1.0), (2, 2.0), (3, 4.0), (4, 8.0), (5, 10.0), (9, 10.0)]:
        draws = [policy.backoff(attempt, rng) for _ in range(200)]
        assert all(full * 0.5 <= d <= full for d in draws), attempt
        assert max(draws) - min(draws) > full * 0.3, "the delay is actually spread"
    no_jitter = JobPolicy(initial_backoff=1.0, jitter=0.0)
    assert [no_jitter.backoff(a) for a in (1, 2, 3)] == [1.0, 2.0, 4.0]


def test_permanent_and_unlisted_errors_are_not_retryable() -> None:
    policy = JobPolicy(retryable=(ConnectionError,))
    assert policy.is_retryable(ConnectionError())
    assert policy.is_retryable(TimeoutError())  # an attempt's own time limit
    assert not policy.is_retryable(ValueError())
    assert not JobPolicy().is_retryable(PermanentJobError("XDSRegistryMetadataError"))


# -- scheduling -----------------------------------------------------------------------------


async def test_scheduling_one_key_twice_writes_one_job(messaging: Messaging) -> None:
    first = await add(messaging, "doc-1", payload={"document_id": "first"})
    async with messaging.unit_of_work() as uow:
        again = await schedule(
            uow.tx,
            kind="dmp.submit",
            idempotency_key="doc-1",
            payload={"document_id": "second"},
            structure_id="s1",
        )
        # Twice in the same transaction too.
        third = await schedule(
            uow.tx,
            kind="dmp.submit",
            idempotency_key="doc-1",
            payload={"document_id": "third"},
            structure_id="s1",
        )
    assert again.job_id == third.job_id == first == job_id("dmp.submit", "doc-1")
    assert not again.created and not third.created
    assert await messaging.store.count(JOBS) == 1
    assert (await get_job(messaging.store, first)).payload == {"document_id": "first"}
    # Another kind with the same key is another job.
    await add(messaging, "doc-1", kind="mss.send")
    assert await messaging.store.count(JOBS) == 2


async def test_a_job_scheduled_in_a_rolled_back_transaction_does_not_exist(
    messaging: Messaging,
) -> None:
    with pytest.raises(RuntimeError):
        async with messaging.unit_of_work() as uow:
            await schedule(
                uow.tx,
                kind="dmp.submit",
                idempotency_key="doc-1",
                payload={"document_id": "doc-1"},
                structure_id="s1",
            )
            raise RuntimeError("the use case failed")
    assert await messaging.store.count(JOBS) == 0


async def test_not_before_holds_the_job_back(messaging: Messaging) -> None:
    remote, clock = Remote(), Clock()
    await add(messaging, not_before=T0 + timedelta(minutes=5))
    worker = JobWorker(messaging, [kind(remote)], clock=clock)
    assert await worker.run_once() == 0
    clock.advance(300)
    assert await worker.run_once() == 1
    assert remote.keys == ["doc-1"]


# -- outcomes -------------------------------------------------------------------------------


async def test_a_retryable_failure_is_retried_after_its_backoff_then_succeeds(
    messaging: Messaging,
) -> None:
    remote, clock = Remote(errors=[ConnectionError("refused")]), Clock()
    identifier = await add(messaging)
    worker = JobWorker(messaging, [kind(remote)], clock=clock, rng=random.Random(1))

    assert await worker.run_once() == 1
    job = await get_job(messaging.store, identifier)
    assert job.state is JobState.PENDING and job.attempts == 1
    assert job.last_error is not None and job.last_error.type == "ConnectionError"
    assert T0 + timedelta(seconds=0.5) <= job.due_at <= T0 + timedelta(seconds=1)
    assert await worker.run_once() == 0, "not due before its backoff"

    clock.advance(1)
    assert await worker.run_once() == 1
    job = await get_job(messaging.store, identifier)
    assert job.state is JobState.SUCCEEDED and job.attempts == 2
    assert job.outcome == {"remote_id": "r-doc-1"}
    assert remote.keys == ["doc-1", "doc-1"], "the same idempotency key each time"
    submission = await messaging.store.get("submissions", "doc-1")
    assert submission is not None and submission.data == {"remote": "r-doc-1"}
    assert await job_failed_events(messaging.store) == []
    assert await worker.run_once() == 0, "a succeeded job never runs again"


def failed_count(kind_name: str, reason: str) -> float:
    value = REGISTRY.get_sample_value(
        "bsante_jobs_failed_total",
        {"service": "dmp-connector", "kind": kind_name, "reason": reason},
    )
    return value or 0.0


async def test_after_the_last_attempt_the_job_fails_with_its_error_and_an_event(
    messaging: Messaging,
) -> None:
    errors: list[Exception] = [
        ConnectionError(f"503 from the registry #{n}\nsecond line quotes content") for n in range(5)
    ]
    remote, clock = Remote(errors=errors), Clock()
    identifier = await add(messaging)
    worker = JobWorker(messaging, [kind(remote)], clock=clock)
    before = failed_count("dmp.submit", "attempts_exhausted")

    for _ in range(3):
        assert await worker.run_once() == 1
        clock.advance(120)
    assert await worker.run_once() == 0

    job = await get_job(messaging.store, identifier)
    assert job.state is JobState.FAILED and job.attempts == 3
    assert job.failure_reason == "attempts_exhausted"
    assert job.last_error is not None
    assert job.last_error.message == "503 from the registry #2", "first line only"
    assert failed_count("dmp.submit", "attempts_exhausted") == before + 1
    (event,) = await job_failed_events(messaging.store)
    assert event.event_type == "JobFailed"
    assert event.producer == "dmp-connector"
    assert event.structure_id == "s1"
    assert event.payload["job_id"] == identifier
    assert event.payload["reason"] == "attempts_exhausted"
    assert event.payload["attempts"] == 3
    assert event.payload["error_message"] == "503 from the registry #2"
    failure = await messaging.store.get("submission_failures", identifier)
    assert failure is not None and failure.data == {"reason": "attempts_exhausted"}


async def test_a_permanent_error_fails_the_job_at_once(messaging: Messaging) -> None:
    remote = Remote(errors=[PermanentJobError("XDSPatientIdDoesNotMatch")])
    identifier = await add(messaging)
    worker = JobWorker(messaging, [kind(remote)], clock=Clock())

    assert await worker.run_once() == 1
    job = await get_job(messaging.store, identifier)
    assert job.state is JobState.FAILED and job.attempts == 1
    assert job.failure_reason == "permanent_error"
    assert job.last_error is not None and job.last_error.message == "XDSPatientIdDoesNotMatch"
    assert len(await job_failed_events(messaging.store)) == 1


async def test_a_job_older_than_its_max_age_fails_without_another_call(
    messaging: Messaging,
) -> None:
    remote, clock = Remote(errors=[ConnectionError("refused")]), Clock()
    policy = JobPolicy(max_attempts=10, max_age=timedelta(hours=1), initial_backoff=60)
    identifier = await add(messaging)
    worker = JobWorker(messaging, [kind(remote, policy=policy)], clock=clock)

    assert await worker.run_once() == 1
    clock.advance(3600)
    assert await worker.run_once() == 0
    job = await get_job(messaging.store, identifier)
    assert job.state is JobState.FAILED and job.failure_reason == "max_age_exceeded"
    assert remote.keys == ["doc-1"], "no call after the max age"
    (event,) = await job_failed_events(messaging.store)
    assert event.payload["reason"] == "max_age_exceeded"


async def test_a_payload_that_no_longer_parses_fails_at_once_without_a_call(
    messaging: Messaging,
) -> None:
    remote = Remote()
    identifier = await add(messaging, payload={"document": "renamed field, value never logged"})
    worker = JobWorker(messaging, [kind(remote)], clock=Clock())

    assert await worker.run_once() == 1
    assert await worker.run_once() == 0, "no crash loop: it is not claimed again"
    job = await get_job(messaging.store, identifier)
    assert job.state is JobState.FAILED and job.failure_reason == "invalid_payload"
    assert job.last_error is not None
    assert "document_id" in job.last_error.message
    assert "never logged" not in job.last_error.message
    assert remote.keys == []
    (event,) = await job_failed_events(messaging.store)
    assert event.payload["reason"] == "invalid_payload"


async def test_a_job_of_a_kind_this_worker_does_not_run_is_left_alone(
    messaging: Messaging,
) -> None:
    identifier = await add(messaging, kind="mss.send")
    worker = JobWorker(messaging, [kind(Remote())], clock=Clock())
    assert await worker.run_once() == 0
    assert (await get_job(messaging.store, identifier)).state is JobState.PENDING


# -- circuit breaker ------------------------------------------------------------------------


def test_breaker_opens_after_consecutive_failures_then_half_opens_for_one_trial() -> None:
    ticks = Ticks()
    breaker = CircuitBreaker(
        "dmp", BreakerPolicy(failure_threshold=3, open_seconds=30), clock=ticks
    )
    assert breaker.state is BreakerState.CLOSED
    breaker.record_failure()
    breaker.record_failure()
    breaker.record_success()  # a success resets the count
    breaker.record_failure()
    breaker.record_failure()
    assert breaker.state is BreakerState.CLOSED and breaker.acquire()
    breaker.record_failure()
    assert breaker.state is BreakerState.OPEN
    assert not breaker.available() and not breaker.acquire()

    ticks.value = 29.9
    assert breaker.state is BreakerState.OPEN
    ticks.value = 30.0
    assert breaker.state is BreakerState.HALF_OPEN
    assert breaker.acquire(), "one trial call"
    assert not breaker.acquire(), "only one while it is in flight"
    breaker.record_failure()
    assert breaker.state is BreakerState.OPEN, "a failed trial opens it again"

    ticks.value = 60.0
    assert breaker.acquire()
    breaker.release()  # the trial was not made after all
    assert breaker.acquire()
    breaker.record_success()
    assert breaker.state is BreakerState.CLOSED
    assert breaker.acquire() and breaker.acquire()


async def test_an_open_breaker_defers_the_jobs_of_every_kind_calling_that_endpoint(
    messaging: Messaging,
) -> None:
    clock, ticks = Clock(), Ticks()
    down = [ConnectionError("connect timeout") for _ in range(2)]
    remote, other_remote = Remote(errors=down), Remote()
    submit = kind(remote, endpoint="dmp", policy=JobPolicy(max_attempts=5, initial_backoff=1))
    hide = kind(other_remote, name="dmp.hide", endpoint="dmp")
    await add(messaging, "doc-1")
    await add(messaging, "doc-2")
    worker = JobWorker(
        messaging,
        [submit, hide],
        clock=clock,
        monotonic=ticks,
        breakers={"dmp": BreakerPolicy(failure_threshold=2, open_seconds=60)},
        rng=random.Random(3),
    )

    assert await worker.run_once() == 2
    assert worker.breakers["dmp"].state is BreakerState.OPEN
    hidden = await add(messaging, "doc-3", kind="dmp.hide")
    clock.advance(120)  # every job is due again, but the endpoint is still open
    assert await worker.run_once() == 0
    assert sorted(remote.keys) == ["doc-1", "doc-2"] and other_remote.keys == []
    deferred = await get_job(messaging.store, hidden)
    assert deferred.state is JobState.PENDING and deferred.attempts == 0, "deferred, not failed"

    ticks.value = 60.0  # half-open: a single trial goes through
    assert await worker.run_once() == 1
    assert worker.breakers["dmp"].state is BreakerState.CLOSED
    assert await worker.run_once() == 2, "closed again: the rest runs"
    assert sorted(remote.keys) == ["doc-1", "doc-1", "doc-2", "doc-2"]
    assert other_remote.keys == ["doc-3"]


async def test_a_permanent_rejection_does_not_open_the_breaker(messaging: Messaging) -> None:
    remote = Remote(errors=[PermanentJobError("rejected") for _ in range(3)])
    for n in range(3):
        await add(messaging, f"doc-{n}")
    worker = JobWorker(
        messaging,
        [kind(remote, endpoint="dmp")],
        clock=Clock(),
        breakers={"dmp": BreakerPolicy(failure_threshold=2)},
    )
    assert await worker.run_once() == 3
    assert worker.breakers["dmp"].state is BreakerState.CLOSED


# -- leases and concurrency -----------------------------------------------------------------


async def test_the_job_of_a_lost_worker_is_taken_again_once_its_lease_expired(
    messaging: Messaging, open_store: StoreFactory, tmp_path: Path
) -> None:
    clock = Clock()
    started = asyncio.Event()
    keys: list[str] = []

    async def hangs(job: Job[Submit]) -> Receipt:
        keys.append(job.idempotency_key)
        started.set()
        await asyncio.Event().wait()  # the worker dies during the call
        raise AssertionError("unreachable")

    identifier = await add(messaging)
    policy = JobPolicy(timeout=10)
    lost = JobWorker(messaging, [kind(Remote(), handler=hangs, policy=policy)], clock=clock)
    task = asyncio.create_task(lost.run_once())
    await asyncio.wait_for(started.wait(), 10)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    running = await get_job(messaging.store, identifier)
    assert running.state is JobState.RUNNING and running.lease_owner == lost.worker_id

    other = Messaging("dmp-connector", await open_store(), EmbeddedBus(tmp_path))
    remote = Remote()
    rescuer = JobWorker(other, [kind(remote, policy=policy)], clock=clock, lease_margin=5)
    clock.advance(14)
    assert await rescuer.run_once() == 0, "the lease (timeout + margin) still holds"
    clock.advance(30)
    assert await rescuer.run_once() == 1
    job = await get_job(messaging.store, identifier)
    assert job.state is JobState.SUCCEEDED and job.attempts == 2
    assert keys == remote.keys == ["doc-1"], "the same key after the takeover"


async def test_a_lost_last_attempt_fails_the_job_instead_of_looping(
    messaging: Messaging,
) -> None:
    clock = Clock()
    started = asyncio.Event()

    async def hangs(job: Job[Submit]) -> Receipt:
        started.set()
        await asyncio.Event().wait()
        raise AssertionError("unreachable")

    identifier = await add(messaging)
    policy = JobPolicy(max_attempts=1, timeout=1)
    worker = JobWorker(messaging, [kind(Remote(), handler=hangs, policy=policy)], clock=clock)
    task = asyncio.create_task(worker.run_once())
    await asyncio.wait_for(started.wait(), 10)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task

    clock.advance(3600)
    assert await worker.run_once() == 0
    job = await get_job(messaging.store, identifier)
    assert job.state is JobState.FAILED and job.failure_reason == "worker_lost"


async def test_two_workers_on_one_store_never_run_one_job_twice_or_together(
    open_store: StoreFactory, tmp_path: Path
) -> None:
    in_flight: set[str] = set()
    overlaps: list[str] = []
    runs: list[str] = []

    async def call(job: Job[Submit]) -> Receipt:
        if job.id in in_flight:
            overlaps.append(job.id)
        in_flight.add(job.id)
        runs.append(job.id)
        for _ in range(3):
            await asyncio.sleep(0)  # let the other worker try to take it
        in_flight.discard(job.id)
        return Receipt(remote_id=job.payload.document_id)

    replicas = [Messaging("dmp-connector", await open_store(), EmbeddedBus(tmp_path)) for _ in "ab"]
    for n in range(30):
        await add(replicas[0], f"doc-{n}")
    workers = [
        JobWorker(m, [kind(Remote(), handler=call)], clock=Clock(), batch_size=7, concurrency=3)
        for m in replicas
    ]

    for _ in range(20):
        done = await replicas[0].store.count(JOBS, {"state": "succeeded"})
        if done == 30:
            break
        await asyncio.gather(*(w.run_once() for w in workers))
    assert await replicas[0].store.count(JOBS, {"state": "succeeded"}) == 30
    assert overlaps == []
    assert sorted(runs) == sorted(set(runs)) and len(runs) == 30, "each job ran once"


async def test_a_worker_claims_no_more_jobs_than_it_runs_at_once(messaging: Messaging) -> None:
    # A claimed job starts at once: its lease never runs out while it waits for a slot.
    for n in range(5):
        await add(messaging, f"doc-{n}")
    worker = JobWorker(messaging, [kind(Remote())], clock=Clock(), concurrency=2)
    assert await worker.run_once() == 2
    assert await messaging.store.count(JOBS, {"state": "pending"}) == 3
    assert await worker.run_once() == 2
    assert await worker.run_once() == 1
