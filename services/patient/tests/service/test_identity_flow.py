"""Identity traits, INSi recovery, document checks and InsQualified, through the gateway."""

from __future__ import annotations

from typing import Any

from kit import MEDECIN, PATIENT, Platform, eventually  # type: ignore[import-not-found]

from bsante.chassis.bus.embedded import EmbeddedBus
from bsante.contracts.envelope import Envelope
from bsante.contracts.topics import AUDIT
from bsante.contracts.topics import PATIENT as PATIENT_TOPIC

LEFEVRE = {
    "birth_name": "Lefèvre",
    "birth_given_names": "Élodie Marie",
    "sex": "F",
    "birth_date": "1979-03-12",
    "birth_place": "51215",
}
BASE = "/api/patient/patients"


async def events(platform: Platform, topic: str = PATIENT_TOPIC) -> list[Envelope]:
    bus = EmbeddedBus(platform.data)
    await bus.start()
    try:
        return [Envelope.from_json(m.value) for m in await bus.read(topic)]
    finally:
        await bus.stop()


async def create(platform: Platform, headers: dict[str, str], **traits: Any) -> dict[str, Any]:
    response = await platform.client.post(BASE, json=traits, headers=headers)
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def test_full_rniv_traits_and_ipp(platform: Platform) -> None:
    headers = await platform.login(MEDECIN)
    body = await create(
        platform,
        headers,
        **LEFEVRE,
        used_name="Martin",
        contact={
            "phone": "01 23 45 67 89",
            "address": {"lines": ["1 rue X"], "postal_code": "51100"},
        },
    )
    assert body["traits"] == {
        "birth_name": "Lefèvre",
        "first_birth_given_name": "Élodie",
        "birth_given_names": "Élodie Marie",
        "sex": "F",
        "birth_date": "1979-03-12",
        "birth_place": "51215",
        "used_name": "Martin",
        "used_first_name": None,
    }
    assert body["identity_status"] == "provisoire" and body["identity_status_code"] == "PROV"
    assert body["ipp"] == "00000001" and not body["ins_shareable"]
    second = await create(platform, headers, **PATIENT)
    assert second["ipp"] == "00000002"
    # The IPP is per structure.
    val = await create(platform, platform.as_role("medecin", "demo-ssiad"), **PATIENT)
    assert val["ipp"] == "00000001"


async def test_insi_then_document_qualifies_once(platform: Platform) -> None:
    headers = await platform.login(MEDECIN)
    patient = await create(platform, headers, **LEFEVRE)
    url = f"{BASE}/{patient['id']}"
    insi = await platform.client.post(f"{url}/insi", headers=headers)
    assert insi.status_code == 200, insi.text
    assert insi.json()["result"] == "recovered"
    recovered = insi.json()["patient"]
    assert recovered["identity_status"] == "recuperee"
    assert recovered["ins"] == {"matricule": "279035121518989", "oid": "1.2.250.1.213.1.4.10"}
    assert recovered["traits"]["birth_name"] == "LEFEVRE"  # INS traits are copied as returned
    # Strict traits recovered from INSi are not edited by hand.
    locked = await platform.client.put(
        f"{url}/traits",
        json={**LEFEVRE, "birth_name": "LEFEBVRE"},
        headers={**headers, "If-Match": f'"{recovered["version"]}"'},
    )
    assert locked.status_code == 409
    for _ in range(2):  # the second check keeps QUAL and raises nothing
        checked = await platform.client.post(
            f"{url}/identity-document", json={"document_type": "passeport"}, headers=headers
        )
        assert checked.status_code == 200, checked.text
        assert checked.json()["identity_status"] == "qualifiee"
        assert checked.json()["ins_shareable"] is True
        assert checked.json()["document_check"]["checked_by"]
    again = await platform.client.post(f"{url}/insi", headers=headers)
    assert again.json()["result"] == "qualified"

    async def relayed() -> bool:
        # recovery, then qualification; the re-check and re-query change nothing. The
        # qualification's InsQualified is relayed after its PatientUpdated: wait for both.
        kinds = [e.event_type for e in await events(platform)]
        return kinds.count("PatientUpdated") == 2 and "InsQualified" in kinds

    await eventually(relayed)
    qualified = [e for e in await events(platform) if e.event_type == "InsQualified"]
    assert len(qualified) == 1
    assert qualified[0].payload["patient_id"] == patient["id"]
    assert qualified[0].payload["via"] == "document"
    assert qualified[0].payload["ins_oid"] == "1.2.250.1.213.1.4.10"
    assert "279035121518989" not in qualified[0].model_dump_json()

    async def on_timeline() -> bool:
        r = await platform.client.get(f"{url}/timeline?kind=ins_qualified", headers=headers)
        return bool(r.json()["total"] == 1)

    await eventually(on_timeline)
    history = await platform.client.get(f"{url}/history", headers=headers)
    actions = [h["action"] for h in history.json()["items"]]
    assert actions[:3] == ["created", "insi_recovery", "document_check"]


