"""Rules of the answers (no future evaluation, no silent unit, no silently dropped empty
string), the DLU's identity block, and one correction per submission under concurrency."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime, timedelta
from typing import Any

from forms_kit import AGGIR_GIR2, AGGIR_GIR6, Forms  # type: ignore[import-not-found]

MMS_ANSWERS: dict[str, Any] = {
    "orientation_time": 4,
    "orientation_space": 5,
    "registration": 3,
    "attention_calculation": 2,
    "recall": 1,
    "naming": 2,
    "repetition": 1,
    "three_stage_command": 3,
    "reading": 1,
    "writing": 0,
    "copying": 0,
}


def iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


async def test_evaluations_cannot_be_dated_in_the_future(forms: Forms) -> None:
    headers = forms.headers()
    patient_id = await forms.patient(headers)
    next_week = (date.today() + timedelta(days=7)).isoformat()
    cases = [
        ("mms", {**MMS_ANSWERS, "evaluation_date": next_week}, "answers.evaluation_date"),
        ("aggir", {**AGGIR_GIR2, "evaluation_date": next_week}, "answers.evaluation_date"),
        (
            "surveillance",
            {"measured_at": iso(datetime.now(UTC) + timedelta(hours=2)), "pulse": 70},
            "answers.measured_at",
        ),
    ]
    for form_id, answers, field in cases:
        refused = await forms.submit(headers, patient_id, form_id, answers, complete=True)
        assert refused.status_code == 422, (form_id, refused.text)
        assert [e["field"] for e in refused.json()["errors"]] == [field], form_id
        # A draft is refused too: the date is wrong whatever the state.
        draft = await forms.submit(headers, patient_id, form_id, answers)
        assert draft.status_code == 422, form_id
    # A small clock skew is tolerated, and today is fine.
    skewed = await forms.submit(
        headers,
        patient_id,
        "surveillance",
        {"measured_at": iso(datetime.now(UTC) + timedelta(minutes=2)), "pulse": 70},
        complete=True,
    )
    assert skewed.status_code == 201, skewed.text
    today = {**AGGIR_GIR2, "evaluation_date": date.today().isoformat()}
    dated = await forms.submit(headers, patient_id, "aggir", today, complete=True)
    assert (
        dated.status_code == 201
        and dated.json()["results"]["evaluated_on"] == today["evaluation_date"]
    )
    assert await forms.submission_count() == 2


async def test_a_glycaemia_needs_its_unit(forms: Forms) -> None:
    headers = forms.headers(roles=["infirmier"])
    patient_id = await forms.patient(headers)
    round_ = {"measured_at": iso(datetime.now(UTC)), "glycaemia": 1.2}
    refused = await forms.submit(headers, patient_id, "surveillance", round_, complete=True)
    assert refused.status_code == 422
    assert [e["field"] for e in refused.json()["errors"]] == ["answers.glycaemia_unit"]
    given = await forms.submit(
        headers, patient_id, "surveillance", {**round_, "glycaemia_unit": "g/L"}, complete=True
    )
    assert given.status_code == 201 and given.json()["results"]["values"]["glycaemia"] == 1.2


async def test_an_empty_string_is_refused_not_dropped(forms: Forms) -> None:
    headers = forms.headers()
    patient_id = await forms.patient(headers)
    refused = await forms.submit(
        headers,
        patient_id,
        "transmission",
        {
            "target": "  ",
            "data": "Chute",
            "actions": "Relevée",
            "occurred_at": iso(datetime.now(UTC)),
        },
    )
    assert refused.status_code == 422
    errors = refused.json()["errors"]
    assert [(e["field"], e["type"]) for e in errors] == [("answers.target", "string_too_short")]
    assert await forms.submission_count() == 0


async def test_the_dlu_carries_the_record_and_refuses_another_identity(forms: Forms) -> None:
    headers = forms.headers()
    patient_id = await forms.patient(
        headers,
        birth_name="MARTIN",
        birth_date="1935-07-14",
        phone="01 23 45 67 89",
        address="3 rue des Lilas, 75011 Paris",
        attending_physician="Dr Claire Lemaire",
    )
    prefill = await forms.client.get(
        f"/api/forms/patients/{patient_id}/dlu/prefill", headers=headers
    )
    answers = prefill.json()["answers"]
    assert answers["patient"]["phone"] == "01 23 45 67 89"
    assert answers["patient"]["address"] == "3 rue des Lilas, 75011 Paris"
    assert answers["attending_physician"] == {"name": "Dr Claire Lemaire"}
    filled = {
        **answers,
        "contact_24h": "01 00 00 00 00",
        "active_conditions": "Insuffisance cardiaque",
        "allergies": "aucune connue",
        "long_term_treatments": "Furosémide",
    }
    other = {**filled, "patient": {**filled["patient"], "birth_name": "MARTINEZ", "sex": "M"}}
    refused = await forms.submit(headers, patient_id, "dlu", other, complete=True)
    assert refused.status_code == 422
    assert {e["field"] for e in refused.json()["errors"]} == {
        "answers.patient.birth_name",
        "answers.patient.sex",
    }
    # Case and accents are not a different identity.
    same = {**filled, "patient": {**filled["patient"], "birth_name": "Martin"}}
    done = await forms.submit(headers, patient_id, "dlu", same, complete=True)
    assert done.status_code == 201, done.text


async def test_two_concurrent_corrections_one_completes(forms: Forms) -> None:
    headers = forms.headers()
    patient_id = await forms.patient(headers)
    first = (await forms.submit(headers, patient_id, "aggir", AGGIR_GIR2, complete=True)).json()
    url = f"/api/forms/submissions/{first['id']}/corrections"
    answers = await asyncio.gather(
        *(
            forms.client.post(url, json={"answers": AGGIR_GIR6, "complete": True}, headers=headers)
            for _ in range(3)
        )
    )
    assert sorted(a.status_code for a in answers) == [201, 409, 409], [a.text for a in answers]
    listed = await forms.client.get(
        f"/api/forms/patients/{patient_id}/submissions?status=completed", headers=headers
    )
    assert len(listed.json()["items"]) == 2  # the original and one correction
