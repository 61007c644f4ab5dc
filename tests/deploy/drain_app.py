"""A service run alone by the drain test: `python drain_app.py <port> <dir>`.

`GET /slow` marks that it has started (file `entered`), then waits for the file `release`:
the test decides when the request in flight may finish. The stop hook writes `stopped`.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from fastapi import APIRouter

from bsante.chassis.runner import run_service
from bsante.chassis.service import Service
from bsante.chassis.settings import ServiceSettings

router = APIRouter()
DIRECTORY = Path(sys.argv[2])


@router.get("/slow")
async def slow() -> dict[str, str]:
    (DIRECTORY / "entered").touch()
    while not (DIRECTORY / "release").exists():
        await asyncio.sleep(0.01)
    return {"status": "finished"}


async def stopped(_: Service[ServiceSettings]) -> None:
    (DIRECTORY / "stopped").touch()


def build(settings: ServiceSettings) -> Service[ServiceSettings]:
    return Service(
        settings,
        routers=[router],
        jwks=False,
        on_stop=[stopped],
        standalone=True,
    )


if __name__ == "__main__":
    run_service(
        build,
        ServiceSettings(
            service_name="drain-test",
            port=int(sys.argv[1]),
            host="127.0.0.1",
            store_url=f"sqlite:///{DIRECTORY / 'store.db'}",
            bus_url=f"embedded://{DIRECTORY / 'bus'}",
            drain_seconds=120,
            shutdown_timeout_seconds=30,
        ),
    )
