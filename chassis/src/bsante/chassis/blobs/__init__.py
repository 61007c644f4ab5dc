"""Blob port: binary content addressed by its SHA-256, streamed in and out, kept while referenced.

Adapters: `files` (a directory under the data directory, embedded default) and `mongo` (GridFS
through PyMongo's async API). Every adapter

- streams writes from an async iterator of chunks, hashing while it writes, and refuses a blob
  over its kind's `max_bytes` while streaming (`BlobTooLarge`; nothing is kept);
- stores one copy per content (a second write of the same bytes returns the first blob's info);
- streams reads and verifies the hash on the way: the LAST chunk is held back until the digest
  of everything read matches, so a consumer never receives the whole of a blob whose content no
  longer matches its hash; it gets `BlobCorrupted` instead (before the final chunk). `verify()`
  hashes the whole blob first, for callers that must fail before sending anything (HTTP);
- keeps a blob while at least one owner references it. `collect_garbage(older_than)` deletes
  blobs without references whose last write is older than the grace period.

Why the grace period makes "write, then reference" safe: a blob is written first and referenced
afterwards (typically by the use case that stores the owning document), so between the two it
has no reference. Every write (a dedup hit included) refreshes the blob's `written_at`, and the
garbage collector only deletes unreferenced blobs whose `written_at` is older than the grace
period, in one atomic step per blob (a conditional delete), so a blob written less than the
grace period ago is never collected. `add_reference` on a blob that was collected raises
`BlobNotFound` (never a dangling reference): the caller writes it again. Choose a grace period
much longer than any write-then-reference sequence (default one day).
"""

from __future__ import annotations

import hashlib
import re
from abc import ABC, abstractmethod
from collections.abc import AsyncIterable, AsyncIterator, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

SHA256_PATTERN = re.compile(r"^[0-9a-f]{64}$")
DEFAULT_GRACE = timedelta(days=1)
READ_CHUNK_BYTES = 256 * 1024


class BlobError(Exception):
    """Base of the blob port's errors."""


class InvalidBlobId(BlobError, ValueError):
    """Not a SHA-256 in lowercase hexadecimal."""

    def __init__(self, sha256: str) -> None:
        super().__init__("a blob id is a SHA-256 in 64 lowercase hexadecimal digits")
        self.sha256 = sha256[:80]


class BlobNotFound(BlobError):
    def __init__(self, sha256: str) -> None:
        super().__init__(f"blob {sha256} not found")
        self.sha256 = sha256


class BlobTooLarge(BlobError):
    """The content went over its kind's limit; nothing was kept."""

    def __init__(self, kind: BlobKind) -> None:
        super().__init__(f"a {kind.name} blob is at most {kind.max_bytes} bytes")
        self.kind = kind


class BlobMediaTypeRefused(BlobError):
    def __init__(self, kind: BlobKind, media_type: str) -> None:
        accepted = ", ".join(sorted(kind.media_types))
        super().__init__(f"a {kind.name} blob is one of {accepted}, not {media_type[:100]!r}")
        self.kind, self.media_type = kind, media_type


class BlobDigestMismatch(BlobError):
    """The writer declared a SHA-256 the received content does not have; nothing was kept."""

    def __init__(self, expected: str, actual: str) -> None:
        super().__init__(f"the content's SHA-256 is {actual}, not the declared {expected}")
        self.expected, self.actual = expected, actual


class BlobCorrupted(BlobError):
    """The stored content no longer matches its hash (or its size): it is never served."""

    def __init__(self, sha256: str, reason: str) -> None:
        super().__init__(f"blob {sha256} is corrupted: {reason}")
        self.sha256, self.reason = sha256, reason


@dataclass(frozen=True)
class BlobKind:
    """What a service stores: a name, a size limit, and the accepted media types (empty = any)."""

    name: str
    max_bytes: int
    media_types: frozenset[str] = field(default_factory=frozenset)

    def check_media_type(self, media_type: str) -> str:
        """The media type without parameters, lowercased; BlobMediaTypeRefused if not accepted."""
        essence = media_type.split(";", 1)[0].strip().lower()
        if not essence or (self.media_types and essence not in self.media_types):
            raise BlobMediaTypeRefused(self, media_type)
        return essence


