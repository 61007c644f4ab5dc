"""Bad input to the documents API: a clear 4xx problem naming the fault, and nothing written."""

from __future__ import annotations

from typing import Any

import pytest
from documents_kit import Documents  # type: ignore[import-not-found]

INJECTION = "{{ patient.__class__ }}"
PARAGRAPH = {"type": "paragraph", "runs": [{"text": "Bonjour "}]}


def template(body: dict[str, Any], **fields: Any) -> dict[str, Any]:
    return {
        "name": "Mon modèle",
        "type_code": "11488-4",
        "class_code": "10",
        "title": "Compte rendu",
        "body": body,
        **fields,
    }


def sections(*blocks: dict[str, Any]) -> dict[str, Any]:
    return {"sections": [{"title": "Section", "blocks": list(blocks)}]}


@pytest.mark.parametrize(
    ("payload", "field", "words"),
    [
        (
            template(sections({"type": "merge_field", "field": "patient.shoe_size"})),
            "body.sections.0.blocks.0.field",
            "patient.shoe_size",
        ),
        (
            template(sections({"type": "paragraph", "runs": [{"text": INJECTION}]})),
            "body.sections.0.blocks.0.runs.0.text",
            "unknown merge field",
        ),
        (template(sections({"type": "video", "src": "x"})), "body.sections.0.blocks.0", ""),
        (template({"sections": "nope"}), "body.sections", ""),
        (template(sections(PARAGRAPH), type_code="99999-9"), "type_code", "99999-9"),
        (template(sections(PARAGRAPH), class_code="XX"), "class_code", "XX"),
        (
            template(sections({"type": "paragraph", "runs": [{"text": "x" * 600_000}]})),
            "body",
            "limit",
        ),
    ],
    ids=["unknown-field", "python-internals", "unknown-block", "malformed",
         "type-code", "class-code", "oversized"],
)  # fmt: skip
async def test_a_refused_template_names_its_fault_and_writes_nothing(
    documents: Documents, payload: dict[str, Any], field: str | None, words: str
) -> None:
    headers = documents.headers()
    before = await documents.count("templates")
    response = await documents.client.post(
        "/api/documents/templates", json=payload, headers=headers
    )
    assert response.status_code in (413, 422), response.text
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    if response.status_code == 422:
        fields = [e["field"] for e in problem["errors"]]
        if field is not None:
            assert any(f.startswith(field) for f in fields), fields
        assert words in problem["detail"] + " ".join(e["message"] for e in problem["errors"])
    assert await documents.count("templates") == before


@pytest.mark.parametrize(
    "text",
    [
        "{% for i in (1..100000000) %}x{% endfor %}",
        "{% for i in (1..900) %}{% for j in (1..900) %}xxxxxxxxxx{% endfor %}{% endfor %}",
    ],
    ids=["unbounded-loop", "huge-output"],
)
async def test_loops_and_huge_output_are_refused_when_saved(
    documents: Documents, text: str
) -> None:
    # A loop is valid Liquid: a trial merge with the catalogue's sample values meets
    # python-liquid's iteration and output limits at save, before any document is drafted.
    headers = documents.headers()
    before = await documents.count("templates")
    created = await documents.client.post(
        "/api/documents/templates",
        json=template(sections({"type": "paragraph", "runs": [{"text": text}]})),
        headers=headers,
    )
    assert created.status_code == 422, created.text
    assert created.headers["content-type"] == "application/problem+json"
    problem = created.json()
    assert [e["field"] for e in problem["errors"]] == ["body.sections.0.blocks.0.runs.0.text"]
    assert "limit" in problem["detail"]
    assert await documents.count("templates") == before


