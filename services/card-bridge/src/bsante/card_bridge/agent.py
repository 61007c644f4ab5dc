"""The agent: watches the readers, reads the cards, talks to the platform for the signed-in user.

Card operations are blocking PC/SC calls: they run in worker threads, one at a time per reader
(an asyncio lock each), each with a PC/SC context of its own. The platform is reached with the
signed-in professional's token only: the one obtained by the CPS login itself, or the one the
web app hands over through the paired local API. The agent has no secret of its own.
"""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import httpx
import structlog

from bsante.card_bridge import cards
from bsante.card_bridge.cards import CardError, CardKind, Cps, CpsCertificates
from bsante.card_bridge.pcsc import Context, Watcher, connect
from bsante.card_bridge.settings import CardBridgeSettings

log = structlog.get_logger(__name__)
T = TypeVar("T")
MAX_QUEUED_EVENTS = 100  # per local subscriber: a slow page loses events, not the agent


class PlatformRefused(Exception):
    """The platform answered the agent's call with an error (problem+json kept)."""

    def __init__(self, status: int, problem: dict[str, Any]) -> None:
        super().__init__(problem.get("detail", f"HTTP {status}"))
        self.status = status
        self.problem = problem


@dataclass
class Session:
    """The signed-in professional on this workstation (kept in memory only)."""

    access_token: str
    user_id: str
    acting_structure: str
    ps_id_nat: str | None = None
    signed_in_by_card: bool = False


@dataclass
class ReaderState:
    reader: str
    kind: CardKind | None = None  # None: present, not identified yet
    ps_id_nat: str | None = None
    error: str | None = None


