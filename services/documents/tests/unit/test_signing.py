"""Sealing: XAdES-BES on the CDA, PAdES on the PDF (still PDF/A-2b), verification, demo PKI."""

from __future__ import annotations

import io
import stat
from datetime import datetime
from pathlib import Path

import pikepdf
import pikepdf.pdfa
import pytest
from cryptography import x509
from lxml import etree
from pydantic_settings import SettingsConfigDict

from bsante.chassis.settings import ServiceSettings
from bsante.documents import cda, editor, samples, signing
from bsante.documents.conformance import CisisKit, ConformanceValidator
from bsante.documents.pdf import ReportPage, render_pdf
from bsante.documents.signing import DemoPki, KeyHandle, Sealer, SoftwareKey

DS = "{http://www.w3.org/2000/09/xmldsig#}"


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> DemoPki:
    return signing.ensure_demo_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="module")
def other_pki(tmp_path_factory: pytest.TempPathFactory) -> DemoPki:
    """Another demo CA: its certificates are valid, but not trusted by `pki`'s anchors."""
    return signing.ensure_demo_pki(tmp_path_factory.mktemp("other-pki"))


@pytest.fixture(scope="module")
def sealer(pki: DemoPki) -> Sealer:
    return pki.sealer()


@pytest.fixture(scope="module")
def cda_bytes() -> bytes:
    document = cda.build_cda_n1(
        samples.metadata(), samples.patient(), samples.author(), b"%PDF-1.7 report"
    )
    return cda.to_bytes(document)


@pytest.fixture(scope="module")
def pdf_bytes() -> bytes:
    page = ReportPage(
        title="Compte rendu de consultation",
        organisation=samples.organisation(),
        patient=samples.patient(),
        author=samples.author(),
        document_date=samples.SIGNED_AT.date(),
        signed_at=samples.SIGNED_AT,
    )
    return render_pdf(page, editor.to_html(samples.body(), samples.FIELD_VALUES))


@pytest.fixture(scope="module")
def sealed_cda(sealer: Sealer, cda_bytes: bytes) -> bytes:
    return sealer.seal_cda(cda_bytes, signed_at=samples.SIGNED_AT)


@pytest.fixture(scope="module")
def sealed_pdf(sealer: Sealer, pdf_bytes: bytes) -> bytes:
    return sealer.seal_pdf(pdf_bytes, signed_at=samples.SIGNED_AT)


class RecordingCard:
    """A key holder that only signs (like a CPS card): no private key object leaves it."""

    def __init__(self, key: SoftwareKey) -> None:
        self._key = key
        self.calls: list[str] = []

    def certificate_chain(self) -> list[x509.Certificate]:
        return self._key.certificate_chain()

    def sign(self, data: bytes, hash_algorithm: str) -> bytes:
        self.calls.append(hash_algorithm)
        return self._key.sign(data, hash_algorithm)


def _flip(data: bytes, index: int) -> bytes:
    """`data` with the byte at `index` changed to another printable ASCII character."""
    changed = b"X" if data[index : index + 1] != b"X" else b"Y"
    return data[:index] + changed + data[index + 1 :]


# --- CDA ------------------------------------------------------------------------------------


def test_the_sealed_cda_verifies_with_the_cachet_subject_and_signing_time(
    sealer: Sealer, sealed_cda: bytes
) -> None:
    result = sealer.verify(cda=sealed_cda)
    assert result.valid and result.pdf is None
    assert result.model_dump(mode="json")["valid"] is True  # what an endpoint would answer
    assert result.cda is not None
    assert result.cda.intact and result.cda.chain_valid and result.cda.reason is None
    assert result.cda.signer_subject is not None and "FINESS 750000001" in result.cda.signer_subject
    assert result.cda.signing_time == samples.SIGNED_AT


