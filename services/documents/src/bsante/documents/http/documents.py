"""Routes of documents: draft from a template, edit, preview, finalize, abandon, sign, new
version, lists, exports (PDF, CDA, DOCX, HTML) and the verification of the seals."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Query, Response
from fastapi.responses import HTMLResponse

from bsante.chassis.api import etag, required_if_match
from bsante.chassis.openapi import creates, problems
from bsante.documents.cps import CardAccess
from bsante.documents.domain import Status
from bsante.documents.handlers import drafts, formats, lifecycle
from bsante.documents.http.deps import Drafter, IfMatch, PortsDep, Reader, Signer, caller
from bsante.documents.http.schemas import (
    CardSignerIn,
    DocumentEdit,
    DocumentList,
    DocumentOut,
    NewDocumentIn,
    SignIn,
    VerificationOut,
    document_out,
)

router = APIRouter(tags=["documents"])
Limit = Annotated[int, Query(ge=1, le=500)]
Offset = Annotated[int, Query(ge=0, le=100_000)]


def _sent(response: Response, saved: drafts.Saved, *, created: bool = False) -> DocumentOut:
    response.headers["ETag"] = etag(saved.version)
    if created:
        response.headers["Location"] = f"../../documents/{saved.document.id}"
    return document_out(saved.document, saved.version)


@router.post(
    "/patients/{patient_id}/documents",
    status_code=201,
    response_model=DocumentOut,
    responses=problems(503),
    openapi_extra=creates("document_id"),
)
async def create_document(
    patient_id: uuid.UUID,
    body: NewDocumentIn,
    principal: Drafter,
    ports: PortsDep,
    response: Response,
) -> DocumentOut:
    """A draft from a template, its merge fields valued from the patient record, the author,
    the structure and the latest form results."""
    saved = await drafts.create(
        ports,
        caller(principal),
        drafts.NewDocument(patient_id=patient_id, template_id=body.template_id, title=body.title),
    )
    return _sent(response, saved, created=True)


@router.get("/patients/{patient_id}/documents", response_model=DocumentList)
async def list_patient_documents(
    patient_id: uuid.UUID,
    principal: Reader,
    ports: PortsDep,
    status: Status | None = None,
    limit: Limit = 100,
    offset: Offset = 0,
) -> DocumentList:
    """A patient's documents, produced and received, newest first."""
    found = await drafts.listed(
        ports, caller(principal), patient_id=patient_id, status=status, limit=limit, offset=offset
    )
    return DocumentList(items=[document_out(s.document, s.version) for s in found])


@router.get("/documents", response_model=DocumentList)
async def list_documents(
    principal: Reader,
    ports: PortsDep,
    author_id: Annotated[str | None, Query(min_length=1, max_length=200)] = None,
    status: Status | None = None,
    limit: Limit = 100,
    offset: Offset = 0,
) -> DocumentList:
    """The structure's documents by author (`me` for the caller) and/or status, newest first."""
    who = principal.user_id if author_id == "me" else author_id
    found = await drafts.listed(
        ports, caller(principal), author_id=who, status=status, limit=limit, offset=offset
    )
    return DocumentList(items=[document_out(s.document, s.version) for s in found])


@router.get("/documents/{document_id}", response_model=DocumentOut)
async def read_document(
    document_id: uuid.UUID, principal: Reader, ports: PortsDep, response: Response
) -> DocumentOut:
    return _sent(response, await drafts.read(ports, caller(principal), document_id))


@router.put("/documents/{document_id}", response_model=DocumentOut, responses=problems(428))
async def edit_document(
    document_id: uuid.UUID,
    body: DocumentEdit,
    principal: Drafter,
    ports: PortsDep,
    response: Response,
    if_match: IfMatch = None,
) -> DocumentOut:
    """Replace a draft's body or title (If-Match: the version read; 409 once final)."""
    expected = required_if_match(if_match)
    saved = await drafts.edit(
        ports,
        caller(principal),
        document_id,
        body=body.body,
        title=body.title,
        expected_version=expected,
    )
    return _sent(response, saved)


# A read of what the document's state does not have yet (the PDF of a draft, the CDA before
# signing, the editor body of a received file) is 409, like the writes.
HTML_RESPONSE: dict[int | str, dict[str, Any]] = {
    200: {"content": {"text/html": {"schema": {"type": "string"}}}, "description": "HTML"},
    **problems(409),
}


@router.get(
    "/documents/{document_id}/preview", response_class=HTMLResponse, responses=HTML_RESPONSE
)
async def preview_document(document_id: uuid.UUID, principal: Reader, ports: PortsDep) -> Response:
    """The body as an HTML fragment (escaped), merge fields valued, for the editor."""
    _, fragment = await drafts.preview(ports, caller(principal), document_id)
    return HTMLResponse(fragment, headers={"Cache-Control": "no-store"})


@router.post(
    "/documents/{document_id}/finalize", response_model=DocumentOut, responses=problems(428)
)
async def finalize_document(
    document_id: uuid.UUID,
    principal: Drafter,
    ports: PortsDep,
    response: Response,
    if_match: IfMatch = None,
) -> DocumentOut:
    """Freeze the draft and render its PDF/A."""
    saved = await lifecycle.finalize(
        ports, caller(principal), document_id, required_if_match(if_match)
    )
    return _sent(response, saved)