async def test_a_template_is_versioned_and_documents_name_theirs(documents: Documents) -> None:
    headers = documents.headers()
    body = sections(
        {"type": "paragraph", "runs": [{"kind": "field", "field": "patient.birth_name"}]}
    )
    created = await documents.client.post(
        "/api/documents/templates", json=template(body), headers=headers
    )
    assert created.status_code == 201, created.text
    assert created.json()["fields"] == ["patient.birth_name"]
    tid = created.json()["id"]
    patient = documents.sources.add_patient()
    doc = await documents.client.post(
        f"/api/documents/patients/{patient}/documents", json={"template_id": tid}, headers=headers
    )
    assert doc.json()["template_version"] == 1
    assert doc.json()["body"]["sections"][0]["blocks"][0]["runs"][0]["text"] == "PAT-TROIS"

    url = f"/api/documents/templates/{tid}"
    assert (
        await documents.client.put(url, json=template(body), headers=headers)
    ).status_code == 428
    revised = await documents.client.put(
        url,
        json=template(body, name="Renommé"),
        headers={**headers, "If-Match": created.headers["ETag"]},
    )
    assert revised.status_code == 200 and revised.json()["version"] == 2
    stale = await documents.client.put(
        url, json=template(body), headers={**headers, "If-Match": created.headers["ETag"]}
    )
    assert stale.status_code == 412
    old = await documents.client.get(f"{url}?version=1", headers=headers)
    assert old.json()["name"] == "Mon modèle" and old.json()["version"] == 1

    other = documents.headers(structure="demo-ssiad")
    assert (await documents.client.get(url, headers=other)).status_code == 404
    withdrawn = await documents.client.delete(
        url, headers={**headers, "If-Match": revised.headers["ETag"]}
    )
    assert withdrawn.status_code == 200 and withdrawn.json()["active"] is False
    refused = await documents.client.post(
        f"/api/documents/patients/{patient}/documents", json={"template_id": tid}, headers=headers
    )
    assert refused.status_code == 404


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"body": {"sections": [{"title": "T", "blocks": [{"type": "gif"}]}]}}, "body.sections.0"),
        ({"body": {"sections": []}}, "body.sections"),
        ({"body": {"sections": [{"title": "T", "blocks": [
            {"type": "merge_field", "field": "author.password"}]}]}}, "body"),
        ({"body": {"sections": [{"title": "T", "blocks": [
            {"type": "paragraph", "runs": [{"text": "a" * 600_000}]}]}]}}, "body"),
        ({"title": "x" * 201}, "title"),
        ({"colour": "red"}, "colour"),
    ],
    ids=["unknown-block", "empty", "unknown-field", "oversized", "long-title", "extra-field"],
)  # fmt: skip
async def test_a_refused_edit_names_its_fault_and_changes_nothing(
    documents: Documents, body: dict[str, Any], field: str
) -> None:
    headers = documents.headers()
    created = await documents.draft(headers, documents.sources.add_patient())
    url = f"/api/documents/documents/{created.json()['id']}"
    response = await documents.client.put(
        url, json=body, headers={**headers, "If-Match": created.headers["ETag"]}
    )
    assert response.status_code in (413, 422), response.text
    assert response.headers["content-type"] == "application/problem+json"
    if response.status_code == 422:
        assert any(e["field"].startswith(field) for e in response.json()["errors"])
    after = await documents.client.get(url, headers=headers)
    assert after.headers["ETag"] == created.headers["ETag"]
    assert after.json()["body"] == created.json()["body"]


async def test_malformed_json_is_a_400(documents: Documents) -> None:
    headers = {**documents.headers(), "Content-Type": "application/json"}
    response = await documents.client.post(
        "/api/documents/templates", content=b'{"name": ', headers=headers
    )
    assert response.status_code == 400
    assert response.headers["content-type"] == "application/problem+json"


async def test_reading_what_a_draft_does_not_have_yet_is_a_declared_409(
    documents: Documents,
) -> None:
    """Found by `make fuzz`'s stateful phase: a draft's PDF, CDA, signature and verification
    answered a 409 the OpenAPI document did not declare."""
    headers = documents.headers()
    created = await documents.draft(headers, documents.sources.add_patient())
    document_id = created.json()["id"]
    paths = documents.service.app.openapi()["paths"]
    for export in ("pdf", "cda", "cda-signature", "verification"):
        response = await documents.client.get(
            f"/api/documents/documents/{document_id}/{export}", headers=headers
        )
        assert response.status_code == 409, (export, response.text)
        assert response.headers["content-type"] == "application/problem+json"
        assert "409" in paths[f"/documents/{{document_id}}/{export}"]["get"]["responses"], export
    # A received file has no editor body: the same refusal for its renderings, declared too.
    for rendering in ("preview", "html", "docx"):
        assert "409" in paths[f"/documents/{{document_id}}/{rendering}"]["get"]["responses"]


async def test_sign_before_final_and_abandon_after_final_are_conflicts(
    documents: Documents,
) -> None:
    headers = documents.headers()
    created = await documents.draft(headers, documents.sources.add_patient())
    early = await documents.sign(headers, created)
    assert early.status_code == 409
    cda = await documents.client.get(
        f"/api/documents/documents/{created.json()['id']}/cda", headers=headers
    )
    assert cda.status_code == 409
    final = await documents.finalize(headers, created)
    late = await documents.client.post(
        f"/api/documents/documents/{final.json()['id']}/abandon",
        headers={**headers, "If-Match": final.headers["ETag"]},
    )
    assert late.status_code == 409
    assert (await documents.client.get(
        f"/api/documents/documents/{final.json()['id']}", headers=headers
    )).json()["status"] == "final"  # fmt: skip
