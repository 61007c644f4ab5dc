"""What goes on the wire: MTOM framing, the ITI-41 request against the XDS.b/ebRS schemas and
the CI-SIS value sets, the VIHF against SAML 2.0 and verified by xmlsec1 on the bytes sent; and
what the simulator refuses."""

from __future__ import annotations

import copy
import hashlib
import shutil
import subprocess
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest
from dmp_kit import (  # type: ignore[import-not-found]
    INS,
    INS_OID,
    STRUCT_ID_NAT,
    Connector,
    Recording,
    Simulator,
    connector,
    eventually,
)
from lxml import etree

from bsante.dmp_connector import cda_facts, mtom, pki, soap, standards, vihf, xds
from bsante.dmp_connector.dmp_client import DmpClient, DmpRefused, Endpoints
from bsante.documents import cda, samples

ACTOR = vihf.Actor(
    ps_id_nat="810001234567",
    name="Claire MARTIN",
    profession="10",
    profession_display="Médecin",
    structure_id="demo-ehpad",
    sector="SA07",
    specialty="SM54",
)
SOFTWARE = vihf.Software("BSANTE", "Bureautique Santé", "0.1.0", "TEST")


def test_mtom_carries_any_bytes_intact_and_refuses_a_cut_message() -> None:
    binary = bytes(range(256)) * 8 + b"\r\n--MIMEBoundary_x\r\n\r\n" + b"\n\r\x00"
    body, header = mtom.encode(
        b"<e/>", [mtom.Part("doc@x", "application/octet-stream", binary)], xds.ITI41
    )
    decoded = mtom.decode(body, header)
    assert decoded.envelope == b"<e/>"
    assert decoded.attachments["doc@x"].body == binary
    assert decoded.action == xds.ITI41
    with pytest.raises(mtom.MtomError, match="cut"):
        mtom.decode(body[: len(body) // 2], header)
    with pytest.raises(mtom.MtomError):
        mtom.decode(b"garbage", "text/plain")


async def test_the_iti41_request_sent_is_valid_and_its_vihf_verifies_with_xmlsec1(
    tmp_path: Path, dmp: Simulator, demo_pki: pki.Pki, ihe: Path
) -> None:
    recording = Recording()
    async with connector(tmp_path, dmp.url, demo_pki, dmp_transport=recording) as conn:
        pid = await conn.qualified_patient()
        doc_id, body = conn.cda(pid)
        await conn.publish(conn.signed(pid, doc_id, body, visibility=["INVISIBLE_PATIENT"]), doc_id)
        await eventually(lambda: conn.state_is(doc_id, "submitted"))
    sent = [r for r in recording.sent if r.url.path.endswith("/repository")]
    assert len(sent) == 1
    request = sent[0]
    assert request.headers["content-type"].startswith("multipart/related")
    message = mtom.decode(request.content, request.headers["content-type"])
    parsed = soap.parse(message.envelope)
    assert parsed.action == xds.ITI41 and parsed.to == f"{dmp.url}/repository"
    assert parsed.message_id.startswith("urn:uuid:")

    # The body, XOP-resolved, against IHEXDSB.xsd (ebRS 3.0 imported).
    payload = copy.deepcopy(parsed.payload)
    assert mtom.resolve_xop(payload, message.attachments) == []
    assert standards.schema_errors(standards.xds_schema(), payload) == []
    [part] = message.attachments.values()
    assert part.body == body, "the document travels as a binary part, unchanged"

    # The metadata of the CI-SIS sharing rules.
    rim = f"{{{xds.RIM}}}"
    eo = parsed.payload.find(f".//{rim}ExtrinsicObject")
    slots = {
        s.get("name"): [v.text for v in s.iter(f"{rim}Value")] for s in eo.findall(f"{rim}Slot")
    }
    assert slots["languageCode"] == ["fr-FR"]
    assert slots["hash"] == [hashlib.sha1(body).hexdigest()] and slots["size"] == [str(len(body))]
    for name in (
        "creationTime",
        "legalAuthenticator",
        "serviceStartTime",
        "serviceStopTime",
        "sourcePatientId",
    ):
        assert slots[name] and slots[name][0], name
    assert [v.split("|")[0] for v in slots["sourcePatientInfo"]] == [
        "PID-5",
        "PID-7",
        "PID-8",
        "PID-11",
    ]
    ids = {
        e.get("identificationScheme"): e.get("value")
        for e in eo.findall(f"{rim}ExternalIdentifier")
    }
    assert ids[xds.DE_UNIQUE_ID] == f"1.2.250.1.999.1.1^{doc_id}"
    assert ids[xds.DE_PATIENT_ID] == f"{INS}^^^&{INS_OID}&ISO^NH"
    codes = {
        (
            c.get("classificationScheme"),
            c.get("nodeRepresentation"),
            c.find(f"{rim}Slot/{rim}ValueList/{rim}Value").text
            if c.find(f"{rim}Slot") is not None
            else "",
        )
        for c in eo.findall(f"{rim}Classification")
    }
    sets = {
        xds.DE_TYPE: "JDV_J07",
        xds.DE_CONFIDENTIALITY: "JDV_J08",
        xds.DE_FACILITY: "JDV_J02",
        xds.DE_PRACTICE: "JDV_J04",
    }
    for scheme, code, system in codes:
        if scheme in sets:
            assert (code, system) in standards.value_set(sets[scheme]), (code, sets[scheme])
    schemes = {scheme for scheme, _, _ in codes}
    assert {
        xds.DE_CLASS,
        xds.DE_TYPE,
        xds.DE_FORMAT,
        xds.DE_FACILITY,
        xds.DE_PRACTICE,
        xds.DE_CONFIDENTIALITY,
        xds.DE_AUTHOR,
    } <= schemes
    assert (xds.DE_CONFIDENTIALITY, "INVISIBLE_PATIENT", xds.OID_VISIBILITY) in codes
    package = parsed.payload.find(f".//{rim}RegistryPackage")
    ss_ids = {e.get("identificationScheme") for e in package.findall(f"{rim}ExternalIdentifier")}
    assert {xds.SS_PATIENT_ID, xds.SS_SOURCE_ID, xds.SS_UNIQUE_ID} <= ss_ids
    association = parsed.payload.find(f".//{rim}Association")
    assert association.get("associationType") == xds.HAS_MEMBER

    # The VIHF: SAML 2.0 schema, the ANS attributes, and xmlsec1 on the bytes actually sent.
    assertion = parsed.header.find(f"{{{soap.WSSE}}}Security/{{{vihf.SAML}}}Assertion")
    assert standards.schema_errors(standards.saml_schema(), assertion) == []
    token = vihf.read(assertion, trust_file=demo_pki.ca_cert)
    assert all(token.attributes.get(name) for name in vihf.MANDATORY)
    assert token.name_id == "810001234567"
    assert token.one(vihf.RESOURCE_ID) == f"{INS}^^^&{INS_OID}&ISO^NH"
    assert token.roles == ["10", "SM54"]
    # The national id of the author's organisation in the CDA, never the tenant id.
    assert token.one("Identifiant_Structure") == STRUCT_ID_NAT
    xmlsec1 = shutil.which("xmlsec1")
    if xmlsec1 is None:
        pytest.skip(
            "xmlsec1 not installed (make debian-packages): signature checked by signxml only"
        )
    envelope = tmp_path / "sent.xml"
    envelope.write_bytes(message.envelope)
    verify = [
        xmlsec1,
        "--verify",
        "--trusted-pem",
        str(demo_pki.ca_cert),
        "--id-attr:ID",
        "urn:oasis:names:tc:SAML:2.0:assertion:Assertion",
        str(envelope),
    ]
    checked = subprocess.run(verify, capture_output=True, timeout=30)
    assert checked.returncode == 0, checked.stderr.decode()
    envelope.write_bytes(message.envelope.replace(b"810001234567", b"810009999999"))
    tampered = subprocess.run(verify, capture_output=True, timeout=30)
    assert tampered.returncode != 0, "a changed NameID breaks the signature"


# -- what the simulator refuses ---------------------------------------------------------------


def _client(sim: Simulator, key_pki: pki.Pki) -> DmpClient:
    return DmpClient(
        Endpoints(f"{sim.url}/repository", f"{sim.url}/registry", f"{sim.url}/admin"),
        vihf.SigningKey.from_files(key_pki.key, key_pki.cert),
        SOFTWARE,
        timeout=10,
    )


def _request(
    *,
    ins: str = INS,
    sha1: str | None = None,
    practice: str = "AMBULATOIRE",
    body: bytes | None = None,
) -> tuple[etree._Element, mtom.Part]:
    document_id = str(uuid.uuid4())
    patient = samples.patient().model_copy(update={"ins": ins})
    body = body or cda.to_bytes(
        cda.build_cda_n1(
            samples.metadata(document_id=document_id), patient, samples.author(), b"%PDF"
        )
    )
    facts = cda_facts.extract(body)
    entry = xds.Entry(
        facts=facts,
        entry_uuid=f"urn:uuid:{uuid.uuid4()}",
        patient_id=xds.patient_cx(ins, INS_OID),
        class_code=xds.CLASS_BY_TYPE["11488-4"],
        format_code=xds.FORMAT_N1,
        facility_type=cda_facts.Coded("SA07", "1.2.250.1.71.4.2.4", "Cabinet individuel"),
        practice_setting=cda_facts.Coded(practice, "1.2.250.1.213.1.1.4.9", practice),
        visibility=[],
        sha1=sha1 or hashlib.sha1(body).hexdigest(),
        size=len(body),
    )
    ss = xds.SubmissionSet(
        unique_id=xds.oid_of(uuid.uuid4()),
        source_id="1.2.250.1.999.1",
        submitted_at=datetime.now(UTC),
        content_type=entry.facility_type,
    )
    return xds.provide_and_register(ss, entry), mtom.Part(entry.content_id, "text/xml", body)


async def test_the_simulator_refuses_bad_metadata_with_the_xds_codes(
    dmp: Simulator, demo_pki: pki.Pki
) -> None:
    client = _client(dmp, demo_pki)
    try:

        async def code(request: etree._Element, part: mtom.Part, ins: str = INS) -> str:
            response = await client.provide_and_register(ACTOR, ins, INS_OID, request, part)
            return "Success" if response.success else response.errors[0].code

        request, part = _request()
        assert await code(request, part) == "Success"
        assert await code(request, part) == "XDSDuplicateUniqueIdInRegistry"
        assert await code(*_request(sha1="0" * 40)) == "XDSNonIdenticalHash"
        unknown = "299999999999999"
        assert await code(*_request(ins=unknown), ins=unknown) == "XDSUnknownPatientId"
        assert await code(*_request(practice="NOT-A-CODE")) == "XDSRegistryMetadataError"
        # The VIHF names one patient, the metadata another.
        request, part = _request(ins="162018885045327")
        assert await code(request, part) == "XDSPatientIdDoesNotMatch"
        # A CDA that fails CDA_extended.xsd.
        document_id = str(uuid.uuid4())
        good = cda.to_bytes(
            cda.build_cda_n1(
                samples.metadata(document_id=document_id),
                samples.patient(),
                samples.author(),
                b"%PDF",
            )
        )
        broken = good.replace(b"<realmCode", b"<unknownElement/><realmCode", 1)
        request, part = _request(body=broken)
        response = await client.provide_and_register(ACTOR, INS, INS_OID, request, part)
        assert response.errors[0].code == "XDSRegistryMetadataError"
        assert "CDA" in response.errors[0].context
    finally:
        await client.close()


async def test_the_simulator_refuses_an_untrusted_incomplete_or_tampered_vihf(
    dmp: Simulator, demo_pki: pki.Pki, tmp_path: Path
) -> None:
    stranger = _client(dmp, pki.generate(tmp_path / "other"))
    with pytest.raises(DmpRefused, match="VIHF invalide"):
        await stranger.provide_and_register(ACTOR, INS, INS_OID, *_request())
    await stranger.close()

    client = _client(dmp, demo_pki)
    key = client.key

    def without_lps_id(actor: vihf.Actor, ins: str, oid: str) -> bytes:
        assertion = vihf.build(actor, SOFTWARE, ins=ins, ins_oid=oid, issuer=key.issuer)
        for attribute in assertion.iter(f"{{{vihf.SAML}}}Attribute"):
            if attribute.get("Name") == "LPS_ID":
                attribute.getparent().remove(attribute)
        return vihf.sign(assertion, key)

    client._vihf = without_lps_id  # type: ignore[method-assign]
    with pytest.raises(DmpRefused, match="VIHF incomplet: LPS_ID"):
        await client.provide_and_register(ACTOR, INS, INS_OID, *_request())

    def tampered(actor: vihf.Actor, ins: str, oid: str) -> bytes:
        signed = vihf.signed_assertion(actor, SOFTWARE, key, ins=ins, ins_oid=oid)
        return signed.replace(b"Claire MARTIN", b"Claude MARTIN")

    client._vihf = tampered  # type: ignore[method-assign]
    with pytest.raises(DmpRefused, match="VIHF invalide"):
        await client.provide_and_register(ACTOR, INS, INS_OID, *_request())
    await client.close()

    # ITI-41 without MTOM.
    client = _client(dmp, demo_pki)
    request, _ = _request()
    with pytest.raises(DmpRefused, match="MTOM"):
        await client.call(
            client.endpoints.repository, xds.ITI41, request, ACTOR, ins=INS, ins_oid=INS_OID
        )
    await client.close()
    assert isinstance(dmp, Simulator)


async def test_a_vihf_signed_then_moved_keeps_its_signature(demo_pki: pki.Pki) -> None:
    key = vihf.SigningKey.from_files(demo_pki.key, demo_pki.cert)
    signed = vihf.signed_assertion(ACTOR, SOFTWARE, key, ins=INS, ins_oid=INS_OID)
    envelope = soap.envelope(
        etree.Element("{urn:x}Payload", nsmap={"ns0": "urn:x"}),
        action="urn:a",
        to="http://x",
        assertion=signed,
    )
    assertion = soap.parse(envelope).header.find(f".//{{{vihf.SAML}}}Assertion")
    assert vihf.read(assertion, trust_file=demo_pki.ca_cert).name_id == ACTOR.ps_id_nat
    assert isinstance(Connector, type)
