"""Run one service alone under uvicorn (the distributed topology's entry point)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import uvicorn

from bsante.chassis.service import Service, bootstrap
from bsante.chassis.settings import ServiceSettings

S = TypeVar("S", bound=ServiceSettings)


def run_service(build: Callable[[S], Service], settings: S) -> None:
    """Logs and traces first, then the service, then serve until SIGTERM/SIGINT."""
    bootstrap(settings)
    service = build(settings)
    uvicorn.run(
        service.app,
        host=settings.host,
        port=settings.port,
        access_log=False,
        log_config=None,
        timeout_graceful_shutdown=10,
    )
