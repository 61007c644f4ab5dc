"""The catalogue of integration events: type name + schema version -> payload model and topic."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from pydantic import BaseModel


class EventPayload(BaseModel):
    """Base class of every event payload; subclasses declare `event_type` and `schema_version`."""

    event_type: str
    schema_version: int


@dataclass(frozen=True)
class EventSpec:
    event_type: str
    schema_version: int
    topic: str
    payload: type[BaseModel]
    summary: str


class EventRegistry:
    def __init__(self) -> None:
        self._specs: dict[tuple[str, int], EventSpec] = {}

    def register(self, spec: EventSpec) -> None:
        key = (spec.event_type, spec.schema_version)
        if key in self._specs:
            raise ValueError(f"event {key} registered twice")
        self._specs[key] = spec

    def get(self, event_type: str, schema_version: int) -> EventSpec | None:
        return self._specs.get((event_type, schema_version))

    def latest(self, event_type: str) -> EventSpec:
        versions = [s for (t, _), s in self._specs.items() if t == event_type]
        if not versions:
            raise KeyError(event_type)
        return max(versions, key=lambda s: s.schema_version)

    def for_topic(self, topic: str) -> list[EventSpec]:
        return sorted(
            (s for s in self._specs.values() if s.topic == topic),
            key=lambda s: (s.event_type, s.schema_version),
        )

    def __iter__(self) -> Iterator[EventSpec]:
        return iter(sorted(self._specs.values(), key=lambda s: (s.event_type, s.schema_version)))


registry = EventRegistry()
