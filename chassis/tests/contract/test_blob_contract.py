"""One contract suite for every blob adapter: files always, GridFS when MONGODB_URI is set."""

from __future__ import annotations

import asyncio
import hashlib
import os
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bsante.chassis.blobs import (
    BlobCorrupted,
    BlobDigestMismatch,
    BlobKind,
    BlobMediaTypeRefused,
    BlobNotFound,
    BlobStore,
    BlobTooLarge,
    InvalidBlobId,
    iterate,
)
from bsante.chassis.blobs.factory import blob_store_from_url
from bsante.chassis.blobs.files import FileBlobStore

MONGODB_URI = os.environ.get("MONGODB_URI")
PDF = BlobKind("document", max_bytes=1_000_000, media_types=frozenset({"application/pdf"}))
ANY = BlobKind("attachment", max_bytes=1_000_000)
CONTENT = b"%PDF-1.7 " + bytes(range(256)) * 1200  # several read chunks (~300 kB)


class Clock:
    """The adapters' clock, moved by the tests instead of waiting."""

    def __init__(self) -> None:
        self.current = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.current

    def advance(self, delta: timedelta) -> None:
        self.current += delta


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture(params=["files", pytest.param("gridfs", marks=pytest.mark.mongodb)])
async def blobs(
    request: pytest.FixtureRequest, tmp_path: Path, clock: Clock
) -> AsyncIterator[BlobStore]:
    adapter: BlobStore
    if request.param == "files":
        adapter = FileBlobStore(tmp_path / "blobs", clock=clock)
    else:
        if not MONGODB_URI:
            pytest.skip("MONGODB_URI not set: GridFS variant of the blob contract skipped")
        from bsante.chassis.blobs.mongo import GridFsBlobStore

        adapter = GridFsBlobStore(MONGODB_URI, f"bsante_blobs_{uuid.uuid4().hex[:8]}", clock=clock)
    await adapter.start()
    try:
        yield adapter
    finally:
        if request.param == "gridfs":
            from bsante.chassis.blobs.mongo import GridFsBlobStore

            assert isinstance(adapter, GridFsBlobStore)
            await adapter._client.drop_database(adapter.db.name)
        await adapter.close()


async def stored_copies(blobs: BlobStore) -> int:
    """How many copies of content the adapter holds (files, or GridFS files)."""
    if isinstance(blobs, FileBlobStore):
        return len([p for p in blobs.root.glob("??/??/*") if p.is_file()])
    from bsante.chassis.blobs.mongo import GridFsBlobStore

    assert isinstance(blobs, GridFsBlobStore)
    return await blobs.db["blobs.files"].count_documents({})


async def leftovers(blobs: BlobStore) -> int:
    """Partial writes left behind (temporary files, or GridFS chunks without their file)."""
    if isinstance(blobs, FileBlobStore):
        return len(list((blobs.root / ".tmp").iterdir()))
    from bsante.chassis.blobs.mongo import GridFsBlobStore

    assert isinstance(blobs, GridFsBlobStore)
    ids = await blobs.db["blobs.files"].distinct("_id")
    return await blobs.db["blobs.chunks"].count_documents({"files_id": {"$nin": ids}})


async def flip_one_byte(blobs: BlobStore, sha256: str, position: int = 1000) -> None:
    if isinstance(blobs, FileBlobStore):
        path = blobs.path_of(sha256)
        data = bytearray(path.read_bytes())
        data[position] ^= 0x01
        path.write_bytes(bytes(data))
        return
    from bsante.chassis.blobs.mongo import GridFsBlobStore

    assert isinstance(blobs, GridFsBlobStore)
    doc = await blobs.index.find_one({"_id": sha256})
    assert doc is not None
    chunks = blobs.db["blobs.chunks"]
    chunk = await chunks.find_one({"files_id": doc["file_id"], "n": 0})
    assert chunk is not None
    data = bytearray(chunk["data"])
    data[position] ^= 0x01
    await chunks.update_one({"_id": chunk["_id"]}, {"$set": {"data": bytes(data)}})


