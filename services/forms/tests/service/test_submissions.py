"""Forms through the gateway: definitions, draft -> completion, immutability, corrections,
scores (AGGIR, MMS), the RCP quorum, the DLU prefill, tenancy and the access audit."""

from __future__ import annotations

from typing import Any

from forms_kit import AGGIR_GIR2, AGGIR_GIR6, Forms  # type: ignore[import-not-found]
from kit import eventually  # type: ignore[import-not-found]

from bsante.contracts.topics import AUDIT, FORMS

STANDARD_FORMS = {
    "aggir",
    "mms",
    "rcp",
    "recueil",
    "habitudes_vie",
    "surveillance",
    "transmission",
    "dlu",
}


async def test_lists_the_eight_standard_definitions(forms: Forms) -> None:
    headers = forms.headers(roles=["aide_soignant"])
    response = await forms.client.get("/api/forms/definitions", headers=headers)
    assert response.status_code == 200
    listed = {d["id"]: d for d in response.json()}
    assert set(listed) == STANDARD_FORMS
    toi = next(f for f in listed["aggir"]["fields"] if f["id"] == "TOI")
    assert [f["id"] for f in toi["fields"]] == ["haut", "bas"]
    # Every accepted value is listed: the codes, and the keys of the adverb object.
    haut = toi["fields"][0]
    assert [c["code"] for c in haut["choices"]] == ["A", "B", "C"]
    assert [a["code"] for a in haut["adverbs"]] == ["S", "T", "C", "H"]
    # v2 dates the evaluation (never in the future); v1 stays readable.
    assert listed["aggir"]["version"] == 2 and listed["aggir"]["computes"]
    dated = next(f for f in listed["aggir"]["fields"] if f["id"] == "evaluation_date")
    assert dated["past"] is True
    v1 = await forms.client.get("/api/forms/definitions/aggir?version=1", headers=headers)
    assert "evaluation_date" not in {f["id"] for f in v1.json()["fields"]}
    assert listed["dlu"]["prefilled"]

    one = await forms.client.get("/api/forms/definitions/mms?version=1", headers=headers)
    assert one.status_code == 200 and one.json()["id"] == "mms"
    unknown = await forms.client.get("/api/forms/definitions/katz", headers=headers)
    assert unknown.status_code == 404
    assert unknown.headers["content-type"] == "application/problem+json"


async def test_aggir_draft_then_completion_gives_the_gir_and_raises_form_completed(
    forms: Forms,
) -> None:
    headers = forms.headers()
    patient_id = await forms.patient(headers)
    partial = {k: AGGIR_GIR2[k] for k in ("COH", "ORI", "TOI")}
    created = await forms.submit(headers, patient_id, "aggir", partial)
    assert created.status_code == 201, created.text
    draft = created.json()
    assert draft["status"] == "draft" and draft["results"] is None and draft["revision"] == 1

    # A draft cannot be completed while required variables are missing.
    early = await forms.client.post(
        f"/api/forms/submissions/{draft['id']}/complete", headers=headers
    )
    assert early.status_code == 422
    assert {"answers.HAB", "answers.TRA"} <= {e["field"] for e in early.json()["errors"]}

    revised = await forms.client.put(
        f"/api/forms/submissions/{draft['id']}/answers",
        json={"answers": AGGIR_GIR2},
        headers={**headers, "If-Match": created.headers["ETag"]},
    )
    assert revised.status_code == 200, revised.text
    done = await forms.client.post(
        f"/api/forms/submissions/{draft['id']}/complete",
        headers={**headers, "If-Match": revised.headers["ETag"]},
    )
    assert done.status_code == 200, done.text
    body = done.json()
    assert body["status"] == "completed"
    assert body["completed_by"] == "user-dr-house"
    assert body["results"]["gir"] == 2
    assert body["results"]["rang"] == 3
    assert body["results"]["codes"] == "CCBBBBBB"

    results = await forms.client.get(
        f"/api/forms/submissions/{draft['id']}/results", headers=headers
    )
    assert results.status_code == 200 and results.json()["results"]["gir"] == 2

    async def published() -> bool:
        return bool(await forms.events(FORMS))

    await eventually(published)
    (event,) = await forms.events(FORMS)
    assert event.event_type == "FormCompleted"
    assert event.structure_id == "demo-ehpad" and event.subject_id == patient_id
    payload = event.payload
    assert payload["submission_id"] == draft["id"]
    assert payload["form_id"] == "aggir" and payload["form_version"] == 2
    assert payload["completed_by"] == "user-dr-house"
    assert payload["corrects"] is None
    assert payload["results"]["gir"] == 2 and payload["results"]["rang"] == 3
    assert payload["data"]["TOI"] == {"haut": "B", "bas": "B"}


