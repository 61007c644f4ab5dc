"""Received documents (uploaded by users, attached by the MSSanté connector), the connectors'
claim-check routes, the cachet seals and their verification, and the CI-SIS check."""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path

import pytest
from documents_kit import (  # type: ignore[import-not-found]
    Documents,
    assert_pdfa_2b,
    documents_alone,
)
from lxml import etree

from bsante.contracts.permissions import ServiceScope
from bsante.contracts.topics import DOCUMENTS
from bsante.documents import samples
from bsante.documents.checks import KitConformance
from bsante.documents.sealing import CachetSealer
from bsante.documents.settings import DocumentsSettings
from bsante.documents.sources import ResultFacts

PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"


async def test_an_uploaded_document_is_listed_with_the_produced_ones(documents: Documents) -> None:
    headers = documents.headers(roles=["secretaire"])
    patient = documents.sources.add_patient()
    uploaded = await documents.client.post(
        f"/api/documents/patients/{patient}/received-documents",
        files={"file": ("lettre.pdf", PDF, "application/pdf")},
        data={"title": "Courrier du cardiologue", "type_code": "11488-4",
              "document_date": "2026-11-20", "author": "Dr Cœur"},
        headers=headers,
    )  # fmt: skip
    assert uploaded.status_code == 201, uploaded.text
    doc = uploaded.json()
    assert doc["origin"] == "upload" and doc["status"] == "received"
    assert doc["file"]["sha256"] == hashlib.sha256(PDF).hexdigest()
    assert doc["author_text"] == "Dr Cœur" and doc["document_date"] == "2026-11-20"

    medecin = documents.headers()
    await documents.draft(medecin, patient)
    listed = await documents.client.get(
        f"/api/documents/patients/{patient}/documents", headers=medecin
    )
    assert {d["origin"] for d in listed.json()["items"]} == {"upload", "produced"}
    pdf = await documents.client.get(f"/api/documents/documents/{doc['id']}/pdf", headers=medecin)
    assert pdf.status_code == 200 and pdf.content == PDF
    events = await documents.events(DOCUMENTS, "ExternalDocumentAttached")
    attached = next(e.payload for e in events if e.event_type == "ExternalDocumentAttached")
    assert attached["origin"] == "upload" and attached["sha256"] == doc["file"]["sha256"]

    refused = await documents.client.post(
        f"/api/documents/patients/{patient}/received-documents",
        files={"file": ("x.exe", b"MZ", "application/x-msdownload")},
        data={"title": "Programme"},
        headers=headers,
    )
    assert refused.status_code == 415
    unknown = await documents.client.post(
        f"/api/documents/patients/{documents.sources.add_patient('demo-ssiad')}/received-documents",
        files={"file": ("lettre.pdf", PDF, "application/pdf")},
        data={"title": "Courrier"},
        headers=headers,
    )
    assert unknown.status_code == 404
    assert await documents.count() == 2


async def test_a_received_pdf_is_shared_wrapped_in_a_cda_n1(documents: Documents) -> None:
    headers = documents.headers()
    patient = documents.sources.add_patient()

    async def upload(**data: str) -> dict[str, str]:
        response = await documents.client.post(
            f"/api/documents/patients/{patient}/received-documents",
            files={"file": ("lettre.pdf", PDF, "application/pdf")},
            data={"title": "Courrier scanné", **data},
            headers=headers,
        )
        assert response.status_code == 201, response.text
        return {"id": response.json()["id"], "etag": response.headers["ETag"]}

    untyped = await upload()
    refused = await documents.client.post(
        f"/api/documents/documents/{untyped['id']}/sign",
        json={},
        headers={**headers, "If-Match": untyped["etag"]},
    )
    assert refused.status_code == 422 and refused.json()["errors"][0]["field"] == "type_code"

    typed = await upload(type_code="11488-4")
    signed = await documents.client.post(
        f"/api/documents/documents/{typed['id']}/sign",
        json={"dmp": False},
        headers={**headers, "If-Match": typed["etag"]},
    )
    assert signed.status_code == 200, signed.text
    out = signed.json()
    assert out["status"] == "signed" and out["pdf"]["sha256"] == hashlib.sha256(PDF).hexdigest()
    cda = await documents.client.get(f"/api/documents/documents/{typed['id']}/cda", headers=headers)
    root = etree.fromstring(cda.content)
    text = root.find("h:component/h:nonXMLBody/h:text", {"h": "urn:hl7-org:v3"})
    assert text is not None and base64.b64decode(text.text or "") == PDF
    events = await documents.events(DOCUMENTS, "DocumentSigned")
    payload = next(e.payload for e in events if e.event_type == "DocumentSigned")
    assert payload["document_id"] == typed["id"] and payload["pdf_sha256"] == out["pdf"]["sha256"]
    verified = await documents.client.get(
        f"/api/documents/documents/{typed['id']}/verification", headers=headers
    )
    assert verified.json()["valid"] is True


