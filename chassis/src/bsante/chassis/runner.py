"""Run one service alone: under uvicorn when it has an HTTP app, else until SIGTERM/SIGINT."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Callable
from typing import Any, TypeVar

import uvicorn

from bsante.chassis.service import Service, bootstrap
from bsante.chassis.settings import ServiceSettings

S = TypeVar("S", bound=ServiceSettings)


def run_service(build: Callable[[S], Service[Any]], settings: S) -> None:
    """Logs and traces first, then the service, then serve until SIGTERM/SIGINT."""
    bootstrap(settings)
    service = build(settings)
    if not service.has_http:
        asyncio.run(run_headless(service))
        return
    uvicorn.run(
        service.app,
        host=settings.host,
        port=settings.port,
        access_log=False,
        log_config=None,
        timeout_graceful_shutdown=10,
    )


async def run_headless(service: Service[Any], stop: asyncio.Event | None = None) -> None:
    """A service without HTTP app: start it, wait for a signal (or `stop`), stop it."""
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    installed: list[signal.Signals] = []
    for sig in (signal.SIGTERM, signal.SIGINT):
        # Not available off the main thread.
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(sig, stop.set)
            installed.append(sig)
    try:
        await service.start()
        try:
            await stop.wait()
        finally:
            await service.stop()
    finally:
        for sig in installed:
            loop.remove_signal_handler(sig)
