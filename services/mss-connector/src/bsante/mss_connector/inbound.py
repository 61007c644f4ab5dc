"""Inbound mail: each configured mailbox polled by a supervised task, every message fetched
once (UID tracking persisted with the message's record), parsed defensively and then

- an acknowledgement (MDN, DSN) of one of our messages updates that message's status;
- an XDM package waits in the "to be matched" inbox until a user names the patient, then its
  documents are attached to the patient in the documents service (a durable job), and the MDN
  the sender asked for goes back;
- anything else that cannot be integrated is quarantined with the reason, and the sender gets
  the guide's error MDN or "KO intégration" mail.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.message import Message
from typing import Any

import structlog
from pydantic import BaseModel

from bsante.chassis.blobs import BlobKind, BlobStore, iterate
from bsante.chassis.jobs import Job, JobKind, JobPolicy, PermanentJobError, schedule
from bsante.chassis.messaging import Messaging, UnitOfWork
from bsante.chassis.store import JSON, Index, Store
from bsante.contracts.events import MssMessageReceived
from bsante.mss_connector import mail, outbound, transport
from bsante.mss_connector.documents import DocumentsPort
from bsante.mss_connector.patients import PatientsPort, ins_of
from bsante.mss_connector.settings import Mailbox, MssConnectorSettings
from bsante.mss_connector.xdm import InvalidPackage, XdmPackage, read_package

log = structlog.get_logger(__name__)

INBOUND = "mss_inbound"
MAILBOX_STATE = "mss_mailbox_state"
ATTACH_JOB = "mss-attach"
REPLY_JOB = "mss-reply"
INDEXES = [Index(INBOUND, ("structure_id", "state", "received_at"))]
RAW_KIND = BlobKind("inbound-mail", max_bytes=64 * 1024 * 1024)
MAX_PARTS = 100
# Error codes of the guide's acknowledgements (the consumer's integration errors).
ERROR_UNREADABLE = ("900", "Message illisible ou pièce jointe invalide")
ERROR_XDM = ("901", "Archive IHE_XDM invalide")
ERROR_SIZE = ("903", "Message trop volumineux")


@dataclass(frozen=True)
class Classified:
    """What an inbound message is, once parsed (nothing raised for bad input)."""

    outcome: str  # acknowledgement | to_match | quarantined
    reason: str | None = None
    reports: list[mail.Report] = field(default_factory=list)
    package: XdmPackage | None = None
    message: Message | None = None
    error: tuple[str, str] | None = None


def classify(raw: bytes | None, *, max_bytes: int) -> Classified:
    """Parse one message defensively: a size limit, malformed MIME, a bad package all end in
    quarantine with a reason."""
    if raw is None or len(raw) > max_bytes:
        return Classified("quarantined", "message larger than the limit", error=ERROR_SIZE)
    try:
        msg = mail.parse(raw)
    except Exception:  # the compat parser is tolerant; anything it still raises is bad input
        return Classified("quarantined", "unparseable message", error=ERROR_UNREADABLE)
    try:
        reports = mail.read_report(msg)
    except Exception:
        return Classified("quarantined", "malformed report", message=msg, error=ERROR_UNREADABLE)
    if msg.get_content_type() == "multipart/report":
        if reports:
            return Classified("acknowledgement", reports=reports, message=msg)
        return Classified("quarantined", "report answering none of our messages", message=msg)
    zips: list[bytes] = []
    parts = 0
    try:
        for part in msg.walk():
            parts += 1
            if parts > MAX_PARTS:
                return Classified(
                    "quarantined", "too many MIME parts", message=msg, error=ERROR_UNREADABLE
                )
            name = (part.get_filename() or "").strip()
            if name.upper() == mail.XDM_FILENAME.upper() or part.get_content_type() in (
                "application/zip",
                "application/x-zip-compressed",
            ):
                payload = part.get_payload(decode=True)
                if isinstance(payload, bytes):
                    zips.append(payload)
    except Exception:
        return Classified("quarantined", "malformed MIME", message=msg, error=ERROR_UNREADABLE)
    if not zips:
        return Classified(
            "quarantined", "no IHE_XDM.zip attachment", message=msg, error=ERROR_UNREADABLE
        )
    if len(zips) > 1:
        return Classified("quarantined", "several zip attachments", message=msg, error=ERROR_XDM)
    try:
        package = read_package(zips[0])
    except InvalidPackage as error:
        return Classified("quarantined", str(error)[:300], message=msg, error=ERROR_XDM)
    return Classified("to_match", package=package, message=msg)


_SAFE = re.compile(r"[^A-Za-z0-9.@_+-]")


def inbound_id(mailbox: str, uidvalidity: int, uid: int) -> str:
    return hashlib.sha256(f"{mailbox}\x1f{uidvalidity}\x1f{uid}".encode()).hexdigest()[:32]


def _documents_view(package: XdmPackage) -> list[JSON]:
    return [
        {
            "index": i,
            "path": d.path,
            "media_type": d.mime_type,
            "sha256": hashlib.sha256(d.content).hexdigest(),
            "size": len(d.content),
            "type_code": d.type_code,
            "title": d.title,
            "creation_time": d.creation_time,
            "patient_id": d.patient_id,
            "author": d.author,
            "document_id": None,
        }
        for i, d in enumerate(package.documents)
    ]


class Poller:
    """Polls one mailbox; `poll_once` is the body of its supervised task."""

    def __init__(
        self,
        *,
        structure_id: str,
        mailbox: Mailbox,
        messaging: Messaging,
        store: Store,
        blobs: BlobStore,
        settings: MssConnectorSettings,
        patients: PatientsPort | None = None,
    ) -> None:
        self.patients = patients
        self.structure_id = structure_id
        self.mailbox = mailbox
        self.messaging = messaging
        self.store = store
        self.blobs = blobs
        self.settings = settings
        self.state_id = _SAFE.sub("_", f"{structure_id}:{mailbox.address}")[:100]

    async def poll_once(self) -> int:
        state = await self.store.get(MAILBOX_STATE, self.state_id)
        stored_validity = int(state.data["uidvalidity"]) if state else 0
        last_uid = int(state.data["last_uid"]) if state else 0
        result = await transport.fetch_new(
            self.mailbox, last_uid, max_bytes=self.settings.max_inbound_bytes
        )
        if state is not None and result.uidvalidity != stored_validity:
            # The server renumbered the folder: UIDs start afresh (records are keyed by
            # UIDVALIDITY too, so nothing already handled is confused with a new message).
            last_uid = 0
            result = await transport.fetch_new(
                self.mailbox, 0, max_bytes=self.settings.max_inbound_bytes
            )
        handled = 0
        for fetched in result.messages:
            await self._handle(result.uidvalidity, fetched)
            handled += 1
        return handled

    async def _handle(self, uidvalidity: int, fetched: transport.Fetched) -> None:
        identifier = inbound_id(self.mailbox.address, uidvalidity, fetched.uid)
        classified = classify(fetched.raw, max_bytes=self.settings.max_inbound_bytes)
        raw_sha: str | None = None
        if fetched.raw is not None and classified.outcome != "acknowledgement":
            # Kept for the user who matches it and for the replies that quote it.
            info = await self.blobs.put(
                iterate(fetched.raw), kind=RAW_KIND, media_type="message/rfc822"
            )
            raw_sha = info.sha256
        now = datetime.now(UTC)
        msg = classified.message
        # Asked before the unit of work (no call inside a transaction); any failure leaves
        # the package in the inbox for a user, as when the INS is unknown.
        patient_id = await self._patient_by_ins(classified.package)

        async def block(uow: UnitOfWork) -> None:
            state = await uow.tx.get(MAILBOX_STATE, self.state_id)
            progress = {"uidvalidity": uidvalidity, "last_uid": fetched.uid}
            if state is None:
                await uow.tx.insert(MAILBOX_STATE, self.state_id, progress)
            elif (
                int(state.data["uidvalidity"]) != uidvalidity
                or int(state.data["last_uid"]) < fetched.uid
            ):
                await uow.tx.update(MAILBOX_STATE, self.state_id, progress, state.version)
            outcome = classified.outcome
            reason = classified.reason
            if outcome == "acknowledgement":
                matched = [
                    await outbound.record_report(uow, self.store, r) for r in classified.reports
                ]
                if not any(matched):
                    outcome, reason = "quarantined", "report answering none of our messages"
            data: JSON = {
                "structure_id": self.structure_id,
                "mailbox": self.mailbox.address,
                "uidvalidity": uidvalidity,
                "uid": fetched.uid,
                "size": fetched.size,
                "state": outcome,
                "reason": reason,
                "message_id": mail.bare_id(mail.header_text(msg, "Message-ID")) if msg else None,
                "from": mail.header_text(msg, "From")[:256] if msg else None,
                "subject": mail.header_text(msg, "Subject")[:300] if msg else None,
                "mdn_requested": bool(msg and msg.get("Disposition-Notification-To")),
                "raw_sha256": raw_sha,
                "documents": _documents_view(classified.package) if classified.package else [],
                "patient_id": None,
                "received_at": now.isoformat(),
            }
            if outcome == "to_match" and patient_id is not None:
                data.update(state="matching", patient_id=patient_id, matched_by="ins")
            if await uow.tx.insert_if_absent(INBOUND, identifier, data) is None:
                return  # fetched again after a crash before the UID was recorded
            if data["state"] == "matching":
                await _schedule_attach(uow, identifier, self.structure_id, data)
                await uow.audit(
                    user_id=f"service:{self.settings.service_name}",
                    acting_structure=self.structure_id,
                    patient_id=str(patient_id),
                    action="create",
                    resource="received_document",
                )
            if outcome == "quarantined" and classified.error and raw_sha:
                kind = "mdn" if data["mdn_requested"] else "ko"
                await schedule(
                    uow.tx,
                    kind=REPLY_JOB,
                    idempotency_key=f"{identifier}:{kind}",
                    payload=ReplyPayload(
                        inbound_id=identifier,
                        kind=kind,
                        code=classified.error[0],
                        label=classified.error[1],
                    ),
                    structure_id=self.structure_id,
                    subject_id=identifier,
                )
            await uow.emit(
                MssMessageReceived(
                    inbound_id=identifier,
                    mailbox=self.mailbox.address,
                    outcome=outcome,
                    document_count=len(data["documents"]),
                    reason=reason,
                    received_at=now,
                ),
                structure_id=self.structure_id,
                subject_id=identifier,
            )

        await self.messaging.run_unit_of_work(block)
        if raw_sha is not None:
            await self.blobs.add_reference(raw_sha, f"{INBOUND}/{identifier}")
        log.info(
            "mss_inbound_handled",
            matched_by_ins=patient_id is not None,
            inbound_id=identifier,
            outcome=classified.outcome,
            uid=fetched.uid,
        )

    async def _patient_by_ins(self, package: XdmPackage | None) -> str | None:
        """The qualifiée record of every document's INS, when they all name the same one."""
        if self.patients is None or package is None or not package.documents:
            return None
        found = {ins_of(d.patient_id) for d in package.documents}
        if len(found) != 1 or None in found:
            return None
        ins = found.pop()
        assert ins is not None
        try:
            return await self.patients.by_ins(self.structure_id, *ins)
        except Exception as error:  # the patient service unreachable: a user matches it
            log.warning("mss_ins_lookup_failed", error=type(error).__name__)
            return None


