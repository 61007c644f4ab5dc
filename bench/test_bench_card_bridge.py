"""Carte Vitale inserted → the patient found or created, on the embedded platform (issue 13).

The whole path a workstation takes: a virtual Vitale inserted in a real pcscd (vpcd slot), the
card bridge identifies and reads it, posts the read with the signed-in user's token, patient's
consumer keeps it, and the beneficiary is selected (created the first time, found after).
Figures: p50 and p99 over the rounds, printed and kept in the benchmark's extra info.
"""

from __future__ import annotations

import asyncio
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager

from bsante.card_bridge.emulators.pki import vitale_card
from bsante.card_bridge.http import asgi, build_app
from bsante.card_bridge.settings import CardBridgeSettings
from bsante.card_bridge.testing import READER_NAMES, VirtualReaders, unavailable_reason
from bsante.contracts.events.card_bridge import VitaleBeneficiary
from bsante.gateway.app import build_embedded
from bsante.gateway.settings import GatewaySettings
from bsante.platform.embedded import build_services

ROUNDS = 40
PAIRING = "bench-pairing-token-" + "z" * 24
PEOPLE = [
    ("2790351215189", VitaleBeneficiary(
        quality="assure", birth_name="LEFEVRE", given_name="ELODIE MARIE",
        birth_date="1979-03-12", sex="F", nir="2790351215189",
    )),
    ("1620188850453", VitaleBeneficiary(
        quality="assure", birth_name="DURAND", given_name="JEAN PAUL",
        birth_date="1962-01-15", sex="M", nir="1620188850453",
    )),
]  # fmt: skip


async def _campaign(readers: VirtualReaders, data: Path) -> list[float]:
    platform = build_embedded(GatewaySettings(), build_services(data))
    async with LifespanManager(platform, startup_timeout=120, shutdown_timeout=60):
        remote = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=platform), base_url="http://platform"
        )
        login = await remote.post(
            "/api/identity/auth/token",
            json={"username": "medecin@tilleuls.demo", "password": "Medecin-Tilleuls-2026"},
        )
        token = login.json()["access_token"]
        auth = {"Authorization": f"Bearer {token}"}
        settings = CardBridgeSettings(
            platform_url="http://platform", pairing_file=data / "pairing", poll_ms=50
        )
        agent = build_app(settings, token=PAIRING, transport=httpx.ASGITransport(app=platform))
        timings: list[float] = []
        async with LifespanManager(agent):
            local = httpx.AsyncClient(
                transport=httpx.ASGITransport(app=asgi(agent)), base_url="http://127.0.0.1"
            )
            paired = {"Authorization": f"Bearer {PAIRING}"}
            await local.put("/session", json={"access_token": token}, headers=paired)
            bridge = agent.state.bridge
            for round_ in range(ROUNDS):
                holder, person = PEOPLE[round_ % len(PEOPLE)]
                events = bridge.subscribe()
                started = time.perf_counter()
                readers.slots[1].insert(vitale_card(holder, [person]))
                read_id = await _read_id(events)
                while True:
                    chosen = await remote.post(
                        f"/api/patient/patients/card-reads/{read_id}/select",
                        json={"beneficiary": 0},
                        headers=auth,
                    )
                    if chosen.status_code != 404:  # 404 until patient consumed the read
                        break
                    await asyncio.sleep(0.005)
                assert chosen.status_code in (200, 201), chosen.text
                timings.append(time.perf_counter() - started)
                bridge.unsubscribe(events)
                readers.slots[1].remove()
                while READER_NAMES[1] in bridge.readers:
                    await asyncio.sleep(0.005)
            await local.aclose()
        await remote.aclose()
    return timings


async def _read_id(events: asyncio.Queue[dict[str, Any]]) -> str:
    while True:
        event = await asyncio.wait_for(events.get(), 30)
        if event["type"] == "vitale.read":
            return str(event["read_id"])


def test_vitale_inserted_to_patient(benchmark) -> None:  # type: ignore[no-untyped-def]
    reason = unavailable_reason()
    if reason:
        pytest.skip(reason)
    with tempfile.TemporaryDirectory(prefix="bsante-bench-pcscd-") as directory:
        readers = VirtualReaders(Path(directory) / "pcscd").start()
        try:
            timings = benchmark.pedantic(
                lambda: asyncio.run(_campaign(readers, Path(directory) / "data")),
                rounds=1,
                iterations=1,
            )
        finally:
            readers.stop()
    cuts = statistics.quantiles(timings, n=100)
    p50, p99 = statistics.median(timings), cuts[98]
    benchmark.extra_info.update({"rounds": len(timings), "p50_ms": p50 * 1e3, "p99_ms": p99 * 1e3})
    print(f"\nVitale inserted -> patient: p50 {p50 * 1e3:.1f} ms, p99 {p99 * 1e3:.1f} ms")  # noqa: T201
    assert len(timings) == ROUNDS
