"""The acting structure (tenant) itself, and rotation of the token signing key."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from bsante.chassis.errors import ConflictError, NotFoundError, RuleViolation
from bsante.identity import keys
from bsante.identity.accounts import STRUCTURES
from bsante.identity.directory.identifiers import FINESS
from bsante.identity.handlers import retried
from bsante.identity.ports import UnitOfWorkFactory


class NoSuchStructure(NotFoundError):
    def __init__(self) -> None:
        super().__init__("No such structure")


class InvalidFiness(RuleViolation):
    """The FINESS number's check digit or form is wrong."""


@dataclass(frozen=True)
class UpdateStructure:
    structure_id: str
    name: str
    finess: str | None


async def update_structure(cmd: UpdateStructure, *, uow: UnitOfWorkFactory) -> dict[str, Any]:
    """Rename the structure or set its FINESS (check digit verified); return its record."""
    if cmd.finess is not None:
        try:
            FINESS(cmd.finess)
        except ValueError as error:
            raise InvalidFiness(
                "Invalid FINESS", errors=[{"field": "finess", "message": str(error)}]
            ) from None

    async def once() -> dict[str, Any]:
        async with uow() as unit:
            doc = await unit.tx.get(STRUCTURES, cmd.structure_id)
            if doc is None:
                raise NoSuchStructure()
            data = {**doc.data, "name": cmd.name, "finess": cmd.finess}
            await unit.tx.update(STRUCTURES, doc.id, data, doc.version)
            return data

    return await retried(once)


@dataclass(frozen=True)
class RotatedKey:
    kid: str
    previous_kid: str | None
    activates_at: datetime
    published_kids: list[str]


async def rotate_signing_key(
    *, uow: UnitOfWorkFactory, ring: keys.KeyRing, token_ttl: timedelta, delay: timedelta
) -> RotatedKey:
    """Publish a new key now that signs after `delay`; the previous one stays published until
    the tokens it signed have expired."""
    if ring.directory is not None:
        raise ConflictError(
            "The signing keys are mounted files: rotate them by updating their secret"
        )
    async with uow() as unit:
        kid, previous, activates_at = await keys.rotate(unit, token_ttl, delay)
    await ring.reload()
    return RotatedKey(kid, previous, activates_at, [k.kid for k in ring.keys])
