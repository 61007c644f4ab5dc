"""IHE XDM packages (`IHE_XDM.zip`): built for outbound mail, read defensively from inbound mail.

Layout (ITI TF-1 §16, ISO-9660-style upper-case 8.3 names): `README.TXT`, `INDEX.HTM`, and
`IHE_XDM/SUBSET01/` holding `METADATA.XML` (an ebRIM `lcm:SubmitObjectsRequest`: one
SubmissionSet, its DocumentEntries and their HasMember associations) and the documents
`DOC0001.XML`, ... The metadata come from the CDA header (CI-SIS annex "lien entre l'en-tête
CDA et les métadonnées XDS").
"""

from __future__ import annotations

import hashlib
import io
import itertools
import stat
import uuid
import zipfile
from collections.abc import Iterator
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import PurePosixPath

from lxml import etree

from bsante.mss_connector.cda_header import CdaHeader

RIM = "urn:oasis:names:tc:ebxml-regrep:xsd:rim:3.0"
LCM = "urn:oasis:names:tc:ebxml-regrep:xsd:lcm:3.0"
SUBSET = "IHE_XDM/SUBSET01"
METADATA = f"{SUBSET}/METADATA.XML"

# XDS classification schemes and identification schemes (ITI TF-3 §4.2.5).
DOC_ENTRY = "urn:uuid:7edca82f-054d-47f2-a032-9b2a5b5186c1"
SUBMISSION_SET = "urn:uuid:a54d6aa5-d40d-43f9-88c5-b4633d873bdd"
DE_CLASS = "urn:uuid:41a5887f-8865-4c09-adf7-e362475b143a"
DE_CONFIDENTIALITY = "urn:uuid:f4f85eac-e6cb-4883-b524-f2705394840f"
DE_FORMAT = "urn:uuid:a09d5840-386c-46f2-b5ad-9c3699a4309d"
DE_FACILITY = "urn:uuid:f33fb8ac-18af-42cc-ae0e-ed0b0bdb91e1"
DE_PRACTICE = "urn:uuid:cccf5598-8b07-4b77-a05e-ae952c785ead"
DE_TYPE = "urn:uuid:f0306f51-975f-434e-a61c-c59651d33983"
DE_AUTHOR = "urn:uuid:93606bcf-9494-43ec-9b4e-a7748d1a838d"
DE_PATIENT_ID = "urn:uuid:58a6f841-87b3-4a3e-92fd-a8ffeff98427"
DE_UNIQUE_ID = "urn:uuid:2e82c1f6-a085-4c72-9da3-8640a32e42ab"
SS_CONTENT_TYPE = "urn:uuid:aa543740-bdda-424e-8c96-df4873be8500"
SS_AUTHOR = "urn:uuid:a7058bb9-b4e4-4307-ba5b-e3f0ab85e12d"
SS_PATIENT_ID = "urn:uuid:6b5aea1a-874d-4603-a4bc-96a0a7b38446"
SS_UNIQUE_ID = "urn:uuid:96fdda7c-d067-4183-912e-bf5ee74998a8"
SS_SOURCE_ID = "urn:uuid:554ac39e-e3fe-47fe-b233-965d2a147832"
CLASSIFICATION_NODE = "urn:oasis:names:tc:ebxml-regrep:ObjectType:RegistryObject:ExtrinsicObject"

# Inbound limits: a package bigger than this, or expanding to more, is quarantined.
MAX_ENTRIES = 200
MAX_ENTRY_BYTES = 20 * 1024 * 1024
MAX_TOTAL_BYTES = 60 * 1024 * 1024
MAX_RATIO = 200  # expanded / compressed, per entry


class InvalidPackage(ValueError):
    """An inbound XDM package that cannot be integrated; its message is the quarantine reason."""


@dataclass(frozen=True)
class PackedDocument:
    cda: bytes
    header: CdaHeader


@dataclass(frozen=True)
class XdmDocument:
    """A document of an inbound package, with what its DocumentEntry said about it."""

    path: str
    content: bytes
    mime_type: str
    type_code: str | None
    title: str | None
    creation_time: str | None
    patient_id: str | None  # sourcePatientId / patientId as CX
    author: str | None


@dataclass(frozen=True)
class XdmPackage:
    documents: list[XdmDocument] = field(default_factory=list)


# -- building -------------------------------------------------------------------------------


