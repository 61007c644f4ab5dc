"""Choose the store adapter from its URL: `sqlite:///var/patient.db` or `mongodb://...`."""

from __future__ import annotations

from urllib.parse import urlsplit

from bsante.chassis.store import Store


def store_from_url(url: str, *, database: str) -> Store:
    scheme = urlsplit(url).scheme
    if scheme == "sqlite":
        from bsante.chassis.store.sqlite import SqliteStore

        # SQLAlchemy's convention: sqlite:///relative/path, sqlite:////absolute/path.
        if not url.startswith("sqlite:///"):
            raise ValueError("sqlite URL must look like sqlite:///var/service.db")
        return SqliteStore(url.removeprefix("sqlite:///"))
    if scheme in {"mongodb", "mongodb+srv"}:
        from bsante.chassis.store.mongo import MongoStore

        return MongoStore(url, database)
    raise ValueError(f"unsupported store URL scheme {scheme!r} (sqlite or mongodb)")
