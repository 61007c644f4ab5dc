"""Vitale, duplicates, merge, search, post-its, correspondents, timeline, FHIR, bad input."""

from __future__ import annotations

import time
import uuid
from typing import Any

import jwt
import pytest
from fhir.resources.R4B.patient import Patient as FhirPatient
from kit import MEDECIN, PATIENT, Platform, eventually  # type: ignore[import-not-found]

from bsante.chassis.auth import issue_token
from bsante.chassis.bus import Message
from bsante.chassis.bus.embedded import EmbeddedBus
from bsante.contracts.envelope import Envelope
from bsante.contracts.events import FormCompleted, VitaleCardRead
from bsante.contracts.topics import PATIENT as PATIENT_TOPIC

BASE = "/api/patient/patients"
LEFEVRE = {
    "birth_name": "Lefèvre",
    "birth_given_names": "Élodie Marie",
    "sex": "F",
    "birth_date": "1979-03-12",
    "birth_place": "51215",
}
CARD: dict[str, Any] = {
    "workstation_id": "ws-1",
    "holder_nir": "1620188850453",
    "beneficiaries": [
        {
            "quality": "assure",
            "nir": "162018885045327",
            "birth_name": "DURAND",
            "given_name": "JEAN",
            "birth_date": "1962-01-15",
        },
        {
            "quality": "enfant",
            "birth_name": "DURAND",
            "given_name": "LEA",
            "birth_date": "2012-05-20",
        },
    ],
}


async def create(platform: Platform, headers: dict[str, str], **traits: Any) -> dict[str, Any]:
    response = await platform.client.post(BASE, json=traits, headers=headers)
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def publish(platform: Platform, topic: str, envelope: Envelope) -> None:
    bus = EmbeddedBus(platform.data)
    await bus.start()
    try:
        await bus.publish(Message(topic, envelope.subject_id, envelope.to_json(), {}))
    finally:
        await bus.stop()


async def bus_events(platform: Platform) -> list[Envelope]:
    bus = EmbeddedBus(platform.data)
    await bus.start()
    try:
        return [Envelope.from_json(m.value) for m in await bus.read(PATIENT_TOPIC)]
    finally:
        await bus.stop()


async def colleague(platform: Platform, headers: dict[str, str]) -> dict[str, str]:
    """Another user of the same structure, with the same roles."""
    claims = jwt.decode(headers["Authorization"][7:], options={"verify_signature": False})
    key = platform.services["identity"].app.state.signing_keys[0]
    token = issue_token(
        key,
        subject="colleague-" + uuid.uuid4().hex[:6],
        structures=claims["structures"],
        roles=claims["roles"],
        profession=claims.get("profession"),
        issuer=claims["iss"],
        audience=claims["aud"],
        ttl_seconds=300,
    )
    return {"Authorization": f"Bearer {token}"}


async def count(platform: Platform) -> int:
    return await platform.services["patient"].store.count("patients")


# -- Vitale ---------------------------------------------------------------------------------


async def test_reading_the_same_card_twice_gives_one_record(platform: Platform) -> None:
    headers = await platform.login(MEDECIN)
    first = await platform.client.post(
        f"{BASE}/from-vitale", json={"card": CARD, "beneficiary": 0}, headers=headers
    )
    assert first.status_code == 201, first.text
    patient = first.json()["patient"]
    assert first.json()["created"] is True
    assert patient["identity_status"] == "recuperee"
    assert patient["ins"]["matricule"] == "162018885045327"
    assert patient["traits"]["birth_given_names"] == "JEAN PAUL"
    again = await platform.client.post(
        f"{BASE}/from-vitale", json={"card": CARD, "beneficiary": 0}, headers=headers
    )
    assert again.status_code == 200 and again.json()["created"] is False
    assert again.json()["patient"]["id"] == patient["id"]
    child = await platform.client.post(
        f"{BASE}/from-vitale", json={"card": CARD, "beneficiary": 1, "sex": "F"}, headers=headers
    )
    assert child.status_code == 201 and child.json()["patient"]["traits"]["birth_name"] == "DURAND"
    assert child.json()["patient"]["identity_status"] == "recuperee"

    # The card bridge's event: the read is kept for the professional to pick from.
    event = Envelope(
        event_type="VitaleCardRead",
        schema_version=1,
        producer="card-bridge",
        structure_id="demo-ehpad",
        subject_id="ws-1",
        correlation_id="c",
        payload=VitaleCardRead.model_validate(CARD).model_dump(mode="json"),
    )
    await publish(platform, "bsante.card-bridge.v1", event)
    read_url = f"{BASE}/card-reads/{event.event_id}"

    async def stored() -> bool:
        return (await platform.client.get(read_url, headers=headers)).status_code == 200

    await eventually(stored)
    listed = (await platform.client.get(read_url, headers=headers)).json()
    assert listed["beneficiaries"][0]["patient_id"] == patient["id"]
    picked = await platform.client.post(
        f"{read_url}/select", json={"beneficiary": 0}, headers=headers
    )
    assert picked.status_code == 200 and picked.json()["patient"]["id"] == patient["id"]
    assert await count(platform) == 2


