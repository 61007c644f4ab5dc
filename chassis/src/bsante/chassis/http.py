"""ASGI middleware shared by the services: request context, body size limit, access log."""

from __future__ import annotations

import ipaddress
import re
import time
from collections.abc import Sequence
from typing import Any

import structlog
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from bsante.chassis import context
from bsante.chassis.context import new_id
from bsante.chassis.errors import problem
from bsante.chassis.metrics import HTTP_LATENCY, HTTP_REQUESTS

log = structlog.get_logger("bsante.http")

MAX_BODY_BYTES = "x-max-body-bytes"


def body_limit(max_bytes: int) -> dict[str, Any]:
    """`openapi_extra` of a route whose body may exceed the JSON limit (binary uploads), e.g.
    `@router.put(..., openapi_extra=body_limit(20 * 1024 * 1024))`; the OpenAPI shows it too."""
    return {MAX_BODY_BYTES: max_bytes}


def _route_limit(scope: Scope, default: int) -> int:
    extra = getattr(scope.get("route"), "openapi_extra", None) or {}
    limit = extra.get(MAX_BODY_BYTES)
    return limit if isinstance(limit, int) else default


# What a caller may name its request with; anything else is replaced by a fresh id before it
# is echoed or logged (a 50 kB or multi-line id would flood logs and responses).
REQUEST_ID = re.compile(r"[A-Za-z0-9._:\-]{1,128}")
MAX_FORWARDED_CHARS = 1_000
MAX_FORWARDED_HOPS = 20

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def caller_id(value: str | None) -> str | None:
    """The caller's correlation or request id if it is well-formed, else None."""
    return value if value is not None and REQUEST_ID.fullmatch(value) else None


def parse_networks(entries: Sequence[str]) -> tuple[Network, ...]:
    return tuple(ipaddress.ip_network(entry.strip(), strict=False) for entry in entries)


def _ip(value: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(value.strip())
    except ValueError:
        return None


def client_address(peer: str, forwarded_for: str | None, trusted: tuple[Network, ...]) -> str:
    """The caller's address: X-Forwarded-For is believed only from a trusted proxy.

    Walking the list from the right, the first address that is not a trusted proxy is the
    client; a malformed or oversized header leaves the direct peer.
    """
    if not forwarded_for or not trusted:
        return peer  # the usual case, without parsing the peer's address
    peer_ip = _ip(peer)
    if peer_ip is None or not any(peer_ip in n for n in trusted):
        return peer
    if len(forwarded_for) > MAX_FORWARDED_CHARS:
        return peer
    hops = [h for h in forwarded_for.split(",") if h.strip()][-MAX_FORWARDED_HOPS:]
    address = peer_ip
    for hop in reversed(hops):
        ip = _ip(hop)
        if ip is None:
            break
        address = ip
        if not any(ip in n for n in trusted):
            break
    return str(address)


class BodyTooLarge(HTTPException):
    """Raised from `receive`: an HTTPException, so FastAPI's body parsing lets it through."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"The request body exceeds {limit} bytes")
        self.limit = limit


_WANTED = frozenset({b"x-correlation-id", b"x-request-id", b"x-forwarded-for", b"content-length"})


def _wanted_headers(scope: Scope) -> dict[str, str]:
    """The few request headers the middleware reads (decoding all of them costs on each call)."""
    return {
        name.decode("latin-1"): value.decode("latin-1")
        for name, value in scope["headers"]
        if name in _WANTED
    }


class RequestContextMiddleware:
    """Correlation and request ids, client address, body size limit, metrics, access log."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        service: str,
        max_body_bytes: int,
        trusted_proxies: Sequence[str] = (),
        record: bool = True,
    ) -> None:
        self.app = app
        self.service = service
        self.max_body_bytes = max_body_bytes
        # False where the app inside records the request itself (the embedded gateway's
        # pass-through to a mounted service): one access log line and one metric per request.
        self.record = record
        self.trusted_proxies = parse_networks(trusted_proxies)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = _wanted_headers(scope)
        # Nested apps (the embedded gateway mounts the services) keep the outer request's ids.
        cid = context.correlation_id.get() or caller_id(headers.get("x-correlation-id")) or new_id()
        rid = context.request_id.get() or caller_id(headers.get("x-request-id")) or new_id()
        client = scope.get("client")
        address = context.client_address.get() or client_address(
            client[0] if client else "", headers.get("x-forwarded-for"), self.trusted_proxies
        )
        tokens = (
            context.correlation_id.set(cid),
            context.request_id.set(rid),
            context.client_address.set(address),
        )
        declared = headers.get("content-length", "")
        start = time.perf_counter()
        status = 500
        received = 0
        limit: int | None = None

        async def limited_receive() -> Message:
            nonlocal received, limit
            if limit is None:
                # The body is read after routing: the route may allow more than the default.
                limit = _route_limit(scope, self.max_body_bytes)
                if declared.isdigit() and int(declared) > limit:
                    raise BodyTooLarge(limit)
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge(limit)
            return message

        response_started = False

        async def send_with_ids(message: Message) -> None:
            nonlocal status, response_started
            if message["type"] == "http.response.start":
                response_started = True
                status = message["status"]
                present = {name.lower() for name, _ in message.get("headers", [])}
                extra = [
                    (name, value.encode("latin-1"))
                    for name, value in ((b"x-correlation-id", cid), (b"x-request-id", rid))
                    if name not in present  # a mounted app already set them
                ]
                message["headers"] = [*message.get("headers", []), *extra]
            await send(message)

        try:
            await self.app(scope, limited_receive, send_with_ids)
        except BodyTooLarge as error:
            status = 413
            if not response_started:
                await self._too_large(scope, receive, send, error.limit)
        finally:
            self._record(scope, status, start)
            self._reset(tokens)

    def _reset(self, tokens: tuple[Any, Any, Any]) -> None:
        context.correlation_id.reset(tokens[0])
        context.request_id.reset(tokens[1])
        context.client_address.reset(tokens[2])

    async def _too_large(self, scope: Scope, receive: Receive, send: Send, limit: int) -> None:
        response = problem(413, f"The request body exceeds {limit} bytes", kind="body-too-large")
        await response(scope, receive, send)

    def _record(self, scope: Scope, status: int, start: float) -> None:
        if not self.record:
            return
        route = scope.get("route")
        template = getattr(route, "path", None) or "unmatched"
        elapsed = time.perf_counter() - start
        HTTP_REQUESTS.labels(self.service, scope["method"], template, str(status)).inc()
        HTTP_LATENCY.labels(self.service, template).observe(elapsed)
        # The route template, never the query string: queries may carry names.
        log.info(
            "http_request",
            service=self.service,
            method=scope["method"],
            route=template,
            status=status,
            duration_ms=round(elapsed * 1000, 1),
        )