async def test_adverbs_are_accepted_and_complete_at_once(forms: Forms) -> None:
    headers = forms.headers(roles=["aide_soignant"])
    patient_id = await forms.patient(forms.headers())
    response = await forms.submit(headers, patient_id, "aggir", AGGIR_GIR6, complete=True)
    assert response.status_code == 201, response.text
    assert response.json()["results"]["gir"] == 6
    assert response.json()["results"]["group"] is None


async def test_a_completed_submission_cannot_change(forms: Forms) -> None:
    headers = forms.headers()
    patient_id = await forms.patient(headers)
    done = await forms.submit(headers, patient_id, "aggir", AGGIR_GIR2, complete=True)
    sid = done.json()["id"]

    changed = await forms.client.put(
        f"/api/forms/submissions/{sid}/answers", json={"answers": AGGIR_GIR6}, headers=headers
    )
    assert changed.status_code == 409
    assert changed.headers["content-type"] == "application/problem+json"
    again = await forms.client.post(f"/api/forms/submissions/{sid}/complete", headers=headers)
    assert again.status_code == 409

    stored = await forms.client.get(f"/api/forms/submissions/{sid}", headers=headers)
    assert stored.json()["answers"]["TOI"] == {"haut": "B", "bas": "B"}
    assert stored.json()["results"]["gir"] == 2


async def test_a_correction_is_a_new_version_referencing_the_old(forms: Forms) -> None:
    headers = forms.headers()
    patient_id = await forms.patient(headers)
    first = (await forms.submit(headers, patient_id, "aggir", AGGIR_GIR2, complete=True)).json()

    draft = await forms.client.post(
        f"/api/forms/submissions/{first['id']}/corrections", json={}, headers=headers
    )
    assert draft.status_code == 201, draft.text
    correction = draft.json()
    assert correction["status"] == "draft"
    assert correction["corrects"] == first["id"] and correction["revision"] == 2
    assert correction["answers"] == first["answers"]  # starts from the corrected answers

    revised = await forms.client.put(
        f"/api/forms/submissions/{correction['id']}/answers",
        json={"answers": AGGIR_GIR6},
        headers=headers,
    )
    assert revised.status_code == 200
    done = await forms.client.post(
        f"/api/forms/submissions/{correction['id']}/complete", headers=headers
    )
    assert done.status_code == 200 and done.json()["results"]["gir"] == 6

    original = (
        await forms.client.get(f"/api/forms/submissions/{first['id']}", headers=headers)
    ).json()
    assert original["results"]["gir"] == 2  # untouched
    assert original["superseded_by"] == correction["id"]

    listed = await forms.client.get(
        f"/api/forms/patients/{patient_id}/submissions?form_id=aggir", headers=headers
    )
    items = {i["id"]: i for i in listed.json()["items"]}
    assert items[first["id"]]["superseded_by"] == correction["id"]
    assert items[correction["id"]]["superseded_by"] is None

    # The chain is linear: the corrected version cannot be corrected a second time.
    twice = await forms.client.post(
        f"/api/forms/submissions/{first['id']}/corrections", json={}, headers=headers
    )
    assert twice.status_code == 409

    async def both_published() -> bool:
        return len(await forms.events(FORMS)) == 2

    await eventually(both_published)
    events = await forms.events(FORMS)
    assert events[1].payload["corrects"] == first["id"]
    assert events[1].payload["results"]["gir"] == 6


async def test_two_corrections_of_one_submission_cannot_both_complete(forms: Forms) -> None:
    headers = forms.headers()
    patient_id = await forms.patient(headers)
    first = (await forms.submit(headers, patient_id, "aggir", AGGIR_GIR2, complete=True)).json()
    url = f"/api/forms/submissions/{first['id']}/corrections"
    one = (await forms.client.post(url, json={}, headers=headers)).json()
    two = (await forms.client.post(url, json={}, headers=headers)).json()
    ok = await forms.client.post(f"/api/forms/submissions/{one['id']}/complete", headers=headers)
    assert ok.status_code == 200
    late = await forms.client.post(f"/api/forms/submissions/{two['id']}/complete", headers=headers)
    assert late.status_code == 409
    still = await forms.client.get(f"/api/forms/submissions/{two['id']}", headers=headers)
    assert still.json()["status"] == "draft"  # nothing of the refused completion was written


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


