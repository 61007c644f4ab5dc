"""Forms and patient together: the DLU prefill reads the real patient record (its phones,
address and médecin traitant) through the PatientDirectory port."""

from __future__ import annotations

from kit import MEDECIN, PATIENT, Platform  # type: ignore[import-not-found]


async def test_the_dlu_prefill_comes_from_the_patient_record(platform: Platform) -> None:
    doctor = await platform.login(MEDECIN)
    created = await platform.create_patient(
        doctor,
        contact={
            "phone": "01 23 45 67 89",
            "address": {"lines": ["3 rue des Lilas"], "postal_code": "75011", "city": "Paris"},
        },
    )
    assert created.status_code == 201, created.text
    pid = created.json()["id"]
    attached = await platform.client.post(
        f"/api/patient/patients/{pid}/correspondents",
        json={"rpps": "10001000016", "role": "medecin_traitant", "display_name": "Dr Lemaire"},
        headers=doctor,
    )
    assert attached.status_code == 201, attached.text
    record = await platform.client.get(f"/api/patient/patients/{pid}", headers=doctor)
    assert record.json()["medecin_traitant"] == {
        "rpps": "10001000016",
        "display_name": "Dr Lemaire",
    }

    prefill = await platform.client.get(f"/api/forms/patients/{pid}/dlu/prefill", headers=doctor)
    assert prefill.status_code == 200, prefill.text
    answers = prefill.json()["answers"]
    assert answers["patient"] == {
        "birth_name": PATIENT["birth_name"],
        "first_name": PATIENT["birth_given_names"],
        "sex": PATIENT["sex"],
        "birth_date": PATIENT["birth_date"],
        "address": "3 rue des Lilas, 75011 Paris",
        "phone": "01 23 45 67 89",
    }
    assert answers["attending_physician"] == {"name": "Dr Lemaire"}
    elsewhere = platform.as_role("medecin", "demo-ssiad")
    hidden = await platform.client.get(f"/api/forms/patients/{pid}/dlu/prefill", headers=elsewhere)
    assert hidden.status_code == 404
