"""Delivery guarantees: retries with backoff on what a retry can fix, a failure state with its
reason otherwise, and "already registered" counted as success only for our very document."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from dmp_kit import INS, Connector, Simulator, connector, eventually  # type: ignore[import-not-found]

from bsante.chassis.jobs import JOBS
from bsante.contracts import topics
from bsante.dmp_connector import pki


def ours(dmp: Simulator, doc_id: str) -> list[dict[str, object]]:
    return [d for d in dmp.documents(INS) if str(d["unique_id"]).endswith(doc_id)]


@pytest.mark.parametrize("mode", ["http_503", "garbage", "cut", "soap_receiver"])
async def test_a_dmp_that_fails_for_a_while_gets_the_document_once(
    conn: Connector, dmp: Simulator, mode: str
) -> None:
    pid = await conn.qualified_patient()
    doc_id, body = conn.cda(pid)
    dmp.fault(mode, count=2)
    await conn.publish(conn.signed(pid, doc_id, body), doc_id)
    await eventually(lambda: conn.state_is(doc_id, "submitted"))
    job = (await conn.service.store.find(JOBS))[0]
    assert job.data["attempts"] == 3, "two failed attempts, then the call that passed"
    assert len(ours(dmp, doc_id)) == 1


async def test_a_dmp_down_for_good_ends_in_a_failure_with_its_reason(
    conn: Connector, dmp: Simulator
) -> None:
    pid = await conn.qualified_patient()
    doc_id, body = conn.cda(pid)
    dmp.fault("http_503", count=50)
    await conn.publish(conn.signed(pid, doc_id, body), doc_id)
    await eventually(lambda: conn.state_is(doc_id, "failed"))
    status = await conn.submission(doc_id)
    assert status["error_code"] == "DMP_UNAVAILABLE"
    assert "attempts_exhausted" in status["reason"] and "503" in status["reason"]
    operations = [e.event_type for e in await conn.events(topics.OPERATIONS)]
    assert "JobFailed" in operations
    failed = [e for e in await conn.events() if e.event_type == "DmpSubmissionFailed"]
    assert failed[0].payload["error_code"] == "DMP_UNAVAILABLE"


async def test_a_timeout_is_retried(tmp_path: Path, dmp: Simulator, demo_pki: pki.Pki) -> None:
    async with connector(tmp_path, dmp.url, demo_pki, dmp_timeout_seconds=0.5) as conn:
        pid = await conn.qualified_patient()
        doc_id, body = conn.cda(pid)
        dmp.fault("delay", count=1, delay=1.5)
        await conn.publish(conn.signed(pid, doc_id, body), doc_id)
        await eventually(lambda: conn.state_is(doc_id, "submitted"))
        job = (await conn.service.store.find(JOBS))[0]
        assert job.data["attempts"] == 2
        assert len(ours(dmp, doc_id)) == 1


async def test_already_registered_is_success_for_our_document_only(
    tmp_path: Path, dmp: Simulator, demo_pki: pki.Pki
) -> None:
    async with connector(tmp_path / "a", dmp.url, demo_pki) as first:
        pid = await first.qualified_patient()
        doc_id, body = first.cda(pid)
        await first.publish(first.signed(pid, doc_id, body), doc_id)
        await eventually(lambda: first.state_is(doc_id, "submitted"))
    # A connector that lost the answer (its own store knows nothing) sends it again.
    async with connector(tmp_path / "b", dmp.url, demo_pki) as second:
        pid = await second.qualified_patient()
        second.documents.cda[doc_id] = body
        await second.publish(second.signed(pid, doc_id, body), doc_id)
        await eventually(lambda: second.state_is(doc_id, "submitted"))
        submitted: list[Any] = []

        async def announced() -> bool:
            # The state commits with the event in the outbox; the relay publishes it after.
            submitted[:] = [
                e for e in await second.events() if e.event_type == "DmpDocumentSubmitted"
            ]
            return bool(submitted)

        await eventually(announced)
        assert submitted[-1].payload["duplicate"] is True
        # Another document claiming the same uniqueId is a refusal, not a success.
        _, other = second.cda(pid, document_id=doc_id)
        other = other.replace(b"Compte rendu de consultation", b"Autre compte rendu", 1)
        second.documents.cda[doc_id] = other
        forged = str(__import__("uuid").uuid4())
        second.documents.cda[forged] = other
        signed = second.signed(pid, forged, other)
        await second.publish(signed, forged)
        await eventually(lambda: second.state_is(forged, "failed"))
        assert (await second.submission(forged))["error_code"] == "XDSDuplicateUniqueIdInRegistry"
    assert len(ours(dmp, doc_id)) == 1
