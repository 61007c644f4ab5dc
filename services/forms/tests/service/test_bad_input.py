"""Bad input: a clear 4xx naming the failing answer, never a 5xx, never a partial write."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from forms_kit import AGGIR_GIR2, Forms  # type: ignore[import-not-found]


@pytest.mark.parametrize(
    ("change", "fields"),
    [
        ({"TOI": {"haut": "D", "bas": "A"}}, {"answers.TOI.haut"}),
        ({"TRA": "a"}, {"answers.TRA"}),
        ({"TRA": {"S": True, "T": "yes", "C": True, "H": True}}, {"answers.TRA.T"}),
        ({"TRA": {"S": True, "T": True, "C": True}}, {"answers.TRA.H"}),
        ({"HAB": ["A", "A", "A"]}, {"answers.HAB"}),
        ({"ALI": {"se_servir": "A", "manger": "A", "boire": "A"}}, {"answers.ALI.boire"}),
        (
            {"XYZ": "A", "COH": {"communication": 1, "comportement": "A"}},
            {"answers.XYZ", "answers.COH.communication"},
        ),
    ],
)
async def test_a_wrong_aggir_answer_names_its_field(
    forms: Forms, change: dict[str, Any], fields: set[str]
) -> None:
    headers = forms.headers()
    patient_id = await forms.patient(headers)
    response = await forms.submit(headers, patient_id, "aggir", {**AGGIR_GIR2, **change})
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert {e["field"] for e in response.json()["errors"]} == fields
    assert await forms.submission_count() == 0


async def test_request_shape_errors(forms: Forms) -> None:
    headers = forms.headers()
    patient_id = await forms.patient(headers)
    url = f"/api/forms/patients/{patient_id}/submissions"
    cases: list[tuple[Any, int, str]] = [
        ({"form_id": "aggir", "answers": []}, 422, "answers"),
        ({"form_id": "aggir", "answers": {}, "extra": 1}, 422, "extra"),
        ({"answers": {}}, 422, "form_id"),
        ({"form_id": "katz", "answers": {}}, 404, "form_id"),
        ({"form_id": "aggir", "version": 7, "answers": {}}, 404, "form_id"),
    ]
    for body, status, field in cases:
        response = await forms.client.post(url, json=body, headers=headers)
        assert response.status_code == status, (body, response.text)
        assert response.json()["errors"][0]["field"] == field
    malformed = await forms.client.post(
        url, content=b'{"form_id": ', headers={**headers, "content-type": "application/json"}
    )
    assert malformed.status_code == 400
    unknown_patient = await forms.submit(headers, str(uuid.uuid4()), "aggir", AGGIR_GIR2)
    assert unknown_patient.status_code == 404
    not_a_uuid = await forms.client.get("/api/forms/submissions/nope", headers=headers)
    assert not_a_uuid.status_code == 422
    assert not_a_uuid.json()["errors"][0]["field"] == "path.submission_id"
    assert await forms.submission_count() == 0


async def test_a_refused_completion_writes_nothing(forms: Forms) -> None:
    headers = forms.headers()
    patient_id = await forms.patient(headers)
    draft = await forms.submit(headers, patient_id, "aggir", {"TRA": "A"})
    sid = draft.json()["id"]
    refused = await forms.client.post(f"/api/forms/submissions/{sid}/complete", headers=headers)
    assert refused.status_code == 422
    results = await forms.client.get(f"/api/forms/submissions/{sid}/results", headers=headers)
    assert results.status_code == 409
    stored = await forms.client.get(f"/api/forms/submissions/{sid}", headers=headers)
    assert stored.json()["status"] == "draft" and stored.json()["version"] == 1
    stale = await forms.client.put(
        f"/api/forms/submissions/{sid}/answers",
        json={"answers": AGGIR_GIR2},
        headers={**headers, "If-Match": '"7"'},
    )
    assert stale.status_code == 412  # the If-Match precondition failed
