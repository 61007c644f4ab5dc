"""Use cases of documents produced elsewhere: uploaded by a user (a scanned letter, a PDF the
patient brought) or attached by the MSSanté connector; kept as blobs, listed with the others."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterable
from dataclasses import dataclass
from datetime import date
from typing import Literal

from bsante.contracts.events.documents import ExternalDocumentAttached
from bsante.documents import repository
from bsante.documents.domain import Artefact, Document, DocumentsRefusal, NoSuchPatient
from bsante.documents.handlers.common import Caller, Ports, audit
from bsante.documents.handlers.drafts import Saved, facts_json


@dataclass(frozen=True)
class Received:
    patient_id: uuid.UUID
    media_type: str
    title: str
    origin: Literal["upload", "mssante"] = "upload"
    type_code: str | None = None
    document_date: date | None = None
    author: str | None = None
    source_id: str | None = None


async def _store(ports: Ports, chunks: AsyncIterable[bytes], media_type: str) -> Artefact:
    """BlobTooLarge and BlobMediaTypeRefused leave as they are (413 and 415 at the edge)."""
    info = await ports.blobs.put(chunks, kind=ports.kinds.received, media_type=media_type)
    return Artefact(sha256=info.sha256, size=info.size, media_type=info.media_type)


async def attach(
    ports: Ports,
    caller: Caller,
    received: Received,
    chunks: AsyncIterable[bytes],
    *,
    service_client: str | None = None,
) -> tuple[Saved, bool]:
    """(the document, created); a repeat of (origin, source_id) gives the first one back."""
    key = f"{received.origin}:{received.source_id}" if received.source_id else None
    if key is not None:
        first = await repository.claimed(ports.store, repository.RECEIVED, key)
        if first is not None:
            return await _existing(ports, first), False
    patient, structure = await asyncio.gather(
        ports.sources.patients.patient(
            str(received.patient_id), user_id=caller.user, structure_id=caller.structure
        ),
        ports.sources.directory.structure(caller.structure),
    )
    if patient is None:
        raise NoSuchPatient()
    file = await _store(ports, chunks, received.media_type)
    doc_id = uuid.uuid4()
    await ports.blobs.add_reference(file.sha256, f"document:{doc_id}")
    now = ports.clock()
    document = Document(
        id=doc_id,
        structure_id=caller.structure,
        patient_id=received.patient_id,
        origin=received.origin,
        status="received",
        set_id=uuid.uuid4(),
        type_code=received.type_code,
        title=received.title,
        author_id=caller.user,
        author_text=received.author,
        document_date=received.document_date,
        created_at=now,
        updated_at=now,
        file=file,
        source_id=received.source_id,
        # What a CDA N1 wrapping it names, should it be shared.
        facts=facts_json(patient, None, structure),
    )
    first_id: str | None = None
    version = 0
    async with ports.unit_of_work() as uow:
        if key is not None:
            try:
                await repository.claim(uow.tx, repository.RECEIVED, key, doc_id)
            except repository.AlreadyClaimed as taken:
                first_id = taken.owner
        if first_id is None:
            version = await repository.add(uow.tx, document)
            await uow.emit(
                ExternalDocumentAttached(
                    document_id=doc_id,
                    patient_id=received.patient_id,
                    origin=received.origin,
                    type_code=received.type_code,
                    attached_by=service_client or caller.user,
                    sha256=file.sha256,
                    media_type=file.media_type,
                ),
                structure_id=caller.structure,
                subject_id=str(document.set_id),
            )
            await audit(uow, caller, received.patient_id, "create", service_client=service_client)
    if first_id is not None:
        # A concurrent delivery of the same message won the claim: answer with its document.
        await ports.blobs.remove_reference(file.sha256, f"document:{doc_id}")
        return await _existing(ports, first_id), False
    return Saved(document, version), True


async def _existing(ports: Ports, document_id: str) -> Saved:
    found = await repository.get(ports.store, None, document_id)
    if found is None:
        raise DocumentsRefusal("The received document is being attached; retry")
    return Saved(*found)
