"""Demo data for the embedded platform: structures, their administrators, two professionals of
the EHPAD (in the directory and with accounts) and a platform operator."""

from __future__ import annotations

from typing import Any

from bsante.chassis.store import DuplicateDocument, Store
from bsante.identity.accounts import insert_account
from bsante.identity.directory import model
from bsante.identity.directory.identifiers import PSIDNAT_OID, RPPS
from bsante.identity.domain import Structure, User, search_key
from bsante.identity.ports import PasswordHasher

DEMO_STRUCTURES = [
    # Fictitious FINESS (valid check digit): documents name their structure by it.
    Structure(id="demo-ehpad", name="EHPAD Les Tilleuls (démo)", finess="750000002"),
    Structure(id="demo-ssiad", name="SSIAD du Val (démo)", finess="750000010"),
    Structure(id="bsante-ops", name="Exploitation Bureautique Santé (démo)"),
]

# username, password, display name, structure, roles, RPPS (professionals)
DEMO_USERS: list[tuple[str, str, str, str, list[str], str | None]] = [
    ("admin@tilleuls.demo", "Tilleuls-Demo-2026", "Administrateur Tilleuls", "demo-ehpad",
     ["structure_admin"], None),
    ("admin@val.demo", "ValDuSoin-Demo-2026", "Administrateur Val", "demo-ssiad",
     ["structure_admin"], None),
    ("medecin@tilleuls.demo", "Medecin-Tilleuls-2026", "Dr Claire Lemaire", "demo-ehpad",
     [], "10001000016"),
    ("infirmier@tilleuls.demo", "Infirmier-Tilleuls-2026", "Paul Girard", "demo-ehpad",
     [], "10001000024"),
    ("ops@bsante.demo", "Exploitation-Demo-2026", "Exploitation", "bsante-ops", ["ops"], None),
]  # fmt: skip

# RPPS -> (last name, first name, TRE_G15 profession code, label, MSSanté address)
DEMO_PROFESSIONALS = {
    "10001000016": ("LEMAIRE", "Claire", "10", "Médecin", "claire.lemaire@tilleuls.mssante.fr"),
    "10001000024": ("GIRARD", "Paul", "60", "Infirmier", "paul.girard@tilleuls.mssante.fr"),
}


# The argon2 hashes of the demo passwords, computed once per process: every start of a demo
# platform (each test starts several) would otherwise pay about 0.2 s per demo user.
_DEMO_HASHES: dict[str, str] = {}


async def demo_hash(password: str) -> str:
    if password not in _DEMO_HASHES:
        _DEMO_HASHES[password] = await PasswordHasher().hash(password)
    return _DEMO_HASHES[password]


async def _insert(store: Store, collection: str, doc_id: str, data: dict[str, Any]) -> None:
    if await store.get(collection, doc_id) is not None:
        return
    try:
        async with store.transaction() as tx:
            await tx.insert(collection, doc_id, data)
    except DuplicateDocument:
        pass  # another replica seeded it first


async def seed_demo(store: Store) -> None:
    for structure in DEMO_STRUCTURES:
        await _insert(store, "structures", structure.id, structure.to_json())
    for number, (last, first, code, label, mss) in DEMO_PROFESSIONALS.items():
        ps_id_nat = RPPS(number).ps_id_nat.value
        await _insert(
            store,
            model.PROFESSIONALS,
            ps_id_nat,
            {
                "ps_id_nat": ps_id_nat,
                "ps_id_nat_oid": PSIDNAT_OID,
                "rpps": number,
                "adeli": None,
                "civility": None,
                "last_name": last,
                "first_name": first,
                "name_key": search_key(f"{last} {first}"),
                "profession_code": code,
                "profession_label": label,
                "category_code": "C",
                "specialties": [],
                "mssante": [mss],
                "city": None,
                "city_key": "",
                "source": "manual",
                "import_id": None,
                "updated_at": None,
            },
        )
    for username, password, display_name, structure_id, roles, rpps in DEMO_USERS:
        user_id = "user-" + username.split("@")[0] + "-" + structure_id
        user = User(
            id=user_id,
            username=username,
            password_hash=None,
            display_name=display_name,
            structures=[structure_id],
            roles={structure_id: roles},
            kind="professional" if rpps else "staff",
            ps_id_nat=RPPS(rpps).ps_id_nat.value if rpps else None,
            rpps=rpps,
            profession=DEMO_PROFESSIONALS[rpps][2] if rpps else None,
        )
        if await store.get("users", user_id) is not None:
            continue
        user.password_hash = await demo_hash(password)
        try:
            async with store.transaction() as tx:
                await insert_account(tx, user)
        except DuplicateDocument:
            pass  # another replica seeded it first
