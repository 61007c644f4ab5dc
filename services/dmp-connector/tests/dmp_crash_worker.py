"""A DMP connector process for the crash tests: it consumes the events waiting on the bus,
calls the simulator, and may die on purpose around the ITI-41 call.

dmp_crash_worker.py run DATA SIMULATOR_URL                die-before-call | die-after-call
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path

import httpx
from dmp_kit import (  # type: ignore[import-not-found]
    FakeDocuments,
    FakePatients,
    connector_settings,
    fake_identity,
)

from bsante.chassis.auth import SigningKey
from bsante.dmp_connector.app import build
from bsante.dmp_connector.peers import PatientIns
from bsante.dmp_connector.pki import Pki


class Dying(httpx.AsyncBaseTransport):
    """Real HTTP; the process dies just before sending ITI-41, or just after its answer."""

    def __init__(self, mode: str) -> None:
        self.mode = mode
        self.inner = httpx.AsyncHTTPTransport()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        iti41 = request.url.path.endswith("/repository")
        if iti41 and self.mode == "die-before-call":
            os._exit(17)
        response = await self.inner.handle_async_request(request)
        if iti41 and self.mode == "die-after-call":
            await response.aread()
            os._exit(17)  # the simulator registered it; the outcome never commits
        return response


async def main(mode: str, data: Path, simulator_url: str) -> None:
    seed = json.loads((data / "seed.json").read_text())
    demo = Pki(Path(seed["ca"]), Path(seed["cert"]), Path(seed["key"]))
    key = SigningKey.generate()

    async def jwks() -> dict[str, object]:
        return {"keys": [key.public_jwk()]}

    documents = FakeDocuments({seed["document_id"]: (data / "cda.xml").read_bytes()})
    patients = FakePatients(
        {
            seed["patient_id"]: PatientIns(
                seed["patient_id"], True, "qualifiee", seed["ins"], seed["ins_oid"], False
            )
        }
    )
    service = build(
        # Short leases: the killed process's job and relay leases expire soon after it died.
        connector_settings(
            data, simulator_url, demo, job_timeout_seconds=2.0, relay_lease_seconds=1.5
        ),
        jwks=jwks,
        patients=patients,
        documents_transport=httpx.ASGITransport(app=documents.app(key)),
        token_transport=httpx.ASGITransport(app=fake_identity(key)),
        dmp_transport=Dying(mode),
    )
    assert service.jobs is not None
    service.jobs.poll_interval = 0.05
    service.jobs.lease_margin = 0.5
    await service.start()
    try:
        async with asyncio.timeout(50):
            while True:
                doc = await service.store.get("submissions", seed["document_id"])
                done = doc is not None and doc.data["state"] in ("submitted", "failed")
                if done and not await service.store.outbox_pending(10):
                    break  # and its events are on the bus
                await asyncio.sleep(0.05)  # poll for the dead worker's lease to expire
    finally:
        await service.stop()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], Path(sys.argv[2]), sys.argv[3]))
