"""Every read route of a document writes exactly one access-audit record."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable

import pytest
from documents_kit import MEDECIN, Documents  # type: ignore[import-not-found]

from bsante.contracts.envelope import Envelope
from bsante.contracts.topics import AUDIT

READS: dict[str, Callable[[str, str], str]] = {
    "patient-list": lambda patient, _: f"/api/documents/patients/{patient}/documents",
    "author-list": lambda _, __: f"/api/documents/documents?author_id={MEDECIN}",
    "document": lambda _, doc: f"/api/documents/documents/{doc}",
    "preview": lambda _, doc: f"/api/documents/documents/{doc}/preview",
    "pdf": lambda _, doc: f"/api/documents/documents/{doc}/pdf",
    "cda": lambda _, doc: f"/api/documents/documents/{doc}/cda",
    "docx": lambda _, doc: f"/api/documents/documents/{doc}/docx",
    "html": lambda _, doc: f"/api/documents/documents/{doc}/html",
    "verification": lambda _, doc: f"/api/documents/documents/{doc}/verification",
}


def _audit_records(documents: Documents) -> list[Envelope]:
    """The audit events in the outbox (sent ones stay there until purged), committed or not
    yet relayed alike."""
    with sqlite3.connect(documents.data / "documents.db") as db:
        rows = db.execute("SELECT value FROM outbox WHERE topic = ? ORDER BY seq", (AUDIT,))
        return [Envelope.from_json(value) for (value,) in rows]


@pytest.mark.parametrize("route", list(READS))
async def test_each_read_route_writes_exactly_one_audit_record(
    documents: Documents, route: str
) -> None:
    headers = documents.headers()
    patient = documents.sources.add_patient()
    signed = (await documents.signed(headers, patient)).json()
    before = len(_audit_records(documents))
    response = await documents.client.get(READS[route](patient, signed["id"]), headers=headers)
    assert response.status_code == 200, response.text
    (record,) = _audit_records(documents)[before:]
    assert record.payload["patient_id"] == patient
    assert record.payload["user_id"] == MEDECIN
    assert record.payload["resource"] == "document"
    assert record.payload["action"] in {"read", "search", "export"}
