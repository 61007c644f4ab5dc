"""Choose the blob adapter from its URL: `file://var/blobs` (a directory) or `mongodb://...`."""

from __future__ import annotations

from urllib.parse import urlsplit

from bsante.chassis.blobs import BlobStore


def blob_store_from_url(url: str, *, database: str = "") -> BlobStore:
    """`file://<dir>` (relative like `file://var/blobs`, absolute like `file:///srv/blobs`), or a
    MongoDB URI with the database holding the GridFS bucket."""
    scheme = urlsplit(url).scheme
    if scheme == "file":
        from bsante.chassis.blobs.files import FileBlobStore

        directory = url.removeprefix("file://")
        if not directory:
            raise ValueError("a file blob URL names a directory: file://var/blobs")
        return FileBlobStore(directory)
    if scheme in {"mongodb", "mongodb+srv"}:
        from bsante.chassis.blobs.mongo import GridFsBlobStore

        if not database:
            raise ValueError("a MongoDB blob store needs its database name")
        return GridFsBlobStore(url, database)
    raise ValueError(f"unsupported blob URL scheme {scheme!r} (file or mongodb)")
