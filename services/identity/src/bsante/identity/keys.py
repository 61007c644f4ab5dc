"""The token signing keys, kept in identity's store so every replica signs with the same key.

The key set is newest first. Rotation puts a new key in front, published in the JWKS at once
but signing only from `activates_at` (by default 15 s later): a service that fetched the JWKS
just before may refetch it only 10 s later (the chassis verifier's rate limit), so by the time a
token carries the new `kid`, every verifier can learn it. The previous key is stamped
`retired_at` and stays in the JWKS until every token it signed has expired (access-token TTL
plus a margin), then is dropped. The signing key is the newest active one.

In the distributed topology the keys may instead be mounted files (a Kubernetes Secret): every
`*.pem` of `signing_keys_dir` is published, `current.pem` signs, and the operator rotates by
updating the Secret (add the new key as `current.pem`, keep the old one under another name
until its tokens have expired). Nothing is then written to the store, and the rotation route
refuses.
"""

from __future__ import annotations

import base64
import hashlib
import json
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from bsante.chassis.auth import SigningKey

__all__ = ["KeyRing", "SigningKey", "load_from_directory", "load_or_create", "rotate"]
from bsante.chassis.messaging import UnitOfWork
from bsante.chassis.store import DuplicateDocument, Store
from bsante.contracts.events import SigningKeyRotated

COLLECTION = "signing_keys"
CURRENT = "current"
CURRENT_FILE = "current.pem"
# Clock skew and in-flight requests: keep a retired key this much longer than a token lives.
RETIREMENT_MARGIN = timedelta(minutes=2)
PLATFORM = "platform"


def _pem(key: SigningKey) -> str:
    return key.private_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


def _entry(key: SigningKey, now: datetime, activates_at: datetime | None = None) -> dict[str, Any]:
    return {
        "kid": key.kid,
        "pem": _pem(key),
        "created_at": now.isoformat(),
        "activates_at": (activates_at or now).isoformat(),
        "retired_at": None,
    }


def _active(entry: dict[str, Any], now: datetime) -> bool:
    activates = entry.get("activates_at")
    return activates is None or datetime.fromisoformat(activates) <= now


def _published(entry: dict[str, Any], now: datetime, token_ttl: timedelta) -> bool:
    retired = entry.get("retired_at")
    return retired is None or datetime.fromisoformat(retired) + token_ttl + RETIREMENT_MARGIN > now


def _decode(entry: dict[str, Any]) -> SigningKey:
    private = serialization.load_pem_private_key(entry["pem"].encode(), password=None)
    assert isinstance(private, Ed25519PrivateKey)
    return SigningKey(entry["kid"], private)


class KeyFilesError(ValueError):
    """The mounted signing keys are missing or not Ed25519 private keys."""


def _thumbprint(private: Ed25519PrivateKey) -> str:
    """RFC 7638 thumbprint of the public key: a kid that is the same on every replica."""
    raw = private.public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )
    x = base64.urlsafe_b64encode(raw).rstrip(b"=").decode()
    canonical = json.dumps({"crv": "Ed25519", "kty": "OKP", "x": x}, separators=(",", ":"))
    digest = hashlib.sha256(canonical.encode()).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()[:22]


def load_from_directory(directory: Path) -> list[SigningKey]:
    """The mounted key set: `current.pem` first (it signs), then the others by file name."""
    files = sorted(directory.glob("*.pem"), key=lambda f: (f.name != CURRENT_FILE, f.name))
    if not files or files[0].name != CURRENT_FILE:
        raise KeyFilesError(f"no {CURRENT_FILE} among the signing keys of {directory}")
    ring = []
    for file in files:
        try:
            private = serialization.load_pem_private_key(file.read_bytes(), password=None)
        except ValueError:
            raise KeyFilesError(f"{file.name} is not a PEM private key") from None
        if not isinstance(private, Ed25519PrivateKey):
            raise KeyFilesError(f"{file.name} is not an Ed25519 key")
        ring.append(SigningKey(_thumbprint(private), private))
    return ring


async def load_or_create(
    store: Store, token_ttl: timedelta = timedelta(hours=1)
) -> list[SigningKey]:
    """The published key set, the signing key first, then the others newest first.

    Created on first start. A key waiting for its activation is published after the signing key.
    """
    doc = await store.get(COLLECTION, CURRENT)
    if doc is None:
        key = SigningKey.generate()
        try:
            async with store.transaction() as tx:
                await tx.insert(COLLECTION, CURRENT, {"keys": [_entry(key, datetime.now(UTC))]})
        except DuplicateDocument:
            pass  # another replica created it first
        doc = await store.get(COLLECTION, CURRENT)
        assert doc is not None
    now = datetime.now(UTC)
    published = [e for e in doc.data["keys"] if _published(e, now, token_ttl)]
    signing = next((e for e in published if _active(e, now)), published[-1])
    return [_decode(signing), *(_decode(e) for e in published if e is not signing)]


async def rotate(
    uow: UnitOfWork, token_ttl: timedelta, activation_delay: timedelta
) -> tuple[str, str | None, datetime]:
    """Publish a new key that signs after `activation_delay`; return (kid, previous, when)."""
    doc = await uow.tx.get(COLLECTION, CURRENT)
    now = datetime.now(UTC)
    activates_at = now + activation_delay
    key = SigningKey.generate()
    entries: list[dict[str, Any]] = list(doc.data["keys"]) if doc else []
    previous = next((e["kid"] for e in entries if _active(e, now)), None)
    for entry in entries:
        # A key retires when its successor starts signing.
        entry["retired_at"] = entry.get("retired_at") or activates_at.isoformat()
    kept = [_entry(key, now, activates_at), *(e for e in entries if _published(e, now, token_ttl))]
    if doc is None:
        await uow.tx.insert(COLLECTION, CURRENT, {"keys": kept})
    else:
        await uow.tx.update(COLLECTION, CURRENT, {"keys": kept}, doc.version)
    await uow.emit(
        SigningKeyRotated(kid=key.kid, previous_kid=previous),
        structure_id=PLATFORM,
        subject_id=key.kid,
    )
    return key.kid, previous, activates_at


class KeyRing:
    """A replica's view of the key set, re-read from the store every few seconds.

    `keys` is the list object shared with `app.state.signing_keys` (and with the embedded
    platform's in-process JWKS): it is updated in place.
    """

    def __init__(
        self,
        store: Store,
        keys: list[SigningKey],
        token_ttl: timedelta,
        cache_seconds: float,
        directory: Path | None = None,
    ) -> None:
        self._store = store
        self.directory = directory
        self.keys = keys
        self._ttl = token_ttl
        self._cache = cache_seconds
        self._loaded_at = 0.0

    async def reload(self) -> None:
        if self.directory is not None:
            self.keys[:] = load_from_directory(self.directory)
        else:
            self.keys[:] = await load_or_create(self._store, self._ttl)
        self._loaded_at = time.monotonic()

    async def current(self) -> list[SigningKey]:
        if time.monotonic() - self._loaded_at >= self._cache:
            await self.reload()
        return self.keys

    async def signing_key(self) -> SigningKey:
        return (await self.current())[0]
