"""Routes of templates and of the merge-field catalogue."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response

from bsante.chassis.api import etag, required_if_match
from bsante.chassis.openapi import creates, problems
from bsante.documents.domain import Template, TemplateDraft
from bsante.documents.handlers import templates
from bsante.documents.http.deps import Drafter, IfMatch, PortsDep, caller, kit_of
from bsante.documents.http.schemas import (
    FieldOut,
    TemplateIn,
    TemplateOut,
    catalogue_out,
    template_out,
)

router = APIRouter(tags=["templates"])


def _draft(body: TemplateIn) -> TemplateDraft:
    return TemplateDraft(body.name, body.type_code, body.class_code, body.title, body.body)


def _sent(response: Response, template: Template) -> TemplateOut:
    response.headers["ETag"] = etag(template.version)
    return template_out(template)


@router.get("/templates/fields", response_model=list[FieldOut])
async def merge_fields(principal: Drafter) -> list[FieldOut]:
    """The merge fields a template may use, with their labels and types."""
    return catalogue_out()


@router.get("/templates", response_model=list[TemplateOut])
async def list_templates(
    principal: Drafter, ports: PortsDep, include_withdrawn: bool = False
) -> list[TemplateOut]:
    """The acting structure's templates, by name."""
    found = await templates.listed(ports, caller(principal), include_withdrawn=include_withdrawn)
    return [template_out(t) for t in found]


@router.post(
    "/templates",
    status_code=201,
    response_model=TemplateOut,
    openapi_extra=creates("template_id"),
)
async def create_template(
    body: TemplateIn, principal: Drafter, ports: PortsDep, request: Request, response: Response
) -> TemplateOut:
    """A template of the acting structure; an unknown merge field is a 422 naming it."""
    created = await templates.create(ports, caller(principal), _draft(body), kit_of(request))
    response.headers["Location"] = f"templates/{created.id}"
    return _sent(response, created)


@router.get("/templates/{template_id}", response_model=TemplateOut)
async def read_template(
    template_id: uuid.UUID,
    principal: Drafter,
    ports: PortsDep,
    response: Response,
    version: Annotated[int | None, Query(ge=1, le=1_000_000)] = None,
) -> TemplateOut:
    """The current version, or the one `version` names (documents name theirs)."""
    return _sent(response, await templates.read(ports, caller(principal), template_id, version))


@router.put("/templates/{template_id}", response_model=TemplateOut, responses=problems(428))
async def revise_template(
    template_id: uuid.UUID,
    body: TemplateIn,
    principal: Drafter,
    ports: PortsDep,
    request: Request,
    response: Response,
    if_match: IfMatch = None,
) -> TemplateOut:
    """A new version of the template (If-Match: the version read)."""
    expected = required_if_match(if_match)
    revised = await templates.revise(
        ports, caller(principal), template_id, _draft(body), expected, kit_of(request)
    )
    return _sent(response, revised)


@router.delete("/templates/{template_id}", response_model=TemplateOut, responses=problems(428))
async def withdraw_template(
    template_id: uuid.UUID,
    principal: Drafter,
    ports: PortsDep,
    response: Response,
    if_match: IfMatch = None,
) -> TemplateOut:
    """Withdraw the template: no new document from it; its versions stay readable."""
    expected = required_if_match(if_match)
    return _sent(
        response, await templates.withdraw(ports, caller(principal), template_id, expected)
    )
