"""A throw-away test PKI for the emulated CPS: root, intermediate, card certificates and CRLs.

Never a real IGC-Santé certificate: identity's CPS trust store is configured with this root in
the tests (and in a demo), never in production.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from bsante.card_bridge import layout
from bsante.card_bridge.emulators.cards import CpsEmulator, EmulatedCard
from bsante.card_bridge.vitale_data import encode
from bsante.chassis import certificates
from bsante.chassis.certificates import DAY
from bsante.contracts.events.card_bridge import VitaleBeneficiary

Issued = certificates.Issued[rsa.RSAPrivateKey]


def _ca_name(cn: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "FR"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "TEST BSANTE IGC"),
            x509.NameAttribute(NameOID.COMMON_NAME, cn),
        ]
    )


def card_subject(ps_id_nat: str, surname: str, given_name: str, title: str) -> x509.Name:
    """Shaped like an IGC-Santé CPS subject: multi-valued RDN carrying the PSIdNat as CN."""
    return x509.Name(
        [
            x509.RelativeDistinguishedName([x509.NameAttribute(NameOID.COUNTRY_NAME, "FR")]),
            x509.RelativeDistinguishedName([x509.NameAttribute(NameOID.TITLE, title)]),
            x509.RelativeDistinguishedName(
                [
                    x509.NameAttribute(NameOID.SURNAME, surname),
                    x509.NameAttribute(NameOID.COMMON_NAME, ps_id_nat),
                    x509.NameAttribute(NameOID.GIVEN_NAME, given_name),
                ]
            ),
        ]
    )


def _issue(
    subject: x509.Name,
    issuer: Issued | None,
    *,
    ca: bool,
    now: datetime,
    non_repudiation: bool = False,
) -> Issued:
    # An authentication certificate is for TLS client authentication; a signature one is not.
    return certificates.issue(
        subject,
        certificates.rsa_key(),
        issuer,
        ca=ca,
        not_before=now - 30 * DAY,
        not_after=now + 365 * DAY,
        non_repudiation=non_repudiation,
        extended_key_usage=[] if ca or non_repudiation else [ExtendedKeyUsageOID.CLIENT_AUTH],
    )


@dataclass
class CardPki:
    """Root and intermediate CA; issues CPS card key pairs and certificates."""

    now: datetime = field(default_factory=lambda: datetime.now(UTC))
    root: Issued = field(init=False)
    intermediate: Issued = field(init=False)

    def __post_init__(self) -> None:
        self.root = _issue(_ca_name("TEST AC RACINE"), None, ca=True, now=self.now)
        self.intermediate = _issue(_ca_name("TEST AC CLASSE 1"), self.root, ca=True, now=self.now)

    def card_keys(
        self,
        ps_id_nat: str,
        *,
        surname: str = "LEMAIRE",
        given_name: str = "CLAIRE",
        title: str = "Médecin",
    ) -> tuple[Issued, Issued]:
        """(authentication, signature) key pairs with their certificates."""
        subject = card_subject(ps_id_nat, surname, given_name, title)
        auth = _issue(subject, self.intermediate, ca=False, now=self.now)
        sign = _issue(subject, self.intermediate, ca=False, now=self.now, non_repudiation=True)
        return auth, sign

    def crl(self, issuer: Issued, revoked: Sequence[x509.Certificate] = ()) -> bytes:
        signed = certificates.crl(
            issuer,
            revoked,
            last_update=self.now - DAY,
            next_update=self.now + 6 * DAY,
            revocation_date=self.now - DAY,
        )
        return signed.public_bytes(serialization.Encoding.PEM)

    def write_trust_store(self, directory: Path) -> tuple[Path, list[Path]]:
        """ca.pem (root + intermediate) and the two CRLs, as identity's settings take them."""
        directory.mkdir(parents=True, exist_ok=True)
        ca = directory / "cps-ca.pem"
        ca.write_bytes(
            self.root.cert.public_bytes(serialization.Encoding.PEM)
            + self.intermediate.cert.public_bytes(serialization.Encoding.PEM)
        )
        crls = [directory / "cps-root.crl", directory / "cps-intermediate.crl"]
        crls[0].write_bytes(self.crl(self.root))
        crls[1].write_bytes(self.crl(self.intermediate))
        return ca, crls


def cps_card(
    pki: CardPki,
    ps_id_nat: str,
    *,
    pin: bytes = b"1234",
    cps4: bool = False,
    keys: tuple[Issued, Issued] | None = None,
) -> CpsEmulator:
    auth, sign = keys or pki.card_keys(ps_id_nat)
    return CpsEmulator(
        atr=layout.CPS4_ATR if cps4 else layout.CPS3_ATR,
        aid=layout.CPX_IAS_AID,
        files={
            layout.EF_CERT_AUTH: auth.der,
            layout.EF_CERT_SIGN: sign.der,
            layout.EF_CERT_CA: pki.intermediate.der,
        },
        keys={layout.KEY_AUTH: auth.key, layout.KEY_SIGN: sign.key},
        pin=pin,
    )


def vitale_card(
    holder_nir: str, beneficiaries: list[VitaleBeneficiary], serial: str | None = None
) -> EmulatedCard:
    return EmulatedCard(
        atr=layout.VITALE_ATR,
        aid=layout.VITALE_AID,
        files={layout.EF_VITALE_DATA: encode(holder_nir, beneficiaries, serial)},
    )


def unknown_card() -> EmulatedCard:
    """A card the bridge does not know: some other ATR, none of its applications."""
    atr = bytes.fromhex("3B8F8001804F0CA000000306030001000000006A")
    return EmulatedCard(atr=atr, aid=b"\xa0", files={})
