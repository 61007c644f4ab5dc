"""Unit of work with transactional outbox, the outbox relay, and idempotent event consumers.

The relay drains the outbox in batches while it holds the service's relay lease (one replica
publishes at a time), parks a row that keeps failing (only the later rows of its key wait for
it), and `purge_once` drops what the retention no longer needs to keep.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Generic, TypeVar

import structlog
from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from pydantic import ValidationError

from bsante.chassis import context
from bsante.chassis.bus import EventBus, Message
from bsante.chassis.bus.delivery import PoisonMessage
from bsante.chassis.metrics import (
    EVENTS_CONSUMED,
    EVENTS_PUBLISHED,
    OUTBOX_FAILURES,
    OUTBOX_PARKED,
    PURGED,
)
from bsante.chassis.store import (
    OutboxFailure,
    OutboxRecord,
    Store,
    Transaction,
    TransientConflict,
)
from bsante.chassis.tracing import extract_context, inject_headers, spans_recorded
from bsante.contracts.envelope import Envelope
from bsante.contracts.events import AccessAction, PatientDataAccessed, Payload

log = structlog.get_logger(__name__)
tracer = trace.get_tracer("bsante.chassis.messaging")

P = TypeVar("P", bound=Payload)
R = TypeVar("R")


@dataclass(frozen=True)
class RelayPolicy:
    """How the outbox relay drains, retries, parks, shares and forgets."""

    batch_size: int = 500
    # A row whose publication failed this many times is parked (state Failed).
    max_attempts: int = 10
    # Wait before a failed row's next attempt: initial, doubled per attempt, at most max.
    initial_backoff: float = 1.0
    max_backoff: float = 60.0
    # The relay lease: renewed every lease_ttl / 3 while held; a crashed holder's lease is
    # taken over once it expired.
    lease_ttl: float = 15.0
    # Sent outbox rows, inbox claims and embedded-log entries older than this are purged.
    retention: timedelta = timedelta(days=7)

    def backoff(self, attempts: int) -> timedelta:
        return timedelta(
            seconds=min(self.max_backoff, self.initial_backoff * 2 ** max(0, attempts - 1))
        )


@dataclass(frozen=True)
class PurgeReport:
    outbox: int
    inbox: int
    log: int


class BusUnavailable(Exception):
    """The bus refused a whole batch: no row is blamed, the relay backs off and tries again."""


class UnitOfWork:
    """One transaction of the service's store; events raised here go to its outbox."""

    def __init__(self, tx: Transaction, producer: str, causation: Envelope | None) -> None:
        self.tx = tx
        self._producer = producer
        self._causation = causation
        self.events: list[Envelope] = []

    async def emit(self, payload: Payload, *, structure_id: str, subject_id: str) -> Envelope:
        envelope = Envelope(
            event_type=payload.event_type,
            schema_version=payload.schema_version,
            producer=self._producer,
            structure_id=structure_id,
            subject_id=subject_id,
            correlation_id=(
                self._causation.correlation_id
                if self._causation
                else context.current_correlation_id()
            ),
            causation_id=str(self._causation.event_id) if self._causation else None,
            payload=payload.model_dump(mode="json"),
        )
        # The trace context of the write travels with the row: the relay re-attaches it.
        await self.tx.add_outbox(
            OutboxRecord(
                event_id=str(envelope.event_id),
                topic=payload.topic,
                key=subject_id,
                value=envelope.to_json(),
                headers=inject_headers({"x-correlation-id": envelope.correlation_id}),
                created_at=envelope.occurred_at,
            )
        )
        self.events.append(envelope)
        return envelope

    async def audit(
        self,
        *,
        user_id: str,
        acting_structure: str,
        patient_id: str,
        action: AccessAction,
        resource: str,
        service_client: str | None = None,
    ) -> None:
        """Record an access to patient data, in the same transaction as the access itself.

        `service_client`: another service read or wrote on `user_id`'s behalf (a service token).
        """
        await self.emit(
            PatientDataAccessed(
                user_id=user_id,
                acting_structure=acting_structure,
                patient_id=patient_id,
                action=action,
                resource=resource,
                service=self._producer,
                at=datetime.now(UTC),
                request_id=context.request_id.get(),
                client_address=context.client_address.get(),
                service_client=service_client,
            ),
            structure_id=acting_structure,
            subject_id=patient_id,
        )

    async def claim(self, group: str, envelope: Envelope) -> bool:
        """Inbox: False when this group already handled the event (then do nothing)."""
        return await self.tx.claim_inbox(group, str(envelope.event_id))


