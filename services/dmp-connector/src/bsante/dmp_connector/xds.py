"""IHE XDS.b messages as the DMP takes them: ebRIM metadata per the CI-SIS sharing rules
(ITI-41), stored queries (ITI-18), retrieval (ITI-43), metadata update (ITI-57), and the
RegistryResponse with its XDS error codes.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from lxml import etree

from bsante.dmp_connector.cda_facts import CdaFacts, Coded, Person

RIM = "urn:oasis:names:tc:ebxml-regrep:xsd:rim:3.0"
LCM = "urn:oasis:names:tc:ebxml-regrep:xsd:lcm:3.0"
RS = "urn:oasis:names:tc:ebxml-regrep:xsd:rs:3.0"
QUERY = "urn:oasis:names:tc:ebxml-regrep:xsd:query:3.0"
XDSB = "urn:ihe:iti:xds-b:2007"
XOP = "http://www.w3.org/2004/08/xop/include"
XML_NS = "http://www.w3.org/XML/1998/namespace"
NSMAP = {"rim": RIM, "lcm": LCM, "rs": RS, "query": QUERY, "xdsb": XDSB}

# SOAP actions.
ITI41 = "urn:ihe:iti:2007:ProvideAndRegisterDocumentSet-b"
ITI41_RESPONSE = "urn:ihe:iti:2007:ProvideAndRegisterDocumentSet-bResponse"
ITI18 = "urn:ihe:iti:2007:RegistryStoredQuery"
ITI18_RESPONSE = "urn:ihe:iti:2007:RegistryStoredQueryResponse"
ITI43 = "urn:ihe:iti:2007:RetrieveDocumentSet"
ITI43_RESPONSE = "urn:ihe:iti:2007:RetrieveDocumentSetResponse"
ITI57 = "urn:ihe:iti:2010:UpdateDocumentSet"
ITI57_RESPONSE = "urn:ihe:iti:2010:UpdateDocumentSetResponse"

# ebRIM identification and classification schemes of XDS.b (ITI TF-3 4.2.5).
SUBMISSION_SET = "urn:uuid:a54d6aa5-d40d-43f9-88c5-b4633d873bdd"
SS_AUTHOR = "urn:uuid:a7058bb9-b4e4-4307-ba5b-e3f0ab85e12d"
SS_CONTENT_TYPE = "urn:uuid:aa543740-bdda-424e-8c96-df4873be8500"
SS_PATIENT_ID = "urn:uuid:6b5aea1a-874d-4603-a4bc-96a0a7b38446"
SS_SOURCE_ID = "urn:uuid:554ac39e-e3fe-47fe-b233-965d2a147832"
SS_UNIQUE_ID = "urn:uuid:96fdda7c-d067-4183-912e-bf5ee74998a8"
STABLE_ENTRY = "urn:uuid:7edca82f-054d-47f2-a032-9b2a5b5186c1"
DE_AUTHOR = "urn:uuid:93606bcf-9494-43ec-9b4e-a7748d1a838d"
DE_CLASS = "urn:uuid:41a5887f-8865-4c09-adf7-e362475b143a"
DE_TYPE = "urn:uuid:f0306f51-975f-434e-a61c-c59651d33983"
DE_CONFIDENTIALITY = "urn:uuid:f4f85eac-e6cb-4883-b524-f2705394840f"
DE_FORMAT = "urn:uuid:a09d5840-386c-46f2-b5ad-9c3699a4309d"
DE_FACILITY = "urn:uuid:f33fb8ac-18af-42cc-ae0e-ed0b0bdb91e1"
DE_PRACTICE = "urn:uuid:cccf5598-8b07-4b77-a05e-ae952c785ead"
DE_PATIENT_ID = "urn:uuid:58a6f841-87b3-4a3e-92fd-a8ffeff98427"
DE_UNIQUE_ID = "urn:uuid:2e82c1f6-a085-4c72-9da3-8640a32e42ab"
HAS_MEMBER = "urn:oasis:names:tc:ebxml-regrep:AssociationType:HasMember"
RPLC = "urn:ihe:iti:2007:AssociationType:RPLC"
UPDATE_STATUS = "urn:ihe:iti:2010:AssociationType:UpdateAvailabilityStatus"
APPROVED = "urn:oasis:names:tc:ebxml-regrep:StatusType:Approved"
DEPRECATED = "urn:oasis:names:tc:ebxml-regrep:StatusType:Deprecated"
FIND_DOCUMENTS = "urn:uuid:14d4debf-8f97-4251-9a74-a90016b0af0d"
GET_DOCUMENTS = "urn:uuid:5c4f972b-d56b-40ac-a5fc-c8ca9b40b9d4"
SUCCESS = "urn:oasis:names:tc:ebxml-regrep:ResponseStatusType:Success"
FAILURE = "urn:oasis:names:tc:ebxml-regrep:ResponseStatusType:Failure"
ERROR = "urn:oasis:names:tc:ebxml-regrep:ErrorSeverityType:Error"

OID_PS_ID_NAT = "1.2.250.1.71.4.2.1"
OID_STRUCT_ID_NAT = "1.2.250.1.71.4.2.2"
OID_VISIBILITY = "1.2.250.1.213.1.1.4.13"
OID_CONFIDENTIALITY = "2.16.840.1.113883.5.25"
OID_CLASS = "1.2.250.1.213.1.1.4.1"
OID_FORMAT = "1.3.6.1.4.1.19376.1.2.3"
OID_CONTENT_TYPE = "1.2.250.1.213.2.2"
VISIBILITY_DISPLAY = {
    "MASQUE_PS": "Masqué aux professionnels de santé",
    "INVISIBLE_PATIENT": "Non visible par le patient",
    "INVISIBLE_REPRESENTANTS_LEGAUX": "Non visible par les représentants légaux du patient",
}
# JDV_J06 (XdsClassCode) and JDV_J10 (XdsFormatCode) are not in the CI-SIS kit we check against:
# the codes used are listed here, from the CI-SIS sharing rules, and the simulator accepts these.
CLASS_BY_TYPE = {
    "11488-4": Coded("10", OID_CLASS, "Compte rendu"),
    "11490-0": Coded("10", OID_CLASS, "Compte rendu"),
    "11502-2": Coded("10", OID_CLASS, "Compte rendu"),
    "75482-0": Coded("10", OID_CLASS, "Compte rendu"),
    "34133-9": Coded("11", OID_CLASS, "Synthèse"),
}
CLASS_CODES = {c.code for c in CLASS_BY_TYPE.values()}
FORMAT_N1 = Coded(
    "urn:ihe:iti:xds-sd:pdf:2008", OID_FORMAT, "Document à corps non structuré en PDF"
)
FORMAT_CODES = {FORMAT_N1.code, "urn:ihe:iti:xds-sd:text:2008"}


def xds_time(moment: datetime) -> str:
    """XDS DTM in UTC, to the second."""
    return moment.astimezone(UTC).strftime("%Y%m%d%H%M%S")


def oid_of(value: uuid.UUID) -> str:
    """A UUID as an OID under 2.25 (ISO/IEC 9834-8): submission set unique ids."""
    return f"2.25.{value.int}"


def patient_cx(ins: str, oid: str) -> str:
    return f"{ins}^^^&{oid}&ISO^NH"


def xcn(person: Person) -> str:
    return f"{person.id}^{person.family}^{person.given}^^^^^^&{OID_PS_ID_NAT}&ISO^D^^^IDNPS"


def xon(name: str, struct_id: str) -> str:
    return f"{name}^^^^^&{OID_STRUCT_ID_NAT}&ISO^IDNST^^^{struct_id}"


# -- building -------------------------------------------------------------------------------


def _e(parent: etree._Element, ns: str, tag: str, **attributes: str) -> etree._Element:
    return etree.SubElement(parent, f"{{{ns}}}{tag}", **attributes)


def _slot(parent: etree._Element, name: str, values: Sequence[str]) -> None:
    slot = _e(parent, RIM, "Slot", name=name)
    value_list = _e(slot, RIM, "ValueList")
    for value in values:
        _e(value_list, RIM, "Value").text = value


def _name(parent: etree._Element, text: str, tag: str = "Name") -> None:
    holder = _e(parent, RIM, tag)
    localized = _e(holder, RIM, "LocalizedString", charset="UTF-8", value=text)
    localized.set(f"{{{XML_NS}}}lang", "fr-FR")


def _classification(parent: etree._Element, scheme: str, obj: str, code: Coded, ident: str) -> None:
    c = _e(
        parent,
        RIM,
        "Classification",
        classificationScheme=scheme,
        classifiedObject=obj,
        nodeRepresentation=code.code,
        id=ident,
    )
    _slot(c, "codingScheme", [code.system])
    _name(c, code.display or code.code)


def _external(
    parent: etree._Element, scheme: str, obj: str, value: str, name: str, ident: str
) -> None:
    e = _e(
        parent,
        RIM,
        "ExternalIdentifier",
        identificationScheme=scheme,
        value=value,
        registryObject=obj,
        id=ident,
    )
    _name(e, name)


@dataclass(frozen=True)
class Entry:
    """One DocumentEntry to register: the CDA's facts plus what the connector decides."""

    facts: CdaFacts
    entry_uuid: str
    patient_id: str  # INS^^^&OID&ISO^NH
    class_code: Coded
    format_code: Coded
    facility_type: Coded
    practice_setting: Coded
    visibility: Sequence[str]
    sha1: str
    size: int
    replaces_entry_uuid: str | None = None
    content_id: str = "document-1@bsante"


