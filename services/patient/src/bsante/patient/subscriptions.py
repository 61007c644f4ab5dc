"""Events the patient service consumes: card reads, and the timeline's sources."""

from __future__ import annotations

from bsante.chassis.messaging import EventRouter, UnitOfWork
from bsante.contracts.envelope import Envelope
from bsante.contracts.events import VitaleCardRead
from bsante.patient import repository, timeline


def subscriptions() -> EventRouter:
    events = EventRouter("patient")

    @events.on(VitaleCardRead)
    async def on_card_read(uow: UnitOfWork, envelope: Envelope, card: VitaleCardRead) -> None:
        # Kept for the professional to pick a beneficiary (GET /patients/card-reads/{id}).
        await uow.tx.insert(
            repository.CARD_READS,
            str(envelope.event_id),
            {
                "structure_id": envelope.structure_id,
                "read_at": envelope.occurred_at.isoformat(),
                "card": card.model_dump(mode="json"),
            },
        )

    timeline.register(events)
    return events
