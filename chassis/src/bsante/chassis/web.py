"""HTTP conventions every app of the platform follows, installed by one call.

`install_web_conventions(app, settings)`: no trailing-slash redirects (they are built from the
Host header), 415 for a non-JSON body on a JSON route, 304 for an `If-None-Match` naming the
current ETag, CORS for the configured origins, security headers on every answer, offline /docs
and /redoc, and the OpenAPI document rewritten by `bsante.chassis.openapi`.
"""

from __future__ import annotations

import ipaddress

from fastapi import FastAPI, params
from fastapi.routing import APIRoute
from starlette.middleware.cors import CORSMiddleware
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from bsante.chassis.docs import install_offline_docs
from bsante.chassis.errors import problem
from bsante.chassis.http import Network, parse_networks
from bsante.chassis.openapi import api_routes, finalize_openapi
from bsante.chassis.settings import ServiceSettings

BODY_METHODS = {"POST", "PUT", "PATCH", "DELETE"}
CORS_ALLOWED_HEADERS = [
    "Authorization",
    "Content-Type",
    "If-Match",
    "If-None-Match",
    "X-Structure-Id",
    "X-Correlation-Id",
    "X-Request-Id",
]
CORS_EXPOSED_HEADERS = ["ETag", "Location", "Retry-After", "X-Correlation-Id", "X-Request-Id"]


def is_json_media_type(content_type: str) -> bool:
    media = content_type.split(";", 1)[0].strip().lower()
    return media == "application/json" or (
        media.startswith("application/") and media.endswith("+json")
    )


def _json_body_route(routes: list[APIRoute], scope: Scope) -> bool:
    for route in routes:
        match, _ = route.matches(scope)
        if match == Match.FULL:
            # A form or file upload (multipart) reads no JSON.
            field = route.body_field
            return field is not None and not isinstance(field.field_info, params.Form)
    return False


class JsonBodyMiddleware:
    """415 when a route that reads JSON receives a body of another media type.

    FastAPI would otherwise read it as a JSON value and answer a confusing 422.
    A body without Content-Type is read as JSON, as FastAPI does.
    """

    def __init__(self, app: ASGIApp, *, fastapi_app: FastAPI) -> None:
        self.app = app
        self.fastapi_app = fastapi_app
        self._routes: list[APIRoute] | None = None

    def routes(self) -> list[APIRoute]:
        # Read once the app serves: every route is included by then.
        if self._routes is None:
            self._routes = api_routes(self.fastapi_app)
        return self._routes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] in BODY_METHODS:
            headers = dict(scope["headers"])
            content_type = headers.get(b"content-type", b"").decode("latin-1")
            has_body = (
                headers.get(b"content-length", b"0") != b"0" or b"transfer-encoding" in headers
            )
            if (
                content_type
                and has_body
                and not is_json_media_type(content_type)
                and _json_body_route(self.routes(), scope)
            ):
                response = problem(
                    415,
                    "The request body must be JSON (Content-Type: application/json)",
                    kind="unsupported-media-type",
                    errors=[{"field": "Content-Type", "message": "expected application/json"}],
                )
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


def _etags(value: str) -> list[str]:
    return [tag.strip().removeprefix("W/") for tag in value.split(",") if tag.strip()]


