"""Sealing with the structure's certificate ("cachet"): XAdES-BES on the CDA, PAdES on the PDF.

The signer is a port: sealing code only ever calls `KeyHandle.sign` and reads the certificate
chain, never a private key, so a smart card (the professional's CPS through the card bridge) can
take the place of the software key read from PEM files (the structure's "cachet").

Everything here is synchronous CPU work (RSA, canonicalisation, PDF writing): the service runs
it with `run_cpu`. Verification checks each artefact's signature and its certificate chain up to
a configured trust anchor, at the time of verification.
"""

from __future__ import annotations

import asyncio
import base64
import fcntl
import io
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, Protocol, runtime_checkable

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from lxml import etree
from pydantic import BaseModel, ConfigDict, Field, computed_field

from bsante.chassis import certificates

_HASHES: dict[str, type[hashes.HashAlgorithm]] = {
    "sha256": hashes.SHA256,
    "sha384": hashes.SHA384,
    "sha512": hashes.SHA512,
}
_DS = "http://www.w3.org/2000/09/xmldsig#"
_XADES = "http://uri.etsi.org/01903/v1.3.2#"


class SigningError(RuntimeError):
    """The key holder could not sign (unsupported algorithm, card refused, key unreadable)."""


@runtime_checkable
class KeyHandle(Protocol):
    """Whoever holds a signing key: a software key here, a CPS card behind the card bridge.

    `sign` hashes `data` with `hash_algorithm` ("sha256", "sha384", "sha512") and returns an
    RSA PKCS#1 v1.5 signature, or a DER-encoded ECDSA signature for an EC key.
    """

    def certificate_chain(self) -> list[x509.Certificate]:
        """The signer's certificate first, then the intermediates (no need for the root)."""
        ...

    def sign(self, data: bytes, hash_algorithm: str) -> bytes: ...


def _hash(name: str) -> hashes.HashAlgorithm:
    try:
        return _HASHES[name.lower()]()
    except KeyError:
        raise SigningError(f"unsupported hash algorithm {name!r}") from None


class SoftwareKey:
    """A key and its certificates read from PEM files (mounted secrets in production)."""

    def __init__(
        self,
        private_key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey,
        chain: Sequence[x509.Certificate],
    ) -> None:
        if not chain:
            raise ValueError("a signing key needs its certificate")
        if _spki(chain[0].public_key()) != _spki(private_key.public_key()):
            raise ValueError("the certificate does not match the private key")
        self._key = private_key
        self._chain = list(chain)

    @classmethod
    def from_pem_files(
        cls,
        key: Path | str,
        cert: Path | str,
        chain: Iterable[Path | str] = (),
        *,
        password: bytes | None = None,
    ) -> SoftwareKey:
        private_key = serialization.load_pem_private_key(Path(key).read_bytes(), password)
        if not isinstance(private_key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey):
            raise ValueError("the signing key must be RSA or EC")
        certificates = x509.load_pem_x509_certificates(Path(cert).read_bytes())
        for extra in chain:
            certificates += x509.load_pem_x509_certificates(Path(extra).read_bytes())
        return cls(private_key, certificates)

    def certificate_chain(self) -> list[x509.Certificate]:
        return list(self._chain)

    def sign(self, data: bytes, hash_algorithm: str) -> bytes:
        algorithm = _hash(hash_algorithm)
        if isinstance(self._key, rsa.RSAPrivateKey):
            return self._key.sign(data, padding.PKCS1v15(), algorithm)
        return self._key.sign(data, ec.ECDSA(algorithm))


# signxml wants a `cryptography` private key object: these adapters forward `sign` to the key
# holder and refuse everything that would need the key material itself.


def _no_key_material(*_: object, **__: object) -> Any:
    raise TypeError("the private key stays with its holder: only sign() is available")


def _hash_name(algorithm: object) -> str:
    if not isinstance(algorithm, hashes.HashAlgorithm):
        raise TypeError("a key holder signs data with a named hash, not a precomputed digest")
    return algorithm.name


def _spki(public_key: Any) -> bytes:
    return bytes(
        public_key.public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )


class _RsaKeyHandleAdapter(rsa.RSAPrivateKey):
    def __init__(self, handle: KeyHandle, public_key: rsa.RSAPublicKey) -> None:
        self._handle, self._public = handle, public_key

    def sign(
        self,
        data: bytes,
        padding: padding.AsymmetricPadding,
        algorithm: Any,
    ) -> bytes:
        if padding.name != "EMSA-PKCS1-v1_5":
            raise TypeError("the key holder signs with PKCS#1 v1.5 only")
        return self._handle.sign(bytes(data), _hash_name(algorithm))

    @property
    def key_size(self) -> int:
        return self._public.key_size

    def public_key(self) -> rsa.RSAPublicKey:
        return self._public

    decrypt = private_numbers = private_bytes = __copy__ = __deepcopy__ = _no_key_material


class _EcKeyHandleAdapter(ec.EllipticCurvePrivateKey):
    def __init__(self, handle: KeyHandle, public_key: ec.EllipticCurvePublicKey) -> None:
        self._handle, self._public = handle, public_key

    def sign(
        self,
        data: bytes | bytearray | memoryview,
        signature_algorithm: ec.EllipticCurveSignatureAlgorithm,
    ) -> bytes:
        if not isinstance(signature_algorithm, ec.ECDSA):
            raise TypeError("the key holder signs with ECDSA only")
        return self._handle.sign(bytes(data), _hash_name(signature_algorithm.algorithm))

    @property
    def key_size(self) -> int:
        return self._public.key_size

    @property
    def curve(self) -> ec.EllipticCurve:
        return self._public.curve

    def public_key(self) -> ec.EllipticCurvePublicKey:
        return self._public

    exchange = private_numbers = private_bytes = __copy__ = __deepcopy__ = _no_key_material


def key_adapter(handle: KeyHandle) -> rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey:
    """A `cryptography` private key whose `sign()` asks `handle` (for libraries that want one)."""
    public = handle.certificate_chain()[0].public_key()
    if isinstance(public, rsa.RSAPublicKey):
        return _RsaKeyHandleAdapter(handle, public)
    if isinstance(public, ec.EllipticCurvePublicKey):
        return _EcKeyHandleAdapter(handle, public)
    raise SigningError(f"unsupported signing key type {type(public).__name__}")


# --- verification results -------------------------------------------------------------------


class ArtefactVerification(BaseModel):
    """What the verification found for one artefact (the CDA or the PDF)."""

    model_config = ConfigDict(frozen=True)

    artefact: Literal["cda", "pdf"]
    valid: bool  # intact and chained to a trust anchor
    intact: bool  # the signature matches the bytes
    chain_valid: bool
    signer_subject: str | None = None
    signing_time: datetime | None = None
    reason: str | None = None  # why not valid


class Verification(BaseModel):
    """Per artefact; `valid` when every artefact given is valid."""

    model_config = ConfigDict(frozen=True)

    cda: ArtefactVerification | None = None
    pdf: ArtefactVerification | None = None

    @computed_field  # type: ignore[prop-decorator]
    @property
    def valid(self) -> bool:
        checked = [a for a in (self.cda, self.pdf) if a is not None]
        return bool(checked) and all(a.valid for a in checked)


def _invalid(artefact: Literal["cda", "pdf"], reason: str, **found: Any) -> ArtefactVerification:
    return ArtefactVerification(
        artefact=artefact,
        valid=False,
        intact=found.pop("intact", False),
        chain_valid=found.pop("chain_valid", False),
        reason=reason,
        **found,
    )


# --- chain validation (cryptography's verifier, the policies signxml uses) ------------------


def _signing_key_usage(
    _policy: x509.verification.Policy, _cert: x509.Certificate, usage: x509.KeyUsage | None
) -> None:
    if usage is None or not (usage.digital_signature or usage.content_commitment):
        raise ValueError("the certificate's key usage does not allow signatures")


