"""MSSanté mail as the ANS guide shapes it: the outbound message (subject `XDM/1.0/DDM+...`,
a text body, the PDF and `IHE_XDM.zip`), the acknowledgements we read (MDN, RFC 8098; DSN,
RFC 3464) and those we write (an MDN when asked, the "KO intégration" mail)."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from email import policy
from email.header import decode_header, make_header
from email.message import EmailMessage, Message
from email.parser import BytesParser
from email.utils import format_datetime, getaddresses, make_msgid

from bsante.mss_connector.cda_header import CdaHeader

SUBJECT_PREFIX = "XDM/1.0/DDM+"
KO_PREFIX = "[KO Intégration système !]"
XDM_FILENAME = "IHE_XDM.zip"
MAX_SUBJECT = 250
# Headers unfolded up to the 998-character limit: some receivers keep the whitespace of a
# fold made right after the field name (a Subject or Message-ID read back with a leading space).
OUTBOUND = policy.SMTP.clone(max_line_length=998)


def message_id(document_ids: Sequence[str], recipients: Sequence[str], sender: str) -> str:
    """The Message-ID of sending these documents to these recipients (without <>): the same
    for a resend, so the peer and the acknowledgements recognise it."""
    key = "\x1f".join([*sorted(document_ids), "\x1e", *sorted(a.lower() for a in recipients)])
    digest = hashlib.sha256(key.encode()).hexdigest()[:32]
    domain = sender.rsplit("@", 1)[-1].lower()
    return f"bsante.{digest}@{domain}"


def subject_for(header: CdaHeader) -> str:
    """`XDM/1.0/DDM+<libellé> <NOM> <prénom> <date de naissance>` (birth date DD/MM/YYYY)."""
    parts = [header.title, header.family_name.upper(), header.given_names]
    if header.birth_date is not None:
        parts.append(f"{header.birth_date:%d/%m/%Y}")
    text = " ".join(p for p in parts if p)
    return (SUBJECT_PREFIX + text)[:MAX_SUBJECT]


def pdf_filename(header: CdaHeader, signed: date) -> str:
    """`YYYYMMDD_<libellé>_<NOM>.pdf`, with only ASCII letters, digits and underscores."""
    raw = f"{signed:%Y%m%d}_{header.title}_{header.family_name}"
    safe = "".join(c if c.isascii() and c.isalnum() else "_" for c in raw)
    return "_".join(filter(None, safe.split("_")))[:120] + ".pdf"


BODY = """Bonjour,

Veuillez trouver ci-joint le document « {title} » concernant votre patient(e).

Le document est joint au format PDF et, pour son intégration dans votre logiciel, au format
CDA R2 dans l'archive IHE_XDM.zip.

Ce message a été envoyé par messagerie sécurisée de santé (MSSanté) depuis {sender}.
"""


@dataclass(frozen=True)
class Attachment:
    filename: str
    content: bytes
    maintype: str
    subtype: str


def build_message(
    *,
    sender: str,
    recipients: Sequence[str],
    message_id_value: str,
    subject: str,
    body: str,
    attachments: Sequence[Attachment],
    read_receipt: bool,
    sent_at: datetime,
) -> EmailMessage:
    msg = EmailMessage(policy=OUTBOUND)
    msg["From"] = sender
    msg["To"] = ", ".join(recipients)
    msg["Subject"] = subject
    msg["Date"] = format_datetime(sent_at)
    msg["Message-ID"] = f"<{message_id_value}>"
    if read_receipt:
        msg["Disposition-Notification-To"] = sender
    msg.set_content(body)
    for attachment in attachments:
        msg.add_attachment(
            attachment.content,
            maintype=attachment.maintype,
            subtype=attachment.subtype,
            filename=attachment.filename,
        )
    return msg


def parse(raw: bytes) -> Message:
    """A message parsed with the tolerant compat policy (malformed headers do not raise)."""
    return BytesParser(policy=policy.compat32).parsebytes(raw)


def header_text(msg: Message, name: str) -> str:
    """A header's value decoded (RFC 2047 words) and unfolded, or "" when absent."""
    value = msg.get(name)
    if value is None:
        return ""
    try:
        text = str(make_header(decode_header(str(value))))
    except (ValueError, LookupError, UnicodeError):
        text = str(value)
    return " ".join(text.split())


