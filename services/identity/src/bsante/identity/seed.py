"""Demo data for the embedded platform: two structures, one administrator each."""

from __future__ import annotations

from bsante.chassis.store import DuplicateDocument, Store
from bsante.identity.domain import Structure, User, hash_password

DEMO_STRUCTURES = [
    Structure(id="demo-ehpad", name="EHPAD Les Tilleuls (démo)"),
    Structure(id="demo-ssiad", name="SSIAD du Val (démo)"),
]

# username, password, display name, structure
DEMO_USERS = [
    ("admin@tilleuls.demo", "Tilleuls-Demo-2026", "Administrateur Tilleuls", "demo-ehpad"),
    ("admin@val.demo", "ValDuSoin-Demo-2026", "Administrateur Val", "demo-ssiad"),
]


async def seed_demo(store: Store) -> None:
    for structure in DEMO_STRUCTURES:
        if await store.get("structures", structure.id) is None:
            try:
                async with store.transaction() as tx:
                    await tx.insert("structures", structure.id, structure.to_json())
            except DuplicateDocument:
                pass
    for username, password, display_name, structure_id in DEMO_USERS:
        user_id = "user-" + username.split("@")[0] + "-" + structure_id
        if await store.get("users", user_id) is not None:
            continue
        user = User(
            id=user_id,
            username=username,
            password_hash=hash_password(password),
            display_name=display_name,
            structures=[structure_id],
            roles={structure_id: ["structure_admin"]},
        )
        try:
            async with store.transaction() as tx:
                await tx.insert("users", user.id, user.to_json())
        except DuplicateDocument:
            pass