async def test_mms_total_and_interpretation_use_the_patients_age(forms: Forms) -> None:
    headers = forms.headers()
    # Born 1941-03-02: 84 on 2026-01-15, in the 80-84 band.
    patient_id = await forms.patient(headers, birth_date="1941-03-02")
    answers = {**MMS_ANSWERS, "education": "primary", "evaluation_date": "2026-01-15"}
    response = await forms.submit(headers, patient_id, "mms", answers, complete=True)
    assert response.status_code == 201, response.text
    results = response.json()["results"]
    assert results["total"] == 22 and results["language"] == 7 and results["age"] == 84
    interpretation = results["interpretation"]
    assert interpretation["cutoff"] == 22 and interpretation["pathological"] is False

    lower = {**answers, "copying": 0, "writing": 0, "recall": 0}
    worse = await forms.submit(headers, patient_id, "mms", lower, complete=True)
    assert worse.json()["results"]["interpretation"]["pathological"] is True
    assert worse.json()["results"]["interpretation"]["severity"] == "léger"


async def test_mms_points_outside_the_item_name_the_item(forms: Forms) -> None:
    headers = forms.headers()
    patient_id = await forms.patient(headers)
    response = await forms.submit(headers, patient_id, "mms", {**MMS_ANSWERS, "recall": 4})
    assert response.status_code == 422
    assert [e["field"] for e in response.json()["errors"]] == ["answers.recall"]


def rcp_answers(specialties: list[str]) -> dict[str, Any]:
    participants: list[dict[str, Any]] = [
        {"name": f"Dr {i}", "profession": "medecin", "specialty": s}
        for i, s in enumerate(specialties)
    ]
    participants.append({"name": "IDE Martin", "profession": "infirmier"})
    return {
        "meeting_date": "2026-02-10",
        "participants": participants,
        "question": "Prise en charge de la dénutrition ?",
        "proposal": "Compléments oraux, réévaluation à un mois",
        "decision": "retenue",
    }


async def test_rcp_needs_three_physicians_of_different_specialties(forms: Forms) -> None:
    headers = forms.headers()
    patient_id = await forms.patient(headers)
    # Two geriatricians (spelled differently) and a nurse: two specialties, no quorum.
    short = rcp_answers(["Gériatrie", "geriatrie ", "Oncologie"])
    refused = await forms.submit(headers, patient_id, "rcp", short, complete=True)
    assert refused.status_code == 422
    (error,) = refused.json()["errors"]
    assert error["field"] == "answers.participants" and error["type"] == "quorum"
    assert await forms.submission_count() == 0

    full = rcp_answers(["Gériatrie", "Oncologie", "Radiothérapie"])
    accepted = await forms.submit(headers, patient_id, "rcp", full, complete=True)
    assert accepted.status_code == 201, accepted.text
    results = accepted.json()["results"]
    assert results["quorum_reached"] is True and results["participants"] == 4
    assert results["specialties"] == ["Gériatrie", "Oncologie", "Radiothérapie"]

    no_specialty = rcp_answers(["Gériatrie", "Oncologie", "Radiothérapie"])
    no_specialty["participants"][1].pop("specialty")
    missing = await forms.submit(headers, patient_id, "rcp", no_specialty, complete=True)
    assert missing.status_code == 422
    assert missing.json()["errors"][0]["field"] == "answers.participants.1.specialty"


