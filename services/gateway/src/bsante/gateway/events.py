"""Live events for the browser: an authenticated stream per user and structure (SSE, WebSocket).

The gateway consumes the topics below from the bus (its own consumer group), keeps the last
events in a bounded buffer, and streams to each signed-in user the ones meant for them:
card events to the professional of the workstation, document statuses to the structure,
operational alerts to the platform's operators. A reconnect with ``Last-Event-ID`` replays what
was missed while it is still in the buffer; when it is not (the buffer moved on, or the gateway
restarted), the client gets a ``stream.reset`` event first and should reload its views.

Payloads are projected to the fields listed in :data:`STREAMED` (never names, NIR or content:
a card read streams its id, the page fetches it from the patient service).
"""

from __future__ import annotations

import asyncio
import json
import secrets
from collections import deque
from collections.abc import AsyncGenerator, AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal

from fastapi import FastAPI, Header, WebSocket, WebSocketDisconnect
from starlette.responses import StreamingResponse

from bsante.chassis.auth import Principal, TokenVerifier, principal_from_claims
from bsante.chassis.bus import Message
from bsante.chassis.errors import Forbidden, Unauthorized
from bsante.chassis.openapi import problems
from bsante.contracts import topics
from bsante.contracts.envelope import Envelope
from bsante.contracts.permissions import Action, is_allowed

Audience = Literal["user", "structure", "ops"]


@dataclass(frozen=True)
class Streamed:
    """How one event type reaches the browser: its SSE name, who sees it, what it shows."""

    name: str
    audience: Audience
    action: Action  # of the habilitation matrix: who may see it at all
    fields: tuple[str, ...]
    user_field: str | None = None  # audience "user": the payload field naming the user


# Adding an event to the stream is one line here (MSSanté statuses come with their connector).
STREAMED: dict[str, Streamed] = {
    "CardInserted": Streamed(
        "card.inserted", "user", Action.EDIT_PATIENT,
        ("workstation_id", "reader", "card_kind", "ps_id_nat"), "user_id",
    ),
    "CardRemoved": Streamed(
        "card.removed", "user", Action.EDIT_PATIENT,
        ("workstation_id", "reader", "card_kind"), "user_id",
    ),
    "VitaleCardRead": Streamed(
        "card.read", "user", Action.EDIT_PATIENT, ("workstation_id",), "read_by"
    ),
    "DocumentSigned": Streamed(
        "document.signed", "structure", Action.READ_PATIENT,
        ("document_id", "set_id", "version", "patient_id", "type_code", "signed_at"),
    ),
    "DmpDocumentSubmitted": Streamed(
        "document.dmp_submitted", "structure", Action.READ_PATIENT,
        ("document_id", "patient_id", "unique_id", "duplicate", "submitted_at"),
    ),
    "DmpSubmissionFailed": Streamed(
        "document.dmp_failed", "structure", Action.READ_PATIENT,
        ("document_id", "patient_id", "operation", "error_code", "failed_at"),
    ),
    "DmpDocumentUpdated": Streamed(
        "document.dmp_updated", "structure", Action.READ_PATIENT,
        ("document_id", "patient_id", "operation", "visibility", "updated_at"),
    ),
    "JobFailed": Streamed(
        "ops.job_failed", "ops", Action.MANAGE_PLATFORM,
        ("service", "kind", "reason", "failed_at"),
    ),
    "IncidentOpened": Streamed(
        "ops.incident_opened", "ops", Action.MANAGE_PLATFORM,
        ("incident_id", "scope", "priority", "first_failed_at", "restoration_deadline"),
    ),
    "IncidentClosed": Streamed(
        "ops.incident_closed", "ops", Action.MANAGE_PLATFORM,
        ("incident_id", "scope", "restored_at", "within_restoration_target"),
    ),
    "SlaDeadlineNear": Streamed(
        "ops.sla_deadline_near", "ops", Action.MANAGE_PLATFORM,
        ("subject_kind", "subject_id", "indicator", "deadline"),
    ),
    "SlaBreached": Streamed(
        "ops.sla_breached", "ops", Action.MANAGE_PLATFORM,
        ("subject_kind", "subject_id", "indicator", "deadline", "detected_at"),
    ),
}  # fmt: skip
TOPICS = (
    topics.CARD_BRIDGE,
    topics.DOCUMENTS,
    topics.DMP_CONNECTOR,
    topics.OPERATIONS,
    topics.SLA_MONITOR,
)
HEARTBEAT_SECONDS = 15.0
# Events older than the gateway (a consumer group reading the log for the first time) are not
# live news: skipped.
STALE_AFTER = timedelta(seconds=30)


