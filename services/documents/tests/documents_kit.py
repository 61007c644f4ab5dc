"""Helpers of the documents service tests: the service alone (SQLite, embedded bus, blob
files) with in-memory peers (patient, directory, forms results), a recording sealer, and a
client wrapper."""

from __future__ import annotations

import hashlib
import io
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import httpx
import pikepdf
import pikepdf.pdfa
from kit import eventually  # type: ignore[import-not-found]
from starlette.applications import Starlette
from starlette.routing import Mount

from bsante.chassis.auth import SigningKey, issue_service_token, issue_token
from bsante.chassis.bus.embedded import EmbeddedBus
from bsante.chassis.service import Service
from bsante.contracts.envelope import Envelope
from bsante.documents.app import build
from bsante.documents.handlers.common import Conformance
from bsante.documents.sealing import Verification
from bsante.documents.settings import DocumentsSettings
from bsante.documents.sources import (
    AuthorFacts,
    PatientRecordFacts,
    ResultFacts,
    Sources,
    StructureFacts,
)

STRUCTURE = "demo-ehpad"
OTHER = "demo-ssiad"
MEDECIN = "user-medecin"
SECRETARY = "user-secretaire"
# A valid FINESS (Luhn) of a fictitious structure.
FINESS = "750000002"


@dataclass
class FakeSources:
    """The three peer ports in memory; a patient of another structure is unknown."""

    patients: dict[str, PatientRecordFacts] = field(default_factory=dict)
    authors: dict[str, AuthorFacts] = field(default_factory=dict)
    structures: dict[str, StructureFacts] = field(default_factory=dict)
    results_by_patient: dict[str, ResultFacts] = field(default_factory=dict)
    calls: int = 0

    async def patient(
        self, patient_id: str, *, user_id: str, structure_id: str
    ) -> PatientRecordFacts | None:
        self.calls += 1
        found = self.patients.get(patient_id)
        return found if found is not None and found.structure_id == structure_id else None

    async def author(self, user_id: str) -> AuthorFacts | None:
        return self.authors.get(user_id)

    async def structure(self, structure_id: str) -> StructureFacts | None:
        return self.structures.get(structure_id)

    async def results(self, patient_id: str, *, user_id: str, structure_id: str) -> ResultFacts:
        return self.results_by_patient.get(patient_id, ResultFacts())

    def add_patient(self, structure_id: str = STRUCTURE, *, qualified: bool = True) -> str:
        pid = str(uuid.uuid4())
        self.patients[pid] = PatientRecordFacts(
            id=pid,
            structure_id=structure_id,
            birth_name="PAT-TROIS",
            birth_given_names="DOMINIQUE MARIE-LOUISE",
            first_given_name="DOMINIQUE",
            sex="F",
            birth_date=date(1979, 3, 28),
            birth_place="51215",
            ipp="0001234",
            ins="279035121518989" if qualified else None,
            ins_oid="1.2.250.1.213.1.4.10" if qualified else None,
            ins_qualified=qualified,
            address_lines=("28 Avenue de Breteuil",),
            postal_code="75007",
            city="PARIS",
        )
        return pid


class RecordingSealer:
    """Seals the PDF by appending a marker; the CDA's "signature" is its digest. Verification
    fails as soon as one byte of either artefact changed."""

    MARK = b"\n%% sealed\n"

    def __init__(self) -> None:
        self.sealed: set[str] = set()

    def seal_pdf(self, pdf: bytes, *, finess: str) -> bytes:
        out = pdf + self.MARK
        self.sealed.add(hashlib.sha256(out).hexdigest())
        return out

    def seal_cda(self, cda: bytes, *, finess: str) -> bytes | None:
        return f"<signature>{hashlib.sha256(cda).hexdigest()}</signature>".encode()

    def verify(self, cda: bytes, pdf: bytes | None, *, cda_signature: bytes | None) -> Verification:
        expected = f"<signature>{hashlib.sha256(cda).hexdigest()}</signature>".encode()
        cda_ok = cda_signature == expected
        pdf_ok = pdf is None or hashlib.sha256(pdf).hexdigest() in self.sealed
        problems = [f"{n} seal broken" for n, ok in (("cda", cda_ok), ("pdf", pdf_ok)) if not ok]
        return Verification(cda_ok, pdf_ok, sealed=True, problems=problems, signer="test")


def default_sources() -> FakeSources:
    sources = FakeSources()
    sources.structures[STRUCTURE] = StructureFacts(
        id=STRUCTURE, name="EHPAD Les Tilleuls", finess=FINESS, phone="01 43 00 00 00"
    )
    sources.structures[OTHER] = StructureFacts(id=OTHER, name="SSIAD du Val", finess=None)
    sources.authors[MEDECIN] = AuthorFacts(
        user_id=MEDECIN,
        display_name="Dr Claire Lemaire",
        family_name="LEMAIRE",
        given_name="Claire",
        rpps="10001000016",
        profession_code="10",
        profession_label="Médecin",
    )
    sources.authors[SECRETARY] = AuthorFacts(user_id=SECRETARY, display_name="Anne Secrétaire")
    return sources