def test_the_cda_signature_is_enveloped_xades_bes(sealed_cda: bytes, cda_bytes: bytes) -> None:
    root = etree.fromstring(sealed_cda)
    signature = root[-1]
    assert signature.tag == f"{DS}Signature"  # the last child of ClinicalDocument
    xades = "{http://uri.etsi.org/01903/v1.3.2#}"
    properties = signature.find(f"{DS}Object/{xades}QualifyingProperties/{xades}SignedProperties")
    assert properties is not None
    assert properties.find(f".//{xades}SigningCertificateV2") is not None
    assert properties.find(f".//{xades}SigningTime") is not None
    references = signature.findall(f"{DS}SignedInfo/{DS}Reference")
    assert [r.get("URI") for r in references][0] == ""  # the whole document
    assert signature.find(f"{DS}KeyInfo/{DS}KeyValue") is None  # only the certificate
    # Without its seal the document is exactly what was given (what the kit validated).
    assert etree.tostring(etree.fromstring(signing.unsealed_cda(sealed_cda))) == etree.tostring(
        etree.fromstring(cda_bytes)
    )


@pytest.mark.parametrize(
    "target",
    [b"PAT-TROIS", b"279035121518989", b"<ds:SignatureValue>", b"<ds:X509Certificate>"],
    ids=["patient-name", "ins", "signature-value", "certificate"],
)
def test_one_changed_byte_of_the_cda_fails(
    sealer: Sealer, sealed_cda: bytes, target: bytes
) -> None:
    index = sealed_cda.index(target) + len(target) + 3 if target.startswith(b"<") else None
    index = index if index is not None else sealed_cda.index(target) + 2
    result = sealer.verify(cda=_flip(sealed_cda, index))
    assert not result.valid
    assert result.cda is not None and not result.cda.valid and result.cda.reason


def test_a_cda_without_a_seal_or_not_xml_fails(sealer: Sealer, cda_bytes: bytes) -> None:
    unsealed = sealer.verify(cda=cda_bytes).cda
    assert unsealed is not None and not unsealed.valid and "found 0" in (unsealed.reason or "")
    garbage = sealer.verify(cda=b"<ClinicalDocument").cda
    assert garbage is not None and not garbage.valid and "XML" in (garbage.reason or "")


# --- PDF ------------------------------------------------------------------------------------


def test_the_sealed_pdf_verifies(sealer: Sealer, sealed_pdf: bytes, pdf_bytes: bytes) -> None:
    assert sealed_pdf.startswith(pdf_bytes)  # an incremental update: the rendered bytes stay
    result = sealer.verify(pdf=sealed_pdf)
    assert result.valid and result.cda is None
    assert result.pdf is not None and result.pdf.intact and result.pdf.chain_valid
    assert result.pdf.signer_subject is not None and "FINESS 750000001" in result.pdf.signer_subject
    assert result.pdf.signing_time == samples.SIGNED_AT


def _without_form(sealed: bytes) -> bytes:
    """The sealed file less its signature field and the PAdES (ESIC) developer extension."""
    with pikepdf.open(io.BytesIO(sealed)) as pdf:
        assert set(pdf.Root.Extensions.keys()) == {"/ESIC"}
        del pdf.Root["/Extensions"]
        del pdf.Root["/AcroForm"]
        for page in pdf.pages:
            if "/Annots" in page:
                del page["/Annots"]
        out = io.BytesIO()
        pdf.save(out)
        return out.getvalue()