def bare_id(value: object) -> str:
    text = str(value or "").strip()
    if text.startswith("<") and ">" in text:
        text = text[1 : text.index(">")]
    return text.strip()[:300]


# -- acknowledgements we read ---------------------------------------------------------------


@dataclass(frozen=True)
class Report:
    """What an MDN or a DSN says about one of our messages for one recipient."""

    kind: str  # "mdn" | "dsn"
    original_message_id: str
    recipient: str
    status: str  # "delivered" | "read" | "failed"
    detail: str


def _report_fields(part: Message) -> list[Message]:
    """The header blocks of a message/disposition-notification or message/delivery-status
    part (the standard library gives them as sub-messages)."""
    payload = part.get_payload()
    if isinstance(payload, list):
        return [p for p in payload if isinstance(p, Message)]
    if isinstance(payload, str):
        blocks = [b for b in payload.replace("\r\n", "\n").split("\n\n") if b.strip()]
        return [parse(b.encode("utf-8", "replace")) for b in blocks]
    return []


def _address(value: object) -> str:
    text = str(value or "")
    if ";" in text:
        text = text.split(";", 1)[1]
    return text.strip().strip("<>").lower()[:256]


def read_report(msg: Message) -> list[Report]:
    """The reports of a multipart/report (empty for any other message)."""
    if msg.get_content_type() != "multipart/report" or not msg.is_multipart():
        return []
    param = msg.get_param("report-type")
    report_type = param.lower() if isinstance(param, str) else ""
    reports: list[Report] = []
    payload = msg.get_payload()
    parts: list[Message] = (
        [p for p in payload if isinstance(p, Message)] if isinstance(payload, list) else []
    )
    original_id = ""
    for part in parts:
        if part.get_content_type() in ("message/rfc822", "text/rfc822-headers"):
            inner = part.get_payload()
            if isinstance(inner, list) and inner and isinstance(inner[0], Message):
                original_id = bare_id(inner[0].get("Message-ID"))
            elif isinstance(inner, str):
                original_id = bare_id(parse(inner.encode("utf-8", "replace")).get("Message-ID"))
    for part in parts:
        ctype = part.get_content_type()
        if (
            report_type == "disposition-notification"
            and ctype == "message/disposition-notification"
        ):
            fields = _report_fields(part)
            merged: dict[str, str] = {}
            for block in fields:
                for key, value in block.items():
                    merged.setdefault(key.lower(), str(value))
            disposition = merged.get("disposition", "").lower()
            mid = bare_id(merged.get("original-message-id")) or original_id
            recipient = _address(merged.get("original-recipient") or merged.get("final-recipient"))
            if not mid or not recipient:
                continue
            kind = disposition.split(";", 1)[-1].strip()
            failed = "error" in kind or "/error" in kind or "deleted" in kind
            reports.append(
                Report(
                    "mdn",
                    mid,
                    recipient,
                    "failed" if failed else "read",
                    kind.split("/", 1)[0][:100] if not failed else kind[:300],
                )
            )
        elif report_type == "delivery-status" and ctype == "message/delivery-status":
            blocks = _report_fields(part)
            for block in blocks[1:] if len(blocks) > 1 else []:
                action = str(block.get("Action", "")).lower().strip()
                recipient = _address(
                    block.get("Original-Recipient") or block.get("Final-Recipient")
                )
                if not recipient or not original_id:
                    continue
                status = str(block.get("Status", "")).strip()
                if action == "delivered" or action == "relayed":
                    reports.append(Report("dsn", original_id, recipient, "delivered", status))
                elif action == "failed":
                    diagnostic = str(block.get("Diagnostic-Code", "")).strip()
                    reports.append(
                        Report(
                            "dsn", original_id, recipient, "failed", f"{status} {diagnostic}"[:300]
                        )
                    )
    return reports


# -- acknowledgements we write --------------------------------------------------------------


