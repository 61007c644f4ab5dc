"""Unit of work with transactional outbox, the outbox relay, and idempotent event consumers."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Generic, TypeVar

import structlog
from opentelemetry import context as otel_context
from opentelemetry import trace
from pydantic import ValidationError

from bsante.chassis import context
from bsante.chassis.bus import EventBus, Message
from bsante.chassis.bus.delivery import PoisonMessage
from bsante.chassis.metrics import EVENTS_CONSUMED, EVENTS_PUBLISHED, OUTBOX_FAILURES
from bsante.chassis.store import OutboxRecord, Store, Transaction
from bsante.chassis.tracing import extract_context, inject_headers
from bsante.contracts.envelope import Envelope
from bsante.contracts.events import AccessAction, PatientDataAccessed, Payload

log = structlog.get_logger(__name__)
tracer = trace.get_tracer("bsante.chassis.messaging")

P = TypeVar("P", bound=Payload)


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


class Messaging:
    """Owns a service's store, bus, outbox relay and subscriptions."""

    def __init__(
        self,
        service: str,
        store: Store,
        bus: EventBus,
        *,
        poll_interval: float = 1.0,
        relay_backoff: float = 2.0,
    ) -> None:
        self.service = service
        self.store = store
        self.bus = bus
        self._poll_interval = poll_interval
        self._relay_backoff = relay_backoff
        self._wake = asyncio.Event()
        self._relay_task: asyncio.Task[None] | None = None

    @contextlib.asynccontextmanager
    async def unit_of_work(self, causation: Envelope | None = None) -> AsyncIterator[UnitOfWork]:
        async with self.store.transaction() as tx:
            uow = UnitOfWork(tx, self.service, causation)
            yield uow
        if uow.events:
            self._wake.set()

    # -- outbox relay -------------------------------------------------------------------------

    async def start_relay(self) -> None:
        self._relay_task = asyncio.create_task(self.run_relay(), name=f"relay:{self.service}")

    async def stop_relay(self) -> None:
        if self._relay_task is not None:
            self._relay_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._relay_task
            self._relay_task = None

    async def relay_once(self) -> int:
        """Publish pending outbox rows in order; stop at the first failure to keep the order."""
        sent = 0
        for record in await self.store.outbox_pending():
            token = otel_context.attach(extract_context(record.headers))
            try:
                with tracer.start_as_current_span(
                    f"{record.topic} publish",
                    kind=trace.SpanKind.PRODUCER,
                    attributes={
                        "messaging.destination.name": record.topic,
                        "messaging.message.id": record.event_id,
                        "bsante.service": self.service,
                    },
                ):
                    headers = inject_headers(record.headers)
                    await self.bus.publish(Message(record.topic, record.key, record.value, headers))
            except Exception as error:
                OUTBOX_FAILURES.labels(self.service).inc()
                log.warning(
                    "outbox_publish_failed", service=self.service, error_type=type(error).__name__
                )
                await self.store.outbox_mark_failed(record.event_id, type(error).__name__)
                raise
            finally:
                otel_context.detach(token)
            await self.store.outbox_mark_sent(record.event_id)
            EVENTS_PUBLISHED.labels(self.service, record.topic).inc()
            sent += 1
        return sent

    async def run_relay(self) -> None:
        """The relay loop, until cancelled (the service runs it as a supervised task)."""
        while True:
            self._wake.clear()
            try:
                await self.relay_once()
            except asyncio.CancelledError:
                raise
            except Exception:
                await asyncio.sleep(self._relay_backoff)
                continue
            # asyncio.timeout, not wait_for: on 3.11 wait_for can swallow the cancellation
            # that stop() sends when the event fires at the same moment (CPython gh-86296).
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._poll_interval):
                    await self._wake.wait()

    # -- consumers ----------------------------------------------------------------------------

    def subscribe(self, topics: list[str], group: str, router: EventRouter) -> None:
        async def handle(message: Message) -> None:
            await router.dispatch(self, group, message)

        self.bus.subscribe(topics, group, handle)


EventHandler = Callable[[UnitOfWork, Envelope, Any], Awaitable[None]]


@dataclass(frozen=True)
class _Route(Generic[P]):
    payload: type[P]
    handler: EventHandler


class EventRouter:
    """Maps (event_type, schema_version) to handlers; unknown types are skipped, not failed."""

    def __init__(self, service: str) -> None:
        self.service = service
        self._routes: dict[tuple[str, int], _Route[Any]] = {}

    def on(self, payload: type[P]) -> Callable[[EventHandler], EventHandler]:
        def register(handler: EventHandler) -> EventHandler:
            self._routes[(payload.event_type, payload.schema_version)] = _Route(payload, handler)
            return handler

        return register

    @property
    def topics(self) -> list[str]:
        return sorted({route.payload.topic for route in self._routes.values()})

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
                async with messaging.unit_of_work(causation=envelope) as uow:
                    if not await uow.claim(group, envelope):
                        EVENTS_CONSUMED.labels(self.service, envelope.event_type, "duplicate").inc()
                        log.info("event_duplicate", event_type=envelope.event_type, group=group)
                        return
                    await route.handler(uow, envelope, payload)
                EVENTS_CONSUMED.labels(self.service, envelope.event_type, "handled").inc()
                log.info("event_handled", event_type=envelope.event_type, group=group)
        finally:
            structlog.contextvars.reset_contextvars(**bound)
            context.correlation_id.reset(cid_token)
