"""Documents through their API: templates, drafts with merge fields, If-Match, preview,
finalize (PDF/A), sign (CDA N1, seals, blobs, DocumentSigned), versions, exports, lists."""

from __future__ import annotations

import io
import threading
import zipfile
from typing import Any

import pytest
from documents_kit import (  # type: ignore[import-not-found]
    MEDECIN,
    OTHER,
    SECRETARY,
    Documents,
    assert_pdfa_2b,
)
from lxml import etree

from bsante.contracts.topics import AUDIT, DOCUMENTS
from bsante.documents import pdf

HL7 = {"h": "urn:hl7-org:v3"}


async def test_catalogue_and_demo_templates(documents: Documents) -> None:
    headers = documents.headers()
    fields = await documents.client.get("/api/documents/templates/fields", headers=headers)
    assert fields.status_code == 200
    names = {f["name"]: f for f in fields.json()}
    assert {"patient.birth_name", "patient.ins", "author.rpps", "structure.finess"} <= set(names)
    assert {"forms.latest_gir", "forms.latest_mms", "forms.latest_bp"} <= set(names)
    assert names["patient.birth_date"]["type"] == "date" and names["patient.ins"]["label"]

    listed = await documents.client.get("/api/documents/templates", headers=headers)
    assert listed.status_code == 200
    types = {t["name"]: t["type_code"] for t in listed.json()}
    assert types["Compte rendu de consultation"] == "11488-4"
    assert types["Lettre de liaison"] == "11490-0"
    assert "Compte rendu d'évaluation AGGIR" in types
    assert types["Dossier de liaison d'urgence (DLU)"] == "74207-2"


async def test_draft_merges_values_then_edit_needs_the_current_version(
    documents: Documents,
) -> None:
    headers = documents.headers()
    patient = documents.sources.add_patient()
    created = await documents.draft(headers, patient)
    assert created.status_code == 201, created.text
    doc = created.json()
    assert doc["status"] == "draft" and doc["template_version"] == 1 and doc["cda_version"] == 1
    assert doc["values"]["patient.birth_name"] == "PAT-TROIS"
    assert doc["values"]["patient.ins"] == "279035121518989"  # qualifiée
    assert doc["values"]["author.rpps"] == "10001000016"
    assert doc["values"]["structure.name"] == "EHPAD Les Tilleuls"

    preview = await documents.client.get(
        f"/api/documents/documents/{doc['id']}/preview", headers=headers
    )
    assert preview.status_code == 200
    assert preview.headers["content-type"].startswith("text/html")
    assert "PAT-TROIS" in preview.text and "<section" in preview.text

    body = {
        "sections": [
            {
                "title": "Conclusion",
                "blocks": [{"type": "paragraph", "runs": [{"text": "RAS", "bold": True}]}],
            }
        ]
    }
    url = f"/api/documents/documents/{doc['id']}"
    missing = await documents.client.put(url, json={"body": body}, headers=headers)
    assert missing.status_code == 428
    edited = await documents.client.put(
        url, json={"body": body}, headers={**headers, "If-Match": created.headers["ETag"]}
    )
    assert edited.status_code == 200, edited.text
    assert edited.json()["body"]["sections"][0]["title"] == "Conclusion"
    stale = await documents.client.put(
        url, json={"body": body}, headers={**headers, "If-Match": created.headers["ETag"]}
    )
    assert stale.status_code == 412
    assert stale.headers["content-type"] == "application/problem+json"


async def test_a_patient_of_another_structure_is_unknown(documents: Documents) -> None:
    headers = documents.headers()
    elsewhere = documents.sources.add_patient(OTHER)
    refused = await documents.draft(headers, elsewhere)
    assert refused.status_code == 404
    assert await documents.count() == 0


