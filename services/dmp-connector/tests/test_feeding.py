"""Feeding the DMP from DocumentSigned: preconditions, delivery, failures (real simulator)."""

from __future__ import annotations

import hashlib
import uuid
from datetime import UTC, datetime

from dmp_kit import (  # type: ignore[import-not-found]
    CLOSED_INS,
    INS,
    Connector,
    Simulator,
    eventually,
)

from bsante.chassis.jobs import JOBS
from bsante.contracts.events import DmpOppositionRecorded, PatientsMerged, PatientUpdated


async def test_a_signed_document_reaches_the_dmp_once(conn: Connector, dmp: Simulator) -> None:
    pid = await conn.qualified_patient()
    doc_id, body = conn.cda(pid)
    signed = conn.signed(pid, doc_id, body)
    await conn.publish(signed, str(signed.set_id))
    await eventually(lambda: conn.state_is(doc_id, "submitted"))

    stored = [d for d in dmp.documents(INS) if d["unique_id"].endswith(doc_id)]
    assert len(stored) == 1
    assert stored[0]["sha256"] == hashlib.sha256(body).hexdigest()
    status = await conn.submission(doc_id)
    assert status["unique_id"] == f"1.2.250.1.999.1.1^{doc_id}"
    submitted = [e for e in await conn.events() if e.event_type == "DmpDocumentSubmitted"]
    assert [e.payload["document_id"] for e in submitted] == [doc_id]
    assert submitted[0].payload["duplicate"] is False

    # The same document signed event again (another event id): still one submission.
    again = await conn.publish(signed, str(signed.set_id))
    await eventually(lambda: conn.handled(again))
    assert len([d for d in dmp.documents(INS) if d["unique_id"].endswith(doc_id)]) == 1
    assert await conn.service.store.count(JOBS, {}) == 1


async def test_a_document_without_dmp_feeding_requested_is_ignored(conn: Connector) -> None:
    pid = await conn.qualified_patient()
    doc_id, body = conn.cda(pid)
    envelope = await conn.publish(conn.signed(pid, doc_id, body, requested=False), doc_id)
    await eventually(lambda: conn.handled(envelope))
    assert await conn.service.store.get("submissions", doc_id) is None


async def test_a_document_waits_for_a_qualified_ins_then_goes(
    conn: Connector, dmp: Simulator
) -> None:
    pid = conn.patients.add(status="validee")
    doc_id, body = conn.cda(pid)
    await conn.publish(conn.signed(pid, doc_id, body), doc_id)
    await eventually(lambda: conn.state_is(doc_id, "waiting_qualified_ins"))
    assert (await conn.submission(doc_id))["reason"] == "waiting for a qualified INS"
    assert await conn.service.store.count(JOBS, {}) == 0

    await conn.qualify(pid)
    await eventually(lambda: conn.state_is(doc_id, "submitted"))
    assert any(d["unique_id"].endswith(doc_id) for d in dmp.documents(INS))


async def test_the_patients_opposition_blocks_feeding_until_lifted(
    conn: Connector, dmp: Simulator
) -> None:
    pid = await conn.qualified_patient()
    now = datetime.now(UTC)
    await conn.publish(
        DmpOppositionRecorded(
            patient_id=uuid.UUID(pid), opposed=True, recorded_by="u", recorded_at=now
        ),
        pid,
    )
    doc_id, body = conn.cda(pid)
    await conn.publish(conn.signed(pid, doc_id, body), doc_id)
    await eventually(lambda: conn.state_is(doc_id, "blocked_patient_opposition"))
    assert not any(d["unique_id"].endswith(doc_id) for d in dmp.documents())

    await conn.publish(
        DmpOppositionRecorded(
            patient_id=uuid.UUID(pid), opposed=False, recorded_by="u", recorded_at=now
        ),
        pid,
    )
    await eventually(lambda: conn.state_is(doc_id, "submitted"))


async def test_an_opposition_recorded_while_queued_blocks_at_the_call(
    conn: Connector, dmp: Simulator
) -> None:
    # The patient service says "opposed" before the connector heard of it.
    pid = await conn.qualified_patient(opposed=True)
    doc_id, body = conn.cda(pid)
    await conn.publish(conn.signed(pid, doc_id, body), doc_id)
    await eventually(lambda: conn.state_is(doc_id, "blocked_patient_opposition"))
    assert not any(d["unique_id"].endswith(doc_id) for d in dmp.documents())
    assert not [e for e in await conn.events() if e.event_type == "DmpSubmissionFailed"]


