"""Durable jobs for external calls: scheduled inside a use case's transaction, run outside any.

A use case schedules a job in its own unit of work (`schedule(uow.tx, ...)`); the job document
in the reserved `_jobs` collection commits with the use case's state and events, or not at all.
A `JobWorker` claims due jobs with a lease (optimistic `update(expected_version)`, so two
workers never run one job together, and a crashed worker's job is taken again once its lease
expired), runs the kind's handler (the external call) outside any transaction, then records the
outcome and the events the completion callbacks raise in a new transaction. The handler must
send `job.idempotency_key` to the remote: a job may run again after a crash, never with a new key.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import random
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any, Generic, TypeVar

import structlog
from opentelemetry import context as otel_context
from opentelemetry import trace
from pydantic import BaseModel, ValidationError

from bsante.chassis import context
from bsante.chassis.errors import Conflict, NotFound
from bsante.chassis.messaging import Messaging, UnitOfWork
from bsante.chassis.metrics import JOB_BREAKER_OPEN, JOBS_FAILED, JOBS_RUN
from bsante.chassis.store import (
    JSON,
    ConcurrencyConflict,
    Document,
    Index,
    Query,
    Store,
    Transaction,
)
from bsante.chassis.tracing import extract_context, inject_headers
from bsante.contracts.events import JobFailed, JobFailureReason

log = structlog.get_logger(__name__)
tracer = trace.get_tracer("bsante.chassis.jobs")

JOBS = "_jobs"
MAX_KEY_LENGTH = 200
MAX_ERROR_LENGTH = 300
# What the worker's claim (due pending or expired running jobs, by due time) and the ops list
# (newest first, by state and/or kind) ask; a service that runs jobs ensures them at start.
INDEXES: list[Index] = [
    Index(JOBS, ("state", "due_at")),
    Index(JOBS, ("created_at",)),
    Index(JOBS, ("state", "created_at")),
    Index(JOBS, ("kind", "created_at")),
]

P = TypeVar("P", bound=BaseModel)
O = TypeVar("O")  # noqa: E741  (the outcome type of a handler)


class JobState(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


class PermanentJobError(Exception):
    """Retrying cannot help (the remote rejected the request on its merits): fail at once.

    Its message is kept on the job and published in `JobFailed`: name codes, never patient data.
    """


class JobNotFound(NotFound):
    kind = "job-not-found"


class JobNotRetryable(Conflict):
    kind = "job-not-retryable"


def utc_iso(moment: datetime) -> str:
    """Fixed-width UTC timestamps: they order as strings in both store adapters' filters."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_iso(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)


def job_id(kind: str, idempotency_key: str) -> str:
    """The id of the job of (kind, key): one document, whose insert claims the key."""
    return hashlib.sha256(f"{kind}\x1f{idempotency_key}".encode()).hexdigest()[:32]


def first_line(error: BaseException | str) -> str:
    """The first line of an error, bounded: a traceback or a second line may quote content."""
    text = error if isinstance(error, str) else str(error)
    return (text.splitlines() or [""])[0][:MAX_ERROR_LENGTH]


# -- policies -------------------------------------------------------------------------------


@dataclass(frozen=True)
class JobPolicy:
    """How a kind of job is retried: attempts, age, backoff with jitter, what is retryable."""

    max_attempts: int = 5
    max_age: timedelta = timedelta(days=1)
    initial_backoff: float = 1.0
    multiplier: float = 2.0
    max_backoff: float = 300.0
    # Share of each delay drawn at random, so jobs failing together do not retry together.
    jitter: float = 0.5
    # One attempt's time limit; the lease lasts this plus the worker's margin.
    timeout: float = 30.0
    # Errors worth retrying; any other (and PermanentJobError always) fails the job at once.
    retryable: tuple[type[BaseException], ...] = (Exception,)

    def __post_init__(self) -> None:
        if self.max_attempts < 1 or not 0.0 <= self.jitter <= 1.0 or self.timeout <= 0:
            raise ValueError("max_attempts >= 1, 0 <= jitter <= 1, timeout > 0")

    def backoff(self, attempt: int, rng: random.Random | None = None) -> float:
        """Delay before attempt `attempt + 1`: in [(1 - jitter) * d, d], d = exponential delay."""
        delay = min(self.max_backoff, self.initial_backoff * self.multiplier ** (attempt - 1))
        draw = (rng or random).random()
        return float(delay * (1.0 - self.jitter * draw))

    def is_retryable(self, error: BaseException) -> bool:
        if isinstance(error, PermanentJobError):
            return False
        return isinstance(error, (TimeoutError, *self.retryable))


