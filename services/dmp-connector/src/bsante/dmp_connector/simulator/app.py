"""The simulator's HTTP app: SOAP endpoints (repository, registry, administration), a JSON view
of what it received, and faults on demand for tests.

In memory: a restarted simulator starts empty. It checks what the DMP checks (see
`check_submission`) and says what it could not check when the schemas are absent.
"""

from __future__ import annotations

import asyncio
import copy
import hashlib
import logging
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from lxml import etree
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from bsante.dmp_connector import mtom, soap, standards, vihf, xds
from bsante.dmp_connector.simulator.dataset import DmpPatient

log = logging.getLogger("bsante.dmp_connector.simulator")
ADMIN = "urn:bsante:dmp:admin:1"
REPOSITORY_ID = "1.2.250.1.213.1.1.9.999"
FAULT_MODES = ("http_503", "soap_receiver", "soap_sender", "garbage", "cut", "delay")


@dataclass
class Stored:
    unique_id: str
    entry_uuid: str
    logical_id: str
    patient_ins: str
    structure_id: str
    author: str
    document: bytes
    mime_type: str
    extrinsic: etree._Element
    status: str = xds.APPROVED
    version: int = 1
    received_at: str = field(default_factory=lambda: datetime.now(UTC).isoformat())


@dataclass
class Fault:
    mode: str
    remaining: int
    delay: float = 0.0


class Rejected(Exception):
    def __init__(self, code: str, context: str) -> None:
        super().__init__(f"{code}: {context}")
        self.code = code
        self.context = context


