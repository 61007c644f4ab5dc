"""Server-side CPS smart-card login: challenge nonce, card signature, certificate chain and CRLs.

Flow: the server issues a random nonce (:class:`ChallengeIssuer`); the client has the CPS
authentication key sign :func:`challenge_message` (RSA PKCS#1 v1.5 / SHA-256, or ECDSA P-256 /
SHA-256) and sends back the nonce, the signature and the card's authentication certificate;
:class:`CpsLoginVerifier` then consumes the nonce (single use, even when a later check fails),
checks the certificate (validity period, keyUsage digitalSignature, path to a configured root
with ``cryptography.x509.verification``, revocation with CRLs), checks the signature and maps the
certificate subject to the professional's national identifier (PSIdNat).

Subject of IGC-Santé CPS certificates -- what we found (no ANS "gabarits" text was readable from
here; the ANS document "IGC-Santé - Les gabarits des certificats X.509 et des CRLs - Certificats
embarqués dans les cartes CPx" exists but only its title page was reachable):

* ansforge/DRIM-M_DRIMbox README gives a CPS (type PS) certificate subject as
  ``CN=899700367917 + SURNAME=MAXIMAXI…0036791 + GIVENNAME=MUMUMU…, T=Médecin, C=FR``: a
  multi-valued RDN whose CN is the PSIdNat (8 + RPPS 99700367917, a valid Luhn RPPS), plus
  title (profession) and C=FR, without O/OU.
* Several independent public parsers show the same layout, e.g.
  ``SN=PHARMACH0007512+CN=899700075122+GN=CAROLE,title=Pharmacien,C=FR`` and an ADELI holder
  ``GN=HONORE+SN=MASSEUR1044+CN=00B7010446,OU=Masseur-Kinésithérapeute,O=TEST,C=FR`` (0 + ADELI).
* Staff cards (CPE) use ``CN=<structure id>/<internal id>`` (e.g. ``3760021832/000000018``);
  those are structure-internal PSIdNat forms and are refused here.
* One public parser claims an older format with ``SERIALNUMBER=<id>`` (unverified).

Hence: the CN (or the part of it before a ``/``) is read as a PSIdNat first; the
``serialNumber`` attribute is only a fallback. Only ``8`` + RPPS (Luhn-checked) and ``0`` + ADELI
are accepted.

Trust decisions: the CA list must contain at least one self-signed root; a missing, stale
(``next_update`` passed) or badly signed CRL makes the login fail (fail closed) unless the
verifier is built with ``require_crl=False``. Delta CRLs, partitioned CRLs (issuing distribution
points) and OCSP are not handled.
"""

from __future__ import annotations

import base64
import secrets
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Final, Protocol

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from cryptography.x509.oid import NameOID
from cryptography.x509.verification import (
    Criticality,
    ExtensionPolicy,
    PolicyBuilder,
    Store,
    VerificationError,
)

from bsante.identity.directory.identifiers import ADELI, RPPS, PSIdNat

Clock = Callable[[], datetime]

DEFAULT_NONCE_TTL: Final = timedelta(minutes=2)
# Domain separation: a signature made for this login cannot be replayed as a signature over
# some other protocol's data that happens to equal a bare nonce, and vice versa.
LOGIN_CONTEXT: Final = b"bsante-cps-login-v1:"
_P256_RAW_SIGNATURE_LEN: Final = 64


def utc_now() -> datetime:
    return datetime.now(UTC)


# --- Errors ---------------------------------------------------------------------------------


class CpsLoginError(Exception):
    """Base class: the CPS login must be refused."""


class UnknownNonce(CpsLoginError):
    """The nonce is unknown, expired or already used (a replay).

    The three cases are deliberately not distinguished: the store interface only answers
    yes/no, and telling an attacker which case applied would not help the legitimate user.
    """


NonceReplayed = UnknownNonce  # the name used in the design notes; same exception


class InvalidCertificate(CpsLoginError):
    """The certificate could not be decoded."""


class ExpiredCertificate(CpsLoginError):
    """A certificate of the chain is outside its validity period at verification time."""


class InvalidKeyUsage(CpsLoginError):
    """The leaf certificate is not allowed to make digital signatures."""


class UntrustedChain(CpsLoginError):
    """No valid path from the leaf to a configured root."""


class RevokedCertificate(CpsLoginError):
    """A certificate of the chain is listed in its issuer's CRL."""


