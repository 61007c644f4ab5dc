"""Composition of one service: store, bus, messaging, token verifier and its FastAPI app.

The same object runs alone (its app's lifespan starts it) or inside the embedded platform
(the platform starts it and mounts its app under the gateway).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import structlog
from fastapi import APIRouter, FastAPI
from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from bsante.chassis.auth import JwksSource, TokenVerifier, http_jwks_source
from bsante.chassis.bus import EventBus
from bsante.chassis.bus.factory import bus_from_url
from bsante.chassis.errors import install_problem_handlers, problem
from bsante.chassis.http import RequestContextMiddleware
from bsante.chassis.logging import configure_logging
from bsante.chassis.messaging import EventRouter, Messaging
from bsante.chassis.metrics import metrics_endpoint
from bsante.chassis.settings import ServiceSettings
from bsante.chassis.store import Store
from bsante.chassis.store.factory import store_from_url
from bsante.chassis.tracing import configure_tracing
from bsante.chassis.web import install_web_conventions

Hook = Callable[["Service"], Awaitable[None]]


class Service:
    def __init__(
        self,
        settings: ServiceSettings,
        *,
        title: str,
        routers: list[APIRouter],
        events: EventRouter | None = None,
        jwks: JwksSource | None = None,
        store: Store | None = None,
        bus: EventBus | None = None,
        on_start: list[Hook] | None = None,
        standalone: bool = False,
        state: dict[str, Any] | None = None,
    ) -> None:
        self.settings = settings
        self.name = settings.service_name
        self.log = structlog.get_logger(service=self.name)
        self.store = store or store_from_url(
            settings.store_url, database=settings.store_database or self.name.replace("-", "_")
        )
        self.bus = bus or bus_from_url(settings.bus_url, client_id=self.name)
        self.messaging = Messaging(self.name, self.store, self.bus)
        self.events = events
        self.verifier = TokenVerifier(
            jwks or http_jwks_source(settings.jwks_url),
            issuer=settings.token_issuer,
            audience=settings.token_audience,
        )
        self._on_start = on_start or []
        self.app = self._build_app(title, routers, standalone, state or {})

    @property
    def consumer_group(self) -> str:
        return f"bsante.{self.name}"

    async def start(self) -> None:
        await self.store.start()
        if self.events is not None and self.events.topics:
            self.messaging.subscribe(self.events.topics, self.consumer_group, self.events)
        await self.bus.start()
        await self.messaging.start_relay()
        for hook in self._on_start:
            await hook(self)
        self.log.info("service_started", service=self.name)

    async def stop(self) -> None:
        await self.messaging.stop_relay()
        await self.bus.stop()
        await self.store.close()
        self.log.info("service_stopped", service=self.name)

    def _build_app(
        self, title: str, routers: list[APIRouter], standalone: bool, state: dict[str, Any]
    ) -> FastAPI:
        @asynccontextmanager
        async def lifespan(_: FastAPI) -> AsyncIterator[None]:
            await self.start()
            try:
                yield
            finally:
                await self.stop()

        app = FastAPI(title=title, version="0.1.0", lifespan=lifespan if standalone else None)
        app.state.service = self
        app.state.verifier = self.verifier
        for key, value in state.items():
            setattr(app.state, key, value)
        install_problem_handlers(app)
        app.add_middleware(
            RequestContextMiddleware,
            service=self.name,
            max_body_bytes=self.settings.max_body_bytes,
            trusted_proxies=self.settings.trusted_proxies,
        )
        app.add_api_route("/health/live", self._live, methods=["GET"], tags=["health"])
        app.add_api_route("/health/ready", self._ready, methods=["GET"], tags=["health"])
        app.add_route("/metrics", metrics_endpoint, include_in_schema=False)
        for router in routers:
            app.include_router(router)
        install_web_conventions(app, self.settings)
        FastAPIInstrumentor.instrument_app(app, exclude_spans=["receive", "send"])
        return app

    async def _live(self) -> dict[str, str]:
        return {"status": "live", "service": self.name}

    async def _ready(self, request: Request) -> Response:
        checks = {"store": await self.store.ping(), "bus": await self.bus.ping()}
        if all(checks.values()):
            return JSONResponse({"status": "ready", "service": self.name, "checks": checks})
        failing = [name for name, ok in checks.items() if not ok]
        return problem(
            503,
            f"{self.name} is not ready: {', '.join(failing)} unreachable",
            kind="not-ready",
            errors=[{"field": name, "message": "unreachable"} for name in failing],
        )


def bootstrap(settings: ServiceSettings) -> None:
    """Process-wide setup for a service run alone: logs and traces."""
    configure_logging(settings.log_level)
    configure_tracing(settings.service_name, settings.otlp_endpoint)