class Simulator:
    def __init__(
        self,
        patients: dict[str, DmpPatient],
        *,
        trust_file: Path | None,
        think_seconds: float = 0.0,
    ) -> None:
        self.patients = patients
        self.trust_file = trust_file
        self.think_seconds = think_seconds
        self.documents: dict[str, Stored] = {}
        self.faults: list[Fault] = []
        self.lock = asyncio.Lock()
        self.schemas = True
        self.cda_schema = True
        self.missing: list[str] = []
        try:
            standards.xds_schema()
            standards.saml_schema()
            standards.lcm_schema()
            standards.query_schema()
        except (standards.StandardsNotFound, OSError) as error:
            self.schemas = False
            self.missing.append(f"IHE schemas ({error}): messages are not schema-validated")
        try:
            standards.cda_schema()
            standards.value_set("JDV_J07")
        except (standards.StandardsNotFound, OSError) as error:
            self.cda_schema = False
            self.missing.append(f"CI-SIS kit ({error}): CDA and codes are not checked")
        if trust_file is None:
            self.missing.append(
                "no trust store: a VIHF signature is checked against its own certificate only"
            )

    # -- faults ---------------------------------------------------------------------------

    def take_fault(self) -> Fault | None:
        while self.faults:
            fault = self.faults[0]
            if fault.remaining <= 0:
                self.faults.pop(0)
                continue
            fault.remaining -= 1
            return fault
        return None

    # -- VIHF -----------------------------------------------------------------------------

    def read_vihf(self, parsed: soap.Parsed) -> vihf.Vihf:
        assertion = parsed.header.find(f"{{{soap.WSSE}}}Security/{{{vihf.SAML}}}Assertion")
        if assertion is None:
            raise soap.SoapFault("Sender", "VIHF absent: no SAML assertion in wsse:Security")
        if self.schemas:
            errors = standards.schema_errors(standards.saml_schema(), assertion)
            if errors:
                raise soap.SoapFault("Sender", f"VIHF invalide (schéma SAML): {errors[0]}")
        try:
            token = vihf.read(assertion, trust_file=self.trust_file)
        except vihf.VihfError as error:
            raise soap.SoapFault("Sender", f"VIHF invalide: {error}") from None
        missing = [name for name in vihf.MANDATORY if not any(token.attributes.get(name, []))]
        if missing:
            raise soap.SoapFault("Sender", f"VIHF incomplet: {', '.join(missing)}")
        if not token.name_id:
            raise soap.SoapFault("Sender", "VIHF incomplet: NameID")
        if token.one("Ressource_URN") != "urn:dmp":
            raise soap.SoapFault("Sender", "VIHF: Ressource_URN n'est pas urn:dmp")
        return token

    def patient_of(self, token: vihf.Vihf) -> tuple[str, DmpPatient | None]:
        ins = token.one(vihf.RESOURCE_ID).split("^", 1)[0]
        return ins, self.patients.get(ins)

    def trace(self, patient: DmpPatient | None, token: vihf.Vihf, action: str) -> None:
        if patient is not None:
            patient.accesses.append(
                {
                    "at": datetime.now(UTC).isoformat(),
                    "actor": token.name_id,
                    "structure": token.one("Identifiant_Structure"),
                    "action": action,
                }
            )

    # -- ITI-41 ---------------------------------------------------------------------------

    def check_submission(
        self, request: etree._Element, message: mtom.MtomMessage, token: vihf.Vihf
    ) -> tuple[list[Stored], list[tuple[str, str]]]:
        """What the DMP refuses, in the order it finds it; raises `Rejected`."""
        resolved = copy.deepcopy(request)
        missing = mtom.resolve_xop(resolved, message.attachments)
        if missing:
            raise Rejected("XDSMissingDocument", f"no MIME part for {', '.join(missing)}")
        if self.schemas:
            errors = standards.schema_errors(standards.xds_schema(), resolved)
            if errors:
                raise Rejected("XDSRegistryMetadataError", f"schema: {errors[0]}")
        objects = request.find(f"{{{xds.LCM}}}SubmitObjectsRequest/{{{xds.RIM}}}RegistryObjectList")
        if objects is None:
            raise Rejected("XDSRegistryMetadataError", "no RegistryObjectList")
        packages = objects.findall(f"{{{xds.RIM}}}RegistryPackage")
        if len(packages) != 1:
            raise Rejected("XDSRegistryMetadataError", "exactly one submission set expected")
        ss_ids = _identifiers(packages[0])
        ss_patient = ss_ids.get(xds.SS_PATIENT_ID, "")
        for scheme, name in ((xds.SS_UNIQUE_ID, "uniqueId"), (xds.SS_SOURCE_ID, "sourceId")):
            if not ss_ids.get(scheme):
                raise Rejected("XDSRegistryMetadataError", f"submission set without {name}")
        if not _slot(packages[0], "submissionTime"):
            raise Rejected("XDSRegistryMetadataError", "submission set without submissionTime")
        ins, patient = self.patient_of(token)
        if ss_patient.split("^", 1)[0] != ins:
            raise Rejected(
                "XDSPatientIdDoesNotMatch", "patientId differs from the VIHF resource-id"
            )
        if patient is None:
            raise Rejected("XDSUnknownPatientId", "no DMP for this INS")
        if patient.status != "ouvert":
            raise Rejected("XDSUnknownPatientId", "the patient's DMP is closed")
        documents = {d.get("id", ""): d for d in request.findall(f"{{{xds.XDSB}}}Document")}
        stored: list[Stored] = []
        seen: set[str] = set()
        for eo in objects.findall(f"{{{xds.RIM}}}ExtrinsicObject"):
            entry_uuid = eo.get("id", "")
            ids = _identifiers(eo)
            unique_id = ids.get(xds.DE_UNIQUE_ID, "")
            if ids.get(xds.DE_PATIENT_ID) != ss_patient:
                raise Rejected("XDSPatientIdDoesNotMatch", f"{entry_uuid}: patientId differs")
            if not unique_id or unique_id in seen:
                raise Rejected("XDSRegistryMetadataError", f"{entry_uuid}: uniqueId missing")
            seen.add(unique_id)
            if unique_id in self.documents:
                raise Rejected("XDSDuplicateUniqueIdInRegistry", unique_id)
            holder = documents.get(entry_uuid)
            include = holder.find(f"{{{mtom.XOP_NS}}}Include") if holder is not None else None
            part = (
                message.attachments.get(include.get("href", "").removeprefix("cid:"))
                if include is not None
                else None
            )
            if part is None:
                raise Rejected("XDSMissingDocument", f"{entry_uuid}: no document")
            body = part.body
            if (_slot(eo, "hash") or [""])[0].lower() != hashlib.sha1(body).hexdigest():
                raise Rejected("XDSNonIdenticalHash", f"{entry_uuid}: hash")
            if (_slot(eo, "size") or [""])[0] != str(len(body)):
                raise Rejected("XDSNonIdenticalSize", f"{entry_uuid}: size")
            for name in ("creationTime", "languageCode", "sourcePatientId", "legalAuthenticator"):
                if not _slot(eo, name):
                    raise Rejected("XDSRegistryMetadataError", f"{entry_uuid}: {name} missing")
            self.check_codes(eo)
            self.check_cda(body, unique_id)
            author = next(
                (
                    v.split("^", 1)[0]
                    for c in eo.findall(f"{{{xds.RIM}}}Classification")
                    if c.get("classificationScheme") == xds.DE_AUTHOR
                    for v in _slot(c, "authorPerson")
                ),
                "",
            )
            extrinsic = copy.deepcopy(eo)
            stored.append(
                Stored(
                    unique_id=unique_id,
                    entry_uuid=entry_uuid,
                    logical_id=entry_uuid,
                    patient_ins=ins,
                    structure_id=token.one("Identifiant_Structure"),
                    author=author,
                    document=body,
                    mime_type=eo.get("mimeType", "text/xml"),
                    extrinsic=extrinsic,
                )
            )
        if not stored:
            raise Rejected("XDSRegistryMetadataError", "no DocumentEntry")
        members = {
            a.get("targetObject", "")
            for a in objects.findall(f"{{{xds.RIM}}}Association")
            if a.get("associationType") == xds.HAS_MEMBER
            and a.get("sourceObject") == packages[0].get("id")
        }
        if not {s.entry_uuid for s in stored} <= members:
            raise Rejected("XDSRegistryMetadataError", "a DocumentEntry is not a member")
        replaced: list[tuple[str, str]] = []
        by_entry = {d.entry_uuid: d for d in self.documents.values()}
        for a in objects.findall(f"{{{xds.RIM}}}Association"):
            if a.get("associationType") != xds.RPLC:
                continue
            target = by_entry.get(a.get("targetObject", ""))
            if target is None or target.status != xds.APPROVED or target.patient_ins != ins:
                raise Rejected("UnresolvedReferenceException", "RPLC target unknown")
            replaced.append((a.get("sourceObject", ""), target.unique_id))
        return stored, replaced

    def check_codes(self, eo: etree._Element) -> None:
        visibility = set(_codes(eo, xds.DE_CONFIDENTIALITY))
        if {"MASQUE_PS", "INVISIBLE_PATIENT"} <= visibility:
            # The DMP's default (cumul-invisible_patient-masque_ps = false, EX_2.1-1050).
            raise Rejected(
                "XDSRegistryMetadataError",
                "a document cannot be both MASQUE_PS and INVISIBLE_PATIENT",
            )
        if not self.cda_schema:
            return
        sets = {
            xds.DE_TYPE: ["JDV_J07"],
            xds.DE_CONFIDENTIALITY: ["JDV_J08"],
            xds.DE_FACILITY: ["JDV_J02"],
            xds.DE_PRACTICE: ["JDV_J04"],
        }
        for c in eo.findall(f"{{{xds.RIM}}}Classification"):
            scheme = c.get("classificationScheme", "")
            code = c.get("nodeRepresentation", "")
            system = (_slot(c, "codingScheme") or [""])[0]
            if scheme in sets:
                if not any((code, system) in standards.value_set(v) for v in sets[scheme]):
                    raise Rejected(
                        "XDSRegistryMetadataError", f"code {code} not in {sets[scheme][0]}"
                    )
            elif scheme == xds.DE_CLASS and code not in xds.CLASS_CODES:
                raise Rejected("XDSRegistryMetadataError", f"classCode {code} unknown")
            elif scheme == xds.DE_FORMAT and code not in xds.FORMAT_CODES:
                raise Rejected("XDSRegistryMetadataError", f"formatCode {code} unknown")
            elif scheme == xds.DE_AUTHOR:
                for value in _slot(c, "authorSpecialty"):
                    code, _, rest = value.partition("^")
                    system = rest.rpartition("^")[2]
                    if (code, system) not in standards.value_set("JDV_J01"):
                        raise Rejected("XDSRegistryMetadataError", f"authorSpecialty {code}")

    def check_cda(self, body: bytes, unique_id: str) -> None:
        try:
            root = etree.fromstring(
                body, parser=etree.XMLParser(resolve_entities=False, no_network=True)
            )
        except etree.XMLSyntaxError:
            raise Rejected("XDSRegistryMetadataError", "the document is not XML") from None
        if self.cda_schema:
            errors = standards.schema_errors(standards.cda_schema(), root)
            if errors:
                raise Rejected("XDSRegistryMetadataError", f"CDA: {errors[0]}")
        ident = root.find("{urn:hl7-org:v3}id")
        cda_id = (
            (
                ident.get("root", "")
                + (f"^{ident.get('extension')}" if ident.get("extension") else "")
            )
            if ident is not None
            else ""
        )
        if cda_id != unique_id:
            raise Rejected("XDSRegistryMetadataError", "uniqueId differs from the CDA id")

    # -- handlers -------------------------------------------------------------------------

    async def provide_and_register(
        self, parsed: soap.Parsed, message: mtom.MtomMessage, token: vihf.Vihf
    ) -> etree._Element:
        ins, patient = self.patient_of(token)
        async with self.lock:
            try:
                stored, replaced = self.check_submission(parsed.payload, message, token)
            except Rejected as rejection:
                log.info("iti41_rejected code=%s", rejection.code)
                return xds.registry_response(
                    xds.FAILURE, [xds.RegistryError(rejection.code, rejection.context)]
                )
            for doc in stored:
                self.documents[doc.unique_id] = doc
            for _, old in replaced:
                self.documents[old].status = xds.DEPRECATED
            self.trace(patient, token, "ITI-41")
        log.info("iti41_accepted documents=%d", len(stored))
        return xds.registry_response(xds.SUCCESS)

    def visible(self, doc: Stored, token: vihf.Vihf) -> bool:
        masked = "MASQUE_PS" in _codes(doc.extrinsic, xds.DE_CONFIDENTIALITY)
        return not masked or doc.author == token.name_id

    def authorised(self, patient: DmpPatient | None, token: vihf.Vihf) -> None:
        if patient is None or patient.status != "ouvert":
            raise Rejected("XDSUnknownPatientId", "no open DMP for this INS")
        structure = token.one("Identifiant_Structure")
        if patient.authorisations.get(structure) != "autorise":
            raise Rejected("DMPAccessNotAuthorized", "the structure is not authorised")

    async def stored_query(self, parsed: soap.Parsed, token: vihf.Vihf) -> etree._Element:
        response = etree.Element(
            f"{{{xds.QUERY}}}AdhocQueryResponse",
            nsmap={"query": xds.QUERY, "rim": xds.RIM, "rs": xds.RS},
        )
        ins, patient = self.patient_of(token)
        try:
            if self.schemas:
                errors = standards.schema_errors(standards.query_schema(), parsed.payload)
                if errors:
                    raise Rejected("XDSRegistryError", f"schema: {errors[0]}")
            query = parsed.payload.find(f"{{{xds.RIM}}}AdhocQuery")
            query_id = query.get("id", "") if query is not None else ""
            params = {
                s.get("name", ""): [v.text or "" for v in s.iter(f"{{{xds.RIM}}}Value")]
                for s in (query.findall(f"{{{xds.RIM}}}Slot") if query is not None else [])
            }
            if query_id == xds.FIND_DOCUMENTS:
                wanted = (params.get("$XDSDocumentEntryPatientId") or [""])[0].strip("'")
                if wanted.split("^", 1)[0] != ins:
                    raise Rejected("XDSPatientIdDoesNotMatch", "patientId differs from the VIHF")
                self.authorised(patient, token)
                statuses = " ".join(params.get("$XDSDocumentEntryStatus", [])) or xds.APPROVED
                found = [
                    d
                    for d in self.documents.values()
                    if d.patient_ins == ins and d.status in statuses
                ]
            elif query_id == xds.GET_DOCUMENTS:
                raw = " ".join(params.get("$XDSDocumentEntryUniqueId", []))
                ids = {p.strip(" '()") for p in raw.split(",") if p.strip(" '()")}
                found = [
                    d
                    for d in self.documents.values()
                    if d.unique_id in ids and d.patient_ins == ins
                ]
                try:
                    self.authorised(patient, token)
                except Rejected:
                    if patient is None:
                        raise
                    # A structure sees the documents it fed without the patient's authorisation.
                    structure = token.one("Identifiant_Structure")
                    found = [d for d in found if d.structure_id == structure]
            else:
                raise Rejected("XDSUnknownStoredQuery", query_id[:80] or "no query id")
        except Rejected as rejection:
            response.set("status", xds.FAILURE)
            errors = etree.SubElement(response, f"{{{xds.RS}}}RegistryErrorList")
            etree.SubElement(
                errors,
                f"{{{xds.RS}}}RegistryError",
                errorCode=rejection.code,
                codeContext=rejection.context,
                severity=xds.ERROR,
            )
            return response
        self.trace(patient, token, "ITI-18")
        response.set("status", xds.SUCCESS)
        objects = etree.SubElement(response, f"{{{xds.RIM}}}RegistryObjectList")
        for doc in found:
            if self.visible(doc, token):
                objects.append(self.view(doc))
        return response

    def view(self, doc: Stored) -> etree._Element:
        eo = copy.deepcopy(doc.extrinsic)
        eo.set("status", doc.status)
        eo.set("lid", doc.logical_id)
        slot = etree.Element(f"{{{xds.RIM}}}Slot", name="repositoryUniqueId")
        etree.SubElement(
            etree.SubElement(slot, f"{{{xds.RIM}}}ValueList"), f"{{{xds.RIM}}}Value"
        ).text = REPOSITORY_ID
        eo.insert(0, slot)
        # VersionInfo comes after Name/Description in ebRIM's RegistryObjectType.
        position = 0
        for index, child in enumerate(eo):
            if etree.QName(child).localname in ("Slot", "Name", "Description"):
                position = index + 1
        version = etree.Element(f"{{{xds.RIM}}}VersionInfo", versionName=str(doc.version))
        eo.insert(position, version)
        return eo

    async def retrieve(
        self, parsed: soap.Parsed, token: vihf.Vihf
    ) -> tuple[etree._Element, list[mtom.Part]]:
        response = etree.Element(
            f"{{{xds.XDSB}}}RetrieveDocumentSetResponse", nsmap={"xdsb": xds.XDSB, "rs": xds.RS}
        )
        ins, patient = self.patient_of(token)
        parts: list[mtom.Part] = []
        try:
            self.authorised(patient, token)
            asked = [
                r.findtext(f"{{{xds.XDSB}}}DocumentUniqueId") or ""
                for r in parsed.payload.findall(f"{{{xds.XDSB}}}DocumentRequest")
            ]
            docs = []
            for unique_id in asked:
                doc = self.documents.get(unique_id)
                if doc is None or doc.patient_ins != ins or not self.visible(doc, token):
                    raise Rejected("XDSDocumentUniqueIdError", unique_id[:100])
                docs.append(doc)
        except Rejected as rejection:
            response.append(
                xds.registry_response(
                    xds.FAILURE, [xds.RegistryError(rejection.code, rejection.context)]
                )
            )
            return response, []
        self.trace(patient, token, "ITI-43")
        response.append(xds.registry_response(xds.SUCCESS))
        for index, doc in enumerate(docs):
            item = etree.SubElement(response, f"{{{xds.XDSB}}}DocumentResponse")
            etree.SubElement(item, f"{{{xds.XDSB}}}RepositoryUniqueId").text = REPOSITORY_ID
            etree.SubElement(item, f"{{{xds.XDSB}}}DocumentUniqueId").text = doc.unique_id
            etree.SubElement(item, f"{{{xds.XDSB}}}mimeType").text = doc.mime_type
            holder = etree.SubElement(item, f"{{{xds.XDSB}}}Document")
            cid = f"doc{index}@simulator"
            etree.SubElement(holder, f"{{{mtom.XOP_NS}}}Include", href=f"cid:{cid}")
            parts.append(mtom.Part(cid, doc.mime_type, doc.document))
        return response, parts

    async def update(self, parsed: soap.Parsed, token: vihf.Vihf) -> etree._Element:
        ins, patient = self.patient_of(token)
        async with self.lock:
            try:
                if self.schemas:
                    errors = standards.schema_errors(standards.lcm_schema(), parsed.payload)
                    if errors:
                        raise Rejected("XDSRegistryMetadataError", f"schema: {errors[0]}")
                objects = parsed.payload.find(f"{{{xds.RIM}}}RegistryObjectList")
                if objects is None:
                    raise Rejected("XDSRegistryMetadataError", "no RegistryObjectList")
                by_lid = {d.logical_id: d for d in self.documents.values()}
                changes = 0
                for a in objects.findall(f"{{{xds.RIM}}}Association"):
                    if a.get("associationType") == xds.UPDATE_STATUS:
                        doc = by_lid.get(a.get("targetObject", ""))
                        if doc is None or doc.patient_ins != ins:
                            raise Rejected("UnresolvedReferenceException", "unknown document")
                        if doc.structure_id != token.one("Identifiant_Structure"):
                            raise Rejected("XDSRegistryMetadataError", "not the author's structure")
                        if _slot(a, "OriginalStatus") != [doc.status]:
                            raise Rejected("XDSMetadataUpdateError", "OriginalStatus differs")
                        doc.status = (_slot(a, "NewStatus") or [doc.status])[0]
                        changes += 1
                for eo in objects.findall(f"{{{xds.RIM}}}ExtrinsicObject"):
                    doc = by_lid.get(eo.get("lid", ""))
                    if doc is None or doc.patient_ins != ins:
                        raise Rejected("UnresolvedReferenceException", "unknown logical id")
                    previous = next(
                        (
                            _slot(a, "PreviousVersion")
                            for a in objects.findall(f"{{{xds.RIM}}}Association")
                            if a.get("targetObject") == eo.get("id")
                        ),
                        [],
                    )
                    if previous != [str(doc.version)]:
                        raise Rejected("XDSMetadataVersionError", f"current version {doc.version}")
                    if _identifiers(eo).get(xds.DE_UNIQUE_ID) != doc.unique_id:
                        raise Rejected("XDSMetadataUpdateError", "uniqueId cannot change")
                    self.check_codes(eo)
                    doc.extrinsic = copy.deepcopy(eo)
                    doc.extrinsic.attrib.pop("lid", None)
                    doc.version += 1
                    changes += 1
                if not changes:
                    raise Rejected("XDSMetadataUpdateError", "nothing to update")
            except Rejected as rejection:
                return xds.registry_response(
                    xds.FAILURE, [xds.RegistryError(rejection.code, rejection.context)]
                )
            self.trace(patient, token, "ITI-57")
        return xds.registry_response(xds.SUCCESS)

    async def admin(self, parsed: soap.Parsed, token: vihf.Vihf) -> etree._Element:
        """The DMP's administrative services (as modelled: see the README)."""
        ins, patient = self.patient_of(token)
        name = etree.QName(parsed.payload).localname
        out = etree.Element(f"{{{ADMIN}}}{name}Response", nsmap={"adm": ADMIN})
        structure = token.one("Identifiant_Structure")
        if patient is None:
            out.set("exists", "false")
            return out
        self.trace(patient, token, name)
        if name == "TestExistence":
            pass
        elif name == "UpdateAuthorisation":
            action = parsed.payload.get("action", "")
            status = {"AJOUT": "autorise", "SUPPRESSION": "non_definie", "INTERDICTION": "interdit"}
            if action not in status:
                raise soap.SoapFault("Sender", f"action inconnue: {action[:40]}")
            patient.authorisations[structure] = status[action]
        elif name == "DeclareMedecinTraitant":
            if patient.authorisations.get(structure) != "autorise":
                raise soap.SoapFault("Sender", "DMP_ACCES_NON_AUTORISE")
            patient.medecin_traitant = parsed.payload.get("psIdNat") or token.name_id
        elif name == "AccessHistory":
            if patient.medecin_traitant != token.name_id:
                raise soap.SoapFault("Sender", "DMP_ACCES_REFUSE: réservé au médecin traitant DMP")
            for access in patient.accesses:
                etree.SubElement(out, f"{{{ADMIN}}}Access", **access)
        else:
            raise soap.SoapFault("Sender", f"opération inconnue: {name[:40]}")
        out.set("exists", "true")
        out.set("status", patient.status)
        out.set("authorisation", patient.authorisations.get(structure, "non_definie"))
        if patient.medecin_traitant:
            out.set("medecinTraitant", patient.medecin_traitant)
        return out


