"""The token endpoints are rate limited per client address (as well as the per-account lockout):
counted inside a write transaction, so concurrent requests cannot all pass; 429 problem+json
with Retry-After; the address is the audited one (X-Forwarded-For only from trusted proxies)."""

from __future__ import annotations

import asyncio
from collections import Counter

import httpx
from identity_kit import FakeClock  # type: ignore[import-not-found]
from kit import TILLEULS, Platform, api_routes  # type: ignore[import-not-found]

from bsante.identity.api.deps import address_rate_limit

TOKEN = "/api/identity/auth/token"
# Every route that hands out a token, with a request it accepts the shape of.
TOKEN_ROUTES: list[tuple[str, str, dict[str, object]]] = [
    ("POST", TOKEN, {"json": {"username": "x@y.demo", "password": "wrong"}}),
    ("POST", "/api/identity/auth/refresh", {"json": {"refresh_token": "not-a-token"}}),
    (
        "POST",
        "/api/identity/oauth/token",
        {"data": {"grant_type": "client_credentials", "client_id": "a", "client_secret": "b"}},
    ),
    (
        "POST",
        "/api/identity/auth/cps/token",
        {"json": {"nonce": "n", "certificate": "c", "signature": "s"}},
    ),
    ("GET", "/api/identity/auth/psc/callback", {"params": {"state": "s", "code": "c"}}),
]


def limit(platform: Platform, requests: int) -> None:
    platform.services["identity"].settings.address_limit_requests = requests


def other_address(platform: Platform, address: str) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=platform.client._transport.app, client=(address, 40000))
    return httpx.AsyncClient(transport=transport, base_url="http://platform")


def test_every_token_route_is_rate_limited(platform: Platform) -> None:
    token_routes = {
        path
        for path, _, dependant in api_routes(list(platform.services["identity"].app.routes))
        if path.endswith("/token") or path.endswith("/refresh") or path.endswith("/callback")
    }
    limited = {
        path
        for path, _, dependant in api_routes(list(platform.services["identity"].app.routes))
        if any(d.call is address_rate_limit for d in dependant.dependencies)
    }
    assert token_routes == {r[1].removeprefix("/api/identity") for r in TOKEN_ROUTES}
    assert limited == token_routes


async def test_concurrent_requests_from_one_address_pass_at_most_the_limit(
    platform: Platform, clock: FakeClock
) -> None:
    limit(platform, 10)
    # Distinct user names: the per-account lockout never applies, only the address limit.
    responses = await asyncio.gather(
        *(
            platform.client.post(TOKEN, json={"username": f"u{i}@x.demo", "password": "wrong"})
            for i in range(30)
        )
    )
    statuses = Counter(r.status_code for r in responses)
    assert statuses == {401: 10, 429: 20}, statuses
    refused = next(r for r in responses if r.status_code == 429)
    assert refused.headers["content-type"] == "application/problem+json"
    assert 1 <= int(refused.headers["Retry-After"]) <= 61
    assert refused.json()["errors"][0]["field"] == "client_address"
    # The right password does not help, nor does claiming another address from an untrusted peer.
    spoofed = await platform.client.post(
        TOKEN,
        json={"username": TILLEULS[0], "password": TILLEULS[1]},
        headers={"X-Forwarded-For": "198.51.100.9"},
    )
    assert spoofed.status_code == 429
    # Another address is not limited by this one's window.
    async with other_address(platform, "198.51.100.20") as other:
        login = {"username": TILLEULS[0], "password": TILLEULS[1]}
        assert (await other.post(TOKEN, json=login)).status_code == 200
    # The store keeps a digest, never the address.
    windows = await platform.services["identity"].store.find("address_windows", None)
    assert windows and all("203.0.113.7" not in w.id for w in windows)
    clock.advance(61)  # the window (IDENTITY_ADDRESS_LIMIT_WINDOW_SECONDS, 60) ends
    login = {"username": TILLEULS[0], "password": TILLEULS[1]}
    assert (await platform.client.post(TOKEN, json=login)).status_code == 200


async def test_each_token_route_counts_against_the_address(platform: Platform) -> None:
    limit(platform, 1)
    for index, (method, path, request) in enumerate(TOKEN_ROUTES):
        async with other_address(platform, f"198.51.100.{index + 1}") as client:
            first = await client.request(method, path, **request)  # type: ignore[arg-type]
            assert first.status_code != 429, (path, first.text)
            second = await client.request(method, path, **request)  # type: ignore[arg-type]
            assert second.status_code == 429, (path, second.text)
            assert second.headers["Retry-After"]
