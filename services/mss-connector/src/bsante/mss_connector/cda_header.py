"""What the connector reads from a signed CDA's header: the XDS metadata of the XDM package and
the patient's traits of the guide's subject line (the CI-SIS annex linking the CDA header and
the XDS metadata)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from lxml import etree

HL7 = "urn:hl7-org:v3"
NS = {"h": HL7}
# INS-NIR, INS-NIA and their test counterparts: the CDA carries an INS only for an identité
# qualifiée (CI-SIS rule), so its presence is what allows the patient's own mailbox.
INS_OIDS = frozenset(
    {"1.2.250.1.213.1.4.8", "1.2.250.1.213.1.4.9", "1.2.250.1.213.1.4.10", "1.2.250.1.213.1.4.11"}
)
MAX_CDA_BYTES = 20 * 1024 * 1024


class InvalidCda(ValueError):
    """The bytes are not a CDA R2 document this connector can describe."""


@dataclass(frozen=True)
class CdaHeader:
    unique_id: str  # root^extension, the XDS uniqueId
    type_code: str
    type_display: str
    title: str
    effective_time: str  # HL7 TS as in the document
    confidentiality: str
    language: str
    patient_ins: str | None
    patient_ins_oid: str | None
    patient_ids: tuple[tuple[str, str], ...]  # (root, extension) of every patientRole/id
    family_name: str
    given_names: str
    birth_date: date | None
    sex: str | None
    author_id: str | None
    author_name: str | None
    author_institution: str | None
    author_institution_id: str | None
    service_start: str | None
    service_stop: str | None
    facility_code: str | None
    practice_code: str | None

    @property
    def qualified_ins(self) -> bool:
        return self.patient_ins is not None

    @property
    def source_patient_id(self) -> str:
        """`extension^^^&root&ISO`, the INS when there is one, else the first id."""
        if self.patient_ins and self.patient_ins_oid:
            return f"{self.patient_ins}^^^&{self.patient_ins_oid}&ISO"
        if self.patient_ids:
            root, extension = self.patient_ids[0]
            return f"{extension}^^^&{root}&ISO"
        return "unknown^^^&1.2.250.1.213.1.4.2&ISO"


def _text(node: etree._Element, path: str) -> str | None:
    found = node.find(path, NS)
    if found is None or found.text is None:
        return None
    return " ".join(found.text.split()) or None


def _attr(node: etree._Element, path: str, name: str) -> str | None:
    found = node.find(path, NS)
    return None if found is None else found.get(name)


def parse_hl7_date(value: str | None) -> date | None:
    if not value or len(value) < 8 or not value[:8].isdigit():
        return None
    try:
        return datetime.strptime(value[:8], "%Y%m%d").date()
    except ValueError:
        return None


def read_header(cda: bytes) -> CdaHeader:
    """The header fields, from bytes parsed without network access nor entity expansion."""
    if len(cda) > MAX_CDA_BYTES:
        raise InvalidCda("CDA larger than the limit")
    parser = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False)
    try:
        root = etree.fromstring(cda, parser)
    except etree.XMLSyntaxError:
        raise InvalidCda("not well-formed XML") from None
    if root.tag != f"{{{HL7}}}ClinicalDocument":
        raise InvalidCda("not a ClinicalDocument")
    doc_id = root.find("h:id", NS)
    code = root.find("h:code", NS)
    if doc_id is None or code is None or not doc_id.get("root") or not code.get("code"):
        raise InvalidCda("no id or code")
    unique = doc_id.get("root", "")
    if doc_id.get("extension"):
        unique += "^" + doc_id.get("extension", "")
    role = root.find("h:recordTarget/h:patientRole", NS)
    if role is None:
        raise InvalidCda("no recordTarget")
    ids = tuple(
        (i.get("root", ""), i.get("extension", ""))
        for i in role.findall("h:id", NS)
        if i.get("root") and i.get("extension")
    )
    ins = next(((r, e) for r, e in ids if r in INS_OIDS), None)
    person = role.find("h:patient", NS)
    family = given = None
    birth = sex = None
    if person is not None:
        family = _text(person, "h:name/h:family[@qualifier='BR']") or _text(
            person, "h:name/h:family"
        )
        given = _text(person, "h:name/h:given[@qualifier='BR']") or _text(person, "h:name/h:given")
        birth = parse_hl7_date(_attr(person, "h:birthTime", "value"))
        sex = _attr(person, "h:administrativeGenderCode", "code")
    assigned = root.find("h:author/h:assignedAuthor", NS)
    author_id = author_name = institution = institution_id = None
    if assigned is not None:
        author_id = _attr(assigned, "h:id", "extension")
        given_a = _text(assigned, "h:assignedPerson/h:name/h:given") or ""
        family_a = _text(assigned, "h:assignedPerson/h:name/h:family") or ""
        author_name = f"{family_a}^{given_a}" if family_a else None
        institution = _text(assigned, "h:representedOrganization/h:name")
        institution_id = _attr(assigned, "h:representedOrganization/h:id", "extension")
    return CdaHeader(
        unique_id=unique,
        type_code=code.get("code", ""),
        type_display=code.get("displayName", code.get("code", "")),
        title=_text(root, "h:title") or code.get("displayName", "Document"),
        effective_time=_attr(root, "h:effectiveTime", "value") or "",
        confidentiality=_attr(root, "h:confidentialityCode", "code") or "N",
        language=_attr(root, "h:languageCode", "code") or "fr-FR",
        patient_ins=ins[1] if ins else None,
        patient_ins_oid=ins[0] if ins else None,
        patient_ids=ids,
        family_name=family or "",
        given_names=given or "",
        birth_date=birth,
        sex=sex,
        author_id=author_id,
        author_name=author_name,
        author_institution=institution,
        author_institution_id=institution_id,
        service_start=_attr(
            root, "h:documentationOf/h:serviceEvent/h:effectiveTime/h:low", "value"
        ),
        service_stop=_attr(
            root, "h:documentationOf/h:serviceEvent/h:effectiveTime/h:high", "value"
        ),
        facility_code=_attr(
            root,
            "h:componentOf/h:encompassingEncounter/h:location/h:healthCareFacility/h:code",
            "code",
        ),
        practice_code=_attr(
            root,
            "h:documentationOf/h:serviceEvent/h:performer/h:assignedEntity/"
            "h:representedOrganization/h:standardIndustryClassCode",
            "code",
        ),
    )