@dataclass(frozen=True)
class StreamItem:
    seq: int
    name: str
    data: dict[str, Any]
    structure_id: str
    audience: Audience
    action: Action
    user_id: str | None = None


class EventHub:
    """The bounded buffer every open stream reads from (one per gateway process)."""

    def __init__(self, capacity: int = 1000) -> None:
        self.epoch = secrets.token_hex(4)  # ids of another process's buffer mean nothing here
        self.capacity = capacity
        self.started_at = datetime.now(UTC)
        self._items: deque[StreamItem] = deque(maxlen=capacity)
        self._seq = 0
        self._changed = asyncio.Event()

    def publish(self, envelope: Envelope) -> bool:
        spec = STREAMED.get(envelope.event_type)
        if spec is None or envelope.occurred_at < self.started_at - STALE_AFTER:
            return False
        payload = envelope.payload
        data = {name: payload.get(name) for name in spec.fields}
        data["occurred_at"] = envelope.occurred_at.isoformat()
        if envelope.event_type == "VitaleCardRead":
            data["read_id"] = str(envelope.event_id)
        user = payload.get(spec.user_field) if spec.user_field else None
        self._seq += 1
        self._items.append(
            StreamItem(
                self._seq, spec.name, data, envelope.structure_id, spec.audience, spec.action,
                str(user) if user is not None else None,
            )
        )  # fmt: skip
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()  # wakes every stream waiting for news
        return True

    def event_id(self, item: StreamItem) -> str:
        return f"{self.epoch}-{item.seq}"

    @staticmethod
    def visible(item: StreamItem, principal: Principal) -> bool:
        if not is_allowed(principal.roles, principal.profession, item.action):
            return False
        if item.audience == "ops":
            return True
        if item.structure_id != principal.acting_structure:
            return False
        return item.audience == "structure" or item.user_id == principal.user_id

    def _cursor(self, last_event_id: str | None) -> tuple[int, bool]:
        """(last seq the client has, whether it missed events we no longer hold)."""
        if not last_event_id:
            return self._seq, False
        epoch, _, seq = last_event_id.strip().partition("-")
        oldest = self._items[0].seq if self._items else self._seq + 1
        if epoch != self.epoch or not seq.isdigit():
            return 0, True
        cursor = min(int(seq), self._seq)
        return cursor, cursor < oldest - 1

    async def follow(
        self, principal: Principal, last_event_id: str | None
    ) -> AsyncGenerator[StreamItem | None, None]:
        """The principal's events from the cursor on; None every heartbeat period."""
        cursor, missed = self._cursor(last_event_id)
        if missed:
            yield StreamItem(
                self._items[0].seq - 1 if self._items else self._seq,
                "stream.reset",
                {"reason": "events were missed; reload"},
                principal.acting_structure,
                "structure",
                Action.READ_PATIENT,
            )
        while True:
            changed = self._changed
            for item in list(self._items):
                if item.seq > cursor:
                    cursor = item.seq
                    if self.visible(item, principal):
                        yield item
            try:
                await asyncio.wait_for(changed.wait(), HEARTBEAT_SECONDS)
            except TimeoutError:
                yield None


