"""Choose the bus adapter from its URL: `embedded://var` or `kafka://host:9092[,host2:9092]`."""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import TYPE_CHECKING

from bsante.chassis.bus import EventBus, RetryPolicy

if TYPE_CHECKING:
    from faststream.security import BaseSecurity

    from bsante.chassis.settings import ServiceSettings


def kafka_security(settings: ServiceSettings) -> BaseSecurity | None:
    """TLS (with the brokers' CA, and a client certificate for mutual TLS) and SASL
    SCRAM-SHA-512 from the settings; None for a plaintext connection (compose, tests)."""
    from faststream.security import BaseSecurity, SASLScram512

    sasl = bool(settings.bus_sasl_username)
    if not (settings.bus_tls or sasl):
        return None
    context = ssl.create_default_context(cafile=settings.bus_ca_file or None)
    if settings.bus_cert_file:
        context.load_cert_chain(settings.bus_cert_file, settings.bus_key_file or None)
    if sasl:
        if not settings.bus_sasl_password_file:
            raise ValueError("bus_sasl_username is set but bus_sasl_password_file is not")
        password = Path(settings.bus_sasl_password_file).read_text().strip()
        return SASLScram512(settings.bus_sasl_username, password, ssl_context=context)
    return BaseSecurity(ssl_context=context)


def bus_from_url(
    url: str,
    *,
    client_id: str,
    retry: RetryPolicy | None = None,
    security: BaseSecurity | None = None,
) -> EventBus:
    scheme, _, rest = url.partition("://")
    if scheme == "embedded":
        from bsante.chassis.bus.embedded import EmbeddedBus

        return EmbeddedBus(rest or "var", retry=retry)
    if scheme == "kafka":
        from bsante.chassis.bus.kafka import KafkaBus

        return KafkaBus(rest, client_id=client_id, retry=retry or RetryPolicy(), security=security)
    raise ValueError(f"unsupported bus URL scheme {scheme!r} (embedded or kafka)")
