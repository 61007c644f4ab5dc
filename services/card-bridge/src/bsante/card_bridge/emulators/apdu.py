"""Parsing command APDUs (ISO 7816-4, short and extended) on the emulator side."""

from __future__ import annotations

from dataclasses import dataclass


class MalformedApdu(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class Command:
    cla: int
    ins: int
    p1: int
    p2: int
    data: bytes
    le: int | None  # None: no Le; 0 means "as many as available" (256 or 65536)


def parse(apdu: bytes) -> Command:
    if len(apdu) < 4:
        raise MalformedApdu("an APDU has at least 4 bytes")
    cla, ins, p1, p2 = apdu[:4]
    body = apdu[4:]
    if not body:
        return Command(cla, ins, p1, p2, b"", None)
    if len(body) == 1:
        return Command(cla, ins, p1, p2, b"", body[0])
    if body[0] != 0:  # short Lc
        lc = body[0]
        data = body[1 : 1 + lc]
        rest = body[1 + lc :]
        if len(data) != lc or len(rest) > 1:
            raise MalformedApdu("Lc does not match the data")
        return Command(cla, ins, p1, p2, data, rest[0] if rest else None)
    # extended: 00 then 2-byte Lc or Le
    if len(body) == 3:
        return Command(cla, ins, p1, p2, b"", int.from_bytes(body[1:3], "big"))
    lc = int.from_bytes(body[1:3], "big")
    data = body[3 : 3 + lc]
    rest = body[3 + lc :]
    if len(data) != lc or len(rest) not in (0, 2):
        raise MalformedApdu("extended Lc does not match the data")
    return Command(cla, ins, p1, p2, data, int.from_bytes(rest, "big") if rest else None)


def sw(word: int, data: bytes = b"") -> bytes:
    return data + word.to_bytes(2, "big")
