"""Routes of the form definitions."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response

from bsante.chassis.api import etag
from bsante.forms.handlers import views
from bsante.forms.http.deps import DefinitionReader
from bsante.forms.http.schemas import DefinitionOut, definition_out

router = APIRouter()


@router.get("/definitions", response_model=list[DefinitionOut], tags=["definitions"])
async def list_definitions(principal: DefinitionReader) -> list[DefinitionOut]:
    """The latest version of every standard form."""
    return [definition_out(d) for d in views.latest_definitions()]


@router.get("/definitions/{form_id}", response_model=DefinitionOut, tags=["definitions"])
async def read_definition(
    form_id: str,
    principal: DefinitionReader,
    response: Response,
    version: Annotated[int | None, Query(ge=1, le=1_000)] = None,
) -> DefinitionOut:
    """One definition, the latest version unless `version` names an older one."""
    definition = views.read_definition(form_id, version)
    # A published version never changes: its number is a validator (If-None-Match → 304).
    response.headers["ETag"] = etag(definition.version)
    return definition_out(definition)
