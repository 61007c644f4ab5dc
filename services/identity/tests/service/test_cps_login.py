"""CPS card login through the gateway, with a test PKI generated here.

The platform's identity gets a trust store (root + intermediate, their CRLs) from settings
files; the card is a key pair and a certificate whose subject carries the PSIdNat.
"""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from asgi_lifespan import LifespanManager
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from bsante.chassis import certificates
from bsante.chassis.certificates import Issued
from bsante.gateway.app import build_embedded
from bsante.gateway.settings import GatewaySettings
from bsante.platform.embedded import build_services

NOW = datetime.now(UTC)
DAY = timedelta(days=1)
DOCTOR = "810001000016"  # the demo médecin of demo-ehpad (8 + RPPS)


def _name(cn: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "FR"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "TEST IGC-SANTE"),
            x509.NameAttribute(NameOID.COMMON_NAME, cn),
        ]
    )


def _card_subject(ps_id_nat: str) -> x509.Name:
    return x509.Name(
        [
            x509.RelativeDistinguishedName([x509.NameAttribute(NameOID.COUNTRY_NAME, "FR")]),
            x509.RelativeDistinguishedName([x509.NameAttribute(NameOID.TITLE, "Médecin")]),
            x509.RelativeDistinguishedName(
                [
                    x509.NameAttribute(NameOID.SURNAME, "LEMAIRE"),
                    x509.NameAttribute(NameOID.COMMON_NAME, ps_id_nat),
                    x509.NameAttribute(NameOID.GIVEN_NAME, "CLAIRE"),
                ]
            ),
        ]
    )


def issue(
    subject: x509.Name,
    issuer: Issued | None,
    *,
    ca: bool,
    not_after: datetime = NOW + 365 * DAY,
) -> Issued:
    return certificates.issue(
        subject,
        certificates.ec_key(),
        issuer,
        ca=ca,
        not_before=NOW - 30 * DAY,
        not_after=not_after,
        extended_key_usage=[] if ca else [ExtendedKeyUsageOID.CLIENT_AUTH],
    )


def crl(issuer: Issued, revoked: list[x509.Certificate]) -> bytes:
    signed = certificates.crl(
        issuer, revoked, last_update=NOW - DAY, next_update=NOW + 6 * DAY, revocation_date=NOW - DAY
    )
    return signed.public_bytes(serialization.Encoding.PEM)


def pem(cert: x509.Certificate) -> str:
    return cert.public_bytes(serialization.Encoding.PEM).decode()


@dataclass
class Cards:
    intermediate: Issued
    doctor: Issued
    expired: Issued
    revoked: Issued
    stranger: Issued  # chains to another root
    no_account: Issued


@pytest.fixture
def cards(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Cards:
    root = issue(_name("TEST AC RACINE"), None, ca=True)
    intermediate = issue(_name("TEST AC FORT PERSONNES"), root, ca=True)
    other_root = issue(_name("AUTRE RACINE"), None, ca=True)
    result = Cards(
        intermediate=intermediate,
        doctor=issue(_card_subject(DOCTOR), intermediate, ca=False),
        expired=issue(_card_subject(DOCTOR), intermediate, ca=False, not_after=NOW - DAY),
        revoked=issue(_card_subject(DOCTOR), intermediate, ca=False),
        stranger=issue(_card_subject(DOCTOR), other_root, ca=False),
        no_account=issue(_card_subject("899700367917"), intermediate, ca=False),
    )
    (tmp_path / "ca.pem").write_text(pem(root.cert) + pem(intermediate.cert))
    (tmp_path / "root.crl").write_bytes(crl(root, []))
    (tmp_path / "intermediate.crl").write_bytes(crl(intermediate, [result.revoked.cert]))
    monkeypatch.setenv("IDENTITY_CPS_CA_PATHS", f'["{tmp_path / "ca.pem"}"]')
    monkeypatch.setenv(
        "IDENTITY_CPS_CRL_PATHS", f'["{tmp_path / "root.crl"}", "{tmp_path / "intermediate.crl"}"]'
    )
    return result


@pytest.fixture
async def client(cards: Cards, tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    app = build_embedded(GatewaySettings(), build_services(tmp_path / "data"))
    async with LifespanManager(app, startup_timeout=120, shutdown_timeout=60) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://platform") as http:
            yield http


async def challenge(client: httpx.AsyncClient) -> tuple[str, bytes]:
    response = await client.post("/api/identity/auth/cps/challenge")
    assert response.status_code == 200, response.text
    body = response.json()
    return body["nonce"], base64.b64decode(body["message"])


async def card_login(
    client: httpx.AsyncClient, card: Issued, *, der: bool = False, nonce: str | None = None
) -> httpx.Response:
    if nonce is None:
        nonce, message = await challenge(client)
    else:
        message = b"bsante-cps-login-v1:" + nonce.encode()
    signature = card.key.sign(message, ec.ECDSA(hashes.SHA256()))
    certificate = (
        base64.b64encode(card.cert.public_bytes(serialization.Encoding.DER)).decode()
        if der
        else pem(card.cert)
    )
    return await client.post(
        "/api/identity/auth/cps/token",
        json={
            "nonce": nonce,
            "certificate": certificate,
            "signature": base64.b64encode(signature).decode(),
        },
    )


async def test_a_valid_card_logs_the_professional_in(
    client: httpx.AsyncClient, cards: Cards
) -> None:
    for der in (False, True):
        response = await card_login(client, cards.doctor, der=der)
        assert response.status_code == 200, response.text
        me = await client.get(
            "/api/identity/me",
            headers={"Authorization": f"Bearer {response.json()['access_token']}"},
        )
        assert me.json()["user_id"] == "user-medecin-demo-ehpad"
        assert me.json()["profession"] == "10" and me.json()["ps_id_nat"] == DOCTOR


@pytest.mark.parametrize(
    ("card", "reason"),
    [
        ("expired", "valid from"),
        ("revoked", "revoked"),
        ("stranger", "not trusted"),
        ("no_account", "No active account"),
    ],
)
async def test_bad_cards_are_refused(
    client: httpx.AsyncClient, cards: Cards, card: str, reason: str
) -> None:
    response = await card_login(client, getattr(cards, card))
    assert response.status_code == 401
    assert reason in response.json()["detail"]


async def test_a_nonce_works_once(client: httpx.AsyncClient, cards: Cards) -> None:
    nonce, _ = await challenge(client)
    assert (await card_login(client, cards.doctor, nonce=nonce)).status_code == 200
    replayed = await card_login(client, cards.doctor, nonce=nonce)
    assert replayed.status_code == 401
    assert "already used" in replayed.json()["detail"]
    invented = await card_login(client, cards.doctor, nonce="A" * 43)
    assert invented.status_code == 401


async def test_a_signature_by_another_key_is_refused(
    client: httpx.AsyncClient, cards: Cards
) -> None:
    impostor = Issued(cards.doctor.cert, ec.generate_private_key(ec.SECP256R1()))
    response = await card_login(client, impostor)
    assert response.status_code == 401 and "signature" in response.json()["detail"]


async def test_without_a_trust_store_cps_login_is_unavailable(platform: object) -> None:
    client: httpx.AsyncClient = platform.client  # type: ignore[attr-defined]
    response = await client.post("/api/identity/auth/cps/challenge")
    assert response.status_code == 503