def _q(tag: str, ns: str = RIM) -> str:
    return f"{{{ns}}}{tag}"


def _slot(parent: etree._Element, name: str, *values: str) -> None:
    slot = etree.SubElement(parent, _q("Slot"), name=name)
    value_list = etree.SubElement(slot, _q("ValueList"))
    for value in values:
        etree.SubElement(value_list, _q("Value")).text = value


def _name(parent: etree._Element, text: str) -> None:
    name = etree.SubElement(parent, _q("Name"))
    etree.SubElement(name, _q("LocalizedString"), value=text, charset="UTF-8")


def _classification(
    parent: etree._Element,
    scheme: str,
    obj: str,
    code: str,
    *,
    coding_scheme: str | None = None,
    display: str | None = None,
    slots: dict[str, list[str]] | None = None,
) -> None:
    node = etree.SubElement(
        parent,
        _q("Classification"),
        id=_next_id(),
        classificationScheme=scheme,
        classifiedObject=obj,
        nodeRepresentation=code,
        objectType="urn:oasis:names:tc:ebxml-regrep:ObjectType:RegistryObject:Classification",
    )
    for slot_name, values in (slots or {}).items():
        _slot(node, slot_name, *values)
    if coding_scheme is not None:
        _slot(node, "codingScheme", coding_scheme)
    if display is not None:
        _name(node, display)


def _external_id(parent: etree._Element, scheme: str, obj: str, value: str, name: str) -> None:
    node = etree.SubElement(
        parent,
        _q("ExternalIdentifier"),
        id=_next_id(),
        identificationScheme=scheme,
        registryObject=obj,
        value=value,
        objectType="urn:oasis:names:tc:ebxml-regrep:ObjectType:RegistryObject:ExternalIdentifier",
    )
    _name(node, name)


_ids: ContextVar[Iterator[str]] = ContextVar("xdm_ids")


def _next_id() -> str:
    return next(_ids.get())


def _id_sequence(seed: str) -> Iterator[str]:
    """Object ids derived from the submission (UUID v5): the same input, the same package."""
    for n in itertools.count():
        yield f"urn:uuid:{uuid.uuid5(uuid.NAMESPACE_OID, f'{seed}.{n}')}"


def _xds_time(hl7: str) -> str:
    """XDS DTM: digits of the HL7 TS in UTC (the time zone dropped after conversion)."""
    digits = hl7[:14]
    if len(hl7) > 14 and hl7[14] in "+-":
        moment = datetime.strptime(hl7[:19], "%Y%m%d%H%M%S%z")
        return moment.astimezone(UTC).strftime("%Y%m%d%H%M%S")
    return digits


def build_metadata(
    documents: list[PackedDocument],
    *,
    submission_unique_id: str,
    source_id: str,
    submitted_at: datetime,
    author_person: str | None,
    recipients: list[str],
) -> bytes:
    """METADATA.XML for these documents (one patient), as an lcm:SubmitObjectsRequest."""
    token = _ids.set(_id_sequence(submission_unique_id))
    try:
        return _build_metadata(
            documents,
            submission_unique_id=submission_unique_id,
            source_id=source_id,
            submitted_at=submitted_at,
            author_person=author_person,
            recipients=recipients,
        )
    finally:
        _ids.reset(token)


