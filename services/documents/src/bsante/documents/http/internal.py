"""Service-only routes the connectors call: the signed artefacts of a document (claim check:
the consumer compares their SHA-256 with the DocumentSigned it received)."""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import APIRouter, Response

from bsante.documents.handlers import formats
from bsante.documents.http.deps import Connector, PortsDep

router = APIRouter(prefix="/internal/documents", tags=["internal"])


def _binary(media_type: str) -> dict[int | str, dict[str, Any]]:
    return {
        200: {
            "content": {media_type: {"schema": {"type": "string", "format": "binary"}}},
            "description": "The signed artefact",
        }
    }


@router.get("/{document_id}/cda", response_class=Response, responses=_binary("application/xml"))
async def signed_cda(document_id: uuid.UUID, client: Connector, ports: PortsDep) -> Response:
    export = await formats.for_connector(ports, client.client_id, document_id, "cda")
    return Response(export.content, media_type=export.media_type)


@router.get("/{document_id}/pdf", response_class=Response, responses=_binary("application/pdf"))
async def signed_pdf(document_id: uuid.UUID, client: Connector, ports: PortsDep) -> Response:
    export = await formats.for_connector(ports, client.client_id, document_id, "pdf")
    return Response(export.content, media_type=export.media_type)


@router.get(
    "/{document_id}/cda-signature",
    response_class=Response,
    responses=_binary("application/xml"),
)
async def signed_cda_signature(
    document_id: uuid.UUID, client: Connector, ports: PortsDep
) -> Response:
    """The CDA's detached XAdES-BES signature (the cachet), for a consumer that forwards it."""
    export = await formats.for_connector(ports, client.client_id, document_id, "signature")
    return Response(export.content, media_type=export.media_type)