async def test_a_merged_patients_pending_submission_follows_the_kept_record(
    conn: Connector, dmp: Simulator
) -> None:
    merged = conn.patients.add(status="provisoire")
    kept = await conn.qualified_patient()
    doc_id, body = conn.cda(merged)
    await conn.publish(conn.signed(merged, doc_id, body), doc_id)
    await eventually(lambda: conn.state_is(doc_id, "waiting_qualified_ins"))

    await conn.publish(
        PatientsMerged(
            kept_patient_id=uuid.UUID(kept), merged_patient_id=uuid.UUID(merged), merged_by="u"
        ),
        kept,
    )
    await eventually(lambda: conn.state_is(doc_id, "submitted"))
    assert (await conn.submission(doc_id))["patient_id"] == kept


async def test_a_patient_losing_its_qualified_status_keeps_documents_waiting(
    conn: Connector,
) -> None:
    pid = await conn.qualified_patient()
    envelope = await conn.publish(
        PatientUpdated(
            patient_id=uuid.UUID(pid),
            identity_status="validee",
            changes=["identity_status"],
            updated_by="u",
        ),
        pid,
    )
    await eventually(lambda: conn.handled(envelope))
    doc_id, body = conn.cda(pid)
    await conn.publish(conn.signed(pid, doc_id, body), doc_id)
    await eventually(lambda: conn.state_is(doc_id, "waiting_qualified_ins"))


async def test_a_hash_mismatch_fails_at_once(conn: Connector, dmp: Simulator) -> None:
    pid = await conn.qualified_patient()
    doc_id, body = conn.cda(pid)
    await conn.publish(conn.signed(pid, doc_id, body, sha256="a" * 64), doc_id)
    await eventually(lambda: conn.state_is(doc_id, "failed"))
    status = await conn.submission(doc_id)
    assert status["error_code"] == "HASH_MISMATCH"
    job = (await conn.service.store.find(JOBS))[0]
    assert job.data["attempts"] == 1, "not retried"
    failed = [e for e in await conn.events() if e.event_type == "DmpSubmissionFailed"]
    assert [e.payload["error_code"] for e in failed] == ["HASH_MISMATCH"]
    assert not any(d["unique_id"].endswith(doc_id) for d in dmp.documents())


async def test_a_malformed_cda_fails_with_its_reason(conn: Connector) -> None:
    pid = await conn.qualified_patient()
    doc_id = str(uuid.uuid4())
    body = b"<ClinicalDocument xmlns='urn:hl7-org:v3'><id root='1.2'/>"
    conn.documents.cda[doc_id] = body
    await conn.publish(conn.signed(pid, doc_id, body), doc_id)
    await eventually(lambda: conn.state_is(doc_id, "failed"))
    status = await conn.submission(doc_id)
    assert status["error_code"] == "MALFORMED_CDA" and "not XML" in status["reason"]


async def test_a_closed_dmp_is_refused_before_the_submission(
    conn: Connector, dmp: Simulator
) -> None:
    pid = await conn.qualified_patient(ins=CLOSED_INS)
    doc_id, body = conn.cda(pid, ins=CLOSED_INS)
    await conn.publish(conn.signed(pid, doc_id, body), doc_id)
    await eventually(lambda: conn.state_is(doc_id, "failed"))
    assert (await conn.submission(doc_id))["error_code"] == "DMP_CLOSED"


async def test_a_business_rejection_is_not_retried_and_names_the_xds_code(
    conn: Connector, dmp: Simulator
) -> None:
    pid = await conn.qualified_patient()
    doc_id, body = conn.cda(pid)
    signed = conn.signed(pid, doc_id, body).model_copy(update={"class_code": "99"})
    await conn.publish(signed, doc_id)
    await eventually(lambda: conn.state_is(doc_id, "failed"))
    status = await conn.submission(doc_id)
    assert status["error_code"] == "XDSRegistryMetadataError"
    assert "classCode 99" in status["reason"]
    job = (await conn.service.store.find(JOBS))[0]
    assert job.data["attempts"] == 1
    failed = [e for e in await conn.events() if e.event_type == "DmpSubmissionFailed"]
    assert failed[0].payload["error_code"] == "XDSRegistryMetadataError"