def test_the_sealed_pdf_is_still_pdfa_2b(sealed_pdf: bytes, tmp_path: Path) -> None:
    """pikepdf's validator does not check signature fields nor the PAdES developer extension
    (it reports them as `unsupported`, not as violations).

    So: no violation is found, the file less those passes, and the PDF/A-2 rules on forms and
    annotations (ISO 19005-2 6.3.2, 6.3.3, 6.4.1) are checked here.
    """
    path = tmp_path / "sealed.pdf"
    path.write_bytes(sealed_pdf)
    report = pikepdf.pdfa.validate_written(path, "2b")
    assert report.violations == () and report.unsupported, report.summary()
    assert all(
        "/AcroForm" in f.where or "/Extensions" in f.where or "Widget" in f.message
        for f in report.unsupported
    ), report.summary()
    path.write_bytes(_without_form(sealed_pdf))
    assert pikepdf.pdfa.validate_written(path, "2b").passed
    with pikepdf.open(io.BytesIO(sealed_pdf)) as pdf:
        form = pdf.Root.AcroForm
        assert "/XFA" not in form and not form.get("/NeedAppearances", False)
        assert "/NeedsRendering" not in pdf.Root
        (field,) = form.Fields
        assert field.FT == "/Sig" and field.V.SubFilter == "/ETSI.CAdES.detached"
        widgets = [a for page in pdf.pages for a in page.get("/Annots", [])]
        assert len(widgets) == 1
        widget = widgets[0]
        flags = int(widget.F)
        assert flags & 4 and not flags & (1 | 2 | 32 | 256)  # Print; not Invisible/Hidden/NoView
        x1, y1, x2, y2 = (float(v) for v in widget.Rect)
        assert (x1 == x2 and y1 == y2) or set(widget.AP.keys()) == {"/N"}
        assert "/A" not in widget and "/AA" not in widget
    with pikepdf.open(io.BytesIO(sealed_pdf)) as pdf, pdf.open_metadata() as meta:
        assert meta.get("pdfaid:part") == "2" and meta.get("pdfaid:conformance") == "B"


@pytest.mark.parametrize("where", ["content", "signature", "end"])
def test_one_changed_byte_of_the_pdf_fails(
    sealer: Sealer, sealed_pdf: bytes, pdf_bytes: bytes, where: str
) -> None:
    if where == "content":
        index = len(pdf_bytes) // 2
    elif where == "signature":
        index = sealed_pdf.index(b"/Contents <", len(pdf_bytes)) + len(b"/Contents <") + 40
    else:
        index = len(sealed_pdf) - 3
    result = sealer.verify(pdf=_flip(sealed_pdf, index))
    assert not result.valid
    assert result.pdf is not None and not result.pdf.valid and result.pdf.reason


def test_a_pdf_changed_after_signing_fails(sealer: Sealer, sealed_pdf: bytes) -> None:
    with pikepdf.open(io.BytesIO(sealed_pdf)) as pdf:
        pdf.docinfo["/Title"] = "Autre titre"
        out = io.BytesIO()
        pdf.save(out)  # a rewrite: the byte range no longer covers the document
    result = sealer.verify(pdf=out.getvalue()).pdf
    assert result is not None and not result.valid and result.reason


# --- trust ----------------------------------------------------------------------------------


def test_a_certificate_from_another_ca_is_intact_but_not_trusted(
    pki: DemoPki, other_pki: DemoPki, cda_bytes: bytes, pdf_bytes: bytes
) -> None:
    stranger = other_pki.sealer()
    result = signing.verify(
        stranger.seal_cda(cda_bytes),
        stranger.seal_pdf(pdf_bytes),
        trust_anchors=pki.trust_anchors(),
    )
    assert not result.valid
    for artefact in (result.cda, result.pdf):
        assert artefact is not None
        assert artefact.intact and not artefact.chain_valid and not artefact.valid
        assert "trusted" in (artefact.reason or "")
    own = signing.verify(stranger.seal_cda(cda_bytes), trust_anchors=other_pki.trust_anchors())
    assert own.valid


def test_no_trust_anchor_means_not_valid(sealed_cda: bytes) -> None:
    result = signing.verify(sealed_cda, trust_anchors=[]).cda
    assert result is not None and result.intact and not result.valid
    assert result.reason == "no trust anchor configured"


# --- the key port ---------------------------------------------------------------------------


def test_sealing_only_asks_the_key_holder_to_sign(
    pki: DemoPki, cda_bytes: bytes, pdf_bytes: bytes
) -> None:
    card = RecordingCard(pki.key())
    assert isinstance(card, KeyHandle)
    sealer = Sealer(card, pki.trust_anchors())
    sealed_cda = sealer.seal_cda(cda_bytes)
    sealed_pdf = sealer.seal_pdf(pdf_bytes)
    assert card.calls == ["sha256", "sha256"]  # one signature each (no dry run on the card)
    assert sealer.verify(sealed_cda, sealed_pdf).valid


