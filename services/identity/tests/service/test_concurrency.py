"""Identity's rules under concurrent requests: unique user names, atomic lockout counters, two
tabs refreshing one session; and the password change that must not look like a lost session."""

from __future__ import annotations

import asyncio
import threading
from collections import Counter

import pytest
from identity_kit import FakeClock  # type: ignore[import-not-found]
from kit import TILLEULS, Platform  # type: ignore[import-not-found]

from bsante.identity import domain

TOKEN = "/api/identity/auth/token"
REFRESH = "/api/identity/auth/refresh"


async def _login(platform: Platform, username: str, password: str) -> dict:  # type: ignore[type-arg]
    response = await platform.client.post(TOKEN, json={"username": username, "password": password})
    assert response.status_code == 200, response.text
    body: dict = response.json()  # type: ignore[type-arg]
    return body


async def test_five_concurrent_creations_of_one_user_name_create_one_account(
    platform: Platform,
) -> None:
    admin = await platform.login()
    # The same name in different cases: user names are case-insensitive.
    names = ["sec@tilleuls.demo", "Sec@Tilleuls.demo", "SEC@TILLEULS.DEMO", "sec@tilleuls.DEMO"]
    responses = await asyncio.gather(
        *(
            platform.client.post(
                "/api/identity/users",
                headers=admin,
                json={
                    "username": names[i % len(names)],
                    "display_name": f"Secrétaire {i}",
                    "password": "Secretaire-2026-ok",
                },
            )
            for i in range(5)
        )
    )
    statuses = Counter(r.status_code for r in responses)
    assert statuses == {201: 1, 409: 4}, [r.text for r in responses]
    conflict = next(r for r in responses if r.status_code == 409).json()
    assert conflict["errors"][0]["field"] == "username"
    store = platform.services["identity"].store
    users = await store.find("users", None)
    assert [u.data["username"] for u in users].count("sec@tilleuls.demo") == 1
    assert await store.count("memberships", {"username": "sec@tilleuls.demo"}) == 1
    # Any case logs in.
    await _login(platform, "SEC@tilleuls.Demo", "Secretaire-2026-ok")


@pytest.mark.parametrize("username", [TILLEULS[0], "nobody@nowhere.demo"])
async def test_twenty_concurrent_wrong_passwords_lock_the_account(
    platform: Platform, username: str
) -> None:
    responses = await asyncio.gather(
        *(
            platform.client.post(TOKEN, json={"username": username, "password": f"wrong-{i}"})
            for i in range(20)
        )
    )
    statuses = Counter(r.status_code for r in responses)
    # Every attempt is counted before its password is checked: only the first `threshold` (5)
    # are checked at all, the others find the name locked.
    assert statuses == {401: 5, 429: 15}, statuses
    locked = await platform.client.post(TOKEN, json={"username": username, "password": TILLEULS[1]})
    assert locked.status_code == 429
    assert int(locked.headers["Retry-After"]) >= 1
    throttles = await platform.services["identity"].store.find("login_throttles", None)
    assert [t.data["failures"] for t in throttles] == [5]


async def test_the_lock_expires_on_the_identity_clock(platform: Platform, clock: FakeClock) -> None:
    for _ in range(5):
        await platform.client.post(TOKEN, json={"username": TILLEULS[0], "password": "wrong"})
    refused = await platform.client.post(
        TOKEN, json={"username": TILLEULS[0], "password": TILLEULS[1]}
    )
    assert refused.status_code == 429
    clock.advance(31)  # the first lock lasts IDENTITY_LOCKOUT_BASE_SECONDS (30)
    await _login(platform, *TILLEULS)


async def test_two_concurrent_refreshes_of_one_token_keep_the_user_logged_in(
    platform: Platform, clock: FakeClock
) -> None:
    first = await _login(platform, *TILLEULS)
    tabs = await asyncio.gather(
        *(
            platform.client.post(REFRESH, json={"refresh_token": first["refresh_token"]})
            for _ in "ab"
        )
    )
    assert [t.status_code for t in tabs] == [200, 200], [t.text for t in tabs]
    a, b = (t.json() for t in tabs)
    assert a["refresh_token"] == b["refresh_token"] and a["access_token"] == b["access_token"]
    assert a["refresh_token"] != first["refresh_token"]
    # Inside the window a late tab gets the same pair too.
    clock.advance(19)
    late = await platform.client.post(REFRESH, json={"refresh_token": first["refresh_token"]})
    assert late.status_code == 200 and late.json()["refresh_token"] == a["refresh_token"]
    # The store keeps neither token usable: digests as ids, the successor only encrypted.
    stored = await platform.services["identity"].store.find("refresh_tokens", None)
    for doc in stored:
        text = doc.id + str(doc.data)
        assert first["refresh_token"] not in text and a["refresh_token"] not in text
        assert a["access_token"] not in text
    # The new token works and rotates again.
    second = await platform.client.post(REFRESH, json={"refresh_token": a["refresh_token"]})
    assert second.status_code == 200


