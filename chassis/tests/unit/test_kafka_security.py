"""Kafka security from the settings: plaintext unless asked, TLS with a CA and a client
certificate, SASL SCRAM-SHA-512 over TLS."""

from __future__ import annotations

from pathlib import Path

import pytest
from faststream.security import BaseSecurity, SASLScram512

from bsante.chassis import certificates
from bsante.chassis.bus.factory import kafka_security
from bsante.chassis.settings import ServiceSettings


def certificate(directory: Path) -> tuple[Path, Path]:
    user = certificates.issue(
        certificates.name("bsante-kafka-user", country=None), certificates.ec_key(), ca=True, days=1
    )
    cert_file, key_file = directory / "user.crt", directory / "user.key"
    cert_file.write_bytes(user.pem)
    key_file.write_bytes(user.key_pem)
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
