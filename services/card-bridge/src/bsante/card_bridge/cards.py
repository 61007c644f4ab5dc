"""Talking to a card in a reader: APDU exchange with clear errors, CPS and Vitale operations.

Everything here is blocking (PC/SC calls are); the agent runs it in a worker thread, one
reader at a time (:class:`ReaderLock` in the monitor).
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Literal, Protocol

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from bsante.card_bridge import layout
from bsante.card_bridge.vitale_data import VitaleDataError, decode
from bsante.contracts.events.card_bridge import VitaleBeneficiary

CardKind = Literal["cps", "vitale", "unknown"]

# DER prefixes of DigestInfo (RFC 8017 section 9.2, note 1).
DIGEST_INFO_PREFIX: dict[str, bytes] = {
    "sha256": bytes.fromhex("3031300d060960864801650304020105000420"),
    "sha384": bytes.fromhex("3041300d060960864801650304020205000430"),
    "sha512": bytes.fromhex("3051300d060960864801650304020305000440"),
}
HASHES: dict[str, type[hashes.HashAlgorithm]] = {
    "sha256": hashes.SHA256,
    "sha384": hashes.SHA384,
    "sha512": hashes.SHA512,
}
READ_CHUNK = 0xE0


class CardError(Exception):
    """A card operation failed; ``kind`` is what the local API and events report."""

    kind = "card-error"


class CardRemoved(CardError):
    kind = "card-removed"


class MalformedResponse(CardError):
    kind = "malformed-response"


class UnexpectedStatus(CardError):
    kind = "unexpected-status"

    def __init__(self, command: str, status: int) -> None:
        super().__init__(f"{command}: the card answered {status:04X}")
        self.status = status


class UnknownCard(CardError):
    kind = "unknown-card"


class WrongPin(CardError):
    kind = "wrong-pin"

    def __init__(self, tries_left: int) -> None:
        super().__init__(f"wrong PIN: {tries_left} tries left")
        self.tries_left = tries_left


class PinBlocked(CardError):
    kind = "pin-blocked"


class BadPin(CardError):
    kind = "bad-pin"


class Transport(Protocol):
    """A connected card: raw APDU in, raw response APDU out (raises CardError)."""

    atr: bytes

    def transmit(self, apdu: bytes) -> bytes: ...


def exchange(card: Transport, apdu: bytes, command: str) -> tuple[bytes, int]:
    """Send one APDU; follow 61xx (GET RESPONSE) and 6Cxx (resend with Le); (data, SW)."""
    raw = card.transmit(apdu)
    for _ in range(16):
        if len(raw) < 2:
            raise MalformedResponse(f"{command}: response of {len(raw)} byte(s), no status word")
        data, status = raw[:-2], int.from_bytes(raw[-2:], "big")
        if status >> 8 == 0x61:
            raw = data + card.transmit(bytes([0x00, 0xC0, 0x00, 0x00, status & 0xFF]))
            continue
        if status >> 8 == 0x6C:
            # Wrong Le: send the same command again with the length the card asked for.
            resend = apdu[:-1] if len(apdu) == 5 else apdu
            raw = card.transmit(resend + bytes([status & 0xFF]))
            continue
        return data, status
    raise MalformedResponse(f"{command}: the card keeps asking for more exchanges")


def expect_ok(card: Transport, apdu: bytes, command: str) -> bytes:
    data, status = exchange(card, apdu, command)
    if status != layout.SW_OK:
        raise UnexpectedStatus(command, status)
    return data


def _short(cla: int, ins: int, p1: int, p2: int, data: bytes = b"", le: int | None = None) -> bytes:
    if len(data) > 255:
        raise ValueError("short APDUs carry at most 255 bytes")
    apdu = bytes([cla, ins, p1, p2])
    if data:
        apdu += bytes([len(data)]) + data
    if le is not None:
        apdu += bytes([le & 0xFF])
    return apdu


def select_aid(card: Transport, aid: bytes) -> bool:
    _, status = exchange(card, _short(0x00, 0xA4, 0x04, 0x0C, aid), "SELECT application")
    if status == layout.SW_OK:
        return True
    if status in (
        layout.SW_FILE_NOT_FOUND,
        layout.SW_INS_NOT_SUPPORTED,
        layout.SW_CLA_NOT_SUPPORTED,
    ):
        return False
    raise UnexpectedStatus("SELECT application", status)


def read_file(card: Transport, fid: int, *, limit: int = 32_768) -> bytes:
    """SELECT the EF then READ BINARY in chunks until the end of the file."""
    expect_ok(card, _short(0x00, 0xA4, 0x02, 0x0C, fid.to_bytes(2, "big")), f"SELECT {fid:04X}")
    content = bytearray()
    while len(content) < limit:
        offset = len(content)
        if offset > 0x7FFF:
            break
        data, status = exchange(
            card, _short(0x00, 0xB0, offset >> 8, offset & 0xFF, le=READ_CHUNK), "READ BINARY"
        )
        if status not in (layout.SW_OK, layout.SW_END_OF_FILE, layout.SW_WRONG_P1P2):
            raise UnexpectedStatus(f"READ BINARY {fid:04X}", status)
        content += data
        if status != layout.SW_OK or len(data) < READ_CHUNK:
            break
    return bytes(content)


def identify(card: Transport) -> CardKind:
    """CPS by ATR (CPS3 masked, CPS4) and the CPX IAS application; Vitale by its application."""
    is_cps_atr = layout.atr_matches(
        card.atr, layout.CPS3_ATR, layout.CPS3_ATR_MASK
    ) or layout.atr_matches(card.atr, layout.CPS4_ATR)
    if is_cps_atr and select_aid(card, layout.CPX_IAS_AID):
        return "cps"
    if select_aid(card, layout.VITALE_AID):
        return "vitale"
    return "unknown"


# -- CPS ----------------------------------------------------------------------------------


def _der_certificate(data: bytes, what: str) -> x509.Certificate:
    # READ BINARY of a fixed-size EF may return padding after the DER structure.
    try:
        if len(data) < 4 or data[0] != 0x30 or data[1] != 0x82:
            raise ValueError("not a DER SEQUENCE")
        size = 4 + int.from_bytes(data[2:4], "big")
        return x509.load_der_x509_certificate(data[:size])
    except ValueError as error:
        raise MalformedResponse(f"{what} certificate on the card: {error}") from None


@dataclass(frozen=True)
class CpsCertificates:
    authentication: x509.Certificate
    signature: x509.Certificate
    issuer: x509.Certificate

    @staticmethod
    def b64(certificate: x509.Certificate) -> str:
        return base64.b64encode(certificate.public_bytes(serialization.Encoding.DER)).decode()


class Cps:
    """Operations of a CPS (IAS-ECC) on a connected card."""

    def __init__(self, card: Transport) -> None:
        self.card = card

    def select(self) -> None:
        if not select_aid(self.card, layout.CPX_IAS_AID):
            raise UnknownCard("no CPX IAS application on this card")

    def certificates(self) -> CpsCertificates:
        self.select()
        return CpsCertificates(
            authentication=_der_certificate(read_file(self.card, layout.EF_CERT_AUTH), "auth"),
            signature=_der_certificate(read_file(self.card, layout.EF_CERT_SIGN), "signature"),
            issuer=_der_certificate(read_file(self.card, layout.EF_CERT_CA), "issuer"),
        )

    def pin_tries_left(self) -> int:
        _, status = exchange(
            self.card, _short(0x00, 0x20, 0x00, layout.PIN_REFERENCE), "VERIFY (status)"
        )
        if status == layout.SW_OK:
            return layout.PIN_TRIES
        if status == layout.SW_AUTH_BLOCKED:
            return 0
        if status & 0xFFF0 == 0x63C0:
            return status & 0x0F
        raise UnexpectedStatus("VERIFY (status)", status)

    def verify_pin(self, pin: str) -> None:
        if not (4 <= len(pin) <= layout.PIN_LENGTH and pin.isdigit()):
            raise BadPin(f"a CPS PIN has 4 to {layout.PIN_LENGTH} digits")
        padded = pin.encode("ascii").ljust(layout.PIN_LENGTH, b"\xff")
        _, status = exchange(
            self.card, _short(0x00, 0x20, 0x00, layout.PIN_REFERENCE, padded), "VERIFY"
        )
        if status == layout.SW_OK:
            return
        if status == layout.SW_AUTH_BLOCKED:
            raise PinBlocked("the card's PIN is blocked (3 wrong PINs): unblock it with the PUK")
        if status & 0xFFF0 == 0x63C0:
            tries = status & 0x0F
            if tries == 0:
                raise PinBlocked("the card's PIN is blocked (3 wrong PINs)")
            raise WrongPin(tries)
        raise UnexpectedStatus("VERIFY", status)

    def _mse(self, template: int, key: int) -> None:
        expect_ok(
            self.card,
            _short(0x00, 0x22, 0x41, template, bytes([0x84, 0x01, key])),
            "MSE SET",
        )

    def authenticate(self, message: bytes) -> bytes:
        """The authentication key signs SHA-256(message), PKCS#1 v1.5 (INTERNAL AUTHENTICATE)."""
        self._mse(0xA4, layout.KEY_AUTH)
        digest_info = digest_info_of(message, "sha256")
        signature = expect_ok(
            self.card, _short(0x00, 0x88, 0x00, 0x00, digest_info, le=0), "INTERNAL AUTHENTICATE"
        )
        if not signature:
            raise MalformedResponse("INTERNAL AUTHENTICATE: empty signature")
        return signature

    def sign_digest(self, digest: bytes, algorithm: str) -> bytes:
        """The signature key signs a DigestInfo (PSO COMPUTE DIGITAL SIGNATURE)."""
        self._mse(0xB6, layout.KEY_SIGN)
        prefix = DIGEST_INFO_PREFIX.get(algorithm)
        if prefix is None:
            raise ValueError(f"unsupported hash algorithm {algorithm}")
        signature = expect_ok(
            self.card,
            _short(0x00, 0x2A, 0x9E, 0x9A, prefix + digest, le=0),
            "PSO COMPUTE DIGITAL SIGNATURE",
        )
        if not signature:
            raise MalformedResponse("PSO COMPUTE DIGITAL SIGNATURE: empty signature")
        return signature


def digest_info_of(message: bytes, algorithm: str) -> bytes:
    hasher = hashes.Hash(HASHES[algorithm]())
    hasher.update(message)
    return DIGEST_INFO_PREFIX[algorithm] + hasher.finalize()


def verifies(certificate: x509.Certificate, message: bytes, signature: bytes) -> bool:
    key = certificate.public_key()
    if not isinstance(key, rsa.RSAPublicKey):
        return False
    try:
        key.verify(signature, message, padding.PKCS1v15(), hashes.SHA256())
    except Exception:  # noqa: BLE001 - any failure means "does not verify"
        return False
    return True


# -- Vitale -------------------------------------------------------------------------------


@dataclass(frozen=True)
class VitaleContent:
    holder_nir: str
    card_serial: str | None
    beneficiaries: list[VitaleBeneficiary]


def read_vitale(card: Transport) -> VitaleContent:
    if not select_aid(card, layout.VITALE_AID):
        raise UnknownCard("no Vitale application on this card")
    try:
        holder, serial, people = decode(read_file(card, layout.EF_VITALE_DATA))
    except VitaleDataError as error:
        raise MalformedResponse(f"Vitale data: {error}") from None
    return VitaleContent(holder, serial, people)