@dataclass(frozen=True)
class SubmissionSet:
    unique_id: str
    source_id: str
    submitted_at: datetime
    content_type: Coded
    entry_uuid: str = field(default_factory=lambda: f"urn:uuid:{uuid.uuid4()}")


def _patient_info(facts: CdaFacts) -> list[str]:
    info = [
        f"PID-5|{facts.birth_family}^{facts.given}^^^^^L",
        f"PID-7|{facts.birth_date}",
        f"PID-8|{facts.sex}",
    ]
    if facts.birthplace_cog:
        info.append(f"PID-11|^^^^^^BDL^^{facts.birthplace_cog}")
    return info


def _confidentiality(entry: Entry) -> list[Coded]:
    codes = [entry.facts.confidentiality]
    codes += [Coded(v, OID_VISIBILITY, VISIBILITY_DISPLAY[v]) for v in entry.visibility]
    return codes


def extrinsic_object(
    entry: Entry, parent: etree._Element, *, logical_id: str | None = None
) -> etree._Element:
    facts = entry.facts
    eo = _e(
        parent,
        RIM,
        "ExtrinsicObject",
        id=entry.entry_uuid,
        mimeType="text/xml",
        objectType=STABLE_ENTRY,
    )
    if logical_id is not None:
        eo.set("lid", logical_id)
    _slot(eo, "creationTime", [xds_time(facts.effective_time)])
    _slot(eo, "languageCode", [facts.language])
    _slot(eo, "legalAuthenticator", [xcn(facts.legal_authenticator)])
    if facts.service_start is not None:
        _slot(eo, "serviceStartTime", [xds_time(facts.service_start)])
    if facts.service_stop is not None:
        _slot(eo, "serviceStopTime", [xds_time(facts.service_stop)])
    _slot(
        eo,
        "sourcePatientId",
        [
            f"{facts.local_ids[0][0]}^^^&{facts.local_ids[0][1]}&ISO^PI"
            if facts.local_ids
            else entry.patient_id
        ],
    )
    _slot(eo, "sourcePatientInfo", _patient_info(facts))
    _slot(eo, "hash", [entry.sha1])
    _slot(eo, "size", [str(entry.size)])
    _name(eo, facts.title or facts.type_code.display)
    oid = entry.entry_uuid
    author = _e(
        eo,
        RIM,
        "Classification",
        classificationScheme=DE_AUTHOR,
        classifiedObject=oid,
        nodeRepresentation="",
        id=f"{oid}-author",
    )
    _slot(author, "authorPerson", [xcn(facts.author)])
    _slot(author, "authorInstitution", [xon(facts.institution_name, facts.institution_id)])
    if facts.author.profession is not None:
        p = facts.author.profession
        _slot(author, "authorSpecialty", [f"{p.code}^{p.display}^{p.system}"])
    _classification(eo, DE_CLASS, oid, entry.class_code, f"{oid}-class")
    for index, code in enumerate(_confidentiality(entry)):
        _classification(eo, DE_CONFIDENTIALITY, oid, code, f"{oid}-conf-{index}")
    _classification(eo, DE_FORMAT, oid, entry.format_code, f"{oid}-format")
    _classification(eo, DE_FACILITY, oid, entry.facility_type, f"{oid}-facility")
    _classification(eo, DE_PRACTICE, oid, entry.practice_setting, f"{oid}-practice")
    _classification(eo, DE_TYPE, oid, facts.type_code, f"{oid}-type")
    _external(eo, DE_PATIENT_ID, oid, entry.patient_id, "XDSDocumentEntry.patientId", f"{oid}-pid")
    _external(eo, DE_UNIQUE_ID, oid, facts.unique_id, "XDSDocumentEntry.uniqueId", f"{oid}-uid")
    return eo


