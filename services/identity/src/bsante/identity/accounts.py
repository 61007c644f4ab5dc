"""Accounts in identity's store: reads of committed accounts, and the writes that claim a name.

A user name is unique because creating an account inserts a claim document whose id is the
normalised name (`usernames/<name>`), in the same transaction as the account: of two concurrent
creations, the second insert fails with `DuplicateDocument` and its whole transaction rolls
back. A professional has at most one account for the same reason (`professional_accounts/
<PSIdNat>`). A membership (`memberships/<structure>|<user>`) is itself the claim that a user is
listed once per structure.
"""

from __future__ import annotations

from typing import Any

from bsante.chassis.store import DuplicateDocument, Index, Query, Store, Transaction
from bsante.identity.domain import User

USERS = "users"
MEMBERSHIPS = "memberships"
USERNAMES = "usernames"
PROFESSIONAL_ACCOUNTS = "professional_accounts"
PROFESSIONALS = "professionals"
STRUCTURES = "structures"
# A structure's members by user name; every account by user name (the claims backfill).
INDEXES: list[Index] = [
    Index(MEMBERSHIPS, ("structure_id", "username")),
    Index(USERS, ("username",)),
]


def membership(user: User, structure_id: str) -> tuple[str, dict[str, str]]:
    """Document listing a user under a structure (the store filters scalars, not lists)."""
    return f"{structure_id}|{user.id}", {
        "structure_id": structure_id,
        "user_id": user.id,
        "username": user.username,
    }


class Accounts:
    """Committed accounts, read outside any transaction."""

    def __init__(self, store: Store) -> None:
        self._store = store

    async def get(self, user_id: str) -> tuple[User, int] | None:
        doc = await self._store.get(USERS, user_id) if len(user_id) <= 200 else None
        return (User.from_json(doc.data), doc.version) if doc else None

    async def member(self, structure_id: str, user_id: str) -> tuple[User, int] | None:
        found = await self.get(user_id)
        return found if found and found[0].acts_for(structure_id) else None

    async def by_username(self, username: str) -> User | None:
        claim = await self._store.get(USERNAMES, username)
        if claim is None:
            return None
        found = await self.get(str(claim.data["user_id"]))
        return found[0] if found else None

    async def account_of_professional(self, ps_id_nat: str) -> str | None:
        claim = await self._store.get(PROFESSIONAL_ACCOUNTS, ps_id_nat)
        return str(claim.data["user_id"]) if claim else None

    async def professional(self, ps_id_nat: str) -> dict[str, Any] | None:
        doc = await self._store.get(PROFESSIONALS, ps_id_nat)
        return doc.data if doc else None

    async def members(
        self, structure_id: str, *, limit: int, offset: int
    ) -> tuple[list[User], int]:
        """Accounts acting for the structure, by user name, and how many there are."""
        where = {"structure_id": structure_id}
        found = await self._store.find(
            MEMBERSHIPS,
            Query(where=where, order_by=[("username", False)], limit=limit, offset=offset),
        )
        users = await self._store.get_many(USERS, [m.data["user_id"] for m in found])
        items = [
            User.from_json(users[m.data["user_id"]].data)
            for m in found
            if m.data["user_id"] in users
        ]
        return items, await self._store.count(MEMBERSHIPS, where)


async def profession_of(tx: Transaction, user: User) -> str | None:
    """A professional's profession comes from the directory; the account's own value otherwise."""
    if user.ps_id_nat:
        doc = await tx.get(PROFESSIONALS, user.ps_id_nat)
        if doc is not None and doc.data.get("profession_code"):
            return str(doc.data["profession_code"])
    return user.profession


async def insert_account(tx: Transaction, user: User) -> None:
    """The account, its claims and its memberships; `DuplicateDocument` names the taken claim."""
    await tx.insert(USERNAMES, user.username, {"user_id": user.id})
    if user.ps_id_nat:
        await tx.insert(PROFESSIONAL_ACCOUNTS, user.ps_id_nat, {"user_id": user.id})
    await tx.insert(USERS, user.id, user.to_json())
    for structure_id in user.structures:
        await tx.insert(MEMBERSHIPS, *membership(user, structure_id))


async def backfill_claims(store: Store, page_size: int = 500) -> int:
    """Claims for accounts created before claims existed; return how many were added.

    Run at start: idempotent, and a claim another replica inserted meanwhile is left alone.
    """
    added, offset = 0, 0
    while True:
        page = await store.find(
            USERS, Query(order_by=[("username", False)], limit=page_size, offset=offset)
        )
        for doc in page:
            claims = [(USERNAMES, str(doc.data["username"]))]
            if doc.data.get("ps_id_nat"):
                claims.append((PROFESSIONAL_ACCOUNTS, str(doc.data["ps_id_nat"])))
            for collection, key in claims:
                if await store.get(collection, key) is not None:
                    continue
                try:
                    async with store.transaction() as tx:
                        await tx.insert(collection, key, {"user_id": doc.id})
                    added += 1
                except DuplicateDocument:
                    pass
        if len(page) < page_size:
            return added
        offset += page_size