class RevocationUnavailable(CpsLoginError):
    """No fresh CRL correctly signed by the issuer was available (fail closed)."""


class BadSignature(CpsLoginError):
    """The signature over the challenge does not verify with the certificate's key."""


class UnmappableSubject(CpsLoginError):
    """The certificate subject carries no usable PSIdNat (8 + RPPS or 0 + ADELI)."""


# --- Nonces ---------------------------------------------------------------------------------


class NonceStore(Protocol):
    """Where issued nonces wait to be used once."""

    def put(self, nonce: str, expires_at: datetime) -> None: ...

    def consume(self, nonce: str) -> bool:
        """Atomically remove ``nonce``; True only if it was known, unexpired and unused."""
        ...


class InMemoryNonceStore:
    """Process-local :class:`NonceStore` for tests and single-process deployments."""

    def __init__(self, clock: Clock = utc_now) -> None:
        self._clock = clock
        self._expiries: dict[str, datetime] = {}
        self._lock = threading.Lock()

    def put(self, nonce: str, expires_at: datetime) -> None:
        with self._lock:
            now = self._clock()
            # Purge on write so abandoned challenges cannot grow the dict without bound.
            for stale in [n for n, exp in self._expiries.items() if exp <= now]:
                del self._expiries[stale]
            self._expiries[nonce] = expires_at

    def consume(self, nonce: str) -> bool:
        with self._lock:
            expires_at = self._expiries.pop(nonce, None)
            return expires_at is not None and self._clock() < expires_at

    def __len__(self) -> int:
        return len(self._expiries)


@dataclass(frozen=True, slots=True)
class Challenge:
    """A nonce to be signed by the card, and when it stops being accepted."""

    nonce: str
    expires_at: datetime

    @property
    def message(self) -> bytes:
        """The exact bytes the card must sign."""
        return challenge_message(self.nonce)


def challenge_message(nonce: str) -> bytes:
    """Bytes to sign for ``nonce``: a fixed context prefix followed by the ASCII nonce."""
    return LOGIN_CONTEXT + nonce.encode("ascii")


class ChallengeIssuer:
    """Issues random single-use nonces (256 bits, URL-safe base64) with a short lifetime."""

    def __init__(
        self,
        store: NonceStore,
        *,
        ttl: timedelta = DEFAULT_NONCE_TTL,
        clock: Clock = utc_now,
        nonce_bytes: int = 32,
    ) -> None:
        if ttl <= timedelta(0):
            raise ValueError("nonce ttl must be positive")
        if nonce_bytes < 16:
            raise ValueError("nonces shorter than 128 bits are guessable")
        self._store = store
        self._ttl = ttl
        self._clock = clock
        self._nonce_bytes = nonce_bytes

    def issue(self) -> Challenge:
        raw = secrets.token_bytes(self._nonce_bytes)
        nonce = base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")
        expires_at = self._clock() + self._ttl
        self._store.put(nonce, expires_at)
        return Challenge(nonce, expires_at)


# --- Certificates ---------------------------------------------------------------------------


def load_certificate(data: bytes | x509.Certificate) -> x509.Certificate:
    """Decode a PEM or DER certificate (an already decoded one is returned as is)."""
    if isinstance(data, x509.Certificate):
        return data
    try:
        if data.lstrip().startswith(b"-----BEGIN"):
            return x509.load_pem_x509_certificate(data)
        return x509.load_der_x509_certificate(data)
    except ValueError as exc:
        raise InvalidCertificate(f"cannot decode certificate: {exc}") from None


def verify_challenge_signature(
    certificate: x509.Certificate, message: bytes, signature: bytes
) -> None:
    """Check ``signature`` over ``message`` with the certificate's key, or raise BadSignature.

    RSA: PKCS#1 v1.5 with SHA-256. EC: P-256 with SHA-256; the signature may be DER or the raw
    64-byte r||s that PKCS#11 (CKM_ECDSA) returns.
    """
    key = certificate.public_key()
    try:
        if isinstance(key, rsa.RSAPublicKey):
            key.verify(signature, message, padding.PKCS1v15(), hashes.SHA256())
            return
        if isinstance(key, ec.EllipticCurvePublicKey):
            if not isinstance(key.curve, ec.SECP256R1):
                raise BadSignature(f"unsupported EC curve {key.curve.name}")
            _verify_p256(key, message, signature)
            return
    except InvalidSignature:
        raise BadSignature("signature does not match the certificate key") from None
    raise BadSignature(f"unsupported key type {type(key).__name__}")


