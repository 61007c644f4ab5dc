"""The project's own carte Vitale data layout (no real card uses it: the real one is not public).

File EF_VITALE_DATA of the application VITALE_AID holds BER-TLV records, read with READ BINARY:

    0x80  holder NIR (ouvrant droit), 13 or 15 ASCII characters
    0x81  card serial number, ASCII
    0xA0  one beneficiary (repeated, at most 20), containing:
          0x80 NIR (13 or 15 ASCII, optional)   0x81 birth name (UTF-8)
          0x82 used name (UTF-8, optional)      0x83 given name (UTF-8)
          0x84 birth date YYYYMMDD (ASCII; a lunar date may carry 00 as day or month)
          0x85 birth rank (1 byte)              0x86 quality: 0 assuré, 1 conjoint, 2 enfant,
                                                     9 autre
          0x87 sex "M" or "F" (optional)
    0x00  padding to the end of the file

Lengths are BER: one byte below 0x80, else 0x81 nn or 0x82 nnnn.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Literal

from bsante.contracts.events.card_bridge import VitaleBeneficiary

QUALITIES: dict[int, Literal["assure", "conjoint", "enfant", "autre"]] = {
    0: "assure",
    1: "conjoint",
    2: "enfant",
    9: "autre",
}


class VitaleDataError(ValueError):
    """The card's data does not follow the layout (truncated, bad tag, bad value)."""


def _length(value: int) -> bytes:
    if value < 0x80:
        return bytes([value])
    if value < 0x100:
        return bytes([0x81, value])
    return bytes([0x82]) + value.to_bytes(2, "big")


def tlv(tag: int, value: bytes) -> bytes:
    return bytes([tag]) + _length(len(value)) + value


def iter_tlv(data: bytes) -> Iterator[tuple[int, bytes]]:
    i = 0
    while i < len(data):
        tag = data[i]
        if tag == 0x00:  # padding
            return
        if i + 1 >= len(data):
            raise VitaleDataError(f"truncated record at byte {i}")
        first = data[i + 1]
        if first < 0x80:
            size, i = first, i + 2
        elif first in (0x81, 0x82):
            width = first - 0x80
            if i + 2 + width > len(data):
                raise VitaleDataError(f"truncated length at byte {i}")
            size, i = int.from_bytes(data[i + 2 : i + 2 + width], "big"), i + 2 + width
        else:
            raise VitaleDataError(f"bad length byte {first:#04x} at byte {i + 1}")
        if i + size > len(data):
            raise VitaleDataError(f"value of tag {tag:#04x} runs past the end of the data")
        yield tag, data[i : i + size]
        i += size


def encode(
    holder_nir: str, beneficiaries: list[VitaleBeneficiary], card_serial: str | None = None
) -> bytes:
    out = tlv(0x80, holder_nir.encode("ascii"))
    if card_serial:
        out += tlv(0x81, card_serial.encode("ascii"))
    codes = {v: k for k, v in QUALITIES.items()}
    for person in beneficiaries:
        body = b""
        if person.nir:
            body += tlv(0x80, person.nir.encode("ascii"))
        body += tlv(0x81, person.birth_name.encode())
        if person.used_name:
            body += tlv(0x82, person.used_name.encode())
        body += tlv(0x83, person.given_name.encode())
        body += tlv(0x84, person.birth_date.replace("-", "").encode("ascii"))
        body += tlv(0x85, bytes([person.birth_rank]))
        body += tlv(0x86, bytes([codes[person.quality or "autre"]]))
        if person.sex:
            body += tlv(0x87, person.sex.encode("ascii"))
        out += tlv(0xA0, body)
    return out


def _text(value: bytes, field: str) -> str:
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError:
        raise VitaleDataError(f"{field} is not UTF-8") from None


def decode(data: bytes) -> tuple[str, str | None, list[VitaleBeneficiary]]:
    """(holder NIR, card serial, beneficiaries), or VitaleDataError."""
    holder: str | None = None
    serial: str | None = None
    people: list[VitaleBeneficiary] = []
    for tag, value in iter_tlv(data):
        if tag == 0x80:
            holder = _text(value, "holder NIR")
        elif tag == 0x81:
            serial = _text(value, "card serial")
        elif tag == 0xA0:
            people.append(_beneficiary(value, len(people)))
    if holder is None:
        raise VitaleDataError("no holder NIR on the card")
    if not people:
        raise VitaleDataError("no beneficiary on the card")
    return holder, serial, people


def _beneficiary(data: bytes, index: int) -> VitaleBeneficiary:
    fields: dict[int, bytes] = dict(iter_tlv(data))
    where = f"beneficiary {index}"
    try:
        date = _text(fields[0x84], where + " birth date")
        if len(date) != 8 or not date.isdigit():
            raise VitaleDataError(f"{where}: birth date must be YYYYMMDD")
        quality = QUALITIES.get(fields[0x86][0], "autre") if 0x86 in fields else None
        sex = _text(fields[0x87], where + " sex") if 0x87 in fields else None
        return VitaleBeneficiary.model_validate(
            {
                "nir": _text(fields[0x80], where + " NIR") if 0x80 in fields else None,
                "birth_name": _text(fields[0x81], where + " birth name"),
                "used_name": _text(fields[0x82], where + " used name") if 0x82 in fields else None,
                "given_name": _text(fields[0x83], where + " given name"),
                "birth_date": f"{date[:4]}-{date[4:6]}-{date[6:]}",
                "birth_rank": fields[0x85][0] if 0x85 in fields and fields[0x85] else 1,
                "quality": quality,
                "sex": sex,
            }
        )
    except KeyError as missing:
        raise VitaleDataError(f"{where}: tag {missing.args[0]:#04x} is missing") from None
    except ValueError as error:
        if isinstance(error, VitaleDataError):
            raise
        raise VitaleDataError(f"{where}: {error}") from None
