"""Tests for CPS card login verification with a throw-away PKI generated at test time."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from bsante.chassis import certificates
from bsante.chassis.certificates import Issued, PrivateKey
from bsante.identity.cps import (
    BadSignature,
    ChallengeIssuer,
    CpsLoginResult,
    CpsLoginVerifier,
    ExpiredCertificate,
    InMemoryNonceStore,
    InvalidCertificate,
    InvalidKeyUsage,
    RevocationUnavailable,
    RevokedCertificate,
    UnknownNonce,
    UnmappableSubject,
    UntrustedChain,
    challenge_message,
    load_certificate,
    ps_id_nat_from_subject,
)

NOW = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)
DAY = timedelta(days=1)


class FakeClock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def _rsa() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _name(cn: str, org: str = "ASIP-SANTE") -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "FR"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, org),
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "IGC-SANTE TEST"),
            x509.NameAttribute(NameOID.COMMON_NAME, cn),
        ]
    )


def cps_subject(ps_id_nat: str, surname: str = "DOC0036791", given: str = "KIT") -> x509.Name:
    """Subject shaped like an IGC-Santé CPS certificate (multi-valued RDN with the CN)."""
    return x509.Name(
        [
            x509.RelativeDistinguishedName([x509.NameAttribute(NameOID.COUNTRY_NAME, "FR")]),
            x509.RelativeDistinguishedName([x509.NameAttribute(NameOID.TITLE, "Médecin")]),
            x509.RelativeDistinguishedName(
                [
                    x509.NameAttribute(NameOID.SURNAME, surname),
                    x509.NameAttribute(NameOID.COMMON_NAME, ps_id_nat),
                    x509.NameAttribute(NameOID.GIVEN_NAME, given),
                ]
            ),
        ]
    )


def issue(
    subject: x509.Name,
    key: PrivateKey,
    issuer: Issued | None,
    *,
    ca: bool,
    not_before: datetime = NOW - 30 * DAY,
    not_after: datetime = NOW + 365 * DAY,
    key_usage_digital_signature: bool = True,
) -> Issued:
    return certificates.issue(
        subject,
        key,
        issuer,
        ca=ca,
        not_before=not_before,
        not_after=not_after,
        digital_signature=None if ca else key_usage_digital_signature,
        key_encipherment=not ca and not key_usage_digital_signature,
        extended_key_usage=[] if ca else [ExtendedKeyUsageOID.CLIENT_AUTH],
    )


def make_crl(
    issuer: Issued,
    revoked: Sequence[x509.Certificate] = (),
    *,
    last_update: datetime = NOW - DAY,
    next_update: datetime = NOW + 6 * DAY,
    signer: PrivateKey | None = None,
) -> x509.CertificateRevocationList:
    return certificates.crl(
        issuer,
        revoked,
        last_update=last_update,
        next_update=next_update,
        revocation_date=NOW - 2 * DAY,
        signer=signer,
    )


def sign(key: PrivateKey, message: bytes) -> bytes:
    if isinstance(key, rsa.RSAPrivateKey):
        return key.sign(message, padding.PKCS1v15(), hashes.SHA256())
    return key.sign(message, ec.ECDSA(hashes.SHA256()))


@dataclass
class Pki:
    root: Issued
    intermediate: Issued
    leaf: Issued
    ec_leaf: Issued
    root_crl: x509.CertificateRevocationList
    intermediate_crl: x509.CertificateRevocationList


@pytest.fixture(scope="module")
def pki() -> Pki:
    root = issue(_name("TEST AC RACINE IGC-SANTE"), _rsa(), None, ca=True)
    intermediate = issue(_name("TEST AC IGC-SANTE FORT PERSONNES"), _rsa(), root, ca=True)
    leaf = issue(cps_subject("899700367917"), _rsa(), intermediate, ca=False)
    ec_leaf = issue(
        cps_subject("801234567897", "PHARMACH0007512", "CAROLE"),
        ec.generate_private_key(ec.SECP256R1()),
        intermediate,
        ca=False,
    )
    return Pki(
        root=root,
        intermediate=intermediate,
        leaf=leaf,
        ec_leaf=ec_leaf,
        root_crl=make_crl(root),
        intermediate_crl=make_crl(intermediate),
    )


@dataclass
class Setup:
    clock: FakeClock
    store: InMemoryNonceStore
    issuer: ChallengeIssuer
    verifier: CpsLoginVerifier


def make_setup(
    pki: Pki,
    *,
    crls: Sequence[x509.CertificateRevocationList] | None = None,
    require_crl: bool = True,
) -> Setup:
    clock = FakeClock(NOW)
    store = InMemoryNonceStore(clock)
    verifier = CpsLoginVerifier(
        ca_certificates=[pki.intermediate.cert, pki.root.cert],
        crls=[pki.root_crl, pki.intermediate_crl] if crls is None else crls,
        nonce_store=store,
        clock=clock,
        require_crl=require_crl,
    )
    return Setup(clock, store, ChallengeIssuer(store, clock=clock), verifier)


def login(setup: Setup, who: Issued, *, der: bool = True) -> CpsLoginResult:
    challenge = setup.issuer.issue()
    encoding = serialization.Encoding.DER if der else serialization.Encoding.PEM
    return setup.verifier.verify_login(
        nonce=challenge.nonce,
        signature=sign(who.key, challenge.message),
        certificate=who.cert.public_bytes(encoding),
    )


# --- Happy paths ----------------------------------------------------------------------------


def test_valid_rsa_login_maps_subject_to_rpps(pki: Pki) -> None:
    setup = make_setup(pki)
    challenge = setup.issuer.issue()
    result = setup.verifier.verify_login(
        nonce=challenge.nonce,
        signature=sign(pki.leaf.key, challenge.message),
        certificate=pki.leaf.cert.public_bytes(serialization.Encoding.DER),
    )
    assert result.ps_id_nat.value == "899700367917"
    assert result.rpps is not None and result.rpps.value == "99700367917"
    assert result.adeli is None
    assert (result.surname, result.given_name, result.profession) == (
        "DOC0036791",
        "KIT",
        "Médecin",
    )
    assert result.chain == (pki.leaf.cert, pki.intermediate.cert, pki.root.cert)


def test_valid_ecdsa_login_with_pem_certificate(pki: Pki) -> None:
    result = login(make_setup(pki), pki.ec_leaf, der=False)
    assert result.ps_id_nat.value == "801234567897"


def test_ecdsa_raw_r_s_signature_is_accepted(pki: Pki) -> None:
    setup = make_setup(pki)
    challenge = setup.issuer.issue()
    r, s = decode_dss_signature(sign(pki.ec_leaf.key, challenge.message))
    raw = r.to_bytes(32, "big") + s.to_bytes(32, "big")
    result = setup.verifier.verify_login(
        nonce=challenge.nonce, signature=raw, certificate=pki.ec_leaf.cert
    )
    assert result.rpps is not None and result.rpps.value == "01234567897"


def test_challenge_properties(pki: Pki) -> None:
    setup = make_setup(pki)
    first, second = setup.issuer.issue(), setup.issuer.issue()
    assert first.nonce != second.nonce
    assert len(first.nonce) >= 43  # 256 bits in URL-safe base64
    assert first.expires_at == NOW + timedelta(minutes=2)
    assert first.message == challenge_message(first.nonce)
    assert first.message.startswith(b"bsante-cps-login-v1:")


# --- Nonce failures -------------------------------------------------------------------------


def test_replayed_nonce_is_refused(pki: Pki) -> None:
    setup = make_setup(pki)
    challenge = setup.issuer.issue()
    signature = sign(pki.leaf.key, challenge.message)
    setup.verifier.verify_login(
        nonce=challenge.nonce, signature=signature, certificate=pki.leaf.cert
    )
    with pytest.raises(UnknownNonce):
        setup.verifier.verify_login(
            nonce=challenge.nonce, signature=signature, certificate=pki.leaf.cert
        )


def test_expired_nonce_is_refused(pki: Pki) -> None:
    setup = make_setup(pki)
    challenge = setup.issuer.issue()
    setup.clock.now = NOW + timedelta(minutes=2, seconds=1)
    with pytest.raises(UnknownNonce):
        setup.verifier.verify_login(
            nonce=challenge.nonce,
            signature=sign(pki.leaf.key, challenge.message),
            certificate=pki.leaf.cert,
        )


def test_unknown_nonce_is_refused(pki: Pki) -> None:
    setup = make_setup(pki)
    message = challenge_message("never-issued")
    with pytest.raises(UnknownNonce):
        setup.verifier.verify_login(
            nonce="never-issued",
            signature=sign(pki.leaf.key, message),
            certificate=pki.leaf.cert,
        )


def test_failed_attempt_burns_the_nonce(pki: Pki) -> None:
    setup = make_setup(pki)
    challenge = setup.issuer.issue()
    with pytest.raises(BadSignature):
        setup.verifier.verify_login(
            nonce=challenge.nonce, signature=b"\x00" * 256, certificate=pki.leaf.cert
        )
    with pytest.raises(UnknownNonce):
        setup.verifier.verify_login(
            nonce=challenge.nonce,
            signature=sign(pki.leaf.key, challenge.message),
            certificate=pki.leaf.cert,
        )


def test_in_memory_store_purges_expired_entries() -> None:
    clock = FakeClock(NOW)
    store = InMemoryNonceStore(clock)
    store.put("a", NOW + timedelta(seconds=10))
    clock.now = NOW + timedelta(seconds=11)
    store.put("b", NOW + timedelta(minutes=5))
    assert len(store) == 1
    assert store.consume("b") is True
    assert store.consume("b") is False


# --- Certificate failures -------------------------------------------------------------------


def test_expired_leaf_is_refused(pki: Pki) -> None:
    expired = issue(
        cps_subject("899700367917"),
        _rsa(),
        pki.intermediate,
        ca=False,
        not_before=NOW - 400 * DAY,
        not_after=NOW - DAY,
    )
    with pytest.raises(ExpiredCertificate):
        login(make_setup(pki), expired)


def test_not_yet_valid_leaf_is_refused(pki: Pki) -> None:
    future = issue(
        cps_subject("899700367917"), _rsa(), pki.intermediate, ca=False, not_before=NOW + DAY
    )
    with pytest.raises(ExpiredCertificate):
        login(make_setup(pki), future)


def test_expired_intermediate_is_reported_as_expired(pki: Pki) -> None:
    old_ca = issue(
        _name("TEST AC IGC-SANTE ANCIENNE"),
        _rsa(),
        pki.root,
        ca=True,
        not_before=NOW - 800 * DAY,
        not_after=NOW - DAY,
    )
    leaf = issue(cps_subject("899700367917"), _rsa(), old_ca, ca=False)
    setup = make_setup(pki)
    challenge = setup.issuer.issue()
    with pytest.raises(ExpiredCertificate):
        setup.verifier.verify_login(
            nonce=challenge.nonce,
            signature=sign(leaf.key, challenge.message),
            certificate=leaf.cert,
            intermediates=[old_ca.cert],
        )


def test_revoked_leaf_is_refused(pki: Pki) -> None:
    revoked = issue(cps_subject("899700367917"), _rsa(), pki.intermediate, ca=False)
    crls = [pki.root_crl, make_crl(pki.intermediate, [revoked.cert])]
    with pytest.raises(RevokedCertificate):
        login(make_setup(pki, crls=crls), revoked)
    # The other certificates of the same CA are still accepted with that CRL.
    login(make_setup(pki, crls=crls), pki.leaf)


def test_revoked_intermediate_is_refused(pki: Pki) -> None:
    crls = [make_crl(pki.root, [pki.intermediate.cert]), pki.intermediate_crl]
    with pytest.raises(RevokedCertificate):
        login(make_setup(pki, crls=crls), pki.leaf)


def test_crl_signed_by_another_key_is_ignored_and_login_fails_closed(pki: Pki) -> None:
    forged = make_crl(pki.intermediate, signer=_rsa())
    with pytest.raises(RevocationUnavailable):
        login(make_setup(pki, crls=[pki.root_crl, forged]), pki.leaf)


def test_stale_crl_fails_closed(pki: Pki) -> None:
    stale = make_crl(pki.intermediate, last_update=NOW - 10 * DAY, next_update=NOW - DAY)
    with pytest.raises(RevocationUnavailable):
        login(make_setup(pki, crls=[pki.root_crl, stale]), pki.leaf)


def test_missing_crl_can_be_tolerated_explicitly(pki: Pki) -> None:
    result = login(make_setup(pki, crls=[], require_crl=False), pki.leaf)
    assert result.rpps is not None and result.rpps.value == "99700367917"


def test_leaf_signed_by_another_ca_is_refused(pki: Pki) -> None:
    rogue_root = issue(_name("ROGUE ROOT", "EVIL"), _rsa(), None, ca=True)
    rogue_leaf = issue(cps_subject("899700367917"), _rsa(), rogue_root, ca=False)
    with pytest.raises(UntrustedChain):
        login(make_setup(pki), rogue_leaf)


def test_leaf_signed_by_impostor_ca_with_the_same_name_is_refused(pki: Pki) -> None:
    # Same DN as the trusted intermediate, different key: only the signature tells them apart.
    impostor = issue(pki.intermediate.cert.subject, _rsa(), None, ca=True)
    leaf = issue(cps_subject("899700367917"), _rsa(), impostor, ca=False)
    with pytest.raises(UntrustedChain):
        login(make_setup(pki), leaf)


def test_bad_signature_is_refused(pki: Pki) -> None:
    setup = make_setup(pki)
    challenge = setup.issuer.issue()
    other_key = _rsa()
    with pytest.raises(BadSignature):
        setup.verifier.verify_login(
            nonce=challenge.nonce,
            signature=sign(other_key, challenge.message),
            certificate=pki.leaf.cert,
        )


def test_signature_over_the_bare_nonce_is_refused(pki: Pki) -> None:
    setup = make_setup(pki)
    challenge = setup.issuer.issue()
    with pytest.raises(BadSignature):
        setup.verifier.verify_login(
            nonce=challenge.nonce,
            signature=sign(pki.leaf.key, challenge.nonce.encode()),
            certificate=pki.leaf.cert,
        )


def test_leaf_without_digital_signature_usage_is_refused(pki: Pki) -> None:
    leaf = issue(
        cps_subject("899700367917"),
        _rsa(),
        pki.intermediate,
        ca=False,
        key_usage_digital_signature=False,
    )
    with pytest.raises(InvalidKeyUsage):
        login(make_setup(pki), leaf)


def test_garbage_certificate_is_refused() -> None:
    with pytest.raises(InvalidCertificate):
        load_certificate(b"not a certificate")


def test_ca_list_without_root_is_rejected(pki: Pki) -> None:
    with pytest.raises(ValueError, match="self-signed root"):
        CpsLoginVerifier(
            ca_certificates=[pki.intermediate.cert],
            crls=[],
            nonce_store=InMemoryNonceStore(),
        )


# --- Subject mapping ------------------------------------------------------------------------


def test_subject_mapping_variants() -> None:
    assert ps_id_nat_from_subject(cps_subject("899700367917")).value == "899700367917"
    # ADELI holder, as on an ANS test card: CN = 0 + ADELI.
    assert ps_id_nat_from_subject(cps_subject("00B7010446")).adeli is not None
    # "<id>/<suffix>" form.
    assert ps_id_nat_from_subject(cps_subject("899700367917/DOC")).value == "899700367917"
    legacy = x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, "DUPONT PIERRE"),
            x509.NameAttribute(NameOID.SERIAL_NUMBER, "899700367917"),
        ]
    )
    assert ps_id_nat_from_subject(legacy).value == "899700367917"


@pytest.mark.parametrize(
    "cn",
    [
        "899700367918",  # RPPS with a wrong Luhn digit
        "3760021832/000000018",  # staff card: structure-internal identifier
        "DRIMbox",
    ],
)
def test_unmappable_subjects(cn: str) -> None:
    with pytest.raises(UnmappableSubject):
        ps_id_nat_from_subject(cps_subject(cn))


def test_login_with_unmappable_subject_is_refused(pki: Pki) -> None:
    leaf = issue(cps_subject("CLIENT_TEST"), _rsa(), pki.intermediate, ca=False)
    with pytest.raises(UnmappableSubject):
        login(make_setup(pki), leaf)
