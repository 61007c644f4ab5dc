"""Run one service alone: under uvicorn when it has an HTTP app, else until SIGTERM/SIGINT.

SIGTERM drains (Kubernetes sends it when a pod stops): `/health/ready` answers 503 for
`drain_seconds` while the load balancer takes the pod out, then the server stops accepting,
finishes the requests in flight (at most `shutdown_timeout_seconds`), stops the service
(consumers commit their offsets, the relay hands its lease over) and the process exits 0.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Callable
from types import FrameType
from typing import Any, TypeVar

import uvicorn

from bsante.chassis.service import Service, bootstrap
from bsante.chassis.settings import ServiceSettings
from bsante.chassis.tasks import freeze_startup_heap, run_process_exit_hooks

S = TypeVar("S", bound=ServiceSettings)


class DrainingServer(uvicorn.Server):
    """uvicorn, with a drain period on SIGTERM, after which it exits 0 rather than re-raising
    the signal (uvicorn's default, which ends the process with status -15)."""

    def __init__(self, config: uvicorn.Config, service: Service[Any], drain_seconds: float):
        super().__init__(config)
        self._service = service
        self._drain_seconds = drain_seconds
        self._loop: asyncio.AbstractEventLoop | None = None

    async def serve(self, sockets: Any = None) -> None:
        self._loop = asyncio.get_running_loop()
        await super().serve(sockets)

    async def startup(self, sockets: Any = None) -> None:
        await super().startup(sockets)
        freeze_startup_heap()

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        if sig != signal.SIGTERM:
            super().handle_exit(sig, frame)
            return
        if self._service.draining or self._loop is None or self._drain_seconds <= 0:
            self.should_exit = True  # a second SIGTERM, or no drain period: stop now
            return
        self._service.draining = True
        # A signal handler may only hand work to the loop thread-safely.
        self._loop.call_soon_threadsafe(self._loop.call_later, self._drain_seconds, self._stop)

    def _stop(self) -> None:
        self.should_exit = True


def run_service(build: Callable[[S], Service[Any]], settings: S) -> None:
    """Logs and traces first, then the service, then serve until SIGTERM/SIGINT."""
    bootstrap(settings)
    service = build(settings)
    try:
        if not service.has_http:
            asyncio.run(run_headless(service))
            return
        _serve(service, settings)
    finally:
        run_process_exit_hooks()


def _serve(service: Service[Any], settings: ServiceSettings) -> None:
    config = uvicorn.Config(
        service.app,
        host=settings.host,
        port=settings.port,
        access_log=False,
        log_config=None,
        timeout_graceful_shutdown=int(settings.shutdown_timeout_seconds),
    )
    DrainingServer(config, service, settings.drain_seconds).run()


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
        freeze_startup_heap()
        try:
            await stop.wait()
        finally:
            await service.stop()
    finally:
        for sig in installed:
            loop.remove_signal_handler(sig)
