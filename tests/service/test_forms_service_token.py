"""forms asks the patient service with its own service token; the patient service audits the
read as forms', on behalf of the user."""

from __future__ import annotations

from kit import Platform, eventually  # type: ignore[import-not-found]

from bsante.forms.patients import HttpPatientDirectory


async def test_forms_reads_patients_with_its_service_token_audited_on_behalf_of_the_user(
    platform: Platform,
) -> None:
    doctor = await platform.login(("medecin@tilleuls.demo", "Medecin-Tilleuls-2026"))
    created = await platform.create_patient(doctor)
    patient_id = created.json()["id"]
    directory = platform.services["forms"].app.state.patients
    assert isinstance(directory, HttpPatientDirectory)
    for _ in range(3):
        listed = await platform.client.get(
            f"/api/forms/patients/{patient_id}/submissions", headers=doctor
        )
        assert listed.status_code == 200, listed.text
    # One token for the three reads: cached, not asked per call.
    assert directory.client.tokens.fetches == 1
    admin = await platform.login()

    async def audited() -> list[dict[str, str]]:
        history = await platform.client.get(
            f"/api/identity/audit/patients/{patient_id}", headers=admin, params={"limit": 50}
        )
        return [i for i in history.json().get("items", []) if i["service"] == "patient"]

    async def three_reads() -> bool:
        return len([i for i in await audited() if i["service_client"] == "forms"]) == 3

    await eventually(three_reads)
    via_forms = [i for i in await audited() if i["service_client"] == "forms"]
    assert {i["user_id"] for i in via_forms} == {"user-medecin-demo-ehpad"}
    assert {i["acting_structure"] for i in via_forms} == {"demo-ehpad"}
    assert {i["action"] for i in via_forms} == {"read"}
    # The end user's address and request, not forms': the hop keeps them.
    assert {i["client_address"] for i in via_forms} == {"203.0.113.7"}


async def test_another_structures_patient_is_unknown_to_forms(
    platform: Platform,
) -> None:
    created = await platform.create_patient(await platform.login())
    # A médecin acting for another structure: forms' service read answers 404 there.
    elsewhere = platform.as_role("medecin", "demo-ssiad")
    hidden = await platform.client.get(
        f"/api/forms/patients/{created.json()['id']}/submissions", headers=elsewhere
    )
    assert hidden.status_code == 404
