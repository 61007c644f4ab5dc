"""Blob adapter on the local file system (embedded topology): one file per content.

Layout under the root: `ab/cd/<sha256>` holds the content (two levels of fan-out by hash
prefix keep directories small), `.tmp/` the writes in progress, and `blobs.db` (SQLite) the
metadata and references.

A write streams into a temporary file under `.tmp/` (inside the root, so on the same file system
as its final place: the rename is atomic), fsyncs it, renames it to its hash and fsyncs the
destination directory, then commits the metadata row. Rename and commit happen under the
index's write lock, as does the garbage collector's delete, so a collection and a write of the
same content never interleave. A crash leaves at worst a temporary or unindexed file, which the
next collection removes; never an index row without its file.

One directory belongs to one `FileBlobStore` (one service in one process), as one SQLite file
belongs to one store: the collector's file deletions are serialised with writes by this
instance's lock.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import uuid
from collections.abc import AsyncIterable, AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, BinaryIO

import aiosqlite

from bsante.chassis.blobs import (
    DEFAULT_GRACE,
    READ_CHUNK_BYTES,
    BlobCorrupted,
    BlobInfo,
    BlobKind,
    BlobNotFound,
    BlobStore,
    HashingLimit,
    check_sha256,
    verified,
)

SCHEMA = """
CREATE TABLE IF NOT EXISTS blobs (
    sha256 TEXT PRIMARY KEY,
    size INTEGER NOT NULL,
    media_type TEXT NOT NULL,
    kind TEXT NOT NULL,
    created_at TEXT NOT NULL,
    written_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS blobs_written_at ON blobs (written_at);
CREATE TABLE IF NOT EXISTS blob_references (
    sha256 TEXT NOT NULL,
    owner TEXT NOT NULL,
    PRIMARY KEY (sha256, owner)
);
"""
TMP = ".tmp"
INDEX = "blobs.db"


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write(handle: BinaryIO, chunk: bytes) -> None:
    handle.write(chunk)


def _seal(handle: BinaryIO) -> None:
    handle.flush()
    os.fsync(handle.fileno())
    handle.close()


def _info(row: Any) -> BlobInfo:
    return BlobInfo(
        sha256=row[0],
        size=int(row[1]),
        media_type=row[2],
        kind=row[3],
        created_at=datetime.fromisoformat(row[4]),
    )


class FileBlobStore(BlobStore):
    def __init__(
        self, root: str | Path, *, clock: Callable[[], datetime] = lambda: datetime.now(UTC)
    ) -> None:
        self.root = Path(root)
        self._clock = clock
        self._conn: aiosqlite.Connection | None = None
        self._lock = asyncio.Lock()
        self._writing: set[Path] = set()  # temporary files of the writes in progress

    async def start(self) -> None:
        await asyncio.to_thread((self.root / TMP).mkdir, parents=True, exist_ok=True)
        conn = await aiosqlite.connect(self.root / INDEX, isolation_level=None)
        await conn.execute("PRAGMA journal_mode=WAL")
        await conn.execute("PRAGMA synchronous=FULL")
        await conn.execute("PRAGMA busy_timeout=10000")
        await conn.executescript(SCHEMA)
        self._conn = conn

    async def close(self) -> None:
        if self._conn is not None:
            await self._conn.close()
            self._conn = None

    async def _rollback(self) -> None:
        # A cancellation can land before BEGIN ran: ROLLBACK then fails ("no transaction is
        # active"), and that error must not replace the CancelledError (the task would
        # survive its cancellation and the service never stop).
        with contextlib.suppress(aiosqlite.Error):
            await self.conn.execute("ROLLBACK")

    @property
    def conn(self) -> aiosqlite.Connection:
        if self._conn is None:
            raise RuntimeError("FileBlobStore.start() was not awaited")
        return self._conn

    async def ping(self) -> bool:
        try:
            async with self._lock, self.conn.execute("SELECT 1") as cursor:
                return await cursor.fetchone() is not None
        except (aiosqlite.Error, RuntimeError):
            return False

    def path_of(self, sha256: str) -> Path:
        """Where the content of `sha256` lives (tests flip its bytes)."""
        return self.root / sha256[:2] / sha256[2:4] / sha256

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
        tmp = self.root / TMP / f"{uuid.uuid4().hex}.part"
        self._writing.add(tmp)
        try:
            handle: BinaryIO = await asyncio.to_thread(tmp.open, "xb")
            try:
                async for chunk in chunks:
                    limit.feed(chunk)
                    await asyncio.to_thread(_write, handle, chunk)
            except BaseException:
                await asyncio.to_thread(handle.close)
                raise
            await asyncio.to_thread(_seal, handle)
            sha256 = limit.digest(expected_sha256)
            return await self._commit(tmp, sha256, limit.size, media_type, kind.name)
        finally:
            # Refused, failed or cancelled: nothing of this write is kept.
            await asyncio.to_thread(tmp.unlink, missing_ok=True)
            self._writing.discard(tmp)

    async def _commit(
        self, tmp: Path, sha256: str, size: int, media_type: str, kind: str
    ) -> BlobInfo:
        final = self.path_of(sha256)
        now = self._clock().isoformat(timespec="microseconds")
        async with self._lock:
            await self.conn.execute("BEGIN IMMEDIATE")
            try:
                await asyncio.to_thread(self._place, tmp, final)
                # A dedup hit keeps the first metadata and refreshes written_at (the grace).
                await self.conn.execute(
                    "INSERT INTO blobs (sha256, size, media_type, kind, created_at, written_at)"
                    " VALUES (?, ?, ?, ?, ?, ?)"
                    " ON CONFLICT (sha256) DO UPDATE SET written_at = excluded.written_at",
                    (sha256, size, media_type, kind, now, now),
                )
                async with self.conn.execute(
                    "SELECT sha256, size, media_type, kind, created_at FROM blobs WHERE sha256 = ?",
                    (sha256,),
                ) as cursor:
                    row = await cursor.fetchone()
                await self.conn.execute("COMMIT")
            except BaseException:
                await self._rollback()
                raise
        return _info(row)

    def _place(self, tmp: Path, final: Path) -> None:
        created = [d for d in (final.parent.parent, final.parent) if not d.exists()]
        final.parent.mkdir(parents=True, exist_ok=True)
        # Replacing an existing copy with the bytes just hashed also repairs a corrupted one.
        os.replace(tmp, final)
        _fsync_dir(final.parent)
        for directory in created:
            _fsync_dir(directory.parent)

    async def _row(self, sha256: str) -> Any:
        async with (
            self._lock,
            self.conn.execute(
                "SELECT sha256, size, media_type, kind, created_at FROM blobs WHERE sha256 = ?",
                (check_sha256(sha256),),
            ) as cursor,
        ):
            return await cursor.fetchone()

    async def info(self, sha256: str) -> BlobInfo:
        row = await self._row(sha256)
        if row is None:
            raise BlobNotFound(sha256)
        return _info(row)

    async def open(self, sha256: str) -> tuple[BlobInfo, AsyncIterator[bytes]]:
        info = await self.info(sha256)
        return info, verified(sha256, info.size, self._chunks(sha256))

    async def _chunks(self, sha256: str) -> AsyncIterator[bytes]:
        try:
            handle: BinaryIO = await asyncio.to_thread(self.path_of(sha256).open, "rb")
        except FileNotFoundError:
            if await self._row(sha256) is None:
                raise BlobNotFound(sha256) from None  # collected since `info`
            raise BlobCorrupted(sha256, "content missing") from None
        try:
            while chunk := await asyncio.to_thread(handle.read, READ_CHUNK_BYTES):
                yield chunk
        finally:
            await asyncio.to_thread(handle.close)

    async def add_reference(self, sha256: str, owner: str) -> None:
        check_sha256(sha256)
        async with self._lock:
            # One statement: the blob exists when the reference is recorded, or nothing is.
            cursor = await self.conn.execute(
                "INSERT OR IGNORE INTO blob_references (sha256, owner)"
                " SELECT sha256, ? FROM blobs WHERE sha256 = ?",
                (owner, sha256),
            )
            inserted = cursor.rowcount
            await cursor.close()
            if inserted == 0:
                async with self.conn.execute(
                    "SELECT 1 FROM blobs WHERE sha256 = ?", (sha256,)
                ) as check:
                    if await check.fetchone() is None:
                        raise BlobNotFound(sha256)

    async def remove_reference(self, sha256: str, owner: str) -> None:
        async with self._lock:
            await self.conn.execute(
                "DELETE FROM blob_references WHERE sha256 = ? AND owner = ?",
                (check_sha256(sha256), owner),
            )

    async def references(self, sha256: str) -> set[str]:
        async with (
            self._lock,
            self.conn.execute(
                "SELECT owner FROM blob_references WHERE sha256 = ?", (check_sha256(sha256),)
            ) as cursor,
        ):
            return {row[0] async for row in cursor}

    async def collect_garbage(self, older_than: timedelta = DEFAULT_GRACE) -> list[str]:
        cutoff = self._clock() - older_than
        async with self._lock:
            await self.conn.execute("BEGIN IMMEDIATE")
            try:
                async with self.conn.execute(
                    "DELETE FROM blobs WHERE written_at < ? AND NOT EXISTS"
                    " (SELECT 1 FROM blob_references r WHERE r.sha256 = blobs.sha256)"
                    " RETURNING sha256",
                    (cutoff.isoformat(timespec="microseconds"),),
                ) as cursor:
                    collected = [row[0] async for row in cursor]
                await self.conn.execute("COMMIT")
            except BaseException:
                await self._rollback()
                raise
            # Rows first, files after (still under the lock, so no write of the same content
            # runs in between): a crash here leaves unindexed files, swept below next time.
            async with self.conn.execute("SELECT sha256 FROM blobs") as cursor:
                indexed = {row[0] async for row in cursor}
            writing = set(self._writing)
            await asyncio.to_thread(self._sweep, set(collected), indexed, writing, cutoff)
        return sorted(collected)

    def _sweep(
        self, collected: set[str], indexed: set[str], writing: set[Path], cutoff: datetime
    ) -> None:
        for sha256 in collected:
            self.path_of(sha256).unlink(missing_ok=True)
        limit = cutoff.timestamp()
        for tmp in (self.root / TMP).iterdir():
            # A write abandoned by a crash (or by another process, past the grace period).
            if tmp not in writing and tmp.stat().st_mtime < limit:
                tmp.unlink(missing_ok=True)
        for path in self.root.glob("??/??/*"):
            if path.name not in indexed and path.stat().st_mtime < limit:
                path.unlink(missing_ok=True)
