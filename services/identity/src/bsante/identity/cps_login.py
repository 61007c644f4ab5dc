"""CPS card login wired to the store: challenges kept in identity's store, trust store from files.

The checks themselves are `bsante.identity.cps`. Challenges live in the store (not in memory) so
that any replica can verify a nonce another one issued, and each is used once: consuming it is
an update at the version read, so two concurrent uses cannot both succeed.
"""

from __future__ import annotations

import base64
import binascii
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509

from bsante.chassis.errors import AuthenticationFailed, Unavailable
from bsante.chassis.store import ConcurrencyConflict, Store
from bsante.identity.cps import (
    Challenge,
    CpsLoginError,
    CpsLoginVerifier,
    InMemoryNonceStore,
    challenge_message,
    load_certificate,
    ps_id_nat_from_subject,
    verify_challenge_signature,
)
from bsante.identity.directory.identifiers import PSIdNat
from bsante.identity.settings import IdentitySettings

CHALLENGES = "cps_challenges"


class CpsNotConfigured(Unavailable):
    kind = "cps-not-configured"


class CpsLoginRefused(AuthenticationFailed):
    """401 naming the check that failed (expired, revoked, untrusted, replayed, ...)."""


def _pem_blocks(data: bytes, marker: bytes) -> list[bytes]:
    blocks, rest = [], data
    begin = b"-----BEGIN " + marker
    while begin in rest:
        start = rest.index(begin)
        end_marker = b"-----END " + marker
        end = rest.index(end_marker, start)
        end = rest.index(b"-----", end + len(end_marker)) + 5
        blocks.append(rest[start:end])
        rest = rest[end:]
    return blocks


def load_trust(settings: IdentitySettings) -> CpsLoginVerifier | None:
    """The verifier built from the configured CA and CRL files; None when none configured."""
    if not settings.cps_ca_paths:
        return None
    cas: list[x509.Certificate] = []
    for path in settings.cps_ca_paths:
        data = Path(path).read_bytes()
        blocks = _pem_blocks(data, b"CERTIFICATE")
        cas.extend(x509.load_pem_x509_certificate(b) for b in blocks)
        if not blocks:
            cas.append(x509.load_der_x509_certificate(data))
    crls: list[x509.CertificateRevocationList] = []
    for path in settings.cps_crl_paths:
        data = Path(path).read_bytes()
        blocks = _pem_blocks(data, b"X509 CRL")
        crls.extend(x509.load_pem_x509_crl(b) for b in blocks)
        if not blocks:
            crls.append(x509.load_der_x509_crl(data))
    # Nonces are consumed from the store before the verifier runs; its own store is unused.
    return CpsLoginVerifier(
        ca_certificates=cas,
        crls=crls,
        nonce_store=InMemoryNonceStore(),
        require_crl=settings.cps_require_crl,
    )


async def issue_challenge(store: Store, ttl_seconds: int) -> Challenge:
    nonce = base64.urlsafe_b64encode(secrets.token_bytes(32)).rstrip(b"=").decode("ascii")
    expires_at = datetime.now(UTC) + timedelta(seconds=ttl_seconds)
    async with store.transaction() as tx:
        await tx.insert(CHALLENGES, nonce, {"expires_at": expires_at.isoformat(), "used": False})
    return Challenge(nonce, expires_at)


async def consume_challenge(store: Store, nonce: str) -> None:
    """Mark the nonce used; refuse if unknown, expired or already used (replay)."""
    doc = await store.get(CHALLENGES, nonce) if len(nonce) <= 100 else None
    refused = CpsLoginRefused("Unknown, expired or already used challenge")
    if doc is None or doc.data.get("used"):
        raise refused
    try:
        async with store.transaction() as tx:
            await tx.update(
                CHALLENGES,
                nonce,
                {**doc.data, "used": True, "used_at": datetime.now(UTC).isoformat()},
                doc.version,
            )
    except ConcurrencyConflict:
        raise refused from None
    if datetime.fromisoformat(doc.data["expires_at"]) <= datetime.now(UTC):
        raise refused


def decode_certificate(text: str) -> x509.Certificate:
    raw = text.strip().encode()
    if not raw.startswith(b"-----BEGIN"):
        try:
            raw = base64.b64decode(raw, validate=True)
        except (binascii.Error, ValueError):
            raise CpsLoginRefused("The certificate is neither PEM nor base64 DER") from None
    try:
        return load_certificate(raw)
    except CpsLoginError as error:
        raise CpsLoginRefused(str(error)) from None


def decode_signature(text: str) -> bytes:
    try:
        return base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise CpsLoginRefused("The signature is not base64") from None


@dataclass(frozen=True)
class CardHolder:
    ps_id_nat: PSIdNat
    certificate: x509.Certificate


async def verify_card_login(
    store: Store,
    verifier: CpsLoginVerifier | None,
    *,
    nonce: str,
    certificate: str,
    signature: str,
    intermediates: list[str],
) -> CardHolder:
    """Consume the nonce, then check chain, revocation, signature and subject, in that order."""
    if verifier is None:
        raise CpsNotConfigured("CPS login is not configured (no trust store)")
    await consume_challenge(store, nonce)
    leaf = decode_certificate(certificate)
    chain = [decode_certificate(c) for c in intermediates]
    try:
        verifier.verify_certificate(leaf, intermediates=chain)
        verify_challenge_signature(leaf, challenge_message(nonce), decode_signature(signature))
        ps_id_nat = ps_id_nat_from_subject(leaf.subject)
    except CpsLoginError as error:
        raise CpsLoginRefused(f"CPS login refused: {error}") from None
    return CardHolder(ps_id_nat, leaf)
