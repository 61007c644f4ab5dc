"""Service-only routes of identity: what another service reads about a user or a structure
(the documents service: a document's author and structure), with the `directory:read` scope.

No patient data here, so no access audit: a user's professional identity and a structure's
name and FINESS are directory facts.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter
from pydantic import BaseModel

from bsante.chassis.api import ServiceDep
from bsante.chassis.auth import ServicePrincipal, service_scope
from bsante.chassis.errors import NotFound
from bsante.contracts.permissions import ServiceScope
from bsante.identity.accounts import STRUCTURES, USERS
from bsante.identity.directory import model, repository

router = APIRouter(prefix="/internal", tags=["internal"])
DirectoryReader = Annotated[ServicePrincipal, service_scope(ServiceScope.DIRECTORY_READ)]


class UserFacts(BaseModel):
    id: str
    display_name: str
    kind: str
    rpps: str | None = None
    ps_id_nat: str | None = None
    last_name: str | None = None
    first_name: str | None = None
    profession_code: str | None = None
    profession_label: str | None = None
    specialty_code: str | None = None
    specialty_label: str | None = None


class StructureFacts(BaseModel):
    id: str
    name: str
    finess: str | None = None


def _first_specialty(professional: dict[str, Any]) -> tuple[str | None, str | None]:
    specialties = professional.get("specialties") or []
    first = specialties[0] if specialties and isinstance(specialties[0], dict) else {}
    return first.get("code"), first.get("label")


@router.get("/users/{user_id}", response_model=UserFacts)
async def read_user(user_id: str, caller: DirectoryReader, svc: ServiceDep) -> UserFacts:
    """A user's professional identity (names, RPPS, TRE_G15 profession) from the directory."""
    user = await repository.get(svc.store, USERS, user_id, max_length=200)
    if user is None or not user.get("active", True):
        raise NotFound("No such user")
    facts = UserFacts(
        id=user_id,
        display_name=user["display_name"],
        kind=user.get("kind", "staff"),
        rpps=user.get("rpps"),
        ps_id_nat=user.get("ps_id_nat"),
        profession_code=user.get("profession"),
    )
    if facts.ps_id_nat:
        professional = await repository.get(svc.store, model.PROFESSIONALS, facts.ps_id_nat)
        if professional is not None:
            code, label = _first_specialty(professional)
            facts = facts.model_copy(
                update={
                    "last_name": professional.get("last_name"),
                    "first_name": professional.get("first_name"),
                    "profession_code": professional.get("profession_code") or facts.profession_code,
                    "profession_label": professional.get("profession_label"),
                    "specialty_code": code,
                    "specialty_label": label,
                }
            )
    return facts


@router.get("/structures/{structure_id}", response_model=StructureFacts)
async def read_structure(
    structure_id: str, caller: DirectoryReader, svc: ServiceDep
) -> StructureFacts:
    """A tenant structure's name and FINESS."""
    structure = await repository.get(svc.store, STRUCTURES, structure_id)
    if structure is None or not structure.get("tenant"):
        raise NotFound("No such structure")
    return StructureFacts(id=structure_id, name=structure["name"], finess=structure.get("finess"))