async def test_an_upload_over_the_limit_keeps_nothing(tmp_path: Path) -> None:
    async with documents_alone(tmp_path, max_upload_bytes=2_000) as documents:
        headers = documents.headers()
        patient = documents.sources.add_patient()
        response = await documents.client.post(
            f"/api/documents/patients/{patient}/received-documents",
            files={"file": ("big.pdf", PDF + b"0" * 3_000, "application/pdf")},
            data={"title": "Gros"},
            headers=headers,
        )
        assert response.status_code == 413
        assert response.headers["content-type"] == "application/problem+json"
        assert await documents.count() == 0


async def test_the_mss_connector_attaches_once_per_source(documents: Documents) -> None:
    patient = documents.sources.add_patient()
    headers = {
        **documents.service_headers(ServiceScope.DOCUMENTS_ATTACH),
        "X-Structure-Id": "demo-ehpad",
    }
    metadata = {"origin": "mssante", "source_id": "<msg-1@mss>/1", "media_type": "application/pdf",
                "type_code": None, "title": "Compte rendu reçu", "document_date": None,
                "author": "Dr Tiers"}  # fmt: skip
    url = f"/api/documents/internal/patients/{patient}/received-documents"

    async def post() -> dict[str, object]:
        response = await documents.client.post(
            url,
            files={"file": ("cr.pdf", PDF, "application/pdf")},
            data={"metadata": json.dumps(metadata)},
            headers=headers,
        )
        assert response.status_code in (200, 201), response.text
        return {"status": response.status_code, **response.json()}

    first, second = await post(), await post()
    assert (first["status"], second["status"]) == (201, 200)
    assert first["document_id"] == second["document_id"]
    assert await documents.count() == 1

    user = await documents.client.post(
        url, files={"file": ("cr.pdf", PDF, "application/pdf")},
        data={"metadata": json.dumps(metadata)}, headers=documents.headers(),
    )  # fmt: skip
    assert user.status_code == 403
    bad = await documents.client.post(
        url, files={"file": ("cr.pdf", PDF, "application/pdf")},
        data={"metadata": "{not json"}, headers=headers,
    )  # fmt: skip
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "metadata"


async def test_connectors_fetch_the_signed_artefacts_by_claim_check(documents: Documents) -> None:
    signed = (await documents.signed(documents.headers(), documents.sources.add_patient())).json()
    headers = documents.service_headers(ServiceScope.DOCUMENTS_READ)
    cda = await documents.client.get(
        f"/api/documents/internal/documents/{signed['id']}/cda", headers=headers
    )
    assert cda.status_code == 200 and cda.headers["content-type"] == "application/xml"
    assert hashlib.sha256(cda.content).hexdigest() == signed["cda"]["sha256"]
    pdf = await documents.client.get(
        f"/api/documents/internal/documents/{signed['id']}/pdf", headers=headers
    )
    assert hashlib.sha256(pdf.content).hexdigest() == signed["pdf"]["sha256"]
    assert_pdfa_2b(pdf.content, documents.data)
    wrong_scope = documents.service_headers(ServiceScope.DOCUMENTS_ATTACH)
    denied = await documents.client.get(
        f"/api/documents/internal/documents/{signed['id']}/cda", headers=wrong_scope
    )
    assert denied.status_code == 403
    unknown = await documents.client.get(
        "/api/documents/internal/documents/00000000-0000-4000-8000-000000000000/cda",
        headers=headers,
    )
    assert unknown.status_code == 404
    assert unknown.headers["content-type"] == "application/problem+json"