def _verify_p256(key: ec.EllipticCurvePublicKey, message: bytes, signature: bytes) -> None:
    try:
        key.verify(signature, message, ec.ECDSA(hashes.SHA256()))
        return
    except (InvalidSignature, ValueError):
        if len(signature) != _P256_RAW_SIGNATURE_LEN:
            raise InvalidSignature from None
    half = _P256_RAW_SIGNATURE_LEN // 2
    der = encode_dss_signature(
        int.from_bytes(signature[:half], "big"), int.from_bytes(signature[half:], "big")
    )
    key.verify(der, message, ec.ECDSA(hashes.SHA256()))


def ps_id_nat_from_subject(subject: x509.Name) -> PSIdNat:
    """Extract the PSIdNat from a CPS certificate subject (CN first, then serialNumber)."""
    candidates = [
        attribute.value
        for oid in (NameOID.COMMON_NAME, NameOID.SERIAL_NUMBER)
        for attribute in subject.get_attributes_for_oid(oid)
    ]
    for value in candidates:
        if not isinstance(value, str):
            continue
        head = value.split("/", 1)[0].strip()
        try:
            return PSIdNat(head)
        except ValueError:
            continue
    raise UnmappableSubject(
        f"no PSIdNat (8+RPPS or 0+ADELI) in certificate subject {subject.rfc4514_string()!r}"
    )


def _first_attribute(subject: x509.Name, oid: x509.ObjectIdentifier) -> str | None:
    for attribute in subject.get_attributes_for_oid(oid):
        if isinstance(attribute.value, str):
            return attribute.value
    return None


def _is_self_signed(certificate: x509.Certificate) -> bool:
    if certificate.issuer != certificate.subject:
        return False
    try:
        certificate.verify_directly_issued_by(certificate)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


def _check_validity(certificate: x509.Certificate, at: datetime) -> None:
    if not certificate.not_valid_before_utc <= at <= certificate.not_valid_after_utc:
        raise ExpiredCertificate(
            f"certificate {certificate.subject.rfc4514_string()!r} is valid from "
            f"{certificate.not_valid_before_utc.isoformat()} to "
            f"{certificate.not_valid_after_utc.isoformat()}, not at {at.isoformat()}"
        )


def _check_digital_signature_usage(certificate: x509.Certificate) -> None:
    try:
        usage = certificate.extensions.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound:
        raise InvalidKeyUsage("leaf certificate has no keyUsage extension") from None
    if not usage.digital_signature:
        raise InvalidKeyUsage("leaf certificate keyUsage lacks digitalSignature")


# --- Login verification ---------------------------------------------------------------------

# Web-PKI profile (key sizes, basicConstraints, AKI/SKI, EKU clientAuth when an EKU is present)
# except that the leaf may lack subjectAltName: CPS certificates identify the holder in the
# subject DN, and the web-PKI client default would demand a SAN.
_CA_POLICY: Final = ExtensionPolicy.webpki_defaults_ca()
_EE_POLICY: Final = ExtensionPolicy.webpki_defaults_ee().may_be_present(
    x509.SubjectAlternativeName, Criticality.AGNOSTIC, None
)


@dataclass(frozen=True, slots=True)
class CpsLoginResult:
    """An authenticated professional."""

    ps_id_nat: PSIdNat
    rpps: RPPS | None
    adeli: ADELI | None
    surname: str | None
    given_name: str | None
    profession: str | None
    certificate: x509.Certificate
    chain: tuple[x509.Certificate, ...]  # leaf first, trust anchor last


