"""Outbound messages: a signed document with MSSanté recipients becomes messages (at most
`max_recipients` each), each sent by a durable job outside any transaction; the status is
followed per recipient."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog
from pydantic import BaseModel

from bsante.chassis.jobs import Job, JobFailure, JobKind, JobPolicy, JobRecord, schedule
from bsante.chassis.messaging import UnitOfWork
from bsante.chassis.store import JSON, Index, Query, Store
from bsante.contracts.envelope import Envelope
from bsante.contracts.events import (
    DocumentSigned,
    MssDeliveryFailed,
    MssMessageAcknowledged,
    MssMessageSent,
)
from bsante.mss_connector import mail, transport
from bsante.mss_connector.cda_header import InvalidCda, read_header
from bsante.mss_connector.documents import DocumentsPort
from bsante.mss_connector.settings import Mailbox, MssConnectorSettings
from bsante.mss_connector.xdm import PackedDocument, build_package

log = structlog.get_logger(__name__)

MESSAGES = "mss_messages"
SEND_JOB = "mss-send"
INDEXES = [
    Index(MESSAGES, ("message_id",), unique=True),
    Index(MESSAGES, ("structure_id", "patient_id", "created_at")),
]
PATIENT_PLACEHOLDER = "patient:"
MSSANTE_DOMAIN = "mssante.fr"  # the patient's address is resolved from the CDA's INS


def now_iso() -> str:
    return datetime.now(UTC).isoformat()


class SendPayload(BaseModel):
    message_key: str
    # A later round sends again to the recipients a 4xx refused alone (None: all of them).
    recipients: list[str] | None = None
    round: int = 0


# Rounds for recipients refused one by one with a 4xx while others were accepted.
MAX_RECIPIENT_ROUNDS = 5
RECIPIENT_RETRY_SECONDS = 60.0


def sender_for(settings: MssConnectorSettings, structure_id: str, author_id: str) -> Mailbox | None:
    """The author's own mailbox when configured, else the structure's organisational one."""
    mailboxes = settings.mailboxes.get(structure_id)
    if mailboxes is None:
        return None
    return mailboxes.users.get(author_id) or mailboxes.organisational


def _key(document_ids: list[str], recipients: list[str]) -> str:
    text = "\x1f".join([*sorted(document_ids), "\x1e", *sorted(r.lower() for r in recipients)])
    return hashlib.sha256(text.encode()).hexdigest()[:32]


async def on_document_signed(
    uow: UnitOfWork,
    envelope: Envelope,
    event: DocumentSigned,
    *,
    settings: MssConnectorSettings,
) -> None:
    """One message per `max_recipients` recipients, each with its send job, in the consumer's
    transaction (the inbox claim makes a redelivery write nothing)."""
    if not event.mssante:
        return
    structure = envelope.structure_id
    patient_id = str(event.patient_id)
    document_ids = [str(event.document_id)]
    mailbox = sender_for(settings, structure, event.author_id)
    seen: set[str] = set()
    recipients: list[dict[str, Any]] = []
    for r in event.mssante:
        address = (
            PATIENT_PLACEHOLDER + patient_id if r.kind == "patient" else r.address.strip().lower()
        )
        if address in seen:
            continue
        seen.add(address)
        # Only the MSSanté domain is reachable through an MSSanté operator.
        valid = r.kind == "patient" or (
            "@" in address and address.rsplit("@", 1)[1].endswith(MSSANTE_DOMAIN)
        )
        recipients.append(
            {
                "address": address,
                "kind": r.kind,
                "directory_id": r.directory_id,
                "read_receipt": r.read_receipt,
                "status": "pending" if valid else "failed",
                "reason": None if valid else "not an MSSanté address",
                "updated_at": now_iso(),
            }
        )
    size = settings.max_recipients
    for start in range(0, len(recipients), size):
        chunk = recipients[start : start + size]
        key = _key(document_ids, [r["address"] for r in chunk])
        data: JSON = {
            "message_id": None,
            "structure_id": structure,
            "patient_id": patient_id,
            "author_id": event.author_id,
            "document_ids": document_ids,
            "artefacts": {
                str(event.document_id): {
                    "cda_sha256": event.cda_sha256,
                    "pdf_sha256": event.pdf_sha256,
                }
            },
            "signed_at": event.signed_at.isoformat(),
            "sender": mailbox.address if mailbox else None,
            "recipients": chunk,
            "state": "pending",
            "created_at": now_iso(),
            "sent_at": None,
        }
        if mailbox is None:
            data["state"] = "failed"
            for entry in chunk:
                entry["status"] = "failed"
                entry["reason"] = "no MSSanté mailbox for the structure"
        else:
            data["message_id"] = mail.message_id(
                document_ids, [r["address"] for r in chunk], mailbox.address
            )
            if all(entry["status"] == "failed" for entry in chunk):
                data["state"] = "failed"
        if await uow.tx.insert_if_absent(MESSAGES, key, data) is None:
            continue
        for index, entry in enumerate(chunk):
            if mailbox is not None and entry["status"] == "failed":
                await uow.emit(
                    MssDeliveryFailed(
                        message_id=data["message_id"],
                        patient_id=event.patient_id,
                        recipient_index=index,
                        source="policy",
                        reason=entry["reason"],
                        failed_at=datetime.now(UTC),
                    ),
                    structure_id=structure,
                    subject_id=key,
                )
        if mailbox is not None and all(entry["status"] == "failed" for entry in chunk):
            continue
        if mailbox is None:
            await uow.emit(
                MssDeliveryFailed(
                    message_id=key,
                    patient_id=event.patient_id,
                    source="policy",
                    reason="no MSSanté mailbox configured for the structure",
                    failed_at=datetime.now(UTC),
                ),
                structure_id=structure,
                subject_id=key,
            )
            continue
        await schedule(
            uow.tx,
            kind=SEND_JOB,
            idempotency_key=key,
            payload=SendPayload(message_key=key),
            structure_id=structure,
            subject_id=key,
        )
        # Sending a patient's document outside the platform is an export of their data.
        await uow.audit(
            user_id=event.author_id,
            acting_structure=structure,
            patient_id=patient_id,
            action="export",
            resource="mssante_message",
        )


# -- the send job ---------------------------------------------------------------------------


class SendOutcome(BaseModel):
    message_id: str
    accepted: list[str]
    refused: dict[str, str]
    # Recipients the connector itself refused (the patient's mailbox without a qualified INS).
    policy_refused: dict[str, str]
    # The patient's placeholder -> the INS address it was sent to.
    resolved: dict[str, str] = {}
    sent_at: str


def send_kind(
    settings: MssConnectorSettings,
    documents: DocumentsPort,
    store_get: Any,
) -> JobKind[SendPayload, SendOutcome]:
    """The job that builds the message (fetching the artefacts) and submits it."""

    async def handler(job: Job[SendPayload]) -> SendOutcome:
        doc = await store_get(MESSAGES, job.payload.message_key)
        if doc is None:
            raise transport.PermanentSmtpError("message record missing")
        data = doc.data
        mailbox = sender_for(settings, data["structure_id"], data["author_id"])
        if mailbox is None:
            raise transport.PermanentSmtpError("no MSSanté mailbox for the structure")
        packed: list[PackedDocument] = []
        pdfs: list[bytes] = []
        for document_id in data["document_ids"][: settings.max_documents]:
            hashes = data["artefacts"][document_id]
            cda = await documents.fetch(document_id, "cda", hashes["cda_sha256"])
            pdf = await documents.fetch(document_id, "pdf", hashes["pdf_sha256"])
            try:
                header = read_header(cda)
            except InvalidCda as error:
                raise transport.PermanentSmtpError(f"signed CDA unreadable: {error}") from None
            packed.append(PackedDocument(cda, header))
            pdfs.append(pdf)
        only = set(job.payload.recipients) if job.payload.recipients is not None else None
        return await send_message(settings, mailbox, data, packed, pdfs, only=only)

    async def on_success(uow: UnitOfWork, job: Job[SendPayload], outcome: SendOutcome) -> None:
        await record_sent(uow, job.payload.message_key, outcome, round_=job.payload.round)

    async def on_failure(uow: UnitOfWork, record: JobRecord, failure: JobFailure) -> None:
        await record_failed(
            uow,
            str(record.payload.get("message_key")),
            failure.error_message,
            only=record.payload.get("recipients"),
        )

    return JobKind(
        name=SEND_JOB,
        payload=SendPayload,
        handler=handler,
        on_success=on_success,
        on_failure=on_failure,
        policy=JobPolicy(
            max_attempts=8,
            initial_backoff=5.0,
            max_backoff=900.0,
            timeout=settings.smtp_timeout_seconds * 2 + settings.documents_timeout_seconds * 2,
        ),
        endpoint="mssante-smtp",
    )


async def send_message(
    settings: MssConnectorSettings,
    mailbox: Mailbox,
    data: JSON,
    packed: list[PackedDocument],
    pdfs: list[bytes],
    *,
    only: set[str] | None = None,
) -> SendOutcome:
    """Build the guide's message for these documents and submit it (no store access); `only`
    limits the envelope to some recipients (a later round)."""
    header = packed[0].header
    addresses: list[str] = []
    policy_refused: dict[str, str] = {}
    resolved: dict[str, str] = {}
    for r in data["recipients"]:
        address = r["address"]
        if r["status"] != "pending" or (only is not None and address not in only):
            continue  # refused when the message was recorded, or not in this round
        if address.startswith(PATIENT_PLACEHOLDER):
            if not header.qualified_ins or not header.patient_ins:
                policy_refused[address] = "the patient's INS is not qualifiée"
                continue
            resolved[address] = f"{header.patient_ins}@{settings.patient_mail_domain}"
            address = resolved[address]
        addresses.append(address)
    message_id = data["message_id"]
    sent_at = datetime.now(UTC)
    if not addresses:
        return SendOutcome(
            message_id=message_id,
            accepted=[],
            refused={},
            policy_refused=policy_refused,
            resolved=resolved,
            sent_at=sent_at.isoformat(),
        )
    signed = datetime.fromisoformat(data["signed_at"]).date()
    package = build_package(
        packed,
        sender=mailbox.address,
        submission_unique_id=_submission_oid(message_id),
        source_id="1.2.250.1.213.1.1.9",
        submitted_at=sent_at.replace(microsecond=0),
        author_person=header.author_name,
        recipients=addresses,
    )
    attachments = [
        mail.Attachment(pdf_name, pdf, "application", "pdf")
        for pdf_name, pdf in (
            (mail.pdf_filename(p.header, signed), pdf) for p, pdf in zip(packed, pdfs, strict=True)
        )
    ]
    attachments.append(mail.Attachment(mail.XDM_FILENAME, package, "application", "zip"))
    message = mail.build_message(
        sender=mailbox.address,
        recipients=addresses,
        message_id_value=message_id,
        subject=mail.subject_for(header),
        body=mail.BODY.format(title=header.title, sender=mailbox.address),
        attachments=attachments,
        read_receipt=any(r["read_receipt"] for r in data["recipients"]),
        sent_at=sent_at,
    )
    outcome = await transport.send(
        mailbox, message, addresses, timeout=settings.smtp_timeout_seconds
    )
    return SendOutcome(
        message_id=message_id,
        accepted=outcome.accepted,
        refused=outcome.refused,
        policy_refused=policy_refused,
        resolved=resolved,
        sent_at=sent_at.isoformat(),
    )


def _submission_oid(message_id: str) -> str:
    """An OID for the submission set, derived from the Message-ID (2.25: UUID-based arc)."""
    digest = hashlib.sha256(message_id.encode()).digest()[:16]
    return "2.25." + str(int.from_bytes(digest, "big"))


async def record_sent(uow: UnitOfWork, key: str, outcome: SendOutcome, *, round_: int = 0) -> None:
    doc = await uow.tx.get(MESSAGES, key)
    if doc is None:
        return
    data = dict(doc.data)
    recipients = [dict(r) for r in data["recipients"]]
    now = now_iso()
    # Where each recipient was sent (the patient's placeholder resolved to its INS address).
    position = {
        outcome.resolved.get(r["address"], r["address"]): i for i, r in enumerate(recipients)
    }
    failures: list[tuple[int, str, str]] = []
    for i, r in enumerate(recipients):
        if r["address"] in outcome.policy_refused:
            reason = outcome.policy_refused[r["address"]]
            r.update(status="failed", reason=reason, updated_at=now)
            failures.append((i, "policy", reason))
    for address in outcome.accepted:
        found = position.get(address)
        if found is not None and recipients[found]["status"] == "pending":
            recipients[found].update(status="sent", updated_at=now, delivered_to=address)
    later: list[str] = []
    for address, reply in outcome.refused.items():
        found = position.get(address)
        if found is None:
            continue
        if reply.startswith("4") and round_ < MAX_RECIPIENT_ROUNDS:
            # Refused for now while the others were accepted: this recipient alone, later.
            recipients[found].update(reason=reply, updated_at=now)
            later.append(recipients[found]["address"])
        else:
            recipients[found].update(status="failed", reason=reply, updated_at=now)
            failures.append((found, "smtp", reply))
    if later:
        await schedule(
            uow.tx,
            kind=SEND_JOB,
            idempotency_key=f"{key}:round{round_ + 1}",
            payload=SendPayload(message_key=key, recipients=later, round=round_ + 1),
            structure_id=data["structure_id"],
            subject_id=key,
            not_before=datetime.now(UTC) + timedelta(seconds=RECIPIENT_RETRY_SECONDS * 2**round_),
        )
    sent = any(r["status"] == "sent" for r in recipients)
    newly_sent = [a for a in outcome.accepted if position.get(a) is not None]
    data.update(
        recipients=recipients,
        state="sent" if sent else ("pending" if later else "failed"),
        sent_at=data.get("sent_at") or (outcome.sent_at if sent else None),
    )
    await uow.tx.update(MESSAGES, key, data, doc.version)
    structure = data["structure_id"]
    if newly_sent:
        await uow.emit(
            MssMessageSent(
                message_id=outcome.message_id,
                patient_id=data["patient_id"],
                document_ids=data["document_ids"],
                sender=data["sender"],
                recipient_count=len(newly_sent),
                sent_at=datetime.fromisoformat(outcome.sent_at),
            ),
            structure_id=structure,
            subject_id=key,
        )
    for index, source, reason in failures:
        await uow.emit(
            MssDeliveryFailed(
                message_id=outcome.message_id,
                patient_id=data["patient_id"],
                recipient_index=index,
                source=source,
                reason=reason[:300],
                failed_at=datetime.now(UTC),
            ),
            structure_id=structure,
            subject_id=key,
        )


async def record_failed(
    uow: UnitOfWork, key: str, reason: str, *, only: list[str] | None = None
) -> None:
    doc = await uow.tx.get(MESSAGES, key)
    if doc is None:
        return
    data = dict(doc.data)
    now = now_iso()
    data["recipients"] = [
        {**r, "status": "failed", "reason": reason[:300], "updated_at": now}
        if (only is None and r["status"] in ("pending", "sent"))
        or (only is not None and r["address"] in only and r["status"] == "pending")
        else r
        for r in data["recipients"]
    ]
    if not any(r["status"] in ("sent", "delivered", "read") for r in data["recipients"]):
        data["state"] = "failed"
    await uow.tx.update(MESSAGES, key, data, doc.version)
    await uow.emit(
        MssDeliveryFailed(
            message_id=data.get("message_id") or key,
            patient_id=data["patient_id"],
            source="smtp",
            reason=reason[:300],
            failed_at=datetime.now(UTC),
        ),
        structure_id=data["structure_id"],
        subject_id=key,
    )


_RANK = {"pending": 0, "sent": 1, "delivered": 2, "read": 3}


async def record_report(uow: UnitOfWork, store: Store, report: mail.Report) -> bool:
    """Apply an MDN or DSN to the message it answers; False when it answers none of ours.

    A status only moves forward (a late DSN does not undo a read MDN); failed is final.
    """
    found = await _by_message_id(uow, store, report.original_message_id)
    if found is None:
        return False
    key, doc = found
    data = dict(doc.data)
    recipients = [dict(r) for r in data["recipients"]]
    index = next(
        (
            i
            for i, r in enumerate(recipients)
            if report.recipient in (r["address"], r.get("delivered_to"))
        ),
        None,
    )
    if index is None:
        return False
    current = recipients[index]
    if current["status"] == "failed":
        return True
    now = datetime.now(UTC)
    if report.status == "failed":
        current.update(status="failed", reason=report.detail[:300], updated_at=now.isoformat())
        event: Any = MssDeliveryFailed(
            message_id=report.original_message_id,
            patient_id=data["patient_id"],
            recipient_index=index,
            source="mdn" if report.kind == "mdn" else "dsn",
            reason=report.detail[:300],
            failed_at=now,
        )
    else:
        if _RANK.get(report.status, 0) <= _RANK.get(current["status"], 0):
            return True
        current.update(status=report.status, updated_at=now.isoformat())
        event = MssMessageAcknowledged(
            message_id=report.original_message_id,
            patient_id=data["patient_id"],
            recipient_index=index,
            status="read" if report.status == "read" else "delivered",
            disposition=report.detail[:100] if report.kind == "mdn" else None,
            acknowledged_at=now,
        )
    data["recipients"] = recipients
    await uow.tx.update(MESSAGES, key, data, doc.version)
    await uow.emit(event, structure_id=data["structure_id"], subject_id=key)
    return True


async def _by_message_id(uow: UnitOfWork, store: Store, message_id: str) -> tuple[str, Any] | None:
    # Found by the unique index, then read again in the transaction: the update is conditional
    # on the version read there.
    docs = await store.find(MESSAGES, Query(where={"message_id": message_id}, limit=1))
    if not docs:
        return None
    fresh = await uow.tx.get(MESSAGES, docs[0].id)
    return (docs[0].id, fresh) if fresh is not None else None
