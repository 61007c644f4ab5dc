"""`make run`'s path: the embedded platform starts the MSSanté operator simulator with the
connector; a signed document for the demo correspondent arrives in its mailbox (visible over
HTTP), and the correspondent's acknowledgements come back to the message's status.

The document is written and signed in the real documents service of the platform; its
`DocumentSigned` names the correspondent, as a professional would pick him when signing.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager
from mss_kit import eventually, needs_dovecot  # type: ignore[import-not-found]

from bsante.gateway.app import build_embedded
from bsante.gateway.settings import GatewaySettings
from bsante.mss_connector.simulator import CORRESPONDENT
from bsante.platform.embedded import build_services

pytestmark = needs_dovecot
OPS = ("ops@bsante.demo", "Exploitation-Demo-2026")
MEDECIN = ("medecin@tilleuls.demo", "Medecin-Tilleuls-2026")


@pytest.fixture
async def platform(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    services = build_services(tmp_path)
    app = build_embedded(GatewaySettings(), services)
    async with LifespanManager(app, startup_timeout=60, shutdown_timeout=30) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://platform") as client:
            yield client


async def login(client: httpx.AsyncClient, credentials: tuple[str, str]) -> dict[str, str]:
    response = await client.post(
        "/api/identity/auth/token",
        json={"username": credentials[0], "password": credentials[1]},
    )
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


async def sign_for(
    client: httpx.AsyncClient, doctor: dict[str, str], patient_id: uuid.UUID, to: str
) -> str:
    """Draft a consultation report from the demo template, finalize it, sign it for `to`."""
    templates = await client.get("/api/documents/templates", headers=doctor)
    assert templates.status_code == 200, templates.text
    template = next(t for t in templates.json() if "consultation" in t["name"].lower())
    drafted = await client.post(
        f"/api/documents/patients/{patient_id}/documents",
        json={"template_id": template["id"]},
        headers=doctor,
    )
    assert drafted.status_code == 201, drafted.text
    document_id = str(drafted.json()["id"])
    final = await client.post(
        f"/api/documents/documents/{document_id}/finalize",
        headers={**doctor, "If-Match": drafted.headers["ETag"]},
    )
    assert final.status_code == 200, final.text
    signed = await client.post(
        f"/api/documents/documents/{document_id}/sign",
        json={"mssante": [{"kind": "professional", "address": to, "read_receipt": True}]},
        headers={**doctor, "If-Match": final.headers["ETag"]},
    )
    assert signed.status_code == 200, signed.text
    return document_id


async def test_a_document_sent_to_the_demo_correspondent_arrives_and_is_read(
    platform: httpx.AsyncClient,
) -> None:
    client = platform
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
    await sign_for(client, doctor, patient_id, CORRESPONDENT)

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
