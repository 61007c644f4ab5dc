"""Bad input gets a clear 4xx problem+json naming the fields, never a 5xx, never a partial write."""

from __future__ import annotations

import uuid

import pytest
from kit import PATIENT, Platform, eventually  # type: ignore[import-not-found]

from bsante.chassis.bus import Message
from bsante.chassis.bus.embedded import EmbeddedBus
from bsante.contracts.envelope import Envelope
from bsante.contracts.topics import PATIENT as PATIENT_TOPIC


def is_problem(response: object) -> bool:
    headers = response.headers  # type: ignore[attr-defined]
    return bool(headers["content-type"] == "application/problem+json")


async def patient_count(platform: Platform) -> int:
    return await platform.services["patient"].store.count("patients")


async def test_malformed_json_is_400(platform: Platform) -> None:
    headers = await platform.login()
    response = await platform.client.post(
        "/api/patient/patients",
        content=b'{"birth_name": "DUPONT", ',
        headers={**headers, "content-type": "application/json"},
    )
    assert response.status_code == 400 and is_problem(response)
    assert response.json()["errors"][0]["type"] == "json_invalid"
    assert await patient_count(platform) == 0


@pytest.mark.parametrize(
    ("change", "fields"),
    [
        ({"sex": "X"}, {"sex"}),
        ({"birth_date": "1941-02-30"}, {"birth_date"}),
        ({"birth_date": "2999-01-01"}, {"birth_date"}),
        ({"birth_name": 42}, {"birth_name"}),
        ({"birth_name": "D" * 101}, {"birth_name"}),
        ({"birth_given_names": "M@rie"}, {"birth_given_names"}),
        ({"birth_name": None, "birth_given_names": []}, {"birth_name", "birth_given_names"}),
        ({"unexpected": "x"}, {"unexpected"}),
    ],
)
async def test_wrong_values_name_the_fields(
    platform: Platform, change: dict[str, object], fields: set[str]
) -> None:
    headers = await platform.login()
    response = await platform.client.post(
        "/api/patient/patients", json={**PATIENT, **change}, headers=headers
    )
    assert response.status_code == 422 and is_problem(response)
    named = {e["field"] for e in response.json()["errors"]}
    assert named == fields
    assert await patient_count(platform) == 0


async def test_missing_fields_are_each_named(platform: Platform) -> None:
    headers = await platform.login()
    response = await platform.client.post(
        "/api/patient/patients", json={"sex": "F"}, headers=headers
    )
    assert response.status_code == 422
    named = {e["field"] for e in response.json()["errors"]}
    assert named == {"birth_name", "birth_given_names", "birth_date"}
    assert all(e["type"] == "missing" for e in response.json()["errors"])


async def test_oversized_bodies_are_413(platform: Platform) -> None:
    headers = await platform.login()
    big = {**PATIENT, "birth_name": "A" * (70 * 1024)}
    response = await platform.client.post("/api/patient/patients", json=big, headers=headers)
    assert response.status_code == 413 and is_problem(response)

    async def chunks():  # type: ignore[no-untyped-def]
        for _ in range(80):
            yield b"x" * 1024

    streamed = await platform.client.post(
        "/api/patient/patients",
        content=chunks(),
        headers={**headers, "content-type": "application/json"},
    )
    assert streamed.status_code == 413
    assert await patient_count(platform) == 0


async def test_unknown_routes_and_methods(platform: Platform) -> None:
    headers = await platform.login()
    for path in ("/nope", "/api/nope/x", "/api/patient/nope"):
        response = await platform.client.get(path, headers=headers)
        assert response.status_code == 404 and is_problem(response), path
    response = await platform.client.delete("/api/patient/patients", headers=headers)
    assert response.status_code == 405 and is_problem(response)
    response = await platform.client.get("/api/patient/patients/not-a-uuid", headers=headers)
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "path.patient_id"


async def test_unknown_and_malformed_events_on_the_bus(platform: Platform) -> None:
    """Unknown event types are skipped and acknowledged; malformed ones go to the DLQ."""
    sla = platform.services["sla-monitor"]
    bus = EmbeddedBus(platform.data)
    await bus.start()
    unknown = Envelope(
        event_type="PatientTeleported",
        schema_version=1,
        producer="patient",
        structure_id="demo-ehpad",
        subject_id=str(uuid.uuid4()),
        correlation_id="c",
        payload={"anything": True},
    )
    future_version = unknown.model_copy(
        update={"event_type": "PatientCreated", "schema_version": 99, "event_id": unknown.event_id}
    )
    bad_payload = Envelope(
        event_type="PatientCreated",
        schema_version=1,
        producer="patient",
        structure_id="demo-ehpad",
        subject_id="p",
        correlation_id="c",
        payload={"patient_id": "not-a-uuid"},
    )
    for value in (unknown.to_json(), future_version.to_json(), b"{not json", bad_payload.to_json()):
        await bus.publish(Message(PATIENT_TOPIC, "k", value, {}))
    group = sla.consumer_group
    last = (await bus.read(PATIENT_TOPIC))[-1].offset

    async def all_consumed() -> bool:
        return await bus.committed(group, PATIENT_TOPIC) == last

    await eventually(all_consumed)
    # The patient service consumes its own topic too (timeline): keep sla-monitor's letters.
    dead = [
        m
        for m in await bus.read(PATIENT_TOPIC + ".dlq")
        if m.headers.get("x-consumer-group") == group
    ]
    assert [m.headers["x-error-type"] for m in dead] == ["PoisonMessage", "PoisonMessage"]
    assert [m.value for m in dead] == [b"{not json", bad_payload.to_json()]
    assert await sla.store.count("usage_daily") == 0
    await bus.stop()