@dataclass
class Bridge:
    settings: CardBridgeSettings
    transport: httpx.AsyncBaseTransport | None = None
    session: Session | None = None
    readers: dict[str, ReaderState] = field(default_factory=dict)
    _locks: dict[str, asyncio.Lock] = field(default_factory=dict)
    _subscribers: set[asyncio.Queue[dict[str, Any]]] = field(default_factory=set)
    _loop: asyncio.AbstractEventLoop | None = None
    _watcher: Watcher | None = None
    _http: httpx.AsyncClient | None = None
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)

    # -- lifecycle ------------------------------------------------------------------------

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._http = httpx.AsyncClient(
            base_url=self.settings.platform_url,
            transport=self.transport,
            timeout=self.settings.platform_timeout_seconds,
        )
        self._watcher = Watcher(
            self._from_thread(self._inserted),
            self._from_thread(self._removed),
            poll_ms=self.settings.poll_ms,
        )
        await asyncio.to_thread(self._watcher.start)

    async def stop(self) -> None:
        if self._watcher is not None:
            await asyncio.to_thread(self._watcher.stop)
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._http is not None:
            await self._http.aclose()

    def _from_thread(self, handler: Callable[..., Any]) -> Callable[..., None]:
        def call(*args: Any) -> None:
            assert self._loop is not None
            self._loop.call_soon_threadsafe(self._spawn, handler(*args))

        return call

    def _spawn(self, coroutine: Any) -> None:
        task = asyncio.ensure_future(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -- local events ---------------------------------------------------------------------

    def subscribe(self) -> asyncio.Queue[dict[str, Any]]:
        queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(MAX_QUEUED_EVENTS)
        self._subscribers.add(queue)
        return queue

    def unsubscribe(self, queue: asyncio.Queue[dict[str, Any]]) -> None:
        self._subscribers.discard(queue)

    def _tell(self, event: dict[str, Any]) -> None:
        for queue in list(self._subscribers):
            if queue.full():
                queue.get_nowait()  # drop the oldest: a page that does not read is not waited
            queue.put_nowait(event)

    # -- card operations ------------------------------------------------------------------

    async def on_card(self, reader: str, operation: Callable[[cards.Transport], T]) -> T:
        """Run ``operation`` on the card in ``reader`` in a worker thread, alone on that reader."""
        lock = self._locks.setdefault(reader, asyncio.Lock())
        async with lock:
            return await asyncio.to_thread(with_card, reader, operation)

    async def _inserted(self, reader: str, atr: bytes) -> None:
        state = self.readers[reader] = ReaderState(reader)
        self._tell({"type": "card.inserted", "reader": reader})
        kind: CardKind | None = None
        try:
            kind = await self.on_card(reader, cards.identify)
            if kind == "cps":
                certificates = await self.on_card(reader, lambda c: Cps(c).certificates())
                state.ps_id_nat = ps_id_nat_of(certificates)
        except CardError as error:
            kind, state.error = kind or "unknown", f"{error.kind}: {error}"
        state.kind = kind  # last: a card listed with its kind is fully identified
        self._tell(
            {
                "type": "card.identified",
                "reader": reader,
                "card_kind": state.kind,
                "ps_id_nat": state.ps_id_nat,
                "error": state.error,
            }
        )
        await self._publish_presence("inserted", state)
        if state.kind == "vitale" and state.error is None:
            await self.read_vitale(reader)

    async def _removed(self, reader: str) -> None:
        state = self.readers.pop(reader, None) or ReaderState(reader, kind="unknown")
        self._tell({"type": "card.removed", "reader": reader, "card_kind": state.kind})
        await self._publish_presence("removed", state)
        session = self.session
        if (
            session is not None
            and state.kind == "cps"
            and session.signed_in_by_card
            and session.ps_id_nat == state.ps_id_nat
        ):
            # Pulling out the CPS that signed the user in ends the session on this workstation.
            self.session = None
            self._tell({"type": "session.ended", "reason": "cps-removed"})

    async def read_vitale(self, reader: str) -> dict[str, Any] | None:
        """Read the Vitale in ``reader`` and post it for the signed-in user; the read's id."""
        try:
            content = await self.on_card(reader, cards.read_vitale)
        except CardError as error:
            self._tell({"type": "card.error", "reader": reader, "error": error.kind})
            return None
        if self.session is None:
            self._tell({"type": "vitale.read", "reader": reader, "published": False})
            return None
        try:
            accepted = await self._post(
                "/api/patient/patients/card-reads",
                {
                    "workstation_id": self.settings.workstation_id,
                    "holder_nir": content.holder_nir,
                    "card_serial": content.card_serial,
                    "beneficiaries": [b.model_dump() for b in content.beneficiaries],
                },
            )
        except (PlatformRefused, httpx.HTTPError) as error:
            log.warning("card_read_not_published", reason=type(error).__name__)
            self._tell({"type": "card.error", "reader": reader, "error": "platform-refused"})
            return None
        self._tell({"type": "vitale.read", "reader": reader, "read_id": accepted["read_id"]})
        return accepted

    async def _publish_presence(self, event: str, state: ReaderState) -> None:
        if self.session is None:
            return
        try:
            await self._post(
                "/api/patient/patients/card-events",
                {
                    "event": event,
                    "workstation_id": self.settings.workstation_id,
                    "reader": state.reader,
                    "card_kind": state.kind or "unknown",
                    "ps_id_nat": state.ps_id_nat,
                },
            )
        except (PlatformRefused, httpx.HTTPError) as error:
            log.warning("card_event_not_published", reason=type(error).__name__)

    # -- the platform ---------------------------------------------------------------------

    async def _post(
        self, path: str, body: dict[str, Any], *, token: str | None = None
    ) -> dict[str, Any]:
        assert self._http is not None
        headers = {}
        bearer = token or (self.session.access_token if self.session else None)
        if bearer:
            headers["Authorization"] = f"Bearer {bearer}"
        response = await self._http.post(path, json=body, headers=headers)
        return _json_or_refusal(response)

    async def adopt_token(self, access_token: str) -> Session:
        """The web app hands over the signed-in user's token: check it with identity."""
        assert self._http is not None
        response = await self._http.get(
            "/api/identity/me", headers={"Authorization": f"Bearer {access_token}"}
        )
        me = _json_or_refusal(response)
        self.session = Session(
            access_token, me["user_id"], me["acting_structure"], me.get("ps_id_nat")
        )
        return self.session

    async def cps_login(self, pin: str, reader: str | None = None) -> dict[str, Any]:
        """Identity's challenge, signed by the CPS after the PIN, exchanged for the user's JWT."""
        reader = reader or self._cps_reader()
        challenge = await self._post("/api/identity/auth/cps/challenge", {})
        message = base64.b64decode(challenge["message"])

        def sign(card: cards.Transport) -> tuple[CpsCertificates, bytes]:
            cps = Cps(card)
            certificates = cps.certificates()
            cps.verify_pin(pin)
            return certificates, cps.authenticate(message)

        certificates, signature = await self.on_card(reader, sign)
        tokens = await self._post(
            "/api/identity/auth/cps/token",
            {
                "nonce": challenge["nonce"],
                "certificate": CpsCertificates.b64(certificates.authentication),
                "signature": base64.b64encode(signature).decode(),
                "intermediates": [CpsCertificates.b64(certificates.issuer)],
            },
        )
        session = await self.adopt_token(tokens["access_token"])
        session.signed_in_by_card = True
        return tokens

    def _cps_reader(self) -> str:
        for state in self.readers.values():
            if state.kind == "cps":
                return state.reader
        raise cards.UnknownCard("no CPS in any reader")

    async def cps_certificates(self, reader: str | None = None) -> tuple[str, CpsCertificates]:
        """The reader used and the certificates of its CPS (no PIN needed to read them)."""
        reader = reader or self._cps_reader()
        return reader, await self.on_card(reader, lambda card: Cps(card).certificates())

    async def cps_sign(
        self, pin: str, digest: bytes, algorithm: str, reader: str | None = None
    ) -> tuple[CpsCertificates, bytes]:
        """The CPS's signature key signs ``digest`` after the PIN, with its certificates.

        The PIN is presented on the same card connection as the signature: nothing is left
        unlocked between two requests.
        """
        reader = reader or self._cps_reader()

        def sign(card: cards.Transport) -> tuple[CpsCertificates, bytes]:
            cps = Cps(card)
            certificates = cps.certificates()
            cps.verify_pin(pin)
            return certificates, cps.sign_digest(digest, algorithm)

        return await self.on_card(reader, sign)

    async def pin_tries_left(self, reader: str | None = None) -> int:
        def tries(card: cards.Transport) -> int:
            cps = Cps(card)
            cps.select()
            return cps.pin_tries_left()

        return await self.on_card(reader or self._cps_reader(), tries)


def with_card(reader: str, operation: Callable[[cards.Transport], T]) -> T:
    context = Context()
    try:
        with connect(context, reader) as card:
            return operation(card)
    finally:
        context.close()


def ps_id_nat_of(certificates: CpsCertificates) -> str | None:
    """The PSIdNat of a CPS: its certificates' CN, before the "/"."""
    from cryptography.x509.oid import NameOID

    for attribute in certificates.authentication.subject.get_attributes_for_oid(
        NameOID.COMMON_NAME
    ):
        value = attribute.value
        if isinstance(value, str):
            return value.split("/", 1)[0]
    return None


def _json_or_refusal(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        body = {"detail": f"HTTP {response.status_code} without a JSON body"}
    if response.status_code >= 400 or not isinstance(body, dict):
        raise PlatformRefused(response.status_code, body if isinstance(body, dict) else {})
    return body
