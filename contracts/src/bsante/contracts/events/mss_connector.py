"""Events of the MSSanté connector (topic bsante.mss-connector.v1).

A message carries one patient's documents to up to ten recipients; its status is followed per
recipient (sent, then delivered or read from the acknowledgements, or failed). No address of a
patient, no subject and no content travel on the bus: ask the connector for those.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from pydantic import Field

from bsante.contracts import topics
from bsante.contracts.events.base import Payload, event

MssRecipientStatus = Literal["pending", "sent", "delivered", "read", "failed"]


@event(topics.MSS_CONNECTOR)
class MssMessageSent(Payload):
    """The operator's SMTP server accepted a message (for the recipients it did not refuse)."""

    message_id: str = Field(max_length=300, description="RFC 5322 Message-ID, without <>")
    patient_id: uuid.UUID
    document_ids: list[uuid.UUID] = Field(min_length=1, max_length=50)
    sender: str = Field(max_length=256, description="The organisational MSSanté mailbox")
    recipient_count: int = Field(ge=1)
    sent_at: datetime


@event(topics.MSS_CONNECTOR)
class MssMessageAcknowledged(Payload):
    """A recipient's acknowledgement came back: delivered (DSN) or read/processed (MDN)."""

    message_id: str = Field(max_length=300)
    patient_id: uuid.UUID
    recipient_index: int = Field(ge=0, description="Position of the recipient in the message")
    status: Literal["delivered", "read"]
    disposition: str | None = Field(
        default=None, max_length=100, description="MDN disposition type (displayed, processed)"
    )
    acknowledged_at: datetime


@event(topics.MSS_CONNECTOR)
class MssDeliveryFailed(Payload):
    """A message could not reach a recipient: refused by the SMTP server (5xx), a failed DSN,
    or an MDN with an error (the guide's KO intégration)."""

    message_id: str = Field(max_length=300)
    patient_id: uuid.UUID
    recipient_index: int | None = Field(
        default=None, ge=0, description="None when the whole message failed"
    )
    source: Literal["smtp", "dsn", "mdn", "policy"] = Field(
        description="Who refused: the SMTP server, a DSN, an MDN, or the connector itself "
        "(no mailbox configured, the patient's INS not qualifiée)"
    )
    reason: str = Field(max_length=300, description="Server reply or status code, bounded")
    failed_at: datetime


@event(topics.MSS_CONNECTOR)
class MssMessageReceived(Payload):
    """A message arrived in a structure's mailbox and was parsed (or quarantined)."""

    inbound_id: str = Field(max_length=64)
    mailbox: str = Field(max_length=256)
    outcome: Literal["attached", "to_match", "quarantined", "acknowledgement"]
    document_count: int = Field(ge=0)
    patient_id: uuid.UUID | None = None
    reason: str | None = Field(default=None, max_length=300, description="Why quarantined")
    received_at: datetime
