"""Body limits per route (JSON 1 MiB, binary uploads their own) and blob errors as problems."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from fastapi import APIRouter, FastAPI, Request
from pydantic import BaseModel
from starlette.responses import Response

from bsante.chassis.blobs import BlobKind
from bsante.chassis.blobs.files import FileBlobStore
from bsante.chassis.blobs.http import blob_errors, blob_response
from bsante.chassis.errors import install_problem_handlers
from bsante.chassis.http import RequestContextMiddleware, body_limit

MIB = 1024 * 1024
SCAN = BlobKind("scan", max_bytes=20 * MIB, media_types=frozenset({"application/pdf"}))
PHOTO = BlobKind("photo", max_bytes=3 * MIB)


class Note(BaseModel):
    text: str


def build(blobs: FileBlobStore, max_body_bytes: int = MIB) -> FastAPI:
    router = APIRouter()

    @router.post("/notes")
    async def add_note(note: Note) -> dict[str, int]:
        return {"length": len(note.text)}

    @router.put("/scans", status_code=201, openapi_extra=body_limit(20 * MIB))
    async def upload_scan(request: Request) -> dict[str, str | int]:
        with blob_errors():
            info = await blobs.put(
                request.stream(),
                kind=SCAN,
                media_type=request.headers.get("content-type", ""),
            )
        return {"sha256": info.sha256, "size": info.size}

    @router.put("/photos", status_code=201, openapi_extra=body_limit(20 * MIB))
    async def upload_photo(request: Request) -> dict[str, str]:
        with blob_errors():
            info = await blobs.put(request.stream(), kind=PHOTO, media_type="image/jpeg")
        return {"sha256": info.sha256}

    @router.get("/scans/{sha256}")
    async def download_scan(sha256: str) -> Response:
        return await blob_response(blobs, sha256)

    app = FastAPI()
    install_problem_handlers(app)
    app.add_middleware(RequestContextMiddleware, service="t", max_body_bytes=max_body_bytes)
    app.include_router(router)
    return app


@pytest.fixture
async def blobs(tmp_path: Path) -> AsyncIterator[FileBlobStore]:
    store = FileBlobStore(tmp_path / "blobs")
    await store.start()
    yield store
    await store.close()


@pytest.fixture
async def client(blobs: FileBlobStore) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=build(blobs))
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
        yield http


def pdf(size: int) -> bytes:
    return (b"%PDF-" + bytes(range(256)) * (size // 256 + 1))[:size]


async def streamed(data: bytes) -> AsyncIterator[bytes]:
    """A body without Content-Length (chunked): the limit is enforced while it streams."""
    for start in range(0, len(data), 64 * 1024):
        yield data[start : start + 64 * 1024]


def assert_problem(response: httpx.Response, status: int, kind: str | None = None) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["status"] == status
    if kind is not None:
        assert response.json()["type"].endswith("/" + kind)


async def test_json_route_keeps_the_default_limit(client: httpx.AsyncClient) -> None:
    ok = await client.post("/notes", json={"text": "x" * 1000})
    assert ok.status_code == 200
    big = b'{"text": "' + b"x" * (2 * MIB) + b'"}'
    declared = await client.post(
        "/notes", content=big, headers={"content-type": "application/json"}
    )
    assert_problem(declared, 413)
    assert str(MIB) in declared.json()["detail"]
    chunked = await client.post(
        "/notes", content=streamed(big), headers={"content-type": "application/json"}
    )
    assert_problem(chunked, 413)


async def test_binary_route_takes_more_than_the_json_limit(
    client: httpx.AsyncClient, blobs: FileBlobStore
) -> None:
    content = pdf(2 * MIB)
    for body in (content, streamed(content)):
        response = await client.put(
            "/scans", content=body, headers={"content-type": "application/pdf"}
        )
        assert response.status_code == 201, response.text
        assert response.json() == {
            "sha256": hashlib.sha256(content).hexdigest(),
            "size": len(content),
        }
    assert await blobs.read(hashlib.sha256(content).hexdigest()) == content


async def test_binary_route_refuses_above_its_own_limit(
    client: httpx.AsyncClient, blobs: FileBlobStore
) -> None:
    content = pdf(20 * MIB + 1)
    headers = {"content-type": "application/pdf"}
    declared = await client.put("/scans", content=content, headers=headers)
    assert_problem(declared, 413)
    assert str(20 * MIB) in declared.json()["detail"]
    chunked = await client.put("/scans", content=streamed(content), headers=headers)
    assert_problem(chunked, 413)
    assert list(blobs.root.glob("??/??/*")) == [] and list((blobs.root / ".tmp").iterdir()) == []


async def test_blob_kind_limit_and_media_type_are_problems(
    client: httpx.AsyncClient, blobs: FileBlobStore
) -> None:
    over_kind = await client.put("/photos", content=streamed(b"j" * (3 * MIB + 1)))
    assert_problem(over_kind, 413, "blob-too-large")
    html = await client.put("/scans", content=b"<html>", headers={"content-type": "text/html"})
    assert_problem(html, 415, "unsupported-media-type")
    assert html.json()["errors"][0]["field"] == "content-type"
    assert list(blobs.root.glob("??/??/*")) == []


async def test_download_verifies_before_sending(
    client: httpx.AsyncClient, blobs: FileBlobStore
) -> None:
    content = pdf(300_000)
    sha256 = (
        await client.put("/scans", content=content, headers={"content-type": "application/pdf"})
    ).json()["sha256"]
    ok = await client.get(f"/scans/{sha256}")
    assert ok.status_code == 200 and ok.content == content
    assert ok.headers["content-type"] == "application/pdf"
    assert ok.headers["etag"] == f'"{sha256}"'

    path = blobs.path_of(sha256)
    corrupted = bytearray(path.read_bytes())
    corrupted[-1] ^= 0xFF
    path.write_bytes(bytes(corrupted))
    refused = await client.get(f"/scans/{sha256}")
    assert_problem(refused, 409, "blob-corrupted")

    missing = await client.get(f"/scans/{hashlib.sha256(b'none').hexdigest()}")
    assert_problem(missing, 404, "blob-not-found")
    malformed = await client.get("/scans/not-a-hash")
    assert_problem(malformed, 422, "domain-rule")
    assert malformed.json()["errors"][0]["field"] == "sha256"


async def test_route_limit_holds_through_a_mounting_gateway(blobs: FileBlobStore) -> None:
    """The embedded gateway mounts the services behind its own (smaller) limit."""
    gateway = FastAPI()
    install_problem_handlers(gateway)
    gateway.add_middleware(RequestContextMiddleware, service="gw", max_body_bytes=64 * 1024)
    gateway.mount("/api/docs", build(blobs))
    transport = httpx.ASGITransport(app=gateway)
    async with httpx.AsyncClient(transport=transport, base_url="http://gw") as http:
        content = pdf(2 * MIB)
        ok = await http.put(
            "/api/docs/scans", content=content, headers={"content-type": "application/pdf"}
        )
        assert ok.status_code == 201, ok.text
        note = await http.post("/api/docs/notes", json={"text": "x" * (100 * 1024)})
        assert_problem(note, 413)
        assert str(64 * 1024) in note.json()["detail"]