def sse(hub: EventHub, item: StreamItem | None) -> bytes:
    if item is None:
        return b": keep-alive\n\n"
    data = json.dumps(item.data, separators=(",", ":"))
    return f"id: {hub.event_id(item)}\nevent: {item.name}\ndata: {data}\n\n".encode()


# -- the routes and the bus feed ------------------------------------------------------------

BEARER_SUBPROTOCOL = "bsante.bearer"


class EventFeed:
    """Consumes the streamed topics from the bus into the hub (its own consumer group)."""

    def __init__(self, hub: EventHub, bus_url: str, group: str) -> None:
        from bsante.chassis.bus.factory import bus_from_url

        self.hub = hub
        self.group = group
        self.bus = bus_from_url(bus_url, client_id=group)

    async def _handle(self, message: Message) -> None:
        try:
            envelope = Envelope.model_validate_json(message.value)
        except ValueError:
            return  # not ours to judge: the producers' contract tests are
        self.hub.publish(envelope)

    async def start(self) -> None:
        self.bus.subscribe(TOPICS, self.group, self._handle)
        await self.bus.start()

    async def stop(self) -> None:
        await self.bus.stop()


def install_stream(app: FastAPI, hub: EventHub, verifier: TokenVerifier) -> None:
    """GET /events (Server-Sent Events) and /events/ws (WebSocket) for signed-in users."""

    async def principal_of(token: str, structure: str | None) -> Principal:
        return principal_from_claims(await verifier.verify(token), structure)

    @app.get(
        "/events",
        tags=["events"],
        responses={
            200: {"content": {"text/event-stream": {}}, "description": "The event stream"},
            **problems(401, 403),
        },
    )
    async def stream(
        authorization: Annotated[str | None, Header(max_length=10_000)] = None,
        last_event_id: Annotated[str | None, Header(max_length=100)] = None,
        x_structure_id: Annotated[str | None, Header(max_length=100)] = None,
    ) -> StreamingResponse:
        """The signed-in user's live events (`Last-Event-ID` replays what was missed)."""
        scheme, _, token = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise Unauthorized("A bearer token is required")
        principal = await principal_of(token.strip(), x_structure_id)

        async def body() -> AsyncIterator[bytes]:
            yield b": stream open\n\n"  # headers and a first byte now, not at the first event
            async for item in hub.follow(principal, last_event_id):
                yield sse(hub, item)

        return StreamingResponse(
            body(),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )

    @app.websocket("/events/ws")
    async def stream_ws(websocket: WebSocket) -> None:
        """The same events as JSON messages; the token travels as the subprotocol pair
        `bsante.bearer, <token>` (a browser cannot set headers on a WebSocket)."""
        offered = [
            p.strip() for p in websocket.headers.get("sec-websocket-protocol", "").split(",")
        ]
        try:
            if len(offered) != 2 or offered[0] != BEARER_SUBPROTOCOL:
                raise Unauthorized("A bearer token is required")
            principal = await principal_of(offered[1], websocket.query_params.get("structure_id"))
        except (Unauthorized, Forbidden):
            await websocket.close(code=4401)
            return
        await websocket.accept(subprotocol=BEARER_SUBPROTOCOL)
        follow = hub.follow(principal, websocket.query_params.get("last_event_id"))
        closed = asyncio.ensure_future(websocket.receive())
        try:
            while True:
                news = asyncio.ensure_future(anext(follow))
                done, _ = await asyncio.wait({news, closed}, return_when=asyncio.FIRST_COMPLETED)
                if closed in done:
                    news.cancel()
                    return
                item = news.result()
                if item is not None:
                    await websocket.send_json(
                        {"id": hub.event_id(item), "event": item.name, "data": item.data}
                    )
        except WebSocketDisconnect:
            return
        finally:
            closed.cancel()
            await follow.aclose()
