"""Persistence of patients and what hangs off them, always scoped to one structure."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from bsante.chassis.store import Index, Query, Store, Transaction
from bsante.chassis.text import search_key
from bsante.patient.annotations import Correspondent, PostIt
from bsante.patient.domain import PatientRecord, Traits
from bsante.patient.errors import ConflictError, DuplicateSuspected
from bsante.patient.timeline import COLLECTION as TIMELINE
from bsante.patient.timeline import TimelineEntry

PATIENTS = "patients"
# One document per (structure, matricule): the store's unique id is what makes "the same
# person twice" impossible, even for two concurrent requests.
KEYS = "patient_keys"
# One document per (structure, birth name, first given name, sex, birth date) listing the
# active records that carry these traits: claimed in the creation's transaction, so two
# concurrent creations of the same person cannot both pass the duplicate check.
TRAIT_KEYS = "patient_trait_keys"
# One document per exclusive attachment of a patient (the médecin traitant, a professional in
# a role), holding the correspondent that has it, or None once released.
CLAIMS = "patient_claims"
IPP_COUNTERS = "ipp_counters"
POSTITS = "postits"
CORRESPONDENTS = "correspondents"
CARD_READS = "card_reads"
# Upper bound of candidates compared in memory (a structure has hundreds of patients).
MAX_CANDIDATES = 1000
# The search (active records of a structure by name, which also serves the same-traits
# check: birth name and first given name are its next fields), look-ups by IPP and by
# matricule, and what hangs off a patient's lineage, in the order it is listed.
INDEXES: list[Index] = [
    Index(PATIENTS, ("structure_id", "active", "search.birth_name", "search.given_name")),
    Index(PATIENTS, ("structure_id", "ipp")),
    Index(PATIENTS, ("structure_id", "search.matricule")),
    Index(POSTITS, ("patient_id", "deleted", "created_at")),
    Index(CORRESPONDENTS, ("patient_id", "removed", "added_at")),
    Index(TIMELINE, ("patient_id", "at")),
]


async def add(tx: Transaction, patient: PatientRecord) -> int:
    doc = await tx.insert(PATIENTS, str(patient.id), patient.model_dump(mode="json"))
    return doc.version


async def get(store: Store, structure_id: str, patient_id: str) -> tuple[PatientRecord, int] | None:
    """The patient and its version, or None when absent or of another structure."""
    doc = await store.get(PATIENTS, patient_id)
    if doc is None or doc.data.get("structure_id") != structure_id:
        return None
    return PatientRecord.model_validate(doc.data), doc.version


async def get_in(tx: Transaction, structure_id: str, patient_id: str) -> tuple[PatientRecord, int]:
    doc = await tx.get(PATIENTS, patient_id)
    if doc is None or doc.data.get("structure_id") != structure_id:
        raise LookupError(patient_id)
    return PatientRecord.model_validate(doc.data), doc.version


async def save(tx: Transaction, patient: PatientRecord, expected_version: int) -> int:
    doc = await tx.update(
        PATIENTS, str(patient.id), patient.model_dump(mode="json"), expected_version
    )
    return doc.version


# -- uniqueness of a matricule --------------------------------------------------------------


def _key(structure_id: str, matricule: str) -> str:
    return f"{structure_id}:{matricule}"


async def owner_of(store: Store, structure_id: str, matricule: str) -> str | None:
    doc = await store.get(KEYS, _key(structure_id, matricule))
    return None if doc is None else doc.data.get("patient_id")


async def claim_matricule(
    tx: Transaction, structure_id: str, matricule: str, patient_id: str, *, field: str
) -> None:
    """Attach the matricule to the patient; Conflict when another active record holds it."""
    key = _key(structure_id, matricule)
    doc = await tx.get(KEYS, key)
    if doc is None:
        await tx.insert(KEYS, key, {"structure_id": structure_id, "patient_id": patient_id})
        return
    owner = doc.data.get("patient_id")
    if owner == patient_id:
        return
    if owner is not None:
        raise ConflictError(
            "Another record of this structure carries the same INS/NIR: it is the same "
            "person (merge the records)",
            errors=[{"field": field, "message": "same INS as another record", "patient_id": owner}],
        )
    await tx.update(KEYS, key, {**doc.data, "patient_id": patient_id}, doc.version)


async def move_matricule(tx: Transaction, structure_id: str, matricule: str, to: str) -> None:
    doc = await tx.get(KEYS, _key(structure_id, matricule))
    if doc is not None:
        await tx.update(KEYS, doc.id, {**doc.data, "patient_id": to}, doc.version)


# -- same traits: the duplicate check --------------------------------------------------------


def traits_key(structure_id: str, traits: Traits) -> str:
    return ":".join(
        (
            structure_id,
            search_key(traits.birth_name),
            search_key(traits.first_birth_given_name),
            traits.sex,
            traits.birth_date.isoformat(),
        )
    )


def duplicates_suspected(patient_ids: list[str]) -> DuplicateSuspected:
    return DuplicateSuspected(
        "A record with the same birth name, first given name, sex and birth date exists: "
        "open it, or confirm that this is another person (confirm_not_duplicate=true)",
        errors=[
            {"field": "traits", "message": "possible duplicate", "patient_id": pid}
            for pid in patient_ids
        ],
    )


async def claim_traits(tx: Transaction, patient: PatientRecord, *, confirmed: bool) -> list[str]:
    """Attach the record to its traits key; the other active records holding it (homonyms).

    DuplicateSuspected when there are some and the caller did not confirm another person.
    """
    key = traits_key(patient.structure_id, patient.traits)
    pid = str(patient.id)
    doc = await tx.get(TRAIT_KEYS, key)
    if doc is None:
        await tx.insert(
            TRAIT_KEYS, key, {"structure_id": patient.structure_id, "patient_ids": [pid]}
        )
        return []
    holders: list[str] = list(doc.data.get("patient_ids", []))
    others = [i for i in holders if i != pid]
    if others and not confirmed:
        raise duplicates_suspected(others)
    if pid not in holders:
        await tx.update(TRAIT_KEYS, key, {**doc.data, "patient_ids": [*holders, pid]}, doc.version)
    return others


async def release_traits(tx: Transaction, patient: PatientRecord) -> None:
    """The record no longer carries these traits (corrected, or merged away)."""
    key = traits_key(patient.structure_id, patient.traits)
    doc = await tx.get(TRAIT_KEYS, key)
    if doc is None:
        return
    holders = [i for i in doc.data.get("patient_ids", []) if i != str(patient.id)]
    await tx.update(TRAIT_KEYS, key, {**doc.data, "patient_ids": holders}, doc.version)


async def flag_homonyms(
    tx: Transaction, structure_id: str, patient_ids: list[str]
) -> list[PatientRecord]:
    """Set the homonym flag on these records (in the caller's transaction); the changed ones."""
    changed = []
    for pid in patient_ids:
        doc = await tx.get(PATIENTS, pid)
        if doc is None or doc.data.get("structure_id") != structure_id:
            continue
        record = PatientRecord.model_validate(doc.data)
        if record.attributes.homonym:
            continue
        flagged = record.flagged_homonym()
        await tx.update(PATIENTS, pid, flagged.model_dump(mode="json"), doc.version)
        changed.append(flagged)
    return changed


# -- exclusive attachments ------------------------------------------------------------------


async def claim(tx: Transaction, key: str, holder: str) -> str | None:
    """Take `key` for `holder`; the current holder when someone else has it (nothing taken)."""
    doc = await tx.get(CLAIMS, key)
    if doc is None:
        await tx.insert(CLAIMS, key, {"holder": holder})
        return None
    current = doc.data.get("holder")
    if current is not None and current != holder:
        return str(current)
    if current is None:
        await tx.update(CLAIMS, key, {"holder": holder}, doc.version)
    return None


async def release(tx: Transaction, key: str, holder: str) -> None:
    doc = await tx.get(CLAIMS, key)
    if doc is not None and doc.data.get("holder") == holder:
        await tx.update(CLAIMS, key, {"holder": None}, doc.version)


async def next_ipp(tx: Transaction, structure_id: str) -> str:
    """The structure's next IPP (a counter in the same transaction as the creation)."""
    doc = await tx.get(IPP_COUNTERS, structure_id)
    if doc is None:
        await tx.insert(IPP_COUNTERS, structure_id, {"last": 1})
        return f"{1:08d}"
    last = int(doc.data["last"]) + 1
    await tx.update(IPP_COUNTERS, structure_id, {"last": last}, doc.version)
    return f"{last:08d}"


# -- duplicates and search ------------------------------------------------------------------


async def same_traits(
    store: Store, structure_id: str, traits: Traits, *, excluding: str | None = None
) -> list[PatientRecord]:
    """Active records with the same birth name, first given name, sex and birth date."""
    docs = await store.find(
        PATIENTS,
        Query(
            where={
                "structure_id": structure_id,
                "active": True,
                "search.birth_name": search_key(traits.birth_name),
                "search.given_name": search_key(traits.first_birth_given_name),
                "traits.birth_date": traits.birth_date.isoformat(),
                "traits.sex": traits.sex,
            },
            limit=20,
        ),
    )
    return [PatientRecord.model_validate(d.data) for d in docs if d.id != excluding]


def _prefix(key: str) -> dict[str, str]:
    # Keys hold only A-Z: "~" sorts after every one of them.
    return {"$gte": key, "$lt": key + "~"}


async def search(
    store: Store,
    structure_id: str,
    *,
    name: str | None,
    given: str | None,
    birth_date: str | None,
    matricule: str | None,
    ipp: str | None,
    limit: int,
    offset: int,
) -> tuple[list[PatientRecord], int]:
    """Active patients matching every given criterion; `name` is a prefix of the birth or
    used name. Ordered by birth name, first given name, id."""
    base: dict[str, Any] = {"structure_id": structure_id, "active": True}
    if given:
        base["search.given_name"] = _prefix(search_key(given))
    if birth_date:
        base["traits.birth_date"] = birth_date
    if matricule:
        base["search.matricule"] = matricule
    if ipp:
        base["ipp"] = ipp
    order = (("search.birth_name", False), ("search.given_name", False))
    if not name:
        total = await store.count(PATIENTS, base)
        docs = await store.find(PATIENTS, Query(base, order, limit, offset))
        return [PatientRecord.model_validate(d.data) for d in docs], total
    key = search_key(name)
    if not key:
        return [], 0
    # No OR in the store's filters: the union of two ordered queries, merged in memory.
    by_birth: Mapping[str, Any] = {**base, "search.birth_name": _prefix(key)}
    by_used: Mapping[str, Any] = {**base, "search.used_name": _prefix(key)}
    both: Mapping[str, Any] = {**by_birth, "search.used_name": _prefix(key)}
    total = (
        await store.count(PATIENTS, by_birth)
        + await store.count(PATIENTS, by_used)
        - await store.count(PATIENTS, both)
    )
    window = min(offset + limit, MAX_CANDIDATES)
    merged: dict[str, PatientRecord] = {}
    for where in (by_birth, by_used):
        for doc in await store.find(PATIENTS, Query(where, order, window, 0)):
            merged[doc.id] = PatientRecord.model_validate(doc.data)
    ordered = sorted(
        merged.values(),
        key=lambda p: (p.search.birth_name, p.search.given_name, str(p.id)),
    )
    return ordered[offset : offset + limit], total


# -- post-its, correspondents, timeline, card reads -----------------------------------------


async def add_postit(tx: Transaction, postit: PostIt) -> None:
    await tx.insert(POSTITS, str(postit.id), postit.model_dump(mode="json"))


async def postits(store: Store, lineage: list[str]) -> list[PostIt]:
    docs = await store.find(
        POSTITS,
        Query({"patient_id": {"$in": lineage}, "deleted": False}, (("created_at", True),), 500),
    )
    return [PostIt.model_validate(d.data) for d in docs]


async def get_postit(tx: Transaction, postit_id: str) -> tuple[PostIt, int] | None:
    doc = await tx.get(POSTITS, postit_id)
    return None if doc is None else (PostIt.model_validate(doc.data), doc.version)


async def save_postit(tx: Transaction, postit: PostIt, version: int) -> None:
    await tx.update(POSTITS, str(postit.id), postit.model_dump(mode="json"), version)


async def add_correspondent(tx: Transaction, correspondent: Correspondent) -> None:
    await tx.insert(CORRESPONDENTS, str(correspondent.id), correspondent.model_dump(mode="json"))


async def correspondents(store: Store, lineage: list[str]) -> list[Correspondent]:
    docs = await store.find(
        CORRESPONDENTS,
        Query({"patient_id": {"$in": lineage}, "removed": False}, (("added_at", False),), 200),
    )
    return [Correspondent.model_validate(d.data) for d in docs]


async def get_correspondent(tx: Transaction, cid: str) -> tuple[Correspondent, int] | None:
    doc = await tx.get(CORRESPONDENTS, cid)
    return None if doc is None else (Correspondent.model_validate(doc.data), doc.version)


async def save_correspondent(tx: Transaction, c: Correspondent, version: int) -> None:
    await tx.update(CORRESPONDENTS, str(c.id), c.model_dump(mode="json"), version)


async def timeline(
    store: Store,
    lineage: list[str],
    *,
    kinds: list[str],
    since: str | None,
    until: str | None,
    limit: int,
    offset: int,
) -> tuple[list[TimelineEntry], int]:
    where: dict[str, Any] = {"patient_id": {"$in": lineage}}
    if kinds:
        where["kind"] = {"$in": kinds}
    period: dict[str, str] = {}
    if since:
        period["$gte"] = since
    if until:
        period["$lt"] = until
    if period:
        where["at"] = period
    total = await store.count(TIMELINE, where)
    docs = await store.find(TIMELINE, Query(where, (("at", True),), limit, offset))
    return [TimelineEntry.model_validate(d.data) for d in docs], total
