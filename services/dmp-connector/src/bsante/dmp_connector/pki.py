"""A small PKI for tests and the demo: a CA and a structure's certificate ("ORG" signing).

Never for production: a real deployment signs the VIHF with the structure's IGC-Santé
certificate, configured by path (see the settings).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from cryptography.x509.oid import ExtendedKeyUsageOID

from bsante.chassis import certificates


@dataclass(frozen=True)
class Pki:
    ca_cert: Path
    cert: Path
    key: Path


def generate(folder: Path, *, structure_id: str = "1750000001", days: int = 365) -> Pki:
    """A CA and a certificate for `structure_id` (its StructIdNat in the OU), as PEM files."""
    folder.mkdir(parents=True, exist_ok=True)
    ca = certificates.issue(
        certificates.name("TEST AC BSANTE DEMO", organization="BSANTE DEMO"),
        certificates.rsa_key(),
        ca=True,
        path_length=0,
        days=days * 2,
    )
    org = certificates.issue(
        certificates.name("BSANTE ORG SIGNATURE", organization="BSANTE DEMO", unit=structure_id),
        certificates.rsa_key(),
        ca,
        days=days,
        non_repudiation=True,
        extended_key_usage=[ExtendedKeyUsageOID.CLIENT_AUTH],
    )
    pki = Pki(folder / "ca.pem", folder / "org-cert.pem", folder / "org-key.pem")
    pki.ca_cert.write_bytes(ca.pem)
    pki.cert.write_bytes(org.pem)
    certificates.write_private_key(pki.key, org.key)
    return pki


def ensure(folder: Path) -> Pki:
    """The demo PKI of a data directory, generated at first use."""
    pki = Pki(folder / "ca.pem", folder / "org-cert.pem", folder / "org-key.pem")
    if pki.ca_cert.is_file() and pki.cert.is_file() and pki.key.is_file():
        return pki
    return generate(folder)