async def test_admission_data_and_life_habits(forms: Forms) -> None:
    headers = forms.headers(roles=["infirmier"])
    patient_id = await forms.patient(headers)
    recueil = {
        "admission_date": "2026-01-05",
        "provenance": "hopital",
        "reason": "Retour à domicile impossible après une chute",
        "mobility": "aide_technique",
        "weight_kg": 58.5,
        "height_cm": 160,
        "sensory": {"glasses": True, "hearing_aid": False},
        "needs": {"dormir": "Réveils nocturnes", "communiquer": "Malentendante à gauche"},
    }
    done = await forms.submit(headers, patient_id, "recueil", recueil, complete=True)
    assert done.status_code == 201, done.text
    assert done.json()["results"] == {"bmi": 22.9, "needs_documented": 2}

    habits = {
        "sleep": {"wake_time": "07:30", "bed_time": "21:45", "nap": True},
        "meals": {"breakfast_place": "chambre", "dislikes": "Poisson"},
        "hygiene": {"preference": "douche", "moment": "soir"},
        "hobbies": "Mots croisés, jardinage",
    }
    saved = await forms.submit(headers, patient_id, "habitudes_vie", habits, complete=True)
    assert saved.status_code == 201, saved.text
    wrong_time = await forms.submit(
        headers, patient_id, "habitudes_vie", {"sleep": {"wake_time": "7h30"}}
    )
    assert wrong_time.status_code == 422
    assert wrong_time.json()["errors"][0]["field"] == "answers.sleep.wake_time"


async def test_dlu_is_prefilled_from_the_patient_and_the_latest_aggir(forms: Forms) -> None:
    headers = forms.headers()
    patient_id = await forms.patient(headers, birth_name="MARTIN", birth_date="1935-07-14")
    empty = await forms.client.get(f"/api/forms/patients/{patient_id}/dlu/prefill", headers=headers)
    assert empty.status_code == 200
    assert "autonomy" not in empty.json()["answers"]

    old = (await forms.submit(headers, patient_id, "aggir", AGGIR_GIR6, complete=True)).json()
    latest = (await forms.submit(headers, patient_id, "aggir", AGGIR_GIR2, complete=True)).json()
    assert old["results"]["gir"] == 6

    created = await forms.submit(
        headers, patient_id, "dlu", {"contact_24h": "01 23 45 67 89", "patient": {"phone": "06"}}
    )
    assert created.status_code == 201, created.text
    answers = created.json()["answers"]
    assert answers["patient"] == {
        "birth_name": "MARTIN",
        "first_name": "Marie",
        "sex": "F",
        "birth_date": "1935-07-14",
        "phone": "06",
    }
    assert answers["autonomy"]["gir"] == 2
    assert answers["autonomy"]["aggir_submission_id"] == latest["id"]
    assert answers["annexes"] == ["DLU_009"]
    assert answers["contact_24h"] == "01 23 45 67 89"

    complete = await forms.client.post(
        f"/api/forms/submissions/{created.json()['id']}/complete", headers=headers
    )
    assert complete.status_code == 422
    missing = {e["field"] for e in complete.json()["errors"]}
    assert missing == {
        "answers.attending_physician",
        "answers.active_conditions",
        "answers.allergies",
        "answers.long_term_treatments",
    }

    filled = {
        **answers,
        "attending_physician": {"name": "Dr Durand", "phone": "01 98 76 54 32"},
        "trusted_person": {"name": "Paul MARTIN", "relationship": "Fils", "phone": "06 11"},
        "active_conditions": "Insuffisance cardiaque",
        "allergies": "Pénicilline",
        "long_term_treatments": "Furosémide 40 mg",
        "observations": {"falls": True, "oriented": True},
    }
    await forms.client.put(
        f"/api/forms/submissions/{created.json()['id']}/answers",
        json={"answers": filled},
        headers=headers,
    )
    done = await forms.client.post(
        f"/api/forms/submissions/{created.json()['id']}/complete", headers=headers
    )
    assert done.status_code == 200, done.text
    assert done.json()["results"]["gir"] == 2
    assert done.json()["results"]["observed"] == ["247663003", "161898004"]

    async def dlu_published() -> bool:
        return any(e.payload["form_id"] == "dlu" for e in await forms.events(FORMS))

    await eventually(dlu_published)
    event = next(e for e in await forms.events(FORMS) if e.payload["form_id"] == "dlu")
    # Identity traits and relatives' contacts stay in the forms service.
    assert "patient" not in event.payload["data"] and "trusted_person" not in event.payload["data"]
    assert event.payload["data"]["allergies"] == "Pénicilline"
    assert "MARTIN" not in event.to_json().decode()