def _identifiers(node: etree._Element) -> dict[str, str]:
    return {
        e.get("identificationScheme", ""): e.get("value", "")
        for e in node.findall(f"{{{xds.RIM}}}ExternalIdentifier")
    }


def _slot(node: etree._Element, name: str) -> list[str]:
    slot = node.find(f"{{{xds.RIM}}}Slot[@name='{name}']")
    return [] if slot is None else [v.text or "" for v in slot.iter(f"{{{xds.RIM}}}Value")]


def _codes(node: etree._Element, scheme: str) -> list[str]:
    return [
        c.get("nodeRepresentation", "")
        for c in node.findall(f"{{{xds.RIM}}}Classification")
        if c.get("classificationScheme") == scheme
    ]


# -- HTTP -----------------------------------------------------------------------------------


def _soap_response(
    payload: etree._Element, action: str, relates_to: str, parts: list[mtom.Part] | None = None
) -> Response:
    body = soap.envelope(
        payload,
        action=action,
        to="http://www.w3.org/2005/08/addressing/anonymous",
        relates_to=relates_to or None,
    )
    if parts is not None:
        data, content_type = mtom.encode(body, parts, action)
        return Response(data, media_type=None, headers={"Content-Type": content_type})
    return Response(
        body, headers={"Content-Type": f'application/soap+xml; charset=UTF-8; action="{action}"'}
    )


