"""Use cases of templates: the field catalogue, create, revise, withdraw, read, list, the demo
templates of the demo structures."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError

from bsante.chassis.store import DuplicateDocument, Store
from bsante.documents import repository, vocabulary
from bsante.documents import templates as liquid
from bsante.documents.demo_templates import DEMO_TEMPLATES
from bsante.documents.domain import DocumentsRefusal, NoSuchTemplate, Template, TemplateDraft
from bsante.documents.editor import DocumentBody, EditorLimits, parse_body
from bsante.documents.handlers.common import Caller, Ports


def body_errors(error: ValidationError, prefix: str = "body") -> list[dict[str, Any]]:
    return [
        {
            "field": ".".join([prefix, *(str(p) for p in e["loc"] if p != "body")]),
            "message": e["msg"],
            "type": e["type"],
        }
        for e in error.errors()
    ]


def checked_body(raw: dict[str, Any], limits: EditorLimits, prefix: str = "body") -> DocumentBody:
    """The validated editor body, or a 422 naming each fault (size included)."""
    try:
        body = parse_body(json.dumps(raw, ensure_ascii=False), limits)
    except ValidationError as error:
        raise DocumentsRefusal(
            "The body is not a valid editor document", errors=body_errors(error, prefix)
        ) from None
    return body


def check_template(draft: TemplateDraft, limits: EditorLimits, kit: str | None) -> DocumentBody:
    """The template's body once its editor JSON, its Liquid (sandboxed: unknown variables,
    filters and tags refused; a trial merge with sample values within the loop, output and
    editor limits) and its codes are checked; a 422 naming every fault otherwise."""
    body = checked_body(draft.body, limits)
    errors: list[dict[str, Any]] = []
    unknown: list[str] = []
    try:
        liquid.trial_render(liquid.compile_template(body), limits)
    except liquid.TemplateRejected as rejected:
        errors.extend({**e, "field": f"body.{e['field']}"} for e in rejected.errors())
        unknown = [p.field for p in rejected.problems if p.field]
    problem = vocabulary.type_problem(draft.type_code, kit)
    if problem:
        errors.append({"field": "type_code", "message": problem})
    problem = vocabulary.class_problem(draft.class_code)
    if problem:
        errors.append({"field": "class_code", "message": problem})
    if errors:
        detail = (
            f"Unknown merge field(s): {', '.join(sorted(set(unknown)))}"
            if unknown
            else "The template is refused: " + "; ".join(e["message"] for e in errors)
        )
        raise DocumentsRefusal(detail[:500], errors=errors)
    return body


def used_fields(body: DocumentBody) -> list[str]:
    return sorted(liquid.compile_template(body).fields)


async def create(ports: Ports, caller: Caller, draft: TemplateDraft, kit: str | None) -> Template:
    body = check_template(draft, ports.limits, kit)
    now = ports.clock()
    template = Template(
        id=uuid.uuid4(),
        structure_id=caller.structure,
        name=draft.name,
        type_code=draft.type_code,
        class_code=draft.class_code,
        title=draft.title,
        body=body.model_dump(mode="json", exclude_defaults=False),
        fields=used_fields(body),
        created_at=now,
        updated_at=now,
        updated_by=caller.user,
    )
    async with ports.unit_of_work() as uow:
        return await repository.add_template(uow.tx, template)


async def revise(
    ports: Ports,
    caller: Caller,
    template_id: uuid.UUID,
    draft: TemplateDraft,
    expected_version: int,
    kit: str | None,
) -> Template:
    """A new version; documents drafted from earlier ones keep naming theirs."""
    current = await read(ports, caller, template_id)
    body = check_template(draft, ports.limits, kit)
    revised = current.model_copy(
        update={
            "name": draft.name,
            "type_code": draft.type_code,
            "class_code": draft.class_code,
            "title": draft.title,
            "body": body.model_dump(mode="json"),
            "fields": used_fields(body),
            "active": True,
            "updated_at": ports.clock(),
            "updated_by": caller.user,
        }
    )
    async with ports.unit_of_work() as uow:
        return await repository.save_template(uow.tx, revised, expected_version)


async def withdraw(
    ports: Ports, caller: Caller, template_id: uuid.UUID, expected_version: int
) -> Template:
    """No new document from it (those drafted from it keep it)."""
    current = await read(ports, caller, template_id)
    withdrawn = current.model_copy(
        update={"active": False, "updated_at": ports.clock(), "updated_by": caller.user}
    )
    async with ports.unit_of_work() as uow:
        return await repository.save_template(uow.tx, withdrawn, expected_version)


async def read(
    ports: Ports, caller: Caller, template_id: uuid.UUID, version: int | None = None
) -> Template:
    if version is None:
        found = await repository.get_template(ports.store, caller.structure, str(template_id))
    else:
        found = await repository.get_template_version(
            ports.store, caller.structure, str(template_id), version
        )
    if found is None:
        raise NoSuchTemplate()
    return found


async def listed(ports: Ports, caller: Caller, *, include_withdrawn: bool) -> list[Template]:
    found = await repository.templates(ports.store, caller.structure)
    return [t for t in found if t.active or include_withdrawn]


async def seed_demo(store: Store, structures: list[str]) -> None:
    """The demo templates of each demo structure, with stable ids (idempotent)."""
    now = datetime.now(UTC)
    for structure_id in structures:
        for key, draft in DEMO_TEMPLATES.items():
            body = check_template(draft, EditorLimits(), None)
            template_id = uuid.uuid5(uuid.NAMESPACE_URL, f"bsante:template:{structure_id}:{key}")
            if await store.get(repository.TEMPLATES, str(template_id)) is not None:
                continue
            template = Template(
                id=template_id,
                structure_id=structure_id,
                name=draft.name,
                type_code=draft.type_code,
                class_code=draft.class_code,
                title=draft.title,
                body=body.model_dump(mode="json"),
                fields=used_fields(body),
                seeded=True,
                created_at=now,
                updated_at=now,
                updated_by="seed",
            )
            try:
                async with store.transaction() as tx:
                    await repository.add_template(tx, template)
            except DuplicateDocument:
                pass  # another replica seeded it first