def _submission_set(parent: etree._Element, ss: SubmissionSet, entry: Entry) -> None:
    facts = entry.facts
    rp = _e(parent, RIM, "RegistryPackage", id=ss.entry_uuid)
    _slot(rp, "submissionTime", [xds_time(ss.submitted_at)])
    _name(rp, facts.title or "Soumission")
    author = _e(
        rp,
        RIM,
        "Classification",
        classificationScheme=SS_AUTHOR,
        classifiedObject=ss.entry_uuid,
        nodeRepresentation="",
        id=f"{ss.entry_uuid}-a",
    )
    _slot(author, "authorPerson", [xcn(facts.author)])
    _slot(author, "authorInstitution", [xon(facts.institution_name, facts.institution_id)])
    _classification(rp, SS_CONTENT_TYPE, ss.entry_uuid, ss.content_type, f"{ss.entry_uuid}-ct")
    _e(
        rp,
        RIM,
        "Classification",
        classificationNode=SUBMISSION_SET,
        classifiedObject=ss.entry_uuid,
        id=f"{ss.entry_uuid}-node",
    )
    _external(
        rp,
        SS_PATIENT_ID,
        ss.entry_uuid,
        entry.patient_id,
        "XDSSubmissionSet.patientId",
        f"{ss.entry_uuid}-pid",
    )
    _external(
        rp,
        SS_SOURCE_ID,
        ss.entry_uuid,
        ss.source_id,
        "XDSSubmissionSet.sourceId",
        f"{ss.entry_uuid}-src",
    )
    _external(
        rp,
        SS_UNIQUE_ID,
        ss.entry_uuid,
        ss.unique_id,
        "XDSSubmissionSet.uniqueId",
        f"{ss.entry_uuid}-uid",
    )


