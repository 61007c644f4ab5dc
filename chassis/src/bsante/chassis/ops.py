"""Operations routes every service can mount: list and replay the outbox rows the relay parked."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Path, Query
from pydantic import BaseModel

from bsante.chassis.auth import Principal, allowed
from bsante.chassis.errors import NotFound
from bsante.chassis.messaging import Messaging
from bsante.chassis.store import OutboxRecord
from bsante.contracts.permissions import Action

Operator = Annotated[Principal, allowed(Action.MANAGE_PLATFORM)]


class ParkedRowOut(BaseModel):
    """A parked row, without its content (the event may concern a patient)."""

    event_id: str
    topic: str
    key: str
    attempts: int
    last_error: str | None
    created_at: datetime
    parked_at: datetime | None
    state: str

    @classmethod
    def of(cls, record: OutboxRecord) -> ParkedRowOut:
        return cls(
            event_id=record.event_id,
            topic=record.topic,
            key=record.key,
            attempts=record.attempts,
            last_error=record.last_error,
            created_at=record.created_at,
            parked_at=record.parked_at,
            state=record.state,
        )


class ParkedPageOut(BaseModel):
    items: list[ParkedRowOut]
    limit: int
    offset: int


class ReplayOut(BaseModel):
    event_id: str
    state: str


def outbox_ops_router(messaging: Messaging) -> APIRouter:
    """`GET /ops/outbox/parked` and `POST /ops/outbox/parked/{event_id}/replay` for the
    service owning `messaging`; both need `manage_platform` (role ops)."""
    router = APIRouter(prefix="/ops/outbox", tags=["ops"])

    @router.get("/parked", response_model=ParkedPageOut)
    async def list_parked(
        _: Operator,
        limit: Annotated[int, Query(ge=1, le=500)] = 100,
        offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
    ) -> ParkedPageOut:
        """Rows the relay gave up on, oldest first; each holds back the later rows of its key."""
        rows = await messaging.outbox_parked(limit, offset)
        return ParkedPageOut(items=[ParkedRowOut.of(r) for r in rows], limit=limit, offset=offset)

    @router.post("/parked/{event_id}/replay", response_model=ReplayOut)
    async def replay_parked(
        _: Operator, event_id: Annotated[str, Path(min_length=1, max_length=100)]
    ) -> ReplayOut:
        """Put a parked row back in line (attempts reset) once its cause is fixed."""
        if not await messaging.outbox_replay(event_id):
            raise NotFound(
                "No parked outbox row has this event id",
                errors=[{"field": "event_id", "message": "not a parked row"}],
            )
        return ReplayOut(event_id=event_id, state="pending")

    return router
