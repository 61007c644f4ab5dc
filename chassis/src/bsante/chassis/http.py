"""ASGI middleware shared by the services: request context, body size limit, access log."""

from __future__ import annotations

import ipaddress
import re
import time
import uuid
from collections.abc import Sequence
from typing import Any

import structlog
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from bsante.chassis import context
from bsante.chassis.errors import problem
from bsante.chassis.metrics import HTTP_LATENCY, HTTP_REQUESTS

log = structlog.get_logger("bsante.http")

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
    peer_ip = _ip(peer)
    if not forwarded_for or peer_ip is None or not any(peer_ip in n for n in trusted):
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


class RequestContextMiddleware:
    """Correlation and request ids, client address, body size limit, metrics, access log."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        service: str,
        max_body_bytes: int,
        trusted_proxies: Sequence[str] = (),
    ) -> None:
        self.app = app
        self.service = service
        self.max_body_bytes = max_body_bytes
        self.trusted_proxies = parse_networks(trusted_proxies)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        # Nested apps (the embedded gateway mounts the services) keep the outer request's ids.
        cid = (
            context.correlation_id.get()
            or caller_id(headers.get("x-correlation-id"))
            or str(uuid.uuid4())
        )
        rid = (
            context.request_id.get() or caller_id(headers.get("x-request-id")) or str(uuid.uuid4())
        )
        client = scope.get("client")
        address = context.client_address.get() or client_address(
            client[0] if client else "", headers.get("x-forwarded-for"), self.trusted_proxies
        )
        tokens = (
            context.correlation_id.set(cid),
            context.request_id.set(rid),
            context.client_address.set(address),
        )
        declared = headers.get("content-length")
        start = time.perf_counter()
        status = 500
        if declared and declared.isdigit() and int(declared) > self.max_body_bytes:
            status = 413
            await self._too_large(scope, receive, send)
            self._record(scope, status, start)
            self._reset(tokens)
            return

        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body_bytes:
                    raise BodyTooLarge(self.max_body_bytes)
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
        except BodyTooLarge:
            status = 413
            if not response_started:
                await self._too_large(scope, receive, send)
        finally:
            self._record(scope, status, start)
            self._reset(tokens)

    def _reset(self, tokens: tuple[Any, Any, Any]) -> None:
        context.correlation_id.reset(tokens[0])
        context.request_id.reset(tokens[1])
        context.client_address.reset(tokens[2])

    async def _too_large(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = problem(
            413, f"The request body exceeds {self.max_body_bytes} bytes", kind="body-too-large"
        )
        await response(scope, receive, send)

    def _record(self, scope: Scope, status: int, start: float) -> None:
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