def _fault_response(code: str, reason: str) -> Response:
    return Response(
        soap.fault(code, reason),
        status_code=500 if code == "Receiver" else 400,
        headers={"Content-Type": "application/soap+xml; charset=UTF-8"},
    )


class CutConnection(Exception):
    """Answer with a body shorter than announced, then hang up."""


def build_app(sim: Simulator) -> Any:
    async def soap_endpoint(request: Request) -> Response:
        fault = sim.take_fault()
        if fault is not None:
            if fault.mode == "delay":
                await asyncio.sleep(fault.delay)
            elif fault.mode == "http_503":
                return Response("Service Unavailable", status_code=503)
            elif fault.mode == "soap_receiver":
                return _fault_response("Receiver", "Service temporairement indisponible")
            elif fault.mode == "soap_sender":
                return _fault_response("Sender", "Requête refusée")
            elif fault.mode == "garbage":
                return Response(b"\x00\xffnot soap at all", media_type="text/plain")
            elif fault.mode == "cut":
                raise CutConnection
        if sim.think_seconds:
            await asyncio.sleep(sim.think_seconds)
        body = await request.body()
        header = request.headers.get("content-type", "")
        try:
            if header.lower().startswith("multipart/related"):
                message = mtom.decode(body, header)
            else:
                message = mtom.MtomMessage(body)
            parsed = soap.parse(message.envelope)
        except (mtom.MtomError, soap.SoapError) as error:
            return _fault_response("Sender", str(error)[:200])
        except soap.SoapFault as error:
            return _fault_response("Sender", f"a fault is not a request ({error.reason[:80]})")
        if not parsed.message_id or not parsed.to:
            return _fault_response("Sender", "WS-Addressing MessageID and To are required")
        try:
            token = sim.read_vihf(parsed)
            endpoint = request.url.path.rstrip("/").rsplit("/", 1)[-1]
            if endpoint == "repository" and parsed.action == xds.ITI41:
                if not header.lower().startswith("multipart/related"):
                    return _fault_response("Sender", "ITI-41 needs MTOM (multipart/related)")
                answer = await sim.provide_and_register(parsed, message, token)
                return _soap_response(answer, xds.ITI41_RESPONSE, parsed.message_id)
            if endpoint == "repository" and parsed.action == xds.ITI43:
                answer, parts = await sim.retrieve(parsed, token)
                return _soap_response(answer, xds.ITI43_RESPONSE, parsed.message_id, parts)
            if endpoint == "registry" and parsed.action == xds.ITI18:
                answer = await sim.stored_query(parsed, token)
                return _soap_response(answer, xds.ITI18_RESPONSE, parsed.message_id)
            if endpoint == "registry" and parsed.action == xds.ITI57:
                answer = await sim.update(parsed, token)
                return _soap_response(answer, xds.ITI57_RESPONSE, parsed.message_id)
            if endpoint == "admin":
                answer = await sim.admin(parsed, token)
                return _soap_response(answer, parsed.action + "Response", parsed.message_id)
        except soap.SoapFault as error:
            return _fault_response(error.code, error.reason)
        return _fault_response("Sender", f"no operation {parsed.action[:80]} at {endpoint}")

    async def list_documents(request: Request) -> JSONResponse:
        ins = request.path_params.get("ins")
        docs = [d for d in sim.documents.values() if ins is None or d.patient_ins == ins]
        return JSONResponse(
            {
                "documents": [
                    {
                        "unique_id": d.unique_id,
                        "patient_ins": d.patient_ins,
                        "status": d.status,
                        "version": d.version,
                        "size": len(d.document),
                        "sha256": hashlib.sha256(d.document).hexdigest(),
                        "confidentiality": _codes(d.extrinsic, xds.DE_CONFIDENTIALITY),
                        "received_at": d.received_at,
                    }
                    for d in docs
                ]
            }
        )

    async def set_fault(request: Request) -> JSONResponse:
        body: dict[str, Any] = await request.json()
        mode = str(body.get("mode"))
        if mode not in FAULT_MODES:
            return JSONResponse({"detail": f"mode is one of {FAULT_MODES}"}, status_code=422)
        sim.faults.append(Fault(mode, int(body.get("count", 1)), float(body.get("delay", 0))))
        return JSONResponse({"queued": len(sim.faults)})

    async def clear_faults(request: Request) -> JSONResponse:
        sim.faults.clear()
        return JSONResponse({"queued": 0})

    async def health(request: Request) -> JSONResponse:
        return JSONResponse(
            {"status": "live", "documents": len(sim.documents), "not_checked": sim.missing}
        )

    app = Starlette(
        routes=[
            Route("/repository", soap_endpoint, methods=["POST"]),
            Route("/registry", soap_endpoint, methods=["POST"]),
            Route("/admin", soap_endpoint, methods=["POST"]),
            Route("/documents", list_documents),
            Route("/patients/{ins}/documents", list_documents),
            Route("/faults", set_fault, methods=["POST"]),
            Route("/faults", clear_faults, methods=["DELETE"]),
            Route("/health", health),
        ]
    )
    app.state.simulator = sim
    return _cutting(app)


def _cutting(app: Starlette) -> Any:
    """ASGI wrapper: a `CutConnection` sends a truncated body (Content-Length larger than
    what follows) and stops, as a peer hanging up mid-answer."""

    async def wrapped(scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await app(scope, receive, send)
        except CutConnection:
            await send(
                {
                    "type": "http.response.start",
                    "status": 200,
                    "headers": [
                        (b"content-type", b"application/soap+xml"),
                        (b"content-length", b"4096"),
                    ],
                }
            )
            await send(
                {"type": "http.response.body", "body": b"<soap:Envelope", "more_body": False}
            )

    wrapped.state = app.state  # type: ignore[attr-defined]
    return wrapped


def new_message_id() -> str:
    return f"urn:uuid:{uuid.uuid4()}"
