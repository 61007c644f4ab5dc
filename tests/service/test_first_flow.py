"""The first flow through the gateway: login, create a patient, usage indicator, tenancy."""

from __future__ import annotations

from kit import VAL, Platform, eventually  # type: ignore[import-not-found]


async def test_login_create_patient_and_count_it(platform: Platform) -> None:
    headers = await platform.login()
    created = await platform.create_patient(headers)
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["structure_id"] == "demo-ehpad"
    assert body["identity_status"] == "provisoire"
    assert created.headers["etag"] == '"1"'

    read = await platform.client.get(f"/api/patient/patients/{body['id']}", headers=headers)
    assert read.status_code == 200
    assert read.json()["traits"]["birth_name"] == "DUPONT"

    async def counted() -> bool:
        usage = await platform.client.get(
            "/api/sla-monitor/usage/patients-created", headers=headers
        )
        assert usage.status_code == 200
        return bool(usage.json()["total"] == 1)

    await eventually(counted)
    await platform.create_patient(headers, birth_name="MARTIN")

    async def counted_two() -> bool:
        usage = await platform.client.get(
            "/api/sla-monitor/usage/patients-created", headers=headers
        )
        days = usage.json()["days"]
        return len(days) == 1 and bool(days[0]["count"] == 2)

    await eventually(counted_two)


async def test_requests_without_a_valid_token_get_401(platform: Platform) -> None:
    for headers in ({}, {"Authorization": "Bearer not-a-jwt"}, {"Authorization": "Basic abc"}):
        response = await platform.client.post("/api/patient/patients", json={}, headers=headers)
        assert response.status_code == 401, headers
        assert response.headers["content-type"] == "application/problem+json"
        assert response.headers["www-authenticate"] == "Bearer"
    usage = await platform.client.get("/api/sla-monitor/usage/patients-created")
    assert usage.status_code == 401


async def test_a_tampered_token_is_refused(platform: Platform) -> None:
    headers = await platform.login()
    token = headers["Authorization"].removeprefix("Bearer ")
    header, payload, signature = token.split(".")
    forged = f"{header}.{payload}.{signature[:-4]}AAAA"
    response = await platform.client.get(
        "/api/identity/me", headers={"Authorization": f"Bearer {forged}"}
    )
    assert response.status_code == 401


async def test_wrong_password_is_401(platform: Platform) -> None:
    response = await platform.client.post(
        "/api/identity/auth/token",
        json={"username": "admin@tilleuls.demo", "password": "wrong"},
    )
    assert response.status_code == 401
    assert response.json()["detail"] == "Unknown user or wrong password"


async def test_jwks_lists_the_public_signing_key(platform: Platform) -> None:
    jwks = (await platform.client.get("/api/identity/.well-known/jwks.json")).json()
    assert len(jwks["keys"]) == 1
    key = jwks["keys"][0]
    assert key["kty"] == "OKP" and key["crv"] == "Ed25519" and key["alg"] == "EdDSA"
    assert "d" not in key, "the private part never leaves identity"


async def test_another_structure_cannot_read_the_patient(platform: Platform) -> None:
    tilleuls = await platform.login()
    created = (await platform.create_patient(tilleuls)).json()
    val = await platform.login(VAL)
    response = await platform.client.get(f"/api/patient/patients/{created['id']}", headers=val)
    assert response.status_code == 404
    assert response.json()["status"] == 404
    # Same answer as a patient that does not exist at all.
    missing = await platform.client.get(
        "/api/patient/patients/00000000-0000-4000-8000-000000000000", headers=val
    )
    assert missing.status_code == 404
    assert missing.json()["detail"] == response.json()["detail"]
    # Acting for a structure the user does not belong to is refused.
    spoof = await platform.client.get(
        f"/api/patient/patients/{created['id']}",
        headers={**val, "X-Structure-Id": "demo-ehpad"},
    )
    assert spoof.status_code == 403


async def test_usage_is_per_structure(platform: Platform) -> None:
    tilleuls = await platform.login()
    await platform.create_patient(tilleuls)
    val = await platform.login(VAL)

    async def tilleuls_counted() -> bool:
        r = await platform.client.get("/api/sla-monitor/usage/patients-created", headers=tilleuls)
        return bool(r.json()["total"] == 1)

    await eventually(tilleuls_counted)
    r = await platform.client.get("/api/sla-monitor/usage/patients-created", headers=val)
    assert r.json()["total"] == 0


async def test_a_stale_write_gets_412_and_changes_nothing(platform: Platform) -> None:
    headers = await platform.login()
    created = (await platform.create_patient(headers)).json()
    url = f"/api/patient/patients/{created['id']}/traits"
    traits = {
        "birth_name": "DUPONT",
        "birth_given_names": "Maria",
        "sex": "F",
        "birth_date": "1941-03-02",
    }
    first = await platform.client.put(url, json=traits, headers={**headers, "If-Match": '"1"'})
    assert first.status_code == 200 and first.headers["etag"] == '"2"'
    stale = await platform.client.put(
        url, json={**traits, "birth_given_names": "Mary"}, headers={**headers, "If-Match": '"1"'}
    )
    assert stale.status_code == 412  # RFC 9110: the If-Match precondition failed
    assert stale.headers["content-type"] == "application/problem+json"
    current = await platform.client.get(f"/api/patient/patients/{created['id']}", headers=headers)
    assert current.json()["traits"]["first_birth_given_name"] == "Maria"
    missing = await platform.client.put(url, json=traits, headers=headers)
    assert missing.status_code == 428
