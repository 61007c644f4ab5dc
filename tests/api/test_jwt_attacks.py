"""Forged access tokens: alg none, HS256 keyed with the public key, a forged `kid`, a foreign
key under the real `kid`, expired, wrong `aud` or `iss`. Each is refused by the chassis verifier
itself and, through the gateway, by a guarded route (401 problem+json), while the genuine token
passes both."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from typing import Any

import jwt
import pytest
from kit import Platform

from bsante.chassis.auth import SigningKey, TokenVerifier, issue_token
from bsante.chassis.errors import Unauthorized

ISSUER, AUDIENCE = "bsante-identity", "bsante"


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def claims(**changes: Any) -> dict[str, Any]:
    now = int(time.time())
    base = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": "attacker",
        "iat": now,
        "nbf": now,
        "exp": now + 900,
        "structures": ["demo-ehpad"],
        "roles": {"demo-ehpad": ["medecin", "structure_admin"]},
    }
    return {**base, **changes}


def hand_signed(header: dict[str, Any], body: dict[str, Any], secret: bytes | None) -> str:
    """A JWT built by hand: PyJWT itself refuses to key HMAC with a public key."""
    signing_input = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(body).encode())}"
    if secret is None:
        return signing_input + "."
    mac = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64(mac)}"


def attacks(key: SigningKey) -> dict[str, str]:
    jwk = key.public_jwk()
    public_raw = base64.urlsafe_b64decode(jwk["x"] + "==")
    public_json = json.dumps(jwk).encode()
    other = SigningKey.generate()

    def signed(body: dict[str, Any], *, kid: str = key.kid) -> str:
        return jwt.encode(body, key.private_key, algorithm="EdDSA", headers={"kid": kid})

    return {
        "alg none": hand_signed({"alg": "none", "typ": "JWT", "kid": key.kid}, claims(), None),
        "alg None": hand_signed({"alg": "None", "kid": key.kid}, claims(), None),
        "HS256 keyed with the raw public key": hand_signed(
            {"alg": "HS256", "kid": key.kid}, claims(), public_raw
        ),
        "HS256 keyed with the public JWK": hand_signed(
            {"alg": "HS256", "kid": key.kid}, claims(), public_json
        ),
        "HS256 keyed with the JWK's x": hand_signed(
            {"alg": "HS256", "kid": key.kid}, claims(), jwk["x"].encode()
        ),
        "a foreign key under the real kid": jwt.encode(
            claims(), other.private_key, algorithm="EdDSA", headers={"kid": key.kid}
        ),
        "a forged kid": jwt.encode(
            claims(), other.private_key, algorithm="EdDSA", headers={"kid": other.kid}
        ),
        "a path as kid": signed(claims(), kid="../../../dev/null"),
        "no kid": jwt.encode(claims(), key.private_key, algorithm="EdDSA"),
        "expired": signed(claims(iat=int(time.time()) - 7200, exp=int(time.time()) - 3600)),
        "wrong aud": signed(claims(aud="another-platform")),
        "wrong iss": signed(claims(iss="someone-else")),
        "no exp": signed({k: v for k, v in claims().items() if k != "exp"}),
        "a tampered payload": (
            lambda t: ".".join(
                [t.split(".")[0], b64(json.dumps(claims(sub="admin")).encode()), t.split(".")[2]]
            )
        )(signed(claims())),
    }


def genuine(key: SigningKey) -> str:
    return issue_token(
        key,
        subject="someone",
        structures=["demo-ehpad"],
        roles={"demo-ehpad": ["medecin"]},
        profession=None,
        issuer=ISSUER,
        audience=AUDIENCE,
        ttl_seconds=900,
    )


KEY = SigningKey.generate()
ATTACKS = attacks(KEY)


def verifier_for(key: SigningKey) -> TokenVerifier:
    async def jwks() -> dict[str, Any]:
        return {"keys": [key.public_jwk()]}

    return TokenVerifier(jwks, issuer=ISSUER, audience=AUDIENCE, min_refresh_seconds=0)


@pytest.mark.parametrize("attack", sorted(ATTACKS))
async def test_the_chassis_verifier_refuses(attack: str) -> None:
    verifier = verifier_for(KEY)
    assert (await verifier.verify(genuine(KEY)))["sub"] == "someone"
    with pytest.raises(Unauthorized):
        await verifier.verify(ATTACKS[attack])


async def test_a_refused_token_is_not_cached_as_verified() -> None:
    verifier = verifier_for(KEY)
    for _ in range(2):
        with pytest.raises(Unauthorized):
            await verifier.verify(ATTACKS["HS256 keyed with the raw public key"])


async def test_the_gateway_refuses_every_forged_token(platform: Platform) -> None:
    """The identity's own signing key is attacked: the tokens name its real `kid`."""
    key = platform.services["identity"].app.state.signing_keys[0]
    route = "/api/patient/patients"
    ok = await platform.client.get(route, headers={"Authorization": f"Bearer {genuine(key)}"})
    assert ok.status_code == 200, ok.text
    for attack, token in attacks(key).items():
        answer = await platform.client.get(route, headers={"Authorization": f"Bearer {token}"})
        assert answer.status_code == 401, (attack, answer.text)
        assert answer.headers["content-type"] == "application/problem+json", attack
