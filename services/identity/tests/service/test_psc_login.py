"""Pro Santé Connect login through the gateway, against the local provider over real HTTP.

The "browser" is one httpx client following redirects: the platform is mounted in-process
(`http://platform`), the provider is a uvicorn server on a loopback port, and identity talks to
the provider over real HTTP (discovery, token, JWKS, userinfo).
"""

from __future__ import annotations

import asyncio
import json
import re
import sqlite3
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from asgi_lifespan import LifespanManager
from authlib.oauth2.rfc7636 import create_s256_code_challenge
from fastapi import FastAPI
from joserfc.jwk import KeySet, RSAKey

from bsante.chassis.service import Service
from bsante.gateway.app import build_embedded
from bsante.gateway.settings import GatewaySettings
from bsante.identity.psc_provider import OIDC, RegisteredClient, rotate_keys, serving
from bsante.platform.embedded import build_services

CLIENT_ID = "bsante-test"
SECRET = "test-secret-of-the-psc-client"
REDIRECT = "http://platform/api/identity/auth/psc/callback"
AFTER_LOGOUT = "http://platform/logged-out"
DOCTOR = "810001000016"  # the demo médecin of demo-ehpad
UNLINKED = "810001000032"  # known to PSC, linked to no platform account
PROBLEM = "application/problem+json"


@dataclass
class Browser:
    client: httpx.AsyncClient
    services: dict[str, Service[Any]]
    provider: FastAPI
    data: Path

    async def to_provider(self, path: str = "/api/identity/auth/psc/authorize") -> httpx.Response:
        """Start a login; the redirects end on the provider's page (its consent form)."""
        page = await self.client.get(f"http://platform{path}")
        assert page.status_code == 200, page.text
        assert page.url.host == "127.0.0.1" and "request_id" in page.text
        return page

    async def consent(
        self, page: httpx.Response, professional: str = DOCTOR, *, follow: bool = True
    ) -> httpx.Response:
        request_id = re.search(r"name='request_id' value='([^']+)'", page.text)
        assert request_id is not None
        return await self.client.post(
            str(page.url.copy_with(path=f"{OIDC}/auth", query=None)),
            data={"request_id": request_id[1], "professional": professional, "decision": "accept"},
            follow_redirects=follow,
        )

    async def login(self, professional: str = DOCTOR) -> httpx.Response:
        return await self.consent(await self.to_provider(), professional)

    def logins(self) -> list[dict[str, Any]]:
        """`UserLoggedIn` payloads identity's outbox holds (sent or not)."""
        with sqlite3.connect(self.data / "identity.db") as db:
            rows = db.execute("SELECT value FROM outbox").fetchall()
        envelopes = [json.loads(row[0]) for row in rows]
        return [
            e["payload"] | {"schema_version": e["schema_version"]}
            for e in envelopes
            if e["event_type"] == "UserLoggedIn"
        ]


@pytest.fixture
async def provider() -> AsyncIterator[FastAPI]:
    client = RegisteredClient(
        CLIENT_ID, [REDIRECT], SECRET, post_logout_redirect_uris=[AFTER_LOGOUT]
    )
    async with serving({CLIENT_ID: client}) as app:
        yield app


def _configure(monkeypatch: pytest.MonkeyPatch, issuer: str) -> None:
    monkeypatch.setenv("IDENTITY_PSC_ISSUER", issuer)
    monkeypatch.setenv("IDENTITY_PSC_CLIENT_ID", CLIENT_ID)
    monkeypatch.setenv("IDENTITY_PSC_CLIENT_SECRET", SECRET)
    monkeypatch.setenv("IDENTITY_PSC_REDIRECT_URI", REDIRECT)
    monkeypatch.setenv("IDENTITY_PSC_POST_LOGOUT_REDIRECT_URI", AFTER_LOGOUT)


