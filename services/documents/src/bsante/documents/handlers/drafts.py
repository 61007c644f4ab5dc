"""Use cases of a document's content: draft from a template, edit, preview, read, list."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import asdict, dataclass
from datetime import date
from typing import Any, Literal

from bsante.documents import repository
from bsante.documents import templates as liquid
from bsante.documents.dlu import DLU_TYPE_CODE
from bsante.documents.domain import (
    Document,
    DocumentsRefusal,
    NoSuchPatient,
    NoSuchTemplate,
    Status,
    WrongState,
)
from bsante.documents.editor import DocumentBody, to_html
from bsante.documents.handlers import templates
from bsante.documents.handlers.common import Caller, Ports, audit, audited, document
from bsante.documents.sources import AuthorFacts, PatientRecordFacts, StructureFacts


@dataclass(frozen=True)
class Saved:
    document: Document
    version: int


@dataclass(frozen=True)
class NewDocument:
    patient_id: uuid.UUID
    template_id: uuid.UUID
    title: str | None = None


def facts_json(
    patient: PatientRecordFacts, author: AuthorFacts | None, structure: StructureFacts | None
) -> dict[str, Any]:
    return {
        "patient": {**asdict(patient), "birth_date": patient.birth_date.isoformat()},
        "author": asdict(author) if author is not None else None,
        "structure": asdict(structure) if structure is not None else None,
    }


def patient_of(facts: dict[str, Any]) -> PatientRecordFacts:
    data = dict(facts["patient"])
    data["birth_date"] = date.fromisoformat(data["birth_date"])
    data["address_lines"] = tuple(data.get("address_lines") or ())
    return PatientRecordFacts(**data)


def author_of(facts: dict[str, Any]) -> AuthorFacts | None:
    data = facts.get("author")
    return AuthorFacts(**data) if data else None


def structure_of(facts: dict[str, Any]) -> StructureFacts | None:
    data = facts.get("structure")
    return StructureFacts(**data) if data else None


async def create(ports: Ports, caller: Caller, command: NewDocument) -> Saved:
    """A draft from the structure's template, its merge fields valued from the peers' facts."""
    template = await templates.read(ports, caller, command.template_id)
    if not template.active:
        raise NoSuchTemplate()
    pid = str(command.patient_id)
    sources = ports.sources
    # The peers are asked before any write, and together.
    patient, author, structure, results = await asyncio.gather(
        sources.patients.patient(pid, user_id=caller.user, structure_id=caller.structure),
        sources.directory.author(caller.user),
        sources.directory.structure(caller.structure),
        sources.results.results(pid, user_id=caller.user, structure_id=caller.structure),
    )
    if patient is None:
        raise NoSuchPatient()
    now = ports.clock()
    values = liquid.merge_values(
        patient.merge_record(),
        author.merge_record() if author is not None else {},
        structure.merge_record() if structure is not None else {},
        results.data,
        now,
    )
    try:
        compiled = liquid.compile_template(DocumentBody.model_validate(template.body))
        merged = liquid.render(compiled, values, ports.limits)
    except liquid.TemplateRejected as rejected:
        raise DocumentsRefusal(
            "The template cannot be merged for this patient", errors=rejected.errors()
        ) from None
    doc_id = uuid.uuid4()
    created = Document(
        id=doc_id,
        structure_id=caller.structure,
        patient_id=command.patient_id,
        status="draft",
        set_id=uuid.uuid4(),
        template_id=template.id,
        template_version=template.version,
        type_code=template.type_code,
        class_code=template.class_code,
        title=command.title or template.title,
        body=merged.model_dump(mode="json"),
        values={f"{group}.{key}": v for group, kv in values.items() for key, v in kv.items()},
        facts={
            **facts_json(patient, author, structure),
            # A DLU is signed as the structured DLU-EHPAD document built from the form.
            **(
                {"dlu_answers": results.data["dlu"].get("answers") or {}}
                if template.type_code == DLU_TYPE_CODE and results.data.get("dlu")
                else {}
            ),
        },
        author_id=caller.user,
        document_date=now.date(),
        created_at=now,
        updated_at=now,
    )
    async with ports.unit_of_work() as uow:
        version = await repository.add(uow.tx, created)
        await audit(uow, caller, command.patient_id, "create")
    return Saved(created, version)


async def edit(
    ports: Ports,
    caller: Caller,
    document_id: uuid.UUID,
    *,
    body: dict[str, Any] | None,
    title: str | None,
    expected_version: int,
) -> Saved:
    """Replace a draft's body (and title); merge fields must be of the catalogue."""
    found, _ = await document(ports, caller, document_id)
    if found.status != "draft":
        raise WrongState(found.status, "edited")
    update: dict[str, Any] = {"updated_at": ports.clock()}
    if body is not None:
        parsed = templates.checked_body(body, ports.limits)
        unknown = sorted(parsed.fields() - CATALOGUE)
        if unknown:
            raise DocumentsRefusal(
                f"Unknown merge field(s): {', '.join(unknown)}",
                errors=[{"field": "body", "message": f"unknown merge field {n}"} for n in unknown],
            )
        update["body"] = parsed.model_dump(mode="json")
    if title is not None:
        update["title"] = title
    edited = found.model_copy(update=update)
    async with ports.unit_of_work() as uow:
        version = await repository.save(uow.tx, edited, expected_version)
        await audit(uow, caller, found.patient_id, "update")
    return Saved(edited, version)


def body_of(found: Document) -> DocumentBody:
    if found.body is None:
        raise WrongState(found.status, "rendered (it has no editor body)")
    return DocumentBody.model_validate(found.body)


async def read(ports: Ports, caller: Caller, document_id: uuid.UUID) -> Saved:
    found, version = await document(ports, caller, document_id)
    await audited(ports, caller, found.patient_id)
    return Saved(found, version)


async def preview(ports: Ports, caller: Caller, document_id: uuid.UUID) -> tuple[Document, str]:
    """The body as an escaped HTML fragment, merge fields valued."""
    found, _ = await document(ports, caller, document_id)
    fragment = to_html(body_of(found), found.values)
    await audited(ports, caller, found.patient_id)
    return found, fragment


CATALOGUE = frozenset(spec.name for spec in liquid.catalogue())
ListBy = Literal["patient", "author", "status"]


async def listed(
    ports: Ports,
    caller: Caller,
    *,
    patient_id: uuid.UUID | None = None,
    author_id: str | None = None,
    status: Status | None = None,
    limit: int,
    offset: int,
) -> list[Saved]:
    """Newest first: a patient's documents (produced and received), an author's, or those of
    one status; each patient whose documents are listed gets an audit record."""
    where: dict[str, Any] = {}
    if patient_id is not None:
        where["patient_id"] = str(patient_id)
    elif author_id is not None:
        where["author_id"] = author_id
    if status is not None:
        where["status"] = status
    found = await repository.find(ports.store, caller.structure, where, limit=limit, offset=offset)
    patients = sorted({str(d.patient_id) for d, _ in found})
    if patients:
        async with ports.unit_of_work() as uow:
            for pid in patients:
                await audit(uow, caller, pid, "search" if patient_id is None else "read")
    return [Saved(d, v) for d, v in found]
