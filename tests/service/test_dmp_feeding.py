"""From a qualified patient to the DMP on the embedded platform: a document drafted, finalised
and signed in the real documents service, the patient's DMP opposition (patient service), the
connector fetching the CDA from documents, the simulator the platform serves, the timeline, and a
professional's consultation and DMP administration."""

from __future__ import annotations

from typing import Any

import httpx
from kit import MEDECIN, Platform, eventually  # type: ignore[import-not-found]

BASE = "/api/patient/patients"
DOCS = "/api/documents"
DMP = "/api/dmp-connector"
LEFEVRE = {
    "birth_name": "LEFEVRE",
    "birth_given_names": "ELODIE MARIE",
    "sex": "F",
    "birth_date": "1979-03-12",
    "birth_place": "51215",
}
INS = "279035121518989"


async def qualified(platform: Platform, headers: dict[str, str]) -> str:
    created = await platform.client.post(BASE, json=LEFEVRE, headers=headers)
    assert created.status_code == 201, created.text
    url = f"{BASE}/{created.json()['id']}"
    assert (await platform.client.post(f"{url}/insi", headers=headers)).status_code == 200
    checked = await platform.client.post(
        f"{url}/identity-document", json={"document_type": "passeport"}, headers=headers
    )
    assert checked.json()["identity_status"] == "qualifiee", checked.text
    return str(created.json()["id"])


async def sign_consultation(platform: Platform, headers: dict[str, str], pid: str) -> str:
    """Draft, finalise and sign a consultation report through the documents API."""
    templates = await platform.client.get(f"{DOCS}/templates", headers=headers)
    template = next(t for t in templates.json() if "consultation" in t["name"].lower())
    drafted = await platform.client.post(
        f"{DOCS}/patients/{pid}/documents", json={"template_id": template["id"]}, headers=headers
    )
    assert drafted.status_code == 201, drafted.text
    document_id = str(drafted.json()["id"])
    final = await platform.client.post(
        f"{DOCS}/documents/{document_id}/finalize",
        headers={**headers, "If-Match": drafted.headers["ETag"]},
    )
    assert final.status_code == 200, final.text
    signed = await platform.client.post(
        f"{DOCS}/documents/{document_id}/sign",
        json={},
        headers={**headers, "If-Match": final.headers["ETag"]},
    )
    assert signed.status_code == 200, signed.text
    assert signed.json()["dmp_requested"] is True  # the INS is qualifiée
    return document_id


async def test_a_signed_document_of_a_qualified_patient_reaches_the_platforms_dmp(
    platform: Platform,
) -> None:
    doctor = await platform.login(MEDECIN)
    pid = await qualified(platform, doctor)

    opposed = await platform.client.put(
        f"{BASE}/{pid}/dmp-opposition", json={"opposed": True}, headers=doctor
    )
    assert opposed.status_code == 200, opposed.text
    assert opposed.json()["dmp_opposition"] is True
    document_id = await sign_consultation(platform, doctor, pid)

    async def state(*states: str) -> bool:
        r = await platform.client.get(f"{DMP}/documents/{document_id}/dmp", headers=doctor)
        return r.status_code == 200 and r.json()["state"] in states

    await eventually(lambda: state("blocked_patient_opposition"))
    lifted = await platform.client.put(
        f"{BASE}/{pid}/dmp-opposition", json={"opposed": False}, headers=doctor
    )
    assert lifted.status_code == 200
    await eventually(lambda: state("submitted"))

    repository = platform.services["dmp-connector"].app.state.dmp.endpoints.repository
    simulator = repository.rsplit("/", 1)[0]
    async with httpx.AsyncClient() as client:
        held = (await client.get(f"{simulator}/patients/{INS}/documents")).json()["documents"]
    assert len(held) == 1, held  # exactly once
    unique_id = held[0]["unique_id"]
    assert unique_id.endswith(f"^{document_id}")

    async def on_timeline() -> bool:
        r = await platform.client.get(f"{BASE}/{pid}/timeline", headers=doctor)
        kinds = [e["kind"] for e in r.json()["items"]]
        return "dmp_submitted" in kinds and "dmp_opposition" in kinds

    await eventually(on_timeline)

    # Consultation needs the structure's authorisation, recorded with the patient's consent.
    listed = await platform.client.get(f"{DMP}/patients/{pid}/dmp-documents", headers=doctor)
    assert listed.status_code == 409, listed.text
    assert "DMPAccessNotAuthorized" in listed.text
    authorised = await platform.client.put(
        f"{DMP}/patients/{pid}/dmp/authorisation",
        json={"authorisation": "autorise"},
        headers=doctor,
    )
    assert authorised.status_code == 200, authorised.text
    assert authorised.json()["structure_authorisation"] == "autorise"
    listed = await platform.client.get(f"{DMP}/patients/{pid}/dmp-documents", headers=doctor)
    assert [d["unique_id"] for d in listed.json()] == [unique_id]
    one = await platform.client.get(
        f"{DMP}/patients/{pid}/dmp-documents/{unique_id}", headers=doctor
    )
    signed_cda = await platform.client.get(f"{DOCS}/documents/{document_id}/cda", headers=doctor)
    assert signed_cda.status_code == 200
    assert one.status_code == 200 and one.content == signed_cda.content

    # The access history is for the médecin traitant DMP only.
    refused = await platform.client.get(f"{DMP}/patients/{pid}/dmp/access-history", headers=doctor)
    assert refused.status_code == 409
    declared = await platform.client.put(
        f"{DMP}/patients/{pid}/dmp/medecin-traitant", headers=doctor
    )
    assert declared.status_code == 200, declared.text
    assert declared.json()["medecin_traitant_ps_id_nat"] == "810001000016"
    history = await platform.client.get(f"{DMP}/patients/{pid}/dmp/access-history", headers=doctor)
    assert history.status_code == 200, history.text
    actions: list[dict[str, Any]] = history.json()
    assert {"ITI-41", "ITI-18", "ITI-43"} <= {a["action"] for a in actions}
