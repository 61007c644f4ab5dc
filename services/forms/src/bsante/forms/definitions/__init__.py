"""The standard form definitions, one module per form; every published version stays readable."""

from __future__ import annotations

from typing import Final

from bsante.forms.definitions import (
    aggir,
    dlu,
    habitudes_vie,
    mms,
    rcp,
    recueil,
    surveillance,
    transmission,
)
from bsante.forms.engine import FormDefinition

ALL: Final[tuple[FormDefinition, ...]] = (
    aggir.DEFINITION_V1,
    aggir.DEFINITION,
    mms.DEFINITION,
    rcp.DEFINITION,
    recueil.DEFINITION,
    habitudes_vie.DEFINITION,
    surveillance.DEFINITION,
    transmission.DEFINITION,
    dlu.DEFINITION,
)

_BY_KEY: Final = {(d.id, d.version): d for d in ALL}


def get(form_id: str, version: int | None = None) -> FormDefinition | None:
    """A given version, or the latest one when `version` is None."""
    if version is not None:
        return _BY_KEY.get((form_id, version))
    versions = [d for d in ALL if d.id == form_id]
    return max(versions, key=lambda d: d.version) if versions else None


def latest() -> list[FormDefinition]:
    ids = dict.fromkeys(d.id for d in ALL)
    return [d for fid in ids if (d := get(fid)) is not None]


def versions(form_id: str) -> list[FormDefinition]:
    return sorted((d for d in ALL if d.id == form_id), key=lambda d: d.version)