@router.post(
    "/documents/{document_id}/abandon", response_model=DocumentOut, responses=problems(428)
)
async def abandon_document(
    document_id: uuid.UUID,
    principal: Drafter,
    ports: PortsDep,
    response: Response,
    if_match: IfMatch = None,
) -> DocumentOut:
    saved = await lifecycle.abandon(
        ports, caller(principal), document_id, required_if_match(if_match)
    )
    return _sent(response, saved)


@router.post(
    "/documents/{document_id}/sign", response_model=DocumentOut, responses=problems(428, 503)
)
async def sign_document(
    document_id: uuid.UUID,
    principal: Signer,
    ports: PortsDep,
    response: Response,
    body: SignIn | None = None,
    if_match: IfMatch = None,
) -> DocumentOut:
    """Sign a final document with your own professional account: its CDA R2 N1 (checked
    against the CI-SIS kit when configured) and PDF are sealed and kept; DocumentSigned
    carries the sharing intents (DMP by default when the INS is qualifiée, MSSanté).

    `signer.mode` "cps": your own CPS, in this workstation's reader, signs both artefacts
    instead of the structure's cachet (PIN and the card bridge's pairing token given)."""
    request = body or SignIn()
    saved = await lifecycle.sign(
        ports,
        caller(principal),
        document_id,
        lifecycle.SignRequest(
            dmp=request.dmp,
            dmp_visibility=request.dmp_visibility,
            mssante=request.mssante,
            card=_card(request.signer),
        ),
        required_if_match(if_match),
    )
    return _sent(response, saved)


def _card(signer: CardSignerIn) -> CardAccess | None:
    if signer.mode != "cps" or signer.pin is None or signer.pairing_token is None:
        return None
    return CardAccess(
        pairing_token=signer.pairing_token.get_secret_value(),
        pin=signer.pin.get_secret_value(),
        reader=signer.reader,
    )


@router.post(
    "/documents/{document_id}/versions",
    status_code=201,
    response_model=DocumentOut,
    openapi_extra=creates("document_id"),
)
async def new_document_version(
    document_id: uuid.UUID, principal: Drafter, ports: PortsDep, response: Response
) -> DocumentOut:
    """A draft replacing a signed document (same set, version + 1, relatedDocument RPLC)."""
    saved = await lifecycle.new_version(ports, caller(principal), document_id)
    return _sent(response, saved, created=True)


def _binary(media_type: str, what: str) -> dict[int | str, dict[str, Any]]:
    return {
        200: {
            "content": {media_type: {"schema": {"type": "string", "format": "binary"}}},
            "description": what,
        },
        **problems(409),
    }


def _download(export: formats.Export) -> Response:
    return Response(
        export.content,
        media_type=export.media_type,
        headers={
            "Content-Disposition": f'attachment; filename="{export.filename}"',
            "Cache-Control": "no-store",
        },
    )


@router.get(
    "/documents/{document_id}/pdf",
    response_class=Response,
    responses=_binary("application/pdf", "The PDF/A (final or signed), or the received PDF"),
)
async def document_pdf(document_id: uuid.UUID, principal: Reader, ports: PortsDep) -> Response:
    return _download(await formats.artefact(ports, caller(principal), document_id, "pdf"))


@router.get(
    "/documents/{document_id}/cda",
    response_class=Response,
    responses=_binary("application/xml", "The signed CDA R2 N1, or the received CDA"),
)
async def document_cda(document_id: uuid.UUID, principal: Reader, ports: PortsDep) -> Response:
    return _download(await formats.artefact(ports, caller(principal), document_id, "cda"))


@router.get(
    "/documents/{document_id}/cda-signature",
    response_class=Response,
    responses=_binary("application/xml", "The detached XAdES-BES signature of the signed CDA"),
)
async def document_cda_signature(
    document_id: uuid.UUID, principal: Reader, ports: PortsDep
) -> Response:
    return _download(await formats.artefact(ports, caller(principal), document_id, "signature"))


@router.get(
    "/documents/{document_id}/docx",
    response_class=Response,
    responses=_binary(formats.DOCX, "The body as a Word document"),
)
async def document_docx(document_id: uuid.UUID, principal: Reader, ports: PortsDep) -> Response:
    return _download(await formats.rendered(ports, caller(principal), document_id, "docx"))


@router.get("/documents/{document_id}/html", response_class=Response, responses=HTML_RESPONSE)
async def document_html(document_id: uuid.UUID, principal: Reader, ports: PortsDep) -> Response:
    return _download(await formats.rendered(ports, caller(principal), document_id, "html"))


@router.get(
    "/documents/{document_id}/verification",
    response_model=VerificationOut,
    responses=problems(409),
)
async def verify_document(
    document_id: uuid.UUID, principal: Reader, ports: PortsDep
) -> VerificationOut:
    """The seals of the signed CDA and PDF, and their chain, checked again."""
    found, result = await lifecycle.verification(ports, caller(principal), document_id)
    return VerificationOut(
        document_id=found.id,
        valid=result.valid,
        sealed=result.sealed,
        cda_valid=result.cda_valid,
        pdf_valid=result.pdf_valid,
        signer=result.signer,
        problems=result.problems,
    )
