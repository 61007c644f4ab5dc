"""Kafka security from the settings: plaintext unless asked, TLS with a CA and a client
certificate, SASL SCRAM-SHA-512 over TLS."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from faststream.security import BaseSecurity, SASLScram512

from bsante.chassis.bus.factory import kafka_security
from bsante.chassis.settings import ServiceSettings


def certificate(directory: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "bsante-kafka-user")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = directory / "user.crt", directory / "user.key"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_file, key_file


def test_plaintext_unless_asked() -> None:
    assert kafka_security(ServiceSettings()) is None


def test_mutual_tls_with_the_brokers_ca(tmp_path: Path) -> None:
    cert, key = certificate(tmp_path)
    security = kafka_security(
        ServiceSettings(
            bus_tls=True, bus_ca_file=str(cert), bus_cert_file=str(cert), bus_key_file=str(key)
        )
    )
    assert type(security) is BaseSecurity
    assert security.ssl_context is not None
    assert [c["subject"] for c in security.ssl_context.get_ca_certs()] == [
        ((("commonName", "bsante-kafka-user"),),)
    ]


def test_sasl_scram_reads_its_password_from_a_file(tmp_path: Path) -> None:
    (tmp_path / "password").write_text("s3cret\n")
    security = kafka_security(
        ServiceSettings(
            bus_sasl_username="bsante-patient", bus_sasl_password_file=str(tmp_path / "password")
        )
    )
    assert isinstance(security, SASLScram512)
    assert security.password == "s3cret"
    assert security.ssl_context is not None
    with pytest.raises(ValueError, match="bus_sasl_password_file"):
        kafka_security(ServiceSettings(bus_sasl_username="bsante-patient"))


def test_a_missing_ca_file_is_an_error_at_start(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        kafka_security(ServiceSettings(bus_tls=True, bus_ca_file=str(tmp_path / "nope.crt")))
