"""Registering professionals and structures in the directory by hand (imports: `importer`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from bsante.chassis.errors import ConflictError, RuleViolation
from bsante.chassis.store import DuplicateDocument
from bsante.identity.directory import model
from bsante.identity.directory.identifiers import (
    ADELI,
    FINESS,
    PSIDNAT_OID,
    RPPS,
    STRUCTIDNAT_OID,
    FinessKind,
)
from bsante.identity.directory.importer import registered_professional, registered_structure
from bsante.identity.domain import search_key
from bsante.identity.ports import Clock, UnitOfWorkFactory


class InvalidIdentifier(RuleViolation):
    """An RPPS, ADELI or FINESS whose form or check digit is wrong."""


class AlreadyInDirectory(ConflictError):
    """The national id is already registered."""


@dataclass(frozen=True)
class RegisterProfessional:
    rpps: str | None
    adeli: str | None
    civility: str | None
    last_name: str
    first_name: str | None
    profession_code: str
    profession_label: str | None
    specialties: list[dict[str, Any]] = field(default_factory=list)
    mssante: list[str] = field(default_factory=list)
    city: str | None = None


async def register_professional(
    cmd: RegisterProfessional, *, uow: UnitOfWorkFactory, clock: Clock
) -> dict[str, Any]:
    """The national id (PSIdNat) is derived from the RPPS or ADELI, never typed."""
    try:
        rpps = RPPS(cmd.rpps) if cmd.rpps else None
        adeli = ADELI(cmd.adeli) if cmd.adeli else None
    except ValueError as error:
        name = "rpps" if cmd.rpps else "adeli"
        raise InvalidIdentifier(
            f"Invalid {name.upper()}", errors=[{"field": name, "message": str(error)}]
        ) from None
    identifier = rpps or adeli
    if identifier is None:
        raise InvalidIdentifier(
            "Give exactly one of rpps, adeli",
            errors=[{"field": "rpps", "message": "give exactly one of rpps, adeli"}],
        )
    ps_id_nat = identifier.ps_id_nat.value
    doc: dict[str, Any] = {
        "ps_id_nat": ps_id_nat,
        "ps_id_nat_oid": PSIDNAT_OID,
        "rpps": cmd.rpps,
        "adeli": cmd.adeli,
        "civility": cmd.civility,
        "last_name": cmd.last_name,
        "first_name": cmd.first_name,
        "name_key": search_key(f"{cmd.last_name} {cmd.first_name or ''}"),
        "profession_code": cmd.profession_code,
        "profession_label": cmd.profession_label,
        "category_code": None,
        "specialties": cmd.specialties,
        "mssante": cmd.mssante,
        "city": cmd.city,
        "city_key": search_key(cmd.city),
        "source": "manual",
        "import_id": None,
        "updated_at": clock().isoformat(),
    }
    try:
        async with uow() as unit:
            await unit.tx.insert(model.PROFESSIONALS, ps_id_nat, doc)
            await registered_professional(unit, doc, "manual")
    except DuplicateDocument:
        raise AlreadyInDirectory("This professional is already in the directory") from None
    return doc


@dataclass(frozen=True)
class RegisterStructure:
    finess: str
    finess_kind: Literal["EJ", "ET"]
    legal_entity_finess: str | None
    name: str
    siret: str | None
    postal_code: str | None
    city: str | None


async def register_structure(
    cmd: RegisterStructure, *, uow: UnitOfWorkFactory, clock: Clock
) -> dict[str, Any]:
    """A FINESS structure; its id is the derived StructIdNat (1 + FINESS)."""
    try:
        finess = FINESS(cmd.finess, FinessKind(cmd.finess_kind))
        legal = FINESS(cmd.legal_entity_finess, FinessKind.EJ) if cmd.legal_entity_finess else None
    except ValueError as error:
        raise InvalidIdentifier(
            "Invalid FINESS", errors=[{"field": "finess", "message": str(error)}]
        ) from None
    if legal is not None and cmd.finess_kind != "ET":
        raise RuleViolation(
            "Only an establishment (ET) belongs to a legal entity",
            errors=[{"field": "legal_entity_finess", "message": "only for ET"}],
        )
    doc: dict[str, Any] = {
        "id": model.structure_id(finess),
        "struct_id_nat_oid": STRUCTIDNAT_OID,
        "finess": finess.value,
        "finess_kind": cmd.finess_kind,
        "legal_entity": model.structure_id(legal) if legal else None,
        "name": cmd.name,
        "name_key": search_key(cmd.name),
        "siret": cmd.siret,
        "city": cmd.city,
        "city_key": search_key(cmd.city),
        "postal_code": cmd.postal_code,
        "commune_code": None,
        "tenant": False,
        "source": "manual",
        "import_id": None,
        "updated_at": clock().isoformat(),
    }
    try:
        async with uow() as unit:
            await unit.tx.insert(model.STRUCTURES, doc["id"], doc)
            await registered_structure(unit, doc, "manual")
    except DuplicateDocument:
        raise AlreadyInDirectory("This structure is already in the directory") from None
    return doc
