"""An MSSanté operator on loopback, for `make run` and the tests: a test CA, an SMTP submission
server (aiosmtpd, STARTTLS and AUTH required) delivering into local Maildirs, Dovecot serving
those Maildirs over IMAPS, and a demo correspondent who acknowledges what it receives.

Local delivery drops a second copy of a Message-ID already in a mailbox, as an operator's
duplicate suppression does: a send retried after a crash between the server's acceptance and
the connector's record (at-least-once submission) still leaves one message in the mailbox.
"""

from __future__ import annotations

import asyncio
import hashlib
import ipaddress
import secrets
import ssl
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email import policy
from email.message import EmailMessage, Message
from email.parser import BytesParser
from email.utils import format_datetime, getaddresses
from pathlib import Path
from typing import Annotated, Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID
from fastapi import APIRouter
from pydantic import BaseModel, SecretStr

from bsante.chassis import certificates
from bsante.chassis.auth import Principal, allowed
from bsante.chassis.errors import NotFoundError
from bsante.contracts.permissions import Action
from bsante.mss_connector import dovecot
from bsante.mss_connector.settings import Mailbox, StructureMailboxes

# -- a test CA --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Certificates:
    ca_file: Path
    cert_file: Path
    key_file: Path


def issue_certificates(
    folder: Path, *, hosts: tuple[str, ...] = ("127.0.0.1", "localhost")
) -> Certificates:
    """A throwaway CA and a server certificate for the loopback names, as PEM files."""
    folder.mkdir(parents=True, exist_ok=True)
    ca = certificates.issue(
        certificates.name("bsante test operator CA", country=None),
        certificates.ec_key(),
        ca=True,
        path_length=0,
        days=30,
    )
    names: list[x509.GeneralName] = []
    for host in hosts:
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            names.append(x509.DNSName(host))
    server = certificates.issue(
        certificates.name(hosts[0], country=None),
        certificates.ec_key(),
        ca,
        days=30,
        extended_key_usage=[ExtendedKeyUsageOID.SERVER_AUTH],
        alt_names=names,
    )
    paths = Certificates(folder / "ca.pem", folder / "server.pem", folder / "server.key")
    paths.ca_file.write_bytes(ca.pem)
    paths.cert_file.write_bytes(server.pem)
    paths.key_file.write_bytes(server.key_pem)
    paths.key_file.chmod(0o644)  # Dovecot's ssl-params reads it as its own user
    return paths


# -- SMTP -------------------------------------------------------------------------------------

# A test decides the reply to a recipient (None: accept), e.g. "451 4.3.0 try later".
RcptRule = Callable[[str], str | None]


@dataclass
class SmtpStats:
    transactions: int = 0
    logins_refused: int = 0
    received: list[bytes] = field(default_factory=list)


class _Authenticator:
    def __init__(self, users: dict[str, str], stats: SmtpStats) -> None:
        self.users = users
        self.stats = stats

    def __call__(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any
    ) -> AuthResult:
        if isinstance(data, LoginPassword):
            login = data.login.decode(errors="replace")
            password = data.password.decode(errors="replace")
            if self.users.get(login) is not None and secrets.compare_digest(
                self.users[login], password
            ):
                return AuthResult(success=True, auth_data=login)
        self.stats.logins_refused += 1
        # handled=False: aiosmtpd answers 535 itself; handled=True would leave the client
        # waiting for a reply that never comes.
        return AuthResult(success=False, handled=False)


class _Handler:
    def __init__(self, peer: SmtpPeer) -> None:
        self.peer = peer

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        rule = self.peer.rcpt_rule(address.lower()) if self.peer.rcpt_rule else None
        if rule is not None:
            return rule
        if self.peer.local_user(address) is None:
            return "550 5.1.1 unknown mailbox"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        content = envelope.original_content or envelope.content or b""
        raw = content.encode() if isinstance(content, str) else bytes(content)
        self.peer.stats.transactions += 1
        self.peer.stats.received.append(raw)
        if self.peer.data_reply is not None:
            return self.peer.data_reply
        for rcpt in envelope.rcpt_tos:
            self.peer.deliver_local(rcpt, raw, sender=str(envelope.mail_from or ""))
        return "250 2.0.0 accepted"