@dataclass(frozen=True)
class BlobInfo:
    sha256: str
    size: int
    media_type: str
    kind: str
    created_at: datetime


def check_sha256(sha256: str) -> str:
    if not SHA256_PATTERN.match(sha256):
        raise InvalidBlobId(sha256)
    return sha256


class HashingLimit:
    """Hashes and counts the chunks of one write, refusing them once over the kind's limit."""

    def __init__(self, kind: BlobKind) -> None:
        self.kind = kind
        self.size = 0
        self._hash = hashlib.sha256()

    def feed(self, chunk: bytes) -> None:
        self.size += len(chunk)
        if self.size > self.kind.max_bytes:
            raise BlobTooLarge(self.kind)
        self._hash.update(chunk)

    def digest(self, expected: str | None) -> str:
        actual = self._hash.hexdigest()
        if expected is not None and expected != actual:
            raise BlobDigestMismatch(expected, actual)
        return actual


async def verified(sha256: str, size: int, chunks: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    """Re-yield `chunks`, holding the last one back until size and digest match the blob's."""
    digest = hashlib.sha256()
    received = 0
    pending: bytes | None = None
    async for chunk in chunks:
        if not chunk:
            continue
        digest.update(chunk)
        received += len(chunk)
        if received > size:
            raise BlobCorrupted(sha256, "longer than its recorded size")
        if pending is not None:
            yield pending
        pending = chunk
    if received != size:
        raise BlobCorrupted(sha256, "shorter than its recorded size")
    if digest.hexdigest() != sha256:
        raise BlobCorrupted(sha256, "content does not match its SHA-256")
    if pending is not None:
        yield pending


async def iterate(data: bytes | Iterable[bytes]) -> AsyncIterator[bytes]:
    """Chunks for `BlobStore.put` from bytes already in memory (tests, small documents)."""
    if isinstance(data, bytes):
        for start in range(0, len(data), READ_CHUNK_BYTES):
            yield data[start : start + READ_CHUNK_BYTES]
        return
    for chunk in data:
        yield chunk


class BlobStore(ABC):
    """Content-addressed binary storage with references (see the module docstring)."""

    @abstractmethod
    async def start(self) -> None: ...

    @abstractmethod
    async def close(self) -> None: ...

    @abstractmethod
    async def ping(self) -> bool:
        """True when the storage answers (readiness)."""

    @abstractmethod
    async def put(
        self,
        chunks: AsyncIterable[bytes],
        *,
        kind: BlobKind,
        media_type: str,
        expected_sha256: str | None = None,
    ) -> BlobInfo:
        """Store the content; BlobTooLarge, BlobMediaTypeRefused or BlobDigestMismatch keep
        nothing. Storing content already there refreshes it and returns its first metadata."""

    @abstractmethod
    async def info(self, sha256: str) -> BlobInfo:
        """Metadata; BlobNotFound when absent."""

    @abstractmethod
    async def open(self, sha256: str) -> tuple[BlobInfo, AsyncIterator[bytes]]:
        """Metadata (BlobNotFound raised here) and the verified chunks (see `verified`)."""

    async def read(self, sha256: str) -> bytes:
        """The whole verified content (small blobs)."""
        _, chunks = await self.open(sha256)
        return b"".join([chunk async for chunk in chunks])

    async def verify(self, sha256: str) -> BlobInfo:
        """Hash the whole stored content now; BlobCorrupted if it no longer matches."""
        info, chunks = await self.open(sha256)
        async for _ in chunks:
            pass
        return info

    @abstractmethod
    async def add_reference(self, sha256: str, owner: str) -> None:
        """Keep the blob while `owner` references it; BlobNotFound if it is not (any longer)
        stored. Idempotent."""

    @abstractmethod
    async def remove_reference(self, sha256: str, owner: str) -> None:
        """Idempotent; the blob becomes collectable once no owner references it."""

    @abstractmethod
    async def references(self, sha256: str) -> set[str]: ...

    @abstractmethod
    async def collect_garbage(self, older_than: timedelta = DEFAULT_GRACE) -> list[str]:
        """Delete unreferenced blobs last written before now - `older_than`; their hashes."""
