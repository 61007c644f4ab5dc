"""A send-job worker process for the crash tests; it may die on purpose.

mss_crash_worker.py run DATA                 run until the send job is done
mss_crash_worker.py die-before-smtp DATA     die after fetching the artefacts, before SMTP
mss_crash_worker.py die-after-smtp DATA      die once the server accepted, before recording it
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import os
import sys
from pathlib import Path
from typing import Any

from bsante.chassis.bus.embedded import EmbeddedBus
from bsante.chassis.jobs import JOBS, JobWorker
from bsante.chassis.messaging import Messaging
from bsante.chassis.store.factory import store_from_url
from bsante.mss_connector.outbound import send_kind
from bsante.mss_connector.settings import MssConnectorSettings


class FileDocuments:
    """The artefacts the test wrote; optionally the process dies right after fetching them."""

    def __init__(self, data: Path, *, die: bool) -> None:
        self.data = data
        self.die = die

    async def fetch(self, document_id: str, artefact: str, sha256: str) -> bytes:
        content = (self.data / f"{artefact}.bin").read_bytes()
        assert hashlib.sha256(content).hexdigest() == sha256
        if self.die and artefact == "pdf":
            os._exit(17)  # the message was never submitted
        return content

    async def attach(self, patient_id: str, content: bytes, metadata: dict[str, Any]) -> str:
        raise NotImplementedError


async def main(mode: str, data: Path) -> None:
    settings = MssConnectorSettings.model_validate_json((data / "settings.json").read_text())
    store = store_from_url(settings.store_url, database="mss_connector")
    await store.start()
    messaging = Messaging("mss-connector", store, EmbeddedBus(data))
    kind = send_kind(settings, FileDocuments(data, die=mode == "die-before-smtp"), store.get)
    if mode == "die-after-smtp":
        record = kind.on_success

        async def die(uow: Any, job: Any, outcome: Any) -> None:
            os._exit(17)  # the server accepted; the transaction recording it never commits

        kind = dataclasses.replace(kind, on_success=die)
        del record
    worker = JobWorker(messaging, [kind], lease_margin=0.5, poll_interval=0.05)
    async with asyncio.timeout(50):
        while await store.count(JOBS, {"state": {"$in": ["succeeded", "failed"]}}) == 0:
            await worker.run_once()
            await asyncio.sleep(0.05)  # poll for the dead worker's lease to expire
    await store.close()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], Path(sys.argv[2])))
