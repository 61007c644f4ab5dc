"""PC/SC through pyscard: readers, card presence, a connected card as a `Transport`.

Uses pyscard's thin `smartcard.scard` layer (the PC/SC calls themselves) rather than its
observer classes, so that errors and removal come back as values we map to `CardError`s.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from smartcard import scard

from bsante.card_bridge.cards import CardError, CardRemoved

_REMOVED = {
    scard.SCARD_W_REMOVED_CARD,
    scard.SCARD_E_NO_SMARTCARD,
    scard.SCARD_W_RESET_CARD,
    scard.SCARD_W_UNPOWERED_CARD,
    scard.SCARD_W_UNRESPONSIVE_CARD,
    scard.SCARD_E_READER_UNAVAILABLE,
    scard.SCARD_E_NOT_TRANSACTED,
}


PRESENT = scard.SCARD_STATE_PRESENT
CHANGED = scard.SCARD_STATE_CHANGED
MUTE = scard.SCARD_STATE_MUTE
REMOVAL_GRACE_MS = 1500


class PcscUnavailable(CardError):
    kind = "pcsc-unavailable"


def _check(result: int, what: str) -> None:
    if result == scard.SCARD_S_SUCCESS:
        return
    message = f"{what}: {scard.SCardGetErrorMessage(result).strip()} ({result & 0xFFFFFFFF:#010x})"
    if result in _REMOVED:
        raise CardRemoved(message)
    if result in (scard.SCARD_E_NO_SERVICE, scard.SCARD_E_SERVICE_STOPPED):
        raise PcscUnavailable(message)
    raise CardError(message)


class Context:
    """One PC/SC context (a connection to pcscd)."""

    def __init__(self) -> None:
        result, self.handle = scard.SCardEstablishContext(scard.SCARD_SCOPE_USER)
        _check(result, "connecting to the PC/SC service")

    def readers(self) -> list[str]:
        result, readers = scard.SCardListReaders(self.handle, [])
        if result == scard.SCARD_E_NO_READERS_AVAILABLE:
            return []
        _check(result, "listing readers")
        return list(readers)

    def wait_for_change(
        self, states: dict[str, int], timeout_ms: int
    ) -> dict[str, tuple[int, bytes]]:
        """Block until a reader's state differs from ``states`` (or the timeout): new states."""
        if not states:
            return {}
        result, changed = scard.SCardGetStatusChange(self.handle, timeout_ms, list(states.items()))
        if result == scard.SCARD_E_TIMEOUT:
            return {}
        _check(result, "waiting for card events")
        return {name: (event, bytes(atr)) for name, event, atr in changed}

    def cancel(self) -> None:
        scard.SCardCancel(self.handle)

    def close(self) -> None:
        scard.SCardReleaseContext(self.handle)


@dataclass
class Connected:
    """A card in a reader, held exclusively for one operation (a PC/SC transaction)."""

    context: Context
    handle: int
    protocol: int
    atr: bytes
    reader: str

    def transmit(self, apdu: bytes) -> bytes:
        result, response = scard.SCardTransmit(self.handle, self.protocol, list(apdu))
        _check(result, "sending a command to the card")
        answer = bytes(response)
        if len(answer) < 2 and self._pulled_out():
            raise CardRemoved(f"the card was removed from {self.reader!r}")
        return answer

    def _pulled_out(self) -> bool:
        # vpcd (and some readers) answer a card pulled out mid-command with an empty response:
        # give pcscd's poll a moment to tell removal from a card that answers garbage.
        try:
            state = self.context.wait_for_change({self.reader: PRESENT}, REMOVAL_GRACE_MS)
        except CardError:
            return True
        event = state.get(self.reader, (PRESENT, b""))[0]
        return not event & PRESENT or bool(event & MUTE)


@contextmanager
def connect(context: Context, reader: str) -> Iterator[Connected]:
    result, handle, protocol = scard.SCardConnect(
        context.handle,
        reader,
        scard.SCARD_SHARE_SHARED,
        scard.SCARD_PROTOCOL_T0 | scard.SCARD_PROTOCOL_T1,
    )
    _check(result, f"connecting to the card in {reader!r}")
    try:
        result = scard.SCardBeginTransaction(handle)
        _check(result, "starting a card transaction")
        try:
            result, _name, _state, _proto, atr = scard.SCardStatus(handle)
            _check(result, "reading the card status")
            yield Connected(context, handle, protocol, bytes(atr), reader)
        finally:
            scard.SCardEndTransaction(handle, scard.SCARD_LEAVE_CARD)
    finally:
        scard.SCardDisconnect(handle, scard.SCARD_LEAVE_CARD)


class Watcher:
    """Reports cards inserted and removed in every reader, from a thread of its own."""

    def __init__(
        self,
        on_insert: Callable[[str, bytes], None],
        on_remove: Callable[[str], None],
        *,
        poll_ms: int = 500,
    ) -> None:
        self._on_insert = on_insert
        self._on_remove = on_remove
        self._poll_ms = poll_ms
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.context: Context | None = None
        self.present: dict[str, bytes] = {}
        self.error: str | None = None

    def start(self) -> None:
        self.context = Context()
        self._thread = threading.Thread(target=self._run, name="card-watcher", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        assert self.context is not None
        states: dict[str, int] = {}
        while not self._stop.is_set():
            try:
                for reader in self.context.readers():
                    states.setdefault(reader, scard.SCARD_STATE_UNAWARE)
                for gone in set(states) - set(self.context.readers()):
                    del states[gone]
                    if self.present.pop(gone, None) is not None:
                        self._on_remove(gone)
                if not states:
                    self._stop.wait(self._poll_ms / 1000)
                    continue
                changed = self.context.wait_for_change(states, self._poll_ms)
                self.error = None
            except CardError as error:
                self.error = str(error)
                self._stop.wait(self._poll_ms / 1000)
                continue
            for reader, (event, atr) in changed.items():
                states[reader] = event & ~CHANGED
                here = bool(event & PRESENT) and not event & MUTE
                if here and reader not in self.present:
                    self.present[reader] = atr
                    self._on_insert(reader, atr)
                elif not here and reader in self.present:
                    del self.present[reader]
                    self._on_remove(reader)

    def stop(self) -> None:
        self._stop.set()
        if self.context is not None:
            self.context.cancel()
        if self._thread is not None:
            self._thread.join(timeout=5)
        if self.context is not None:
            self.context.close()
