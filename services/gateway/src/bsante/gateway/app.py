"""The gateway app, in both topologies.

Embedded: every service's app is mounted in-process under /api/<service>.
Distributed: /api/<service>/... is reverse-proxied to the service's URL.
The public paths are the same in both.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from importlib import resources
from typing import Any

import httpx
from fastapi import FastAPI, Request
from starlette.background import BackgroundTask
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from bsante.chassis import context
from bsante.chassis.auth import JwksSource, TokenVerifier, http_jwks_source
from bsante.chassis.errors import install_problem_handlers, problem
from bsante.chassis.http import RequestContextMiddleware
from bsante.chassis.metrics import metrics_endpoint
from bsante.chassis.service import Service
from bsante.chassis.tracing import inject_headers, instrument_app
from bsante.chassis.web import install_web_conventions, with_cors, with_security_headers
from bsante.gateway import openapi
from bsante.gateway.events import EventFeed, EventHub, install_stream
from bsante.gateway.settings import GatewaySettings

TITLE = "Bureautique Santé API"
VERSION = "0.1.0"
HOP_BY_HOP = {
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailers",
    "transfer-encoding",
    "upgrade",
    "host",
    "content-length",
}


def asyncapi_document() -> dict[str, Any]:
    text = resources.files("bsante.contracts").joinpath("asyncapi.json").read_text()
    document: dict[str, Any] = json.loads(text)
    return document


def _base_app(
    settings: GatewaySettings,
    lifespan: Callable[[FastAPI], Any] | None,
    openapi_source: Callable[[], Awaitable[dict[str, dict[str, Any]]]],
    readiness: Callable[[], Awaitable[dict[str, bool]]],
    cls: type[FastAPI] = FastAPI,
    services_readiness: Callable[[], Awaitable[dict[str, bool]]] | None = None,
) -> FastAPI:
    app = cls(
        title=TITLE,
        version=VERSION,
        lifespan=lifespan,
        openapi_url=None,
        docs_url=None,
        redoc_url=None,
    )
    install_problem_handlers(app)
    app.add_middleware(
        RequestContextMiddleware,
        service="gateway",
        max_body_bytes=settings.max_body_bytes,
        trusted_proxies=settings.trusted_proxies,
    )

    @app.get("/health/live", tags=["health"])
    async def live() -> dict[str, str]:
        return {"status": "live", "service": "gateway"}

    async def answer(checks: dict[str, bool]) -> Response:
        if all(checks.values()):
            return JSONResponse({"status": "ready", "service": "gateway", "checks": checks})
        failing = sorted(name for name, ok in checks.items() if not ok)
        return problem(
            503,
            "Not ready: " + ", ".join(failing),
            kind="not-ready",
            errors=[{"field": name, "message": "not ready"} for name in failing],
        )

    @app.get("/health/ready", tags=["health"])
    async def ready() -> Response:
        return await answer(await readiness())

    if services_readiness is not None:
        aggregate = services_readiness

        @app.get("/health/services", tags=["health"])
        async def services_ready() -> Response:
            """Every service behind the gateway, as seen from it (503 naming those not ready)."""
            return await answer(await aggregate())

    @app.get("/openapi.json", include_in_schema=False)
    async def openapi_json() -> JSONResponse:
        return JSONResponse(openapi.merge(TITLE, VERSION, await openapi_source()))

    @app.get("/asyncapi.json", include_in_schema=False)
    async def asyncapi_json() -> JSONResponse:
        return JSONResponse(asyncapi_document())

    app.add_route("/metrics", metrics_endpoint, include_in_schema=False)
    # Offline /docs and /redoc over the merged document, CORS, no slash redirects.
    install_web_conventions(app, settings)
    return app


class EmbeddedGateway(FastAPI):
    """The embedded gateway: `/api/<service>/...` goes straight to the service's own app.

    The service app has its own middleware stack (ids, body limit, metrics, access log,
    OpenTelemetry server span); running the gateway's FastAPI stack around it as well would
    double that work on every request. The pass-through keeps the gateway's ids, its body
    limit, its security headers and CORS; everything else (health, OpenAPI, docs, metrics,
    unknown paths) is the gateway's.
    """

    def route_to_services(self, settings: GatewaySettings, apps: dict[str, ASGIApp]) -> None:
        self._service_apps = {f"/api/{name}": app for name, app in apps.items()}
        self._limits = {
            prefix: with_cors(
                with_security_headers(
                    RequestContextMiddleware(
                        app,
                        service="gateway",
                        max_body_bytes=settings.max_body_bytes,
                        trusted_proxies=settings.trusted_proxies,
                        record=False,
                    ),
                    settings.trusted_proxies,
                ),
                settings.cors_origins,
            )
            for prefix, app in self._service_apps.items()
        }

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            path: str = scope["path"]
            prefix = path[: path.find("/", 5)] if path.count("/") > 2 else path
            target = getattr(self, "_limits", {}).get(prefix)
            if target is not None:
                root = scope.get("root_path", "") + prefix
                # In place, as Starlette's Mount does: the gateway's body limit then sees the
                # route the service matched (a binary upload route sets its own limit).
                scope["root_path"] = root
                scope["app_root_path"] = root
                await target(scope, receive, send)
                return
        await super().__call__(scope, receive, send)


def build_embedded(
    settings: GatewaySettings,
    services: dict[str, Service[Any]],
    *,
    jwks: JwksSource | None = None,
    bus_url: str | None = None,
    on_started: Callable[[], None] | None = None,
) -> FastAPI:
    """One process: the gateway's lifespan starts and stops every service it mounts.

    With the platform's token keys and event log (`jwks`, `bus_url`), it also serves the live
    event stream (/events). `on_started()` runs once everything has started."""
    feed = (
        EventFeed(EventHub(settings.stream_buffer), bus_url, settings.stream_group)
        if settings.stream_enabled and jwks is not None and bus_url is not None
        else None
    )

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        started: list[Service[Any]] = []
        try:
            for svc in services.values():
                await svc.start()
                started.append(svc)
            if feed is not None:
                await feed.start()
            if on_started is not None:
                on_started()
            yield
        finally:
            if feed is not None:
                await feed.stop()
            for svc in reversed(started):
                await svc.stop()

    async def documents() -> dict[str, dict[str, Any]]:
        return {name: svc.app.openapi() for name, svc in services.items() if svc.has_http}

    async def readiness() -> dict[str, bool]:
        checks: dict[str, bool] = {}
        for name, svc in services.items():
            reasons = await svc.readiness()
            checks[name] = all(reason is None for reason in reasons.values())
            # Name what fails: "patient task:outbox-relay".
            checks.update({f"{name} {check}": False for check, r in reasons.items() if r})
        return checks

    app = _base_app(settings, lifespan, documents, readiness, cls=EmbeddedGateway)
    assert isinstance(app, EmbeddedGateway)
    if feed is not None and jwks is not None:
        verifier = TokenVerifier(
            jwks, issuer=settings.token_issuer, audience=settings.token_audience
        )
        install_stream(app, feed.hub, verifier)
        app.state.event_hub = feed.hub
    for name, svc in services.items():
        if svc.has_http:
            app.mount(f"/api/{name}", svc.app)  # for route listings; requests take the fast path
    app.route_to_services(
        settings, {name: svc.app for name, svc in services.items() if svc.has_http}
    )
    instrument_app(app)
    return app


async def _relay(upstream: httpx.Response) -> AsyncIterator[bytes]:
    # Raw bytes: the body keeps its content-encoding, which the kept headers still announce.
    try:
        async for chunk in upstream.aiter_raw():
            yield chunk
    except httpx.HTTPError:
        return  # the service went away mid-body: the client sees a cut response


def build_proxy(settings: GatewaySettings) -> FastAPI:
    """Distributed: forward /api/<service>/<path> to the service's base URL."""
    client = httpx.AsyncClient(timeout=settings.proxy_timeout_seconds)
    feed = (
        EventFeed(EventHub(settings.stream_buffer), settings.bus_url, settings.stream_group)
        if settings.stream_enabled
        else None
    )

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        try:
            if feed is not None:
                await feed.start()
            yield
        finally:
            if feed is not None:
                await feed.stop()
            await client.aclose()

    async def fetch_json(url: str) -> dict[str, Any] | None:
        try:
            response = await client.get(url, timeout=5.0)
            if response.status_code == 200:
                result: dict[str, Any] = response.json()
                return result
        except httpx.HTTPError:
            pass
        return None

    async def documents() -> dict[str, dict[str, Any]]:
        names = list(settings.services)
        found = await asyncio.gather(
            *(fetch_json(settings.services[n].rstrip("/") + "/openapi.json") for n in names)
        )
        return {n: doc for n, doc in zip(names, found, strict=True) if doc is not None}

    async def services_readiness() -> dict[str, bool]:
        names = list(settings.services)
        found = await asyncio.gather(
            *(fetch_json(settings.services[n].rstrip("/") + "/health/ready") for n in names)
        )
        return {n: doc is not None for n, doc in zip(names, found, strict=True)}

    async def readiness() -> dict[str, bool]:
        # The gateway's own: a service that is down answers 503 on its own routes, and must not
        # take every gateway replica out of its Kubernetes Service (the aggregate is
        # /health/services).
        return {"gateway": not client.is_closed}

    app = _base_app(settings, lifespan, documents, readiness, services_readiness=services_readiness)
    if feed is not None:
        verifier = TokenVerifier(
            http_jwks_source(settings.jwks_url),
            issuer=settings.token_issuer,
            audience=settings.token_audience,
        )
        install_stream(app, feed.hub, verifier)

    @app.api_route(
        "/api/{service}/{path:path}",
        methods=["GET", "POST", "PUT", "PATCH", "DELETE"],
        include_in_schema=False,
    )
    async def forward(service: str, path: str, request: Request) -> Response:
        base = settings.services.get(service)
        if base is None:
            return problem(404, f"No service named {service!r}")
        headers = {k: v for k, v in request.headers.items() if k.lower() not in HOP_BY_HOP}
        # The services trust the gateway (their TRUSTED_PROXIES): hand them the client address
        # the gateway validated and the correlation id it kept, never the caller's own values.
        headers["x-forwarded-for"] = context.client_address.get() or ""
        headers["x-correlation-id"] = context.current_correlation_id()
        headers = inject_headers(headers)
        outgoing = client.build_request(
            request.method,
            f"{base.rstrip('/')}/{path}",
            params=request.query_params,
            headers=headers,
            content=await request.body(),
        )
        try:
            # Streamed both ways past the headers: a long download or an event stream is
            # passed on as it comes, never held whole in the gateway.
            upstream = await client.send(outgoing, stream=True)
        except httpx.HTTPError:
            return problem(503, f"The {service} service is unreachable", kind="upstream-down")
        kept = {k: v for k, v in upstream.headers.items() if k.lower() not in HOP_BY_HOP}
        return StreamingResponse(
            _relay(upstream),
            status_code=upstream.status_code,
            headers=kept,
            background=BackgroundTask(upstream.aclose),
        )

    instrument_app(app)
    return app