async def test_finalize_sign_export_and_event(documents: Documents) -> None:
    headers = documents.headers()
    patient = documents.sources.add_patient()
    created = await documents.draft(headers, patient)
    final = await documents.finalize(headers, created)
    assert final.status_code == 200, final.text
    assert final.json()["status"] == "final" and final.json()["pdf"]["size"] > 1000
    doc_id = final.json()["id"]

    # Frozen: no more edits.
    frozen = await documents.client.put(
        f"/api/documents/documents/{doc_id}",
        json={"title": "Autre"},
        headers={**headers, "If-Match": final.headers["ETag"]},
    )
    assert frozen.status_code == 409

    signed = await documents.sign(
        headers,
        final,
        {
            "dmp_visibility": ["INVISIBLE_PATIENT"],
            "mssante": [{"kind": "professional", "address": "dr.x@test.mssante.fr"}],
        },
    )
    assert signed.status_code == 200, signed.text
    out = signed.json()
    assert out["status"] == "signed" and out["signed_by"] == MEDECIN and out["dmp_requested"]

    again = await documents.sign(headers, signed)
    assert again.status_code == 409
    edit = await documents.client.put(
        f"/api/documents/documents/{doc_id}",
        json={"title": "Autre"},
        headers={**headers, "If-Match": signed.headers["ETag"]},
    )
    assert edit.status_code == 409

    pdf = await documents.client.get(f"/api/documents/documents/{doc_id}/pdf", headers=headers)
    assert pdf.status_code == 200 and pdf.headers["content-type"] == "application/pdf"
    assert_pdfa_2b(pdf.content, documents.data)
    cda = await documents.client.get(f"/api/documents/documents/{doc_id}/cda", headers=headers)
    assert cda.status_code == 200 and cda.headers["content-type"] == "application/xml"
    root = etree.fromstring(cda.content)
    assert root.find("h:code", HL7).get("code") == "11488-4"
    assert root.find("h:setId", HL7).get("extension") == out["set_id"]
    assert root.find("h:legalAuthenticator/h:signatureCode", HL7).get("code") == "S"
    ins = root.find("h:recordTarget/h:patientRole/h:id[@root='1.2.250.1.213.1.4.10']", HL7)
    assert ins is not None and ins.get("extension") == "279035121518989"

    docx = await documents.client.get(f"/api/documents/documents/{doc_id}/docx", headers=headers)
    assert docx.status_code == 200
    with zipfile.ZipFile(io.BytesIO(docx.content)) as archive:
        assert "PAT-TROIS" in archive.read("word/document.xml").decode()
    html = await documents.client.get(f"/api/documents/documents/{doc_id}/html", headers=headers)
    assert html.status_code == 200 and "PAT-TROIS" in html.text

    events = await documents.events(DOCUMENTS, "DocumentSigned")
    signed_events = [e for e in events if e.event_type == "DocumentSigned"]
    assert len(signed_events) == 1
    payload = signed_events[0].payload
    assert payload["document_id"] == doc_id and payload["set_id"] == out["set_id"]
    assert signed_events[0].subject_id == out["set_id"]
    assert signed_events[0].structure_id == "demo-ehpad"
    assert payload["cda_sha256"] == out["cda"]["sha256"]
    assert payload["pdf_sha256"] == out["pdf"]["sha256"]
    assert payload["dmp"] == {"requested": True, "visibility": ["INVISIBLE_PATIENT"]}
    assert payload["mssante"][0]["address"] == "dr.x@test.mssante.fr"
    assert payload["author_rpps"] == "10001000016" and payload["type_code"] == "11488-4"

    verified = await documents.client.get(
        f"/api/documents/documents/{doc_id}/verification", headers=headers
    )
    assert verified.status_code == 200 and verified.json()["valid"] is True
    wanted = {"create", "update", "read", "export"}
    await documents.events(AUDIT, when=lambda found: wanted <= {e.payload["action"] for e in found})


async def test_dmp_default_follows_the_ins_status(documents: Documents) -> None:
    headers = documents.headers()
    patient = documents.sources.add_patient(qualified=False)
    created = await documents.draft(headers, patient)
    final = await documents.finalize(headers, created)
    refused = await documents.sign(headers, final, {"dmp": True})
    assert refused.status_code == 422
    assert refused.json()["errors"][0]["field"] == "dmp"
    signed = await documents.sign(headers, final)
    assert signed.status_code == 200, signed.text
    assert signed.json()["dmp_requested"] is False
    cda = await documents.client.get(
        f"/api/documents/documents/{signed.json()['id']}/cda", headers=headers
    )
    assert b"1.2.250.1.213.1.4.10" not in cda.content  # no INS traits without qualification


