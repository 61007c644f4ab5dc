"""ID token checks of the Pro Santé Connect client: each claim that must hold, refused alone."""

from __future__ import annotations

import base64
import json
import time
from typing import Any

import pytest
from joserfc import jwt
from joserfc.jwk import KeySet, RSAKey

from bsante.identity.psc import PscLoginRefused, verify_id_token

ISSUER = "https://psc.example/auth/realms/esante-wallet"
CLIENT = "bsante"
NONCE = "n-0123456789"
KEY = RSAKey.generate_key(2048, parameters={"kid": "psc-1"})
OTHER = RSAKey.generate_key(2048, parameters={"kid": "psc-1"})
KEYS = KeySet.import_key_set(KeySet([KEY]).as_dict(private=False))


def _claims(**changes: Any) -> dict[str, Any]:
    now = int(time.time())
    claims = {
        "iss": ISSUER,
        "sub": "f:abc",
        "aud": CLIENT,
        "iat": now,
        "exp": now + 300,
        "nonce": NONCE,
        "acr": "eidas1",
        "preferred_username": "810001000016",
    }
    claims.update(changes)
    return {k: v for k, v in claims.items() if v is not None}


def _token(key: RSAKey = KEY, **changes: Any) -> str:
    return jwt.encode({"alg": "RS256", "kid": "psc-1"}, _claims(**changes), key)


def _verify(token: str, **kwargs: Any) -> dict[str, Any]:
    options = {"issuer": ISSUER, "client_id": CLIENT, "nonce": NONCE, "acr_values": ("eidas1",)}
    return verify_id_token(token, KEYS, **{**options, **kwargs})


def test_a_good_token_gives_its_claims() -> None:
    assert _verify(_token())["preferred_username"] == "810001000016"


def test_a_tampered_payload_is_refused() -> None:
    header, payload, signature = _token().split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=="))
    claims["preferred_username"] = "810001000024"
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    with pytest.raises(PscLoginRefused, match="signature"):
        _verify(f"{header}.{forged}.{signature}")


def test_a_token_signed_by_another_key_is_refused() -> None:
    with pytest.raises(PscLoginRefused, match="signature"):
        _verify(_token(OTHER))


def test_an_unsigned_token_is_refused() -> None:
    header = base64.urlsafe_b64encode(b'{"alg":"none"}').rstrip(b"=").decode()
    payload = base64.urlsafe_b64encode(json.dumps(_claims()).encode()).rstrip(b"=").decode()
    with pytest.raises(PscLoginRefused, match="signature"):
        _verify(f"{header}.{payload}.")


@pytest.mark.parametrize(
    ("changes", "claim"),
    [
        ({"aud": "another-client"}, "aud"),
        ({"iss": "https://evil.example"}, "iss"),
        ({"nonce": None}, "nonce"),
        ({"nonce": "another-nonce"}, "nonce"),
        ({"acr": "eidas0"}, "acr"),
        ({"acr": None}, "acr"),
        ({"exp": int(time.time()) - 3600}, "exp"),
        ({"exp": None}, "exp"),
    ],
)
def test_each_claim_that_does_not_hold_is_refused_by_name(
    changes: dict[str, Any], claim: str
) -> None:
    with pytest.raises(PscLoginRefused, match=claim) as refused:
        _verify(_token(**changes))
    assert [e["field"] for e in refused.value.errors] == [f"id_token.{claim}"]


def test_an_at_hash_of_another_access_token_is_refused() -> None:
    token = _token(at_hash="AAAAAAAAAAAAAAAAAAAAAA")
    with pytest.raises(PscLoginRefused, match="at_hash"):
        _verify(token, access_token="the-access-token")
