"""The demo seed: every demo account is created, its passwords hashed once per process."""

from __future__ import annotations

from pathlib import Path

import pytest

from bsante.chassis.store.sqlite import SqliteStore
from bsante.identity import domain, seed
from bsante.identity.accounts import Accounts


async def test_demo_passwords_are_hashed_once_per_process(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[str] = []
    real = domain.hash_password

    def counting(password: str) -> str:
        calls.append(password)
        return real(password)

    monkeypatch.setattr(domain, "hash_password", counting)
    monkeypatch.setattr(seed, "_DEMO_HASHES", {})
    for name in ("one", "two"):
        store = SqliteStore(tmp_path / f"{name}.db")
        await store.start()
        try:
            await seed.seed_demo(store)
            await seed.seed_demo(store)  # idempotent
            accounts = Accounts(store)
            for username, password, *_ in seed.DEMO_USERS:
                user = await accounts.by_username(username)
                assert user is not None and user.password_hash == seed._DEMO_HASHES[password]
        finally:
            await store.close()
    assert sorted(calls) == sorted(p for _, p, *_ in seed.DEMO_USERS)
