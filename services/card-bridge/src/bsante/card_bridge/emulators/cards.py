"""The project's CPS and Vitale emulators: the APDUs the bridge sends, and their errors.

A CPS holds an authentication key and a signature key (RSA), their certificates and the issuing
CA's, a PIN with a try counter that blocks after three wrong PINs. A Vitale holds the project's
own data layout (:mod:`bsante.card_bridge.vitale_data`). Both can be told to misbehave for the
bad-input tests: a fixed answer to an instruction (truncated, unexpected status word) or an
answer held back until the test lets it go (a slow card).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from cryptography.hazmat.primitives.asymmetric import rsa

from bsante.card_bridge import layout
from bsante.card_bridge.emulators.apdu import Command, MalformedApdu, parse, sw

INS_SELECT, INS_READ_BINARY, INS_VERIFY = 0xA4, 0xB0, 0x20
INS_MSE, INS_PSO, INS_INTERNAL_AUTH = 0x22, 0x2A, 0x88


def pkcs1_v15_sign_raw(key: rsa.RSAPrivateKey, digest_info: bytes) -> bytes:
    """What the card does: EMSA-PKCS1-v1_5 padding of the DigestInfo, then the RSA operation."""
    numbers = key.private_numbers()
    size = (key.key_size + 7) // 8
    if len(digest_info) > size - 11:
        raise ValueError("DigestInfo too long for the key")
    block = b"\x00\x01" + b"\xff" * (size - 3 - len(digest_info)) + b"\x00" + digest_info
    signature = pow(int.from_bytes(block, "big"), numbers.d, numbers.public_numbers.n)
    return signature.to_bytes(size, "big")


@dataclass
class EmulatedCard:
    """Files by identifier under one application, plus misbehaviour switches."""

    atr: bytes
    aid: bytes
    files: dict[int, bytes]
    faults: dict[int, bytes] = field(default_factory=dict)  # INS -> raw answer
    gate: threading.Event | None = None  # when set up, answers wait for it
    apdus: list[bytes] = field(default_factory=list)
    _selected_app: bool = False
    _current: int | None = None

    def power_on(self) -> None:
        self._selected_app = False
        self._current = None
        self.reset_security()

    def reset_security(self) -> None:
        pass

    def transmit(self, apdu: bytes) -> bytes:
        self.apdus.append(apdu)
        if self.gate is not None:
            self.gate.wait(timeout=30)
        try:
            command = parse(apdu)
        except MalformedApdu:
            return sw(layout.SW_WRONG_LENGTH)
        if command.ins in self.faults:
            return self.faults[command.ins]
        if command.cla not in (0x00, 0x80):
            return sw(layout.SW_CLA_NOT_SUPPORTED)
        handler = self.handlers().get(command.ins)
        if handler is None:
            return sw(layout.SW_INS_NOT_SUPPORTED)
        return handler(command)

    def handlers(self) -> dict[int, Callable[[Command], bytes]]:
        return {INS_SELECT: self._select, INS_READ_BINARY: self._read_binary}

    def _select(self, c: Command) -> bytes:
        if c.p1 == 0x04:  # by DF name (AID)
            if c.data != self.aid:
                return sw(layout.SW_FILE_NOT_FOUND)
            self._selected_app, self._current = True, None
            self.reset_security()
            return sw(layout.SW_OK)
        if c.p1 == 0x02 and len(c.data) == 2:  # EF under the current DF
            fid = int.from_bytes(c.data, "big")
            if not self._selected_app or fid not in self.files:
                return sw(layout.SW_FILE_NOT_FOUND)
            self._current = fid
            return sw(layout.SW_OK)
        return sw(layout.SW_WRONG_P1P2)

    def _read_binary(self, c: Command) -> bytes:
        if self._current is None:
            return sw(layout.SW_CONDITIONS_NOT_SATISFIED)
        content = self.files[self._current]
        offset = (c.p1 << 8) | c.p2
        if offset > len(content):
            return sw(layout.SW_WRONG_P1P2)
        wanted = c.le if c.le else 256
        chunk = content[offset : offset + wanted]
        return sw(layout.SW_END_OF_FILE if len(chunk) < wanted else layout.SW_OK, chunk)


@dataclass
class CpsEmulator(EmulatedCard):
    """A CPS3 (IAS-ECC) with a PIN and two RSA keys."""

    keys: dict[int, rsa.RSAPrivateKey] = field(default_factory=dict)
    pin: bytes = b"1234"
    tries_left: int = layout.PIN_TRIES
    _verified: bool = False
    _key_ref: int | None = None

    def reset_security(self) -> None:
        self._verified = False
        self._key_ref = None

    def handlers(self) -> dict[int, Callable[[Command], bytes]]:
        return {
            **super().handlers(),
            INS_VERIFY: self._verify,
            INS_MSE: self._mse,
            INS_PSO: self._pso,
            INS_INTERNAL_AUTH: self._internal_authenticate,
        }

    def _verify(self, c: Command) -> bytes:
        if c.p2 != layout.PIN_REFERENCE:
            return sw(layout.SW_FILE_NOT_FOUND)
        if self.tries_left == 0:
            return sw(layout.SW_AUTH_BLOCKED)
        if not c.data:  # ISO 7816-4: VERIFY without data asks for the try counter
            return sw(layout.SW_OK if self._verified else 0x63C0 | self.tries_left)
        if len(c.data) != layout.PIN_LENGTH:
            return sw(layout.SW_WRONG_LENGTH)
        if c.data.rstrip(b"\xff") == self.pin:
            self.tries_left, self._verified = layout.PIN_TRIES, True
            return sw(layout.SW_OK)
        self.tries_left -= 1
        self._verified = False
        if self.tries_left == 0:
            return sw(layout.SW_AUTH_BLOCKED)
        return sw(0x63C0 | self.tries_left)

    def _mse(self, c: Command) -> bytes:
        # MSE SET for signature (B6) or authentication (A4): tag 84 = key reference.
        if c.p1 != 0x41 or c.p2 not in (0xB6, 0xA4) or len(c.data) < 3 or c.data[0] != 0x84:
            return sw(layout.SW_WRONG_DATA)
        reference = c.data[2]
        if reference not in self.keys:
            return sw(layout.SW_FILE_NOT_FOUND)
        self._key_ref = reference
        return sw(layout.SW_OK)

    def _sign_with(self, reference: int, c: Command) -> bytes:
        if not self._verified:
            return sw(layout.SW_SECURITY_NOT_SATISFIED)
        if self._key_ref != reference:
            return sw(layout.SW_CONDITIONS_NOT_SATISFIED)
        try:
            signature = pkcs1_v15_sign_raw(self.keys[reference], c.data)
        except ValueError:
            return sw(layout.SW_DATA_INVALID)
        return sw(layout.SW_OK, signature)

    def _pso(self, c: Command) -> bytes:
        if (c.p1, c.p2) != (0x9E, 0x9A):
            return sw(layout.SW_WRONG_P1P2)
        return self._sign_with(layout.KEY_SIGN, c)

    def _internal_authenticate(self, c: Command) -> bytes:
        return self._sign_with(layout.KEY_AUTH, c)