async def test_card_data_is_checked(platform: Platform) -> None:
    headers = await platform.login(MEDECIN)
    bad_key = {**CARD, "beneficiaries": [{**CARD["beneficiaries"][0], "nir": "162018885045328"}]}
    r = await platform.client.post(
        f"{BASE}/from-vitale", json={"card": bad_key, "beneficiary": 0}, headers=headers
    )
    assert r.status_code == 422
    assert r.json()["errors"][0]["field"] == "card.beneficiaries.0.nir"
    r = await platform.client.post(
        f"{BASE}/from-vitale", json={"card": CARD, "beneficiary": 5}, headers=headers
    )
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "beneficiary"
    short = await platform.client.post(
        f"{BASE}/from-vitale",
        json={"card": {**CARD, "holder_nir": "16201888504"}, "beneficiary": 0},
        headers=headers,
    )
    assert short.status_code == 422
    error = short.json()["errors"][0]
    assert error["field"] == "card.holder_nir"
    assert "13 characters, or 15 with its key" in error["message"]
    assert await count(platform) == 0


async def test_an_unknown_day_of_a_card_birth_date_is_flagged(platform: Platform) -> None:
    headers = await platform.login(MEDECIN)
    lunar = {
        **CARD,
        "holder_nir": "2410375056123",
        "beneficiaries": [
            {
                "quality": "assure",
                "birth_name": "MARTIN",
                "given_name": "ANNE",
                "birth_date": "1941-03-00",
                "sex": "F",
            }
        ],
    }
    r = await platform.client.post(
        f"{BASE}/from-vitale", json={"card": lunar, "beneficiary": 0}, headers=headers
    )
    assert r.status_code == 201, r.text
    patient = r.json()["patient"]
    assert patient["attributes"]["partial_birth_date"] is True
    assert patient["traits"]["birth_date"] == "1941-03-01"  # stands in, and says so


# -- duplicates and merge -------------------------------------------------------------------


async def test_duplicates_are_detected_on_create_and_update(platform: Platform) -> None:
    headers = await platform.login(MEDECIN)
    first = await create(platform, headers, **PATIENT)
    dup = await platform.client.post(
        BASE, json={**PATIENT, "birth_name": "dupont"}, headers=headers
    )
    assert dup.status_code == 409
    assert dup.json()["errors"][0]["patient_id"] == first["id"]
    forced = await platform.client.post(
        f"{BASE}?confirm_not_duplicate=true", json=PATIENT, headers=headers
    )
    assert forced.status_code == 201 and forced.json()["attributes"]["homonym"] is True
    # RNIV: both records of a homonymy carry the flag, not only the second one.
    first_now = await platform.client.get(f"{BASE}/{first['id']}", headers=headers)
    assert first_now.json()["attributes"]["homonym"] is True
    assert first_now.json()["version"] == first["version"] + 1
    with_nir = await create(platform, headers, **LEFEVRE, nir="2 79 03 51 215 189 89")
    assert with_nir["nir"] == "279035121518989"
    same_nir = await platform.client.post(
        f"{BASE}?confirm_not_duplicate=true",
        json={**LEFEVRE, "birth_name": "AUTRE", "nir": "279035121518989"},
        headers=headers,
    )
    assert same_nir.status_code == 409 and same_nir.json()["errors"][0]["field"] == "nir"
    other = await create(platform, headers, **{**PATIENT, "birth_name": "MARTIN"})
    update = await platform.client.put(
        f"{BASE}/{other['id']}/traits", json=PATIENT, headers={**headers, "If-Match": '"1"'}
    )
    assert update.status_code == 409
    assert await count(platform) == 4