# -- matching and attaching -----------------------------------------------------------------


class AttachPayload(BaseModel):
    inbound_id: str
    index: int
    patient_id: str


class ReplyPayload(BaseModel):
    inbound_id: str
    kind: str  # mdn | ko | mdn-ok
    code: str = ""
    label: str = ""


class NotToMatch(Exception):
    pass


async def match(
    uow: UnitOfWork, *, inbound: str, structure_id: str, patient_id: str, user_id: str
) -> JSON:
    """A user names the patient of an inbox message: its documents are attached by jobs."""
    doc = await uow.tx.get(INBOUND, inbound)
    if doc is None or doc.data["structure_id"] != structure_id:
        raise LookupError(inbound)
    data = dict(doc.data)
    if data["state"] != "to_match":
        raise NotToMatch(data["state"])
    data.update(state="matching", patient_id=patient_id, matched_by=user_id)
    await uow.tx.update(INBOUND, inbound, data, doc.version)
    await _schedule_attach(uow, inbound, structure_id, data)
    await uow.audit(
        user_id=user_id,
        acting_structure=structure_id,
        patient_id=patient_id,
        action="create",
        resource="received_document",
    )
    return data


async def _schedule_attach(uow: UnitOfWork, inbound: str, structure_id: str, data: JSON) -> None:
    for item in data["documents"]:
        await schedule(
            uow.tx,
            kind=ATTACH_JOB,
            idempotency_key=f"{inbound}:{item['index']}",
            payload=AttachPayload(
                inbound_id=inbound, index=item["index"], patient_id=data["patient_id"]
            ),
            structure_id=structure_id,
            subject_id=inbound,
        )