class SmtpPeer:
    """aiosmtpd on a loopback port, in its own thread: STARTTLS and AUTH required."""

    def __init__(
        self,
        *,
        certificates: Certificates,
        users: dict[str, str],
        deliver: Callable[[str, bytes, str], None],
        local_user: Callable[[str], str | None],
        implicit_tls: bool = False,
    ) -> None:
        self.certificates = certificates
        self.users = users
        self._deliver = deliver
        self.local_user = local_user
        self.stats = SmtpStats()
        self.rcpt_rule: RcptRule | None = None
        self.data_reply: str | None = None
        self.implicit_tls = implicit_tls
        self.port = 0
        self._controller: Controller | None = None

    def deliver_local(self, rcpt: str, raw: bytes, *, sender: str) -> None:
        self._deliver(rcpt, raw, sender)

    def start(self, port: int = 0) -> None:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self.certificates.cert_file, self.certificates.key_file)
        self.port = port or dovecot.free_port()
        kwargs: dict[str, Any] = {
            "authenticator": _Authenticator(self.users, self.stats),
            "auth_required": True,
            "auth_require_tls": True,
        }
        if self.implicit_tls:
            kwargs["ssl_context"] = context
        else:
            kwargs["tls_context"] = context
            kwargs["require_starttls"] = True
        controller = Controller(
            _Handler(self),
            hostname="127.0.0.1",
            port=self.port,
            server_hostname="127.0.0.1",
            ready_timeout=20,
            **kwargs,
        )
        if self.implicit_tls:
            # The readiness probe of aiosmtpd speaks plain text to an implicit-TLS port.
            controller._trigger_server = lambda: None  # type: ignore[method-assign]
        controller.start()
        self._controller = controller

    def stop(self) -> None:
        controller, self._controller = self._controller, None
        if controller is not None:
            controller.stop()


# -- the operator -----------------------------------------------------------------------------

DEMO_MAILBOXES = {
    "demo-ehpad": "secretariat@tilleuls.mssante.fr",
    "demo-ssiad": "accueil@val.mssante.fr",
}
CORRESPONDENT = "dr.correspondant@demo.mssante.fr"


def _message_id(raw: bytes) -> str:
    msg = BytesParser(policy=policy.compat32).parsebytes(raw, headersonly=True)
    return str(msg.get("Message-ID") or "").strip()


