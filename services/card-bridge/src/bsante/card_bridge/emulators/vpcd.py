"""The vpcd wire protocol: a virtual card behind a TCP socket that pcscd's vpcd driver uses.

Each message is a 2-byte big-endian length, then the payload. A 1-byte payload is a control
(0 power off, 1 power on, 2 reset, 4 get ATR); anything longer is a command APDU, answered by a
response APDU. Controls other than get ATR have no answer.

vpcd listens (reader.conf DEVICENAME ``/dev/null:<port>``) on every interface; the emulator
connects to it. (vpcd's other mode, connecting out to a host, crashes pcscd on reconnect in
Debian's vsmartcard 0.8.) The tests keep vpcd off the network by running pcscd in a network
namespace of its own, where only loopback exists (:mod:`bsante.card_bridge.testing`).
"""

from __future__ import annotations

import socket
import struct
import threading
from collections.abc import Callable
from typing import Protocol

POWER_OFF, POWER_ON, RESET, GET_ATR = 0, 1, 2, 4


class VirtualCard(Protocol):
    atr: bytes

    def power_on(self) -> None: ...

    def transmit(self, apdu: bytes) -> bytes: ...


def _recv_exact(conn: socket.socket, size: int) -> bytes | None:
    chunks = bytearray()
    while len(chunks) < size:
        chunk = conn.recv(size - len(chunks))
        if not chunk:
            return None
        chunks += chunk
    return bytes(chunks)


def serve_connection(conn: socket.socket, card: VirtualCard) -> None:
    """Answer vpcd on one connection until it closes (or the card is pulled out)."""
    while True:
        header = _recv_exact(conn, 2)
        if header is None:
            return
        (size,) = struct.unpack(">H", header)
        payload = _recv_exact(conn, size) if size else b""
        if payload is None:
            return
        if len(payload) == 1:
            control = payload[0]
            if control == GET_ATR:
                conn.sendall(struct.pack(">H", len(card.atr)) + card.atr)
            elif control in (POWER_ON, RESET):
                card.power_on()
            continue
        answer = card.transmit(payload)
        conn.sendall(struct.pack(">H", len(answer)) + answer)


SocketFactory = Callable[[], socket.socket]


def tcp(host: str = "127.0.0.1", port: int = 35963) -> SocketFactory:
    """Connect to a vpcd slot listening on host:port (35963 for slot 0, 35964 for slot 1)."""
    return lambda: socket.create_connection((host, port), timeout=10)


class VpcdSlot:
    """One virtual card slot: insert a card (connect and answer vpcd), pull it out."""

    def __init__(self, connect: SocketFactory) -> None:
        self._connect = connect
        self._conn: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self.card: VirtualCard | None = None

    def insert(self, card: VirtualCard) -> None:
        self.remove()
        conn = self._connect()
        conn.settimeout(None)
        with self._lock:
            self._conn, self.card = conn, card
        self._thread = threading.Thread(
            target=self._serve, args=(conn, card), name="vpcd-slot", daemon=True
        )
        self._thread.start()

    def _serve(self, conn: socket.socket, card: VirtualCard) -> None:
        try:
            serve_connection(conn, card)
        except OSError:
            pass
        finally:
            conn.close()

    def remove(self) -> None:
        """Pull the card out: the connection drops, vpcd reports the card absent."""
        with self._lock:
            conn, self._conn, self.card = self._conn, None, None
            self._thread = None
        # The serving thread ends on its own once its socket is shut (it may be held in a
        # slow card's answer: not joined here).
        if conn is not None:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