def _chain_error(
    chain: Sequence[x509.Certificate], anchors: Sequence[x509.Certificate]
) -> str | None:
    """None when `chain[0]` chains to one of `anchors` (intermediates from `chain[1:]`)."""
    if not anchors:
        return "no trust anchor configured"
    ee_policy = x509.verification.ExtensionPolicy.permit_all().require_present(
        x509.KeyUsage, x509.verification.Criticality.AGNOSTIC, _signing_key_usage
    )
    verifier = (
        x509.verification.PolicyBuilder()
        .store(x509.verification.Store(list(anchors)))
        .extension_policies(
            ee_policy=ee_policy, ca_policy=x509.verification.ExtensionPolicy.webpki_defaults_ca()
        )
        .build_client_verifier()
    )
    try:
        verifier.verify(chain[0], list(chain[1:]))
    except x509.verification.VerificationError as exc:
        return f"certificate chain not trusted: {exc}"
    return None


# --- XAdES-BES on the CDA -------------------------------------------------------------------


def _xades() -> tuple[type[Any], type[Any]]:
    from signxml.xades.xades import XAdESSigner, XAdESVerifier

    class Signer(XAdESSigner):
        signing_time: datetime | None = None

        def add_signing_time(self, properties: Any, sig_root: Any, signing_settings: Any) -> None:
            # signxml writes "now"; the service gives the signing time it records.
            super().add_signing_time(properties, sig_root, signing_settings)
            if self.signing_time is not None:
                element = properties.find(f"{{{_XADES}}}SigningTime")
                element.text = self.signing_time.astimezone(UTC).isoformat(timespec="seconds")

    return Signer, XAdESVerifier


def _seal_cda(
    key: KeyHandle, cda: bytes, signed_at: datetime | None, detached_reference: str | None = None
) -> bytes:
    from signxml.algorithms import DigestAlgorithm, SignatureConstructionMethod, SignatureMethod
    from signxml.xades.xades import XAdESDataObjectFormat

    signer_class, _ = _xades()
    chain = key.certificate_chain()
    is_ec = isinstance(chain[0].public_key(), ec.EllipticCurvePublicKey)
    signer = signer_class(
        method=(
            SignatureConstructionMethod.enveloped
            if detached_reference is None
            else SignatureConstructionMethod.detached
        ),
        signature_algorithm=SignatureMethod.ECDSA_SHA256 if is_ec else SignatureMethod.RSA_SHA256,
        digest_algorithm=DigestAlgorithm.SHA256,
        data_object_format=XAdESDataObjectFormat(
            Description="CDA R2 document", MimeType="text/xml"
        ),
    )
    signer.signing_time = signed_at
    root = etree.fromstring(cda, parser=etree.XMLParser(resolve_entities=False, no_network=True))
    # The KeyValue duplicates the certificate's key and invites ambiguity: X509Data only.
    signed = signer.sign(
        root,
        key=key_adapter(key),
        cert=chain,
        always_add_key_value=False,
        reference_uri=detached_reference,
    )
    # Enveloped: the document with its signature; detached: the signature alone.
    return bytes(etree.tostring(signed, xml_declaration=True, encoding="UTF-8"))


def _signature_certificates(signature: etree._Element) -> list[x509.Certificate]:
    texts = signature.findall(f"{{{_DS}}}KeyInfo/{{{_DS}}}X509Data/{{{_DS}}}X509Certificate")
    return [
        x509.load_der_x509_certificate(_b64decode(text.text or "")) for text in texts if text.text
    ]


def _b64decode(text: str) -> bytes:
    return base64.b64decode("".join(text.split()))


def _parse(data: bytes) -> etree._Element:
    return etree.fromstring(data, parser=etree.XMLParser(resolve_entities=False, no_network=True))