async def test_round_trip_streams_content_and_metadata(blobs: BlobStore) -> None:
    info = await blobs.put(iterate(CONTENT), kind=PDF, media_type="Application/PDF; q=1")
    assert info.sha256 == hashlib.sha256(CONTENT).hexdigest()
    assert (info.size, info.media_type, info.kind) == (len(CONTENT), "application/pdf", "document")
    assert await blobs.info(info.sha256) == info
    opened, chunks = await blobs.open(info.sha256)
    received = [chunk async for chunk in chunks]
    assert opened == info and len(received) > 1 and b"".join(received) == CONTENT
    assert await blobs.read(info.sha256) == CONTENT
    assert await blobs.verify(info.sha256) == info


async def test_empty_blob(blobs: BlobStore) -> None:
    info = await blobs.put(iterate(b""), kind=ANY, media_type="text/plain")
    assert info.size == 0 and info.sha256 == hashlib.sha256(b"").hexdigest()
    assert await blobs.read(info.sha256) == b""


async def test_same_content_is_stored_once_and_keeps_its_first_metadata(
    blobs: BlobStore,
) -> None:
    first = await blobs.put(iterate(CONTENT), kind=PDF, media_type="application/pdf")
    second = await blobs.put(iterate([CONTENT[:10], CONTENT[10:]]), kind=ANY, media_type="x/y")
    assert second == first
    other = await blobs.put(iterate(b"other"), kind=ANY, media_type="text/plain")
    assert other.sha256 != first.sha256
    assert await stored_copies(blobs) == 2
    assert await leftovers(blobs) == 0


async def test_over_the_kind_limit_is_refused_while_streaming_and_nothing_is_kept(
    blobs: BlobStore,
) -> None:
    small = BlobKind("photo", max_bytes=1000)
    consumed = 0

    async def endless() -> AsyncIterator[bytes]:
        nonlocal consumed
        while True:
            consumed += 1
            yield b"x" * 300

    with pytest.raises(BlobTooLarge, match="at most 1000 bytes"):
        await blobs.put(endless(), kind=small, media_type="image/jpeg")
    assert consumed == 4  # stopped at the first chunk over the limit, not at the end
    exactly = await blobs.put(iterate(b"y" * 1000), kind=small, media_type="image/jpeg")
    assert exactly.size == 1000
    assert await stored_copies(blobs) == 1
    assert await leftovers(blobs) == 0


async def test_refused_media_type_and_wrong_declared_digest_keep_nothing(
    blobs: BlobStore,
) -> None:
    with pytest.raises(BlobMediaTypeRefused):
        await blobs.put(iterate(CONTENT), kind=PDF, media_type="text/html")
    with pytest.raises(BlobDigestMismatch):
        await blobs.put(
            iterate(CONTENT), kind=PDF, media_type="application/pdf", expected_sha256="0" * 64
        )
    declared = hashlib.sha256(CONTENT).hexdigest()
    info = await blobs.put(
        iterate(CONTENT), kind=PDF, media_type="application/pdf", expected_sha256=declared
    )
    assert info.sha256 == declared
    assert await stored_copies(blobs) == 1
    assert await leftovers(blobs) == 0


async def test_a_failing_source_keeps_nothing(blobs: BlobStore) -> None:
    async def broken() -> AsyncIterator[bytes]:
        yield b"partial content"
        raise ConnectionResetError("client went away")

    with pytest.raises(ConnectionResetError):
        await blobs.put(broken(), kind=ANY, media_type="text/plain")
    assert await stored_copies(blobs) == 0
    assert await leftovers(blobs) == 0


async def test_unknown_and_malformed_ids(blobs: BlobStore) -> None:
    missing = hashlib.sha256(b"never stored").hexdigest()
    with pytest.raises(BlobNotFound):
        await blobs.info(missing)
    with pytest.raises(BlobNotFound):
        await blobs.open(missing)
    with pytest.raises(BlobNotFound):
        await blobs.add_reference(missing, "documents/1")
    for bad in ("../../etc/passwd", "A" * 64, "abc"):
        with pytest.raises(InvalidBlobId):
            await blobs.info(bad)


