"""Routes of documents produced elsewhere: a user's upload, and the MSSanté connector's attach."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from datetime import date
from typing import Annotated

from fastapi import APIRouter, File, Form, Header, Response, UploadFile
from pydantic import ValidationError

from bsante.chassis.api import etag
from bsante.chassis.auth import Principal
from bsante.chassis.blobs import READ_CHUNK_BYTES
from bsante.chassis.blobs.http import blob_errors
from bsante.chassis.errors import DomainError
from bsante.chassis.http import body_limit
from bsante.chassis.openapi import creates, problems
from bsante.chassis.text import SafeText
from bsante.documents.handlers import Caller, received
from bsante.documents.http.deps import Attacher, Drafter, PortsDep, caller
from bsante.documents.http.schemas import Attached, DocumentOut, ReceivedMetadata, document_out

router = APIRouter(tags=["received documents"])
# The multipart envelope around the largest document the blob kind accepts.
UPLOAD_BODY_BYTES = 20_100_000
TypeCode = Annotated[str | None, Form(max_length=20, pattern=r"^[A-Za-z0-9_.\-]+$")]


async def _chunks(file: UploadFile) -> AsyncIterator[bytes]:
    while chunk := await file.read(READ_CHUNK_BYTES):
        yield chunk


def _media_type(file: UploadFile, declared: str | None = None) -> str:
    return declared or file.content_type or "application/octet-stream"


@router.post(
    "/patients/{patient_id}/received-documents",
    status_code=201,
    response_model=DocumentOut,
    responses=problems(413, 415, 503),
    openapi_extra={**body_limit(UPLOAD_BODY_BYTES), **creates("document_id")},
)
async def upload_document(
    patient_id: uuid.UUID,
    principal: Drafter,
    ports: PortsDep,
    response: Response,
    file: Annotated[UploadFile, File(description="The document: PDF, CDA XML, JPEG or PNG")],
    title: Annotated[SafeText, Form(min_length=1, max_length=200)],
    type_code: TypeCode = None,
    document_date: Annotated[date | None, Form()] = None,
    author: Annotated[SafeText | None, Form(max_length=200)] = None,
) -> DocumentOut:
    """Attach a document produced elsewhere (a scanned letter, a PDF the patient brought).

    Signing it (`POST /documents/{id}/sign`) shares a PDF with a document type as a CDA N1."""
    with blob_errors():
        saved, _ = await received.attach(
            ports,
            caller(principal),
            received.Received(
                patient_id=patient_id,
                media_type=_media_type(file),
                title=title,
                type_code=type_code,
                document_date=document_date,
                author=author,
            ),
            _chunks(file),
        )
    response.headers["Location"] = f"../../documents/{saved.document.id}"
    response.headers["ETag"] = etag(saved.version)
    return document_out(saved.document, saved.version)


internal = APIRouter(prefix="/internal", tags=["internal"])


@internal.post(
    "/patients/{patient_id}/received-documents",
    status_code=201,
    response_model=Attached,
    responses={200: {"model": Attached, "description": "Already attached"}, **problems(413, 415)},
    openapi_extra=body_limit(UPLOAD_BODY_BYTES),
)
async def attach_received_document(
    patient_id: uuid.UUID,
    client: Attacher,
    ports: PortsDep,
    response: Response,
    file: Annotated[UploadFile, File(description="The document bytes (CDA XML or PDF)")],
    metadata: Annotated[str, Form(max_length=4_000, description="JSON (see ReceivedMetadata)")],
    x_structure_id: Annotated[
        str, Header(min_length=1, max_length=100, description="Structure of the mailbox")
    ],
) -> Attached:
    """A document received by MSSanté; a repeat of (origin, source_id) answers 200."""
    try:
        meta = ReceivedMetadata.model_validate(json.loads(metadata))
    except (ValueError, ValidationError) as error:
        errors = (
            [{"field": "metadata." + ".".join(map(str, e["loc"])), "message": e["msg"]}
             for e in error.errors()]
            if isinstance(error, ValidationError)
            else [{"field": "metadata", "message": "not JSON"}]
        )  # fmt: skip
        raise DomainError("The metadata part is invalid", errors=errors) from None
    acting = Caller(
        Principal(
            user_id=client.client_id,
            structures=(x_structure_id,),
            acting_structure=x_structure_id,
            roles=(),
        )
    )
    with blob_errors():
        saved, created = await received.attach(
            ports,
            acting,
            received.Received(
                patient_id=patient_id,
                media_type=_media_type(file, meta.media_type),
                title=meta.title or "Document reçu par MSSanté",
                origin="mssante",
                type_code=meta.type_code,
                document_date=meta.document_date,
                author=meta.author,
                source_id=meta.source_id,
            ),
            _chunks(file),
            service_client=client.client_id,
        )
    if not created:
        response.status_code = 200
    return Attached(document_id=saved.document.id)