async def test_merge_keeps_history_and_emits_patients_merged(platform: Platform) -> None:
    headers = await platform.login(MEDECIN)
    kept = await create(platform, headers, **PATIENT)
    dup = (
        await platform.client.post(
            f"{BASE}?confirm_not_duplicate=true",
            json={**PATIENT, "used_name": "Martin"},
            headers=headers,
        )
    ).json()
    await platform.client.post(
        f"{BASE}/{dup['id']}/postits", json={"text": "Allergie pénicilline"}, headers=headers
    )
    merged = await platform.client.post(
        f"{BASE}/{kept['id']}/merge", json={"duplicate_id": dup["id"]}, headers=headers
    )
    assert merged.status_code == 200, merged.text
    assert merged.json()["merged_from"] == [dup["id"]]
    retired = (await platform.client.get(f"{BASE}/{dup['id']}", headers=headers)).json()
    assert retired["active"] is False and retired["merged_into"] == kept["id"]
    postits = (await platform.client.get(f"{BASE}/{kept['id']}/postits", headers=headers)).json()
    assert [p["text"] for p in postits["items"]] == ["Allergie pénicilline"]
    again = await platform.client.post(
        f"{BASE}/{kept['id']}/merge", json={"duplicate_id": dup["id"]}, headers=headers
    )
    assert again.status_code == 409
    found = (await platform.client.get(f"{BASE}?name=dupont", headers=headers)).json()
    assert [p["id"] for p in found["items"]] == [kept["id"]]

    async def timeline_complete() -> bool:
        r = await platform.client.get(f"{BASE}/{kept['id']}/timeline", headers=headers)
        kinds = sorted(e["kind"] for e in r.json()["items"])
        # The kept record was flagged homonym when the second one was confirmed.
        return kinds == ["patient_created", "patient_created", "patient_updated", "patients_merged"]

    await eventually(timeline_complete)
    merges = [e for e in await bus_events(platform) if e.event_type == "PatientsMerged"]
    assert [(m.payload["kept_patient_id"], m.payload["merged_patient_id"]) for m in merges] == [
        (kept["id"], dup["id"])
    ]
    history = (await platform.client.get(f"{BASE}/{kept['id']}/history", headers=headers)).json()
    assert history["items"][-1]["action"] == "merged_from"


# -- search ---------------------------------------------------------------------------------


async def test_search_ignores_accents_case_and_hyphens_and_pages(platform: Platform) -> None:
    headers = await platform.login(MEDECIN)
    saint = await create(
        platform, headers, **{**PATIENT, "birth_name": "Saint-Éloi", "birth_given_names": "Zoé"}
    )
    await create(platform, headers, **PATIENT)
    await create(platform, headers, **{**PATIENT, "birth_name": "Dupont-Aignan", "sex": "M"})
    married = await create(
        platform, headers, **{**PATIENT, "birth_name": "Bernard", "used_name": "Dupont"}
    )
    for query in ("saint eloi", "SAINT-ÉLOI", "sainteloi", "Saint Eloi", "saint-é"):
        r = await platform.client.get(BASE, params={"name": query}, headers=headers)
        assert [p["id"] for p in r.json()["items"]] == [saint["id"]], query
    page1 = (await platform.client.get(f"{BASE}?name=dupont&limit=2", headers=headers)).json()
    page2 = (
        await platform.client.get(f"{BASE}?name=dupont&limit=2&offset=2", headers=headers)
    ).json()
    assert page1["total"] == page2["total"] == 3
    ids = [p["id"] for p in page1["items"] + page2["items"]]
    assert len(ids) == len(set(ids)) == 3 and married["id"] in ids
    by_given = await platform.client.get(f"{BASE}?name=dupont&given=mar&limit=10", headers=headers)
    assert by_given.json()["total"] == 3
    by_date = await platform.client.get(f"{BASE}?birth_date=1941-03-02", headers=headers)
    assert by_date.json()["total"] == 4
    by_ipp = await platform.client.get(f"{BASE}?ipp={saint['ipp']}", headers=headers)
    assert [p["id"] for p in by_ipp.json()["items"]] == [saint["id"]]
    bad = await platform.client.get(f"{BASE}?ins=279035121518988", headers=headers)
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "query.ins"


async def test_search_by_ins(platform: Platform) -> None:
    headers = await platform.login(MEDECIN)
    patient = await create(platform, headers, **LEFEVRE)
    await platform.client.post(f"{BASE}/{patient['id']}/insi", headers=headers)
    r = await platform.client.get(f"{BASE}?ins=279035121518989", headers=headers)
    assert [p["id"] for p in r.json()["items"]] == [patient["id"]]