async def test_flipped_byte_is_detected_and_the_last_chunk_never_served(
    blobs: BlobStore,
) -> None:
    info = await blobs.put(iterate(CONTENT), kind=PDF, media_type="application/pdf")
    await flip_one_byte(blobs, info.sha256)
    with pytest.raises(BlobCorrupted):
        await blobs.verify(info.sha256)
    with pytest.raises(BlobCorrupted):
        await blobs.read(info.sha256)
    _, chunks = await blobs.open(info.sha256)
    served = bytearray()
    with pytest.raises(BlobCorrupted, match="does not match its SHA-256"):
        async for chunk in chunks:
            served += chunk
    assert 0 < len(served) < len(CONTENT)  # streamed, but never the whole content
    # Writing the same content again repairs it (files) or is still detected (never served).
    await blobs.put(iterate(CONTENT), kind=PDF, media_type="application/pdf")
    if isinstance(blobs, FileBlobStore):
        assert await blobs.read(info.sha256) == CONTENT


async def test_truncated_content_is_detected(blobs: BlobStore) -> None:
    if not isinstance(blobs, FileBlobStore):
        pytest.skip("truncation is the file adapter's failure; GridFS reports missing chunks")
    info = await blobs.put(iterate(CONTENT), kind=PDF, media_type="application/pdf")
    path = blobs.path_of(info.sha256)
    path.write_bytes(path.read_bytes()[:-1])
    with pytest.raises(BlobCorrupted, match="shorter"):
        await blobs.read(info.sha256)


async def test_garbage_collection_keeps_referenced_and_recent_blobs(
    blobs: BlobStore, clock: Clock
) -> None:
    kept = await blobs.put(iterate(b"referenced"), kind=ANY, media_type="text/plain")
    dropped = await blobs.put(iterate(b"unreferenced"), kind=ANY, media_type="text/plain")
    released = await blobs.put(iterate(b"released"), kind=ANY, media_type="text/plain")
    await blobs.add_reference(kept.sha256, "documents/1")
    await blobs.add_reference(kept.sha256, "documents/1")  # idempotent
    await blobs.add_reference(kept.sha256, "documents/2")
    await blobs.add_reference(released.sha256, "documents/3")
    await blobs.remove_reference(released.sha256, "documents/3")
    await blobs.remove_reference(kept.sha256, "documents/2")
    await blobs.remove_reference(kept.sha256, "documents/404")  # idempotent
    assert await blobs.references(kept.sha256) == {"documents/1"}

    # Within the grace period nothing is collected, referenced or not.
    clock.advance(timedelta(minutes=59))
    assert await blobs.collect_garbage(older_than=timedelta(hours=1)) == []
    # Past it, only the unreferenced go.
    clock.advance(timedelta(minutes=2))
    collected = await blobs.collect_garbage(older_than=timedelta(hours=1))
    assert collected == sorted([dropped.sha256, released.sha256])
    assert await blobs.read(kept.sha256) == b"referenced"
    for sha256 in collected:
        with pytest.raises(BlobNotFound):
            await blobs.info(sha256)
        with pytest.raises(BlobNotFound):
            await blobs.add_reference(sha256, "documents/late")  # never a dangling reference
    assert await stored_copies(blobs) == 1


async def test_rewrite_restarts_the_grace_period(blobs: BlobStore, clock: Clock) -> None:
    """Content written long ago and written again (about to be referenced by a new owner) is
    kept for a whole grace period from the second write, so the new reference finds it."""
    info = await blobs.put(iterate(b"reused"), kind=ANY, media_type="text/plain")
    clock.advance(timedelta(hours=2))
    again = await blobs.put(iterate(b"reused"), kind=ANY, media_type="text/plain")
    assert again.created_at == info.created_at
    assert await blobs.collect_garbage(older_than=timedelta(hours=1)) == []
    await blobs.add_reference(info.sha256, "documents/9")
    clock.advance(timedelta(days=30))
    assert await blobs.collect_garbage(older_than=timedelta(hours=1)) == []
    assert await blobs.read(info.sha256) == b"reused"


