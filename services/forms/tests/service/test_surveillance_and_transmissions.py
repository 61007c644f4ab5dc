"""Surveillance rounds and their chart (SVG, PNG); targeted transmissions (DAR) in order."""

from __future__ import annotations

import io
import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta

from forms_kit import Forms  # type: ignore[import-not-found]
from PIL import Image


def iso(at: datetime) -> str:
    return at.strftime("%Y-%m-%dT%H:%M:%SZ")


async def test_surveillance_rounds_make_a_chart_in_svg_and_png(forms: Forms) -> None:
    headers = forms.headers(roles=["infirmier"])
    patient_id = await forms.patient(headers)
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(days=2)
    for i in range(12):
        response = await forms.submit(
            headers,
            patient_id,
            "surveillance",
            {
                "measured_at": iso(start + timedelta(hours=4 * i)),
                "pulse": 70 + i,
                "systolic_bp": 130 + i,
                "diastolic_bp": 80,
                "temperature": 37.1,
                "glycaemia": 6.1,
                "glycaemia_unit": "mmol/L",
            },
            complete=True,
        )
        assert response.status_code == 201, response.text
    results = response.json()["results"]
    assert results["values"]["glycaemia"] == 1.099  # kept in g/L
    assert results["bands"]["pulse"] == "high" or results["bands"]["pulse"] == "normal"

    readings = await forms.client.get(
        f"/api/forms/patients/{patient_id}/surveillance/readings", headers=headers
    )
    assert readings.status_code == 200
    items = readings.json()["items"]
    assert len(items) == 12 and items[0]["values"]["pulse"] == 70

    svg = await forms.client.get(
        f"/api/forms/patients/{patient_id}/surveillance/chart.svg", headers=headers
    )
    assert svg.status_code == 200, svg.text
    assert svg.headers["content-type"] == "image/svg+xml"
    root = ET.fromstring(svg.content)
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    assert "Pression artérielle" in svg.text and "Pouls" in svg.text

    png = await forms.client.get(
        f"/api/forms/patients/{patient_id}/surveillance/chart.png", headers=headers
    )
    assert png.status_code == 200
    assert png.headers["content-type"] == "image/png"
    image = Image.open(io.BytesIO(png.content))
    assert image.format == "PNG" and image.size[0] == 1200

    # A period without rounds answers an empty chart, as the readings answer an empty list;
    # plain dates are accepted for the period.
    empty = await forms.client.get(
        f"/api/forms/patients/{patient_id}/surveillance/chart.svg",
        params={"from": "2020-01-01", "to": "2020-01-31"},
        headers=headers,
    )
    assert empty.status_code == 200 and empty.headers["content-type"] == "image/svg+xml"
    assert "Aucune mesure" in empty.text
    none = await forms.client.get(
        f"/api/forms/patients/{patient_id}/surveillance/readings",
        params={"from": "2020-01-01", "to": "2020-01-31"},
        headers=headers,
    )
    assert none.status_code == 200 and none.json()["items"] == []
    assert none.json()["end"].startswith("2020-02-01T00:00:00")
    backwards = await forms.client.get(
        f"/api/forms/patients/{patient_id}/surveillance/chart.png",
        params={"from": "2026-01-31T00:00:00Z", "to": "2026-01-01T00:00:00Z"},
        headers=headers,
    )
    assert backwards.status_code == 422
    assert backwards.json()["errors"][0]["field"] == "from"


async def test_implausible_vital_signs_are_refused_field_by_field(forms: Forms) -> None:
    headers = forms.headers(roles=["infirmier"])
    patient_id = await forms.patient(headers)
    now = iso(datetime.now(UTC))
    cases = [
        ({"measured_at": now, "pulse": 700}, {"answers.pulse"}),
        ({"measured_at": now, "temperature": 98.6}, {"answers.temperature"}),
        ({"measured_at": now, "systolic_bp": 80, "diastolic_bp": 90}, {"answers.diastolic_bp"}),
        ({"measured_at": now, "systolic_bp": 120}, {"answers.diastolic_bp"}),
        ({"measured_at": now, "glycaemia": 80, "glycaemia_unit": "mmol/L"}, {"answers.glycaemia"}),
        ({"measured_at": "2026-03-01T08:00:00", "pulse": 80}, {"answers.measured_at"}),
        ({"measured_at": "2999-03-01T08:00:00Z", "pulse": 80}, {"answers.measured_at"}),
        ({"measured_at": now}, {"answers"}),
    ]
    for answers, fields in cases:
        response = await forms.submit(headers, patient_id, "surveillance", answers, complete=True)
        assert response.status_code == 422, (answers, response.text)
        assert {e["field"] for e in response.json()["errors"]} == fields, answers
    assert await forms.submission_count() == 0


async def test_transmissions_are_chronological_and_filtered_by_target(forms: Forms) -> None:
    headers = forms.headers(roles=["aide_soignant"])
    patient_id = await forms.patient(forms.headers())
    base = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=10)
    entries = [
        (3, "Douleur", "EVA 6 au lever", "Paracétamol selon prescription", None),
        (1, "Chute", "Retrouvée au sol à 6h", "Relevée, constantes prises", "Pas de lésion"),
        (5, "Douleur abdominale", "Se plaint du ventre", "Avis IDE", None),
        (2, "Alimentation", "Refus du petit-déjeuner", "Collation proposée", "Mange à 10h"),
    ]
    ids = {}
    for hours, target, data, actions, result in entries:
        answers = {
            "target": target,
            "data": data,
            "actions": actions,
            "occurred_at": iso(base + timedelta(hours=hours)),
        }
        if result:
            answers["results"] = result
        response = await forms.submit(headers, patient_id, "transmission", answers, complete=True)
        assert response.status_code == 201, response.text
        ids[target] = response.json()["id"]

    listed = await forms.client.get(
        f"/api/forms/patients/{patient_id}/transmissions", headers=headers
    )
    assert listed.status_code == 200
    targets = [t["target"] for t in listed.json()["items"]]
    assert targets == ["Chute", "Alimentation", "Douleur", "Douleur abdominale"]

    pain = await forms.client.get(
        f"/api/forms/patients/{patient_id}/transmissions",
        params={"target": "DOULEUR"},
        headers=headers,
    )
    assert [t["target"] for t in pain.json()["items"]] == ["Douleur", "Douleur abdominale"]

    # The result comes later: a correction; the list then shows the corrected version only.
    corrected = await forms.client.post(
        f"/api/forms/submissions/{ids['Douleur']}/corrections",
        json={
            "answers": {
                "target": "Douleur",
                "data": "EVA 6 au lever",
                "actions": "Paracétamol selon prescription",
                "results": "EVA 2 à 1h",
                "occurred_at": iso(base + timedelta(hours=3)),
            },
            "complete": True,
        },
        headers=headers,
    )
    assert corrected.status_code == 201, corrected.text
    pain = await forms.client.get(
        f"/api/forms/patients/{patient_id}/transmissions",
        params={"target": "douleur"},
        headers=headers,
    )
    first = pain.json()["items"][0]
    assert first["results"] == "EVA 2 à 1h" and first["corrects"] == ids["Douleur"]
    assert len(pain.json()["items"]) == 2

    missing = await forms.submit(
        headers, patient_id, "transmission", {"target": "Chute", "data": "x"}, complete=True
    )
    assert missing.status_code == 422
    assert [e["field"] for e in missing.json()["errors"]] == ["answers.actions"]
