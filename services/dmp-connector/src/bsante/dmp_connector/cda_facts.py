"""What the XDS metadata takes from a signed CDA R2 document (the CI-SIS sharing rules)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from lxml import etree

HL7 = "urn:hl7-org:v3"
OID_PS_ID_NAT = "1.2.250.1.71.4.2.1"
INS_OIDS = frozenset(
    {"1.2.250.1.213.1.4.8", "1.2.250.1.213.1.4.9", "1.2.250.1.213.1.4.10", "1.2.250.1.213.1.4.11"}
)
_NS = {"h": HL7}
# No network, no entities, no huge trees: the CDA comes from another service, still checked.
_PARSER = etree.XMLParser(resolve_entities=False, no_network=True)


class MalformedCda(ValueError):
    """The bytes are not a CDA R2 document carrying what the DMP needs (the reason says what)."""


@dataclass(frozen=True)
class Coded:
    code: str
    system: str
    display: str


@dataclass(frozen=True)
class Person:
    id: str  # PSIdNat
    family: str
    given: str
    profession: Coded | None = None


@dataclass(frozen=True)
class CdaFacts:
    unique_id: str  # root^extension, as XDSDocumentEntry.uniqueId
    type_code: Coded
    title: str
    effective_time: datetime
    confidentiality: Coded
    language: str
    set_id: str
    version: int
    ins: str | None
    ins_oid: str | None
    local_ids: list[tuple[str, str]]  # (extension, root) of non-INS patient ids
    birth_family: str
    given: str
    sex: str
    birth_date: str
    birthplace_cog: str | None
    author: Person
    author_time: datetime
    institution_name: str
    institution_id: str
    legal_authenticator: Person
    service_start: datetime | None
    service_stop: datetime | None
    facility_type: Coded | None
    practice_setting: Coded | None
    parent_unique_id: str | None


def hl7_time(value: str | None) -> datetime | None:
    """HL7 TS (`YYYYMMDD[HHMM[SS]][+ZZZZ]`) as an aware UTC datetime."""
    if not value:
        return None
    text = value.strip()
    zone = "+0000"
    for sign in ("+", "-"):
        if sign in text[8:]:
            index = text.index(sign, 8)
            text, zone = text[:index], text[index:]
    digits = (text + "000000")[:14] if len(text) >= 8 else ""
    try:
        moment = datetime.strptime(digits + zone, "%Y%m%d%H%M%S%z")
    except ValueError:
        raise MalformedCda(f"not an HL7 time: {value[:30]}") from None
    return moment.astimezone(UTC)


def _one(root: etree._Element, path: str, what: str) -> etree._Element:
    found = root.find(path, _NS)
    if found is None:
        raise MalformedCda(f"the CDA has no {what}")
    return found


def _coded(node: etree._Element | None) -> Coded | None:
    if node is None or not node.get("code"):
        return None
    return Coded(node.get("code", ""), node.get("codeSystem", ""), node.get("displayName", ""))


def _person(entity: etree._Element, what: str) -> Person:
    ident = entity.find("h:id", _NS)
    if ident is None or ident.get("root") != OID_PS_ID_NAT or not ident.get("extension"):
        raise MalformedCda(f"the CDA's {what} has no PSIdNat")
    name = entity.find("h:assignedPerson/h:name", _NS)
    family = name.findtext("h:family", default="", namespaces=_NS) if name is not None else ""
    given = name.findtext("h:given", default="", namespaces=_NS) if name is not None else ""
    return Person(
        ident.get("extension", ""),
        family.strip(),
        given.strip(),
        _coded(entity.find("h:code", _NS)),
    )


def extract(data: bytes) -> CdaFacts:
    try:
        root = etree.fromstring(data, parser=_PARSER)
    except etree.XMLSyntaxError as error:
        raise MalformedCda(f"the CDA is not XML ({str(error)[:80]})") from None
    if root.tag != f"{{{HL7}}}ClinicalDocument":
        raise MalformedCda("not a CDA ClinicalDocument")
    ident = _one(root, "h:id", "id")
    if not ident.get("root"):
        raise MalformedCda("the CDA id has no root")
    unique_id = ident.get("root", "") + (
        f"^{ident.get('extension')}" if ident.get("extension") else ""
    )
    type_code = _coded(root.find("h:code", _NS))
    if type_code is None:
        raise MalformedCda("the CDA has no type code")
    effective = hl7_time(_one(root, "h:effectiveTime", "effectiveTime").get("value"))
    if effective is None:
        raise MalformedCda("the CDA has no effectiveTime value")
    confidentiality = _coded(root.find("h:confidentialityCode", _NS)) or Coded(
        "N", "2.16.840.1.113883.5.25", "Normal"
    )
    set_id = root.find("h:setId", _NS)
    version = root.find("h:versionNumber", _NS)
    role = _one(root, "h:recordTarget/h:patientRole", "recordTarget")
    ins = ins_oid = None
    local: list[tuple[str, str]] = []
    for pid in role.findall("h:id", _NS):
        if pid.get("root") in INS_OIDS:
            ins, ins_oid = pid.get("extension"), pid.get("root")
        elif pid.get("extension") and pid.get("root"):
            local.append((pid.get("extension", ""), pid.get("root", "")))
    patient = _one(role, "h:patient", "patient")
    name = _one(patient, "h:name", "patient name")
    family = next(
        (f.text for f in name.findall("h:family", _NS) if f.get("qualifier") in (None, "BR")),
        None,
    )
    given = name.findtext("h:given", default="", namespaces=_NS)
    gender = _one(patient, "h:administrativeGenderCode", "patient sex").get("code", "")
    birth = (_one(patient, "h:birthTime", "birth time").get("value") or "")[:8]
    cog = patient.findtext("h:birthplace/h:place/h:addr/h:county", namespaces=_NS)
    author_node = _one(root, "h:author", "author")
    assigned = _one(author_node, "h:assignedAuthor", "assignedAuthor")
    author_time = hl7_time(_one(author_node, "h:time", "author time").get("value"))
    org = assigned.find("h:representedOrganization", _NS)
    org_id = org.find("h:id", _NS) if org is not None else None
    legal = _one(root, "h:legalAuthenticator/h:assignedEntity", "legalAuthenticator")
    event = root.find("h:documentationOf/h:serviceEvent/h:effectiveTime", _NS)
    low = event.find("h:low", _NS) if event is not None else None
    high = event.find("h:high", _NS) if event is not None else None
    parent = root.find("h:relatedDocument[@typeCode='RPLC']/h:parentDocument/h:id", _NS)
    setting = root.find(
        "h:documentationOf/h:serviceEvent/h:performer/h:assignedEntity/"
        "h:representedOrganization/h:standardIndustryClassCode",
        _NS,
    )
    if not family or not birth:
        raise MalformedCda("the CDA patient lacks a birth name or birth date")
    return CdaFacts(
        unique_id=unique_id,
        type_code=type_code,
        title=(root.findtext("h:title", default="", namespaces=_NS) or "").strip()[:200],
        effective_time=effective,
        confidentiality=confidentiality,
        language=_one(root, "h:languageCode", "languageCode").get("code", "fr-FR"),
        set_id=(set_id.get("extension") or set_id.get("root") or "") if set_id is not None else "",
        version=int(version.get("value", "1")) if version is not None else 1,
        ins=ins,
        ins_oid=ins_oid,
        local_ids=local,
        birth_family=family.strip(),
        given=given.strip(),
        sex=gender,
        birth_date=birth,
        birthplace_cog=cog.strip() if cog else None,
        author=_person(assigned, "author"),
        author_time=author_time or effective,
        institution_name=(
            org.findtext("h:name", default="", namespaces=_NS) if org is not None else ""
        ).strip(),
        institution_id=org_id.get("extension", "") if org_id is not None else "",
        legal_authenticator=_person(legal, "legalAuthenticator"),
        service_start=hl7_time(low.get("value")) if low is not None else None,
        service_stop=hl7_time(high.get("value")) if high is not None else None,
        facility_type=_coded(
            root.find(
                "h:componentOf/h:encompassingEncounter/h:location/h:healthCareFacility/h:code", _NS
            )
        ),
        practice_setting=_coded(setting),
        parent_unique_id=(
            parent.get("root", "")
            + (f"^{parent.get('extension')}" if parent.get("extension") else "")
            if parent is not None
            else None
        ),
    )