class Operator:
    """The operator of `make run`: the demo structures' mailboxes, the demo correspondent's,
    one password each (drawn at start, kept in memory), SMTP and, when Dovecot is installed,
    IMAPS. The correspondent answers every message with a DSN and, when asked, an MDN."""

    def __init__(
        self, root: Path, *, mailboxes: dict[str, str] | None = None, with_imap: bool = True
    ) -> None:
        self.root = root
        self.structures = dict(mailboxes or DEMO_MAILBOXES)
        addresses = [*self.structures.values(), CORRESPONDENT]
        self.passwords = {address: secrets.token_urlsafe(18) for address in addresses}
        self.certificates: Certificates | None = None
        self.imap: dovecot.Dovecot | None = None
        self.smtp: SmtpPeer | None = None
        self._lock = threading.Lock()
        self._seen: dict[str, set[str]] = {}
        self.correspondent_auto_reply = True
        self.with_imap = with_imap
        self.maildirs = dovecot.Dovecot(self.passwords, cert_file=Path(), key_file=Path())

    def local_user(self, address: str) -> str | None:
        address = address.strip().strip("<>").lower()
        return address if address in self.passwords else None

    def _store(self, user: str, raw: bytes) -> bool:
        """Deliver unless this Message-ID is already in the mailbox; True when delivered."""
        mid = _message_id(raw)
        with self._lock:
            seen = self._seen.setdefault(user, set())
            if mid and mid in seen:
                return False
            if mid:
                seen.add(mid)
            self.maildirs.deliver(user, raw)
            return True

    def deliver(self, rcpt: str, raw: bytes, sender: str) -> None:
        user = self.local_user(rcpt)
        if user is None:
            return
        delivered = self._store(user, raw)
        if delivered and user == CORRESPONDENT and self.correspondent_auto_reply:
            for reply in acknowledgements(raw, recipient=CORRESPONDENT):
                target = self.local_user(str(reply["To"]))
                if target is not None:
                    self._store(target, reply.as_bytes())

    def messages(self, address: str) -> list[bytes]:
        user = self.local_user(address)
        return [] if user is None else self.maildirs.messages(user)

    def prepare(self) -> None:
        """Certificates and ports, so that the connector's settings can name them before the
        servers start (nothing listens yet)."""
        if self.certificates is not None:
            return
        self.certificates = issue_certificates(self.root / "tls")
        self.maildirs = dovecot.Dovecot(
            self.passwords,
            cert_file=self.certificates.cert_file,
            key_file=self.certificates.key_file,
        )
        self.imap = self.maildirs if self.with_imap and dovecot.available() else None
        self.smtp = SmtpPeer(
            certificates=self.certificates,
            users=self.passwords,
            deliver=self.deliver,
            local_user=self.local_user,
        )
        self.smtp.port = dovecot.free_port()
        self.maildirs.port = dovecot.free_port()

    async def start(self) -> None:
        await self._in_thread(self._start)

    def _start(self) -> None:
        self.prepare()
        if self.imap is not None:
            self.imap.start(port=self.imap.port)
        if self.smtp is not None:
            self.smtp.start(port=self.smtp.port)

    async def stop(self) -> None:
        await self._in_thread(self._stop)

    async def _in_thread(self, fn: Callable[[], None]) -> None:
        # A thread of its own: the default executor may be busy when the platform stops.
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        loop = asyncio.get_running_loop()

        def run() -> None:
            try:
                fn()
            except BaseException as error:  # handed to the awaiting coroutine
                loop.call_soon_threadsafe(done.set_exception, error)
            else:
                loop.call_soon_threadsafe(done.set_result, None)

        threading.Thread(target=run, name="mss-operator", daemon=True).start()
        await done

    def _stop(self) -> None:
        if self.smtp is not None:
            self.smtp.stop()
        self.maildirs.stop()

    def mailbox(self, address: str) -> Mailbox:
        """How the connector reaches `address` at this operator."""
        self.prepare()
        assert self.certificates is not None and self.smtp is not None
        return Mailbox(
            address=address,
            password=SecretStr(self.passwords[address]),
            smtp_host="127.0.0.1",
            smtp_port=self.smtp.port,
            smtp_tls="starttls",
            imap_host="127.0.0.1",
            imap_port=self.imap.port if self.imap else 1,
            poll=self.imap is not None,
            ca_file=str(self.certificates.ca_file),
        )

    def demo_mailboxes(self) -> dict[str, StructureMailboxes]:
        return {
            structure: StructureMailboxes(organisational=self.mailbox(address))
            for structure, address in self.structures.items()
        }


# -- acknowledgements of the demo correspondent ---------------------------------------------


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:24]