def _document_date(creation_time: str | None) -> str | None:
    if creation_time and len(creation_time) >= 8 and creation_time[:8].isdigit():
        return f"{creation_time[:4]}-{creation_time[4:6]}-{creation_time[6:8]}"
    return None


def attach_kind(
    store: Store, blobs: BlobStore, documents: DocumentsPort
) -> JobKind[AttachPayload, dict[str, Any]]:
    async def handler(job: Job[AttachPayload]) -> dict[str, Any]:
        doc = await store.get(INBOUND, job.payload.inbound_id)
        if doc is None or not doc.data.get("raw_sha256"):
            raise PermanentJobError("inbound message missing")
        raw = await blobs.read(doc.data["raw_sha256"])
        classified = classify(raw, max_bytes=RAW_KIND.max_bytes)
        if classified.package is None:
            raise PermanentJobError("inbound package no longer readable")
        item = classified.package.documents[job.payload.index]
        document_id = await documents.attach(
            job.payload.patient_id,
            item.content,
            {
                "origin": "mssante",
                # The mailbox's structure: the tenant the documents service attaches it in.
                "structure_id": doc.data["structure_id"],
                "source_id": f"{doc.data['message_id']}/{job.payload.index}",
                "media_type": "application/xml"
                if item.mime_type in ("text/xml", "application/xml")
                else item.mime_type,
                "type_code": item.type_code,
                "title": item.title,
                "document_date": _document_date(item.creation_time),
                "author": item.author,
            },
        )
        return {"document_id": document_id}

    async def on_success(uow: UnitOfWork, job: Job[AttachPayload], outcome: dict[str, Any]) -> None:
        doc = await uow.tx.get(INBOUND, job.payload.inbound_id)
        if doc is None:
            return
        data = dict(doc.data)
        items = [dict(i) for i in data["documents"]]
        items[job.payload.index]["document_id"] = outcome["document_id"]
        data["documents"] = items
        if all(i["document_id"] for i in items):
            data["state"] = "attached"
            if data.get("mdn_requested"):
                await schedule(
                    uow.tx,
                    kind=REPLY_JOB,
                    idempotency_key=f"{job.payload.inbound_id}:mdn-ok",
                    payload=ReplyPayload(inbound_id=job.payload.inbound_id, kind="mdn-ok"),
                    structure_id=data["structure_id"],
                    subject_id=job.payload.inbound_id,
                )
        await uow.tx.update(INBOUND, job.payload.inbound_id, data, doc.version)

    return JobKind(
        name=ATTACH_JOB,
        payload=AttachPayload,
        handler=handler,
        on_success=on_success,
        policy=JobPolicy(max_attempts=8, initial_backoff=2.0),
        endpoint="documents",
    )