@dataclass(frozen=True)
class BreakerPolicy:
    failure_threshold: int = 5
    open_seconds: float = 30.0


class BreakerState(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


class CircuitBreaker:
    """Per external endpoint: consecutive failures open it; after a pause one trial call decides.

    Open: jobs calling the endpoint are deferred (left due, not claimed, no attempt counted).
    Only failures that say the remote is unwell count (retryable ones: unreachable, 5xx,
    timeout); a permanent rejection means the remote answered, so it counts as a success.
    """

    def __init__(
        self,
        name: str,
        policy: BreakerPolicy | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        service: str = "",
    ) -> None:
        self.name = name
        self.policy = policy or BreakerPolicy()
        self._clock = clock
        self._service = service
        self._state = BreakerState.CLOSED
        self._failures = 0
        self._opened_at = 0.0
        self._trial_in_flight = False

    @property
    def state(self) -> BreakerState:
        if (
            self._state is BreakerState.OPEN
            and self._clock() >= self._opened_at + self.policy.open_seconds
        ):
            self._state = BreakerState.HALF_OPEN
        return self._state

    def available(self) -> bool:
        """Whether a call may be tried now (does not reserve it)."""
        state = self.state
        return state is BreakerState.CLOSED or (
            state is BreakerState.HALF_OPEN and not self._trial_in_flight
        )

    def acquire(self) -> bool:
        """Reserve a call: always when closed, the single trial when half-open."""
        if not self.available():
            return False
        if self._state is BreakerState.HALF_OPEN:
            self._trial_in_flight = True
        return True

    def release(self) -> None:
        """The reserved call was not made (claim lost, payload invalid): free the trial."""
        self._trial_in_flight = False

    def record_success(self) -> None:
        self._trial_in_flight = False
        self._failures = 0
        self._set(BreakerState.CLOSED)

    def record_failure(self) -> None:
        self._trial_in_flight = False
        self._failures += 1
        if self._state is BreakerState.HALF_OPEN or self._failures >= self.policy.failure_threshold:
            self._opened_at = self._clock()
            self._set(BreakerState.OPEN)

    def _set(self, state: BreakerState) -> None:
        if state is not self._state:
            log.warning("circuit_breaker", endpoint=self.name, state=state.value)
        self._state = state
        JOB_BREAKER_OPEN.labels(self._service, self.name).set(
            0 if state is BreakerState.CLOSED else 1
        )


# -- jobs -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class JobError:
    type: str
    message: str
    at: datetime


@dataclass(frozen=True)
class JobRecord:
    """A job as stored: what ops see, and what `on_failure` gets (the payload may not parse)."""

    id: str
    version: int
    kind: str
    idempotency_key: str
    state: JobState
    attempts: int
    structure_id: str
    subject_id: str
    payload: JSON
    created_at: datetime
    due_at: datetime
    updated_at: datetime
    last_error: JobError | None = None
    failure_reason: str | None = None
    outcome: Any = None
    lease_owner: str | None = None
    retries: int = 0
    retried_by: str | None = None

    @classmethod
    def from_document(cls, doc: Document) -> JobRecord:
        d = doc.data
        error = d.get("last_error")
        return cls(
            id=doc.id,
            version=doc.version,
            kind=d["kind"],
            idempotency_key=d["idempotency_key"],
            state=JobState(d["state"]),
            attempts=int(d["attempts"]),
            structure_id=d["structure_id"],
            subject_id=d["subject_id"],
            payload=dict(d.get("payload") or {}),
            created_at=parse_iso(d["created_at"]),
            due_at=parse_iso(d["due_at"]),
            updated_at=parse_iso(d["updated_at"]),
            last_error=JobError(error["type"], error["message"], parse_iso(error["at"]))
            if error
            else None,
            failure_reason=d.get("failure_reason"),
            outcome=d.get("outcome"),
            lease_owner=d.get("lease_owner"),
            retries=int(d.get("retries", 0)),
            retried_by=d.get("retried_by"),
        )

    def to_json(self, *, with_payload: bool = True) -> JSON:
        view: JSON = {
            "id": self.id,
            "version": self.version,
            "kind": self.kind,
            "idempotency_key": self.idempotency_key,
            "state": self.state.value,
            "attempts": self.attempts,
            "retries": self.retries,
            "retried_by": self.retried_by,
            "structure_id": self.structure_id,
            "subject_id": self.subject_id,
            "created_at": utc_iso(self.created_at),
            "due_at": utc_iso(self.due_at),
            "updated_at": utc_iso(self.updated_at),
            "lease_owner": self.lease_owner,
            "failure_reason": self.failure_reason,
            "last_error": {
                "type": self.last_error.type,
                "message": self.last_error.message,
                "at": utc_iso(self.last_error.at),
            }
            if self.last_error
            else None,
            "outcome": self.outcome,
        }
        if with_payload:
            view["payload"] = self.payload
        return view


@dataclass(frozen=True)
class Job(Generic[P]):
    """What a handler gets: the stored record and its payload, parsed."""

    record: JobRecord
    payload: P

    @property
    def id(self) -> str:
        return self.record.id

    @property
    def idempotency_key(self) -> str:
        return self.record.idempotency_key

    @property
    def attempt(self) -> int:
        """1 for the first attempt."""
        return self.record.attempts


@dataclass(frozen=True)
class JobFailure:
    """Why a job gave up, as `on_failure` and the `JobFailed` event see it."""

    reason: JobFailureReason
    error_type: str
    error_message: str


SuccessCallback = Callable[[UnitOfWork, Job[P], O], Awaitable[None]]
FailureCallback = Callable[[UnitOfWork, JobRecord, JobFailure], Awaitable[None]]


@dataclass(frozen=True)
class JobKind(Generic[P, O]):
    """One kind of external call.

    `handler(job)` makes the call, outside any transaction, and returns an outcome (a pydantic
    model, a JSON dict or None, kept on the job); it raises `PermanentJobError` for a rejection
    that no retry can fix and any retryable error otherwise (see `policy.retryable`).
    `on_success(uow, job, outcome)` and `on_failure(uow, record, failure)` run in the
    transaction that records the outcome: what they emit commits with it. `endpoint` names the
    external system; kinds calling the same one share its circuit breaker.
    """

    name: str
    payload: type[P]
    handler: Callable[[Job[P]], Awaitable[O]]
    on_success: SuccessCallback[P, O] | None = None
    on_failure: FailureCallback | None = None
    policy: JobPolicy = field(default_factory=JobPolicy)
    endpoint: str | None = None


@dataclass(frozen=True)
class Scheduled:
    job_id: str
    created: bool  # False: this (kind, key) was already scheduled, nothing was written


async def schedule(
    tx: Transaction,
    *,
    kind: JobKind[Any, Any] | str,
    idempotency_key: str,
    payload: BaseModel | Mapping[str, Any],
    structure_id: str,
    subject_id: str | None = None,
    not_before: datetime | None = None,
    now: datetime | None = None,
) -> Scheduled:
    """Schedule a job in the caller's transaction; the same (kind, key) twice is a no-op.

    The job document's id is derived from (kind, key), so its conditional insert
    (`insert_if_absent`) is the claim of the key: a second schedule, concurrent or not, writes
    no second job and leaves the caller's transaction usable.
    """
    name = kind if isinstance(kind, str) else kind.name
    if not name or not idempotency_key or len(idempotency_key) > MAX_KEY_LENGTH:
        raise ValueError(f"a job needs a kind and a key of 1 to {MAX_KEY_LENGTH} characters")
    if isinstance(kind, JobKind) and not isinstance(payload, kind.payload):
        payload = kind.payload.model_validate(payload)
    data = payload.model_dump(mode="json") if isinstance(payload, BaseModel) else dict(payload)
    identifier = job_id(name, idempotency_key)
    moment = now or datetime.now(UTC)
    due = max(moment, not_before) if not_before else moment
    inserted = await tx.insert_if_absent(
        JOBS,
        identifier,
        {
            "kind": name,
            "idempotency_key": idempotency_key,
            "payload": data,
            "structure_id": structure_id,
            "subject_id": subject_id or identifier,
            "state": JobState.PENDING.value,
            "attempts": 0,
            "retries": 0,
            "created_at": utc_iso(moment),
            "due_at": utc_iso(due),
            "updated_at": utc_iso(moment),
            "lease_owner": None,
            "last_error": None,
            "failure_reason": None,
            "outcome": None,
            "correlation_id": context.current_correlation_id(),
            # The trace of the scheduling request continues in the worker's spans.
            "trace": inject_headers({}),
        },
    )
    return Scheduled(identifier, created=inserted is not None)


# -- ops ------------------------------------------------------------------------------------


async def list_jobs(
    store: Store,
    *,
    state: JobState | None = None,
    kind: str | None = None,
    limit: int = 50,
    offset: int = 0,
) -> tuple[list[JobRecord], int]:
    """Jobs, newest first, with the total matching the filters."""
    where: dict[str, Any] = {}
    if state is not None:
        where["state"] = state.value
    if kind is not None:
        where["kind"] = kind
    docs = await store.find(
        JOBS, Query(where=where, order_by=[("created_at", True)], limit=limit, offset=offset)
    )
    return [JobRecord.from_document(d) for d in docs], await store.count(JOBS, where)


async def get_job(store: Store, identifier: str) -> JobRecord:
    doc = await store.get(JOBS, identifier)
    if doc is None:
        raise JobNotFound(
            f"No job {identifier}", errors=[{"field": "job_id", "message": "unknown job"}]
        )
    return JobRecord.from_document(doc)


async def retry_job(
    store: Store, identifier: str, *, by: str, now: datetime | None = None
) -> JobRecord:
    """Give a Failed job (after a fix) a fresh set of attempts, due now; `by` names who asked."""
    moment = now or datetime.now(UTC)
    async with store.transaction() as tx:
        doc = await tx.get(JOBS, identifier)
        if doc is None:
            raise JobNotFound(
                f"No job {identifier}", errors=[{"field": "job_id", "message": "unknown job"}]
            )
        if doc.data["state"] != JobState.FAILED.value:
            raise JobNotRetryable(
                f"Only a failed job can be retried; this one is {doc.data['state']}",
                errors=[{"field": "state", "message": f"is {doc.data['state']}, not failed"}],
            )
        data = dict(doc.data)
        data.update(
            state=JobState.PENDING.value,
            attempts=0,
            retries=int(data.get("retries", 0)) + 1,
            due_at=utc_iso(moment),
            updated_at=utc_iso(moment),
            failure_reason=None,
            lease_owner=None,
            retried_by=by,
        )
        updated = await tx.update(JOBS, identifier, data, doc.version)
    log.info("job_retried", job_id=identifier, kind=data["kind"], by=by)
    return JobRecord.from_document(updated)


# -- worker ---------------------------------------------------------------------------------


@dataclass
class _Claimed:
    kind: JobKind[Any, Any]
    doc: Document
    breaker: CircuitBreaker | None


def _outcome_json(outcome: Any) -> Any:
    if outcome is None or isinstance(outcome, dict):
        return outcome
    if isinstance(outcome, BaseModel):
        return outcome.model_dump(mode="json")
    raise TypeError(f"a job handler returns a pydantic model, a dict or None, not {type(outcome)}")


class JobWorker:
    """Claims due jobs of its kinds, runs them, records what happened. Run it supervised.

    `run_forever()` is the long-running task; `run_once()` claims one batch, runs it to the end
    and returns how many jobs it ran (tests drive it directly).
    """

    def __init__(
        self,
        messaging: Messaging,
        kinds: Sequence[JobKind[Any, Any]],
        *,
        worker_id: str | None = None,
        batch_size: int = 20,
        concurrency: int = 4,
        poll_interval: float = 1.0,
        lease_margin: float = 30.0,
        breakers: Mapping[str, BreakerPolicy] | None = None,
        clock: Callable[[], datetime] | None = None,
        monotonic: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
    ) -> None:
        self.messaging = messaging
        self.store = messaging.store
        self.service = messaging.service
        self.kinds = {k.name: k for k in kinds}
        if len(self.kinds) != len(kinds):
            raise ValueError("two job kinds share a name")
        self.worker_id = worker_id or f"{self.service}:{uuid.uuid4().hex[:12]}"
        if concurrency < 1 or batch_size < concurrency:
            raise ValueError("concurrency >= 1 and batch_size >= concurrency")
        self.batch_size = batch_size
        self.concurrency = concurrency
        self.poll_interval = poll_interval
        self.lease_margin = lease_margin
        self._now = clock or (lambda: datetime.now(UTC))
        self._rng = rng or random.Random()
        self._wake = asyncio.Event()
        policies = breakers or {}
        self.breakers = {
            k.endpoint: CircuitBreaker(
                k.endpoint, policies.get(k.endpoint), clock=monotonic, service=self.service
            )
            for k in kinds
            if k.endpoint
        }

    def wake(self) -> None:
        """Look for due jobs now rather than at the next poll (e.g. after scheduling one)."""
        self._wake.set()

    async def run_forever(self) -> None:
        while True:
            self._wake.clear()
            try:
                ran = await self.run_once()
            except asyncio.CancelledError:
                raise
            except Exception as error:
                # The store is unreachable, most likely: try again at the next poll.
                log.warning(
                    "job_worker_error", service=self.service, error_type=type(error).__name__
                )
                ran = 0
            if ran < self.concurrency:
                # asyncio.timeout, not wait_for: see the outbox relay (CPython gh-86296).
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self.poll_interval):
                        await self._wake.wait()

    async def run_once(self) -> int:
        # At most `concurrency` claims at a time: a claimed job starts at once, its lease
        # never runs out while it waits for a slot.
        claimed = await self._claim_due()
        await asyncio.gather(*(self._run(c) for c in claimed))
        return len(claimed)

    # -- claiming -------------------------------------------------------------------------

    def _callable_kinds(self) -> list[str]:
        return [
            name
            for name, kind in self.kinds.items()
            if kind.endpoint is None or self.breakers[kind.endpoint].available()
        ]

    async def _claim_due(self) -> list[_Claimed]:
        names = self._callable_kinds()
        if not names:
            return []
        now = self._now()
        # Pending jobs whose time came, and running jobs whose lease expired (worker lost).
        docs = await self.store.find(
            JOBS,
            Query(
                where={
                    "state": {"$in": [JobState.PENDING.value, JobState.RUNNING.value]},
                    "kind": {"$in": names},
                    "due_at": {"$lte": utc_iso(now)},
                },
                order_by=[("due_at", False)],
                limit=self.batch_size,
            ),
        )
        claimed: list[_Claimed] = []
        for doc in docs:
            if len(claimed) >= self.concurrency:
                break
            kind = self.kinds[doc.data["kind"]]
            breaker = self.breakers.get(kind.endpoint) if kind.endpoint else None
            if breaker is not None and not breaker.acquire():
                JOBS_RUN.labels(self.service, kind.name, "deferred").inc()
                continue
            try:
                taken = await self._claim(kind, doc, now)
            except ConcurrencyConflict:
                taken = None  # another worker was faster
            except Exception as error:
                log.warning("job_claim_failed", job_id=doc.id, error_type=type(error).__name__)
                taken = None
            if taken is None:
                if breaker is not None:
                    breaker.release()
                continue
            claimed.append(_Claimed(kind, taken, breaker))
        return claimed

    async def _claim(
        self, kind: JobKind[Any, Any], doc: Document, now: datetime
    ) -> Document | None:
        data = dict(doc.data)
        created = parse_iso(data["created_at"])
        lost = data["state"] == JobState.RUNNING.value
        if lost and int(data["attempts"]) >= kind.policy.max_attempts:
            # The last attempt's worker died mid-call: no attempt is left to run it again.
            await self._give_up(
                kind,
                doc,
                JobFailure(
                    "worker_lost", "LeaseExpired", "the worker of the last attempt was lost"
                ),
                now,
            )
            return None
        if now - created >= kind.policy.max_age:
            await self._give_up(
                kind,
                doc,
                JobFailure(
                    "max_age_exceeded", "MaxAgeExceeded", "the job is older than its max age"
                ),
                now,
            )
            return None
        data.update(
            state=JobState.RUNNING.value,
            attempts=int(data["attempts"]) + 1,
            lease_owner=self.worker_id,
            due_at=utc_iso(now + timedelta(seconds=kind.policy.timeout + self.lease_margin)),
            updated_at=utc_iso(now),
        )
        async with self.store.transaction() as tx:
            return await tx.update(JOBS, doc.id, data, doc.version)

    # -- running --------------------------------------------------------------------------

    async def _run(self, claimed: _Claimed) -> None:
        doc, kind = claimed.doc, claimed.kind
        record = JobRecord.from_document(doc)
        cid_token = context.correlation_id.set(doc.data.get("correlation_id"))
        trace_token = otel_context.attach(extract_context(doc.data.get("trace") or {}))
        bound = structlog.contextvars.bind_contextvars(service=self.service)
        try:
            with tracer.start_as_current_span(
                f"job {kind.name}",
                kind=trace.SpanKind.CLIENT,
                attributes={
                    "bsante.job.id": doc.id,
                    "bsante.job.kind": kind.name,
                    "bsante.job.attempt": record.attempts,
                    "bsante.service": self.service,
                },
            ):
                await self._attempt(claimed, record)
        finally:
            structlog.contextvars.reset_contextvars(**bound)
            otel_context.detach(trace_token)
            context.correlation_id.reset(cid_token)

    async def _attempt(self, claimed: _Claimed, record: JobRecord) -> None:
        kind, doc, breaker = claimed.kind, claimed.doc, claimed.breaker
        try:
            payload = kind.payload.model_validate(record.payload)
        except ValidationError as error:
            if breaker is not None:
                breaker.release()
            fields = sorted(
                {".".join(str(p) for p in e["loc"]) or "payload" for e in error.errors()}
            )
            message = (
                f"payload no longer parses ({error.error_count()} errors: {', '.join(fields)})"
            )
            await self._give_up(
                kind, doc, JobFailure("invalid_payload", "InvalidPayload", message), self._now()
            )
            return
        job: Job[Any] = Job(record, payload)
        try:
            async with asyncio.timeout(kind.policy.timeout):
                outcome = await kind.handler(job)
        except asyncio.CancelledError:
            if breaker is not None:
                breaker.release()
            raise  # the lease expires and another attempt runs, with the same key
        except Exception as error:
            retryable = kind.policy.is_retryable(error)
            if breaker is not None and retryable:
                breaker.record_failure()
            elif breaker is not None:
                breaker.record_success()  # the remote answered, if only to refuse
            log.warning(
                "job_attempt_failed",
                job_id=doc.id,
                kind=kind.name,
                attempt=record.attempts,
                error_type=type(error).__name__,
                retryable=retryable,
            )
            await self._after_failure(kind, doc, error, retryable)
            return
        if breaker is not None:
            breaker.record_success()
        try:
            stored = _outcome_json(outcome)
        except TypeError as error:
            # A bug of the handler, not of the remote: calling again would not help.
            failure = JobFailure("permanent_error", "InvalidOutcome", first_line(error))
            await self._give_up(kind, doc, failure, self._now())
            return
        await self._succeed(kind, doc, job, outcome, stored)

    async def _succeed(
        self, kind: JobKind[Any, Any], doc: Document, job: Job[Any], outcome: Any, stored: Any
    ) -> None:
        now = self._now()
        data = dict(doc.data)
        data.update(
            state=JobState.SUCCEEDED.value,
            outcome=stored,
            lease_owner=None,
            updated_at=utc_iso(now),
            due_at=utc_iso(now),
        )
        try:
            async with self.messaging.unit_of_work() as uow:
                await uow.tx.update(JOBS, doc.id, data, doc.version)
                if kind.on_success is not None:
                    await kind.on_success(uow, job, outcome)
        except ConcurrencyConflict as conflict:
            if conflict.collection == JOBS and conflict.doc_id == doc.id:
                self._lease_lost(doc)
                return
            # on_success met a concurrent change of the domain: the lease expires and the job
            # runs again (same key, the remote answers as for a duplicate).
            log.warning("job_completion_conflict", job_id=doc.id, collection=conflict.collection)
            return
        except Exception as error:
            # The call succeeded but its outcome cannot be recorded: park the job for ops
            # rather than call the remote again and again.
            log.error("job_completion_failed", job_id=doc.id, error_type=type(error).__name__)
            await self._give_up(
                kind,
                doc,
                JobFailure(
                    "permanent_error",
                    type(error).__name__,
                    f"on_success raised: {first_line(error)}",
                ),
                now,
                callbacks=False,
            )
            return
        JOBS_RUN.labels(self.service, kind.name, "succeeded").inc()
        log.info("job_succeeded", job_id=doc.id, kind=kind.name, attempt=job.attempt)

    async def _after_failure(
        self, kind: JobKind[Any, Any], doc: Document, error: Exception, retryable: bool
    ) -> None:
        now = self._now()
        policy = kind.policy
        attempts = int(doc.data["attempts"])
        age = now - parse_iso(doc.data["created_at"])
        error_type, message = type(error).__name__, first_line(error)
        if not retryable:
            await self._give_up(kind, doc, JobFailure("permanent_error", error_type, message), now)
            return
        if attempts >= policy.max_attempts:
            await self._give_up(
                kind, doc, JobFailure("attempts_exhausted", error_type, message), now
            )
            return
        next_due = now + timedelta(seconds=policy.backoff(attempts, self._rng))
        if age >= policy.max_age or next_due - parse_iso(doc.data["created_at"]) >= policy.max_age:
            await self._give_up(kind, doc, JobFailure("max_age_exceeded", error_type, message), now)
            return
        data = dict(doc.data)
        data.update(
            state=JobState.PENDING.value,
            lease_owner=None,
            due_at=utc_iso(next_due),
            updated_at=utc_iso(now),
            last_error={"type": error_type, "message": message, "at": utc_iso(now)},
        )
        try:
            async with self.store.transaction() as tx:
                await tx.update(JOBS, doc.id, data, doc.version)
        except ConcurrencyConflict:
            self._lease_lost(doc)
            return
        JOBS_RUN.labels(self.service, kind.name, "retry").inc()

    async def _give_up(
        self,
        kind: JobKind[Any, Any],
        doc: Document,
        failure: JobFailure,
        now: datetime,
        *,
        callbacks: bool = True,
    ) -> None:
        """Failed for good: error kept, metric counted, `JobFailed` in the same transaction."""
        data = dict(doc.data)
        data.update(
            state=JobState.FAILED.value,
            lease_owner=None,
            updated_at=utc_iso(now),
            due_at=utc_iso(now),
            failure_reason=failure.reason,
            last_error={
                "type": failure.error_type[:100],
                "message": first_line(failure.error_message),
                "at": utc_iso(now),
            },
        )
        try:
            async with self.messaging.unit_of_work() as uow:
                updated = await uow.tx.update(JOBS, doc.id, data, doc.version)
                record = JobRecord.from_document(updated)
                await uow.emit(
                    JobFailed(
                        service=self.service,
                        job_id=doc.id,
                        kind=kind.name,
                        attempts=record.attempts,
                        reason=failure.reason,
                        error_type=failure.error_type[:100],
                        error_message=first_line(failure.error_message),
                        created_at=record.created_at,
                        failed_at=now,
                    ),
                    structure_id=record.structure_id,
                    subject_id=record.subject_id,
                )
                if callbacks and kind.on_failure is not None:
                    await kind.on_failure(uow, record, failure)
        except ConcurrencyConflict:
            self._lease_lost(doc)
            return
        except Exception as error:
            if not callbacks:
                raise
            log.error("job_failure_callback_failed", job_id=doc.id, error_type=type(error).__name__)
            await self._give_up(kind, doc, failure, now, callbacks=False)
            return
        JOBS_FAILED.labels(self.service, kind.name, failure.reason).inc()
        JOBS_RUN.labels(self.service, kind.name, "failed").inc()
        log.error(
            "job_failed",
            job_id=doc.id,
            kind=kind.name,
            reason=failure.reason,
            error_type=failure.error_type,
            attempts=data["attempts"],
        )

    def _lease_lost(self, doc: Document) -> None:
        # Another worker took the job after our lease expired; it runs with the same key.
        log.warning("job_lease_lost", job_id=doc.id, worker=self.worker_id)