def acknowledgements(raw: bytes, *, recipient: str) -> list[EmailMessage]:
    """A DSN (delivered) for the sender and, if the message asks for one, an MDN (displayed)."""
    original = BytesParser(policy=policy.default).parsebytes(raw)
    sender = getaddresses([str(original.get("From") or "")])
    if not sender or not sender[0][1]:
        return []
    to = sender[0][1]
    original_id = str(original.get("Message-ID") or "")
    domain = recipient.rsplit("@", 1)[-1]
    replies: list[EmailMessage] = []

    dsn = EmailMessage(policy=policy.SMTP)
    dsn["From"] = f"postmaster@{domain}"
    dsn["To"] = to
    dsn["Subject"] = "Delivery Status Notification (Success)"
    dsn["Date"] = format_datetime(datetime.now(UTC))
    dsn["Message-ID"] = f"<dsn.{_digest(original_id)}@{domain}>"
    dsn.set_content(f"Your message was delivered to {recipient}.")
    dsn.make_mixed()
    dsn.set_type("multipart/report")
    dsn.set_param("report-type", "delivery-status")
    status = Message()
    status["Content-Type"] = "message/delivery-status"
    per_message = Message()
    per_message["Reporting-MTA"] = f"dns;{domain}"
    per_recipient = Message()
    per_recipient["Final-Recipient"] = f"rfc822;{recipient}"
    per_recipient["Action"] = "delivered"
    per_recipient["Status"] = "2.0.0"
    status.set_payload([per_message, per_recipient])
    dsn.attach(status)  # type: ignore[arg-type]
    headers = Message()
    headers["Content-Type"] = "text/rfc822-headers"
    headers.set_payload(f"Message-ID: {original_id}\r\nFrom: {to}\r\n")
    dsn.attach(headers)  # type: ignore[arg-type]
    replies.append(dsn)

    if original.get("Disposition-Notification-To"):
        mdn = EmailMessage(policy=policy.SMTP)
        mdn["From"] = recipient
        mdn["To"] = str(original.get("Disposition-Notification-To"))
        mdn["Subject"] = "Lu : " + str(original.get("Subject") or "")[:200]
        mdn["Date"] = format_datetime(datetime.now(UTC))
        mdn["Message-ID"] = f"<mdn.{_digest(original_id)}@{domain}>"
        mdn.set_content("Le message a été affiché.")
        mdn.make_mixed()
        mdn.set_type("multipart/report")
        mdn.set_param("report-type", "disposition-notification")
        notification = Message()
        notification["Content-Type"] = "message/disposition-notification"
        fields = Message()
        fields["Original-Recipient"] = f"rfc822;{recipient}"
        fields["Final-Recipient"] = f"rfc822;{recipient}"
        fields["Original-Message-ID"] = original_id
        fields["Disposition"] = "manual-action/MDN-sent-manually; displayed"
        notification.set_payload([fields])
        mdn.attach(notification)  # type: ignore[arg-type]
        replies.append(mdn)
    return replies


# -- the operator's mailboxes over HTTP (embedded platform only) ----------------------------


class SimulatedMessage(BaseModel):
    message_id: str
    sender: str
    subject: str
    content_type: str
    attachments: list[str]


class SimulatedMailbox(BaseModel):
    address: str
    messages: list[SimulatedMessage]


def operator_router(operator: Operator) -> APIRouter:
    """`GET /simulator/mailboxes/{address}`: what the loopback operator holds for a demo
    mailbox (the demo correspondent's shows what was sent to it); platform operators only."""
    router = APIRouter(prefix="/simulator", tags=["mssante simulator"])

    @router.get("/mailboxes/{address}", response_model=SimulatedMailbox)
    async def mailbox_view(
        address: str, _: Annotated[Principal, allowed(Action.MANAGE_PLATFORM)]
    ) -> SimulatedMailbox:
        if operator.local_user(address) is None:
            raise NotFoundError("No such mailbox at the simulated operator")
        items: list[SimulatedMessage] = []
        for raw in await asyncio.to_thread(operator.messages, address):
            msg = BytesParser(policy=policy.default).parsebytes(raw)
            items.append(
                SimulatedMessage(
                    message_id=str(msg.get("Message-ID") or "").strip(),
                    sender=str(msg.get("From") or ""),
                    subject=str(msg.get("Subject") or ""),
                    content_type=msg.get_content_type(),
                    attachments=[p.get_filename() or "" for p in msg.iter_attachments()]
                    if msg.is_multipart()
                    else [],
                )
            )
        return SimulatedMailbox(address=address.lower(), messages=items)

    return router