def reply_kind(
    settings: MssConnectorSettings, store: Store, blobs: BlobStore
) -> JobKind[ReplyPayload, dict[str, Any]]:
    """MDNs and KO mails go back through the structure's own mailbox."""

    async def handler(job: Job[ReplyPayload]) -> dict[str, Any]:
        doc = await store.get(INBOUND, job.payload.inbound_id)
        if doc is None or not doc.data.get("raw_sha256"):
            raise PermanentJobError("inbound message missing")
        mailboxes = settings.mailboxes.get(doc.data["structure_id"])
        if mailboxes is None:
            raise PermanentJobError("no mailbox for the structure")
        mailbox = mailboxes.organisational
        original = mail.parse(await blobs.read(doc.data["raw_sha256"]))
        reply_id = (
            f"bsante.reply.{job.payload.inbound_id}.{job.payload.kind}@"
            + (mailbox.address.rsplit("@", 1)[-1])
        )
        if job.payload.kind == "ko":
            message = mail.build_ko_mail(
                original,
                mailbox=doc.data["mailbox"],
                code=job.payload.code,
                label=job.payload.label,
                message_id_value=reply_id,
            )
        else:
            message = mail.build_mdn(
                original,
                mailbox=doc.data["mailbox"],
                error=(job.payload.code, job.payload.label) if job.payload.kind == "mdn" else None,
                message_id_value=reply_id,
            )
        if message is None:
            return {"sent": False}
        to = str(message["To"])
        await transport.send(mailbox, message, [to], timeout=settings.smtp_timeout_seconds)
        return {"sent": True, "message_id": reply_id}

    return JobKind(
        name=REPLY_JOB,
        payload=ReplyPayload,
        handler=handler,
        policy=JobPolicy(max_attempts=6, initial_backoff=5.0),
        endpoint="mssante-smtp",
    )
