"""Documents in the embedded platform: a draft merges the patient record, the author and the
structure (identity), the latest GIR and vitals (forms), all asked with the documents service's
token; signing seals with the demo cachet; the patient timeline shows the signed document."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from documents_kit import assert_pdfa_2b  # type: ignore[import-not-found]
from forms_kit import AGGIR_GIR2  # type: ignore[import-not-found]
from kit import MEDECIN, Platform, eventually  # type: ignore[import-not-found]


async def test_a_report_merges_the_peers_facts_and_signs_into_the_timeline(
    platform: Platform, tmp_path: Path
) -> None:
    doctor = await platform.login(MEDECIN)
    created = await platform.create_patient(doctor)
    assert created.status_code == 201, created.text
    pid = created.json()["id"]
    measured = (datetime.now(UTC) - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    for form_id, answers in (
        ("aggir", {**AGGIR_GIR2, "evaluation_date": datetime.now(UTC).date().isoformat()}),
        ("surveillance", {"pulse": 72, "systolic_bp": 130, "diastolic_bp": 80,
                          "measured_at": measured}),
    ):  # fmt: skip
        done = await platform.client.post(
            f"/api/forms/patients/{pid}/submissions",
            json={"form_id": form_id, "answers": answers, "complete": True},
            headers=doctor,
        )
        assert done.status_code == 201, done.text

    templates = await platform.client.get("/api/documents/templates", headers=doctor)
    aggir = next(t for t in templates.json() if "AGGIR" in t["name"])
    drafted = await platform.client.post(
        f"/api/documents/patients/{pid}/documents",
        json={"template_id": aggir["id"]},
        headers=doctor,
    )
    assert drafted.status_code == 201, drafted.text
    values = drafted.json()["values"]
    assert values["patient.birth_name"] == "DUPONT"
    assert values["author.rpps"] == "10001000016" and values["author.family_name"] == "LEMAIRE"
    assert values["structure.finess"] == "750000002"
    assert values["forms.latest_gir"] == "2"
    assert "patient.ins" not in values  # the identity is not qualifiée

    document_id = drafted.json()["id"]
    final = await platform.client.post(
        f"/api/documents/documents/{document_id}/finalize",
        headers={**doctor, "If-Match": drafted.headers["ETag"]},
    )
    assert final.status_code == 200, final.text
    signed = await platform.client.post(
        f"/api/documents/documents/{document_id}/sign",
        json={},
        headers={**doctor, "If-Match": final.headers["ETag"]},
    )
    assert signed.status_code == 200, signed.text
    assert signed.json()["dmp_requested"] is False
    verified = await platform.client.get(
        f"/api/documents/documents/{document_id}/verification", headers=doctor
    )
    assert verified.json()["valid"] is True, verified.json()
    sealed = await platform.client.get(
        f"/api/documents/documents/{document_id}/pdf", headers=doctor
    )
    assert sealed.status_code == 200 and sealed.content.startswith(b"%PDF")
    assert_pdfa_2b(sealed.content, tmp_path, "sealed.pdf")

    async def in_timeline() -> bool:
        page = await platform.client.get(f"/api/patient/patients/{pid}/timeline", headers=doctor)
        kinds = {entry["kind"] for entry in page.json()["items"]}
        return "document_signed" in kinds

    await eventually(in_timeline)
