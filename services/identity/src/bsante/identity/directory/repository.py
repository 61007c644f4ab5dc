"""Directory queries over the store port (registrations: `handlers.directory`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bsante.chassis.store import JSON, Document, Filter, Index, Query, Store
from bsante.identity.directory import model
from bsante.identity.domain import search_key

# "\uffff" sorts after every character a search key holds: [key, key + "\uffff") is a prefix.
_PREFIX_END = "\uffff"
# Every search is by name: a name prefix alone, or after the most selective exact criterion
# it has (RPPS or FINESS, then profession, then city; the others are checked on the records
# found). Activities are listed by professional or by structure.
INDEXES: list[Index] = [
    Index(model.PROFESSIONALS, ("name_key",)),
    Index(model.PROFESSIONALS, ("rpps", "name_key")),
    Index(model.PROFESSIONALS, ("profession_code", "name_key")),
    Index(model.PROFESSIONALS, ("city_key", "name_key")),
    Index(model.STRUCTURES, ("name_key",)),
    Index(model.STRUCTURES, ("finess", "name_key")),
    Index(model.STRUCTURES, ("city_key", "name_key")),
    Index(model.ACTIVITIES, ("ps_id_nat", "name_key")),
    Index(model.ACTIVITIES, ("structure_id", "name_key")),
]


@dataclass(frozen=True)
class Page:
    items: list[Document]
    total: int


def prefix(value: str) -> dict[str, str]:
    key = search_key(value)
    return {"$gte": key, "$lt": key + _PREFIX_END}


async def _page(store: Store, collection: str, where: Filter, limit: int, offset: int) -> Page:
    items = await store.find(
        collection,
        Query(where=where, order_by=[("name_key", False)], limit=limit, offset=offset),
    )
    return Page(items, await store.count(collection, where))


async def search_professionals(
    store: Store,
    *,
    name: str | None,
    rpps: str | None,
    profession: str | None,
    city: str | None,
    limit: int,
    offset: int,
) -> Page:
    """Name: prefix of "LAST FIRST", accent- and case-insensitive. City: the main activity's."""
    where: dict[str, Any] = {}
    if name and search_key(name):
        where["name_key"] = prefix(name)
    if rpps:
        where["rpps"] = rpps
    if profession:
        where["profession_code"] = profession
    if city:
        where["city_key"] = search_key(city)
    return await _page(store, model.PROFESSIONALS, where, limit, offset)


async def search_structures(
    store: Store,
    *,
    name: str | None,
    finess: str | None,
    city: str | None,
    limit: int,
    offset: int,
) -> Page:
    where: dict[str, Any] = {}
    if name and search_key(name):
        where["name_key"] = prefix(name)
    if finess:
        where["finess"] = finess
    if city:
        where["city_key"] = search_key(city)
    return await _page(store, model.STRUCTURES, where, limit, offset)


async def activities(store: Store, field: str, value: str, limit: int = 100) -> list[Document]:
    return await store.find(
        model.ACTIVITIES, Query(where={field: value}, order_by=[("name_key", False)], limit=limit)
    )


async def get(store: Store, collection: str, doc_id: str, max_length: int = 100) -> JSON | None:
    """A directory record (professional, structure, import report) by id; None if unknown."""
    doc = await store.get(collection, doc_id) if len(doc_id) <= max_length else None
    return doc.data if doc else None
