"""Password login, refresh rotation, logout, lockout, session structure, key rotation."""

from __future__ import annotations

import jwt
import pytest
from identity_kit import FakeClock  # type: ignore[import-not-found]
from kit import TILLEULS, Platform  # type: ignore[import-not-found]

from bsante.chassis.auth import TokenVerifier
from bsante.chassis.errors import Unauthorized

OPS = ("ops@bsante.demo", "Exploitation-Demo-2026")


async def login(platform: Platform, credentials: tuple[str, str] = TILLEULS, **extra: str) -> dict:  # type: ignore[type-arg]
    response = await platform.client.post(
        "/api/identity/auth/token",
        json={"username": credentials[0], "password": credentials[1], **extra},
    )
    assert response.status_code == 200, response.text
    body: dict = response.json()  # type: ignore[type-arg]
    return body


def bearer(tokens: dict) -> dict[str, str]:  # type: ignore[type-arg]
    return {"Authorization": f"Bearer {tokens['access_token']}"}


async def test_refresh_rotates_and_a_reused_token_kills_the_session(
    platform: Platform, clock: FakeClock
) -> None:
    first = await login(platform)
    assert first["refresh_token"] and first["expires_in"] == 900
    refreshed = await platform.client.post(
        "/api/identity/auth/refresh", json={"refresh_token": first["refresh_token"]}
    )
    assert refreshed.status_code == 200
    second = refreshed.json()
    assert second["refresh_token"] != first["refresh_token"]
    me = await platform.client.get("/api/identity/me", headers=bearer(second))
    assert me.json()["acting_structure"] == "demo-ehpad"
    # The first refresh token again, after the grace window: a copy is in use, the whole
    # session ends.
    clock.advance(21)
    replay = await platform.client.post(
        "/api/identity/auth/refresh", json={"refresh_token": first["refresh_token"]}
    )
    assert replay.status_code == 401
    after = await platform.client.post(
        "/api/identity/auth/refresh", json={"refresh_token": second["refresh_token"]}
    )
    assert after.status_code == 401


async def test_logout_revokes_the_refresh_token(platform: Platform) -> None:
    tokens = await login(platform)
    out = await platform.client.post(
        "/api/identity/auth/logout", json={"refresh_token": tokens["refresh_token"]}
    )
    assert out.status_code == 204
    refused = await platform.client.post(
        "/api/identity/auth/refresh", json={"refresh_token": tokens["refresh_token"]}
    )
    assert refused.status_code == 401
    stored = await platform.services["identity"].store.find("refresh_tokens")
    assert all(tokens["refresh_token"] not in str(d.data) for d in stored), "stored hashed"
    assert tokens["refresh_token"] not in {d.id for d in stored}


@pytest.mark.parametrize("username", ["admin@tilleuls.demo", "nobody@nowhere.demo"])
async def test_repeated_failures_lock_whether_or_not_the_account_exists(
    platform: Platform, username: str
) -> None:
    for _ in range(5):
        failed = await platform.client.post(
            "/api/identity/auth/token", json={"username": username, "password": "wrong"}
        )
        assert failed.status_code == 401
        assert failed.json()["detail"] == "Unknown user or wrong password"
    locked = await platform.client.post(
        "/api/identity/auth/token", json={"username": username, "password": TILLEULS[1]}
    )
    assert locked.status_code == 429
    assert locked.json()["detail"].startswith("Too many failed attempts")
    other = await platform.client.post(
        "/api/identity/auth/token",
        json={"username": "admin@val.demo", "password": "ValDuSoin-Demo-2026"},
    )
    assert other.status_code == 200, "the lock is per account"


async def test_a_success_resets_the_failure_count(platform: Platform) -> None:
    for _ in range(4):
        await platform.client.post(
            "/api/identity/auth/token", json={"username": TILLEULS[0], "password": "wrong"}
        )
    await login(platform)
    for _ in range(4):
        await platform.client.post(
            "/api/identity/auth/token", json={"username": TILLEULS[0], "password": "wrong"}
        )
    await login(platform)


