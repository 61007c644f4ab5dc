"""The CDA R2 N1 header: French CI-SIS elements, INS traits, identifiers, versions, kit codes."""

from __future__ import annotations

import base64
from datetime import datetime

import pytest
from lxml import etree
from pydantic import ValidationError

from bsante.documents import cda, samples
from bsante.documents.conformance import CisisKit

NS = {"h": cda.HL7}
PDF = b"%PDF-1.7\n% a tiny stand-in\n"


def _build(version: int = 1, **kwargs: object) -> etree._Element:
    return cda.build_cda_n1(
        samples.metadata(version=version), samples.patient(), samples.author(), PDF, **kwargs
    )


def _one(document: etree._Element, path: str) -> etree._Element:
    found = document.xpath(path, namespaces=NS)
    assert len(found) == 1, f"{path}: {len(found)} elements"
    return found[0]


def test_header_declares_the_french_n1_model() -> None:
    document = _build()
    assert _one(document, "h:realmCode").get("code") == "FR"
    assert dict(_one(document, "h:typeId").attrib) == {
        "root": "2.16.840.1.113883.1.3",
        "extension": "POCD_HD000040",
    }
    assert document.xpath("h:templateId/@root", namespaces=NS) == [
        "2.16.840.1.113883.2.8.2.1",
        "1.2.250.1.213.1.1.1.1",
        "1.3.6.1.4.1.19376.1.2.20",
    ]
    code = _one(document, "h:code")
    assert (code.get("code"), code.get("codeSystem")) == ("11488-4", cda.LOINC)
    assert _one(document, "h:languageCode").get("code") == "fr-FR"
    assert _one(document, "h:confidentialityCode").get("code") == "N"
    assert _one(document, "h:effectiveTime").get("value") == "20261130093000+0000"
    assert _one(document, "h:setId").get("extension") == "set-0001"
    assert _one(document, "h:versionNumber").get("value") == "1"
    assert document.xpath("h:relatedDocument", namespaces=NS) == []


def test_ins_traits_of_the_patient() -> None:
    role = _one(_build(), "h:recordTarget/h:patientRole")
    ids = [(i.get("root"), i.get("extension")) for i in role.findall("h:id", NS)]
    assert ids == [("1.2.250.1.213.1.4.10", "279035121518989"), (samples.DEMO_IPP_ROOT, "0001234")]
    name = _one(role, "h:patient/h:name")
    assert _one(name, "h:family[@qualifier='BR']").text == "PAT-TROIS"
    assert _one(name, "h:given[not(@qualifier)]").text == "DOMINIQUE MARIE-LOUISE"
    assert _one(name, "h:given[@qualifier='BR']").text == "DOMINIQUE"
    assert _one(role, "h:patient/h:birthTime").get("value") == "19790328"
    assert _one(role, "h:patient/h:administrativeGenderCode").get("code") == "F"
    assert _one(role, "h:patient/h:birthplace/h:place/h:addr/h:county").text == "51215"


def test_without_ins_the_patient_is_identified_by_its_ipp() -> None:
    patient = samples.patient(with_ins=False)
    document = cda.build_cda_n1(samples.metadata(), patient, samples.author(), PDF)
    ids = document.xpath("h:recordTarget/h:patientRole/h:id/@root", namespaces=NS)
    assert ids == [samples.DEMO_IPP_ROOT]


def test_author_custodian_legal_authenticator_and_performer() -> None:
    document = _build()
    author = _one(document, "h:author/h:assignedAuthor")
    assert (_one(author, "h:id").get("root"), _one(author, "h:id").get("extension")) == (
        cda.OID_PS_ID_NAT,
        "810001234567",
    )
    assert _one(author, "h:code").get("code") == "G15_10/SM54"
    assert _one(author, "h:code").get("codeSystem") == cda.OID_AUTHOR_SPECIALTY
    organisation = _one(author, "h:representedOrganization/h:id")
    assert (organisation.get("root"), organisation.get("extension")) == (
        cda.OID_STRUCT_ID_NAT,
        "1750000001",
    )
    custodian = _one(
        document, "h:custodian/h:assignedCustodian/h:representedCustodianOrganization/h:id"
    )
    assert custodian.get("extension") == "1750000001"
    legal = _one(document, "h:legalAuthenticator")
    assert _one(legal, "h:signatureCode").get("code") == "S"
    assert _one(legal, "h:time").get("value") == "20261130093000+0000"
    assert _one(legal, "h:assignedEntity/h:id").get("extension") == "810001234567"
    performer = _one(document, "h:documentationOf/h:serviceEvent/h:performer")
    assert performer.get("typeCode") == "PRF"
    assert _one(performer, "h:assignedEntity/h:id").get("extension") == "810001234567"
    facility = _one(
        document, "h:componentOf/h:encompassingEncounter/h:location/h:healthCareFacility"
    )
    assert _one(facility, "h:id").get("extension") == "1750000001"