async def test_a_new_version_keeps_the_set_and_replaces_its_parent(documents: Documents) -> None:
    headers = documents.headers()
    patient = documents.sources.add_patient()
    first = (await documents.signed(headers, patient)).json()
    created = await documents.client.post(
        f"/api/documents/documents/{first['id']}/versions", headers=headers
    )
    assert created.status_code == 201, created.text
    second = created.json()
    assert second["set_id"] == first["set_id"] and second["cda_version"] == 2
    assert second["parent_document_id"] == first["id"] and second["status"] == "draft"
    twice = await documents.client.post(
        f"/api/documents/documents/{first['id']}/versions", headers=headers
    )
    assert twice.status_code == 409

    final = await documents.finalize(headers, created)
    signed = await documents.sign(headers, final)
    assert signed.status_code == 200, signed.text
    cda = await documents.client.get(
        f"/api/documents/documents/{second['id']}/cda", headers=headers
    )
    root = etree.fromstring(cda.content)
    related = root.find("h:relatedDocument", HL7)
    assert related is not None and related.get("typeCode") == "RPLC"
    assert related.find("h:parentDocument/h:id", HL7).get("extension") == first["id"]
    assert root.find("h:versionNumber", HL7).get("value") == "2"

    events = await documents.events(DOCUMENTS, "DocumentReplaced")
    replaced = [e.payload for e in events if e.event_type == "DocumentReplaced"]
    assert replaced == [
        {
            "document_id": second["id"],
            "replaced_document_id": first["id"],
            "set_id": first["set_id"],
            "version": 2,
            "patient_id": patient,
        }
    ]
    parent = await documents.client.get(f"/api/documents/documents/{first['id']}", headers=headers)
    assert parent.json()["replaced_by"] == second["id"]


async def test_signing_needs_the_professionals_own_account(documents: Documents) -> None:
    # A secretary prepares; she cannot sign (habilitation), and a signer without RPPS cannot.
    secretary = documents.headers(roles=["secretaire"], user=SECRETARY)
    patient = documents.sources.add_patient()
    created = await documents.draft(secretary, patient)
    assert created.status_code == 201, created.text
    medecin = documents.headers()
    final = await documents.finalize(medecin, created)
    assert final.status_code == 200, final.text
    refused = await documents.sign(secretary, final)
    assert refused.status_code == 403
    no_rpps = documents.headers(roles=["medecin"], user=SECRETARY)
    assert (await documents.sign(no_rpps, final)).status_code == 403
    signed = await documents.sign(medecin, final)
    assert signed.status_code == 200, signed.text
    assert signed.json()["author_id"] == SECRETARY and signed.json()["signed_by"] == MEDECIN


async def test_another_structures_document_is_not_found(documents: Documents) -> None:
    headers = documents.headers()
    patient = documents.sources.add_patient()
    final = await documents.finalize(headers, await documents.draft(headers, patient))
    other = documents.headers(structure=OTHER)
    refused = await documents.sign(other, final)
    assert refused.status_code == 404
    read = await documents.client.get(
        f"/api/documents/documents/{final.json()['id']}", headers=other
    )
    assert read.status_code == 404
    assert (await documents.client.get(
        f"/api/documents/documents/{final.json()['id']}", headers=headers
    )).json()["status"] == "final"  # fmt: skip


async def test_lists_by_patient_author_and_status(documents: Documents) -> None:
    headers = documents.headers()
    one, two = documents.sources.add_patient(), documents.sources.add_patient()
    first = await documents.draft(headers, one)
    await documents.draft(headers, two)
    abandoned = await documents.client.post(
        f"/api/documents/documents/{first.json()['id']}/abandon",
        headers={**headers, "If-Match": first.headers["ETag"]},
    )
    assert abandoned.status_code == 200 and abandoned.json()["status"] == "abandoned"

    by_patient = await documents.client.get(
        f"/api/documents/patients/{one}/documents", headers=headers
    )
    assert [d["id"] for d in by_patient.json()["items"]] == [first.json()["id"]]
    mine = await documents.client.get("/api/documents/documents?author_id=me", headers=headers)
    assert len(mine.json()["items"]) == 2
    drafts = await documents.client.get("/api/documents/documents?status=draft", headers=headers)
    assert [d["patient_id"] for d in drafts.json()["items"]] == [two]


async def test_finalize_renders_the_pdf_off_the_event_loop(
    documents: Documents, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The service's own path: a renderer recording the thread it ran on.
    threads: list[int] = []
    real = pdf.render_body_pdf

    def recording(*args: Any, **kwargs: Any) -> bytes:
        threads.append(threading.get_ident())
        return real(*args, **kwargs)

    monkeypatch.setattr(pdf, "render_body_pdf", recording)
    headers = documents.headers()
    created = await documents.draft(headers, documents.sources.add_patient())
    final = await documents.finalize(headers, created)
    assert final.status_code == 200, final.text
    assert threads and threading.get_ident() not in threads
