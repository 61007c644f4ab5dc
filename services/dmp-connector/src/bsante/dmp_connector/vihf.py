"""The VIHF (Vecteur d'Identification et d'Habilitation Formelles): the SAML 2.0 assertion the
DMP wants in `wsse:Security`, signed (XML-DSig, exclusive c14n) with the structure's key.

Attributes follow the ANS VIHF 3.0 mapping as the DMP publication example shows it: the
professional's PSIdNat as NameID, their profession and specialty in `subject:role`, the
patient's INS in `resource-id` (`INS^^^&OID&ISO^NH`), the software's identification (LPS_*).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from lxml import etree
from signxml import (  # type: ignore[attr-defined]
    CanonicalizationMethod,
    DigestAlgorithm,
    SignatureConfiguration,
    SignatureMethod,
    XMLSigner,
    XMLVerifier,
    methods,
)

PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey
SAML = "urn:oasis:names:tc:SAML:2.0:assertion"
DS = "http://www.w3.org/2000/09/xmldsig#"
HL7 = "urn:hl7-org:v3"
XSI = "http://www.w3.org/2001/XMLSchema-instance"
VIHF_VERSION = "3.0"
OID_PROFESSION = "1.2.250.1.71.1.2.7"  # TRE_G15 profession
OID_SPECIALTY = "1.2.250.1.71.4.2.5"  # TRE_R38 spécialité ordinale
OID_PURPOSE = "1.2.250.1.213.1.1.4.248"  # mode d'accès VIHF
OID_SECTOR = "1.2.250.1.71.4.2.4"  # TRE_R02 secteur d'activité
SUBJECT_ID = "urn:oasis:names:tc:xspa:1.0:subject:subject-id"
SUBJECT_ROLE = "urn:oasis:names:tc:xacml:2.0:subject:role"
PURPOSE_OF_USE = "urn:oasis:names:tc:xspa:1.0:subject:purposeofuse"
RESOURCE_ID = "urn:oasis:names:tc:xacml:2.0:resource:resource-id"
# What the DMP requires in every VIHF (the simulator refuses an assertion missing one).
MANDATORY = (
    "VIHF_Version",
    "Identifiant_Structure",
    "Secteur_Activite",
    SUBJECT_ID,
    SUBJECT_ROLE,
    PURPOSE_OF_USE,
    RESOURCE_ID,
    "Ressource_URN",
    "Authentification_Mode",
    "LPS_ID",
    "LPS_Nom",
    "LPS_Version",
    "LPS_ID_HOMOLOGATION_DMP",
)


@dataclass(frozen=True)
class Software:
    """The LPS (logiciel de professionnel de santé) as the DMP registered it."""

    lps_id: str
    name: str
    version: str
    homologation: str


@dataclass(frozen=True)
class Actor:
    """Who acts: the professional (PSIdNat, name, profession, specialty) and their structure."""

    ps_id_nat: str
    name: str
    profession: str
    profession_display: str
    structure_id: str
    sector: str
    specialty: str | None = None
    specialty_display: str | None = None


@dataclass(frozen=True)
class SigningKey:
    """The structure's key and certificate chain, and the subject named as Issuer.

    Loaded once: loading an RSA key checks it, which costs far more than a signature."""

    key: PrivateKey
    certs: list[x509.Certificate]
    issuer: str

    @classmethod
    def from_files(cls, key: Path, cert: Path) -> SigningKey:
        certificates = x509.load_pem_x509_certificates(cert.read_bytes())
        private = serialization.load_pem_private_key(key.read_bytes(), password=None)
        if not isinstance(private, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey):
            raise ValueError("the VIHF signing key is neither RSA nor EC")
        return cls(private, certificates, certificates[0].subject.rfc4514_string())


def resource_id(ins: str, oid: str) -> str:
    return f"{ins}^^^&{oid}&ISO^NH"


def _attribute(statement: etree._Element, name: str, value: str | None = None) -> etree._Element:
    attribute = etree.SubElement(statement, f"{{{SAML}}}Attribute", Name=name)
    if value is not None:
        etree.SubElement(attribute, f"{{{SAML}}}AttributeValue").text = value
    return attribute


def _coded(attribute: etree._Element, tag: str, code: str, system: str, display: str) -> None:
    holder = etree.SubElement(attribute, f"{{{SAML}}}AttributeValue")
    etree.SubElement(
        holder,
        f"{{{HL7}}}{tag}",
        nsmap={None: HL7},
        code=code,
        codeSystem=system,
        displayName=display,
    )


def build(
    actor: Actor,
    software: Software,
    *,
    ins: str,
    ins_oid: str,
    purpose: str = "normal",
    authentication: str = "INDIRECTE",
    now: datetime | None = None,
    issuer: str = "",
) -> etree._Element:
    """The unsigned assertion, with a `ds:Signature` placeholder where the schema wants it."""
    moment = (now or datetime.now(UTC)).astimezone(UTC)
    instant = moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
    assertion = etree.Element(
        f"{{{SAML}}}Assertion",
        nsmap={"saml2": SAML, "ds": DS},
        ID=f"_{uuid.uuid4()}",
        IssueInstant=instant,
        Version="2.0",
    )
    etree.SubElement(
        assertion,
        f"{{{SAML}}}Issuer",
        Format="urn:oasis:names:tc:SAML:1.1:nameid-format:X509SubjectName",
    ).text = issuer
    # The placeholder has its final prefix already: signing it in place renames nothing.
    etree.SubElement(assertion, f"{{{DS}}}Signature", Id="placeholder")
    subject = etree.SubElement(assertion, f"{{{SAML}}}Subject")
    etree.SubElement(subject, f"{{{SAML}}}NameID").text = actor.ps_id_nat
    later = moment + timedelta(minutes=10)
    etree.SubElement(
        assertion,
        f"{{{SAML}}}Conditions",
        NotBefore=instant,
        NotOnOrAfter=later.strftime("%Y-%m-%dT%H:%M:%S.") + f"{later.microsecond // 1000:03d}Z",
    )
    authn = etree.SubElement(assertion, f"{{{SAML}}}AuthnStatement", AuthnInstant=instant)
    etree.SubElement(
        etree.SubElement(authn, f"{{{SAML}}}AuthnContext"), f"{{{SAML}}}AuthnContextClassRef"
    ).text = "urn:oasis:names:tc:SAML:2.0:ac:classes:TLSClient"
    statement = etree.SubElement(assertion, f"{{{SAML}}}AttributeStatement")
    _attribute(statement, "VIHF_Version", VIHF_VERSION)
    _attribute(statement, "Identifiant_Structure", actor.structure_id)
    _attribute(statement, "Secteur_Activite", f"{actor.sector}^{OID_SECTOR}")
    _attribute(statement, SUBJECT_ID, actor.name)
    role = _attribute(statement, SUBJECT_ROLE)
    _coded(role, "Role", actor.profession, OID_PROFESSION, actor.profession_display)
    if actor.specialty:
        _coded(
            role, "Role", actor.specialty, OID_SPECIALTY, actor.specialty_display or actor.specialty
        )
    _coded(
        _attribute(statement, PURPOSE_OF_USE),
        "PurposeOfUse",
        purpose,
        OID_PURPOSE,
        "Accès normal" if purpose == "normal" else purpose,
    )
    _attribute(statement, RESOURCE_ID, resource_id(ins, ins_oid))
    _attribute(statement, "Ressource_URN", "urn:dmp")
    _attribute(statement, "Authentification_Mode", authentication)
    _attribute(statement, "LPS_ID", software.lps_id)
    _attribute(statement, "LPS_Nom", software.name)
    _attribute(statement, "LPS_Version", software.version)
    _attribute(statement, "LPS_ID_HOMOLOGATION_DMP", software.homologation)
    return assertion


def sign(assertion: etree._Element, key: SigningKey) -> bytes:
    """The signed assertion's bytes (RSA-SHA256, exclusive c14n, enveloped, X509 in KeyInfo)."""
    signer = XMLSigner(
        method=methods.enveloped,
        signature_algorithm=SignatureMethod.RSA_SHA256,
        digest_algorithm=DigestAlgorithm.SHA256,
        c14n_algorithm=CanonicalizationMethod.EXCLUSIVE_XML_CANONICALIZATION_1_0,
    )
    signer.namespaces = {"ds": DS}
    signed = signer.sign(
        assertion,
        key=key.key,
        cert=key.certs,
        reference_uri=f"#{assertion.get('ID')}",
        id_attribute="ID",
    )
    return bytes(etree.tostring(signed, encoding="UTF-8"))