class ConditionalGetMiddleware:
    """304 Not Modified when a GET's `If-None-Match` names the ETag the response carries.

    The route still runs (its audit record is written: the caller saw the data before).
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in ("GET", "HEAD"):
            await self.app(scope, receive, send)
            return
        wanted = dict(scope["headers"]).get(b"if-none-match")
        if wanted is None:
            await self.app(scope, receive, send)
            return
        tags = _etags(wanted.decode("latin-1"))
        not_modified = False

        async def send_conditionally(message: Message) -> None:
            nonlocal not_modified
            if message["type"] == "http.response.start" and message["status"] == 200:
                headers = message.get("headers", [])
                current = next(
                    (v.decode("latin-1") for k, v in headers if k.lower() == b"etag"), None
                )
                if current is not None and ("*" in tags or current.removeprefix("W/") in tags):
                    not_modified = True
                    kept = [
                        (k, v)
                        for k, v in headers
                        if k.lower() not in (b"content-length", b"content-type")
                    ]
                    await send({"type": "http.response.start", "status": 304, "headers": kept})
                    await send({"type": "http.response.body", "body": b"", "more_body": False})
                    return
            if not_modified:
                return  # the body of the 200 the route produced is not sent
            await send(message)

        await self.app(scope, receive, send_conditionally)


HSTS = b"max-age=31536000; includeSubDomains"
# JSON and files need nothing from a browser; a JSON answer opened as a page runs nothing.
CSP_DATA = b"default-src 'none'; frame-ancestors 'none'"
# The HTML pages (offline /docs and /redoc, the SLA dashboards, the PSC simulator's login page,
# document previews) use inline scripts and styles: they are never framed and load no plugin
# or foreign base, but their scripts are not restricted (see docs/threat-model.md).
CSP_HTML = b"frame-ancestors 'none'; object-src 'none'; base-uri 'none'"
SECURITY_HEADERS = (
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
)


def _over_tls(scope: Scope, trusted: tuple[Network, ...]) -> bool:
    """The request came over TLS: to this server, or to a trusted proxy that says so."""
    if scope.get("scheme") in ("https", "wss"):
        return True
    client = scope.get("client")
    if not client or not trusted:
        return False
    forwarded = dict(scope["headers"]).get(b"x-forwarded-proto", b"")
    if forwarded.split(b",")[0].strip().lower() != b"https":
        return False
    try:
        peer = ipaddress.ip_address(client[0])
    except ValueError:
        return False
    return any(peer in network for network in trusted)


class SecurityHeadersMiddleware:
    """`X-Content-Type-Options`, `Referrer-Policy`, a `Content-Security-Policy` refusing
    framing, and HSTS when the request came over TLS, on every answer (errors included).

    A header an inner app (a mounted service, a proxied one) already set is kept, so the
    embedded gateway's pass-through adds nothing twice.
    """

    def __init__(self, app: ASGIApp, *, trusted_proxies: tuple[Network, ...] = ()) -> None:
        self.app = app
        self.trusted_proxies = trusted_proxies

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        tls = _over_tls(scope, self.trusted_proxies)

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {name.lower(): value for name, value in headers}
                media = present.get(b"content-type", b"").split(b";", 1)[0].strip().lower()
                wanted = [
                    *SECURITY_HEADERS,
                    (b"content-security-policy", CSP_HTML if media == b"text/html" else CSP_DATA),
                ]
                if tls:
                    wanted.append((b"strict-transport-security", HSTS))
                headers.extend((name, value) for name, value in wanted if name not in present)
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)


def with_security_headers(app: ASGIApp, trusted_proxies: list[str]) -> ASGIApp:
    """`app` answering with the security headers (the embedded gateway's pass-through)."""
    return SecurityHeadersMiddleware(app, trusted_proxies=parse_networks(trusted_proxies))


CORS_OPTIONS: dict[str, object] = {
    "allow_methods": ["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"],
    "allow_headers": CORS_ALLOWED_HEADERS,
    "expose_headers": CORS_EXPOSED_HEADERS,
    "allow_credentials": False,
    "max_age": 600,
}


def with_cors(app: ASGIApp, origins: list[str]) -> ASGIApp:
    """`app` behind CORS for the listed origins (the embedded gateway's pass-through)."""
    if not origins:
        return app
    return CORSMiddleware(app, allow_origins=origins, **CORS_OPTIONS)  # type: ignore[arg-type]


def install_cors(app: FastAPI, origins: list[str]) -> None:
    """CORS for the listed origins (none: no CORS headers at all). Tokens are bearer headers,
    never cookies, so credentials are not allowed."""
    if not origins:
        return
    app.add_middleware(
        CORSMiddleware,
        allow_origins=origins,
        allow_methods=["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"],
        allow_headers=CORS_ALLOWED_HEADERS,
        expose_headers=CORS_EXPOSED_HEADERS,
        allow_credentials=False,
        max_age=600,
    )


def install_web_conventions(
    app: FastAPI, settings: ServiceSettings, *, openapi_url: str | None = "/openapi.json"
) -> None:
    """Call once the routes are included, before the app serves."""
    app.router.redirect_slashes = False
    app.add_middleware(JsonBodyMiddleware, fastapi_app=app)
    app.add_middleware(ConditionalGetMiddleware)
    finalize_openapi(app)
    if openapi_url is not None:
        install_offline_docs(app, openapi_url=openapi_url, title=app.title)
    app.add_middleware(
        SecurityHeadersMiddleware, trusted_proxies=parse_networks(settings.trusted_proxies)
    )
    # Last: the outermost middleware, so every answer (errors included) carries CORS headers.
    install_cors(app, list(settings.cors_origins))
