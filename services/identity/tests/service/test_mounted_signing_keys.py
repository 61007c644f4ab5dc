"""Token signing keys read from mounted files (a Kubernetes Secret) instead of the store."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import jwt
import pytest
from asgi_lifespan import LifespanManager
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from bsante.chassis.service import Service
from bsante.identity import keys
from bsante.identity.app import build
from bsante.identity.settings import IdentitySettings

OPS = {"username": "ops@bsante.demo", "password": "Exploitation-Demo-2026"}


def write_key(path: Path) -> Ed25519PrivateKey:
    key = Ed25519PrivateKey.generate()
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return key


def settings(tmp_path: Path, key_dir: Path) -> IdentitySettings:
    return IdentitySettings(
        store_url=f"sqlite:///{tmp_path / 'identity.db'}",
        bus_url=f"embedded://{tmp_path / 'bus'}",
        seed_demo=True,
        signing_keys_dir=str(key_dir),
        key_cache_seconds=0,
    )


@pytest.fixture
async def identity(tmp_path: Path) -> AsyncIterator[tuple[Service[IdentitySettings], Path]]:
    key_dir = tmp_path / "keys"
    key_dir.mkdir()
    write_key(key_dir / "current.pem")
    write_key(key_dir / "previous.pem")
    svc = build(settings(tmp_path, key_dir), standalone=True)
    async with LifespanManager(svc.app):
        yield svc, key_dir


async def token_kid(client: httpx.AsyncClient) -> str:
    response = await client.post("/auth/token", json=OPS)
    assert response.status_code == 200, response.text
    return str(jwt.get_unverified_header(response.json()["access_token"])["kid"])


async def test_the_mounted_current_key_signs_and_every_mounted_key_is_published(
    identity: tuple[Service[IdentitySettings], Path],
) -> None:
    svc, key_dir = identity
    transport = httpx.ASGITransport(app=svc.app)
    async with httpx.AsyncClient(transport=transport, base_url="http://identity") as client:
        expected = {k.kid: k for k in keys.load_from_directory(key_dir)}
        current = keys.load_from_directory(key_dir)[0].kid
        published = (await client.get("/.well-known/jwks.json")).json()["keys"]
        assert {k["kid"] for k in published} == set(expected)
        assert await token_kid(client) == current
        # Nothing generated into the store.
        assert await svc.store.get(keys.COLLECTION, keys.CURRENT) is None

        # Rotation is the operator's: the route refuses, an updated Secret takes effect.
        ops = (await client.post("/auth/token", json=OPS)).json()["access_token"]
        refused = await client.post(
            "/admin/signing-keys/rotate", headers={"Authorization": f"Bearer {ops}"}
        )
        assert refused.status_code == 409
        assert "mounted" in refused.json()["detail"]
        (key_dir / "current.pem").rename(key_dir / "older.pem")
        write_key(key_dir / "current.pem")
        rotated = keys.load_from_directory(key_dir)[0].kid
        assert rotated not in expected
        assert await token_kid(client) == rotated
        jwks = (await client.get("/.well-known/jwks.json")).json()["keys"]
        assert {k["kid"] for k in jwks} == {*expected, rotated}


def test_kids_are_the_same_on_every_replica(tmp_path: Path) -> None:
    write_key(tmp_path / "current.pem")
    first, second = keys.load_from_directory(tmp_path), keys.load_from_directory(tmp_path)
    assert [k.kid for k in first] == [k.kid for k in second]
    assert first[0].public_jwk() == second[0].public_jwk()


@pytest.mark.parametrize("content", [None, b"not a key", "rsa"])
def test_a_missing_or_wrong_key_file_is_a_clear_error(tmp_path: Path, content: object) -> None:
    if content == "rsa":
        from cryptography.hazmat.primitives.asymmetric import rsa

        rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        (tmp_path / "current.pem").write_bytes(
            rsa_key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
    elif isinstance(content, bytes):
        (tmp_path / "current.pem").write_bytes(content)
    else:
        write_key(tmp_path / "other.pem")
    with pytest.raises(keys.KeyFilesError):
        keys.load_from_directory(tmp_path)
