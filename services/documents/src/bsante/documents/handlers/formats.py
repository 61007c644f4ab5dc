"""Use cases that export a document: PDF, CDA, DOCX and HTML, for users and for the connectors."""

from __future__ import annotations

import html
import uuid
from dataclasses import dataclass

from bsante.chassis.cpu import run_cpu
from bsante.documents import docx, repository
from bsante.documents.domain import Artefact, Document, NoSuchDocument, WrongState
from bsante.documents.editor import to_html
from bsante.documents.handlers.common import PDF, XML, Caller, Ports, audit, document
from bsante.documents.handlers.drafts import body_of

DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"


@dataclass(frozen=True)
class Export:
    content: bytes
    media_type: str
    filename: str


def _artefact(found: Document, wanted: str) -> Artefact:
    if wanted == "signature":
        if found.cda_signature is None:
            raise WrongState(found.status, "given a CDA signature (it has no sealed CDA)")
        return found.cda_signature
    if found.status == "signed" and found.cda is not None and found.pdf is not None:
        return found.pdf if wanted == "pdf" else found.cda
    if found.is_produced:
        artefact = found.pdf if wanted == "pdf" else found.cda
        if artefact is None:
            needed = "final" if wanted == "pdf" else "signed"
            raise WrongState(found.status, f"exported as {wanted.upper()} before it is {needed}")
        return artefact
    received = found.file
    if received is None or (wanted == "pdf") != (received.media_type == PDF):
        raise WrongState(found.status, f"exported as {wanted.upper()} (received as another type)")
    return received


def _filename(found: Document, wanted: str) -> str:
    return f"{found.id}.xades.xml" if wanted == "signature" else f"{found.id}.{wanted}"


async def artefact(ports: Ports, caller: Caller, document_id: uuid.UUID, wanted: str) -> Export:
    """The stored PDF (final or signed), CDA (signed) or the CDA's detached XAdES signature,
    or a received file of that type."""
    found, _ = await document(ports, caller, document_id)
    chosen = _artefact(found, wanted)
    # Hashed whole before anything is sent: a corrupted blob is never served.
    content = await ports.blobs.read(chosen.sha256)
    async with ports.unit_of_work() as uow:
        await audit(uow, caller, found.patient_id, "export")
    return Export(content, PDF if wanted == "pdf" else XML, _filename(found, wanted))


async def rendered(ports: Ports, caller: Caller, document_id: uuid.UUID, wanted: str) -> Export:
    """DOCX or a standalone HTML page of the body, merge fields valued."""
    found, _ = await document(ports, caller, document_id)
    body = body_of(found)
    if wanted == "docx":
        content = await run_cpu(docx.to_docx, body, found.values, title=found.title)
        media = DOCX
    else:
        page = (
            '<!DOCTYPE html><html lang="fr"><head><meta charset="utf-8">'
            f"<title>{html.escape(found.title)}</title></head><body>"
            f"<h1>{html.escape(found.title)}</h1>{to_html(body, found.values)}</body></html>"
        )
        content, media = page.encode(), "text/html"
    async with ports.unit_of_work() as uow:
        await audit(uow, caller, found.patient_id, "export")
    return Export(content, media, f"{found.id}.{wanted}")


async def for_connector(
    ports: Ports, client_id: str, document_id: uuid.UUID, wanted: str
) -> Export:
    """A signed document's CDA or PDF for a connector (any structure: the event named it)."""
    found = await repository.get(ports.store, None, str(document_id))
    if found is None or found[0].status != "signed":
        raise NoSuchDocument()
    signed = found[0]
    chosen = _artefact(signed, wanted)
    content = await ports.blobs.read(chosen.sha256)
    async with ports.unit_of_work() as uow:
        await uow.audit(
            user_id=signed.signed_by or signed.author_id,
            acting_structure=signed.structure_id,
            patient_id=str(signed.patient_id),
            action="export",
            resource="document",
            service_client=client_id,
        )
    return Export(content, PDF if wanted == "pdf" else XML, _filename(signed, wanted))