async def test_insi_discrepancy_blocks_qualification_and_is_shown(platform: Platform) -> None:
    headers = await platform.login(MEDECIN)
    patient = await create(platform, headers, **{**LEFEVRE, "birth_given_names": "Elodie"})
    url = f"{BASE}/{patient['id']}"
    checked = await platform.client.post(
        f"{url}/identity-document",
        json={"document_type": "carte_nationale_identite"},
        headers=headers,
    )
    assert checked.json()["identity_status"] == "validee"
    insi = await platform.client.post(f"{url}/insi", headers=headers)
    assert insi.status_code == 200
    outcome = insi.json()
    assert outcome["result"] == "discrepancy"
    assert outcome["discrepancies"] == [
        {"field": "birth_given_names", "local": "Elodie", "reference": "ELODIE MARIE"}
    ]
    assert outcome["patient"]["identity_status"] == "validee"
    shown = (await platform.client.get(url, headers=headers)).json()
    assert shown["last_insi"]["outcome"] == "discrepancy"
    assert shown["last_insi"]["discrepancies"][0]["field"] == "birth_given_names"
    assert shown["identity_status"] == "validee" and shown["ins"] is None
    # When INSi was last asked, whatever it answered: one date, not two.
    assert shown["insi_queried_at"] == shown["last_insi"]["queried_at"] is not None

    async def relayed() -> bool:
        return any(e.event_type == "PatientUpdated" for e in await events(platform))

    await eventually(relayed)
    assert not [e for e in await events(platform) if e.event_type == "InsQualified"]


async def test_provisional_identity_adopts_insi_traits_only_when_accepted(
    platform: Platform,
) -> None:
    headers = await platform.login(MEDECIN)
    patient = await create(platform, headers, **{**LEFEVRE, "birth_given_names": "Elodie"})
    url = f"{BASE}/{patient['id']}"
    first = (await platform.client.post(f"{url}/insi", headers=headers)).json()
    assert first["result"] == "discrepancy"
    assert first["patient"]["identity_status"] == "provisoire"
    accepted = await platform.client.post(
        f"{url}/insi", json={"accept_reference_traits": True}, headers=headers
    )
    assert accepted.json()["result"] == "recovered"
    assert accepted.json()["patient"]["traits"]["birth_given_names"] == "ELODIE MARIE"


async def test_insi_answers_and_rejections(platform: Platform) -> None:
    headers = await platform.login(MEDECIN)
    unknown = await create(platform, headers, **PATIENT)
    r = await platform.client.post(f"{BASE}/{unknown['id']}/insi", headers=headers)
    assert r.json()["result"] == "not_found" and r.json()["insi_code"] == "01"
    # INSi only knows M and F: the simulator rejects the request as the service would.
    undetermined = await create(platform, headers, **{**PATIENT, "sex": "I", "birth_name": "X"})
    r = await platform.client.post(f"{BASE}/{undetermined['id']}/insi", headers=headers)
    assert r.status_code == 422
    assert r.json()["errors"][0]["field"] == "sex"
    # A driving licence is not a high-trust document.
    r = await platform.client.post(
        f"{BASE}/{unknown['id']}/identity-document",
        json={"document_type": "permis_conduire"},
        headers=headers,
    )
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "document_type"
    r = await platform.client.post(
        f"{BASE}/{unknown['id']}/identity-document",
        json={
            "document_type": "passeport",
            "document_traits": {**PATIENT, "birth_name": "DURAND"},
        },
        headers=headers,
    )
    assert r.status_code == 422
    assert r.json()["errors"][0]["field"] == "document_traits.birth_name"
    current = (await platform.client.get(f"{BASE}/{unknown['id']}", headers=headers)).json()
    assert current["identity_status"] == "provisoire"


async def test_every_access_is_audited(platform: Platform) -> None:
    headers = await platform.login(MEDECIN)
    patient = await create(platform, headers, **LEFEVRE)
    url = f"{BASE}/{patient['id']}"
    read = await platform.client.get(url, headers=headers)
    await platform.client.put(
        f"{url}/traits",
        json={**LEFEVRE, "used_name": "Martin"},
        headers={**headers, "If-Match": read.headers["etag"]},
    )
    await platform.client.get(f"{BASE}?name=lefevre", headers=headers)
    await platform.client.get(f"{url}/fhir", headers=headers)

    async def audited() -> bool:
        found = [
            (e.payload["action"], e.payload["resource"])
            for e in await events(platform, AUDIT)
            if e.payload["patient_id"] == patient["id"]
        ]
        return found == [
            ("create", "patient"),
            ("read", "patient"),
            ("update", "patient"),
            ("search", "patient"),
            ("export", "patient"),
        ]

    await eventually(audited)
    one = next(e for e in await events(platform, AUDIT) if e.payload["action"] == "read")
    assert one.payload["client_address"] == "203.0.113.7"
    assert one.payload["service"] == "patient"


async def test_other_structures_see_nothing(platform: Platform) -> None:
    headers = await platform.login(MEDECIN)
    patient = await create(platform, headers, **LEFEVRE)
    val = platform.as_role("medecin", "demo-ssiad")
    for path in ("", "/fhir", "/timeline", "/postits", "/correspondents", "/history"):
        r = await platform.client.get(f"{BASE}/{patient['id']}{path}", headers=val)
        assert r.status_code == 404, path
    r = await platform.client.post(f"{BASE}/{patient['id']}/insi", headers=val)
    assert r.status_code == 404
    r = await platform.client.get(f"{BASE}?name=lefevre", headers=val)
    assert r.json()["total"] == 0
