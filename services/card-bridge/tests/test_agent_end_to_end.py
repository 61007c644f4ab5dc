"""The agent end to end: virtual cards on a real pcscd, the local API, the embedded platform.

CPS login: the card signs identity's challenge after the PIN, identity (whose CPS trust store
holds the emulator's test CA) answers the professional's tokens. Vitale: the read is posted
with that user's token, becomes a VitaleCardRead, and the beneficiary's record is created, then
found.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI

from bsante.card_bridge.emulators.pki import CardPki, Issued, cps_card, unknown_card, vitale_card
from bsante.card_bridge.http import asgi, build_app
from bsante.card_bridge.settings import CardBridgeSettings
from bsante.card_bridge.testing import READER_NAMES, VirtualReaders
from bsante.contracts.events.card_bridge import VitaleBeneficiary
from bsante.gateway.app import build_embedded
from bsante.gateway.settings import GatewaySettings
from bsante.platform.embedded import build_services

DOCTOR = "810001000016"  # the demo médecin of demo-ehpad (8 + RPPS)
PAIRING = "test-pairing-token-" + "x" * 24
ORIGIN = "http://app.bsante.test"
LEFEVRE = VitaleBeneficiary(
    quality="assure", birth_name="LEFEVRE", given_name="ELODIE MARIE",
    birth_date="1979-03-12", sex="F", nir="2790351215189",
)  # fmt: skip


@pytest.fixture(scope="module")
def doctor_keys(pki: CardPki) -> tuple[Issued, Issued]:
    return pki.card_keys(DOCTOR)


@pytest.fixture
async def platform(
    pki: CardPki, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[FastAPI]:
    ca, crls = pki.write_trust_store(tmp_path / "trust")
    monkeypatch.setenv("IDENTITY_CPS_CA_PATHS", f'["{ca}"]')
    monkeypatch.setenv("IDENTITY_CPS_CRL_PATHS", "[" + ", ".join(f'"{c}"' for c in crls) + "]")
    app = build_embedded(GatewaySettings(), build_services(tmp_path / "data"))
    async with LifespanManager(app, startup_timeout=120, shutdown_timeout=60) as manager:
        yield manager.app  # type: ignore[misc]


@dataclass
class Agent:
    local: httpx.AsyncClient  # a page of the platform's origin, paired
    platform: httpx.AsyncClient
    app: FastAPI

    async def until(self, predicate: Any, what: str) -> Any:
        for _ in range(1000):
            value = await predicate()
            if value:
                return value
            await asyncio.sleep(0.02)
        raise AssertionError(f"timed out waiting for {what}")

    async def card(self, reader: str, kind: str) -> dict[str, Any]:
        async def found() -> dict[str, Any] | None:
            listed = (await self.local.get("/cards")).json()
            return next((c for c in listed if c["reader"] == reader and c["card_kind"]), None)

        card: dict[str, Any] = await self.until(found, f"a {kind} in {reader}")
        assert card["card_kind"] == kind, card
        return card


@pytest.fixture
async def agent(platform: FastAPI, readers: VirtualReaders, tmp_path: Path) -> AsyncIterator[Agent]:
    settings = CardBridgeSettings(
        platform_url="http://platform",
        platform_origin=ORIGIN,
        workstation_id="poste-accueil-1",
        pairing_file=tmp_path / "pairing",
        poll_ms=100,
    )
    app = build_app(settings, token=PAIRING, transport=httpx.ASGITransport(app=platform))
    async with LifespanManager(app, startup_timeout=120, shutdown_timeout=60):
        local = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=asgi(app)),
            base_url="http://127.0.0.1:8088",
            headers={"Authorization": f"Bearer {PAIRING}", "Origin": ORIGIN},
        )
        remote = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=platform), base_url="http://platform"
        )
        async with local, remote:
            yield Agent(local, remote, app)


async def test_cps_login_end_to_end(
    agent: Agent, readers: VirtualReaders, pki: CardPki, doctor_keys: tuple[Issued, Issued]
) -> None:
    readers.slots[0].insert(cps_card(pki, DOCTOR, keys=doctor_keys))
    card = await agent.card(READER_NAMES[0], "cps")
    assert card["ps_id_nat"] == DOCTOR
    response = await agent.local.post("/cps/login", json={"pin": "1234"})
    assert response.status_code == 200, response.text
    token = response.json()["access_token"]
    me = await agent.platform.get("/api/identity/me", headers={"Authorization": f"Bearer {token}"})
    assert me.json()["user_id"] == "user-medecin-demo-ehpad"
    assert me.json()["ps_id_nat"] == DOCTOR
    session = (await agent.local.get("/session")).json()
    assert session["user_id"] == "user-medecin-demo-ehpad" and session["by_card"] is True
    # Pulling the CPS out ends the session on this workstation.
    readers.slots[0].remove()

    async def signed_out() -> bool:
        return (await agent.local.get("/session")).json() == {"signed_in": False}

    await agent.until(signed_out, "the session to end with the card")


async def test_wrong_pins_then_a_blocked_card(
    agent: Agent, readers: VirtualReaders, pki: CardPki, doctor_keys: tuple[Issued, Issued]
) -> None:
    readers.slots[0].insert(cps_card(pki, DOCTOR, keys=doctor_keys))
    await agent.card(READER_NAMES[0], "cps")
    wrong = await agent.local.post("/cps/login", json={"pin": "0000"})
    assert wrong.status_code == 401
    assert wrong.headers["content-type"] == "application/problem+json"
    assert wrong.json()["type"].endswith("wrong-pin") and "2 tries left" in wrong.json()["detail"]
    assert wrong.headers["x-pin-tries-left"] == "2"
    assert (await agent.local.get("/cps/pin")).json() == {"tries_left": 2}
    for _ in range(2):
        await agent.local.post("/cps/login", json={"pin": "0000"})
    blocked = await agent.local.post("/cps/login", json={"pin": "1234"})
    assert blocked.status_code == 423 and blocked.json()["type"].endswith("pin-blocked")
    bad = await agent.local.post("/cps/login", json={"pin": "12ab"})
    assert bad.status_code in (422, 423)


async def test_an_unknown_card_and_no_card(agent: Agent, readers: VirtualReaders) -> None:
    nothing = await agent.local.post("/cps/login", json={"pin": "1234"})
    assert nothing.status_code == 409 and nothing.json()["type"].endswith("unknown-card")
    readers.slots[0].insert(unknown_card())
    await agent.card(READER_NAMES[0], "unknown")
    refused = await agent.local.post("/cps/login", json={"pin": "1234"})
    assert refused.status_code == 409


async def test_other_pages_cannot_use_the_agent(agent: Agent) -> None:
    unpaired = await agent.local.get("/cards", headers={"Authorization": ""})
    assert unpaired.status_code == 401 and unpaired.json()["type"].endswith("unpaired")
    wrong = await agent.local.get("/cards", headers={"Authorization": "Bearer " + "y" * 43})
    assert wrong.status_code == 401
    hostile = await agent.local.post(
        "/cps/login", json={"pin": "1234"}, headers={"Origin": "http://evil.test"}
    )
    assert hostile.status_code == 403
    for answer in (unpaired, hostile):
        assert answer.headers["x-content-type-options"] == "nosniff"
        assert "frame-ancestors 'none'" in answer.headers["content-security-policy"]
    preflight = await agent.local.options(
        "/cards",
        headers={"Origin": ORIGIN, "Access-Control-Request-Method": "GET"},
    )
    assert preflight.headers["access-control-allow-origin"] == ORIGIN
    assert (await agent.local.get("/health", headers={"Authorization": ""})).status_code == 200


async def test_vitale_read_creates_then_finds_the_patient(
    agent: Agent, readers: VirtualReaders, pki: CardPki, doctor_keys: tuple[Issued, Issued]
) -> None:
    readers.slots[0].insert(cps_card(pki, DOCTOR, keys=doctor_keys))
    await agent.card(READER_NAMES[0], "cps")
    login = await agent.local.post("/cps/login", json={"pin": "1234"})
    token = login.json()["access_token"]
    auth = {"Authorization": f"Bearer {token}"}
    bridge = agent.app.state.bridge
    outcomes = []
    for expected in (201, 200):
        events = bridge.subscribe()
        readers.slots[1].insert(vitale_card("2790351215189", [LEFEVRE]))

        async def read_id(events: asyncio.Queue[dict[str, Any]] = events) -> str | None:
            while not events.empty():
                event = events.get_nowait()
                if event["type"] == "vitale.read":
                    return str(event["read_id"])
            return None

        read = await agent.until(read_id, "the Vitale read to be posted")
        bridge.unsubscribe(events)

        async def consumed(read: str = read) -> httpx.Response | None:
            got = await agent.platform.get(f"/api/patient/patients/card-reads/{read}", headers=auth)
            return got if got.status_code == 200 else None

        card = (await agent.until(consumed, "patient to keep the card read")).json()
        assert card["workstation_id"] == "poste-accueil-1"
        assert card["read_by"] == "user-medecin-demo-ehpad"
        chosen = await agent.platform.post(
            f"/api/patient/patients/card-reads/{read}/select", json={"beneficiary": 0}, headers=auth
        )
        assert chosen.status_code == expected, chosen.text
        outcomes.append(chosen.json()["patient"]["id"])
        readers.slots[1].remove()
        await agent.until(lambda: _absent(agent, READER_NAMES[1]), "the Vitale to be pulled out")
    assert outcomes[0] == outcomes[1]


async def _absent(agent: Agent, reader: str) -> bool:
    listed = (await agent.local.get("/cards")).json()
    return all(card["reader"] != reader for card in listed)


async def test_the_local_websocket_over_real_http(readers: VirtualReaders, tmp_path: Path) -> None:
    """uvicorn on 127.0.0.1 as on a workstation; a paired page of the platform's origin hears
    the cards come and go, other pages are turned away."""
    import json

    import uvicorn
    import websockets

    settings = CardBridgeSettings(
        platform_url="http://127.0.0.1:9",  # no session: the agent calls nothing
        platform_origin=ORIGIN,
        pairing_file=tmp_path / "pairing",
        poll_ms=100,
    )
    server = uvicorn.Server(
        uvicorn.Config(
            asgi(build_app(settings, token=PAIRING)),
            host="127.0.0.1",
            port=0,
            log_level="warning",
            lifespan="on",
        )
    )
    task = asyncio.create_task(server.serve())
    try:
        for _ in range(1500):
            if server.started or task.done():
                break
            await asyncio.sleep(0.02)
        assert server.started
        port = server.servers[0].sockets[0].getsockname()[1]
        url = f"ws://127.0.0.1:{port}/events"
        pairing = ["bsante.pairing", PAIRING]
        async with websockets.connect(url, subprotocols=pairing, origin=ORIGIN) as ws:  # type: ignore[arg-type,list-item]
            readers.slots[1].insert(vitale_card("2790351215189", [LEFEVRE]))
            seen = []
            while not seen or seen[-1]["type"] != "vitale.read":
                seen.append(json.loads(await asyncio.wait_for(ws.recv(), 30)))
            readers.slots[1].remove()
            while seen[-1]["type"] != "card.removed":
                seen.append(json.loads(await asyncio.wait_for(ws.recv(), 30)))
        kinds = [(e["type"], e.get("card_kind")) for e in seen]
        assert kinds == [
            ("card.inserted", None),
            ("card.identified", "vitale"),
            ("vitale.read", None),
            ("card.removed", "vitale"),
        ]
        assert seen[2]["published"] is False  # nobody signed in: nothing left the workstation
        for subprotocols, origin in (
            (["bsante.pairing", "forged"], ORIGIN),
            (pairing, "http://evil.test"),
        ):
            with pytest.raises(websockets.exceptions.InvalidStatus):
                async with websockets.connect(url, subprotocols=subprotocols, origin=origin):  # type: ignore[arg-type,list-item]
                    pass
    finally:
        server.should_exit = True
        await task


async def test_a_page_that_does_not_read_loses_old_events_not_the_agent() -> None:
    from bsante.card_bridge.agent import MAX_QUEUED_EVENTS, Bridge

    bridge = Bridge(CardBridgeSettings(pairing_file=Path("unused")))
    queue = bridge.subscribe()
    for n in range(MAX_QUEUED_EVENTS + 50):
        bridge._tell({"type": "card.inserted", "n": n})
    assert queue.qsize() == MAX_QUEUED_EVENTS
    assert queue.get_nowait()["n"] == 50  # the oldest went first


async def test_a_card_answering_garbage_is_a_clear_error_and_the_reader_stays_usable(
    agent: Agent, readers: VirtualReaders, pki: CardPki, doctor_keys: tuple[Issued, Issued]
) -> None:
    emulator = cps_card(pki, DOCTOR, keys=doctor_keys)
    emulator.faults[0xB0] = b"\x90"  # READ BINARY answers one byte: no status word
    readers.slots[0].insert(emulator)
    card = await agent.card(READER_NAMES[0], "cps")
    assert card["error"].startswith("malformed-response")
    refused = await agent.local.post("/cps/login", json={"pin": "1234"})
    assert refused.status_code == 422 and refused.json()["type"].endswith("malformed-response")
    assert emulator.tries_left == 3  # the PIN never reached the card
    del emulator.faults[0xB0]
    assert (await agent.local.post("/cps/login", json={"pin": "1234"})).status_code == 200
