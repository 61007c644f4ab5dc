"""Service clients of the OAuth2 client-credentials grant: hashed secrets, their rotation, scopes.

Which clients exist and which scopes they hold come from the settings (`IDENTITY_SERVICE_CLIENTS`);
their secrets live in identity's store, so that every replica sees a rotation at once. A secret
is kept as `hmac-sha256$<salt>$<digest>`: client secrets are 256-bit random strings, out of reach
of any guessing, so a slow password hash (argon2) would add CPU time to every token request and
no protection. A client has one current secret and, during a rotation window, the previous ones.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field, field_validator, model_validator

from bsante.chassis.errors import NotFound
from bsante.chassis.store import ConcurrencyConflict, DuplicateDocument, Store

COLLECTION = "service_clients"
SCHEME = "hmac-sha256"
SCOPE = re.compile(r"^[a-z][a-z0-9-]*:[a-z][a-z0-9-]*$")
# Compared against when the client is unknown, so that both answers cost the same.
_DUMMY = f"{SCHEME}${'00' * 16}${'00' * 32}"


class ServiceClientSpec(BaseModel):
    """One client in the settings: its scopes, and its secret as a hash or as a mounted file."""

    scopes: list[str] = Field(default_factory=list, max_length=50)
    secret_hash: str = Field("", description="hmac-sha256$<salt hex>$<digest hex>")
    secret_file: str = Field("", description="File holding the secret itself (a mounted secret)")

    @field_validator("scopes")
    @classmethod
    def _scopes(cls, value: list[str]) -> list[str]:
        bad = [s for s in value if not SCOPE.match(s)]
        if bad:
            raise ValueError(f"scopes look like service:permission, not {bad}")
        return value

    @field_validator("secret_hash")
    @classmethod
    def _hash(cls, value: str) -> str:
        if value and _parse(value) is None:
            raise ValueError(f"not a {SCHEME}$<salt>$<digest> hash")
        return value

    @model_validator(mode="after")
    def _one_secret(self) -> ServiceClientSpec:
        if bool(self.secret_hash) == bool(self.secret_file):
            raise ValueError("give exactly one of secret_hash and secret_file")
        return self


def new_secret() -> str:
    return secrets.token_urlsafe(32)


def hash_secret(secret: str, salt: bytes | None = None) -> str:
    salt = salt if salt is not None else secrets.token_bytes(16)
    digest = hmac.new(salt, secret.encode(), hashlib.sha256).hexdigest()
    return f"{SCHEME}${salt.hex()}${digest}"


def _parse(stored: str) -> tuple[bytes, str] | None:
    scheme, _, rest = stored.partition("$")
    salt, _, digest = rest.partition("$")
    try:
        return (bytes.fromhex(salt), digest) if scheme == SCHEME and len(digest) == 64 else None
    except ValueError:
        return None


def secret_matches(stored: str, secret: str) -> bool:
    parsed = _parse(stored)
    if parsed is None:
        return False
    salt, digest = parsed
    expected = hmac.new(salt, secret.encode(), hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, digest)


def _live(entry: dict[str, Any], now: datetime) -> bool:
    expires = entry.get("expires_at")
    return expires is None or datetime.fromisoformat(expires) > now


def _entry(secret_hash: str, origin: str, now: datetime) -> dict[str, Any]:
    return {
        "id": secrets.token_hex(4),
        "hash": secret_hash,
        "origin": origin,
        "created_at": now.isoformat(),
        "expires_at": None,
    }


def _retire(entries: list[dict[str, Any]], until: datetime, now: datetime) -> list[dict[str, Any]]:
    """The live entries, each now valid until `until` at the latest."""
    kept = []
    for entry in entries:
        if not _live(entry, now):
            continue
        expires = entry.get("expires_at")
        if expires is None or datetime.fromisoformat(expires) > until:
            entry = {**entry, "expires_at": until.isoformat()}
        kept.append(entry)
    return kept


async def sync_from_settings(
    store: Store,
    clients: dict[str, ServiceClientSpec],
    overlap: timedelta,
    now: datetime | None = None,
) -> None:
    """Adopt the configured secret of each client.

    A configured secret the store does not know yet becomes the current one, and the previous
    secrets stay valid for `overlap` (rotation through the settings, and the embedded platform's
    fresh secret at each start). A secret already known, even expired by a rotation, is left
    as it is.
    """
    for client_id, spec in clients.items():
        plain = Path(spec.secret_file).read_text().strip() if spec.secret_file else None
        for _ in range(5):  # another replica syncing at the same time: read again
            at = now or datetime.now(UTC)
            doc = await store.get(COLLECTION, client_id)
            entries: list[dict[str, Any]] = list(doc.data["secrets"]) if doc else []
            if plain is not None:
                known = any(secret_matches(e["hash"], plain) for e in entries)
            else:
                known = any(e["hash"] == spec.secret_hash for e in entries)
            if known:
                break
            current = _entry(spec.secret_hash or hash_secret(plain or ""), "settings", at)
            kept = [current, *_retire(entries, at + overlap, at)]
            try:
                async with store.transaction() as tx:
                    if doc is None:
                        await tx.insert(COLLECTION, client_id, {"secrets": kept})
                    else:
                        await tx.update(COLLECTION, client_id, {"secrets": kept}, doc.version)
                break
            except (ConcurrencyConflict, DuplicateDocument):
                continue


async def authenticate(
    store: Store, client_id: str, secret: str, now: datetime | None = None
) -> bool:
    """True when `secret` is one of the client's valid secrets (at `now`, default: now)."""
    doc = await store.get(COLLECTION, client_id) if client_id else None
    now = now or datetime.now(UTC)
    entries = [e for e in (doc.data["secrets"] if doc else []) if _live(e, now)]
    if not entries:
        secret_matches(_DUMMY, secret)
        return False
    # Every entry is compared, so the time taken does not tell which one matched.
    matches = [secret_matches(e["hash"], secret) for e in entries]
    return any(matches)


@dataclass(frozen=True)
class Rotation:
    client_id: str
    secret: str
    previous_valid_until: datetime


async def rotate(
    store: Store, client_id: str, overlap: timedelta, now: datetime | None = None
) -> Rotation:
    """A new current secret; the previous ones stay valid `overlap` longer. 409 when two
    rotations race (the store's version check)."""
    doc = await store.get(COLLECTION, client_id)
    if doc is None:
        raise NotFound("No such service client")
    now = now or datetime.now(UTC)
    secret = new_secret()
    until = now + overlap
    kept = [_entry(hash_secret(secret), "rotation", now), *_retire(doc.data["secrets"], until, now)]
    async with store.transaction() as tx:
        await tx.update(COLLECTION, client_id, {"secrets": kept}, doc.version)
    return Rotation(client_id, secret, until)


async def secrets_of(store: Store, client_id: str) -> list[dict[str, Any]]:
    """The client's live secrets, without their hashes (what ops may see)."""
    doc = await store.get(COLLECTION, client_id)
    now = datetime.now(UTC)
    return [
        {k: e[k] for k in ("id", "origin", "created_at", "expires_at")}
        for e in (doc.data["secrets"] if doc else [])
        if _live(e, now)
    ]


def main() -> None:
    """Print a new client secret and its hash, for the settings of a service and of identity."""
    secret = new_secret()
    print(json.dumps({"client_secret": secret, "secret_hash": hash_secret(secret)}))


if __name__ == "__main__":
    main()
