"""The throwaway certificate issuer every demo and test PKI uses."""

from __future__ import annotations

import ipaddress
import stat
from pathlib import Path

from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID

from bsante.chassis import certificates


def test_a_leaf_chains_to_its_ca_with_the_profile_asked() -> None:
    ca = certificates.issue(
        certificates.name("TEST CA", organization="BSANTE"),
        certificates.ec_key(),
        ca=True,
        path_length=0,
    )
    leaf = certificates.issue(
        certificates.name("leaf", unit="1750000001", serial_number="31750000001"),
        certificates.rsa_key(),
        ca,
        days=2,
        non_repudiation=True,
        extended_key_usage=[ExtendedKeyUsageOID.CLIENT_AUTH],
        alt_names=[x509.IPAddress(ipaddress.ip_address("127.0.0.1"))],
    )
    leaf.cert.verify_directly_issued_by(ca.cert)
    assert ca.cert.extensions.get_extension_for_class(x509.BasicConstraints).value.path_length == 0
    ca_usage = ca.cert.extensions.get_extension_for_class(x509.KeyUsage).value
    assert ca_usage.key_cert_sign and ca_usage.crl_sign and not ca_usage.digital_signature
    usage = leaf.cert.extensions.get_extension_for_class(x509.KeyUsage)
    assert usage.critical and usage.value.digital_signature and usage.value.content_commitment
    assert not usage.value.key_cert_sign
    assert list(leaf.cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value) == [
        ExtendedKeyUsageOID.CLIENT_AUTH
    ]
    assert (leaf.cert.not_valid_after_utc - leaf.cert.not_valid_before_utc).days == 2
    assert leaf.cert.subject.rfc4514_string() == ("CN=leaf,2.5.4.5=31750000001,OU=1750000001,C=FR")


def test_a_crl_revokes_what_it_names() -> None:
    ca = certificates.issue(certificates.name("TEST CA"), certificates.rsa_key(), ca=True)
    leaf = certificates.issue(certificates.name("leaf"), certificates.rsa_key(), ca)
    revoked = certificates.crl(ca, [leaf.cert])
    assert revoked.is_signature_valid(ca.cert.public_key())
    assert revoked.get_revoked_certificate_by_serial_number(leaf.cert.serial_number) is not None


def test_a_private_key_file_is_written_atomically_for_its_owner_only(tmp_path: Path) -> None:
    key = certificates.ec_key()
    path = tmp_path / "key.pem"
    certificates.write_private_key(path, key)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.read_bytes() == certificates.private_pem(key)
    assert [p.name for p in tmp_path.iterdir()] == ["key.pem"]
