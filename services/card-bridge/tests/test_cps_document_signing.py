"""A document signed with the professional's own CPS, end to end on a real pcscd.

The documents service (embedded platform) reaches the agent's local API over real HTTP on
127.0.0.1 (uvicorn), as on a workstation running `make run`; the virtual CPS signs the PDF's
PAdES and the CDA's XAdES digests after the PIN; the verification endpoint checks them to the
CPS trust anchors (the emulator's test CA here).
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from asgi_lifespan import LifespanManager

from bsante.card_bridge.emulators.cards import CpsEmulator
from bsante.card_bridge.emulators.pki import CardPki, Issued, cps_card
from bsante.card_bridge.http import asgi, build_app
from bsante.card_bridge.settings import CardBridgeSettings
from bsante.card_bridge.testing import READER_NAMES, VirtualReaders
from bsante.gateway.app import build_embedded
from bsante.gateway.settings import GatewaySettings
from bsante.platform.embedded import build_services

DOCTOR = "810001000016"  # the demo médecin of demo-ehpad (8 + RPPS)
PAIRING = "test-pairing-token-" + "s" * 24
ORIGIN = "http://app.bsante.test"
PATIENT = {"birth_name": "DUPONT", "birth_given_names": "Marie", "sex": "F",
           "birth_date": "1941-03-02"}  # fmt: skip
INS_VERIFY = 0x20


@pytest.fixture(scope="module")
def doctor_keys(pki: CardPki) -> tuple[Issued, Issued]:
    return pki.card_keys(DOCTOR)


@dataclass
class Workstation:
    platform: httpx.AsyncClient
    agent: httpx.AsyncClient  # the paired web app, over real HTTP
    services: dict[str, Any]
    doctor: dict[str, str]  # the doctor's bearer, from the CPS login
    card: CpsEmulator

    async def final_document(self) -> httpx.Response:
        created = await self.platform.post(
            "/api/patient/patients", json=PATIENT, headers=self.doctor
        )
        assert created.status_code == 201, created.text
        templates = await self.platform.get("/api/documents/templates", headers=self.doctor)
        template = next(t for t in templates.json() if t["name"] == "Compte rendu de consultation")
        drafted = await self.platform.post(
            f"/api/documents/patients/{created.json()['id']}/documents",
            json={"template_id": template["id"]},
            headers=self.doctor,
        )
        assert drafted.status_code == 201, drafted.text
        final = await self.platform.post(
            f"/api/documents/documents/{drafted.json()['id']}/finalize",
            headers={**self.doctor, "If-Match": drafted.headers["ETag"]},
        )
        assert final.status_code == 200, final.text
        return final

    async def sign(self, final: httpx.Response, pin: str = "1234") -> httpx.Response:
        return await self.platform.post(
            f"/api/documents/documents/{final.json()['id']}/sign",
            json={"signer": {"mode": "cps", "pin": pin, "pairing_token": PAIRING}},
            headers={**self.doctor, "If-Match": final.headers["ETag"]},
        )

    async def status(self, document_id: str) -> str:
        got = await self.platform.get(
            f"/api/documents/documents/{document_id}", headers=self.doctor
        )
        return str(got.json()["status"])


@pytest.fixture
async def workstation(
    readers: VirtualReaders,
    pki: CardPki,
    doctor_keys: tuple[Issued, Issued],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> AsyncIterator[Workstation]:
    ca, crls = pki.write_trust_store(tmp_path / "trust")
    # The agent's socket first: the documents service is configured with its address.
    listening = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listening.bind(("127.0.0.1", 0))
    port = listening.getsockname()[1]
    monkeypatch.setenv("IDENTITY_CPS_CA_PATHS", json.dumps([str(ca)]))
    monkeypatch.setenv("IDENTITY_CPS_CRL_PATHS", json.dumps([str(c) for c in crls]))
    monkeypatch.setenv("DOCUMENTS_CARD_BRIDGE_URL", f"http://127.0.0.1:{port}")
    monkeypatch.setenv("DOCUMENTS_CPS_TRUST_ANCHOR_FILES", json.dumps([str(ca)]))
    services = build_services(tmp_path / "data")
    platform_app = build_embedded(GatewaySettings(), services)
    async with LifespanManager(platform_app, startup_timeout=120, shutdown_timeout=60) as running:
        settings = CardBridgeSettings(
            platform_url="http://platform",
            platform_origin=ORIGIN,
            pairing_file=tmp_path / "pairing",
            poll_ms=100,
        )
        agent_app = build_app(
            settings, token=PAIRING, transport=httpx.ASGITransport(app=running.app)
        )
        server = uvicorn.Server(uvicorn.Config(asgi(agent_app), log_level="warning", lifespan="on"))
        task = asyncio.create_task(server.serve(sockets=[listening]))
        platform = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=running.app), base_url="http://platform"
        )
        agent = httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{port}",
            headers={"Authorization": f"Bearer {PAIRING}", "Origin": ORIGIN},
            timeout=60,
        )
        try:
            await _until(lambda: _started(server, task), "the agent to listen")
            card = cps_card(pki, DOCTOR, keys=doctor_keys)
            readers.slots[0].insert(card)
            await _until(lambda: _cps_listed(agent), "the CPS to be identified")
            login = await agent.post("/cps/login", json={"pin": "1234"})
            assert login.status_code == 200, login.text
            doctor = {"Authorization": f"Bearer {login.json()['access_token']}"}
            yield Workstation(platform, agent, services, doctor, card)
        finally:
            await platform.aclose()
            await agent.aclose()
            server.should_exit = True
            await task
            listening.close()


async def _started(server: uvicorn.Server, task: asyncio.Task[None]) -> bool:
    assert not task.done(), "the agent stopped"
    return bool(server.started)


async def _cps_listed(agent: httpx.AsyncClient) -> bool:
    listed = (await agent.get("/cards")).json()
    return any(c["reader"] == READER_NAMES[0] and c["card_kind"] == "cps" for c in listed)


async def _until(predicate: Any, what: str) -> None:
    for _ in range(1500):
        if await predicate():
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


def _flip(data: bytes, index: int) -> bytes:
    changed = b"X" if data[index : index + 1] != b"X" else b"Y"
    return data[:index] + changed + data[index + 1 :]


async def test_a_document_signed_with_the_cps_verifies_and_one_changed_byte_fails(
    workstation: Workstation,
) -> None:
    final = await workstation.final_document()
    document_id = final.json()["id"]
    before = len(workstation.card.apdus)
    signed = await workstation.sign(final)
    assert signed.status_code == 200, signed.text
    assert signed.json()["status"] == "signed" and signed.json()["signed_with"] == "cps"
    # The card itself signed: two PINs presented and two PSO COMPUTE DIGITAL SIGNATURE.
    sent = workstation.card.apdus[before:]
    assert sum(1 for a in sent if a[1] == 0x2A) == 2
    assert sum(1 for a in sent if a[1] == INS_VERIFY and len(a) > 5) == 2

    verified = await workstation.platform.get(
        f"/api/documents/documents/{document_id}/verification", headers=workstation.doctor
    )
    assert verified.status_code == 200, verified.text
    body = verified.json()
    assert body["valid"] is True, body
    assert body["cda_valid"] and body["pdf_valid"] and body["problems"] == []
    assert f"CN={DOCTOR}" in body["signer"]

    # One byte changed in either artefact: the CPS signature no longer verifies.
    artefacts = {}
    for name in ("pdf", "cda", "cda-signature"):
        got = await workstation.platform.get(
            f"/api/documents/documents/{document_id}/{name}", headers=workstation.doctor
        )
        assert got.status_code == 200, got.text
        artefacts[name] = got.content
    ports = workstation.services["documents"].app.state.ports
    pdf, cda, signature = artefacts["pdf"], artefacts["cda"], artefacts["cda-signature"]

    def verify(cda: bytes, pdf: bytes, sealer: Any = ports.cps) -> Any:
        # The service's own CPS verifier (pyHanko runs its own event loop: off this one).
        return asyncio.to_thread(sealer.verify, cda, pdf, cda_signature=signature)

    intact = await verify(cda, pdf)
    assert intact.valid, intact.problems
    broken_pdf = await verify(cda, _flip(pdf, pdf.index(b"/Type") + 2))
    assert not broken_pdf.valid and not broken_pdf.pdf_valid and broken_pdf.cda_valid
    broken_cda = await verify(_flip(cda, cda.index(b"<title>") + 8), pdf)
    assert not broken_cda.valid and not broken_cda.cda_valid and broken_cda.pdf_valid
    # The cachet's trust anchors do not vouch for a CPS: a CPS signature is checked to its own.
    assert not (await verify(cda, pdf, ports.sealer)).valid


async def test_a_wrong_pin_is_a_clear_refusal_and_signs_nothing(
    workstation: Workstation,
) -> None:
    final = await workstation.final_document()
    refused = await workstation.sign(final, pin="0000")
    assert refused.status_code == 422, refused.text
    assert refused.headers["content-type"] == "application/problem+json"
    problem = refused.json()
    assert problem["type"].endswith("wrong-pin") and "2 tries left" in problem["detail"]
    assert [e["field"] for e in problem["errors"]] == ["signer.pin"]
    assert await workstation.status(final.json()["id"]) == "final"
    assert workstation.card.tries_left == 2
    # The same document is signed once the right PIN is given (nothing half-written before).
    signed = await workstation.sign(final)
    assert signed.status_code == 200, signed.text


async def test_a_card_pulled_out_while_signing_is_a_clear_error_and_signs_nothing(
    workstation: Workstation, readers: VirtualReaders
) -> None:
    final = await workstation.final_document()
    reached, release = threading.Event(), threading.Event()
    card = workstation.card
    answer = card.transmit

    def held_at_the_pin(apdu: bytes) -> bytes:
        if apdu[1] == INS_VERIFY and len(apdu) > 5:
            reached.set()
            release.wait(30)
        return answer(apdu)

    card.transmit = held_at_the_pin  # type: ignore[method-assign]
    signing = asyncio.create_task(workstation.sign(final))
    assert await asyncio.to_thread(reached.wait, 30)
    readers.slots[0].remove()
    release.set()
    refused = await signing
    assert refused.status_code == 409, refused.text
    assert refused.json()["type"].endswith("card-removed"), refused.json()
    assert await workstation.status(final.json()["id"]) == "final"
    # No CPS at all any more: a clear 409 too.
    await _until(lambda: _no_card(workstation.agent), "the CPS to be gone")
    again = await workstation.sign(final)
    assert again.status_code == 409 and again.json()["type"].endswith("unknown-card")


async def _no_card(agent: httpx.AsyncClient) -> bool:
    return (await agent.get("/cards")).json() == []


async def test_cps_mode_without_the_pin_or_with_another_pairing_token_is_refused(
    workstation: Workstation,
) -> None:
    final = await workstation.final_document()
    url = f"/api/documents/documents/{final.json()['id']}/sign"
    headers = {**workstation.doctor, "If-Match": final.headers["ETag"]}
    missing = await workstation.platform.post(
        url, json={"signer": {"mode": "cps", "pairing_token": PAIRING}}, headers=headers
    )
    assert missing.status_code == 422, missing.text
    assert "pin" in missing.text and "signer" in missing.text
    unpaired = await workstation.platform.post(
        url,
        json={"signer": {"mode": "cps", "pin": "1234", "pairing_token": "forged"}},
        headers=headers,
    )
    assert unpaired.status_code == 422, unpaired.text
    assert [e["field"] for e in unpaired.json()["errors"]] == ["signer.pairing_token"]
    assert await workstation.status(final.json()["id"]) == "final"
    assert workstation.card.tries_left == 3  # the PIN never reached the card
