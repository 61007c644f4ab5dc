"""Composition of one service: its settings and the parts it uses among HTTP app, store, bus,
messaging, token verification and supervised background tasks.

The same object runs alone (its app's lifespan, or `run_service`, starts it) or inside the
embedded platform (the platform starts it and mounts its app under the gateway). Every part is
optional: a bus-only worker has no HTTP app, a workstation agent has neither store nor app.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from datetime import timedelta
from typing import Any, Generic, Literal, NoReturn

import structlog
from fastapi import APIRouter, FastAPI
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from typing_extensions import TypeVar

from bsante.chassis.auth import JwksSource, TokenVerifier, http_jwks_source
from bsante.chassis.blobs import BlobStore
from bsante.chassis.blobs.factory import blob_store_from_url
from bsante.chassis.bus import EventBus
from bsante.chassis.bus.factory import bus_from_url, kafka_security
from bsante.chassis.errors import Unauthorized, install_problem_handlers, problem
from bsante.chassis.http import RequestContextMiddleware
from bsante.chassis.jobs import INDEXES as JOB_INDEXES
from bsante.chassis.jobs import BreakerPolicy, JobKind, JobWorker
from bsante.chassis.jobs.api import jobs_router
from bsante.chassis.logging import configure_logging
from bsante.chassis.messaging import EventRouter, Messaging, RelayPolicy
from bsante.chassis.metrics import metrics_endpoint
from bsante.chassis.ops import outbox_ops_router
from bsante.chassis.settings import ServiceSettings
from bsante.chassis.store import Index, Store
from bsante.chassis.store.factory import store_from_url
from bsante.chassis.tasks import LongRunning, Periodic, SupervisedTask, Supervisor
from bsante.chassis.tracing import configure_tracing, instrument_app
from bsante.chassis.web import install_web_conventions

# The default lets code that reads only the common settings write plain `Service`.
S = TypeVar("S", bound=ServiceSettings, default=ServiceSettings)
Hook = Callable[["Service[S]"], Awaitable[None]]
# An extra readiness check of a part the service owns (a blob store, a remote's breaker).
Check = Callable[[], Awaitable[bool]]

RELAY_TASK = "outbox-relay"
PURGE_TASK = "retention-purge"
JOBS_TASK = "job-worker"
BLOB_GC_TASK = "blob-collector"


class MissingPart(RuntimeError):
    """A part the service was built without (no store, no bus, no HTTP app) was asked for."""


class _NoTokens:
    """Stands in for the verifier of a service built without token verification."""

    async def verify(self, token: str) -> NoReturn:
        raise Unauthorized("This service accepts no user tokens")


class Service(Generic[S]):
    """One service. `store`, `bus` and `jwks`: None builds the part from the settings, False
    means the service has none; `http=False` builds no FastAPI app. `indexes`: what the
    service's queries need, ensured when the store starts (the jobs' own too, with `jobs`)."""

    def __init__(
        self,
        settings: S,
        *,
        title: str = "",
        routers: Sequence[APIRouter] = (),
        http: bool = True,
        events: EventRouter | None = None,
        tasks: Sequence[SupervisedTask] = (),
        blobs: BlobStore | bool = False,
        jobs: Sequence[JobKind[Any, Any]] = (),
        job_breakers: Mapping[str, BreakerPolicy] | None = None,
        jwks: JwksSource | Literal[False] | None = None,
        store: Store | Literal[False] | None = None,
        indexes: Sequence[Index] = (),
        bus: EventBus | Literal[False] | None = None,
        on_start: Sequence[Hook[S]] = (),
        on_stop: Sequence[Hook[S]] = (),
        checks: Mapping[str, Check] | None = None,
        standalone: bool = False,
        state: Mapping[str, Any] | None = None,
    ) -> None:
        self.settings: S = settings
        self.name = settings.service_name
        self.log = structlog.get_logger(service=self.name)
        if store is None:
            database = settings.store_database or self.name.replace("-", "_")
            store = store_from_url(settings.store_url, database=database)
        if bus is None:
            bus = bus_from_url(
                settings.bus_url, client_id=self.name, security=kafka_security(settings)
            )
        self._store: Store | None = None if store is False else store
        self._bus: EventBus | None = None if bus is False else bus
        self._messaging: Messaging | None = None
        if self._store is not None and self._bus is not None:
            self._messaging = Messaging(
                self.name,
                self._store,
                self._bus,
                policy=RelayPolicy(
                    batch_size=settings.outbox_batch_size,
                    max_attempts=settings.outbox_max_attempts,
                    lease_ttl=settings.relay_lease_seconds,
                    retention=timedelta(days=settings.retention_days),
                ),
            )
        self.indexes = [*indexes, *(JOB_INDEXES if jobs else ())]
        if self.indexes and self._store is None:
            raise ValueError(f"{self.name} declares indexes: it needs a store")
        if events is not None and events.topics and self._messaging is None:
            raise ValueError(f"{self.name} consumes events: it needs a store and a bus")
        self.events = events
        self.verifier: TokenVerifier | None = None
        if jwks is not False:
            self.verifier = TokenVerifier(
                jwks or http_jwks_source(settings.jwks_url),
                issuer=settings.token_issuer,
                audience=settings.token_audience,
            )
        # Binary content (documents, attachments), only for the services that keep some.
        database = settings.store_database or self.name.replace("-", "_")
        self._blobs: BlobStore | None = (
            blobs
            if isinstance(blobs, BlobStore)
            else blob_store_from_url(settings.blob_url, database=database)
            if blobs
            else None
        )
        self.supervisor = Supervisor(self.name)
        # Set on SIGTERM by the runner: readiness fails while the pod is taken out of service.
        self.draining = False
        if self._blobs is not None:
            self.supervisor.add(
                Periodic(BLOB_GC_TASK, self._collect_blobs, every=settings.blob_gc_interval_seconds)
            )
        if self._messaging is not None:
            self.supervisor.add(LongRunning(RELAY_TASK, self._messaging.run_relay))
            self.supervisor.add(
                Periodic(PURGE_TASK, self._purge, every=settings.purge_interval_seconds)
            )
        # Durable jobs for external calls: a supervised worker, and ops routes to see them.
        self.jobs: JobWorker | None = None
        if jobs:
            if self._messaging is None:
                raise ValueError(f"{self.name} runs jobs: it needs a store and a bus")
            self.jobs = JobWorker(self._messaging, jobs, breakers=job_breakers)
            self.supervisor.add(LongRunning(JOBS_TASK, self.jobs.run_forever))
        for task in tasks:
            self.supervisor.add(task)
        self._on_start = list(on_start)
        self._on_stop = list(on_stop)
        self._checks = dict(checks or {})
        self._stack: AsyncExitStack | None = None
        if routers and not http:
            raise ValueError(f"{self.name} has routers but was built without an HTTP app")
        self._app = (
            self._build_app(title or self.name, routers, standalone, state or {}) if http else None
        )

    # -- parts --------------------------------------------------------------------------------

    @property
    def store(self) -> Store:
        if self._store is None:
            raise MissingPart(f"{self.name} was built without a store")
        return self._store

    @property
    def bus(self) -> EventBus:
        if self._bus is None:
            raise MissingPart(f"{self.name} was built without a bus")
        return self._bus

    @property
    def blobs(self) -> BlobStore:
        if self._blobs is None:
            raise MissingPart(f"{self.name} was built without a blob store")
        return self._blobs

    @property
    def messaging(self) -> Messaging:
        if self._messaging is None:
            raise MissingPart(f"{self.name} has no messaging (it needs a store and a bus)")
        return self._messaging

    @property
    def app(self) -> FastAPI:
        if self._app is None:
            raise MissingPart(f"{self.name} was built without an HTTP app")
        return self._app

    @property
    def has_store(self) -> bool:
        return self._store is not None

    @property
    def has_bus(self) -> bool:
        return self._bus is not None

    @property
    def has_http(self) -> bool:
        return self._app is not None

    @property
    def consumer_group(self) -> str:
        return f"bsante.{self.name}"

    def supervise(self, task: SupervisedTask) -> None:
        """Add a background task after construction (before `start`)."""
        self.supervisor.add(task)

    # -- lifecycle ----------------------------------------------------------------------------

    async def start(self) -> None:
        """Store (and its indexes), then bus (with its subscriptions), then start hooks, then
        the tasks.

        A failure part-way stops what had started, in reverse order.
        """
        async with AsyncExitStack() as stack:
            if self._store is not None:
                await self._store.start()
                stack.push_async_callback(self._store.close)
                await self._store.ensure_indexes(self.indexes)
            if self._blobs is not None:
                await self._blobs.start()
                stack.push_async_callback(self._blobs.close)
            if self._bus is not None:
                if self.events is not None and self.events.topics:
                    self.messaging.subscribe(self.events.topics, self.consumer_group, self.events)
                await self._bus.start()
                stack.push_async_callback(self._bus.stop)
            for hook in self._on_stop:
                stack.push_async_callback(hook, self)
            for hook in self._on_start:
                await hook(self)
            if self._messaging is not None:
                # After the relay stopped (callbacks run in reverse): hand its lease over.
                stack.push_async_callback(self._messaging.release_relay_lease)
            self.supervisor.start()
            stack.push_async_callback(self.supervisor.stop)
            self._stack = stack.pop_all()
        self.log.info("service_started", service=self.name)

    async def stop(self) -> None:
        """Tasks cancelled and awaited, stop hooks, then the bus, then the store."""
        stack, self._stack = self._stack, None
        if stack is not None:
            await stack.aclose()
        self.log.info("service_stopped", service=self.name)

    async def _purge(self) -> None:
        await self.messaging.purge_once()

    async def _collect_blobs(self) -> None:
        await self.blobs.collect_garbage()

    # -- health -------------------------------------------------------------------------------

    async def readiness(self) -> dict[str, str | None]:
        """Each check and why it fails (None when it passes): store, bus, the service's own
        checks, then each task."""
        checks: dict[str, str | None] = {}
        if self._store is not None:
            checks["store"] = None if await self._store.ping() else "unreachable"
        if self._bus is not None:
            checks["bus"] = None if await self._bus.ping() else "unreachable"
        if self._blobs is not None:
            checks["blobs"] = None if await self._blobs.ping() else "unreachable"
        for name, check in self._checks.items():
            checks[name] = None if await check() else "unreachable"
        failing = {status.name: status for status in self.supervisor.failing()}
        for spec in self.supervisor.tasks:
            status = failing.get(spec.name)
            checks[f"task:{spec.name}"] = (
                None
                if status is None
                else f"failed {status.consecutive_failures} times in a row"
                + (f" ({status.last_error})" if status.last_error else "")
            )
        return checks

    def _build_app(
        self, title: str, routers: Sequence[APIRouter], standalone: bool, state: Mapping[str, Any]
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
        app.state.verifier = self.verifier or _NoTokens()
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
        if self._messaging is not None:
            app.include_router(outbox_ops_router(self._messaging))
        if self.jobs is not None:
            app.include_router(jobs_router(self.store))
        install_web_conventions(app, self.settings)
        instrument_app(app)
        return app

    async def _live(self) -> dict[str, str]:
        return {"status": "live", "service": self.name}

    async def _ready(self, request: Request) -> Response:
        if self.draining:
            return problem(
                503,
                f"{self.name} is shutting down",
                kind="not-ready",
                errors=[{"field": "draining", "message": "SIGTERM received"}],
            )
        checks = await self.readiness()
        if all(reason is None for reason in checks.values()):
            return JSONResponse(
                {"status": "ready", "service": self.name, "checks": dict.fromkeys(checks, True)}
            )
        failing = {name: reason for name, reason in checks.items() if reason is not None}
        return problem(
            503,
            f"{self.name} is not ready: "
            + ", ".join(f"{name} {reason}" for name, reason in failing.items()),
            kind="not-ready",
            errors=[{"field": name, "message": reason} for name, reason in failing.items()],
        )


def service_settings(settings_type: type[S]) -> Callable[[Request], Awaitable[S]]:
    """FastAPI dependency: the running service's settings, typed as the service's own class."""

    async def dependency(request: Request) -> S:
        svc: Service[Any] = request.app.state.service
        settings = svc.settings
        if not isinstance(settings, settings_type):
            raise TypeError(f"{svc.name} runs with {type(settings).__name__}")
        return settings

    return dependency


def bootstrap(settings: ServiceSettings) -> None:
    """Process-wide setup for a service run alone: logs and traces."""
    configure_logging(settings.log_level)
    configure_tracing(settings.service_name, settings.otlp_endpoint)
