"""Blob adapter on MongoDB GridFS (distributed topology), through PyMongo's async API.

Content goes to the GridFS bucket `blobs` under a fresh ObjectId; the index collection
`blob_index` maps each SHA-256 to the GridFS file holding it, with its metadata and the owners
referencing it. A write uploads first, then upserts the index entry in one atomic operation
that refreshes `written_at`: a concurrent write of the same content that loses the race deletes
its own upload. The garbage collector removes an index entry with one conditional delete
(no references, `written_at` older than the grace period), so a write that refreshed the entry
in between makes the delete match nothing. GridFS does not run in transactions, hence these
single-document atomic steps rather than a transaction. Uploads older than the grace period
that no index entry points to (a crash between upload and index) are swept; uploads still in
progress in this process are never swept, those of other processes are protected by the grace
period.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from bson import ObjectId
from gridfs import AsyncGridFSBucket
from gridfs.errors import CorruptGridFile, NoFile
from pymongo import ASCENDING, AsyncMongoClient, ReturnDocument
from pymongo.errors import DuplicateKeyError, PyMongoError

from bsante.chassis.blobs import (
    DEFAULT_GRACE,
    BlobCorrupted,
    BlobInfo,
    BlobKind,
    BlobNotFound,
    BlobStore,
    HashingLimit,
    check_sha256,
    verified,
)

BUCKET = "blobs"
INDEX = "blob_index"


def _info(doc: dict[str, Any]) -> BlobInfo:
    return BlobInfo(
        sha256=doc["_id"],
        size=int(doc["size"]),
        media_type=doc["media_type"],
        kind=doc["kind"],
        created_at=doc["created_at"],
    )


class GridFsBlobStore(BlobStore):
    def __init__(
        self, uri: str, database: str, *, clock: Callable[[], datetime] = lambda: datetime.now(UTC)
    ) -> None:
        self._clock = clock
        self._client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(
            uri, tz_aware=True, serverSelectionTimeoutMS=5000
        )
        self.db = self._client[database]
        self.bucket = AsyncGridFSBucket(self.db, bucket_name=BUCKET)
        self.index = self.db[INDEX]
        self._writing: set[ObjectId] = set()  # uploads in progress in this process

    async def start(self) -> None:
        await self.index.create_index([("file_id", ASCENDING)])
        await self.index.create_index([("written_at", ASCENDING)])

    async def close(self) -> None:
        await self._client.close()

    async def ping(self) -> bool:
        try:
            await self._client.admin.command("ping")
            return True
        except PyMongoError:
            return False

    async def put(
        self,
        chunks: AsyncIterable[bytes],
        *,
        kind: BlobKind,
        media_type: str,
        expected_sha256: str | None = None,
    ) -> BlobInfo:
        media_type = kind.check_media_type(media_type)
        if expected_sha256 is not None:
            check_sha256(expected_sha256)
        limit = HashingLimit(kind)
        file_id = ObjectId()
        upload = self.bucket.open_upload_stream_with_id(
            file_id, kind.name, metadata={"kind": kind.name}
        )
        self._writing.add(file_id)
        try:
            try:
                async for chunk in chunks:
                    limit.feed(chunk)
                    await upload.write(chunk)
                sha256 = limit.digest(expected_sha256)
                await upload.close()
            except BaseException:
                # Refused, failed or cancelled: remove the chunks already written.
                await upload.abort()
                raise
            now = self._clock()
            doc = await self._index_upsert(sha256, file_id, limit.size, media_type, kind.name, now)
        finally:
            self._writing.discard(file_id)
        if doc["file_id"] != file_id:
            await self._delete_file(file_id)  # the content was already stored
        return _info(doc)

    async def _index_upsert(
        self, sha256: str, file_id: ObjectId, size: int, media_type: str, kind: str, now: datetime
    ) -> dict[str, Any]:
        update = {
            "$set": {"written_at": now},
            "$setOnInsert": {
                "file_id": file_id,
                "size": size,
                "media_type": media_type,
                "kind": kind,
                "created_at": now,
                "refs": [],
            },
        }
        for _ in range(3):
            try:
                doc = await self.index.find_one_and_update(
                    {"_id": sha256}, update, upsert=True, return_document=ReturnDocument.AFTER
                )
            except DuplicateKeyError:
                continue  # two upserts of one new content raced: the other inserted, retry
            if doc is not None:
                return doc
        raise RuntimeError(f"could not index blob {sha256}")

    async def _delete_file(self, file_id: Any) -> None:
        try:
            await self.bucket.delete(file_id)
        except NoFile:
            pass

    async def _doc(self, sha256: str) -> dict[str, Any] | None:
        return await self.index.find_one({"_id": check_sha256(sha256)})

    async def info(self, sha256: str) -> BlobInfo:
        doc = await self._doc(sha256)
        if doc is None:
            raise BlobNotFound(sha256)
        return _info(doc)

    async def open(self, sha256: str) -> tuple[BlobInfo, AsyncIterator[bytes]]:
        doc = await self._doc(sha256)
        if doc is None:
            raise BlobNotFound(sha256)
        info = _info(doc)
        return info, verified(sha256, info.size, self._chunks(sha256, doc["file_id"]))

    async def _chunks(self, sha256: str, file_id: Any) -> AsyncIterator[bytes]:
        try:
            download = await self.bucket.open_download_stream(file_id)
        except NoFile:
            if await self._doc(sha256) is None:
                raise BlobNotFound(sha256) from None  # collected since `info`
            raise BlobCorrupted(sha256, "content missing") from None
        try:
            while chunk := await download.readchunk():
                yield chunk
        except CorruptGridFile as error:
            raise BlobCorrupted(sha256, "missing or truncated chunk") from error
        finally:
            await download.close()

    async def add_reference(self, sha256: str, owner: str) -> None:
        result = await self.index.update_one(
            {"_id": check_sha256(sha256)}, {"$addToSet": {"refs": owner}}
        )
        if result.matched_count == 0:
            raise BlobNotFound(sha256)

    async def remove_reference(self, sha256: str, owner: str) -> None:
        await self.index.update_one({"_id": check_sha256(sha256)}, {"$pull": {"refs": owner}})

    async def references(self, sha256: str) -> set[str]:
        doc = await self._doc(sha256)
        return set(doc["refs"]) if doc else set()

    async def collect_garbage(self, older_than: timedelta = DEFAULT_GRACE) -> list[str]:
        cutoff = self._clock() - older_than
        collectable = {"refs": {"$size": 0}, "written_at": {"$lt": cutoff}}
        collected = []
        async for doc in self.index.find(collectable, {"_id": 1}):
            # Re-checked atomically: a write or a reference since the find keeps the blob.
            deleted = await self.index.find_one_and_delete({"_id": doc["_id"], **collectable})
            if deleted is not None:
                await self._delete_file(deleted["file_id"])
                collected.append(str(deleted["_id"]))
        await self._sweep(cutoff)
        return sorted(collected)

    async def _sweep(self, cutoff: datetime) -> None:
        """GridFS files no index entry points to: a crash between upload and index, or
        during an upload (chunks without their files document)."""
        files = self.db[f"{BUCKET}.files"].find({"uploadDate": {"$lt": cutoff}}, {"_id": 1})
        async for grid_file in files:
            if grid_file["_id"] in self._writing:
                continue  # uploaded, about to be indexed
            if await self.index.find_one({"file_id": grid_file["_id"]}, {"_id": 1}) is None:
                await self._delete_file(grid_file["_id"])
        orphans = self.db[f"{BUCKET}.chunks"].aggregate(
            [
                {"$match": {"n": 0, "files_id": {"$lt": ObjectId.from_datetime(cutoff)}}},
                {
                    "$lookup": {
                        "from": f"{BUCKET}.files",
                        "localField": "files_id",
                        "foreignField": "_id",
                        "as": "file",
                    }
                },
                {"$match": {"file": {"$size": 0}}},
                {"$project": {"files_id": 1}},
            ]
        )
        async for chunk in await orphans:
            if chunk["files_id"] not in self._writing:
                await self.db[f"{BUCKET}.chunks"].delete_many({"files_id": chunk["files_id"]})
