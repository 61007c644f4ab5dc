"""The service token provider caches, refreshes ahead of expiry, fetches once under concurrency;
the service client retries once on a 401 with a fresh token."""

from __future__ import annotations

import asyncio
import base64
from dataclasses import dataclass, field
from urllib.parse import parse_qsl

import httpx
import pytest

from bsante.chassis.service_client import (
    ServiceAuthUnavailable,
    ServiceClient,
    ServiceTokenProvider,
)


@dataclass
class Clock:
    now: float = 1000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class FakeTokenEndpoint:
    """identity's token endpoint: numbered tokens, each valid `expires_in` seconds."""

    expires_in: int = 100
    requests: list[httpx.Request] = field(default_factory=list)
    gate: asyncio.Event | None = None
    entered: asyncio.Event = field(default_factory=asyncio.Event)
    status: int = 200

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        self.entered.set()
        if self.gate is not None:
            await self.gate.wait()
        if self.status != 200:
            return httpx.Response(self.status, json={"error": "invalid_client"})
        body = {
            "access_token": f"t{len(self.requests)}",
            "token_type": "Bearer",
            "expires_in": self.expires_in,
            "scope": "patient:read",
        }
        return httpx.Response(200, json=body)

    def provider(self, clock: Clock | None = None) -> ServiceTokenProvider:
        return ServiceTokenProvider(
            "http://identity/oauth/token",
            "forms",
            "s3cret:+/=",
            ["patient:read"],
            transport=httpx.MockTransport(self),
            clock=clock or Clock(),
        )


async def test_the_token_request_is_a_client_credentials_grant_with_basic_auth() -> None:
    endpoint = FakeTokenEndpoint()
    assert await endpoint.provider().token() == "t1"
    request = endpoint.requests[0]
    assert request.method == "POST"
    assert request.headers["content-type"] == "application/x-www-form-urlencoded"
    form = dict(parse_qsl(request.content.decode()))
    assert form == {"grant_type": "client_credentials", "scope": "patient:read"}
    scheme, _, encoded = request.headers["authorization"].partition(" ")
    # RFC 6749 2.3.1: form-encoded before Basic, so ':' in the secret survives.
    assert scheme == "Basic"
    assert base64.b64decode(encoded).decode() == "forms:s3cret%3A%2B%2F%3D"


async def test_the_token_is_cached_then_refreshed_ahead_of_its_expiry() -> None:
    clock = Clock()
    endpoint = FakeTokenEndpoint(expires_in=100)
    provider = endpoint.provider(clock)
    assert await provider.token() == "t1"
    clock.now += 79  # refreshed a fifth of its lifetime early: at 80 s
    assert await provider.token() == "t1"
    assert len(endpoint.requests) == 1
    clock.now += 1
    assert await provider.token() == "t2"
    assert await provider.token() == "t2"
    assert len(endpoint.requests) == 2
    assert provider.fetches == 2


async def test_a_long_lived_token_is_refreshed_at_most_a_minute_early() -> None:
    clock = Clock()
    provider = FakeTokenEndpoint(expires_in=900).provider(clock)
    await provider.token()
    clock.now += 839
    assert await provider.token() == "t1"
    clock.now += 1
    assert await provider.token() == "t2"


async def test_concurrent_callers_share_one_token_request() -> None:
    endpoint = FakeTokenEndpoint(gate=asyncio.Event())
    provider = endpoint.provider()
    callers = [asyncio.create_task(provider.token()) for _ in range(20)]
    await endpoint.entered.wait()
    assert endpoint.gate is not None
    endpoint.gate.set()
    tokens = await asyncio.gather(*callers)
    assert set(tokens) == {"t1"}
    assert len(endpoint.requests) == 1


async def test_a_refused_or_unreachable_token_endpoint_is_an_upstream_failure() -> None:
    endpoint = FakeTokenEndpoint(status=401)
    with pytest.raises(ServiceAuthUnavailable) as refused:
        await endpoint.provider().token()
    assert refused.value.status == 503

    def unreachable(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    provider = ServiceTokenProvider(
        "http://identity/oauth/token", "forms", "s", [], transport=httpx.MockTransport(unreachable)
    )
    with pytest.raises(ServiceAuthUnavailable):
        await provider.token()


@dataclass
class FakePatientService:
    """Accepts only the tokens in `valid`; records the token of each request."""

    valid: set[str]
    seen: list[str] = field(default_factory=list)
    headers: list[httpx.Headers] = field(default_factory=list)

    def __call__(self, request: httpx.Request) -> httpx.Response:
        token = request.headers["authorization"].removeprefix("Bearer ")
        self.seen.append(token)
        self.headers.append(request.headers)
        if token not in self.valid:
            return httpx.Response(401, json={"detail": "expired"})
        return httpx.Response(200, json={"path": request.url.path})


async def test_a_401_refreshes_the_token_once_and_retries() -> None:
    endpoint = FakeTokenEndpoint()
    target = FakePatientService(valid={"t2"})
    client = ServiceClient(
        "http://patient/", endpoint.provider(), transport=httpx.MockTransport(target)
    )
    response = await client.get("/internal/patients/p1", headers={"X-On-Behalf-Of": "u1"})
    assert response.status_code == 200
    assert response.json() == {"path": "/internal/patients/p1"}
    assert target.seen == ["t1", "t2"]
    assert target.headers[-1]["x-on-behalf-of"] == "u1"
    # The new token is kept: the next call needs no token request.
    await client.get("internal/patients/p2")
    assert target.seen[-1] == "t2" and len(endpoint.requests) == 2


async def test_a_token_refused_twice_is_answered_not_retried_for_ever() -> None:
    endpoint = FakeTokenEndpoint()
    target = FakePatientService(valid=set())
    client = ServiceClient(
        "http://patient", endpoint.provider(), transport=httpx.MockTransport(target)
    )
    response = await client.get("internal/patients/p1")
    assert response.status_code == 401
    assert target.seen == ["t1", "t2"]
