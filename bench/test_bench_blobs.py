"""Blob figures: write then read (verified) a 5 MiB blob with the file adapter, fsyncs included."""

from __future__ import annotations

import asyncio
import itertools
import os
from pathlib import Path
from typing import Any

from bsante.chassis.blobs import BlobKind, iterate
from bsante.chassis.blobs.files import FileBlobStore

SIZE = 5 * 1024 * 1024
KIND = BlobKind("document", max_bytes=20 * 1024 * 1024)
CHUNK = 64 * 1024  # what an HTTP server hands over per receive


def _content(n: int) -> bytes:
    # Distinct content per round, so every write is a real write and not a dedup hit.
    return n.to_bytes(8, "big") + os.urandom(SIZE - 8)


async def _write(store: FileBlobStore, data: bytes) -> str:
    chunks = (data[i : i + CHUNK] for i in range(0, len(data), CHUNK))
    return (await store.put(iterate(chunks), kind=KIND, media_type="application/pdf")).sha256


def test_write_5mib(benchmark: Any, tmp_path: Path) -> None:
    rounds = itertools.count()

    async def run(data: bytes) -> str:
        store = FileBlobStore(tmp_path / "blobs")
        await store.start()
        try:
            return await _write(store, data)
        finally:
            await store.close()

    def setup() -> tuple[tuple[bytes], dict[str, object]]:
        return (_content(next(rounds)),), {}

    benchmark.pedantic(lambda data: asyncio.run(run(data)), setup=setup, rounds=10)


def test_read_5mib(benchmark: Any, tmp_path: Path) -> None:
    data = _content(0)

    async def prepare() -> str:
        store = FileBlobStore(tmp_path / "blobs")
        await store.start()
        try:
            return await _write(store, data)
        finally:
            await store.close()

    sha256 = asyncio.run(prepare())

    async def run() -> int:
        store = FileBlobStore(tmp_path / "blobs")
        await store.start()
        try:
            return len(await store.read(sha256))
        finally:
            await store.close()

    assert benchmark.pedantic(lambda: asyncio.run(run()), rounds=10) == SIZE
