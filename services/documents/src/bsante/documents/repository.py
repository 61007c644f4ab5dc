"""Persistence of templates and documents over the store port, always scoped to one structure.

Rules that say "once" are claimed inside the write transaction by inserting a key document:
a template version (`template_versions`, id `<template>:<version>`), the new version of a
signed document (`replacements`, id = the replaced document), and a received document
(`received`, id `<origin>:<source id>`).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any, Final

from bsante.chassis.store import Index, Query, Store, Transaction
from bsante.documents.domain import Document, Template

TEMPLATES: Final = "templates"
TEMPLATE_VERSIONS: Final = "template_versions"
DOCUMENTS: Final = "documents"
REPLACEMENTS: Final = "replacements"
RECEIVED: Final = "received"
PAGE: Final = 500

# Lists: a structure's templates by name; a patient's documents, an author's, or those of one
# status, newest first.
INDEXES: list[Index] = [
    Index(TEMPLATES, ("structure_id", "name")),
    Index(DOCUMENTS, ("structure_id", "patient_id", "created_at")),
    Index(DOCUMENTS, ("structure_id", "author_id", "created_at")),
    Index(DOCUMENTS, ("structure_id", "status", "created_at")),
]


class AlreadyClaimed(Exception):
    """Another write claimed the key first; `owner` is what the claim names."""

    def __init__(self, owner: str) -> None:
        super().__init__(owner)
        self.owner = owner


# -- templates --------------------------------------------------------------------------------


async def add_template(tx: Transaction, template: Template) -> Template:
    doc = await tx.insert(TEMPLATES, str(template.id), template.model_dump(mode="json"))
    await _record_version(tx, template)
    return template.model_copy(update={"version": doc.version})


async def save_template(tx: Transaction, template: Template, expected_version: int) -> Template:
    data = template.model_dump(mode="json")
    doc = await tx.update(TEMPLATES, str(template.id), data, expected_version)
    saved = template.model_copy(update={"version": doc.version})
    await _record_version(tx, saved)
    return saved


async def _record_version(tx: Transaction, template: Template) -> None:
    # Kept for ever: a document names the version it came from.
    await tx.insert(
        TEMPLATE_VERSIONS, f"{template.id}:{template.version}", template.model_dump(mode="json")
    )


async def get_template(store: Store, structure_id: str, template_id: str) -> Template | None:
    doc = await store.get(TEMPLATES, template_id)
    if doc is None or doc.data.get("structure_id") != structure_id:
        return None
    return Template.model_validate({**doc.data, "version": doc.version})


async def get_template_version(
    store: Store, structure_id: str, template_id: str, version: int
) -> Template | None:
    doc = await store.get(TEMPLATE_VERSIONS, f"{template_id}:{version}")
    if doc is None or doc.data.get("structure_id") != structure_id:
        return None
    return Template.model_validate(doc.data)


async def templates(store: Store, structure_id: str) -> list[Template]:
    found: list[Template] = []
    while True:
        docs = await store.find(
            TEMPLATES,
            Query(
                where={"structure_id": structure_id},
                order_by=(("name", False),),
                limit=PAGE,
                offset=len(found),
            ),
        )
        found.extend(Template.model_validate({**d.data, "version": d.version}) for d in docs)
        if len(docs) < PAGE:
            return found


# -- documents --------------------------------------------------------------------------------


async def add(tx: Transaction, document: Document) -> int:
    doc = await tx.insert(DOCUMENTS, str(document.id), document.model_dump(mode="json"))
    return doc.version


async def save(tx: Transaction, document: Document, expected_version: int) -> int:
    doc = await tx.update(
        DOCUMENTS, str(document.id), document.model_dump(mode="json"), expected_version
    )
    return doc.version


async def get(
    store: Store, structure_id: str | None, document_id: str
) -> tuple[Document, int] | None:
    """The document and its store version; None when absent or of another structure
    (`structure_id` None: any structure, for the connectors' service routes)."""
    doc = await store.get(DOCUMENTS, document_id)
    if doc is None or (structure_id is not None and doc.data.get("structure_id") != structure_id):
        return None
    return Document.model_validate(doc.data), doc.version


async def find(
    store: Store,
    structure_id: str,
    where: Mapping[str, Any],
    *,
    limit: int,
    offset: int,
) -> list[tuple[Document, int]]:
    docs = await store.find(
        DOCUMENTS,
        Query(
            where={"structure_id": structure_id, **where},
            order_by=(("created_at", True),),
            limit=limit,
            offset=offset,
        ),
    )
    return [(Document.model_validate(d.data), d.version) for d in docs]


async def claim(tx: Transaction, collection: str, key: str, owner: uuid.UUID) -> None:
    """Claim `key` for `owner`; AlreadyClaimed (naming the first owner) if taken."""
    created = await tx.insert_if_absent(collection, key, {"owner": str(owner)})
    if created is None:
        existing = await tx.get(collection, key)
        raise AlreadyClaimed(str(existing.data["owner"]) if existing is not None else "")


async def claimed(store: Store, collection: str, key: str) -> str | None:
    doc = await store.get(collection, key)
    return str(doc.data["owner"]) if doc is not None else None