class BatchUndone(Exception):  # noqa: N818  (an outcome, reported to the bus adapter)
    """A consumer batch was rolled back; its messages are delivered again one by one."""


@dataclass
class _Batch:
    messaging: Messaging
    tx: Transaction
    failed: bool = False
    emitted: bool = False


_current_batch: ContextVar[_Batch | None] = ContextVar("consumer_batch", default=None)


class Messaging:
    """Owns a service's store, bus, outbox relay, retention purge and subscriptions."""

    def __init__(
        self,
        service: str,
        store: Store,
        bus: EventBus,
        *,
        poll_interval: float = 1.0,
        relay_backoff: float = 2.0,
        policy: RelayPolicy | None = None,
        holder: str | None = None,
    ) -> None:
        self.service = service
        self.store = store
        self.bus = bus
        self.policy = policy or RelayPolicy()
        # Who this relay is, in the lease: unique per Messaging object, readable by ops.
        self.holder = holder or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.lease_name = f"outbox-relay:{service}"
        self._poll_interval = poll_interval
        self._relay_backoff = relay_backoff
        self._wake = asyncio.Event()
        self._relay_task: asyncio.Task[None] | None = None
        self._lease_renew_at = 0.0  # loop time after which the lease must be renewed

    @contextlib.asynccontextmanager
    async def unit_of_work(self, causation: Envelope | None = None) -> AsyncIterator[UnitOfWork]:
        batch = _current_batch.get()
        if batch is not None and batch.messaging is self:
            # Inside a consumer batch: share its transaction. An error escaping this unit of
            # work (even one its caller catches) undoes the whole batch, which is then
            # delivered again message by message, so no partial effect is ever kept.
            uow = UnitOfWork(batch.tx, self.service, causation)
            try:
                yield uow
            except BaseException:
                batch.failed = True
                raise
            batch.emitted = batch.emitted or bool(uow.events)
            return
        async with self.store.transaction() as tx:
            uow = UnitOfWork(tx, self.service, causation)
            yield uow
        if uow.events:
            self._wake.set()

    @contextlib.asynccontextmanager
    async def consumer_batch(self) -> AsyncIterator[None]:
        """One store transaction for the handlers of a batch of consumed events (one fsync
        and one offset commit per batch instead of per event). Raises `BatchUndone` (and
        keeps nothing) when one of its units of work failed."""
        async with self.store.transaction() as tx:
            batch = _Batch(self, tx)
            token = _current_batch.set(batch)
            try:
                yield
            finally:
                _current_batch.reset(token)
            if batch.failed:
                raise BatchUndone("a unit of work of the batch failed")
        if batch.emitted:
            self._wake.set()

    async def run_unit_of_work(
        self,
        block: Callable[[UnitOfWork], Awaitable[R]],
        *,
        causation: Envelope | None = None,
        attempts: int = 3,
    ) -> R:
        """`block` in a unit of work, run again (at most `attempts` times in all) while the
        database gives the transaction up (`TransientConflict`, e.g. MongoDB's WriteConflict);
        then that error (a ConcurrencyConflict, 409) propagates. `block` must be safe to run
        again: store operations only, no external call."""
        for attempt in range(1, attempts + 1):
            try:
                async with self.unit_of_work(causation) as uow:
                    return await block(uow)
            except TransientConflict:
                if attempt == attempts:
                    raise
                log.info("transaction_rerun", service=self.service, attempt=attempt)
        raise AssertionError("unreachable")

    # -- outbox relay -------------------------------------------------------------------------

    async def start_relay(self) -> None:
        self._relay_task = asyncio.create_task(self.run_relay(), name=f"relay:{self.service}")

    async def stop_relay(self) -> None:
        if self._relay_task is not None:
            self._relay_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._relay_task
            self._relay_task = None
        await self.release_relay_lease()

    async def release_relay_lease(self) -> None:
        """Once the relay has stopped: hand the lease over at once rather than after its TTL."""
        if self._lease_renew_at:
            with contextlib.suppress(Exception):
                await self.store.release_lease(self.lease_name, self.holder)
            self._lease_renew_at = 0.0

    async def _hold_lease(self) -> bool:
        loop = asyncio.get_running_loop()
        if self._lease_renew_at and loop.time() < self._lease_renew_at:
            return True
        taken_at = loop.time()
        holder = await self.store.lease_holder(self.lease_name)
        if holder is not None and holder != self.holder:
            self._lease_renew_at = 0.0
            return False  # a cheap read; the conditional write below decides anyway
        if not await self.store.acquire_lease(self.lease_name, self.holder, self.policy.lease_ttl):
            self._lease_renew_at = 0.0
            return False
        # Counted from before the write, so this side's idea of the lease ends first.
        self._lease_renew_at = taken_at + self.policy.lease_ttl / 3
        return True

    async def relay_once(self) -> int:
        """Publish, in batches, every row publishable now while this relay holds the lease;
        returns how many were published (0 when another relay holds the lease).

        A failed row counts an attempt and waits its backoff, and the later rows of its key
        wait with it; after `max_attempts` it is parked. Rows of other keys go on. Raises
        `BusUnavailable` (nothing blamed) when the bus refused a whole batch.
        """
        sent = 0
        while await self._hold_lease():
            batch = await self.store.outbox_pending(self.policy.batch_size)
            if not batch:
                break
            sent += await self._publish_batch(batch)
        return sent

    async def _publish_batch(self, batch: list[OutboxRecord]) -> int:
        spans: list[trace.Span] = []
        messages: list[Message] = []
        recording = spans_recorded()
        for record in batch:
            headers = dict(record.headers)
            if recording:
                # The stored trace context of the write is the parent of the producer span,
                # whose context travels in the message's headers.
                span: trace.Span = tracer.start_span(
                    f"{record.topic} publish",
                    context=extract_context(record.headers),
                    kind=trace.SpanKind.PRODUCER,
                    attributes={
                        "messaging.destination.name": record.topic,
                        "messaging.message.id": record.event_id,
                        "bsante.service": self.service,
                    },
                )
                propagate.inject(headers, context=trace.set_span_in_context(span))
            else:
                # Spans go nowhere: no span, the write's own trace context travels on.
                span = trace.INVALID_SPAN
            spans.append(span)
            messages.append(Message(record.topic, record.key, record.value, headers))
        try:
            try:
                outcomes = await self.bus.publish_many(messages)
            except Exception as error:
                raise BusUnavailable(type(error).__name__) from error
            if all(outcome is not None for outcome in outcomes) and not await self.bus.ping():
                raise BusUnavailable("bus unreachable")
        except BusUnavailable as error:
            OUTBOX_FAILURES.labels(self.service).inc()
            log.warning("outbox_bus_unavailable", service=self.service, error_type=str(error))
            for span in spans:
                span.set_status(trace.Status(trace.StatusCode.ERROR, str(error)))
                span.end()
            raise
        now = datetime.now(UTC)
        sent_ids: list[str] = []
        failures: list[OutboxFailure] = []
        published: Counter[str] = Counter()
        failed_keys: set[str] = set()
        for record, outcome, span in zip(batch, outcomes, spans, strict=True):
            if outcome is None:
                sent_ids.append(record.event_id)
                published[record.topic] += 1
            elif record.key in failed_keys:
                # Not attempted after the failure of an earlier row of its key: it only waits.
                span.set_status(trace.Status(trace.StatusCode.ERROR, "held back"))
            else:
                failed_keys.add(record.key)
                attempts = record.attempts + 1
                park = attempts >= self.policy.max_attempts
                failures.append(
                    OutboxFailure(
                        record.event_id,
                        _error_text(outcome),
                        retry_at=None if park else now + self.policy.backoff(attempts),
                        park=park,
                    )
                )
                span.set_status(trace.Status(trace.StatusCode.ERROR, type(outcome).__name__))
            span.end()
        await self.store.outbox_mark_sent_many(sent_ids)
        await self.store.outbox_record_failures(failures)
        for topic, n in published.items():
            EVENTS_PUBLISHED.labels(self.service, topic).inc(n)
        for failure in failures:
            OUTBOX_FAILURES.labels(self.service).inc()
            if failure.park:
                OUTBOX_PARKED.labels(self.service).inc()
                log.error("outbox_row_parked", service=self.service, event_id=failure.event_id)
            else:
                log.warning(
                    "outbox_publish_failed", service=self.service, event_id=failure.event_id
                )
        return len(sent_ids)

    async def run_relay(self) -> None:
        """The relay loop, until cancelled (the service runs it as a supervised task)."""
        while True:
            self._wake.clear()
            try:
                await self.relay_once()
            except asyncio.CancelledError:
                raise
            except Exception as error:
                log.warning("relay_failed", service=self.service, error_type=type(error).__name__)
                await asyncio.sleep(self._relay_backoff)
                continue
            # asyncio.timeout, not wait_for: on 3.11 wait_for can swallow the cancellation
            # that stop() sends when the event fires at the same moment (CPython gh-86296).
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._poll_interval):
                    await self._wake.wait()

    # -- parked rows (ops) --------------------------------------------------------------------

    async def outbox_parked(self, limit: int = 100, offset: int = 0) -> list[OutboxRecord]:
        """Rows the relay gave up on (state Failed, `last_error` kept), oldest first."""
        return await self.store.outbox_parked(limit, offset)

    async def outbox_replay(self, event_id: str) -> bool:
        """Put a parked row back in line (attempts reset) and wake the relay; False when no
        parked row has this id."""
        replayed = await self.store.outbox_replay(event_id)
        if replayed:
            log.info("outbox_row_replayed", service=self.service, event_id=event_id)
            self._wake.set()
        return replayed

    # -- retention ----------------------------------------------------------------------------

    async def purge_once(self, now: datetime | None = None) -> PurgeReport:
        """Drop sent outbox rows, inbox claims and log entries older than the retention."""
        cutoff = (now or datetime.now(UTC)) - self.policy.retention
        report = PurgeReport(
            outbox=await self.store.outbox_purge_sent(cutoff),
            inbox=await self.store.inbox_purge(cutoff),
            log=await self.bus.purge(cutoff),
        )
        counts = {"outbox": report.outbox, "inbox": report.inbox, "log": report.log}
        for what, count in counts.items():
            if count:
                PURGED.labels(self.service, what).inc(count)
        log.info(
            "retention_purged",
            service=self.service,
            outbox=report.outbox,
            inbox=report.inbox,
            log=report.log,
        )
        return report

    async def run_purge_forever(self, interval: float) -> None:
        """`purge_once` every `interval` seconds, first at once; errors propagate (to the
        supervisor that restarts the task)."""
        while True:
            await self.purge_once()
            await asyncio.sleep(interval)

    # -- consumers ----------------------------------------------------------------------------

    def subscribe(self, topics: list[str], group: str, router: EventRouter) -> None:
        async def handle(message: Message) -> None:
            await router.dispatch(self, group, message)

        self.bus.subscribe(topics, group, handle, batch=self.consumer_batch)