def test_the_key_adapter_gives_no_key_material(pki: DemoPki) -> None:
    adapter = signing.key_adapter(RecordingCard(pki.key()))
    assert adapter.key_size == 2048
    with pytest.raises(TypeError):
        adapter.private_numbers()


def test_a_software_key_refuses_a_certificate_of_another_key(
    pki: DemoPki, other_pki: DemoPki
) -> None:
    with pytest.raises(ValueError, match="does not match"):
        SoftwareKey.from_pem_files(pki.key_file, other_pki.cert_file)


# --- demo PKI -------------------------------------------------------------------------------


def test_the_demo_pki_is_made_once_with_private_keys_0600(tmp_path: Path) -> None:
    first = signing.ensure_demo_pki(tmp_path / "pki", finess="750000002")
    contents = {
        path: path.read_bytes()
        for path in (first.ca_cert_file, first.ca_key_file, first.key_file, first.cert_file)
    }
    for private in (first.ca_key_file, first.key_file):
        assert stat.S_IMODE(private.stat().st_mode) == 0o600
    again = signing.ensure_demo_pki(tmp_path / "pki", finess="750000002")
    assert again == first
    assert {path: path.read_bytes() for path in contents} == contents
    cert = x509.load_pem_x509_certificate(first.cert_file.read_bytes())
    assert "FINESS 750000002" in cert.subject.rfc4514_string()
    assert cert.issuer == first.trust_anchors()[0].subject
    assert cert.not_valid_after_utc > datetime.now(cert.not_valid_after_utc.tzinfo)


# --- settings -------------------------------------------------------------------------------


class _Settings(ServiceSettings, signing.SealingSettings):
    model_config = SettingsConfigDict(env_prefix="DOCSIGN_TEST_", extra="ignore")