def _build_metadata(
    documents: list[PackedDocument],
    *,
    submission_unique_id: str,
    source_id: str,
    submitted_at: datetime,
    author_person: str | None,
    recipients: list[str],
) -> bytes:
    request = etree.Element(_q("SubmitObjectsRequest", LCM), nsmap={"lcm": LCM, "rim": RIM})
    objects = etree.SubElement(request, _q("RegistryObjectList"))
    first = documents[0].header
    entries: list[str] = []
    for index, document in enumerate(documents, start=1):
        header = document.header
        entry = f"Document{index:02d}"
        entries.append(entry)
        obj = etree.SubElement(
            objects,
            _q("ExtrinsicObject"),
            id=entry,
            mimeType="text/xml",
            objectType=DOC_ENTRY,
            status="urn:oasis:names:tc:ebxml-regrep:StatusType:Approved",
        )
        _slot(obj, "creationTime", _xds_time(header.effective_time))
        _slot(obj, "hash", hashlib.sha1(document.cda).hexdigest())  # noqa: S324 (XDS)
        _slot(obj, "languageCode", header.language)
        if header.service_start:
            _slot(obj, "serviceStartTime", _xds_time(header.service_start))
        if header.service_stop:
            _slot(obj, "serviceStopTime", _xds_time(header.service_stop))
        _slot(obj, "size", str(len(document.cda)))
        _slot(obj, "sourcePatientId", header.source_patient_id)
        info = [f"PID-3|{header.source_patient_id}"]
        if header.family_name:
            info.append(f"PID-5|{header.family_name}^{header.given_names}^^^^^L")
        if header.birth_date:
            info.append(f"PID-7|{header.birth_date:%Y%m%d}")
        if header.sex:
            info.append(f"PID-8|{header.sex}")
        _slot(obj, "sourcePatientInfo", *info)
        _slot(obj, "URI", f"DOC{index:04d}.XML")
        _name(obj, header.title)
        if header.author_name or header.author_id:
            _classification(
                obj,
                DE_AUTHOR,
                entry,
                "",
                slots={
                    "authorPerson": [
                        f"{header.author_id or ''}^{header.author_name or ''}"
                        "^^^^^^^&1.2.250.1.71.4.2.1&ISO"
                    ],
                    **(
                        {
                            "authorInstitution": [
                                f"{header.author_institution}^^^^^&1.2.250.1.71.4.2.2&ISO^IDNST"
                                f"^^^{header.author_institution_id or ''}"
                            ]
                        }
                        if header.author_institution
                        else {}
                    ),
                },
            )
        _classification(
            obj,
            DE_CLASS,
            entry,
            "10",
            coding_scheme="1.2.250.1.213.1.1.4.1",
            display="Compte rendu",
        )
        _classification(
            obj,
            DE_CONFIDENTIALITY,
            entry,
            header.confidentiality,
            coding_scheme="2.16.840.1.113883.5.25",
            display=header.confidentiality,
        )
        _classification(
            obj,
            DE_FORMAT,
            entry,
            "urn:ihe:iti:xds-sd:pdf:2008",
            coding_scheme="1.3.6.1.4.1.19376.1.2.3",
            display="Document à corps non structuré en Pdf/A-1",
        )
        _classification(
            obj,
            DE_FACILITY,
            entry,
            header.facility_code or "SA07",
            coding_scheme="1.2.250.1.71.4.2.4",
            display=header.facility_code or "SA07",
        )
        _classification(
            obj,
            DE_PRACTICE,
            entry,
            header.practice_code or "AMBULATOIRE",
            coding_scheme="1.2.250.1.213.1.1.4.9",
            display=header.practice_code or "AMBULATOIRE",
        )
        _classification(
            obj,
            DE_TYPE,
            entry,
            header.type_code,
            coding_scheme="2.16.840.1.113883.6.1",
            display=header.type_display,
        )
        _external_id(
            obj, DE_PATIENT_ID, entry, header.source_patient_id, "XDSDocumentEntry.patientId"
        )
        _external_id(obj, DE_UNIQUE_ID, entry, header.unique_id, "XDSDocumentEntry.uniqueId")

    package = etree.SubElement(
        objects,
        _q("RegistryPackage"),
        id="SubmissionSet01",
        objectType="urn:oasis:names:tc:ebxml-regrep:ObjectType:RegistryObject:RegistryPackage",
    )
    _slot(package, "submissionTime", submitted_at.astimezone(UTC).strftime("%Y%m%d%H%M%S"))
    if recipients:
        # XDM's intendedRecipient: XON/XCN with the MSSanté address as telecom (|addr).
        _slot(package, "intendedRecipient", *(f"|{address}" for address in recipients))
    _name(package, first.title)
    if author_person:
        _classification(
            package, SS_AUTHOR, "SubmissionSet01", "", slots={"authorPerson": [author_person]}
        )
    _classification(
        package,
        SS_CONTENT_TYPE,
        "SubmissionSet01",
        "04",
        coding_scheme="1.3.6.1.4.1.19376.1.2.6.1",
        display="Hospitalisation de jour",
    )
    _external_id(
        package,
        SS_PATIENT_ID,
        "SubmissionSet01",
        first.source_patient_id,
        "XDSSubmissionSet.patientId",
    )
    _external_id(package, SS_SOURCE_ID, "SubmissionSet01", source_id, "XDSSubmissionSet.sourceId")
    _external_id(
        package,
        SS_UNIQUE_ID,
        "SubmissionSet01",
        submission_unique_id,
        "XDSSubmissionSet.uniqueId",
    )
    etree.SubElement(
        objects,
        _q("Classification"),
        id="ClassSubmissionSet01",
        classifiedObject="SubmissionSet01",
        classificationNode=SUBMISSION_SET,
        objectType="urn:oasis:names:tc:ebxml-regrep:ObjectType:RegistryObject:Classification",
    )
    for index, entry in enumerate(entries, start=1):
        association = etree.SubElement(
            objects,
            _q("Association"),
            id=f"Association{index:02d}",
            associationType="urn:oasis:names:tc:ebxml-regrep:AssociationType:HasMember",
            sourceObject="SubmissionSet01",
            targetObject=entry,
            objectType="urn:oasis:names:tc:ebxml-regrep:ObjectType:RegistryObject:Association",
        )
        _slot(association, "SubmissionSetStatus", "Original")
    return bytes(etree.tostring(request, xml_declaration=True, encoding="UTF-8"))