def _verify_cda(
    cda: bytes, anchors: Sequence[x509.Certificate], detached: bytes | None = None
) -> ArtefactVerification:
    from signxml.exceptions import InvalidInput, InvalidSignature

    _, verifier_class = _xades()
    try:
        root = _parse(cda)
    except etree.XMLSyntaxError as exc:
        return _invalid("cda", f"not well-formed XML: {exc}")
    if detached is None:
        signatures = root.findall(f"{{{_DS}}}Signature")
        signed: etree._Element = root
    else:
        try:
            signed = _parse(detached)
        except etree.XMLSyntaxError as exc:
            return _invalid("cda", f"the detached signature is not well-formed XML: {exc}")
        signatures = [signed] if signed.tag == f"{{{_DS}}}Signature" else []
    if len(signatures) != 1:
        kind = "enveloped" if detached is None else "detached"
        return _invalid("cda", f"expected one {kind} signature, found {len(signatures)}")
    try:
        certificates = _signature_certificates(signatures[0])
    except ValueError as exc:
        return _invalid("cda", f"unreadable certificate in the signature: {exc}")
    if not certificates:
        return _invalid("cda", "the signature carries no certificate")
    signer_cert = certificates[0]
    subject = signer_cert.subject.rfc4514_string()
    try:
        results = verifier_class().verify(
            signed,
            x509_cert=signer_cert,
            # The only outside reference a detached seal may make: the CDA given with it.
            uri_resolver=None if detached is None else (lambda _uri: _parse(cda)),
        )
    except (InvalidSignature, InvalidInput) as exc:
        return _invalid(
            "cda", f"signature does not match the document: {exc}", signer_subject=subject
        )
    # See what is signed: the whole document (enveloped: reference URI "").
    if results[0].signed_xml is None or results[0].signed_xml.tag != root.tag:
        return _invalid("cda", "the signature does not cover the document", signer_subject=subject)
    signing_time = _xades_signing_time(results)
    chain_error = _chain_error(certificates, anchors)
    return ArtefactVerification(
        artefact="cda",
        valid=chain_error is None,
        intact=True,
        chain_valid=chain_error is None,
        signer_subject=subject,
        signing_time=signing_time,
        reason=chain_error,
    )


def _xades_signing_time(results: Sequence[Any]) -> datetime | None:
    for result in results:
        properties = getattr(result, "signed_properties", None)
        if properties is not None:
            element = properties.find(f"{{{_XADES}}}SigningTime")
            if element is not None and element.text:
                return datetime.fromisoformat(element.text)
    return None


def unsealed_cda(sealed: bytes) -> bytes:
    """The CDA without its enveloped signature (what the CDA schema and schematrons validate)."""
    root = _parse(sealed)
    for signature in root.findall(f"{{{_DS}}}Signature"):
        root.remove(signature)
    return bytes(etree.tostring(root, xml_declaration=True, encoding="UTF-8"))


# --- PAdES on the PDF -----------------------------------------------------------------------


