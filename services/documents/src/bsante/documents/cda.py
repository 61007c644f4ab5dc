"""CDA R2 level 1 (N1: the PDF in nonXMLBody) with the CI-SIS French header, built with lxml.

The shape follows the ANS kit's `DOC_NON_STRUCTURE_CDA-R2-N1.xml`: the three templateIds of the
N1 model, the INS traits of the patient whenever an INS OID is given, the author as PSIdNat with
its profession code and its organisation's StructIdNat, custodian, legalAuthenticator,
documentationOf/serviceEvent with its performer, componentOf/encompassingEncounter and, for a
new version, relatedDocument typeCode RPLC.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Sequence
from datetime import date, datetime
from typing import Annotated, Literal

from lxml import etree
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

HL7 = "urn:hl7-org:v3"
XSI = "http://www.w3.org/2001/XMLSchema-instance"
_NSMAP = {None: HL7, "xsi": XSI}

LOINC = "2.16.840.1.113883.6.1"
TEMPLATE_HL7_FRANCE = "2.16.840.1.113883.2.8.2.1"
TEMPLATE_CI_SIS = "1.2.250.1.213.1.1.1.1"
TEMPLATE_XDS_SD = "1.3.6.1.4.1.19376.1.2.20"
N1_TEMPLATE_IDS = (TEMPLATE_HL7_FRANCE, TEMPLATE_CI_SIS, TEMPLATE_XDS_SD)

OID_PS_ID_NAT = "1.2.250.1.71.4.2.1"  # identifiant national de PS (8 + RPPS)
OID_STRUCT_ID_NAT = "1.2.250.1.71.4.2.2"  # identifiant national de structure (1 + FINESS)
OID_AUTHOR_SPECIALTY = "1.2.250.1.213.1.1.4.5"  # TRE_G15 profession / savoir-faire (JDV_J01)
OID_FACILITY_TYPE = "1.2.250.1.71.4.2.4"  # TRE_R02 secteur d'activité (JDV_J02)
OID_PRACTICE_SETTING = "1.2.250.1.213.1.1.4.9"  # cadre d'exercice (JDV_J04)
OID_CONFIDENTIALITY = "2.16.840.1.113883.5.25"
OID_GENDER = "2.16.840.1.113883.5.1"

# INS OIDs: the INS-NIR and INS-NIA, and their test counterparts.
INS_OIDS = frozenset(
    {"1.2.250.1.213.1.4.8", "1.2.250.1.213.1.4.9", "1.2.250.1.213.1.4.10", "1.2.250.1.213.1.4.11"}
)

# Document types we produce, a subset of JDV_J07 (XdsTypeCode CI-SIS); a unit test checks
# each (code, display name) against the kit's value-set file.
DOCUMENT_TYPES: dict[str, str] = {
    "11488-4": "CR ou fiche de consultation ou de visite",
    "11490-0": "Lettre de liaison à la sortie d'un établissement de soins",
    "11502-2": "CR d'examens biologiques",
    "34133-9": "Synthèse d'épisode de soins",
    "75482-0": "CR d'acte thérapeutique à visée préventive",
    "74207-2": "Document de liaison d'urgence",
}

_GENDER_DISPLAY = {"M": "Masculin", "F": "Féminin", "U": "Inconnu"}
_CONFIDENTIALITY_DISPLAY = {"N": "Normal", "R": "Restreint", "V": "Très restreint"}

# Characters XML 1.0 cannot carry (lxml would refuse them at build time).
XML_FORBIDDEN = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
Text = Annotated[
    str,
    StringConstraints(
        strip_whitespace=True,
        min_length=1,
        max_length=200,
        pattern=r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x{fffe}\x{ffff}]+$",
    ),
]
Oid = Annotated[str, StringConstraints(pattern=r"^[0-2](\.(0|[1-9][0-9]*))+$", max_length=64)]


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Address(_Model):
    house_number: Text | None = None
    street_name: Text
    unit_id: Text | None = None
    postal_code: Annotated[str, StringConstraints(pattern=r"^[0-9A-Z]{4,10}$")]
    city: Text
    country: Text | None = "FRANCE"


class Telecom(_Model):
    value: Annotated[
        str, StringConstraints(pattern=r"^(tel|mailto|fax|http|https):[^\s\x00-\x1f]{1,200}$")
    ]
    use: Literal["H", "HP", "WP", "MC", "EC", "PG"] | None = None


class Patient(_Model):
    """The patient with, when an INS is present, its INS traits (identité qualifiée or not)."""

    ins: Annotated[str, StringConstraints(pattern=r"^[0-9A-B]{13,15}$")] | None = None
    ins_oid: Oid | None = None
    ipp: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9.\-_]{1,64}$")] | None = None
    ipp_root: Oid | None = None
    birth_family_name: Text
    birth_given_names: list[Text] = Field(min_length=1, max_length=10)
    used_family_name: Text | None = None
    used_given_name: Text | None = None
    sex: Literal["M", "F", "U"]
    birth_date: date
    birthplace_cog: Annotated[str, StringConstraints(pattern=r"^[0-9][0-9AB][0-9]{3}$")] | None = (
        None
    )
    birthplace_city: Text | None = None
    address: Address | None = None
    telecoms: list[Telecom] = Field(default_factory=list, max_length=10)

    @model_validator(mode="after")
    def _ins_traits(self) -> Patient:
        if (self.ins is None) != (self.ins_oid is None):
            raise ValueError("ins and ins_oid go together")
        if self.ins_oid is not None:
            if self.ins_oid not in INS_OIDS:
                raise ValueError(f"ins_oid {self.ins_oid} is not an INS OID")
            if self.birthplace_cog is None:
                raise ValueError("birthplace_cog is an INS trait: required with an INS")
        if (self.ipp is None) != (self.ipp_root is None):
            raise ValueError("ipp and ipp_root go together")
        if self.ins is None and self.ipp is None:
            raise ValueError("the patient needs an INS or an IPP")
        return self


class Organisation(_Model):
    """A structure identified by its StructIdNat (1 + FINESS)."""

    finess: Annotated[str, StringConstraints(pattern=r"^[0-9]{2}[0-9AB][0-9]{6}$")]
    name: Text
    address: Address | None = None
    telecom: Telecom | None = None
    facility_type_code: Text = "SA07"
    facility_type_display: Text = "Cabinet individuel"
    practice_setting_code: Text = "AMBULATOIRE"
    practice_setting_display: Text = "Ambulatoire"

    @property
    def struct_id_nat(self) -> str:
        return f"1{self.finess}"


class Professional(_Model):
    """A professional identified by its PSIdNat (8 + RPPS) with its TRE_G15 profession code."""

    rpps: Annotated[str, StringConstraints(pattern=r"^[0-9]{11}$")]
    family_name: Text
    given_name: Text
    prefix: Literal["M", "MME"] | None = None
    suffix: Literal["DR", "MC", "MG", "PC", "PG", "PR"] | None = None
    profession_code: Annotated[str, StringConstraints(pattern=r"^G15_[0-9]{2}(/[A-Z0-9]+)?$")]
    profession_display: Text
    organisation: Organisation
    telecom: Telecom | None = None

    @property
    def ps_id_nat(self) -> str:
        return f"8{self.rpps}"


class ServiceEvent(_Model):
    code: Text | None = None
    code_display: Text | None = None
    start: datetime
    end: datetime | None = None


class DocumentMetadata(_Model):
    """What identifies the document and its version."""

    id_root: Oid
    document_id: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9.\-]{1,64}$")]
    set_id: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9.\-]{1,64}$")]
    version: int = Field(1, ge=1)
    parent_document_id: (
        Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9.\-]{1,64}$")] | None
    ) = None
    type_code: str
    title: Text
    effective_time: datetime
    confidentiality: Literal["N", "R", "V"] = "N"
    authored_at: datetime
    signed_at: datetime
    service_event: ServiceEvent
    encounter_start: datetime
    encounter_end: datetime | None = None

    @model_validator(mode="after")
    def _consistent(self) -> DocumentMetadata:
        if self.type_code not in DOCUMENT_TYPES:
            raise ValueError(f"type_code {self.type_code} is not a supported JDV_J07 type")
        if self.version > 1 and self.parent_document_id is None:
            raise ValueError("a version after the first names its parent_document_id")
        for name in ("effective_time", "authored_at", "signed_at", "encounter_start"):
            if getattr(self, name).tzinfo is None:
                raise ValueError(f"{name} needs a time zone")
        return self


def ts(moment: datetime | date) -> str:
    """HL7 TS: `YYYYMMDDHHMMSS+ZZZZ` for instants, `YYYYMMDD` for dates."""
    if isinstance(moment, datetime):
        if moment.tzinfo is None:
            raise ValueError("an HL7 instant needs a time zone")
        return moment.strftime("%Y%m%d%H%M%S%z")
    return moment.strftime("%Y%m%d")


def build_cda_n1(
    metadata: DocumentMetadata,
    patient: Patient,
    author: Professional,
    pdf: bytes,
    *,
    legal_authenticator: Professional | None = None,
    performer: Professional | None = None,
    custodian: Organisation | None = None,
) -> etree._Element:
    """The N1 ClinicalDocument; the author signs, performs and its structure keeps by default."""
    doc = build_header(
        metadata,
        patient,
        author,
        legal_authenticator=legal_authenticator,
        performer=performer,
        custodian=custodian,
    )
    body = _sub(_sub(doc, "component"), "nonXMLBody")
    text = _sub(body, "text", mediaType="application/pdf", representation="B64")
    text.text = base64.b64encode(pdf).decode("ascii")
    return doc


TemplateId = str | tuple[str, str]  # a root, or a (root, extension) pair


def build_header(
    metadata: DocumentMetadata,
    patient: Patient,
    author: Professional,
    *,
    template_ids: Sequence[TemplateId] = N1_TEMPLATE_IDS,
    legal_authenticator: Professional | None = None,
    performer: Professional | None = None,
    custodian: Organisation | None = None,
) -> etree._Element:
    """The ClinicalDocument with the CI-SIS header and no `component` (the caller adds the body).

    Models add their own header parts (informants, participants) before `custodian` and
    `documentationOf`, where the CDA schema orders them.
    """
    legal_authenticator = legal_authenticator or author
    performer = performer or author
    custodian = custodian or author.organisation
    doc = etree.Element(_q("ClinicalDocument"), nsmap=_NSMAP)

    _sub(doc, "realmCode", code="FR")
    _sub(doc, "typeId", root="2.16.840.1.113883.1.3", extension="POCD_HD000040")
    for template in template_ids:
        if isinstance(template, tuple):
            _sub(doc, "templateId", root=template[0], extension=template[1])
        else:
            _sub(doc, "templateId", root=template)
    _sub(doc, "id", root=metadata.id_root, extension=metadata.document_id)
    _sub(
        doc,
        "code",
        code=metadata.type_code,
        displayName=DOCUMENT_TYPES[metadata.type_code],
        codeSystem=LOINC,
        codeSystemName="LOINC",
    )
    _sub(doc, "title").text = metadata.title
    _sub(doc, "effectiveTime", value=ts(metadata.effective_time))
    _sub(
        doc,
        "confidentialityCode",
        code=metadata.confidentiality,
        displayName=_CONFIDENTIALITY_DISPLAY[metadata.confidentiality],
        codeSystem=OID_CONFIDENTIALITY,
        codeSystemName="Confidentiality",
    )
    _sub(doc, "languageCode", code="fr-FR")
    _sub(doc, "setId", root=metadata.id_root, extension=metadata.set_id)
    _sub(doc, "versionNumber", value=str(metadata.version))

    _record_target(_sub(doc, "recordTarget"), patient)
    _author(_sub(doc, "author"), author, metadata.authored_at)
    _custodian(_sub(doc, "custodian"), custodian)

    legal = _sub(doc, "legalAuthenticator")
    _sub(legal, "time", value=ts(metadata.signed_at))
    _sub(legal, "signatureCode", code="S")
    entity = _sub(legal, "assignedEntity")
    _sub(entity, "id", root=OID_PS_ID_NAT, extension=legal_authenticator.ps_id_nat)
    _person(_sub(entity, "assignedPerson"), legal_authenticator)

    _service_event(_sub(_sub(doc, "documentationOf"), "serviceEvent"), metadata, performer)

    if metadata.parent_document_id is not None:
        related = _sub(doc, "relatedDocument", typeCode="RPLC")
        parent = _sub(related, "parentDocument")
        _sub(parent, "id", root=metadata.id_root, extension=metadata.parent_document_id)
        # The CI-SIS closed template admits only id and versionNumber in parentDocument.
        _sub(parent, "versionNumber", value=str(metadata.version - 1))

    encounter = _sub(_sub(doc, "componentOf"), "encompassingEncounter")
    period = _sub(encounter, "effectiveTime")
    _sub(period, "low", value=ts(metadata.encounter_start))
    if metadata.encounter_end is not None:
        _sub(period, "high", value=ts(metadata.encounter_end))
    facility = _sub(_sub(encounter, "location"), "healthCareFacility")
    organisation = author.organisation
    _sub(facility, "id", root=OID_STRUCT_ID_NAT, extension=organisation.struct_id_nat)
    _sub(
        facility,
        "code",
        code=organisation.facility_type_code,
        displayName=organisation.facility_type_display,
        codeSystem=OID_FACILITY_TYPE,
    )
    return doc


def to_bytes(document: etree._Element) -> bytes:
    return bytes(etree.tostring(document, xml_declaration=True, encoding="UTF-8"))


def _q(tag: str) -> str:
    return f"{{{HL7}}}{tag}"


def _sub(parent: etree._Element, tag: str, **attributes: str) -> etree._Element:
    return etree.SubElement(parent, _q(tag), attributes)


def _address(parent: etree._Element, address: Address | None) -> None:
    if address is None:
        _sub(parent, "addr", nullFlavor="NASK")
        return
    addr = _sub(parent, "addr")
    for tag, value in (
        ("houseNumber", address.house_number),
        ("streetName", address.street_name),
        ("unitID", address.unit_id),
        ("postalCode", address.postal_code),
        ("city", address.city),
        ("country", address.country),
    ):
        if value:
            _sub(addr, tag).text = value


def _telecoms(parent: etree._Element, telecoms: Sequence[Telecom]) -> None:
    if not telecoms:
        _sub(parent, "telecom", nullFlavor="NASK")
    for telecom in telecoms:
        _sub(
            parent, "telecom", value=telecom.value, **({"use": telecom.use} if telecom.use else {})
        )


def _record_target(record_target: etree._Element, patient: Patient) -> None:
    role = _sub(record_target, "patientRole")
    if patient.ins is not None and patient.ins_oid is not None:
        _sub(role, "id", root=patient.ins_oid, extension=patient.ins)
    if patient.ipp is not None and patient.ipp_root is not None:
        _sub(role, "id", root=patient.ipp_root, extension=patient.ipp)
    _address(role, patient.address)
    _telecoms(role, patient.telecoms)
    person = _sub(role, "patient", classCode="PSN")
    name = _sub(person, "name")
    # Birth identity (RNIV): the birth family name, all birth given names, then the first one.
    _sub(name, "family", qualifier="BR").text = patient.birth_family_name
    _sub(name, "given").text = " ".join(patient.birth_given_names)
    _sub(name, "given", qualifier="BR").text = patient.birth_given_names[0]
    if patient.used_family_name:
        _sub(name, "family", qualifier="CL").text = patient.used_family_name
    if patient.used_given_name:
        _sub(name, "given", qualifier="CL").text = patient.used_given_name
    _sub(
        person,
        "administrativeGenderCode",
        code=patient.sex,
        displayName=_GENDER_DISPLAY[patient.sex],
        codeSystem=OID_GENDER,
    )
    _sub(person, "birthTime", value=ts(patient.birth_date))
    if patient.birthplace_cog is not None:
        addr = _sub(_sub(_sub(person, "birthplace"), "place"), "addr")
        _sub(addr, "county").text = patient.birthplace_cog
        if patient.birthplace_city:
            _sub(addr, "city").text = patient.birthplace_city


def _person(parent: etree._Element, professional: Professional) -> None:
    name = _sub(parent, "name")
    if professional.prefix:
        _sub(name, "prefix").text = professional.prefix
    _sub(name, "given").text = professional.given_name
    _sub(name, "family").text = professional.family_name
    if professional.suffix:
        _sub(name, "suffix").text = professional.suffix


def _organisation(parent: etree._Element, organisation: Organisation, *, telecom: bool) -> None:
    _sub(parent, "id", root=OID_STRUCT_ID_NAT, extension=organisation.struct_id_nat)
    _sub(parent, "name").text = organisation.name
    if telecom:
        _telecoms(parent, [organisation.telecom] if organisation.telecom else [])
    _address(parent, organisation.address)


def _author(author: etree._Element, professional: Professional, at: datetime) -> None:
    _sub(author, "time", value=ts(at))
    assigned = _sub(author, "assignedAuthor")
    _sub(assigned, "id", root=OID_PS_ID_NAT, extension=professional.ps_id_nat)
    _sub(
        assigned,
        "code",
        code=professional.profession_code,
        displayName=professional.profession_display,
        codeSystem=OID_AUTHOR_SPECIALTY,
    )
    _address(assigned, professional.organisation.address)
    _telecoms(assigned, [professional.telecom] if professional.telecom else [])
    _person(_sub(assigned, "assignedPerson"), professional)
    _organisation(
        _sub(assigned, "representedOrganization"), professional.organisation, telecom=True
    )


def _custodian(custodian: etree._Element, organisation: Organisation) -> None:
    represented = _sub(_sub(custodian, "assignedCustodian"), "representedCustodianOrganization")
    _organisation(represented, organisation, telecom=True)


def _service_event(
    event: etree._Element, metadata: DocumentMetadata, performer: Professional
) -> None:
    service = metadata.service_event
    if service.code is not None:
        _sub(
            event,
            "code",
            code=service.code,
            displayName=service.code_display or service.code,
            codeSystem=LOINC,
            codeSystemName="LOINC",
        )
    period = _sub(event, "effectiveTime")
    _sub(period, "low", value=ts(service.start))
    if service.end is not None:
        _sub(period, "high", value=ts(service.end))
    perform = _sub(event, "performer", typeCode="PRF")
    entity = _sub(perform, "assignedEntity")
    _sub(entity, "id", root=OID_PS_ID_NAT, extension=performer.ps_id_nat)
    _person(_sub(entity, "assignedPerson"), performer)
    organisation = _sub(entity, "representedOrganization")
    _organisation(organisation, performer.organisation, telecom=False)
    _sub(
        organisation,
        "standardIndustryClassCode",
        code=performer.organisation.practice_setting_code,
        displayName=performer.organisation.practice_setting_display,
        codeSystem=OID_PRACTICE_SETTING,
        codeSystemName="practiceSettingCode",
    )