def _association(
    parent: etree._Element, kind: str, source: str, target: str, slots: dict[str, str] | None = None
) -> None:
    a = _e(
        parent,
        RIM,
        "Association",
        associationType=kind,
        sourceObject=source,
        targetObject=target,
        id=f"urn:uuid:{uuid.uuid4()}",
    )
    for name, value in (slots or {}).items():
        _slot(a, name, [value])


def provide_and_register(ss: SubmissionSet, entry: Entry) -> etree._Element:
    """The ITI-41 request; the document itself is an `xop:Include` of `entry.content_id`."""
    request = etree.Element(
        f"{{{XDSB}}}ProvideAndRegisterDocumentSetRequest",
        nsmap={"xdsb": XDSB, "lcm": LCM, "rim": RIM},
    )
    objects = _e(_e(request, LCM, "SubmitObjectsRequest"), RIM, "RegistryObjectList")
    _submission_set(objects, ss, entry)
    extrinsic_object(entry, objects)
    _association(
        objects, HAS_MEMBER, ss.entry_uuid, entry.entry_uuid, {"SubmissionSetStatus": "Original"}
    )
    if entry.replaces_entry_uuid:
        _association(objects, RPLC, entry.entry_uuid, entry.replaces_entry_uuid)
    document = _e(request, XDSB, "Document", id=entry.entry_uuid)
    _e(document, XOP, "Include", href=f"cid:{entry.content_id}")
    return request