async def test_the_cachet_seals_and_a_changed_byte_fails_verification(tmp_path: Path) -> None:
    settings = DocumentsSettings(signing_demo_pki_dir=str(tmp_path / "pki"))
    async with documents_alone(tmp_path) as documents:
        documents.service.app.state.ports = documents.service.app.state.ports.__class__(
            **{**documents.service.app.state.ports.__dict__, "sealer": CachetSealer(settings)}
        )
        headers = documents.headers()
        signed = (await documents.signed(headers, documents.sources.add_patient())).json()
        url = f"/api/documents/documents/{signed['id']}/verification"
        verified = await documents.client.get(url, headers=headers)
        assert verified.status_code == 200
        assert verified.json()["valid"] is True, verified.json()
        assert verified.json()["cda_valid"] and verified.json()["pdf_valid"]
        # The CDA's seal is detached: the CDA served is the one validated, byte for byte.
        signature = await documents.client.get(
            f"/api/documents/documents/{signed['id']}/cda-signature", headers=headers
        )
        assert signature.status_code == 200 and b"Signature" in signature.content
        cda = await documents.client.get(
            f"/api/documents/documents/{signed['id']}/cda", headers=headers
        )
        assert b"xmldsig" not in cda.content
        sealed = await documents.client.get(
            f"/api/documents/documents/{signed['id']}/pdf", headers=headers
        )
        assert sealed.status_code == 200 and sealed.content.startswith(b"%PDF")
        assert_pdfa_2b(sealed.content, tmp_path, "sealed.pdf")

        path = documents.service.blobs.path_of(signed["pdf"]["sha256"])  # type: ignore[attr-defined]
        data = bytearray(path.read_bytes())
        data[len(data) // 2] ^= 0x01
        path.write_bytes(bytes(data))
        broken = await documents.client.get(url, headers=headers)
        assert broken.status_code == 200 and broken.json()["valid"] is False
        assert broken.json()["problems"]


@pytest.fixture(scope="module")
def kit_conformance() -> KitConformance:
    found = KitConformance.located()
    if found is None:
        pytest.skip(
            "CI-SIS test kit absent; set BSANTE_CISIS_KIT to check documents before signing"
        )
    return found


async def test_a_signed_cda_passes_the_kit_and_a_failing_one_is_refused(
    tmp_path: Path, kit_conformance: KitConformance
) -> None:
    async with documents_alone(tmp_path, conformance=kit_conformance) as documents:
        headers = documents.headers()
        signed = await documents.signed(headers, documents.sources.add_patient())
        assert signed.json()["status"] == "signed"

        # A DLU drafted after the DLU form was completed is signed as the structured DLU-EHPAD.
        patient = documents.sources.add_patient()
        documents.sources.results_by_patient[patient] = ResultFacts(
            {"dlu": {"answers": samples.dlu_answers(), "at": "2026-11-30T09:00:00+00:00"}}
        )
        drafted = await documents.draft(headers, patient, "Dossier de liaison d'urgence (DLU)")
        final = await documents.finalize(headers, drafted)
        dlu = await documents.sign(headers, final, {"dmp": False})
        assert dlu.status_code == 200, dlu.text
        cda = await documents.client.get(
            f"/api/documents/documents/{dlu.json()['id']}/cda", headers=headers
        )
        root = etree.fromstring(cda.content)
        templates = {t.get("root") for t in root.findall("{urn:hl7-org:v3}templateId")}
        assert "1.2.250.1.213.1.1.1.22" in templates
        assert root.find("{urn:hl7-org:v3}component/{urn:hl7-org:v3}structuredBody") is not None

    class Refusing:
        def check(self, cda: bytes, *, dlu: bool = False) -> list[dict[str, str]]:
            return [{"field": "cda", "message": "assert-1: the test refuses it"}]

    async with documents_alone(tmp_path / "refusing", conformance=Refusing()) as documents:
        headers = documents.headers()
        final = await documents.finalize(
            headers, await documents.draft(headers, documents.sources.add_patient())
        )
        refused = await documents.sign(headers, final)
        assert refused.status_code == 422
        assert refused.json()["errors"][0]["message"].startswith("assert-1")
        after = await documents.client.get(
            f"/api/documents/documents/{final.json()['id']}", headers=headers
        )
        assert after.json()["status"] == "final" and after.json()["cda"] is None
