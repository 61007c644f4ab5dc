"""From a qualified patient to the DMP on the embedded platform: the patient's DMP opposition
(patient service), DocumentSigned to the simulator the platform serves, the timeline, and a
professional's consultation and DMP administration."""

from __future__ import annotations

import hashlib
import uuid
from datetime import UTC, datetime
from typing import Any

import httpx
from kit import MEDECIN, Platform, eventually  # type: ignore[import-not-found]

from bsante.chassis.bus import Message
from bsante.chassis.bus.embedded import EmbeddedBus
from bsante.contracts.envelope import Envelope
from bsante.contracts.events import DmpIntent, DocumentSigned
from bsante.documents import cda, samples

BASE = "/api/patient/patients"
DMP = "/api/dmp-connector"
LEFEVRE = {
    "birth_name": "LEFEVRE",
    "birth_given_names": "ELODIE MARIE",
    "sex": "F",
    "birth_date": "1979-03-12",
    "birth_place": "51215",
}
INS = "279035121518989"


class FakeDocuments:
    """Stands for the documents service (its CDA route) until it joins the platform."""

    def __init__(self) -> None:
        from fastapi import FastAPI
        from fastapi.responses import Response

        self.cda: dict[str, bytes] = {}
        self.app = FastAPI()

        @self.app.get("/internal/documents/{document_id}/cda")
        async def signed_cda(document_id: str) -> Response:
            return Response(self.cda[document_id], media_type="application/xml")


async def qualified(platform: Platform, headers: dict[str, str]) -> str:
    created = await platform.client.post(BASE, json=LEFEVRE, headers=headers)
    assert created.status_code == 201, created.text
    url = f"{BASE}/{created.json()['id']}"
    assert (await platform.client.post(f"{url}/insi", headers=headers)).status_code == 200
    checked = await platform.client.post(
        f"{url}/identity-document", json={"document_type": "passeport"}, headers=headers
    )
    assert checked.json()["identity_status"] == "qualifiee", checked.text
    return str(created.json()["id"])


async def publish(platform: Platform, payload: DocumentSigned) -> None:
    envelope = Envelope(
        event_type=payload.event_type,
        schema_version=1,
        producer="documents",
        structure_id="demo-ehpad",
        subject_id=str(payload.set_id),
        correlation_id=str(uuid.uuid4()),
        payload=payload.model_dump(mode="json"),
    )
    bus = EmbeddedBus(platform.data)
    await bus.start()
    try:
        await bus.publish(Message(payload.topic, envelope.subject_id, envelope.to_json(), {}))
    finally:
        await bus.stop()


def signed(patient_id: str, documents: FakeDocuments) -> tuple[str, DocumentSigned]:
    document_id = str(uuid.uuid4())
    meta = samples.metadata(document_id=document_id)
    body = cda.to_bytes(cda.build_cda_n1(meta, samples.patient(), samples.author(), b"%PDF-1.7"))
    documents.cda[document_id] = body
    return document_id, DocumentSigned(
        document_id=uuid.UUID(document_id),
        set_id=uuid.uuid4(),
        version=1,
        patient_id=uuid.UUID(patient_id),
        author_id="user-dr-martin",
        legal_authenticator_id="user-dr-martin",
        type_code="11488-4",
        signed_at=datetime.now(UTC),
        cda_sha256=hashlib.sha256(body).hexdigest(),
        cda_size=len(body),
        pdf_sha256="0" * 64,
        pdf_size=1,
        dmp=DmpIntent(requested=True),
    )


async def test_a_signed_document_of_a_qualified_patient_reaches_the_platforms_dmp(
    platform: Platform,
) -> None:
    doctor = await platform.login(MEDECIN)
    pid = await qualified(platform, doctor)
    documents = FakeDocuments()
    platform.services["documents"] = documents  # type: ignore[assignment]

    opposed = await platform.client.put(
        f"{BASE}/{pid}/dmp-opposition", json={"opposed": True}, headers=doctor
    )
    assert opposed.status_code == 200, opposed.text
    assert opposed.json()["dmp_opposition"] is True
    document_id, event = signed(pid, documents)
    await publish(platform, event)

    async def state(*states: str) -> bool:
        r = await platform.client.get(f"{DMP}/documents/{document_id}/dmp", headers=doctor)
        return r.status_code == 200 and r.json()["state"] in states

    await eventually(lambda: state("blocked_patient_opposition"))
    lifted = await platform.client.put(
        f"{BASE}/{pid}/dmp-opposition", json={"opposed": False}, headers=doctor
    )
    assert lifted.status_code == 200
    await eventually(lambda: state("submitted"))

    repository = platform.services["dmp-connector"].app.state.dmp.endpoints.repository
    simulator = repository.rsplit("/", 1)[0]
    async with httpx.AsyncClient() as client:
        held = (await client.get(f"{simulator}/patients/{INS}/documents")).json()["documents"]
    assert [d["unique_id"] for d in held] == [f"1.2.250.1.999.1.1^{document_id}"]

    async def on_timeline() -> bool:
        r = await platform.client.get(f"{BASE}/{pid}/timeline", headers=doctor)
        kinds = [e["kind"] for e in r.json()["items"]]
        return "dmp_submitted" in kinds and "dmp_opposition" in kinds

    await eventually(on_timeline)

    # Consultation needs the structure's authorisation, recorded with the patient's consent.
    listed = await platform.client.get(f"{DMP}/patients/{pid}/dmp-documents", headers=doctor)
    assert listed.status_code == 409, listed.text
    assert "DMPAccessNotAuthorized" in listed.text
    authorised = await platform.client.put(
        f"{DMP}/patients/{pid}/dmp/authorisation",
        json={"authorisation": "autorise"},
        headers=doctor,
    )
    assert authorised.status_code == 200, authorised.text
    assert authorised.json()["structure_authorisation"] == "autorise"
    listed = await platform.client.get(f"{DMP}/patients/{pid}/dmp-documents", headers=doctor)
    assert [d["unique_id"] for d in listed.json()] == [f"1.2.250.1.999.1.1^{document_id}"]
    one = await platform.client.get(
        f"{DMP}/patients/{pid}/dmp-documents/1.2.250.1.999.1.1^{document_id}", headers=doctor
    )
    assert one.status_code == 200 and one.content == documents.cda[document_id]

    # The access history is for the médecin traitant DMP only.
    refused = await platform.client.get(f"{DMP}/patients/{pid}/dmp/access-history", headers=doctor)
    assert refused.status_code == 409
    declared = await platform.client.put(
        f"{DMP}/patients/{pid}/dmp/medecin-traitant", headers=doctor
    )
    assert declared.status_code == 200, declared.text
    assert declared.json()["medecin_traitant_ps_id_nat"] == "810001000016"
    history = await platform.client.get(f"{DMP}/patients/{pid}/dmp/access-history", headers=doctor)
    assert history.status_code == 200, history.text
    actions: list[dict[str, Any]] = history.json()
    assert {"ITI-41", "ITI-18", "ITI-43"} <= {a["action"] for a in actions}
