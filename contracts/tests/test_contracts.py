"""The event contracts: envelope rules, committed documents, compatibility of schemas."""

from __future__ import annotations

import json
import uuid
from datetime import datetime, timedelta, timezone
from typing import Literal

import pytest
from pydantic import BaseModel, ValidationError

from bsante.contracts import events, generate
from bsante.contracts.compat import breaking_changes
from bsante.contracts.envelope import Envelope, new_event_id
from bsante.contracts.registry import registry


def _envelope(**overrides: object) -> Envelope:
    fields: dict[str, object] = {
        "event_type": "PatientCreated",
        "schema_version": 1,
        "producer": "patient",
        "structure_id": "s1",
        "subject_id": "p1",
        "correlation_id": "c1",
        "payload": {},
    }
    fields.update(overrides)
    return Envelope.model_validate(fields)


def test_envelope_ids_are_uuid7_and_time_ordered() -> None:
    ids = [new_event_id() for _ in range(50)]
    assert all(i.version == 7 for i in ids)
    assert ids == sorted(ids, key=str)


def test_envelope_refuses_a_non_v7_id_and_normalises_time_to_utc() -> None:
    with pytest.raises(ValidationError, match="UUIDv7"):
        _envelope(event_id=uuid.uuid4())
    paris = timezone(timedelta(hours=1))
    env = _envelope(occurred_at=datetime(2026, 1, 1, 12, tzinfo=paris))
    assert env.occurred_at.utcoffset() == timedelta(0)
    assert env.occurred_at.hour == 11
    with pytest.raises(ValidationError):
        _envelope(occurred_at=datetime(2026, 1, 1, 12))  # naive time is ambiguous


def test_envelope_round_trips_through_json() -> None:
    env = _envelope(payload={"a": 1})
    assert Envelope.from_json(env.to_json()) == env


def test_every_event_is_registered_on_a_known_topic() -> None:
    specs = list(registry)
    assert {(s.event_type, s.schema_version) for s in specs} >= {("PatientCreated", 1)}
    assert registry.latest("PatientCreated").payload is events.PatientCreated


def test_committed_asyncapi_and_schemas_match_the_code() -> None:
    stale = [
        str(path)
        for path, text in generate.rendered().items()
        if not path.exists() or path.read_text() != text
    ]
    assert not stale, f"run `make contracts` and commit: {stale}"


def test_asyncapi_document_is_version_3_with_a_channel_per_topic() -> None:
    doc = json.loads(generate.ASYNCAPI_PATH.read_text())
    assert doc["asyncapi"] == "3.0.0"
    addresses = {c["address"] for c in doc["channels"].values()}
    assert {"bsante.patient.v1", "bsante.identity.v1"} <= addresses


@pytest.mark.parametrize(
    "spec", list(registry), ids=lambda s: f"{s.event_type}.v{s.schema_version}"
)
def test_committed_schema_versions_only_change_compatibly(spec: object) -> None:
    """Changing a released schema incompatibly needs a new schema_version (a new file)."""
    from bsante.contracts.registry import EventSpec

    assert isinstance(spec, EventSpec)
    path = generate.SCHEMAS_DIR / f"{spec.event_type}.v{spec.schema_version}.json"
    if not path.exists():
        pytest.fail(f"{path.name} not committed: run `make contracts`")
    committed = json.loads(path.read_text())
    problems = breaking_changes(committed, generate.event_schema(spec))
    assert not problems, (
        f"{spec.event_type} v{spec.schema_version}: bump schema_version: {problems}"
    )


class V1(BaseModel):
    patient_id: uuid.UUID
    status: Literal["a", "b"]
    note: str | None = None


class Removed(BaseModel):
    status: Literal["a", "b"]
    note: str | None = None


class Renamed(BaseModel):
    patient: uuid.UUID
    status: Literal["a", "b"]
    note: str | None = None


class Retyped(BaseModel):
    patient_id: int
    status: Literal["a", "b"]
    note: str | None = None


class NewRequired(BaseModel):
    patient_id: uuid.UUID
    status: Literal["a", "b"]
    note: str | None = None
    author: str


class NewOptional(BaseModel):
    patient_id: uuid.UUID
    status: Literal["a", "b"]
    note: str | None = None
    author: str | None = None


@pytest.mark.parametrize(
    ("model", "expected"),
    [
        (Removed, "removed"),
        (Renamed, "removed or renamed"),
        (Retyped, "changed type"),
        (NewRequired, "newly required"),
    ],
)
def test_breaking_changes_are_detected(model: type[BaseModel], expected: str) -> None:
    problems = breaking_changes(V1.model_json_schema(), model.model_json_schema())
    assert any(expected in p for p in problems), problems


def test_a_new_optional_field_is_compatible() -> None:
    assert breaking_changes(V1.model_json_schema(), NewOptional.model_json_schema()) == []