async def _browser(data: Path, provider: FastAPI) -> AsyncIterator[Browser]:
    services = build_services(data)
    app = build_embedded(GatewaySettings(), services)
    async with LifespanManager(app, startup_timeout=120, shutdown_timeout=60) as manager:
        platform = httpx.ASGITransport(app=manager.app, client=("127.0.0.1", 50000))
        async with httpx.AsyncClient(
            mounts={"http://platform": platform}, follow_redirects=True, timeout=10
        ) as client:
            yield Browser(client, services, provider, data)


@pytest.fixture
async def browser(
    provider: FastAPI, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[Browser]:
    _configure(monkeypatch, provider.state.config.issuer)
    async for started in _browser(tmp_path, provider):
        yield started


# -- the login ----------------------------------------------------------------------------------


async def test_a_professional_signs_in_with_psc_and_gets_the_platform_tokens(
    browser: Browser,
) -> None:
    answer = await browser.login(DOCTOR)
    assert answer.status_code == 200, answer.text
    assert answer.url.path == "/api/identity/auth/psc/callback"
    tokens = answer.json()
    assert tokens["acting_structure"] == "demo-ehpad" and tokens["refresh_token"]
    me = await browser.client.get(
        "http://platform/api/identity/me",
        headers={"Authorization": f"Bearer {tokens['access_token']}"},
    )
    assert me.status_code == 200, me.text
    assert me.json()["ps_id_nat"] == DOCTOR and me.json()["profession"] == "10"
    # The same claims as a password login of the same account.
    password = await browser.client.post(
        "http://platform/api/identity/auth/token",
        json={"username": "medecin@tilleuls.demo", "password": "Medecin-Tilleuls-2026"},
    )
    same = await browser.client.get(
        "http://platform/api/identity/me",
        headers={"Authorization": f"Bearer {password.json()['access_token']}"},
    )
    assert same.json() == me.json()
    methods = [e["method"] for e in browser.logins()]
    assert methods == ["psc", "password"]
    assert {e["schema_version"] for e in browser.logins()} == {2}
    # The platform's refresh works on a PSC session like on any other.
    refreshed = await browser.client.post(
        "http://platform/api/identity/auth/refresh",
        json={"refresh_token": tokens["refresh_token"]},
    )
    assert refreshed.status_code == 200


async def test_a_rotation_of_the_providers_keys_is_followed(browser: Browser) -> None:
    assert (await browser.login()).status_code == 200  # the JWKS is now cached
    rotate_keys(browser.provider)
    # The next ID token names a kid identity has not seen: it fetches the JWKS again.
    answer = await browser.login()
    assert answer.status_code == 200, answer.text


async def test_a_professional_without_an_account_is_refused_and_nothing_is_created(
    browser: Browser,
) -> None:
    answer = await browser.login(UNLINKED)
    assert answer.status_code == 403
    assert answer.headers["content-type"].startswith(PROBLEM)
    assert "No active platform account is linked" in answer.json()["detail"]
    assert answer.json()["type"].endswith("psc-no-account")
    identity = browser.services["identity"].store
    assert await identity.get("professional_accounts", UNLINKED) is None
    assert await identity.count("sessions", {}) == 0
    assert browser.logins() == []


async def test_the_structure_asked_at_the_start_is_the_sessions(browser: Browser) -> None:
    page = await browser.to_provider("/api/identity/auth/psc/authorize?structure_id=demo-ssiad")
    answer = await browser.consent(page)
    # The médecin does not act for demo-ssiad: refused like any login asking for it.
    assert answer.status_code == 403, answer.text
    page = await browser.to_provider("/api/identity/auth/psc/authorize?structure_id=demo-ehpad")
    answer = await browser.consent(page)
    assert answer.status_code == 200 and answer.json()["acting_structure"] == "demo-ehpad"


# -- what identity refuses -------------------------------------------------------------------


async def test_a_replayed_state_is_refused(browser: Browser) -> None:
    page = await browser.to_provider()
    back = await browser.consent(page, follow=False)
    callback = back.headers["location"]
    first = await browser.client.get(callback)
    assert first.status_code == 200, first.text
    # The same callback again (a copied URL, a replayed request): the state is spent.
    again = await browser.client.get(callback)
    assert again.status_code == 401
    assert again.headers["content-type"].startswith(PROBLEM)
    assert [e["field"] for e in again.json()["errors"]] == ["state"]
    # A forged state never issued.
    code = parse_qs(urlsplit(callback).query)["code"][0]
    forged = await browser.client.get(
        "http://platform/api/identity/auth/psc/callback", params={"state": "x" * 43, "code": code}
    )
    assert forged.status_code == 401 and "state" in forged.json()["detail"]


async def test_a_state_used_by_two_callbacks_at_once_opens_one_session(browser: Browser) -> None:
    back = await browser.consent(await browser.to_provider(), follow=False)
    callback = back.headers["location"]
    answers = await asyncio.gather(*(browser.client.get(callback) for _ in range(4)))
    assert sorted(a.status_code for a in answers) == [200, 401, 401, 401]
    assert await browser.services["identity"].store.count("sessions", {}) == 1


async def test_a_refusal_by_the_provider_is_a_401_naming_it(browser: Browser) -> None:
    page = await browser.to_provider()
    request_id = re.search(r"name='request_id' value='([^']+)'", page.text)
    assert request_id is not None
    answer = await browser.client.post(
        str(page.url.copy_with(path=f"{OIDC}/auth", query=None)),
        data={"request_id": request_id[1], "professional": DOCTOR, "decision": "deny"},
    )
    assert answer.status_code == 401
    assert "access_denied" in answer.json()["detail"]


async def test_a_code_the_provider_refuses_is_a_401(browser: Browser) -> None:
    back = await browser.consent(await browser.to_provider(), follow=False)
    query = parse_qs(urlsplit(back.headers["location"]).query)
    answer = await browser.client.get(
        "http://platform/api/identity/auth/psc/callback",
        params={"state": query["state"][0], "code": "not-the-code"},
    )
    assert answer.status_code == 401
    assert "invalid_grant" in answer.json()["detail"]
    assert [e["field"] for e in answer.json()["errors"]] == ["code"]


async def test_a_discovery_document_naming_another_issuer_is_not_trusted(
    provider: FastAPI, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The provider is honest; identity is configured with another issuer spelling, so the
    discovery document's issuer does not match: nothing from it is trusted."""
    issuer = provider.state.config.issuer
    _configure(monkeypatch, issuer.replace("127.0.0.1", "localhost"))
    async for browser in _browser(tmp_path, provider):
        answer = await browser.client.get("http://platform/api/identity/auth/psc/authorize")
        assert answer.status_code == 503
        assert "another issuer" in answer.json()["detail"]


# -- the provider is down --------------------------------------------------------------------


async def test_a_provider_that_is_down_is_a_503_and_other_logins_still_work(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with serving({}) as stopped:
        issuer = stopped.state.config.issuer
    # The port is closed now: nothing answers there.
    _configure(monkeypatch, issuer)
    async for browser in _browser(tmp_path, stopped):
        answer = await browser.client.get("http://platform/api/identity/auth/psc/authorize")
        assert answer.status_code == 503
        assert answer.headers["content-type"].startswith(PROBLEM)
        assert answer.json()["type"].endswith("psc-unavailable")
        assert "cannot be reached" in answer.json()["detail"]
        password = await browser.client.post(
            "http://platform/api/identity/auth/token",
            json={"username": "medecin@tilleuls.demo", "password": "Medecin-Tilleuls-2026"},
        )
        assert password.status_code == 200
        ready = await browser.client.get("http://platform/api/identity/health/ready")
        assert ready.status_code == 200


async def test_without_configuration_psc_login_is_a_503(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("IDENTITY_PSC_ISSUER", raising=False)
    async with serving({}) as unused:
        async for browser in _browser(tmp_path, unused):
            answer = await browser.client.get("http://platform/api/identity/auth/psc/authorize")
            assert answer.status_code == 503
            assert answer.json()["type"].endswith("psc-not-configured")


# -- logout ------------------------------------------------------------------------------------


async def test_logout_ends_the_session_and_offers_the_providers_end_session(
    browser: Browser,
) -> None:
    tokens = (await browser.login()).json()
    out = await browser.client.post(
        "http://platform/api/identity/auth/psc/logout",
        json={"refresh_token": tokens["refresh_token"]},
    )
    assert out.status_code == 200, out.text
    end_session = out.json()["end_session_url"]
    assert end_session.startswith(browser.provider.state.config.issuer)
    query = parse_qs(urlsplit(end_session).query)
    assert query["post_logout_redirect_uri"] == [AFTER_LOGOUT] and query["id_token_hint"]
    refreshed = await browser.client.post(
        "http://platform/api/identity/auth/refresh",
        json={"refresh_token": tokens["refresh_token"]},
    )
    assert refreshed.status_code == 401
    # The provider sends the browser back where the platform declared.
    back = await browser.client.get(end_session, follow_redirects=False)
    assert back.status_code == 302 and back.headers["location"] == AFTER_LOGOUT
    # A password session has no PSC session to end.
    password = await browser.client.post(
        "http://platform/api/identity/auth/token",
        json={"username": "medecin@tilleuls.demo", "password": "Medecin-Tilleuls-2026"},
    )
    out = await browser.client.post(
        "http://platform/api/identity/auth/psc/logout",
        json={"refresh_token": password.json()["refresh_token"]},
    )
    assert out.json() == {"end_session_url": None}


# -- what the provider refuses (as PSC does) ---------------------------------------------------


@dataclass
class Authorized:
    code: str
    verifier: str


async def _authorized(http: httpx.AsyncClient, issuer: str, **overrides: str) -> Authorized:
    verifier = "v" * 50
    params = {
        "response_type": "code",
        "client_id": CLIENT_ID,
        "redirect_uri": REDIRECT,
        "scope": "openid scope_all",
        "state": "s" * 20,
        "nonce": "n" * 20,
        "acr_values": "eidas1",
        "code_challenge": create_s256_code_challenge(verifier),
        "code_challenge_method": "S256",
        **overrides,
    }
    base = issuer.removesuffix("/auth/realms/esante-wallet")
    page = await http.get(f"{base}{OIDC}/auth", params=params)
    assert page.status_code == 200, page.text
    request_id = re.search(r"name='request_id' value='([^']+)'", page.text)
    assert request_id is not None
    back = await http.post(
        f"{base}{OIDC}/auth",
        data={"request_id": request_id[1], "professional": DOCTOR, "decision": "accept"},
    )
    assert back.status_code == 302
    return Authorized(parse_qs(urlsplit(back.headers["location"]).query)["code"][0], verifier)


async def _token(
    http: httpx.AsyncClient, issuer: str, code: str, verifier: str, redirect_uri: str = REDIRECT
) -> httpx.Response:
    base = issuer.removesuffix("/auth/realms/esante-wallet")
    return await http.post(
        f"{base}{OIDC}/token",
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": redirect_uri,
            "code_verifier": verifier,
        },
        auth=(CLIENT_ID, SECRET),
    )


async def test_the_provider_refuses_an_unregistered_redirect_uri_without_redirecting(
    provider: FastAPI,
) -> None:
    issuer = provider.state.config.issuer
    base = issuer.removesuffix("/auth/realms/esante-wallet")
    async with httpx.AsyncClient() as http:
        answer = await http.get(
            f"{base}{OIDC}/auth",
            params={
                "response_type": "code",
                "client_id": CLIENT_ID,
                "redirect_uri": "http://evil.example/callback",
                "scope": "openid",
                "code_challenge": "x" * 43,
                "code_challenge_method": "S256",
            },
        )
        assert answer.status_code == 400 and "location" not in answer.headers
        assert "redirect_uri" in answer.text
        # And a code is bound to the redirect URI it was issued for.
        authorized = await _authorized(http, issuer)
        other = await _token(
            http, issuer, authorized.code, authorized.verifier, "http://platform/other"
        )
        assert other.status_code == 400 and other.json()["error"] == "invalid_grant"


async def test_the_provider_refuses_a_reused_code(provider: FastAPI) -> None:
    issuer = provider.state.config.issuer
    async with httpx.AsyncClient() as http:
        authorized = await _authorized(http, issuer)
        first = await _token(http, issuer, authorized.code, authorized.verifier)
        assert first.status_code == 200 and first.json()["id_token"]
        second = await _token(http, issuer, authorized.code, authorized.verifier)
        assert second.status_code == 400 and second.json()["error"] == "invalid_grant"


async def test_the_provider_refuses_a_bad_pkce_verifier(provider: FastAPI) -> None:
    issuer = provider.state.config.issuer
    async with httpx.AsyncClient() as http:
        authorized = await _authorized(http, issuer)
        wrong = await _token(http, issuer, authorized.code, "w" * 50)
        assert wrong.status_code == 400
        assert "code_verifier" in wrong.json()["error_description"]
        # The code was spent by the failed attempt.
        right = await _token(http, issuer, authorized.code, authorized.verifier)
        assert right.status_code == 400
        # No PKCE at all is refused at the start.
        base = issuer.removesuffix("/auth/realms/esante-wallet")
        plain = await http.get(
            f"{base}{OIDC}/auth",
            params={
                "response_type": "code",
                "client_id": CLIENT_ID,
                "redirect_uri": REDIRECT,
                "scope": "openid",
            },
        )
        assert plain.status_code == 302
        assert "error=invalid_request" in plain.headers["location"]


async def test_the_provider_refuses_an_expired_code(provider: FastAPI) -> None:
    issuer = provider.state.config.issuer
    config = provider.state.config
    start = config.clock()
    async with httpx.AsyncClient() as http:
        authorized = await _authorized(http, issuer)
        config.clock = lambda: start + config.code_ttl_seconds + 1
        late = await _token(http, issuer, authorized.code, authorized.verifier)
        assert late.status_code == 400
        assert "expired" in late.json()["error_description"]


async def test_the_provider_refuses_a_wrong_client_secret(provider: FastAPI) -> None:
    issuer = provider.state.config.issuer
    base = issuer.removesuffix("/auth/realms/esante-wallet")
    async with httpx.AsyncClient() as http:
        authorized = await _authorized(http, issuer)
        answer = await http.post(
            f"{base}{OIDC}/token",
            data={
                "grant_type": "authorization_code",
                "code": authorized.code,
                "redirect_uri": REDIRECT,
                "code_verifier": authorized.verifier,
            },
            auth=(CLIENT_ID, "wrong"),
        )
        assert answer.status_code == 401 and answer.json()["error"] == "invalid_client"


async def test_private_key_jwt_client_authentication_signs_in_without_a_secret(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = RSAKey.generate_key(2048)
    (tmp_path / "psc-key.pem").write_bytes(key.as_pem(private=True))
    public = KeySet([key]).as_dict(private=False)
    client = RegisteredClient(CLIENT_ID, [REDIRECT], None, dict(public))
    async with serving({CLIENT_ID: client}) as provider:
        _configure(monkeypatch, provider.state.config.issuer)
        monkeypatch.delenv("IDENTITY_PSC_CLIENT_SECRET")
        monkeypatch.setenv("IDENTITY_PSC_PRIVATE_KEY_FILE", str(tmp_path / "psc-key.pem"))
        async for browser in _browser(tmp_path / "data", provider):
            answer = await browser.login()
            assert answer.status_code == 200, answer.text
        # A key the provider does not know is refused at the token endpoint.
        other = RSAKey.generate_key(2048)
        (tmp_path / "psc-key.pem").write_bytes(other.as_pem(private=True))
        async for browser in _browser(tmp_path / "data2", provider):
            answer = await browser.login()
            assert answer.status_code == 401
            assert "invalid_client" in answer.json()["detail"]