async def test_the_session_acts_for_the_structure_chosen_at_login(platform: Platform) -> None:
    admin = bearer(await login(platform))
    created = await platform.client.post(
        "/api/identity/users",
        headers=admin,
        json={
            "username": "sec@tilleuls.demo",
            "display_name": "Secrétaire",
            "password": "Secretaire-2026-ok",
            "roles": ["secretaire"],
        },
    )
    assert created.status_code == 201, created.text
    # The same account now joins the SSIAD too (by its administrator).
    user_id = created.json()["id"]
    identity = platform.services["identity"]
    doc = await identity.store.get("users", user_id)
    assert doc is not None
    async with identity.store.transaction() as tx:
        data = {**doc.data, "structures": ["demo-ehpad", "demo-ssiad"]}
        data["roles"] = {**data["roles"], "demo-ssiad": ["aide_soignant"]}
        await tx.update("users", user_id, data, doc.version)
    tokens = await login(
        platform, ("sec@tilleuls.demo", "Secretaire-2026-ok"), structure_id="demo-ssiad"
    )
    assert tokens["acting_structure"] == "demo-ssiad"
    me = (await platform.client.get("/api/identity/me", headers=bearer(tokens))).json()
    assert me["acting_structure"] == "demo-ssiad" and me["roles"] == ["aide_soignant"]
    # X-Structure-Id still chooses per request.
    per_request = await platform.client.get(
        "/api/identity/me", headers={**bearer(tokens), "X-Structure-Id": "demo-ehpad"}
    )
    assert per_request.json()["roles"] == ["secretaire"]
    refused = await platform.client.post(
        "/api/identity/auth/token",
        json={
            "username": "sec@tilleuls.demo",
            "password": "Secretaire-2026-ok",
            "structure_id": "bsante-ops",
        },
    )
    assert refused.status_code == 403


async def test_a_rotated_key_is_published_before_it_signs(platform: Platform) -> None:
    before = await login(platform)
    old_kid = jwt.get_unverified_header(before["access_token"])["kid"]
    ops = bearer(await login(platform, OPS))
    rotated = await platform.client.post("/api/identity/admin/signing-keys/rotate", headers=ops)
    assert rotated.status_code == 200, rotated.text
    body = rotated.json()
    assert body["previous_kid"] == old_kid
    jwks = (await platform.client.get("/api/identity/.well-known/jwks.json")).json()
    assert {k["kid"] for k in jwks["keys"]} == {old_kid, body["kid"]}
    # Published, not yet signing: verifiers get time to learn it.
    during = await login(platform)
    assert jwt.get_unverified_header(during["access_token"])["kid"] == old_kid
    for tokens in (before, during):
        assert (
            await platform.client.get("/api/identity/me", headers=bearer(tokens))
        ).status_code == 200


async def test_after_rotation_old_and_new_tokens_both_verify(platform: Platform) -> None:
    identity = platform.services["identity"]
    before = await login(platform)
    ops = bearer(await login(platform, OPS))
    rotated = await platform.client.post(
        "/api/identity/admin/signing-keys/rotate", headers=ops, json={"activate_in_seconds": 0}
    )
    body = rotated.json()
    assert body["published_kids"] == [body["kid"], body["previous_kid"]]
    after = await login(platform)
    assert jwt.get_unverified_header(after["access_token"])["kid"] == body["kid"]
    assert identity.app.state.signing_keys[0].kid == body["kid"]
    jwks = (await platform.client.get("/api/identity/.well-known/jwks.json")).json()
    assert [k["kid"] for k in jwks["keys"]] == [body["kid"], body["previous_kid"]]

    # A verifier holding only the old key set learns the new key on the unknown kid.
    served: list[dict] = [{"keys": [jwks["keys"][1]]}]  # type: ignore[type-arg]

    async def source() -> dict:  # type: ignore[type-arg]
        return served[-1]

    verifier = TokenVerifier(
        source, issuer="bsante-identity", audience="bsante", min_refresh_seconds=0
    )
    assert (await verifier.verify(before["access_token"]))["sub"] == "user-admin-demo-ehpad"
    served.append(jwks)
    assert (await verifier.verify(after["access_token"]))["sub"] == "user-admin-demo-ehpad"
    assert (await verifier.verify(before["access_token"]))["sub"] == "user-admin-demo-ehpad"
    # With only the old key published, the new token would be refused.
    served.append({"keys": [jwks["keys"][1]]})
    stale = TokenVerifier(
        source, issuer="bsante-identity", audience="bsante", min_refresh_seconds=0
    )
    with pytest.raises(Unauthorized):
        await stale.verify(after["access_token"])


async def test_only_the_platform_operator_rotates_keys(platform: Platform) -> None:
    admin = bearer(await login(platform))
    response = await platform.client.post("/api/identity/admin/signing-keys/rotate", headers=admin)
    assert response.status_code == 403
