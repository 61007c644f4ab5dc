"""Throwaway X.509 certificates and CRLs for demos, simulators and tests: one issuer for all.

Never production material: a real deployment mounts its IGC-Santé certificates by path. Every
demo PKI of the platform (the DMP connector's VIHF certificate, the documents' cachet, the
MSSanté operator simulator's TLS, the emulated CPS cards) and the tests' PKIs issue through
`issue` and `crl`, so a certificate profile is written once.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Generic, TypeVar

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID, ObjectIdentifier

PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey
K = TypeVar("K", rsa.RSAPrivateKey, ec.EllipticCurvePrivateKey)

DAY = timedelta(days=1)


@dataclass(frozen=True)
class Issued(Generic[K]):
    """A certificate and the private key of its subject."""

    cert: x509.Certificate
    key: K

    @property
    def der(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.DER)

    @property
    def pem(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.PEM)

    @property
    def key_pem(self) -> bytes:
        return private_pem(self.key)


def rsa_key(bits: int = 2048) -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=bits)


def ec_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def name(
    common_name: str,
    *,
    country: str | None = "FR",
    organization: str | None = None,
    unit: str | None = None,
    serial_number: str | None = None,
) -> x509.Name:
    """C, O, OU, serialNumber, CN, in that order, each only when given."""
    attributes = [
        x509.NameAttribute(oid, value)
        for oid, value in (
            (NameOID.COUNTRY_NAME, country),
            (NameOID.ORGANIZATION_NAME, organization),
            (NameOID.ORGANIZATIONAL_UNIT_NAME, unit),
            (NameOID.SERIAL_NUMBER, serial_number),
        )
        if value
    ]
    return x509.Name([*attributes, x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def issue(
    subject: x509.Name,
    key: K,
    issuer: Issued[Any] | None = None,
    *,
    ca: bool = False,
    path_length: int | None = None,
    not_before: datetime | None = None,
    not_after: datetime | None = None,
    days: float = 365,
    digital_signature: bool | None = None,
    non_repudiation: bool = False,
    key_encipherment: bool = False,
    extended_key_usage: Sequence[ObjectIdentifier] = (),
    alt_names: Sequence[x509.GeneralName] = (),
) -> Issued[K]:
    """A certificate for `key`, signed by `issuer` (self-signed without one).

    Basic constraints and key usage are critical; subject and authority key identifiers are
    always there. A CA may sign certificates and CRLs; an end entity signs (unless
    `digital_signature=False`), with non-repudiation or key encipherment when asked.
    `not_before` defaults to five minutes ago (clocks drift), `not_after` to `days` later.
    """
    start = not_before or datetime.now(UTC) - timedelta(minutes=5)
    end = not_after or start + timedelta(days=days)
    signs = (not ca) if digital_signature is None else digital_signature
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer.cert.subject if issuer else subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(
            x509.BasicConstraints(ca=ca, path_length=path_length if ca else None), critical=True
        )
        .add_extension(
            x509.KeyUsage(
                digital_signature=signs,
                content_commitment=non_repudiation,
                key_encipherment=key_encipherment,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=ca,
                crl_sign=ca,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(
                (issuer.key if issuer else key).public_key()
            ),
            critical=False,
        )
    )
    if extended_key_usage:
        builder = builder.add_extension(x509.ExtendedKeyUsage(list(extended_key_usage)), False)
    if alt_names:
        builder = builder.add_extension(x509.SubjectAlternativeName(list(alt_names)), False)
    return Issued(builder.sign(issuer.key if issuer else key, hashes.SHA256()), key)


def crl(
    issuer: Issued[Any],
    revoked: Sequence[x509.Certificate] = (),
    *,
    last_update: datetime | None = None,
    next_update: datetime | None = None,
    revocation_date: datetime | None = None,
    signer: PrivateKey | None = None,
) -> x509.CertificateRevocationList:
    """A CRL of `issuer` revoking `revoked` (valid from yesterday for a week by default)."""
    now = datetime.now(UTC)
    start = last_update or now - DAY
    builder = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(issuer.cert.subject)
        .last_update(start)
        .next_update(next_update or start + 7 * DAY)
    )
    for cert in revoked:
        builder = builder.add_revoked_certificate(
            x509.RevokedCertificateBuilder()
            .serial_number(cert.serial_number)
            .revocation_date(revocation_date or start)
            .build()
        )
    return builder.sign(signer or issuer.key, hashes.SHA256())


def private_pem(key: PrivateKey) -> bytes:
    """PKCS#8 PEM, unencrypted (the file's mode protects it)."""
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def write_file(path: Path, data: bytes, *, mode: int = 0o644) -> None:
    """Atomically: written aside with its final mode, then renamed over `path`."""
    partial = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        os.write(descriptor, data)
        os.fchmod(descriptor, mode)  # the umask may have taken bits away, or left group ones
    finally:
        os.close(descriptor)
    partial.replace(path)


def write_private_key(path: Path, key: PrivateKey) -> None:
    write_file(path, private_pem(key), mode=0o600)