# -- post-its and correspondents ------------------------------------------------------------


async def test_postit_visibility(platform: Platform) -> None:
    me = await platform.login(MEDECIN)
    other = await colleague(platform, me)
    patient = await create(platform, me, **PATIENT)
    url = f"{BASE}/{patient['id']}/postits"
    shared = await platform.client.post(url, json={"text": "Famille à rappeler"}, headers=me)
    assert shared.status_code == 201
    private = await platform.client.post(
        url, json={"text": "Note perso", "visibility": "author"}, headers=me
    )
    assert private.status_code == 201
    mine = (await platform.client.get(url, headers=me)).json()["items"]
    theirs = (await platform.client.get(url, headers=other)).json()["items"]
    assert sorted(p["text"] for p in mine) == ["Famille à rappeler", "Note perso"]
    assert [p["text"] for p in theirs] == ["Famille à rappeler"]
    refused = await platform.client.delete(f"{url}/{shared.json()['id']}", headers=other)
    assert refused.status_code == 403
    hidden = await platform.client.delete(f"{url}/{private.json()['id']}", headers=other)
    assert hidden.status_code == 404
    assert (
        await platform.client.delete(f"{url}/{shared.json()['id']}", headers=me)
    ).status_code == 204
    assert [
        p["text"] for p in (await platform.client.get(url, headers=other)).json()["items"]
    ] == []
    too_long = await platform.client.post(url, json={"text": "x" * 501}, headers=me)
    assert too_long.status_code == 422 and too_long.json()["errors"][0]["field"] == "text"


async def test_correspondents(platform: Platform) -> None:
    headers = await platform.login(MEDECIN)
    patient = await create(platform, headers, **PATIENT)
    url = f"{BASE}/{patient['id']}/correspondents"
    doctor = {"rpps": "99700367909", "role": "medecin_traitant", "display_name": "Dr Test"}
    added = await platform.client.post(url, json=doctor, headers=headers)
    assert added.status_code == 201, added.text
    second = await platform.client.post(
        url, json={**doctor, "rpps": "01234567897"}, headers=headers
    )
    assert second.status_code == 409
    nurse = await platform.client.post(
        url, json={**doctor, "rpps": "01234567897", "role": "infirmier"}, headers=headers
    )
    assert nurse.status_code == 201
    bad = await platform.client.post(url, json={**doctor, "rpps": "99700367908"}, headers=headers)
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "rpps"
    listed = (await platform.client.get(url, headers=headers)).json()["items"]
    assert [(c["role"], c["rpps"]) for c in listed] == [
        ("medecin_traitant", "99700367909"),
        ("infirmier", "01234567897"),
    ]
    removed = await platform.client.delete(f"{url}/{added.json()['id']}", headers=headers)
    assert removed.status_code == 204
    assert len((await platform.client.get(url, headers=headers)).json()["items"]) == 1


# -- timeline -------------------------------------------------------------------------------


async def test_timeline_collects_events_and_filters(platform: Platform) -> None:
    headers = await platform.login(MEDECIN)
    patient = await create(platform, headers, **PATIENT)
    url = f"{BASE}/{patient['id']}/timeline"
    form = Envelope(
        event_type="FormCompleted",
        schema_version=1,
        producer="forms",
        structure_id="demo-ehpad",
        subject_id=str(uuid.uuid4()),
        correlation_id="c",
        payload=FormCompleted(
            submission_id=uuid.uuid4(),
            patient_id=uuid.UUID(patient["id"]),
            form_id="aggir",
            form_version=1,
            completed_by="nurse-1",
            completed_at=Envelope.model_fields["occurred_at"].default_factory(),  # type: ignore[misc]
            data={},
            results={"gir": 4},
        ).model_dump(mode="json"),
    )
    await publish(platform, "bsante.forms.v1", form)

    async def both() -> bool:
        r = await platform.client.get(url, headers=headers)
        return bool(r.json()["total"] == 2)

    await eventually(both)
    forms = (await platform.client.get(f"{url}?kind=form_completed", headers=headers)).json()
    assert [e["summary"] for e in forms["items"]] == ["La grille AGGIR a été complétée : GIR 4."]
    assert forms["items"][0]["ref"]["type"] == "form_submission"
    future = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 3600))
    past = "2000-01-01T00:00:00Z"
    assert (await platform.client.get(url, params={"since": future}, headers=headers)).json()[
        "total"
    ] == 0
    assert (await platform.client.get(url, params={"until": past}, headers=headers)).json()[
        "total"
    ] == 0
    window = await platform.client.get(
        url, params={"since": past, "until": future, "kind": "patient_created"}, headers=headers
    )
    assert [e["kind"] for e in window.json()["items"]] == ["patient_created"]
    bad = await platform.client.get(f"{url}?kind=teleported", headers=headers)
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "query.kind"