class CpsLoginVerifier:
    """Verifies CPS login responses against a fixed trust configuration."""

    def __init__(
        self,
        *,
        ca_certificates: Sequence[x509.Certificate],
        crls: Iterable[x509.CertificateRevocationList],
        nonce_store: NonceStore,
        clock: Clock = utc_now,
        require_crl: bool = True,
    ) -> None:
        roots = [cert for cert in ca_certificates if _is_self_signed(cert)]
        if not roots:
            raise ValueError("the CA list must contain at least one self-signed root")
        self._roots = roots
        self._intermediates = [cert for cert in ca_certificates if not _is_self_signed(cert)]
        self._store = Store(roots)
        self._crls = list(crls)
        self._nonces = nonce_store
        self._clock = clock
        self._require_crl = require_crl

    def verify_login(
        self,
        *,
        nonce: str,
        signature: bytes,
        certificate: bytes | x509.Certificate,
        intermediates: Sequence[x509.Certificate] = (),
    ) -> CpsLoginResult:
        """Run every check; return the professional or raise a :class:`CpsLoginError`."""
        # Consume first: a nonce gets exactly one attempt, whatever the outcome.
        if not self._nonces.consume(nonce):
            raise UnknownNonce("unknown, expired or already used nonce")
        leaf = load_certificate(certificate)
        chain = self.verify_certificate(leaf, intermediates=intermediates)
        verify_challenge_signature(leaf, challenge_message(nonce), signature)
        ps_id_nat = ps_id_nat_from_subject(leaf.subject)
        return CpsLoginResult(
            ps_id_nat=ps_id_nat,
            rpps=ps_id_nat.rpps,
            adeli=ps_id_nat.adeli,
            surname=_first_attribute(leaf.subject, NameOID.SURNAME),
            given_name=_first_attribute(leaf.subject, NameOID.GIVEN_NAME),
            profession=_first_attribute(leaf.subject, NameOID.TITLE),
            certificate=leaf,
            chain=chain,
        )

    def verify_certificate(
        self,
        leaf: x509.Certificate,
        *,
        intermediates: Sequence[x509.Certificate] = (),
        at: datetime | None = None,
    ) -> tuple[x509.Certificate, ...]:
        """Validate ``leaf`` up to a configured root; return the chain (leaf first)."""
        when = at if at is not None else self._clock()
        candidates = [*self._intermediates, *intermediates]
        # The path verifier reports expiry as a generic error; check the name-chained path
        # first so that callers get ExpiredCertificate rather than UntrustedChain.
        _check_validity(leaf, when)
        for ancestor in self._name_chain(leaf, candidates):
            _check_validity(ancestor, when)
        _check_digital_signature_usage(leaf)

        verifier = (
            PolicyBuilder()
            .store(self._store)
            .time(when)
            .extension_policies(ca_policy=_CA_POLICY, ee_policy=_EE_POLICY)
            .build_client_verifier()
        )
        try:
            verified = verifier.verify(leaf, candidates)
        except VerificationError as exc:
            raise UntrustedChain(f"certificate chain not trusted: {exc}") from None
        chain = tuple(verified.chain)
        for child, issuer in zip(chain, chain[1:], strict=False):
            self._check_revocation(child, issuer, when)
        return chain

    def _name_chain(
        self, leaf: x509.Certificate, candidates: Sequence[x509.Certificate]
    ) -> list[x509.Certificate]:
        by_subject = {cert.subject: cert for cert in [*candidates, *self._roots]}
        path: list[x509.Certificate] = []
        current = leaf
        while current.issuer != current.subject and len(path) < 8:
            parent = by_subject.get(current.issuer)
            if parent is None or parent in path:
                break
            path.append(parent)
            current = parent
        return path

    def _check_revocation(
        self, certificate: x509.Certificate, issuer: x509.Certificate, at: datetime
    ) -> None:
        fresh: list[x509.CertificateRevocationList] = []
        for crl in self._crls:
            if crl.issuer != issuer.subject or not _may_sign_crls(issuer):
                continue
            issuer_key = issuer.public_key()
            if not isinstance(issuer_key, rsa.RSAPublicKey | ec.EllipticCurvePublicKey):
                continue
            if not crl.is_signature_valid(issuer_key):
                continue
            next_update = crl.next_update_utc
            if crl.last_update_utc > at or next_update is None or next_update < at:
                continue
            fresh.append(crl)
        if not fresh:
            if self._require_crl:
                raise RevocationUnavailable(
                    f"no valid, current CRL from {issuer.subject.rfc4514_string()!r}"
                )
            return
        for crl in fresh:
            if crl.get_revoked_certificate_by_serial_number(certificate.serial_number):
                raise RevokedCertificate(
                    f"certificate serial {certificate.serial_number:x} issued by "
                    f"{issuer.subject.rfc4514_string()!r} is revoked"
                )


def _may_sign_crls(issuer: x509.Certificate) -> bool:
    try:
        usage = issuer.extensions.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound:
        return True  # RFC 5280 leaves it unrestricted when the extension is absent
    return usage.crl_sign
