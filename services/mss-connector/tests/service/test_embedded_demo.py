"""`make run`'s path: the embedded platform starts the MSSanté operator simulator with the
connector; a signed document for the demo correspondent arrives in its mailbox (visible over
HTTP), and the correspondent's acknowledgements come back to the message's status.

The documents service is not part of the platform yet: a fake stands behind the same name.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager
from mss_kit import (  # type: ignore[import-not-found]
    FakeDocuments,
    document_signed,
    eventually,
    needs_dovecot,
    signed_cda,
)

from bsante.chassis.bus import Message
from bsante.chassis.bus.embedded import EmbeddedBus
from bsante.contracts import topics
from bsante.contracts.events import MssRecipient
from bsante.gateway.app import build_embedded
from bsante.gateway.settings import GatewaySettings
from bsante.mss_connector.simulator import CORRESPONDENT
from bsante.platform.embedded import build_services

pytestmark = needs_dovecot
OPS = ("ops@bsante.demo", "Exploitation-Demo-2026")
MEDECIN = ("medecin@tilleuls.demo", "Medecin-Tilleuls-2026")


class FakeService:
    def __init__(self, app: Any) -> None:
        self.app = app
        self.name = "documents"

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None


@pytest.fixture
async def platform(tmp_path: Path) -> AsyncIterator[tuple[httpx.AsyncClient, FakeDocuments]]:
    services = build_services(tmp_path)
    app = build_embedded(GatewaySettings(), services)
    documents = FakeDocuments(any_token=True)
    async with LifespanManager(app, startup_timeout=60, shutdown_timeout=30) as manager:
        # Reached by the connector's in-process transport, by name, when it first calls it.
        services["documents"] = FakeService(documents.app())  # type: ignore[assignment]
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://platform") as client:
            yield client, documents


async def login(client: httpx.AsyncClient, credentials: tuple[str, str]) -> dict[str, str]:
    response = await client.post(
        "/api/identity/auth/token",
        json={"username": credentials[0], "password": credentials[1]},
    )
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


async def test_a_document_sent_to_the_demo_correspondent_arrives_and_is_read(
    platform: tuple[httpx.AsyncClient, FakeDocuments], tmp_path: Path
) -> None:
    client, documents = platform
    doctor = await login(client, MEDECIN)
    created = await client.post(
        "/api/patient/patients",
        json={
            "birth_name": "PAT-TROIS",
            "birth_given_names": "DOMINIQUE MARIE-LOUISE",
            "sex": "F",
            "birth_date": "1979-03-28",
        },
        headers=doctor,
    )
    assert created.status_code == 201, created.text
    patient_id = uuid.UUID(created.json()["id"])
    cda = signed_cda()
    document_id = documents.add(cda)
    envelope = document_signed(
        document_id,
        cda,
        patient_id=patient_id,
        recipients=[MssRecipient(kind="professional", address=CORRESPONDENT, read_receipt=True)],
    )
    bus = EmbeddedBus(tmp_path)
    await bus.start()
    await bus.publish(Message(topics.DOCUMENTS, envelope.subject_id, envelope.to_json()))
    await bus.stop()

    ops = await login(client, OPS)
    mailbox: dict[str, Any] = {}

    async def arrived() -> bool:
        nonlocal mailbox
        response = await client.get(
            f"/api/mss-connector/simulator/mailboxes/{CORRESPONDENT}", headers=ops
        )
        assert response.status_code == 200, response.text
        mailbox = response.json()
        return len(mailbox["messages"]) == 1

    await eventually(arrived, timeout=60)
    assert mailbox["messages"][0]["subject"].startswith("XDM/1.0/DDM+")
    assert "IHE_XDM.zip" in mailbox["messages"][0]["attachments"]

    async def read() -> bool:
        response = await client.get(
            "/api/mss-connector/messages", params={"patient_id": str(patient_id)}, headers=doctor
        )
        assert response.status_code == 200, response.text
        items = response.json()["items"]
        return bool(items) and items[0]["recipients"][0]["status"] == "read"

    await eventually(read, timeout=60)

    kinds: list[str] = []

    async def in_timeline() -> bool:
        nonlocal kinds
        response = await client.get(f"/api/patient/patients/{patient_id}/timeline", headers=doctor)
        assert response.status_code == 200, response.text
        kinds = [e["kind"] for e in response.json()["items"]]
        return kinds.count("mss_acknowledged") == 2

    await eventually(in_timeline, timeout=60)
    assert "mss_sent" in kinds
