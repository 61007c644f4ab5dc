"""The live stream's table: every streamed event is a registered contract on a streamed topic,
carries only the fields listed, and reaches only whom it should (DMP statuses to the
structure's readers, SLA alerts to ops)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from bsante.chassis.auth import Principal
from bsante.contracts import events
from bsante.contracts.envelope import Envelope
from bsante.contracts.registry import registry
from bsante.gateway.events import STREAMED, TOPICS, EventHub


def envelope(payload: events.Payload, structure: str) -> Envelope:
    return Envelope(
        event_type=payload.event_type,
        schema_version=payload.schema_version,
        producer="test",
        structure_id=structure,
        subject_id=str(uuid.uuid4()),
        correlation_id="c",
        payload=payload.model_dump(mode="json"),
    )


def principal(roles: tuple[str, ...], structure: str, user: str = "u1") -> Principal:
    return Principal(user, (structure,), structure, roles)


def test_every_streamed_event_is_a_registered_contract_on_a_streamed_topic() -> None:
    assert events
    specs = {spec.event_type: spec for spec in registry}
    for event_type, streamed in STREAMED.items():
        assert event_type in specs, event_type
        assert specs[event_type].topic in TOPICS, event_type
        fields = set(specs[event_type].payload.model_fields)
        assert set(streamed.fields) <= fields, (event_type, set(streamed.fields) - fields)


def test_dmp_statuses_reach_the_structure_and_sla_alerts_reach_ops() -> None:
    now = datetime.now(UTC)
    hub = EventHub()
    document = uuid.uuid4()
    assert hub.publish(
        envelope(
            events.DmpDocumentSubmitted(
                document_id=document,
                patient_id=uuid.uuid4(),
                unique_id="1.2.250.1.999.1",
                submitted_at=now,
            ),
            "demo-ehpad",
        )
    )
    assert hub.publish(
        envelope(
            events.SlaBreached(
                subject_kind="incident",
                subject_id="health:forms@x",
                indicator="restoration",
                clock_sequence=1,
                started_at=now,
                deadline=now,
                detected_at=now,
            ),
            "bsante-ops",
        )
    )
    submitted, breached = hub._items
    assert submitted.name == "document.dmp_submitted"
    assert submitted.data["document_id"] == str(document)
    assert "patient_name" not in submitted.data
    doctor = principal(("medecin",), "demo-ehpad")
    elsewhere = principal(("medecin",), "demo-ssiad")
    ops = principal(("ops",), "bsante-ops")
    assert hub.visible(submitted, doctor) and not hub.visible(submitted, elsewhere)
    assert not hub.visible(submitted, ops)
    assert breached.name == "ops.sla_breached"
    assert hub.visible(breached, ops) and not hub.visible(breached, doctor)
