"""Client-credentials grant (RFC 6749 section 4.4): tokens, each error of section 5.2, rotation."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from kit import Platform  # type: ignore[import-not-found]

from bsante.chassis.messaging import Messaging
from bsante.identity import service_clients
from bsante.identity.service_clients import ServiceClientSpec, hash_secret

TOKEN = "/api/identity/oauth/token"
FORM = {"Content-Type": "application/x-www-form-urlencoded"}
OPS = ("ops@bsante.demo", "Exploitation-Demo-2026")


def forms_secret(platform: Platform) -> str:
    secret: str = platform.services["forms"].settings.service_client_secret.get_secret_value()
    return secret


def basic(client_id: str, secret: str) -> dict[str, str]:
    encoded = base64.b64encode(f"{client_id}:{secret}".encode()).decode()
    return {**FORM, "Authorization": f"Basic {encoded}"}


async def grant(platform: Platform, secret: str, **form: str) -> httpx.Response:
    body = {"grant_type": "client_credentials", **form}
    response: httpx.Response = await platform.client.post(
        TOKEN, data=body, headers=basic("forms", secret)
    )
    return response


def oauth_error(response: httpx.Response, status: int, error: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    assert response.headers["cache-control"] == "no-store"
    body: dict[str, Any] = response.json()
    assert body["error"] == error and body["error_description"]
    return body


async def test_a_service_client_gets_a_service_token_with_basic_auth(platform: Platform) -> None:
    response = await grant(platform, forms_secret(platform))
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    assert body["token_type"] == "Bearer" and body["expires_in"] == 600
    assert body["scope"] == "patient:read"
    claims = await platform.services["patient"].verifier.verify(body["access_token"])
    assert claims["token_use"] == "service"
    assert claims["client_id"] == claims["sub"] == "forms"
    assert claims["scope"] == "patient:read"
    assert "structures" not in claims and "roles" not in claims


async def test_credentials_in_the_body_and_an_explicit_scope(platform: Platform) -> None:
    response = await platform.client.post(
        TOKEN,
        data={
            "grant_type": "client_credentials",
            "client_id": "forms",
            "client_secret": forms_secret(platform),
            "scope": "patient:read",
        },
        headers=FORM,
    )
    assert response.status_code == 200, response.text
    assert response.json()["scope"] == "patient:read"


async def test_wrong_or_missing_client_credentials_are_invalid_client(platform: Platform) -> None:
    secret = forms_secret(platform)
    for response in (
        await grant(platform, secret + "x"),
        await platform.client.post(
            TOKEN, data={"grant_type": "client_credentials"}, headers=basic("nobody", secret)
        ),
        await platform.client.post(TOKEN, data={"grant_type": "client_credentials"}, headers=FORM),
        await platform.client.post(
            TOKEN,
            data={"grant_type": "client_credentials"},
            headers={**FORM, "Authorization": "Basic !!not-base64"},
        ),
    ):
        oauth_error(response, 401, "invalid_client")
        assert response.headers["www-authenticate"].startswith("Basic ")


async def test_each_malformed_request_names_its_oauth_error(platform: Platform) -> None:
    secret = forms_secret(platform)
    oauth_error(await grant(platform, secret, scope="documents:read"), 400, "invalid_scope")
    unsupported = await platform.client.post(
        TOKEN, data={"grant_type": "password"}, headers=basic("forms", secret)
    )
    oauth_error(unsupported, 400, "unsupported_grant_type")
    no_grant = await platform.client.post(TOKEN, data={}, headers=basic("forms", secret))
    oauth_error(no_grant, 400, "invalid_request")
    as_json = await platform.client.post(
        TOKEN,
        json={"grant_type": "client_credentials"},
        headers={"Authorization": basic("forms", secret)["Authorization"]},
    )
    oauth_error(as_json, 400, "invalid_request")
    twice = await platform.client.post(
        TOKEN,
        content="grant_type=client_credentials&scope=a:b&scope=c:d",
        headers=basic("forms", secret),
    )
    assert "scope" in oauth_error(twice, 400, "invalid_request")["error_description"]
    two_ways = await platform.client.post(
        TOKEN,
        data={"grant_type": "client_credentials", "client_id": "forms", "client_secret": secret},
        headers=basic("forms", secret),
    )
    oauth_error(two_ways, 400, "invalid_request")


async def test_the_token_endpoint_is_declared_in_the_openapi(platform: Platform) -> None:
    spec = (await platform.client.get("/openapi.json")).json()
    operation = spec["paths"]["/api/identity/oauth/token"]["post"]
    assert "application/x-www-form-urlencoded" in operation["requestBody"]["content"]
    assert {"200", "400", "401"} <= set(operation["responses"])


async def test_rotation_keeps_old_and_new_secrets_valid_then_only_the_new(
    platform: Platform,
) -> None:
    old = forms_secret(platform)
    ops = await platform.login(OPS)
    admin = await platform.login()
    refused = await platform.client.post(
        "/api/identity/admin/service-clients/forms/rotate", headers=admin
    )
    assert refused.status_code == 403
    unknown = await platform.client.post(
        "/api/identity/admin/service-clients/nobody/rotate", headers=ops
    )
    assert unknown.status_code == 404
    rotated = await platform.client.post(
        "/api/identity/admin/service-clients/forms/rotate", headers=ops
    )
    assert rotated.status_code == 200, rotated.text
    assert rotated.headers["cache-control"] == "no-store"
    new = rotated.json()["client_secret"]
    assert new != old
    until = datetime.fromisoformat(rotated.json()["previous_valid_until"])
    assert until - datetime.now(UTC) > timedelta(hours=23)
    # During the window both work.
    assert (await grant(platform, old)).status_code == 200
    assert (await grant(platform, new)).status_code == 200
    listed = await platform.client.get("/api/identity/admin/service-clients", headers=ops)
    (forms,) = [c for c in listed.json() if c["client_id"] == "forms"]
    assert [s["origin"] for s in forms["secrets"]] == ["rotation", "settings"]
    assert "hash" not in str(listed.json())
    # After the window only the new one does.
    store = platform.services["identity"].store
    later = until + timedelta(seconds=1)
    assert not await service_clients.authenticate(store, "forms", old, now=later)
    assert await service_clients.authenticate(store, "forms", new, now=later)


async def test_a_new_configured_secret_becomes_current_and_the_old_one_expires(
    messaging: Messaging, tmp_path: Path
) -> None:
    store = messaging.store
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    overlap = timedelta(hours=1)
    first = {"svc": ServiceClientSpec(scopes=["patient:read"], secret_hash=hash_secret("one"))}
    await service_clients.sync_from_settings(store, first, overlap, now=t0)
    await service_clients.sync_from_settings(store, first, overlap, now=t0)  # no change
    assert len((await store.get(service_clients.COLLECTION, "svc")).data["secrets"]) == 1  # type: ignore[union-attr]
    # The operator mounts a new secret as a file: it is adopted, the old one stays an hour.
    secret_file = tmp_path / "svc.secret"
    secret_file.write_text("two\n")
    second = {"svc": ServiceClientSpec(scopes=["patient:read"], secret_file=str(secret_file))}
    t1 = t0 + timedelta(minutes=5)
    await service_clients.sync_from_settings(store, second, overlap, now=t1)
    await service_clients.sync_from_settings(store, second, overlap, now=t1)  # file known now
    assert await service_clients.authenticate(store, "svc", "one", now=t1 + timedelta(minutes=59))
    assert await service_clients.authenticate(store, "svc", "two", now=t1 + timedelta(minutes=59))
    assert not await service_clients.authenticate(store, "svc", "one", now=t1 + overlap)
    assert await service_clients.authenticate(store, "svc", "two", now=t1 + overlap)
    assert not await service_clients.authenticate(store, "svc", "three", now=t1)
    assert not await service_clients.authenticate(store, "unknown", "two", now=t1)
