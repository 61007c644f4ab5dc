"""Integration event payloads, one module per producing service.

Each class is one (event_type, schema_version).

Payloads carry identifiers and states, not identity traits: a consumer that needs a patient's
names asks the patient service, so personal data does not spread over the bus.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar, TypeVar

from pydantic import BaseModel, ConfigDict

from bsante.contracts.registry import EventSpec, registry


class Payload(BaseModel):
    """Consumers ignore fields they do not know (forward compatibility)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    event_type: ClassVar[str]
    schema_version: ClassVar[int]
    topic: ClassVar[str]


P = TypeVar("P", bound=type[Payload])


def event(topic: str, version: int = 1, *, name: str | None = None) -> Callable[[P], P]:
    """Register a payload class under its class name as event type (or `name`: an older
    version kept beside the current class, e.g. `LegacyUserLoggedIn` as `UserLoggedIn` v1)."""

    def wrap(cls: P) -> P:
        event_type = name or cls.__name__
        cls.event_type = event_type
        cls.schema_version = version
        cls.topic = topic
        registry.register(EventSpec(event_type, version, topic, cls, (cls.__doc__ or "").strip()))
        return cls

    return wrap
