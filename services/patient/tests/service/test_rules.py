"""Rules enforced inside the write transaction, under concurrent requests; the NIR agreeing
with the traits; what a structure administrator may read."""

from __future__ import annotations

import asyncio
from typing import Any

from kit import MEDECIN, PATIENT, TILLEULS, Platform  # type: ignore[import-not-found]

from bsante.patient.identity.nir import compute_nir_key

BASE = "/api/patient/patients"


def nir(first13: str) -> str:
    return first13 + f"{compute_nir_key(first13):02d}"


async def create(platform: Platform, headers: dict[str, str], **traits: Any) -> dict[str, Any]:
    response = await platform.client.post(BASE, json={**PATIENT, **traits}, headers=headers)
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def count(platform: Platform) -> int:
    return await platform.services["patient"].store.count("patients")


async def test_three_concurrent_identical_patients_make_one_record(platform: Platform) -> None:
    headers = await platform.login(MEDECIN)
    answers = await asyncio.gather(
        *(platform.client.post(BASE, json=PATIENT, headers=headers) for _ in range(3))
    )
    statuses = sorted(a.status_code for a in answers)
    assert statuses == [201, 409, 409], [a.text for a in answers]
    created = next(a.json() for a in answers if a.status_code == 201)
    for refused in (a for a in answers if a.status_code == 409):
        assert refused.json()["errors"][0]["patient_id"] == created["id"]
    assert await count(platform) == 1


async def test_confirmed_homonyms_are_all_created_and_all_flagged(platform: Platform) -> None:
    headers = await platform.login(MEDECIN)
    first = await create(platform, headers)
    answers = await asyncio.gather(
        *(
            platform.client.post(
                f"{BASE}?confirm_not_duplicate=true", json=PATIENT, headers=headers
            )
            for _ in range(2)
        )
    )
    assert [a.status_code for a in answers] == [201, 201], [a.text for a in answers]
    ids = [first["id"], *(a.json()["id"] for a in answers)]
    for pid in ids:
        record = (await platform.client.get(f"{BASE}/{pid}", headers=headers)).json()
        assert record["attributes"]["homonym"] is True, pid


async def test_two_concurrent_medecins_traitants_one_is_accepted(platform: Platform) -> None:
    headers = await platform.login(MEDECIN)
    patient = await create(platform, headers)
    url = f"{BASE}/{patient['id']}/correspondents"
    doctors = [("10001000016", "Dr Lemaire"), ("10001000024", "Dr Garnier")]
    answers = await asyncio.gather(
        *(
            platform.client.post(
                url,
                json={"rpps": rpps, "role": "medecin_traitant", "display_name": name},
                headers=headers,
            )
            for rpps, name in doctors
        )
    )
    assert sorted(a.status_code for a in answers) == [201, 409], [a.text for a in answers]
    listed = (await platform.client.get(url, headers=headers)).json()["items"]
    assert len(listed) == 1
    # Removing the médecin traitant frees the role for another one.
    removed = await platform.client.delete(f"{url}/{listed[0]['id']}", headers=headers)
    assert removed.status_code == 204
    other = next(d for d in doctors if d[0] != listed[0]["rpps"])
    again = await platform.client.post(
        url,
        json={"rpps": other[0], "role": "medecin_traitant", "display_name": other[1]},
        headers=headers,
    )
    assert again.status_code == 201, again.text


async def test_two_concurrent_records_with_one_nir_make_one(platform: Platform) -> None:
    headers = await platform.login(MEDECIN)
    matricule = nir("2410375056123")
    answers = await asyncio.gather(
        *(
            platform.client.post(
                f"{BASE}?confirm_not_duplicate=true",
                json={**PATIENT, "birth_name": name, "birth_date": "1941-03-02", "nir": matricule},
                headers=headers,
            )
            for name in ("DUPONT", "DUPOND")
        )
    )
    assert sorted(a.status_code for a in answers) == [201, 409], [a.text for a in answers]
    assert await count(platform) == 1


# -- the NIR agrees with the traits ---------------------------------------------------------


async def test_a_nir_that_contradicts_the_traits_is_refused_by_field(platform: Platform) -> None:
    headers = await platform.login(MEDECIN)
    cases = [
        (nir("1410375056123"), "sex"),  # a man's number for a woman
        (nir("2420375056123"), "birth_date"),  # born in 42, not 41
        (nir("2410575056123"), "birth_date"),  # born in May, not March
    ]
    for matricule, field in cases:
        refused = await platform.client.post(
            BASE, json={**PATIENT, "birth_place": "75056", "nir": matricule}, headers=headers
        )
        assert refused.status_code == 422, refused.text
        assert {e["field"] for e in refused.json()["errors"]} == {field, "nir"}, matricule
    assert await count(platform) == 0


async def test_a_fictitious_nir_month_is_not_compared(platform: Platform) -> None:
    headers = await platform.login(MEDECIN)
    created = await create(platform, headers, birth_place="75056", nir=nir("2412075056123"))
    assert created["nir"].startswith("24120")


async def test_another_birth_place_than_the_nir_needs_a_confirmation(platform: Platform) -> None:
    headers = await platform.login(MEDECIN)
    matricule = nir("2410351454123")  # born in Reims (51454)
    body = {**PATIENT, "birth_place": "51215", "nir": matricule}
    refused = await platform.client.post(BASE, json=body, headers=headers)
    assert refused.status_code == 422
    assert refused.json()["errors"][0]["field"] == "birth_place"
    confirmed = await platform.client.post(
        BASE, json={**body, "confirm_nir_birth_place": True}, headers=headers
    )
    assert confirmed.status_code == 201, confirmed.text
    abroad = await platform.client.post(
        BASE,
        json={
            **PATIENT,
            "birth_name": "MARTIN",
            "birth_place": "99134",
            "nir": nir("2410399217123"),
        },
        headers=headers,
    )
    assert abroad.status_code == 422
    assert "country 99217" in abroad.json()["errors"][0]["message"]


# -- what an administrator reads ------------------------------------------------------------


async def test_an_administrator_reads_the_record_not_the_clinical_content(
    platform: Platform,
) -> None:
    doctor = await platform.login(MEDECIN)
    admin = await platform.login(TILLEULS)
    patient = await create(platform, admin)  # admission is administrative
    url = f"{BASE}/{patient['id']}"
    note = await platform.client.post(f"{url}/postits", json={"text": "Famille"}, headers=doctor)
    assert note.status_code == 201
    for path in ("", "/history", "/correspondents", "/fhir"):
        assert (await platform.client.get(url + path, headers=admin)).status_code == 200, path
    for path in ("/postits", "/timeline"):
        assert (await platform.client.get(url + path, headers=admin)).status_code == 403, path
        assert (await platform.client.get(url + path, headers=doctor)).status_code == 200, path
    written = await platform.client.post(f"{url}/postits", json={"text": "x"}, headers=admin)
    assert written.status_code == 403