README = """IHE XDM package (ITI TF-1 chapter 16) sent by MSSante.

Sender: {sender}
Application: Bureautique Sante mss-connector
Contents: IHE_XDM/SUBSET01/METADATA.XML (XDS metadata) and {count} CDA R2 document(s).
Open INDEX.HTM to browse.
"""

INDEX = """<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>IHE XDM</title></head>
<body><h1>IHE XDM</h1><p><a href="README.TXT">README.TXT</a></p>
<p><a href="IHE_XDM/SUBSET01/METADATA.XML">METADATA.XML</a></p>
<ul>{items}</ul></body></html>
"""


def build_package(
    documents: list[PackedDocument],
    *,
    sender: str,
    submission_unique_id: str,
    source_id: str,
    submitted_at: datetime,
    author_person: str | None = None,
    recipients: list[str] | None = None,
) -> bytes:
    """IHE_XDM.zip bytes: deterministic for the same input (fixed entry dates)."""
    if not documents:
        raise ValueError("an XDM package holds at least one document")
    metadata = build_metadata(
        documents,
        submission_unique_id=submission_unique_id,
        source_id=source_id,
        submitted_at=submitted_at,
        author_person=author_person,
        recipients=recipients or [],
    )
    stamp = submitted_at.astimezone(UTC).timetuple()[:6]
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:

        def put(name: str, data: bytes) -> None:
            info = zipfile.ZipInfo(name, date_time=stamp)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            archive.writestr(info, data)

        put("README.TXT", README.format(sender=sender, count=len(documents)).encode())
        items = "".join(
            f'<li><a href="{SUBSET}/DOC{i:04d}.XML">DOC{i:04d}.XML</a></li>'
            for i in range(1, len(documents) + 1)
        )
        put("INDEX.HTM", INDEX.format(items=items).encode())
        put(METADATA, metadata)
        for index, document in enumerate(documents, start=1):
            put(f"{SUBSET}/DOC{index:04d}.XML", document.cda)
    return buffer.getvalue()


# -- reading --------------------------------------------------------------------------------


def _safe_name(info: zipfile.ZipInfo) -> str:
    name = info.filename
    path = PurePosixPath(name)
    if name.startswith("/") or "\\" in name or ".." in path.parts or ":" in name:
        raise InvalidPackage(f"unsafe path in package: {name[:80]}")
    mode = info.external_attr >> 16
    if stat.S_ISLNK(mode):
        raise InvalidPackage(f"link in package: {name[:80]}")
    return name


def _read_limited(archive: zipfile.ZipFile, info: zipfile.ZipInfo) -> bytes:
    if info.file_size > MAX_ENTRY_BYTES:
        raise InvalidPackage(f"entry too large: {info.filename[:80]}")
    if info.compress_size and info.file_size / max(1, info.compress_size) > MAX_RATIO:
        raise InvalidPackage(f"compression ratio too high (zip bomb?): {info.filename[:80]}")
    # The declared size may lie: read at most one byte past it.
    with archive.open(info) as stream:
        data = stream.read(MAX_ENTRY_BYTES + 1)
    if len(data) > MAX_ENTRY_BYTES or len(data) != info.file_size:
        raise InvalidPackage(f"entry size differs from its declaration: {info.filename[:80]}")
    return data


