"""Service-to-service calls: a client-credentials token, cached and refreshed, and the HTTP client
that carries it to another service (in-process through an ASGI transport, or over the network).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote_plus

import httpx
import structlog

from bsante.chassis import context
from bsante.chassis.errors import DomainError
from bsante.chassis.settings import ServiceSettings

log = structlog.get_logger(__name__)

Clock = Callable[[], float]


class ServiceAuthUnavailable(DomainError):
    """This service could not obtain its own token: to its caller, an upstream is down."""

    status = 503
    kind = "upstream-down"


@dataclass(frozen=True)
class _Cached:
    token: str
    refresh_at: float


class ServiceTokenProvider:
    """Obtains this service's token from identity (client credentials) and caches it.

    The token is refreshed ahead of its expiry (a fifth of its lifetime, at most 60 s early),
    and one request at a time goes to identity however many callers need a token at once.
    """

    def __init__(
        self,
        token_url: str,
        client_id: str,
        client_secret: str,
        scopes: list[str],
        *,
        timeout: float = 5.0,
        transport: httpx.AsyncBaseTransport | None = None,
        clock: Clock = time.monotonic,
    ) -> None:
        self.token_url = token_url
        self.client_id = client_id
        self._secret = client_secret
        self.scopes = list(scopes)
        self._timeout = timeout
        self._transport = transport
        self._clock = clock
        self._cached: _Cached | None = None
        self._lock = asyncio.Lock()
        self.fetches = 0  # tokens obtained so far (tests, metrics)

    def _fresh(self) -> str | None:
        cached = self._cached
        if cached is not None and self._clock() < cached.refresh_at:
            return cached.token
        return None

    async def token(self) -> str:
        token = self._fresh()
        if token is not None:
            return token
        async with self._lock:
            # Whoever waited on the lock finds the token the first caller fetched.
            token = self._fresh()
            if token is None:
                token = await self._fetch()
            return token

    def invalidate(self, token: str) -> None:
        """The token was refused: forget it, unless a newer one already replaced it."""
        if self._cached is not None and self._cached.token == token:
            self._cached = None

    async def _fetch(self) -> str:
        started = self._clock()
        data = {"grant_type": "client_credentials"}
        if self.scopes:
            data["scope"] = " ".join(self.scopes)
        try:
            async with httpx.AsyncClient(transport=self._transport, timeout=self._timeout) as http:
                response = await http.post(
                    self.token_url,
                    data=data,
                    # RFC 6749 section 2.3.1: client id and secret are form-encoded, then Basic.
                    auth=httpx.BasicAuth(_form_encode(self.client_id), _form_encode(self._secret)),
                )
        except httpx.HTTPError as error:
            log.warning("service_token_unreachable", error_type=type(error).__name__)
            raise ServiceAuthUnavailable("The token service is unreachable") from None
        body = _json(response)
        token = body.get("access_token")
        expires_in = body.get("expires_in")
        if response.status_code != 200 or not isinstance(token, str):
            # The OAuth error code says what is wrong (invalid_client, invalid_scope...).
            log.warning(
                "service_token_refused",
                client_id=self.client_id,
                status=response.status_code,
                error=str(body.get("error", ""))[:50],
            )
            raise ServiceAuthUnavailable("The token service refused this service's credentials")
        lifetime = float(expires_in) if isinstance(expires_in, int | float) else 60.0
        self._cached = _Cached(token, started + lifetime - min(60.0, lifetime / 5))
        self.fetches += 1
        return token


def _form_encode(value: str) -> str:
    return quote_plus(value)


def _json(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


class ServiceClient:
    """Calls another service with this service's token; on a 401, refreshes once and retries.

    Correlation and request ids go along, and the end user's address, so that the other
    service's logs and access audit name the original request.
    """

    def __init__(
        self,
        base_url: str,
        tokens: ServiceTokenProvider,
        *,
        timeout: float = 5.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.tokens = tokens
        self._timeout = timeout
        self._transport = transport

    async def request(
        self,
        method: str,
        path: str,
        *,
        headers: Mapping[str, str] | None = None,
        params: Mapping[str, str] | None = None,
        json: Any = None,
    ) -> httpx.Response:
        """Raises `ServiceAuthUnavailable` without a token, `httpx.HTTPError` when unreachable."""
        sent = _context_headers()
        sent.update(headers or {})
        async with httpx.AsyncClient(transport=self._transport, timeout=self._timeout) as http:
            for attempt in range(2):
                token = await self.tokens.token()
                response = await http.request(
                    method,
                    f"{self.base_url}/{path.lstrip('/')}",
                    headers={**sent, "Authorization": f"Bearer {token}"},
                    params=params,
                    json=json,
                )
                if response.status_code != 401 or attempt:
                    return response
                # Expired early, or signed by a key the other side has not learnt yet.
                self.tokens.invalidate(token)
        raise AssertionError("unreachable")

    async def get(
        self,
        path: str,
        *,
        headers: Mapping[str, str] | None = None,
        params: Mapping[str, str] | None = None,
    ) -> httpx.Response:
        return await self.request("GET", path, headers=headers, params=params)


def _context_headers() -> dict[str, str]:
    headers: dict[str, str] = {}
    for name, var in (
        ("X-Correlation-Id", context.correlation_id),
        ("X-Request-Id", context.request_id),
        ("X-Forwarded-For", context.client_address),
    ):
        value = var.get()
        if value:
            headers[name] = value
    return headers


def client_secret(settings: ServiceSettings) -> str:
    """The service's client secret: the setting, else the file it names (a mounted secret)."""
    secret = settings.service_client_secret.get_secret_value()
    if not secret and settings.service_client_secret_file:
        secret = Path(settings.service_client_secret_file).read_text().strip()
    return secret


def token_provider(
    settings: ServiceSettings,
    scopes: list[str],
    *,
    transport: httpx.AsyncBaseTransport | None = None,
    clock: Clock = time.monotonic,
) -> ServiceTokenProvider:
    """The token provider a service's settings describe (client id defaults to its name)."""
    return ServiceTokenProvider(
        settings.service_token_url,
        settings.service_client_id or settings.service_name,
        client_secret(settings),
        scopes,
        transport=transport,
        clock=clock,
    )