def test_settings_from_mounted_files(
    pki: DemoPki, sealed_cda: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DOCSIGN_TEST_SIGNING_KEY_FILE", str(pki.key_file))
    monkeypatch.setenv("DOCSIGN_TEST_SIGNING_CERT_FILE", str(pki.cert_file))
    monkeypatch.setenv("DOCSIGN_TEST_SIGNING_TRUST_ANCHOR_FILES", f'["{pki.ca_cert_file}"]')
    sealer = _Settings().sealer()
    assert sealer.verify(sealer.seal_cda(b"<a>b</a>")).valid
    assert sealer.verify(sealed_cda).valid  # the same key and anchors as the fixture's


def test_settings_make_a_demo_pki_when_no_key_is_configured(tmp_path: Path) -> None:
    with pytest.raises(signing.SigningNotConfigured):
        _Settings().sealer()
    settings = _Settings(signing_demo_pki_dir=str(tmp_path), signing_demo_finess="750000003")
    sealer = settings.sealer()
    chain = sealer.key.certificate_chain()
    assert "FINESS 750000003" in chain[0].subject.rfc4514_string()
    assert sealer.verify(sealer.seal_cda(b"<a>b</a>")).valid
    # One cachet per structure, under the same demo CA.
    other = settings.sealer("750000004")
    assert "FINESS 750000004" in other.key.certificate_chain()[0].subject.rfc4514_string()
    assert sealer.verify(other.seal_cda(b"<a>b</a>")).valid


def test_settings_with_one_cachet_file_per_structure(pki: DemoPki) -> None:
    settings = _Settings(
        signing_key_file=str(pki.directory / "cachet-{finess}.key"),
        signing_cert_file=str(pki.directory / "cachet-{finess}.pem"),
        signing_trust_anchor_files=[str(pki.ca_cert_file)],
    )
    sealer = settings.sealer("750000001")
    assert sealer.key.certificate_chain()[0] == x509.load_pem_x509_certificate(
        pki.cert_file.read_bytes()
    )
    with pytest.raises(signing.SigningNotConfigured, match="FINESS"):
        settings.sealer()


# --- detached CDA seal ----------------------------------------------------------------------


def test_a_detached_cda_seal_leaves_the_document_untouched_and_verifies(
    sealer: Sealer, cda_bytes: bytes, other_pki: DemoPki
) -> None:
    signature = sealer.seal_cda_detached(cda_bytes, signed_at=samples.SIGNED_AT)
    root = etree.fromstring(signature)
    assert root.tag == f"{DS}Signature"
    assert [r.get("URI") for r in root.findall(f"{DS}SignedInfo/{DS}Reference")][0] == (
        "urn:bsante:cda"
    )
    result = sealer.verify(cda_bytes, cda_signature=signature).cda
    assert result is not None and result.valid and result.signing_time == samples.SIGNED_AT
    changed = sealer.verify(
        _flip(cda_bytes, cda_bytes.index(b"PAT-TROIS") + 2), cda_signature=signature
    )
    assert changed.cda is not None and not changed.cda.valid and not changed.cda.intact
    stranger = other_pki.sealer().seal_cda_detached(cda_bytes)
    untrusted = sealer.verify(cda_bytes, cda_signature=stranger).cda
    assert untrusted is not None and untrusted.intact and not untrusted.chain_valid
    not_a_signature = sealer.verify(cda_bytes, cda_signature=cda_bytes).cda
    assert not_a_signature is not None and "found 0" in (not_a_signature.reason or "")


def test_the_enveloped_seal_is_outside_the_cda_schema_the_unsealed_document_is_not(
    kit: CisisKit, sealed_cda: bytes, cda_bytes: bytes
) -> None:
    """Why the detached seal exists: CDA_extended.xsd has no place for a ds:Signature."""
    validator = ConformanceValidator(kit)
    assert validator.validate_xsd(cda_bytes) == []
    assert any("Signature" in error for error in validator.validate_xsd(sealed_cda))
    assert validator.validate_xsd(signing.unsealed_cda(sealed_cda)) == []


def test_an_ec_key_seals_both_artefacts(
    pki: DemoPki, cda_bytes: bytes, pdf_bytes: bytes, tmp_path: Path
) -> None:
    """A P-256 key certified by the demo CA: ECDSA through the same port."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    from bsante.chassis import certificates

    ca_key = serialization.load_pem_private_key(pki.ca_key_file.read_bytes(), None)
    assert isinstance(ca_key, rsa.RSAPrivateKey)
    ca = pki.trust_anchors()[0]
    sealed = certificates.issue(
        certificates.name("Cachet EC", country=None),
        certificates.ec_key(),
        certificates.Issued(ca, ca_key),
        days=1,
        non_repudiation=True,
    )
    key, cert = sealed.key, sealed.cert
    card = RecordingCard(SoftwareKey(key, [cert]))
    sealer = Sealer(card, [ca])
    result = sealer.verify(sealer.seal_cda(cda_bytes), sealer.seal_pdf(pdf_bytes))
    assert result.valid, result
    assert card.calls == ["sha256", "sha256"]


def test_two_processes_starting_together_make_one_demo_pki(tmp_path: Path) -> None:
    import subprocess
    import sys

    code = (
        "import sys; from bsante.documents.signing import ensure_demo_pki; "
        "print(ensure_demo_pki(sys.argv[1]).cert_file.read_text())"
    )
    runs = [
        subprocess.Popen(
            [sys.executable, "-c", code, str(tmp_path / "pki")], stdout=subprocess.PIPE, text=True
        )
        for _ in range(2)
    ]
    certificates = {run.communicate(timeout=60)[0] for run in runs}
    assert all(run.returncode == 0 for run in runs)
    assert len(certificates) == 1  # both see the same cachet
    pki = signing.ensure_demo_pki(tmp_path / "pki")
    sealer = pki.sealer()
    assert sealer.verify(sealer.seal_cda(b"<a>b</a>")).valid  # issued by the CA on disk