def _report_message(
    *,
    sender: str,
    to: str,
    subject: str,
    text: str,
    fields: list[tuple[str, str]],
    original: Message,
    message_id_value: str,
) -> EmailMessage:
    msg = EmailMessage(policy=OUTBOUND)
    msg["From"] = sender
    msg["To"] = to
    msg["Subject"] = subject[:MAX_SUBJECT]
    msg["Message-ID"] = f"<{message_id_value}>"
    msg.set_content(text)
    msg.make_mixed()
    msg.set_type("multipart/report")
    msg.set_param("report-type", "disposition-notification")
    notification = Message()
    for key, value in fields:
        # str(): a header object copied as such would be written out under its own name.
        notification[key] = str(value)
    part = Message()
    part["Content-Type"] = "message/disposition-notification"
    part.set_payload([notification])
    msg.attach(part)  # type: ignore[arg-type]
    original_part = Message()
    original_part["Content-Type"] = "message/rfc822"
    original_part.set_payload([original])
    msg.attach(original_part)  # type: ignore[arg-type]
    return msg


def build_mdn(
    original: Message,
    *,
    mailbox: str,
    error: tuple[str, str] | None = None,
    message_id_value: str | None = None,
) -> EmailMessage | None:
    """The MDN answering `original` (None when it asked for none): processed, or processed
    with the error code and label of the guide (`processed/Error: code^libellé`)."""
    to = header_text(original, "Disposition-Notification-To")
    if not to:
        return None
    addresses = getaddresses([to])
    if not addresses or not addresses[0][1]:
        return None
    subject = header_text(original, "Subject")
    original_subject = (
        subject[len(SUBJECT_PREFIX) :] if subject.startswith(SUBJECT_PREFIX) else subject
    )
    disposition = "automatic-action/MDN-sent-automatically; processed"
    text = "Le message a été reçu et intégré."
    if error is not None:
        code, label = error
        disposition += f"/Error: {code}^{label}"
        text = (
            "Le message ci-dessous n'a pas pu être intégré automatiquement pour la raison "
            f"suivante : {label} (code {code})."
        )
    prefix = f"{KO_PREFIX}[{error[0]}] " if error else ""
    return _report_message(
        sender=mailbox,
        to=addresses[0][1],
        subject=prefix + SUBJECT_PREFIX + original_subject,
        text=text,
        fields=[
            ("Original-Recipient", f"rfc822;{mailbox}"),
            ("Final-Recipient", f"rfc822;{mailbox}"),
            ("Original-Message-ID", header_text(original, "Message-ID")),
            ("Disposition", disposition),
        ],
        original=original,
        message_id_value=message_id_value or bare_id(make_msgid(domain=mailbox.rsplit("@", 1)[-1])),
    )


def build_ko_mail(
    original: Message,
    *,
    mailbox: str,
    code: str,
    label: str,
    message_id_value: str | None = None,
) -> EmailMessage | None:
    """The guide's "KO intégration" mail, for an inbound XDM we could not integrate when no MDN
    was asked: a plain message with the error, the original attached."""
    sender = header_text(original, "From")
    addresses = getaddresses([sender])
    if not addresses or not addresses[0][1]:
        return None
    subject = header_text(original, "Subject")
    tail = subject[len(SUBJECT_PREFIX) :] if subject.startswith(SUBJECT_PREFIX) else subject
    msg = EmailMessage(policy=OUTBOUND)
    msg["From"] = mailbox
    msg["To"] = addresses[0][1]
    msg["Subject"] = f"{KO_PREFIX}[{code}] {SUBJECT_PREFIX}{tail}"[:MAX_SUBJECT]
    msg["Message-ID"] = (
        f"<{message_id_value}>"
        if message_id_value
        else make_msgid(domain=mailbox.rsplit("@", 1)[-1])
    )
    original_id = header_text(original, "Message-ID")
    if original_id:
        msg["In-Reply-To"] = original_id
        msg["References"] = original_id
    msg.set_content(
        "Bonjour,\n\nLe message ci-dessous n'a pas pu être intégré automatiquement pour la "
        f"raison suivante : {label}\n\n- Code d'erreur : {code}\n\nLe message d'origine est "
        "joint. Veuillez vérifier les informations et renvoyer le document après correction.\n"
    )
    msg.add_attachment(original, filename="message_original.eml")
    return msg