async def test_another_structures_data_answers_404(forms: Forms) -> None:
    tilleuls = forms.headers()
    val = forms.headers(structure="demo-ssiad", user="user-dr-val")
    patient_id = await forms.patient(tilleuls)
    sid = (await forms.submit(tilleuls, patient_id, "aggir", AGGIR_GIR2, complete=True)).json()[
        "id"
    ]
    for method, url in [
        ("GET", f"/api/forms/submissions/{sid}"),
        ("GET", f"/api/forms/submissions/{sid}/results"),
        ("POST", f"/api/forms/submissions/{sid}/complete"),
        ("GET", f"/api/forms/patients/{patient_id}/submissions"),
        ("GET", f"/api/forms/patients/{patient_id}/transmissions"),
        ("GET", f"/api/forms/patients/{patient_id}/dlu/prefill"),
        ("GET", f"/api/forms/patients/{patient_id}/surveillance/chart.svg"),
    ]:
        response = await forms.client.request(method, url, headers=val)
        assert response.status_code == 404, (url, response.text)
    corrected = await forms.client.post(
        f"/api/forms/submissions/{sid}/corrections", json={}, headers=val
    )
    assert corrected.status_code == 404
    created = await forms.submit(val, patient_id, "aggir", AGGIR_GIR2)
    assert created.status_code == 404
    assert await forms.submission_count() == 1


async def test_roles_are_checked(forms: Forms) -> None:
    patient_id = await forms.patient(forms.headers())
    secretary = forms.headers(roles=["secretaire"])
    refused = await forms.submit(secretary, patient_id, "aggir", AGGIR_GIR2)
    assert refused.status_code == 403
    # Form answers are clinical content: neither a secretary nor an administrator reads them;
    # both may read the definitions.
    for role in ("secretaire", "structure_admin"):
        other = forms.headers(roles=[role])
        for path in ("submissions", "transmissions", "surveillance/readings", "dlu/prefill"):
            listed = await forms.client.get(
                f"/api/forms/patients/{patient_id}/{path}", headers=other
            )
            assert listed.status_code == 403, (role, path)
        assert (await forms.client.get("/api/forms/definitions", headers=other)).status_code == 200
    carer = forms.headers(roles=["aide_soignant"])
    listed = await forms.client.get(f"/api/forms/patients/{patient_id}/submissions", headers=carer)
    assert listed.status_code == 200
    ops = forms.headers(roles=["ops"])
    assert (await forms.client.get("/api/forms/definitions", headers=ops)).status_code == 403
    anonymous = await forms.client.get("/api/forms/definitions")
    assert anonymous.status_code == 401


async def test_every_access_to_form_data_is_audited(forms: Forms) -> None:
    headers = forms.headers()
    patient_id = await forms.patient(headers)
    created = await forms.submit(headers, patient_id, "aggir", AGGIR_GIR2)
    assert created.status_code == 201, created.text
    sid = created.json()["id"]
    # Each access must have succeeded for its audit record to exist: say which one did not.
    for response in (
        await forms.client.put(
            f"/api/forms/submissions/{sid}/answers", json={"answers": AGGIR_GIR6}, headers=headers
        ),
        await forms.client.post(f"/api/forms/submissions/{sid}/complete", headers=headers),
        await forms.client.get(f"/api/forms/submissions/{sid}", headers=headers),
        await forms.client.get(f"/api/forms/patients/{patient_id}/submissions", headers=headers),
    ):
        assert response.status_code == 200, (response.request.url.path, response.text)

    def form_records(events: list[Any]) -> list[tuple[str, str]]:
        # Delivery is at least once: a relay retry may publish a record twice (same event id).
        unique = {str(e.event_id): e for e in events if e.payload["resource"] == "form"}
        return [(e.payload["action"], e.payload["patient_id"]) for e in unique.values()]

    async def audited() -> bool:
        return len(form_records(await forms.events(AUDIT))) == 5

    await eventually(audited)
    events = await forms.events(AUDIT)
    # Each access is its own unit of work: compare the records as a multiset, not their order.
    assert sorted(a for a, _ in form_records(events)) == [
        "create",
        "read",
        "read",
        "update",
        "update",
    ]
    assert {p for _, p in form_records(events)} == {patient_id}
    record = next(e for e in events if e.payload["resource"] == "form")
    assert record.payload["user_id"] == "user-dr-house"
    assert record.payload["acting_structure"] == "demo-ehpad"
    assert record.payload["service"] == "forms"
    assert record.payload["client_address"] == "203.0.113.7"