def _pades_signer(key: KeyHandle) -> Any:
    from asn1crypto import x509 as asn1_x509
    from pyhanko.sign.signers import Signer
    from pyhanko_certvalidator.registry import SimpleCertificateStore

    chain = [
        asn1_x509.Certificate.load(c.public_bytes(serialization.Encoding.DER))
        for c in key.certificate_chain()
    ]
    public = key.certificate_chain()[0].public_key()
    if isinstance(public, rsa.RSAPublicKey):
        placeholder = public.key_size // 8
    elif isinstance(public, ec.EllipticCurvePublicKey):
        placeholder = 2 * ((public.key_size + 7) // 8) + 9  # DER overhead, at most
    else:
        raise SigningError(f"unsupported signing key type {type(public).__name__}")

    class KeyHandleSigner(Signer):
        async def async_sign_raw(
            self, data: bytes, digest_algorithm: str, dry_run: bool = False
        ) -> bytes:
            if dry_run:  # pyHanko sizes the signature container: don't bother a card for it
                return bytes(placeholder)
            return key.sign(data, digest_algorithm)

    return KeyHandleSigner(
        signing_cert=chain[0],
        cert_registry=SimpleCertificateStore.from_certs(chain),  # type: ignore[no-untyped-call]
        embed_roots=False,
    )


def _seal_pdf(key: KeyHandle, pdf: bytes, signed_at: datetime | None, reason: str | None) -> bytes:
    from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
    from pyhanko.sign import fields, signers

    class TimedPdfSigner(signers.PdfSigner):
        def init_signing_session(self, *args: Any, **kwargs: Any) -> Any:
            session = super().init_signing_session(*args, **kwargs)
            if signed_at is not None:  # the CMS signing-time attribute, else pyHanko's clock
                session.system_time = signed_at
            return session

    meta = signers.PdfSignatureMetadata(
        field_name="Cachet",
        md_algorithm="sha256",
        subfilter=fields.SigSeedSubFilter.PADES,
        reason=reason,
    )
    output = io.BytesIO()
    writer = IncrementalPdfFileWriter(io.BytesIO(pdf))
    # pyHanko is asynchronous inside; this runs in a worker thread that has no event loop.
    asyncio.run(
        TimedPdfSigner(meta, signer=_pades_signer(key)).async_sign_pdf(writer, output=output)
    )
    return output.getvalue()


def _verify_pdf(pdf: bytes, anchors: Sequence[x509.Certificate]) -> ArtefactVerification:
    from pyhanko.pdf_utils.misc import PdfError
    from pyhanko.pdf_utils.reader import PdfFileReader
    from pyhanko.sign.validation import async_validate_pdf_signature
    from pyhanko.sign.validation.status import SignatureCoverageLevel

    try:
        reader = PdfFileReader(io.BytesIO(pdf), strict=False)
        signatures = reader.embedded_signatures
    except Exception as exc:  # pyHanko raises many kinds on a damaged file
        return _invalid("pdf", f"unreadable PDF: {exc}")
    if len(signatures) != 1:
        return _invalid("pdf", f"expected one signature, found {len(signatures)}")
    embedded = signatures[0]
    context = _validation_context(anchors)
    try:
        status = asyncio.run(
            async_validate_pdf_signature(embedded, signer_validation_context=context)
        )
    except (PdfError, ValueError, KeyError, TypeError) as exc:
        return _invalid("pdf", f"unreadable signature: {exc}")
    subject = _subject_of(status.signing_cert)
    signing_time = status.signer_reported_dt
    intact = bool(status.intact and status.valid)
    if not intact:
        return _invalid(
            "pdf",
            "signature does not match the document",
            signer_subject=subject,
            signing_time=signing_time,
        )
    if status.coverage != SignatureCoverageLevel.ENTIRE_FILE:
        return _invalid(
            "pdf",
            "the document was changed after it was signed",
            signer_subject=subject,
            signing_time=signing_time,
        )
    chain_error = _chain_error(
        [_to_cryptography(status.signing_cert)]
        + [_to_cryptography(c) for c in embedded.other_embedded_certs],
        anchors,
    )
    if chain_error is None and not status.trusted:
        chain_error = "certificate chain not trusted"
    return ArtefactVerification(
        artefact="pdf",
        valid=chain_error is None,
        intact=True,
        chain_valid=chain_error is None,
        signer_subject=subject,
        signing_time=signing_time,
        reason=chain_error,
    )


def _validation_context(anchors: Sequence[x509.Certificate]) -> Any:
    from asn1crypto import x509 as asn1_x509
    from pyhanko_certvalidator import ValidationContext

    return ValidationContext(
        trust_roots=[
            asn1_x509.Certificate.load(a.public_bytes(serialization.Encoding.DER)) for a in anchors
        ],
        allow_fetching=False,
        revocation_mode="soft-fail",
    )


def _to_cryptography(certificate: Any) -> x509.Certificate:
    return x509.load_der_x509_certificate(certificate.dump())


def _subject_of(certificate: Any) -> str | None:
    if certificate is None:
        return None
    return _to_cryptography(certificate).subject.rfc4514_string()


# --- the sealer -----------------------------------------------------------------------------


class Sealer:
    """Seals documents with one key and verifies seals against the configured trust anchors."""

    def __init__(self, key: KeyHandle, trust_anchors: Sequence[x509.Certificate]) -> None:
        self.key = key
        self.trust_anchors = list(trust_anchors)

    def seal_cda(self, cda: bytes, *, signed_at: datetime | None = None) -> bytes:
        """The CDA with an enveloped XAdES-BES signature (the last child of ClinicalDocument).

        CDA_extended.xsd has no place for it: the sealed document no longer passes the schema
        (`unsealed_cda` gives back what was validated). See `seal_cda_detached`.
        """
        return _seal_cda(self.key, cda, signed_at)

    def seal_cda_detached(
        self,
        cda: bytes,
        *,
        signed_at: datetime | None = None,
        reference: str = "urn:bsante:cda",
    ) -> bytes:
        """A detached XAdES-BES signature of the CDA (a `ds:Signature` document of its own).

        The CDA stays untouched (schema-valid); `reference` is the signature's Reference URI.
        """
        return _seal_cda(self.key, cda, signed_at, reference)

    def seal_pdf(
        self,
        pdf: bytes,
        *,
        signed_at: datetime | None = None,
        reason: str | None = "Cachet de la structure",
    ) -> bytes:
        """The PDF with a PAdES signature appended as an incremental update (PDF/A-2b kept)."""
        return _seal_pdf(self.key, pdf, signed_at, reason)

    def verify(
        self,
        cda: bytes | None = None,
        pdf: bytes | None = None,
        *,
        cda_signature: bytes | None = None,
    ) -> Verification:
        return verify(cda, pdf, trust_anchors=self.trust_anchors, cda_signature=cda_signature)


def verify(
    cda: bytes | None = None,
    pdf: bytes | None = None,
    *,
    trust_anchors: Sequence[x509.Certificate],
    cda_signature: bytes | None = None,
) -> Verification:
    """Both seals checked: signature over the bytes, then the chain to a trust anchor (now).

    The CDA's seal is enveloped in it, or given apart as `cda_signature` (`seal_cda_detached`).
    """
    return Verification(
        cda=None if cda is None else _verify_cda(cda, trust_anchors, cda_signature),
        pdf=None if pdf is None else _verify_pdf(pdf, trust_anchors),
    )


def load_certificates(files: Iterable[Path | str]) -> list[x509.Certificate]:
    """Every certificate of the PEM files (trust anchors, chain files)."""
    found: list[x509.Certificate] = []
    for file in files:
        found += x509.load_pem_x509_certificates(Path(file).read_bytes())
    return found


# --- demo PKI -------------------------------------------------------------------------------


@dataclass(frozen=True)
class DemoPki:
    """Files of a demo CA and of a structure's "cachet" certificate issued by it."""

    directory: Path
    ca_cert_file: Path
    ca_key_file: Path
    key_file: Path
    cert_file: Path

    @property
    def chain_files(self) -> tuple[Path, ...]:
        return ()  # the cachet is issued by the root directly

    @property
    def trust_anchor_files(self) -> tuple[Path, ...]:
        return (self.ca_cert_file,)

    def key(self) -> SoftwareKey:
        return SoftwareKey.from_pem_files(self.key_file, self.cert_file, self.chain_files)

    def trust_anchors(self) -> list[x509.Certificate]:
        return load_certificates(self.trust_anchor_files)

    def sealer(self) -> Sealer:
        return Sealer(self.key(), self.trust_anchors())


DEMO_CA_NAME = "Bureautique Santé DEMO CA (not for production)"


def ensure_demo_pki(
    directory: Path | str,
    *,
    finess: str = "750000001",
    structure_name: str = "Structure de démonstration",
) -> DemoPki:
    """A demo CA and a cachet certificate for `finess` under `directory`, made once.

    Idempotent: files already there are kept (a second call, another process later). Keys are
    written with mode 0600, each file atomically (written aside, then renamed).
    """
    folder = Path(directory)
    pki = DemoPki(
        directory=folder,
        ca_cert_file=folder / "demo-ca.pem",
        ca_key_file=folder / "demo-ca.key",
        key_file=folder / f"cachet-{finess}.key",
        cert_file=folder / f"cachet-{finess}.pem",
    )
    folder.mkdir(parents=True, exist_ok=True)
    # Two processes starting together (replicas, a test run beside `make run`) make one PKI.
    with open(folder / ".lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        _make_demo_pki(pki, finess, structure_name)
    return pki


def _make_demo_pki(pki: DemoPki, finess: str, structure_name: str) -> None:
    if not (pki.ca_cert_file.is_file() and pki.ca_key_file.is_file()):
        ca = certificates.issue(
            certificates.name(DEMO_CA_NAME, organization="Bureautique Santé"),
            certificates.rsa_key(),
            ca=True,
            path_length=0,
            days=3650,
        )
        certificates.write_private_key(pki.ca_key_file, ca.key)
        certificates.write_file(pki.ca_cert_file, ca.pem)
        for stale in (pki.key_file, pki.cert_file):  # issued by a CA that is gone
            stale.unlink(missing_ok=True)
    if not (pki.key_file.is_file() and pki.cert_file.is_file()):
        ca_key = serialization.load_pem_private_key(pki.ca_key_file.read_bytes(), None)
        assert isinstance(ca_key, rsa.RSAPrivateKey)
        issuer = certificates.Issued(
            x509.load_pem_x509_certificate(pki.ca_cert_file.read_bytes()), ca_key
        )
        cachet = certificates.issue(
            # The structure's identifier as ANS cachet certificates carry it: type 3 + FINESS.
            certificates.name(
                f"Cachet {structure_name}",
                organization=structure_name,
                unit=f"FINESS {finess}",
                serial_number=f"3{finess}",
            ),
            certificates.rsa_key(),
            issuer,
            days=3 * 365,
            non_repudiation=True,
        )
        certificates.write_private_key(pki.key_file, cachet.key)
        certificates.write_file(pki.cert_file, cachet.pem)


# --- configuration --------------------------------------------------------------------------


class SigningNotConfigured(RuntimeError):
    """Neither a signing key nor a demo PKI directory is configured."""


class SealingSettings(BaseModel):
    """The sealing settings a service adds to its own (`class S(ServiceSettings, SealingSettings)`).

    In production the key, certificate, chain and trust anchors are mounted files; a `{finess}`
    in the key and certificate paths gives each structure its own cachet. With only
    `signing_demo_pki_dir` set (what `make run` does), a demo CA and cachets are made there.
    """

    signing_key_file: str = Field(
        "", description="PEM private key of the cachet ({finess}: one per structure)"
    )
    signing_key_password_file: str = Field("", description="File holding the key's passphrase")
    signing_cert_file: str = Field(
        "", description="PEM certificate of the cachet ({finess}: one per structure)"
    )
    signing_chain_files: list[str] = Field(
        default_factory=list, description="PEM intermediate certificates (JSON list)"
    )
    signing_trust_anchor_files: list[str] = Field(
        default_factory=list, description="PEM trust anchors seals are verified to (JSON list)"
    )
    signing_demo_pki_dir: str = Field(
        "", description="Where a demo CA and cachets are made when no key is configured"
    )
    signing_demo_finess: str = Field("750000001", description="FINESS of the default cachet")

    def sealer(self, finess: str | None = None) -> Sealer:
        """The sealer of structure `finess` (reads the files; makes the demo PKI the first time)."""
        anchors = load_certificates(self.signing_trust_anchor_files)
        if self.signing_key_file and self.signing_cert_file:
            per_structure = "{finess}" in self.signing_key_file + self.signing_cert_file
            if per_structure and not finess:
                raise SigningNotConfigured("the cachet files are per structure: give its FINESS")
            password = (
                Path(self.signing_key_password_file).read_bytes().strip()
                if self.signing_key_password_file
                else None
            )
            key = SoftwareKey.from_pem_files(
                self.signing_key_file.replace("{finess}", finess or ""),
                self.signing_cert_file.replace("{finess}", finess or ""),
                self.signing_chain_files,
                password=password,
            )
            return Sealer(key, anchors)
        if self.signing_demo_pki_dir:
            demo = ensure_demo_pki(
                self.signing_demo_pki_dir, finess=finess or self.signing_demo_finess
            )
            return Sealer(demo.key(), demo.trust_anchors() + anchors)
        raise SigningNotConfigured(
            "set the signing key and certificate files, or a demo PKI directory"
        )
