"""Password rules, lockout backoff, search keys and session structures."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from bsante.identity.domain import (
    LockoutPolicy,
    LoginThrottle,
    UnknownRoles,
    UnknownStructureForUser,
    User,
    WeakPassword,
    check_password_rules,
    hash_password,
    password_problems,
    search_key,
    throttle_key,
    verify_password,
)


def test_passwords_are_argon2id_and_verify() -> None:
    digest = hash_password("Correct-Horse-42")
    assert digest.startswith("$argon2id$")
    assert verify_password(digest, "Correct-Horse-42")
    assert not verify_password(digest, "correct-horse-42")
    assert not verify_password(None, "anything")
    assert not verify_password("not a hash", "anything")


@pytest.mark.parametrize(
    ("password", "ok"),
    [
        ("Tilleuls-Demo-2026", True),
        ("short-A1", False),
        ("alllowercaseletters", False),
        ("lowercase-and-digits-123", True),
        ("NOLOWERCASE123456", False),
        ("x" * 201 + "A1-", False),
    ],
)
def test_password_rules(password: str, ok: bool) -> None:
    assert (password_problems(password) == []) is ok


def test_a_password_may_not_contain_the_user_name() -> None:
    with pytest.raises(WeakPassword) as caught:
        check_password_rules("Marie.Dupont-2026!", username="dupont@ehpad.fr")
    assert caught.value.errors[0]["field"] == "password"


def test_lockout_backs_off_exponentially_up_to_a_cap() -> None:
    policy = LockoutPolicy(threshold=5, base_seconds=30, max_seconds=600)
    assert [policy.lock_seconds(n) for n in range(1, 11)] == [
        0, 0, 0, 0, 30, 60, 120, 240, 480, 600,
    ]  # fmt: skip


def test_throttle_locks_then_unlocks_with_time() -> None:
    policy = LockoutPolicy(threshold=2, base_seconds=10, max_seconds=100)
    now = datetime(2026, 3, 1, tzinfo=UTC)
    throttle = LoginThrottle()
    assert throttle.attempt(now, policy) == 0 and throttle.locked(now) is None
    assert throttle.attempt(now, policy) == 10
    assert throttle.locked(now + timedelta(seconds=9)) is not None
    assert throttle.locked(now + timedelta(seconds=10)) is None
    again = LoginThrottle.from_json(throttle.to_json())
    assert again == throttle


def test_throttle_key_hides_the_user_name_and_ignores_case() -> None:
    assert throttle_key(" Admin@Tilleuls.demo ") == throttle_key("admin@tilleuls.demo")
    assert "admin" not in throttle_key("admin@tilleuls.demo")


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("Léa", "LEA"),
        ("  d'Arc-Éloïse ", "D ARC ELOISE"),
        ("CŒUR", "COEUR"),
        ("", ""),
        (None, ""),
    ],
)
def test_search_key_is_accent_and_case_insensitive(text: str | None, key: str) -> None:
    assert search_key(text) == key


def _user() -> User:
    return User(
        id="u1",
        username="u@x.fr",
        password_hash=None,
        display_name="U",
        structures=["a", "b"],
        roles={"a": ["structure_admin"], "b": []},
    )


def test_the_session_structure_comes_first_in_the_token() -> None:
    user = _user()
    assert user.session_claims(None) == (["a", "b"], "a")
    assert user.session_claims("b") == (["b", "a"], "b")
    with pytest.raises(UnknownStructureForUser):
        user.session_claims("c")


def test_roles_are_replaced_per_structure_and_must_be_grantable() -> None:
    user = _user()
    assert user.set_roles("b", ["medecin", "secretaire"]) == (["medecin", "secretaire"], [])
    assert user.set_roles("b", ["medecin"]) == ([], ["secretaire"])
    assert user.roles["a"] == ["structure_admin"]
    with pytest.raises(UnknownRoles):
        user.set_roles("b", ["ops"])  # a platform role
    with pytest.raises(UnknownRoles):
        user.set_roles("b", ["pope"])


def test_old_user_documents_still_load() -> None:
    old = {
        "id": "u",
        "username": "u@x.fr",
        "password_hash": "h",
        "display_name": "U",
        "structures": ["a"],
        "roles": {},
        "profession": None,
        "active": True,
    }
    user = User.from_json(old)
    assert user.kind == "staff" and user.ps_id_nat is None