async def test_a_reuse_after_the_grace_window_revokes_the_session(
    platform: Platform, clock: FakeClock
) -> None:
    first = await _login(platform, *TILLEULS)
    new = await platform.client.post(REFRESH, json={"refresh_token": first["refresh_token"]})
    assert new.status_code == 200
    clock.advance(21)  # IDENTITY_REFRESH_GRACE_SECONDS is 20
    replay = await platform.client.post(REFRESH, json={"refresh_token": first["refresh_token"]})
    assert replay.status_code == 401
    # The whole family is gone: the successor no longer refreshes.
    after = await platform.client.post(REFRESH, json={"refresh_token": new.json()["refresh_token"]})
    assert after.status_code == 401
    sessions = await platform.services["identity"].store.find("sessions", None)
    assert [s.data["revoked_reason"] for s in sessions] == ["refresh token reused"]


async def test_a_wrong_current_password_is_403_not_401(platform: Platform) -> None:
    headers = await platform.login()
    wrong = await platform.client.put(
        "/api/identity/me/password",
        headers=headers,
        json={"current_password": "not-the-password", "new_password": "Nouveau-Mot-2026"},
    )
    assert wrong.status_code == 403, wrong.text
    assert wrong.json()["errors"][0]["field"] == "current_password"
    changed = await platform.client.put(
        "/api/identity/me/password",
        headers=headers,
        json={"current_password": TILLEULS[1], "new_password": "Nouveau-Mot-2026"},
    )
    assert changed.status_code == 204, changed.text
    await _login(platform, TILLEULS[0], "Nouveau-Mot-2026")
    old = await platform.client.post(TOKEN, json={"username": TILLEULS[0], "password": TILLEULS[1]})
    assert old.status_code == 401


@pytest.mark.parametrize("bad", ["Dr\x00Who", "Dr \u202eohW", "Dr\u2066Who", "Dr\x1bWho"])
async def test_identity_free_text_refuses_control_and_bidi_characters(
    platform: Platform, bad: str
) -> None:
    admin = await platform.login()
    user = await platform.client.post(
        "/api/identity/users",
        headers=admin,
        json={"username": "x@tilleuls.demo", "display_name": bad, "password": "Secretaire-2026-ok"},
    )
    assert user.status_code == 422 and user.json()["errors"][0]["field"] == "display_name"
    structure = await platform.client.put(
        "/api/identity/structures/current", headers=admin, json={"name": bad}
    )
    assert structure.status_code == 422 and structure.json()["errors"][0]["field"] == "name"
    assert await platform.services["identity"].store.find("users", None)
    assert not [
        u
        for u in await platform.services["identity"].store.find("users", None)
        if u.data["username"] == "x@tilleuls.demo"
    ]


async def test_a_user_name_must_stay_one_address_once_normalised(platform: Platform) -> None:
    admin = await platform.login()
    response = await platform.client.post(
        "/api/identity/users",
        headers=admin,
        json={
            "username": "a\uff20b@tilleuls.demo",  # a full-width "@" folds to a second "@"
            "display_name": "A",
            "password": "Secretaire-2026-ok",
        },
    )
    assert response.status_code == 422 and response.json()["errors"][0]["field"] == "username"


async def test_passwords_are_checked_off_the_event_loop(
    platform: Platform, monkeypatch: pytest.MonkeyPatch
) -> None:
    threads: list[int] = []
    verify = domain.verify_password

    def recording(password_hash: str | None, password: str) -> bool:
        threads.append(threading.get_ident())
        return verify(password_hash, password)

    monkeypatch.setattr(domain, "verify_password", recording)
    await _login(platform, *TILLEULS)
    assert threads and threading.get_ident() not in threads


async def test_the_sealed_pair_is_dropped_once_its_window_has_passed(
    platform: Platform, clock: FakeClock
) -> None:
    first = await _login(platform, *TILLEULS)
    new = await platform.client.post(REFRESH, json={"refresh_token": first["refresh_token"]})
    clock.advance(21)
    newer = await platform.client.post(REFRESH, json={"refresh_token": new.json()["refresh_token"]})
    assert newer.status_code == 200
    stored = await platform.services["identity"].store.find("refresh_tokens", None)
    sealed = [d for d in stored if d.data.get("successor")]
    assert len(sealed) == 1, "only the latest exchange keeps its sealed pair"
    replay = await platform.client.post(REFRESH, json={"refresh_token": first["refresh_token"]})
    assert replay.status_code == 401