def update_visibility(
    ss: SubmissionSet, entry: Entry, previous_version: int, logical_id: str
) -> etree._Element:
    """ITI-57: a new version of the DocumentEntry (same logical id) with new confidentiality
    codes, member of a submission set with the PreviousVersion slot."""
    request = etree.Element(f"{{{LCM}}}SubmitObjectsRequest", nsmap={"lcm": LCM, "rim": RIM})
    objects = _e(request, RIM, "RegistryObjectList")
    _submission_set(objects, ss, entry)
    extrinsic_object(entry, objects, logical_id=logical_id)
    _association(
        objects,
        HAS_MEMBER,
        ss.entry_uuid,
        entry.entry_uuid,
        {"SubmissionSetStatus": "Original", "PreviousVersion": str(previous_version)},
    )
    return request


def update_status(ss: SubmissionSet, entry: Entry, logical_id: str) -> etree._Element:
    """ITI-57: the entry's availability status Approved -> Deprecated (withdrawal)."""
    request = etree.Element(f"{{{LCM}}}SubmitObjectsRequest", nsmap={"lcm": LCM, "rim": RIM})
    objects = _e(request, RIM, "RegistryObjectList")
    _submission_set(objects, ss, entry)
    _association(
        objects,
        UPDATE_STATUS,
        ss.entry_uuid,
        logical_id,
        {"OriginalStatus": APPROVED, "NewStatus": DEPRECATED},
    )
    return request


def stored_query(query_id: str, parameters: dict[str, list[str]]) -> etree._Element:
    """ITI-18 AdhocQueryRequest (LeafClass: full metadata)."""
    request = etree.Element(f"{{{QUERY}}}AdhocQueryRequest", nsmap={"query": QUERY, "rim": RIM})
    _e(request, QUERY, "ResponseOption", returnType="LeafClass", returnComposedObjects="true")
    query = _e(request, RIM, "AdhocQuery", id=query_id)
    for name, values in parameters.items():
        _slot(query, name, values)
    return request


def find_documents(patient_id: str) -> etree._Element:
    return stored_query(
        FIND_DOCUMENTS,
        {
            "$XDSDocumentEntryPatientId": [f"'{patient_id}'"],
            "$XDSDocumentEntryStatus": [f"('{APPROVED}')"],
        },
    )


def get_documents(unique_ids: Sequence[str]) -> etree._Element:
    return stored_query(
        GET_DOCUMENTS,
        {
            "$XDSDocumentEntryUniqueId": ["(" + ",".join(f"'{u}'" for u in unique_ids) + ")"],
        },
    )


def retrieve(repository_id: str, unique_id: str) -> etree._Element:
    request = etree.Element(f"{{{XDSB}}}RetrieveDocumentSetRequest", nsmap={"xdsb": XDSB})
    item = _e(request, XDSB, "DocumentRequest")
    _e(item, XDSB, "RepositoryUniqueId").text = repository_id
    _e(item, XDSB, "DocumentUniqueId").text = unique_id
    return request


# -- responses ------------------------------------------------------------------------------


@dataclass(frozen=True)
class RegistryError:
    code: str
    context: str
    location: str = ""


