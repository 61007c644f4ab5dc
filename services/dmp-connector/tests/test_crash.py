"""A connector process killed before or after its ITI-41 call, then restarted: the simulator
holds the document exactly once and the connector reports one submission."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from dmp_kit import INS, INS_OID, Connector, Simulator  # type: ignore[import-not-found]

from bsante.chassis.bus import Message
from bsante.chassis.bus.embedded import EmbeddedBus
from bsante.chassis.store.sqlite import SqliteStore
from bsante.contracts.envelope import Envelope
from bsante.contracts.events import DmpDocumentSubmitted, PatientCreated, Payload
from bsante.dmp_connector import pki

WORKER = Path(__file__).with_name("dmp_crash_worker.py")


def worker(mode: str, data: Path, sim: Simulator) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, str(WORKER), mode, str(data), sim.url],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def finish(process: subprocess.Popen[bytes], expected: int) -> None:
    _, stderr = process.communicate(timeout=90)
    assert process.returncode == expected, stderr.decode(errors="replace")[-2000:]


async def publish(data: Path, payload: Payload, subject: str) -> None:
    envelope = Envelope(
        event_type=payload.event_type,
        schema_version=1,
        producer="tests",
        structure_id="demo-ehpad",
        subject_id=subject,
        correlation_id=str(uuid.uuid4()),
        payload=payload.model_dump(mode="json"),
    )
    bus = EmbeddedBus(data)
    await bus.start()
    try:
        await bus.publish(Message(payload.topic, subject, envelope.to_json(), {}))
    finally:
        await bus.stop()


async def seed(data: Path, demo: pki.Pki) -> str:
    from dmp_kit import Connector as Kit
    from dmp_kit import FakeDocuments, FakePatients  # noqa: F401

    patient_id, document_id = str(uuid.uuid4()), str(uuid.uuid4())
    helper = Kit.__new__(Kit)
    helper.documents = FakeDocuments()
    _, body = helper.cda(patient_id, document_id=document_id)
    (data / "cda.xml").write_bytes(body)
    (data / "seed.json").write_text(
        json.dumps(
            {
                "patient_id": patient_id,
                "document_id": document_id,
                "ins": INS,
                "ins_oid": INS_OID,
                "ca": str(demo.ca_cert),
                "cert": str(demo.cert),
                "key": str(demo.key),
            }
        )
    )
    await publish(
        data,
        PatientCreated(
            patient_id=uuid.UUID(patient_id), identity_status="qualifiee", created_by="u"
        ),
        patient_id,
    )
    await publish(data, helper.signed(patient_id, document_id, body), document_id)
    return document_id


async def outcome(data: Path, document_id: str) -> tuple[str, list[Envelope]]:
    store = SqliteStore(data / "dmp-connector.db")
    await store.start()
    doc = await store.get("submissions", document_id)
    await store.close()
    bus = EmbeddedBus(data)
    await bus.start()
    try:
        events = [Envelope.from_json(m.value) for m in await bus.read(DmpDocumentSubmitted.topic)]
    finally:
        await bus.stop()
    assert doc is not None
    return str(doc.data["state"]), events


@pytest.mark.parametrize("mode", ["die-before-call", "die-after-call"])
async def test_a_connector_killed_around_the_call_feeds_the_document_once(
    tmp_path: Path, dmp: Simulator, demo_pki: pki.Pki, mode: str
) -> None:
    document_id = await seed(tmp_path, demo_pki)
    finish(worker(mode, tmp_path, dmp), 17)
    arrived = [d for d in dmp.documents(INS) if str(d["unique_id"]).endswith(document_id)]
    assert len(arrived) == (0 if mode == "die-before-call" else 1)
    state, events = await outcome(tmp_path, document_id)
    assert state == "queued" and events == [], "the outcome never committed"

    finish(worker("run", tmp_path, dmp), 0)

    arrived = [d for d in dmp.documents(INS) if str(d["unique_id"]).endswith(document_id)]
    assert len(arrived) == 1, "exactly one document in the DMP"
    state, events = await outcome(tmp_path, document_id)
    assert state == "submitted"
    assert [e.payload["document_id"] for e in events] == [document_id]
    assert events[0].payload["duplicate"] is (mode == "die-after-call")
    assert isinstance(Connector, type)