@dataclass
class Documents:
    """Drives the documents API (mounted under /api/documents as behind the gateway)."""

    client: httpx.AsyncClient
    service: Service[DocumentsSettings]
    sources: FakeSources
    sealer: RecordingSealer
    key: SigningKey
    data: Path

    def headers(
        self,
        *,
        roles: Sequence[str] = ("medecin",),
        structure: str = STRUCTURE,
        user: str = MEDECIN,
    ) -> dict[str, str]:
        token = issue_token(
            self.key,
            subject=user,
            structures=[structure],
            roles={structure: list(roles)},
            profession=None,
            issuer="bsante-identity",
            audience="bsante",
            ttl_seconds=900,
        )
        return {"Authorization": f"Bearer {token}", "X-Structure-Id": structure}

    def service_headers(self, *scopes: str) -> dict[str, str]:
        token = issue_service_token(
            self.key,
            client_id="mss-connector",
            scopes=list(scopes),
            issuer="bsante-identity",
            audience="bsante",
            ttl_seconds=900,
        )
        return {"Authorization": f"Bearer {token}"}

    async def template_id(self, name: str, headers: dict[str, str]) -> str:
        listed = await self.client.get("/api/documents/templates", headers=headers)
        assert listed.status_code == 200, listed.text
        return next(t["id"] for t in listed.json() if t["name"] == name)

    async def draft(
        self,
        headers: dict[str, str],
        patient_id: str,
        template: str = "Compte rendu de consultation",
    ) -> httpx.Response:
        template_id = await self.template_id(template, headers)
        return await self.client.post(
            f"/api/documents/patients/{patient_id}/documents",
            json={"template_id": template_id},
            headers=headers,
        )

    async def finalize(self, headers: dict[str, str], created: httpx.Response) -> httpx.Response:
        doc = created.json()
        return await self.client.post(
            f"/api/documents/documents/{doc['id']}/finalize",
            headers={**headers, "If-Match": created.headers["ETag"]},
        )

    async def sign(
        self, headers: dict[str, str], final: httpx.Response, body: dict[str, Any] | None = None
    ) -> httpx.Response:
        doc = final.json()
        return await self.client.post(
            f"/api/documents/documents/{doc['id']}/sign",
            json=body or {},
            headers={**headers, "If-Match": final.headers["ETag"]},
        )

    async def signed(self, headers: dict[str, str], patient_id: str) -> httpx.Response:
        created = await self.draft(headers, patient_id)
        assert created.status_code == 201, created.text
        final = await self.finalize(headers, created)
        assert final.status_code == 200, final.text
        signed = await self.sign(headers, final)
        assert signed.status_code == 200, signed.text
        return signed

    async def events(
        self, topic: str, wanted: str | None = None, *, when: Any = None
    ) -> list[Envelope]:
        """The topic's events once the relay published one of type `wanted` (if given) and
        `when(events)` holds (if given)."""
        found: list[Envelope] = []

        async def published() -> bool:
            nonlocal found
            bus = EmbeddedBus(self.data)
            await bus.start()
            try:
                found = [Envelope.from_json(m.value) for m in await bus.read(topic)]
            finally:
                await bus.stop()
            return (wanted is None or any(e.event_type == wanted for e in found)) and (
                when is None or bool(when(found))
            )

        await eventually(published)
        return found

    async def count(self, collection: str = "documents") -> int:
        return await self.service.store.count(collection)


@asynccontextmanager
async def documents_alone(
    data: Path, *, conformance: Conformance | bool = True, **settings: Any
) -> AsyncIterator[Documents]:
    """The service alone. `conformance=True` (the default) checks every CDA before signing
    with the CI-SIS kit when it is installed (as the service does), so that every CDA the tests
    sign passes it; without the kit, documents are signed unchecked and the kit's own tests say
    they are skipped."""
    data = data.resolve()
    key = SigningKey.generate()

    async def jwks() -> dict[str, Any]:
        return {"keys": [key.public_jwk()]}

    sources = default_sources()
    sealer = RecordingSealer()
    service = build(
        DocumentsSettings(
            store_url=f"sqlite:///{data / 'documents.db'}",
            bus_url=f"embedded://{data}",
            blob_url=f"file://{data / 'blobs'}",
            **settings,
        ),
        jwks=jwks,
        sources=Sources(patients=sources, directory=sources, results=sources),
        sealer=sealer,
        conformance=conformance,
    )
    app = Starlette(routes=[Mount("/api/documents", app=service.app)])
    await service.start()
    try:
        transport = httpx.ASGITransport(app=app, client=("203.0.113.7", 50000))
        async with httpx.AsyncClient(transport=transport, base_url="http://documents") as client:
            yield Documents(client, service, sources, sealer, key, data)
    finally:
        await service.stop()


def assert_pdfa_2b(data: bytes, directory: Path, name: str = "document.pdf") -> None:
    """pikepdf's PDF/A-2b validator passes on the PDF (written under `directory`).

    For a sealed PDF, the validator does not check the signature field nor the PAdES developer
    extension: it reports them as `unsupported`, never as violations. Then there must be no
    violation, nothing else unsupported, and the file less its form and extension must pass.
    The recording sealer's marker is removed first (it is not a PDF seal).
    """
    data = data.removesuffix(RecordingSealer.MARK)
    path = directory / name
    path.write_bytes(data)
    report = pikepdf.pdfa.validate_written(path, "2b")
    if report.passed:
        return
    assert report.violations == () and report.unsupported, report.summary()
    assert all(
        "/AcroForm" in f.where or "/Extensions" in f.where or "Widget" in f.message
        for f in report.unsupported
    ), report.summary()
    with pikepdf.open(io.BytesIO(data)) as pdf:
        assert set(pdf.Root.Extensions.keys()) == {"/ESIC"}
        del pdf.Root["/Extensions"]
        del pdf.Root["/AcroForm"]
        for page in pdf.pages:
            if "/Annots" in page:
                del page["/Annots"]
        pdf.save(path)
    stripped = pikepdf.pdfa.validate_written(path, "2b")
    assert stripped.passed, stripped.summary()


def now() -> datetime:
    return datetime.now(UTC)
