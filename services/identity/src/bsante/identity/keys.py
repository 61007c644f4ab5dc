"""The token signing keys, kept in identity's store so every replica signs with the same key."""

from __future__ import annotations

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from bsante.chassis.auth import SigningKey
from bsante.chassis.store import DuplicateDocument, Store

COLLECTION = "signing_keys"
CURRENT = "current"


def _pem(key: SigningKey) -> str:
    return key.private_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


async def load_or_create(store: Store) -> list[SigningKey]:
    """The key set, newest first; created on first start."""
    doc = await store.get(COLLECTION, CURRENT)
    if doc is None:
        key = SigningKey.generate()
        try:
            async with store.transaction() as tx:
                await tx.insert(COLLECTION, CURRENT, {"keys": [{"kid": key.kid, "pem": _pem(key)}]})
        except DuplicateDocument:
            pass  # another replica created it first
        doc = await store.get(COLLECTION, CURRENT)
        assert doc is not None
    keys = []
    for entry in doc.data["keys"]:
        private = serialization.load_pem_private_key(entry["pem"].encode(), password=None)
        assert isinstance(private, Ed25519PrivateKey)
        keys.append(SigningKey(entry["kid"], private))
    return keys
