"""HTTP routes of the mss-connector: the status of sent messages per recipient, and the inbox of
received messages (to be matched to a patient, quarantined, attached)."""

from __future__ import annotations

import uuid
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from bsante.chassis.api import ServiceDep
from bsante.chassis.auth import Principal, allowed
from bsante.chassis.errors import ConflictError, NotFoundError
from bsante.chassis.store import Query as StoreQuery
from bsante.contracts.permissions import Action
from bsante.mss_connector import inbound, outbound

router = APIRouter(tags=["mssante"])
Reader = Annotated[Principal, allowed(Action.READ_CLINICAL)]
Sender = Annotated[Principal, allowed(Action.SEND_MSSANTE)]


class RecipientOut(BaseModel):
    address: str = Field(description="MSSanté address (the patient's appears as patient:<id>)")
    kind: str
    status: Literal["pending", "sent", "delivered", "read", "failed"]
    reason: str | None = None
    read_receipt: bool
    updated_at: str


class MessageOut(BaseModel):
    id: str
    message_id: str | None
    patient_id: uuid.UUID
    document_ids: list[uuid.UUID]
    sender: str | None
    state: str
    recipients: list[RecipientOut]
    created_at: str
    sent_at: str | None


class MessagePage(BaseModel):
    items: list[MessageOut]


def _message(doc_id: str, data: dict[str, Any]) -> MessageOut:
    return MessageOut(
        id=doc_id,
        message_id=data.get("message_id"),
        patient_id=data["patient_id"],
        document_ids=data["document_ids"],
        sender=data.get("sender"),
        state=data["state"],
        recipients=[RecipientOut.model_validate(r) for r in data["recipients"]],
        created_at=data["created_at"],
        sent_at=data.get("sent_at"),
    )


@router.get("/messages", response_model=MessagePage)
async def list_messages(patient_id: uuid.UUID, principal: Reader, svc: ServiceDep) -> MessagePage:
    """The MSSanté messages sent about a patient, newest first, with each recipient's status."""
    docs = await svc.store.find(
        outbound.MESSAGES,
        StoreQuery(
            where={"structure_id": principal.acting_structure, "patient_id": str(patient_id)},
            order_by=[("created_at", True)],
            limit=100,
        ),
    )
    async with svc.messaging.unit_of_work() as uow:
        await uow.audit(
            user_id=principal.user_id,
            acting_structure=principal.acting_structure,
            patient_id=str(patient_id),
            action="read",
            resource="mssante_message",
        )
    return MessagePage(items=[_message(d.id, d.data) for d in docs])


@router.get("/messages/{message_key}", response_model=MessageOut)
async def get_message(message_key: str, principal: Reader, svc: ServiceDep) -> MessageOut:
    doc = await svc.store.get(outbound.MESSAGES, message_key[:64])
    if doc is None or doc.data["structure_id"] != principal.acting_structure:
        raise NotFoundError("No such message")
    async with svc.messaging.unit_of_work() as uow:
        await uow.audit(
            user_id=principal.user_id,
            acting_structure=principal.acting_structure,
            patient_id=doc.data["patient_id"],
            action="read",
            resource="mssante_message",
        )
    return _message(doc.id, doc.data)


class InboxDocumentOut(BaseModel):
    index: int
    media_type: str
    size: int
    type_code: str | None
    title: str | None
    creation_time: str | None
    patient_id: str | None = Field(description="The patient identifier the sender gave (CX)")
    author: str | None
    document_id: str | None = Field(description="Once attached: the documents service's id")


class InboxItemOut(BaseModel):
    id: str
    mailbox: str
    state: Literal["to_match", "matching", "attached", "quarantined", "acknowledgement"]
    reason: str | None
    sender: str | None
    subject: str | None
    received_at: str
    patient_id: uuid.UUID | None
    documents: list[InboxDocumentOut]


class InboxPage(BaseModel):
    items: list[InboxItemOut]


def _inbox(doc_id: str, data: dict[str, Any]) -> InboxItemOut:
    return InboxItemOut(
        id=doc_id,
        mailbox=data["mailbox"],
        state=data["state"],
        reason=data.get("reason"),
        sender=data.get("from"),
        subject=data.get("subject"),
        received_at=data["received_at"],
        patient_id=data.get("patient_id"),
        documents=[InboxDocumentOut.model_validate(d) for d in data.get("documents", [])],
    )


@router.get("/inbox", response_model=InboxPage)
async def list_inbox(
    principal: Reader,
    svc: ServiceDep,
    state: Annotated[
        Literal["to_match", "matching", "attached", "quarantined", "acknowledgement"],
        Query(description="Which messages"),
    ] = "to_match",
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> InboxPage:
    """Received messages of the acting structure, newest first (default: those to be matched)."""
    docs = await svc.store.find(
        inbound.INBOUND,
        StoreQuery(
            where={"structure_id": principal.acting_structure, "state": state},
            order_by=[("received_at", True)],
            limit=limit,
        ),
    )
    return InboxPage(items=[_inbox(d.id, d.data) for d in docs])


class MatchIn(BaseModel):
    patient_id: uuid.UUID = Field(description="The record the received documents belong to")


class AlreadyMatched(ConflictError):
    pass


@router.post("/inbox/{inbound_id}/match", status_code=202, response_model=InboxItemOut)
async def match_inbox(
    inbound_id: str, body: MatchIn, principal: Sender, svc: ServiceDep
) -> InboxItemOut:
    """Confirm the patient of a received message: its documents are attached to the record
    (asynchronously; the item shows each document's id once attached)."""
    try:
        async with svc.messaging.unit_of_work() as uow:
            data = await inbound.match(
                uow,
                inbound=inbound_id[:64],
                structure_id=principal.acting_structure,
                patient_id=str(body.patient_id),
                user_id=principal.user_id,
            )
    except LookupError:
        raise NotFoundError("No such received message") from None
    except inbound.NotToMatch as error:
        raise AlreadyMatched(
            f"The message is {error.args[0]}, not waiting to be matched",
            errors=[{"field": "inbound_id", "message": "not to be matched"}],
        ) from None
    if svc.jobs is not None:
        svc.jobs.wake()
    return _inbox(inbound_id, data)