def _slot_values(node: etree._Element, name: str) -> list[str]:
    return [
        v.text or ""
        for v in node.findall(f"{{{RIM}}}Slot[@name='{name}']/{{{RIM}}}ValueList/{{{RIM}}}Value")
    ]


def read_package(data: bytes) -> XdmPackage:
    """The documents of an inbound IHE_XDM.zip; InvalidPackage names why it is refused."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, ValueError):
        raise InvalidPackage("not a zip archive") from None
    with archive:
        infos = archive.infolist()
        if len(infos) > MAX_ENTRIES:
            raise InvalidPackage("too many entries in package")
        if sum(i.file_size for i in infos) > MAX_TOTAL_BYTES:
            raise InvalidPackage("package expands beyond the limit")
        names = {_safe_name(i): i for i in infos if not i.is_dir()}
        for info in names.values():
            # Declared sizes first (read_limited checks them against the bytes read).
            if info.file_size > MAX_ENTRY_BYTES:
                raise InvalidPackage(f"entry too large: {info.filename[:80]}")
            if info.compress_size and info.file_size / info.compress_size > MAX_RATIO:
                raise InvalidPackage(
                    f"compression ratio too high (zip bomb?): {info.filename[:80]}"
                )
        metadata_name = next((n for n in names if n.upper() == METADATA), None)
        if metadata_name is None:
            raise InvalidPackage("no IHE_XDM/SUBSET01/METADATA.XML")
        try:
            raw = _read_limited(archive, names[metadata_name])
        except (zipfile.BadZipFile, RuntimeError, NotImplementedError):
            raise InvalidPackage("unreadable METADATA.XML") from None
        parser = etree.XMLParser(resolve_entities=False, no_network=True)
        try:
            root = etree.fromstring(raw, parser)
        except etree.XMLSyntaxError:
            raise InvalidPackage("METADATA.XML is not well-formed") from None
        if root.tag != _q("SubmitObjectsRequest", LCM):
            raise InvalidPackage("METADATA.XML is not a SubmitObjectsRequest")
        documents: list[XdmDocument] = []
        by_upper = {n.upper(): n for n in names}
        for entry in root.iter(_q("ExtrinsicObject")):
            uris = _slot_values(entry, "URI")
            if not uris or not uris[0]:
                raise InvalidPackage("a DocumentEntry has no URI")
            relative = PurePosixPath(uris[0])
            if relative.is_absolute() or ".." in relative.parts:
                raise InvalidPackage("a DocumentEntry URI leaves the subset")
            wanted = f"{SUBSET}/{relative}".upper()
            name = by_upper.get(wanted)
            if name is None:
                raise InvalidPackage(f"a DocumentEntry URI names no file: {uris[0][:80]}")
            try:
                content = _read_limited(archive, names[name])
            except (zipfile.BadZipFile, RuntimeError, NotImplementedError):
                raise InvalidPackage(f"unreadable entry {name[:80]}") from None
            declared_hash = _slot_values(entry, "hash")
            if declared_hash and declared_hash[0].lower() != hashlib.sha1(content).hexdigest():  # noqa: S324
                raise InvalidPackage(f"hash of {name[:80]} differs from METADATA.XML")
            type_code = None
            for node in entry.findall(_q("Classification")):
                if node.get("classificationScheme") == DE_TYPE:
                    type_code = node.get("nodeRepresentation")
            title_node = entry.find(f"{{{RIM}}}Name/{{{RIM}}}LocalizedString")
            patient = next(
                (
                    node.get("value")
                    for node in entry.findall(_q("ExternalIdentifier"))
                    if node.get("identificationScheme") == DE_PATIENT_ID
                ),
                None,
            )
            author = next(
                (
                    next(iter(_slot_values(node, "authorPerson")), None)
                    for node in entry.findall(_q("Classification"))
                    if node.get("classificationScheme") == DE_AUTHOR
                ),
                None,
            )
            documents.append(
                XdmDocument(
                    path=name,
                    content=content,
                    mime_type=entry.get("mimeType") or "application/octet-stream",
                    type_code=type_code,
                    title=None if title_node is None else title_node.get("value"),
                    creation_time=next(iter(_slot_values(entry, "creationTime")), None),
                    patient_id=patient,
                    author=author,
                )
            )
        if not documents:
            raise InvalidPackage("METADATA.XML lists no document")
        return XdmPackage(documents)
