"""The operator's servers: SMTP submission (aiosmtplib, STARTTLS or implicit TLS, AUTH) and IMAP
over TLS (imaplib in a worker thread), with certificates verified against the configured CA."""

from __future__ import annotations

import asyncio
import imaplib
import re
import ssl
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from email.message import EmailMessage

import aiosmtplib

from bsante.chassis.jobs import PermanentJobError
from bsante.mss_connector.settings import Mailbox


class TransientSmtpError(Exception):
    """A 4xx reply, a refused connection or a timeout: worth retrying later."""


class PermanentSmtpError(PermanentJobError):
    """A 5xx reply: the server refused the message on its merits (its reply is the message)."""


def tls_context(mailbox: Mailbox) -> ssl.SSLContext:
    """Server certificates verified (against the mailbox's CA when given), TLS 1.2 at least,
    and the client certificate some operators require."""
    context = ssl.create_default_context(cafile=mailbox.ca_file or None)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    if mailbox.client_cert_file:
        context.load_cert_chain(mailbox.client_cert_file, mailbox.client_key_file or None)
    return context


@dataclass(frozen=True)
class SmtpOutcome:
    accepted: list[str]
    refused: dict[str, str] = field(default_factory=dict)  # address -> "code reply"


_ADDRESS = re.compile(r"<?[^\s<>@]+@[^\s<>]+>?")


def _reply(code: int, message: str) -> str:
    """The server's reply, bounded, addresses masked: it is kept on the job and published in
    JobFailed, and a patient's address holds the INS."""
    text = _ADDRESS.sub("<address>", " ".join(message.split()))
    return f"{code} {text}"[:300]


async def send(
    mailbox: Mailbox, message: EmailMessage, recipients: list[str], *, timeout: float
) -> SmtpOutcome:
    """One SMTP transaction. A 5xx for every recipient, or for the sender or the data, raises
    PermanentSmtpError; a 4xx or a network failure raises TransientSmtpError. Recipients
    refused one by one while others were accepted come back in `refused`."""
    client = aiosmtplib.SMTP(
        hostname=mailbox.smtp_host,
        port=mailbox.smtp_port,
        use_tls=mailbox.smtp_tls == "implicit",
        start_tls=mailbox.smtp_tls == "starttls",
        tls_context=tls_context(mailbox),
        timeout=timeout,
    )
    try:
        async with client:
            await client.login(mailbox.login, mailbox.secret())
            # The bytes as the message's own policy writes them (aiosmtplib would refold).
            errors, _ = await client.sendmail(mailbox.address, recipients, message.as_bytes())
    except aiosmtplib.SMTPRecipientsRefused as error:
        replies = {r.recipient: _reply(r.code, r.message) for r in error.recipients}
        if any(400 <= r.code < 500 for r in error.recipients):
            raise TransientSmtpError("; ".join(replies.values())[:300]) from None
        raise PermanentSmtpError("; ".join(replies.values())[:300]) from None
    except aiosmtplib.SMTPResponseException as error:
        if 500 <= error.code < 600:
            raise PermanentSmtpError(_reply(error.code, error.message)) from None
        raise TransientSmtpError(_reply(error.code, error.message)) from None
    except (aiosmtplib.SMTPException, OSError, ssl.SSLError) as error:
        raise TransientSmtpError(type(error).__name__) from None
    refused = {address: _reply(r.code, r.message) for address, r in errors.items()}
    return SmtpOutcome([a for a in recipients if a not in refused], refused)


# -- IMAP -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Fetched:
    uid: int
    size: int
    raw: bytes | None  # None: larger than the limit, not downloaded


@dataclass(frozen=True)
class FetchResult:
    uidvalidity: int
    messages: list[Fetched]


_SIZE = re.compile(rb"RFC822\.SIZE (\d+)")
_UIDVALIDITY = re.compile(rb"UIDVALIDITY (\d+)")


def _connect(mailbox: Mailbox, timeout: float) -> imaplib.IMAP4:
    context = tls_context(mailbox)
    imap: imaplib.IMAP4
    if mailbox.imap_tls == "implicit":
        imap = imaplib.IMAP4_SSL(
            mailbox.imap_host, mailbox.imap_port, ssl_context=context, timeout=timeout
        )
    else:
        imap = imaplib.IMAP4(mailbox.imap_host, mailbox.imap_port, timeout=timeout)
        imap.starttls(context)
    imap.login(mailbox.login, mailbox.secret())
    return imap


def _fetch_new(
    mailbox: Mailbox, after_uid: int, limit: int, max_bytes: int, timeout: float
) -> FetchResult:
    imap = _connect(mailbox, timeout)
    try:
        status, exists = imap.select(mailbox.imap_folder, readonly=True)
        if status != "OK":
            raise imaplib.IMAP4.error("select refused")
        validity = imap.response("UIDVALIDITY")[1]
        uidvalidity = int(validity[0]) if validity and validity[0] else 0
        if not exists or exists[0] in (b"0", None):
            # "n:*" names the last message even below n; in an empty folder it names none.
            return FetchResult(uidvalidity, [])
        status, data = imap.uid("SEARCH", "UID", f"{after_uid + 1}:*")
        uids = sorted(
            int(u) for u in (data[0] or b"").split() if u.isdigit() and int(u) > after_uid
        )[:limit]
        fetched: list[Fetched] = []
        for uid in uids:
            status, data = imap.uid("FETCH", str(uid), "(RFC822.SIZE)")
            header = data[0] if data and isinstance(data[0], bytes) else b""
            match = _SIZE.search(header if isinstance(header, bytes) else b"")
            size = int(match.group(1)) if match else 0
            if size > max_bytes:
                fetched.append(Fetched(uid, size, None))
                continue
            status, data = imap.uid("FETCH", str(uid), "(BODY.PEEK[])")
            raw = next((part[1] for part in data if isinstance(part, tuple)), b"")
            fetched.append(Fetched(uid, size or len(raw), bytes(raw)))
        return FetchResult(uidvalidity, fetched)
    finally:
        try:
            imap.logout()
        except (imaplib.IMAP4.error, OSError):
            pass


async def fetch_new(
    mailbox: Mailbox, after_uid: int, *, limit: int = 50, max_bytes: int, timeout: float = 30.0
) -> FetchResult:
    """Messages with a UID above `after_uid`, oldest first (at most `limit`), read-only: the
    connector tracks UIDs itself rather than trusting \\Seen flags that a user may change."""
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(
        _imap_threads(), _fetch_new, mailbox, after_uid, limit, max_bytes, timeout
    )


_IMAP_POOL: ThreadPoolExecutor | None = None


def _imap_threads() -> ThreadPoolExecutor:
    """IMAP sessions block a thread each: a pool of their own, so that a slow server never
    starves the event loop's default executor (file blobs, DNS, shutdown work)."""
    global _IMAP_POOL
    if _IMAP_POOL is None:
        _IMAP_POOL = ThreadPoolExecutor(max_workers=4, thread_name_prefix="mss-imap")
    return _IMAP_POOL