def signed_assertion(
    actor: Actor,
    software: Software,
    key: SigningKey,
    *,
    ins: str,
    ins_oid: str,
    purpose: str = "normal",
) -> bytes:
    return sign(
        build(actor, software, ins=ins, ins_oid=ins_oid, purpose=purpose, issuer=key.issuer), key
    )


# -- reading (the simulator's side) --------------------------------------------------------


class VihfError(ValueError):
    """The assertion is missing, malformed, unsigned, untrusted or incomplete."""


@dataclass(frozen=True)
class Vihf:
    name_id: str
    attributes: dict[str, list[str]]
    roles: list[str]

    def one(self, name: str) -> str:
        values = self.attributes.get(name) or [""]
        return values[0]


def read(assertion: etree._Element, *, trust_file: Path | None) -> Vihf:
    """Verify the signature (its certificate chained to `trust_file`'s CAs; without one,
    against the certificate the signature carries) and read the attributes."""
    data = etree.tostring(assertion)
    config = SignatureConfiguration(
        require_x509=True,
        signature_methods=frozenset({SignatureMethod.RSA_SHA256, SignatureMethod.ECDSA_SHA256}),
        digest_algorithms=frozenset({DigestAlgorithm.SHA256}),
    )
    try:
        if trust_file is not None:
            verified = XMLVerifier().verify(
                data, ca_pem_file=str(trust_file), id_attribute="ID", expect_config=config
            )
        else:
            verified = XMLVerifier().verify(
                data,
                x509_cert=_carried_certificate(assertion),
                id_attribute="ID",
                expect_config=config,
            )
    except Exception as error:  # signxml raises several types; all mean "not trusted"
        raise VihfError(f"VIHF signature: {type(error).__name__}: {str(error)[:150]}") from None
    if isinstance(verified, list):
        raise VihfError("the VIHF carries several signatures")
    signed = verified.signed_xml
    if signed is None or signed.tag != f"{{{SAML}}}Assertion":
        raise VihfError("the signature does not cover the assertion")
    name_id = (signed.findtext(f"{{{SAML}}}Subject/{{{SAML}}}NameID") or "").strip()
    attributes: dict[str, list[str]] = {}
    roles: list[str] = []
    for attribute in signed.iter(f"{{{SAML}}}Attribute"):
        name = attribute.get("Name", "")
        values: list[str] = []
        for value in attribute.findall(f"{{{SAML}}}AttributeValue"):
            coded = next(iter(value), None)
            if coded is not None:
                values.append(coded.get("code", ""))
                if name == SUBJECT_ROLE:
                    roles.append(coded.get("code", ""))
            else:
                values.append((value.text or "").strip())
        attributes[name] = values
    return Vihf(name_id, attributes, roles)


def _carried_certificate(assertion: etree._Element) -> str:
    text = assertion.findtext(f".//{{{DS}}}X509Certificate")
    if not text:
        raise VihfError("the VIHF signature carries no certificate")
    body = "".join(text.split())
    return f"-----BEGIN CERTIFICATE-----\n{body}\n-----END CERTIFICATE-----\n"