def test_a_new_version_replaces_its_parent() -> None:
    document = _build(version=2)
    assert _one(document, "h:versionNumber").get("value") == "2"
    assert _one(document, "h:setId").get("extension") == "set-0001"
    related = _one(document, "h:relatedDocument")
    assert related.get("typeCode") == "RPLC"
    assert _one(related, "h:parentDocument/h:id").get("extension") == "doc-0001"
    assert _one(related, "h:parentDocument/h:versionNumber").get("value") == "1"


def test_the_pdf_travels_base64_in_the_non_xml_body() -> None:
    text = _one(_build(), "h:component/h:nonXMLBody/h:text")
    assert (text.get("mediaType"), text.get("representation")) == ("application/pdf", "B64")
    assert base64.b64decode(text.text) == PDF


def test_inputs_are_validated() -> None:
    values = samples.patient().model_dump()
    with pytest.raises(ValidationError, match="birthplace_cog is an INS trait"):
        cda.Patient.model_validate({**values, "birthplace_cog": None})
    with pytest.raises(ValidationError, match="not an INS OID"):
        cda.Patient.model_validate({**values, "ins_oid": "1.2.3"})
    meta = samples.metadata().model_dump()
    with pytest.raises(ValidationError, match="not a supported JDV_J07 type"):
        cda.DocumentMetadata.model_validate({**meta, "type_code": "99999-9"})
    with pytest.raises(ValidationError, match="needs a time zone"):
        cda.DocumentMetadata.model_validate({**meta, "signed_at": datetime(2026, 1, 1)})
    with pytest.raises(ValidationError, match="names its parent_document_id"):
        cda.DocumentMetadata.model_validate({**meta, "version": 2})
    organisation = samples.organisation().model_dump()
    with pytest.raises(ValidationError) as exc:
        cda.Organisation.model_validate({**organisation, "name": "Cabinet\x07"})
    assert [e["loc"] for e in exc.value.errors()] == [("name",)]


def test_document_types_and_codes_come_from_the_kit_value_sets(kit: CisisKit) -> None:
    j07 = kit.value_set_concepts("JDV_J07")
    for code, display in cda.DOCUMENT_TYPES.items():
        assert j07[code].code_system == cda.LOINC
        assert j07[code].display_name == display
    author = samples.author()
    j01 = kit.value_set_concepts("JDV_J01")[author.profession_code]
    assert (j01.code_system, j01.display_name) == (
        cda.OID_AUTHOR_SPECIALTY,
        author.profession_display,
    )
    organisation = author.organisation
    j02 = kit.value_set_concepts("JDV_J02")[organisation.facility_type_code]
    assert (j02.code_system, j02.display_name) == (
        cda.OID_FACILITY_TYPE,
        organisation.facility_type_display,
    )
    j04 = kit.value_set_concepts("JDV_J04")[organisation.practice_setting_code]
    assert (j04.code_system, j04.display_name) == (
        cda.OID_PRACTICE_SETTING,
        organisation.practice_setting_display,
    )


def _paths(element: etree._Element, prefix: str = "") -> set[str]:
    """Element paths, down to addresses and names (their optional parts vary by person)."""
    paths: set[str] = set()
    for child in element:
        if not isinstance(child.tag, str):
            continue  # comments
        name = etree.QName(child).localname
        path = f"{prefix}/{name}"
        paths.add(path)
        if name not in ("addr", "name"):
            paths |= _paths(child, path)
    return paths


# Parts of the kit's example we do not produce (optional in the N1 model).
_NOT_PRODUCED = (
    "/participant",  # préleveur and prescripteur of a biology report
    "/recordTarget/patientRole/patient/guardian",
    "/documentationOf/serviceEvent/id",
    "/documentationOf/serviceEvent/code",  # the act's code, when the caller knows it
    "/documentationOf/serviceEvent/performer/functionCode",
)


def test_structurally_equivalent_to_the_kit_example(kit: CisisKit) -> None:
    example = etree.parse(str(kit.example("DOC_NON_STRUCTURE_CDA-R2-N1.xml"))).getroot()
    ours = _paths(_build(version=2))
    theirs = _paths(example)
    missing = {p for p in theirs - ours if not p.startswith(_NOT_PRODUCED)}
    assert missing == set()
    extra = {p for p in ours - theirs if not p.startswith("/relatedDocument")}
    assert extra == set()