@dataclass(frozen=True)
class RegistryResponse:
    success: bool
    errors: list[RegistryError]


def registry_response(
    status: str, errors: Sequence[RegistryError] = (), tag: str = "RegistryResponse", ns: str = RS
) -> etree._Element:
    response = etree.Element(f"{{{ns}}}{tag}", nsmap={"rs": RS}, status=status)
    if errors:
        error_list = _e(response, RS, "RegistryErrorList")
        for error in errors:
            _e(
                error_list,
                RS,
                "RegistryError",
                errorCode=error.code,
                codeContext=error.context[:300],
                severity=ERROR,
                location=error.location,
            )
    return response


def parse_registry_response(element: etree._Element) -> RegistryResponse:
    """A RegistryResponse (or an element carrying one: AdhocQueryResponse...)."""
    node = (
        element
        if element.get("status") is not None
        else element.find(f".//{{{RS}}}RegistryResponse")
    )
    if node is None or node.get("status") is None:
        raise ValueError(f"no RegistryResponse status in {etree.QName(element).localname}")
    errors = [
        RegistryError(e.get("errorCode", ""), e.get("codeContext", ""), e.get("location", ""))
        for e in node.iter(f"{{{RS}}}RegistryError")
        if e.get("severity", ERROR) == ERROR
    ]
    status = node.get("status", "")
    if status not in (SUCCESS, FAILURE, "urn:ihe:iti:2007:ResponseStatusType:PartialSuccess"):
        raise ValueError(f"unknown RegistryResponse status {status[:80]}")
    return RegistryResponse(status == SUCCESS and not errors, errors)


@dataclass(frozen=True)
class EntryView:
    """A DocumentEntry as a query returns it."""

    entry_uuid: str
    unique_id: str
    patient_id: str
    title: str
    type_code: str
    class_code: str
    creation_time: str
    hash: str
    size: int
    status: str
    confidentiality: list[str]
    repository_id: str
    logical_id: str
    version: int


def _slot_values(node: etree._Element, name: str) -> list[str]:
    slot = node.find(f"{{{RIM}}}Slot[@name='{name}']")
    if slot is None:
        return []
    return [v.text or "" for v in slot.iter(f"{{{RIM}}}Value")]


def entries(response: etree._Element) -> list[EntryView]:
    found: list[EntryView] = []
    for eo in response.iter(f"{{{RIM}}}ExtrinsicObject"):
        ids = {
            e.get("identificationScheme"): e.get("value", "")
            for e in eo.findall(f"{{{RIM}}}ExternalIdentifier")
        }
        classes: dict[str, list[str]] = {}
        for c in eo.findall(f"{{{RIM}}}Classification"):
            classes.setdefault(c.get("classificationScheme", ""), []).append(
                c.get("nodeRepresentation", "")
            )
        name = eo.find(f"{{{RIM}}}Name/{{{RIM}}}LocalizedString")
        version = eo.find(f"{{{RIM}}}VersionInfo")
        found.append(
            EntryView(
                entry_uuid=eo.get("id", ""),
                unique_id=ids.get(DE_UNIQUE_ID, ""),
                patient_id=ids.get(DE_PATIENT_ID, ""),
                title=name.get("value", "") if name is not None else "",
                type_code=(classes.get(DE_TYPE) or [""])[0],
                class_code=(classes.get(DE_CLASS) or [""])[0],
                creation_time=(_slot_values(eo, "creationTime") or [""])[0],
                hash=(_slot_values(eo, "hash") or [""])[0],
                size=int((_slot_values(eo, "size") or ["0"])[0] or 0),
                status=eo.get("status", ""),
                confidentiality=classes.get(DE_CONFIDENTIALITY, []),
                repository_id=(_slot_values(eo, "repositoryUniqueId") or [""])[0],
                logical_id=eo.get("lid") or eo.get("id", ""),
                version=int(version.get("versionName", "1")) if version is not None else 1,
            )
        )
    return found
