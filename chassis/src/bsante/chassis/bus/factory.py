"""Choose the bus adapter from its URL: `embedded://var` or `kafka://host:9092[,host2:9092]`."""

from __future__ import annotations

from bsante.chassis.bus import EventBus, RetryPolicy


def bus_from_url(url: str, *, client_id: str, retry: RetryPolicy | None = None) -> EventBus:
    scheme, _, rest = url.partition("://")
    if scheme == "embedded":
        from bsante.chassis.bus.embedded import EmbeddedBus

        return EmbeddedBus(rest or "var", retry=retry)
    if scheme == "kafka":
        from bsante.chassis.bus.kafka import KafkaBus

        return KafkaBus(rest, client_id=client_id, retry=retry or RetryPolicy())
    raise ValueError(f"unsupported bus URL scheme {scheme!r} (embedded or kafka)")
