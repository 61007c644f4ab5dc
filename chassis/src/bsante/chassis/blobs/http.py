"""HTTP edge of the blob port: blob errors as problem+json, and verified blob responses."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from contextlib import contextmanager

from starlette.responses import StreamingResponse

from bsante.chassis.blobs import (
    BlobCorrupted,
    BlobDigestMismatch,
    BlobError,
    BlobMediaTypeRefused,
    BlobNotFound,
    BlobStore,
    BlobTooLarge,
    InvalidBlobId,
)
from bsante.chassis.errors import DomainError, NotFound


class BlobContentTooLarge(DomainError):
    status = 413
    kind = "blob-too-large"


class BlobMediaTypeUnsupported(DomainError):
    status = 415
    kind = "unsupported-media-type"


class BlobContentCorrupted(DomainError):
    """The stored bytes no longer match their hash: refused rather than served. 409: the request
    is fine, the resource's current state prevents serving it (a client must not retry as is)."""

    status = 409
    kind = "blob-corrupted"


class BlobNotFoundProblem(NotFound):
    kind = "blob-not-found"


def as_domain_error(error: BlobError) -> DomainError:
    """The problem a blob error is reported as (413, 415, 404, 409, or 422 naming the field)."""
    if isinstance(error, BlobTooLarge):
        return BlobContentTooLarge(str(error))
    if isinstance(error, BlobMediaTypeRefused):
        return BlobMediaTypeUnsupported(
            str(error), errors=[{"field": "content-type", "message": str(error)}]
        )
    if isinstance(error, BlobNotFound):
        return BlobNotFoundProblem(str(error))
    if isinstance(error, BlobCorrupted):
        return BlobContentCorrupted(str(error))
    if isinstance(error, InvalidBlobId | BlobDigestMismatch):
        return DomainError(str(error), errors=[{"field": "sha256", "message": str(error)}])
    return DomainError(str(error))


@contextmanager
def blob_errors() -> Iterator[None]:
    """Around a route's blob calls: blob errors leave as DomainErrors (problem+json)."""
    try:
        yield
    except BlobError as error:
        raise as_domain_error(error) from error


async def blob_response(store: BlobStore, sha256: str) -> StreamingResponse:
    """Stream a blob after checking its whole content, so corruption is a 409 problem before
    any byte is sent. Should the bytes change between the check and the stream, the stream's
    own check still refuses the last chunk and the connection ends short of Content-Length."""
    with blob_errors():
        info = await store.verify(sha256)
        _, chunks = await store.open(sha256)
    digest = base64.b64encode(bytes.fromhex(info.sha256)).decode()
    return StreamingResponse(
        chunks,
        media_type=info.media_type,
        headers={
            "Content-Length": str(info.size),
            "ETag": f'"{info.sha256}"',
            "Repr-Digest": f"sha-256=:{digest}:",
        },
    )