@pytest.mark.parametrize("writers", [8])
async def test_concurrent_writes_of_the_same_content(blobs: BlobStore, writers: int) -> None:
    def chunks(n: int) -> Callable[[], AsyncIterator[bytes]]:
        async def produce() -> AsyncIterator[bytes]:
            for start in range(0, len(CONTENT), 10_000 + n):
                await asyncio.sleep(0)  # interleave the writers chunk by chunk
                yield CONTENT[start : start + 10_000 + n]

        return produce

    results = await asyncio.gather(
        *(blobs.put(chunks(n)(), kind=PDF, media_type="application/pdf") for n in range(writers))
    )
    assert len({r.sha256 for r in results}) == 1
    assert len({r.created_at for r in results}) == 1
    assert await blobs.read(results[0].sha256) == CONTENT
    assert await stored_copies(blobs) == 1
    assert await leftovers(blobs) == 0


async def test_factory(tmp_path: Path) -> None:
    store = blob_store_from_url(f"file://{tmp_path}/blobs")
    assert isinstance(store, FileBlobStore) and store.root == tmp_path / "blobs"
    assert isinstance(blob_store_from_url("file://var/blobs"), FileBlobStore)
    with pytest.raises(ValueError, match="unsupported blob URL"):
        blob_store_from_url("s3://bucket")
    with pytest.raises(ValueError, match="database"):
        blob_store_from_url("mongodb://localhost:27017")
    with pytest.raises(ValueError, match="directory"):
        blob_store_from_url("file://")


async def test_collection_removes_what_a_crashed_write_left(blobs: BlobStore) -> None:
    """A write killed before its rename leaves a temporary file; killed after the rename but
    before the index commit, an unindexed content file. Neither is ever served; both go."""
    if not isinstance(blobs, FileBlobStore):
        pytest.skip("the GridFS variant's leftovers are chunks, swept by the same call")
    kept = await blobs.put(iterate(b"indexed"), kind=ANY, media_type="text/plain")
    await blobs.add_reference(kept.sha256, "documents/1")
    partial = blobs.root / ".tmp" / "crashed.part"
    partial.write_bytes(b"half a scan")
    orphan_sha = hashlib.sha256(b"renamed, never indexed").hexdigest()
    orphan = blobs.path_of(orphan_sha)
    orphan.parent.mkdir(parents=True, exist_ok=True)
    orphan.write_bytes(b"renamed, never indexed")
    with pytest.raises(BlobNotFound):
        await blobs.info(orphan_sha)
    long_ago = (datetime.now(UTC) - timedelta(days=3)).timestamp()
    for path in (partial, orphan, blobs.path_of(kept.sha256)):
        os.utime(path, (long_ago, long_ago))
    assert await blobs.collect_garbage(older_than=timedelta(days=1)) == []
    assert not partial.exists() and not orphan.exists()
    assert await blobs.read(kept.sha256) == b"indexed"


async def test_a_write_racing_the_collector_is_never_lost(blobs: BlobStore, clock: Clock) -> None:
    """Old unreferenced content written again while the collector runs: whichever goes first,
    the writer's blob exists afterwards, so the reference it adds next holds."""
    for n in range(10):
        content = f"re-uploaded scan {n}".encode()
        await blobs.put(iterate(content), kind=ANY, media_type="text/plain")
        clock.advance(timedelta(hours=2))
        info, _ = await asyncio.gather(
            blobs.put(iterate([content[:5], content[5:]]), kind=ANY, media_type="text/plain"),
            blobs.collect_garbage(older_than=timedelta(hours=1)),
        )
        await blobs.add_reference(info.sha256, f"documents/{n}")
        assert await blobs.read(info.sha256) == content
