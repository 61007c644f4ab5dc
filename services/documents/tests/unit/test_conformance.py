"""CI-SIS conformance: the kit's example and our N1 documents pass; broken ones name the asserts.

Needs the ANS kit (skipped with the reason when absent). structurationMinimale is compiled once
per session (the `validator` fixture); the kit has no schematron of its own for the N1 model
(`CI-SIS_*.sch` are the structured models), so structurationMinimale is what N1 is checked with.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

import pytest
from lxml import etree

from bsante.documents import cda, conformance, samples
from bsante.documents.conformance import (
    KIT_ENV,
    CisisKit,
    ConformanceValidator,
    FailedAssert,
    KitNotFound,
)

NS = {"h": cda.HL7}
EXAMPLE = "DOC_NON_STRUCTURE_CDA-R2-N1.xml"


def _document(version: int = 1) -> etree._Element:
    return cda.build_cda_n1(
        samples.metadata(version=version), samples.patient(), samples.author(), b"%PDF-1.7\n"
    )


def _texts(failed: list[FailedAssert]) -> str:
    return "\n".join(f.text for f in failed)


def test_the_kit_example_passes(kit: CisisKit, validator: ConformanceValidator) -> None:
    example = kit.example(EXAMPLE).read_bytes()
    assert validator.validate_xsd(example) == []
    assert validator.validate_schematron(example) == []


@pytest.mark.parametrize("version", [1, 2])
def test_our_n1_documents_pass(validator: ConformanceValidator, version: int) -> None:
    document = cda.to_bytes(_document(version))
    report = validator.validate(document)
    assert report.xsd_errors == []
    assert report.failed_asserts == []  # warnings included
    assert report.valid


async def test_validation_runs_in_a_worker_thread(validator: ConformanceValidator) -> None:
    # The service validates off the event loop; Saxon accepts calls from another thread.
    document = cda.to_bytes(_document())
    reports = await asyncio.gather(
        asyncio.to_thread(validator.validate, document),
        asyncio.to_thread(validator.validate, document),
    )
    assert [r.valid for r in reports] == [True, True]


def test_a_document_without_ins_passes(validator: ConformanceValidator) -> None:
    document = cda.build_cda_n1(
        samples.metadata(), samples.patient(with_ins=False), samples.author(), b"%PDF"
    )
    assert validator.validate(document).valid


def test_a_missing_author_fails_with_the_named_assert(validator: ConformanceValidator) -> None:
    document = _document()
    document.remove(document.find("h:author", NS))
    failed = validator.validate_schematron(document)
    assert any(
        "element hl7:author[not(@nullFlavor)][hl7:assignedAuthor] is mandatory" in f.text
        and f.is_error
        for f in failed
    ), _texts(failed)
    assert validator.validate_xsd(document) != []  # author is required by CDA itself


def test_a_wrong_document_type_fails_on_the_value_set(validator: ConformanceValidator) -> None:
    document = _document()
    document.find("h:code", NS).set("code", "99999-9")
    failed = validator.validate_schematron(document)
    codes = [f for f in failed if "JDV_J07_XdsTypeCode_CISIS" in f.text]
    assert codes, _texts(failed)
    assert codes[0].location.endswith("*[local-name()='code' and namespace-uri()='urn:hl7-org:v3']")
    assert validator.validate_xsd(document) == []  # only the schematron knows the value set


def test_extra_template_ids_break_the_n1_rule(validator: ConformanceValidator) -> None:
    document = _document()
    document.insert(5, etree.Element(f"{{{cda.HL7}}}templateId", root="1.2.250.1.213.1.1.1.5"))
    failed = validator.validate_schematron(document)
    assert any("seuls les trois templateId" in f.text for f in failed), _texts(failed)


def test_schema_errors_carry_their_line(validator: ConformanceValidator) -> None:
    document = _document()
    document.insert(0, etree.Element(f"{{{cda.HL7}}}title"))  # before realmCode
    errors = validator.validate_xsd(cda.to_bytes(document))
    assert errors and errors[0].startswith("line ")


def test_the_generated_stylesheet_is_reused_from_disk(
    validator: ConformanceValidator, kit: CisisKit
) -> None:
    path = validator.compiled_xslt_path(kit.structuration_minimale)
    before = path.stat().st_mtime_ns
    other = ConformanceValidator(kit, validator.cache_dir)
    assert other.compiled_xslt_path(kit.structuration_minimale) == path
    assert path.stat().st_mtime_ns == before
    # Kept in a mirror of the kit's folders, its xml:base pointing at the .sch for doc().
    assert path.parent.name == "structurationMinimale"
    root = etree.parse(str(path)).getroot()
    assert root.get("version") == "2.0"
    assert root.get("{http://www.w3.org/XML/1998/namespace}base") == (
        kit.structuration_minimale.as_uri()
    )


def test_the_kit_location_comes_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kit: CisisKit
) -> None:
    monkeypatch.setenv(KIT_ENV, str(tmp_path))
    with pytest.raises(KitNotFound, match=KIT_ENV):
        CisisKit.locate()
    monkeypatch.setenv(KIT_ENV, str(kit.root))
    assert CisisKit.locate() == kit


def test_without_the_variable_the_kit_is_found_walking_up(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(KIT_ENV, raising=False)
    (tmp_path / "shared" / "standards" / "ci-sis" / "schematrons").mkdir(parents=True)
    repo = tmp_path / "repo" / "services" / "documents"
    repo.mkdir(parents=True)
    assert CisisKit.locate(repo).root == tmp_path / "shared" / "standards" / "ci-sis"
    with pytest.raises(KitNotFound):
        CisisKit.locate(Path("/"))


def test_a_model_schematron_checks_its_own_model(
    kit: CisisKit, validator: ConformanceValidator
) -> None:
    # The recipe holds for the model schematrons too (their value sets are found through the
    # `../jeuxDeValeurs/` path variable): the DLU example passes, the FLUDT one does not.
    dlu = kit.schematron("CI-SIS_DLU-EHPAD-DLU_2022.01.sch")
    report = validator.validate(kit.example("DLU-EHPAD-DLU_2022.01.xml").read_bytes(), (dlu,))
    assert report.valid, report
    fludt = validator.validate_schematron(
        kit.example("DLU-EHPAD-FLUDT_2022.01.xml").read_bytes(), dlu
    )
    assert any("1.2.250.1.213.1.1.1.22" in f.text for f in fludt), _texts(fludt)


@pytest.mark.parametrize("version", [1, 2])
def test_n1_carries_every_header_element_of_the_issue_and_passes(
    validator: ConformanceValidator, version: int
) -> None:
    """Issue 10 point 6, item by item, on one document that the kit then accepts."""
    document = _document(version)

    def one(path: str) -> etree._Element:
        found = document.xpath(path, namespaces=NS)
        assert len(found) == 1, path
        return found[0]

    assert one("h:realmCode").get("code") == "FR"
    assert document.xpath("h:templateId/@root", namespaces=NS) == list(cda.N1_TEMPLATE_IDS)
    # INS traits (an INS OID is present): names with qualifier BR, birth time, COG, sex.
    role = one("h:recordTarget/h:patientRole")
    assert role.find("h:id", NS).get("root") in cda.INS_OIDS
    name = role.find("h:patient/h:name", NS)
    assert name.find("h:family[@qualifier='BR']", NS).text == "PAT-TROIS"
    assert name.find("h:given[@qualifier='BR']", NS).text == "DOMINIQUE"
    assert role.find("h:patient/h:birthTime", NS).get("value") == "19790328"
    assert role.find("h:patient/h:birthplace/h:place/h:addr/h:county", NS).text == "51215"
    assert role.find("h:patient/h:administrativeGenderCode", NS).get("code") == "F"
    # Author as PSIdNat with its TRE_G15 code, and its organisation's StructIdNat.
    author = one("h:author/h:assignedAuthor")
    assert author.find("h:id", NS).get("root") == cda.OID_PS_ID_NAT
    assert author.find("h:code", NS).get("codeSystem") == cda.OID_AUTHOR_SPECIALTY
    assert author.find("h:code", NS).get("code").startswith("G15_")
    assert author.find("h:representedOrganization/h:id", NS).get("root") == cda.OID_STRUCT_ID_NAT
    one("h:custodian/h:assignedCustodian/h:representedCustodianOrganization/h:id")
    assert one("h:legalAuthenticator/h:signatureCode").get("code") == "S"
    one("h:documentationOf/h:serviceEvent/h:performer[@typeCode='PRF']/h:assignedEntity/h:id")
    one("h:componentOf/h:encompassingEncounter/h:effectiveTime/h:low")
    assert one("h:confidentialityCode").get("codeSystem") == cda.OID_CONFIDENTIALITY
    assert one("h:setId").get("extension") == "set-0001"
    assert one("h:versionNumber").get("value") == str(version)
    related = document.xpath("h:relatedDocument", namespaces=NS)
    if version == 1:
        assert related == []
    else:
        assert one("h:relatedDocument").get("typeCode") == "RPLC"
        assert one("h:relatedDocument/h:parentDocument/h:id").get("extension") == "doc-0001"

    report = validator.validate(cda.to_bytes(document))
    assert (report.xsd_errors, report.failed_asserts) == ([], [])


def test_validate_for_signing_uses_the_shared_validator(
    validator: ConformanceValidator, kit: CisisKit
) -> None:
    assert conformance.shared_validator() is validator
    good = conformance.validate_for_signing(cda.to_bytes(_document()), dlu=False)
    assert good is not None and good.valid
    broken = _document()
    broken.remove(broken.find("h:author", NS))
    report = conformance.validate_for_signing(cda.to_bytes(broken), dlu=False)
    assert report is not None and not report.valid
    assert report.failed_asserts and report.xsd_errors
    # dlu=True adds the DLU schematron: an N1 document is not a DLU.
    as_dlu = conformance.validate_for_signing(cda.to_bytes(_document()), dlu=True)
    assert as_dlu is not None
    assert any("1.2.250.1.213.1.1.1.22" in f.text for f in as_dlu.failed_asserts)


def test_validate_for_signing_without_a_kit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def nowhere(cls: type[CisisKit], start: Path | None = None) -> CisisKit:
        raise KitNotFound("no kit on this machine")

    monkeypatch.delenv(KIT_ENV, raising=False)
    monkeypatch.setattr(CisisKit, "locate", classmethod(nowhere))
    assert conformance.validate_for_signing(b"<x/>", dlu=False) is None
    assert conformance.prepare_for_signing() is False
    # A kit named by the variable but not there is a configuration error, not "no kit".
    monkeypatch.undo()
    monkeypatch.setenv(KIT_ENV, str(tmp_path))
    with pytest.raises(KitNotFound, match=KIT_ENV):
        conformance.validate_for_signing(b"<x/>", dlu=False)


def test_the_service_checks_in_a_worker_process_that_a_dead_one_replaces(
    kit: CisisKit, validator: ConformanceValidator
) -> None:
    """The service's check (IsolatedConformance): the verdicts of the in-process check, from
    another process; a worker killed (SIGKILL, out of memory) is replaced at the next call."""
    import os
    import signal

    from bsante.documents.checks import (
        ConformanceWorker,
        ConformanceWorkerError,
        IsolatedConformance,
        KitConformance,
    )

    # The process-wide worker the services use (its schematrons compile once per session).
    isolated = IsolatedConformance(str(kit.root))
    assert isolated.worker.call(os.getpid) != os.getpid()
    good = cda.to_bytes(_document())
    bad = good.replace(b"<title>", b"<titre>", 1).replace(b"</title>", b"</titre>", 1)
    assert bad != good
    assert isolated.check(good) == []
    refused = isolated.check(bad)
    assert refused and refused == KitConformance(validator).check(bad)
    with pytest.raises(ConformanceWorkerError, match="XMLSyntaxError"):
        isolated.check(b"<ClinicalDocument")
    # A worker of its own to kill: the shared one keeps what it compiled.
    worker = ConformanceWorker(str(kit.root))
    try:
        pid = worker.call(os.getpid)
        os.kill(pid, signal.SIGKILL)
        replaced = worker.call(os.getpid)
        assert replaced not in (pid, os.getpid())
    finally:
        worker.close()


async def test_a_worker_terminated_mid_call_ends_at_once_and_the_call_fails(
    kit: CisisKit,
) -> None:
    """At the process's exit (`at_process_exit`): a compilation in progress is not waited for."""
    from bsante.documents.checks import ConformanceWorker, ConformanceWorkerError

    worker = ConformanceWorker(str(kit.root))
    # An event the worker's process can set (the pool's processes are spawned).
    manager = multiprocessing.get_context("spawn").Manager()
    started = manager.Event()
    try:
        pid = await worker.call_async(os.getpid)
        # A call that never ends by itself and says, in the worker, that it has begun.
        call = asyncio.ensure_future(
            worker.call_async(
                exec,
                "import threading; started.set(); threading.Event().wait()",
                {"started": started},
            )
        )
        assert await asyncio.to_thread(started.wait, 30), "the call never began in the worker"
        worker.terminate()
        # Broken pool if it was running, cancelled if it was still queued: never waited for.
        async with asyncio.timeout(30):
            with pytest.raises((ConformanceWorkerError, BrokenProcessPool, asyncio.CancelledError)):
                await call
        with pytest.raises(ConformanceWorkerError, match="stopped"):
            await worker.call_async(os.getpid)
        with pytest.raises(ProcessLookupError):  # terminate() returned: the process is gone
            os.kill(pid, 0)
    finally:
        worker.close()
        manager.shutdown()