def _error_text(error: Exception) -> str:
    # The type and the first line only: a longer message may quote payload content.
    first = (str(error).splitlines() or [""])[0][:200]
    return f"{type(error).__name__}: {first}" if first else type(error).__name__


EventHandler = Callable[[UnitOfWork, Envelope, Any], Awaitable[None]]


@dataclass(frozen=True)
class _Route(Generic[P]):
    payload: type[P]
    handler: EventHandler
    idempotent: bool = False


class EventRouter:
    """Maps (event_type, schema_version) to handlers; unknown types are skipped, not failed."""

    def __init__(self, service: str) -> None:
        self.service = service
        self._routes: dict[tuple[str, int], _Route[Any]] = {}

    def on(
        self, payload: type[P], *, idempotent: bool = False
    ) -> Callable[[EventHandler], EventHandler]:
        """Register `handler` for `payload`'s events.

        `idempotent`: the handler's effects are idempotent on their own (it only `keep`s
        records keyed by the event id), so a redelivered event is simply handled again: the
        inbox records the event (`mark_inbox`) without deciding whether it runs. Nothing then
        waits on the store before the commit, and on SQLite a batch of such events commits in
        one hand-over (a group commit) instead of two statements per event.
        """

        def register(handler: EventHandler) -> EventHandler:
            self._routes[(payload.event_type, payload.schema_version)] = _Route(
                payload, handler, idempotent
            )
            return handler

        return register

    @property
    def topics(self) -> list[str]:
        return sorted({route.payload.topic for route in self._routes.values()})

    async def _handle(
        self,
        messaging: Messaging,
        group: str,
        envelope: Envelope,
        route: _Route[Any],
        payload: Any,
    ) -> None:
        async def handle(uow: UnitOfWork) -> bool:
            if route.idempotent:
                await uow.tx.mark_inbox(group, str(envelope.event_id))
            elif not await uow.claim(group, envelope):
                return False
            await route.handler(uow, envelope, payload)
            return True

        if not await messaging.run_unit_of_work(handle, causation=envelope):
            EVENTS_CONSUMED.labels(self.service, envelope.event_type, "duplicate").inc()
            log.info("event_duplicate", event_type=envelope.event_type, group=group)
            return
        EVENTS_CONSUMED.labels(self.service, envelope.event_type, "handled").inc()
        # Debug, not info: one line per consumed event would double the log volume;
        # bsante_events_consumed_total counts them.
        log.debug("event_handled", event_type=envelope.event_type, group=group)

    async def dispatch(self, messaging: Messaging, group: str, message: Message) -> None:
        try:
            envelope = Envelope.from_json(message.value)
        except ValidationError as error:
            EVENTS_CONSUMED.labels(self.service, "?", "malformed").inc()
            raise PoisonMessage(f"malformed envelope: {error.error_count()} errors") from None
        route = self._routes.get((envelope.event_type, envelope.schema_version))
        if route is None:
            EVENTS_CONSUMED.labels(self.service, envelope.event_type, "skipped").inc()
            log.info(
                "event_skipped",
                reason="unknown event type",
                event_type=envelope.event_type,
                schema_version=envelope.schema_version,
                group=group,
            )
            return
        try:
            payload = route.payload.model_validate(envelope.payload)
        except ValidationError as error:
            EVENTS_CONSUMED.labels(self.service, envelope.event_type, "malformed").inc()
            raise PoisonMessage(
                f"invalid {envelope.event_type} payload: {error.error_count()} errors"
            ) from None
        parent = None
        if not trace.get_current_span().get_span_context().is_valid:
            parent = extract_context(message.headers)
        cid_token = context.correlation_id.set(envelope.correlation_id)
        bound = structlog.contextvars.bind_contextvars(service=self.service)
        try:
            if spans_recorded():
                with tracer.start_as_current_span(
                    f"{envelope.event_type} process",
                    context=parent,
                    kind=trace.SpanKind.CONSUMER,
                    attributes={
                        "messaging.consumer.group.name": group,
                        "messaging.message.id": str(envelope.event_id),
                        "bsante.service": self.service,
                    },
                ):
                    await self._handle(messaging, group, envelope, route, payload)
            else:
                # Spans go nowhere: the producer's trace context only, for what the handler
                # emits and logs.
                token = otel_context.attach(parent) if parent is not None else None
                try:
                    await self._handle(messaging, group, envelope, route, payload)
                finally:
                    if token is not None:
                        otel_context.detach(token)
        finally:
            structlog.contextvars.reset_contextvars(**bound)
            context.correlation_id.reset(cid_token)