# -- FHIR -----------------------------------------------------------------------------------


async def test_fhir_view_follows_fr_core(platform: Platform) -> None:
    headers = await platform.login(MEDECIN)
    patient = await create(platform, headers, **LEFEVRE, contact={"email": "e@example.org"})
    url = f"{BASE}/{patient['id']}"
    provisional = await platform.client.get(f"{url}/fhir", headers=headers)
    assert provisional.headers["content-type"] == "application/fhir+json"
    body = provisional.json()
    assert body["meta"]["profile"] == [
        "https://hl7.fr/ig/fhir/core/StructureDefinition/fr-core-patient"
    ]
    assert all("urn:oid:1.2.250.1.213.1.4" not in i["system"] for i in body["identifier"])
    await platform.client.post(f"{url}/insi", headers=headers)
    await platform.client.post(
        f"{url}/identity-document", json={"document_type": "passeport"}, headers=headers
    )
    resource = (await platform.client.get(f"{url}/fhir", headers=headers)).json()
    FhirPatient.model_validate(resource)  # a valid FHIR R4 Patient
    # Required elements of fr-core-patient-ins.
    assert resource["meta"]["profile"] == [
        "https://hl7.fr/ig/fhir/core/StructureDefinition/fr-core-patient-ins"
    ]
    ins = next(i for i in resource["identifier"] if i["system"].startswith("urn:oid:1.2.250"))
    assert ins == {
        "use": "official",
        "type": {
            "coding": [
                {
                    "system": "https://hl7.fr/ig/fhir/core/CodeSystem/fr-core-cs-v2-0203",
                    "code": "INS-NIR-TEST",
                }
            ]
        },
        "system": "urn:oid:1.2.250.1.213.1.4.10",
        "value": "279035121518989",
    }
    ipp = next(i for i in resource["identifier"] if i["type"]["coding"][0]["code"] == "PI")
    assert ipp["value"] == patient["ipp"] and ipp["system"] == "urn:bsante:ipp:demo-ehpad"
    reliability = next(
        e for e in resource["extension"] if e["url"].endswith("identity-reliability")
    )
    status = next(s for s in reliability["extension"] if s["url"] == "identityStatus")
    assert status["valueCoding"]["code"] == "QUAL"
    birth_place = next(e for e in resource["extension"] if e["url"].endswith("patient-birthPlace"))
    assert birth_place["valueAddress"]["extension"][0]["valueCoding"]["code"] == "51215"
    official = next(n for n in resource["name"] if n["use"] == "official")
    assert official["family"] == "LEFEVRE" and official["given"] == ["ELODIE"]
    assert official["extension"][0]["valueString"] == "ELODIE MARIE"
    assert resource["gender"] == "female" and resource["birthDate"] == "1979-03-12"
    assert resource["telecom"] == [{"system": "email", "value": "e@example.org"}]


# -- bad input ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"nir": "279035121518988"}, "nir"),
        ({"nir": "2790351215189"}, "nir"),
        ({"birth_date": "1979-02-30"}, "birth_date"),
        ({"birth_date": "1801-01-01"}, "birth_date"),
        ({"birth_place": "99999"}, "birth_place"),
        ({"birth_place": "75000"}, "birth_place"),
        ({"birth_given_names": "É" * 101}, "birth_given_names"),
        ({"used_name": "Martin!"}, "used_name"),
        ({"first_birth_given_name": "Marie"}, "first_birth_given_name"),
        ({"contact": {"email": "not-an-email"}}, "contact.email"),
        ({"contact": {"address": {"postal_code": "7500"}}}, "contact.address.postal_code"),
    ],
)
async def test_bad_traits_are_named_and_nothing_is_written(
    platform: Platform, change: dict[str, Any], field: str
) -> None:
    headers = await platform.login(MEDECIN)
    r = await platform.client.post(BASE, json={**LEFEVRE, **change}, headers=headers)
    assert r.status_code == 422, r.text
    assert r.headers["content-type"] == "application/problem+json"
    assert [e["field"] for e in r.json()["errors"]] == [field]
    assert await count(platform) == 0
    assert await platform.services["patient"].store.count("ipp_counters") == 0
