"""The envelope every integration event travels in, whatever the transport."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import uuid_utils
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator


def new_event_id() -> uuid.UUID:
    """A UUIDv7: time-ordered, so ids sort like the events they name."""
    return uuid.UUID(str(uuid_utils.uuid7()))


def utc_now() -> datetime:
    return datetime.now(UTC)


class Envelope(BaseModel):
    """Metadata shared by all events; `payload` holds the event's own fields as JSON."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    event_id: uuid.UUID = Field(default_factory=new_event_id)
    event_type: str = Field(min_length=1, max_length=100)
    schema_version: int = Field(ge=1)
    occurred_at: AwareDatetime = Field(default_factory=utc_now)
    producer: str = Field(min_length=1, max_length=100)
    structure_id: str = Field(min_length=1, max_length=100, description="Tenant")
    subject_id: str = Field(min_length=1, max_length=200, description="Aggregate id; Kafka key")
    correlation_id: str = Field(min_length=1, max_length=200)
    causation_id: str | None = Field(default=None, max_length=200)
    payload: dict[str, Any]

    @field_validator("event_id")
    @classmethod
    def _must_be_v7(cls, value: uuid.UUID) -> uuid.UUID:
        if value.version != 7:
            raise ValueError("event_id must be a UUIDv7")
        return value

    @field_validator("occurred_at")
    @classmethod
    def _to_utc(cls, value: datetime) -> datetime:
        return value.astimezone(UTC)

    def to_json(self) -> bytes:
        return self.model_dump_json().encode()

    @classmethod
    def from_json(cls, raw: bytes | str) -> Envelope:
        return cls.model_validate_json(raw)
