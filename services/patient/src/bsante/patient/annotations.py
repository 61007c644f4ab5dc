"""Post-its and correspondents attached to a patient record; no I/O."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Visibility = Literal["structure", "author"]


class PostIt(BaseModel):
    """A short note on the record; `author` visibility hides it from everyone but its author."""

    model_config = ConfigDict(extra="forbid")

    id: uuid.UUID
    patient_id: uuid.UUID
    structure_id: str
    author: str
    text: str
    visibility: Visibility
    created_at: datetime
    deleted: bool = False

    def visible_to(self, user_id: str) -> bool:
        return not self.deleted and (self.visibility == "structure" or self.author == user_id)


class CorrespondentRole(StrEnum):
    MEDECIN_TRAITANT = "medecin_traitant"
    SPECIALISTE = "specialiste"
    INFIRMIER = "infirmier"
    KINESITHERAPEUTE = "kinesitherapeute"
    PHARMACIEN = "pharmacien"
    MEDECIN_COORDONNATEUR = "medecin_coordonnateur"
    AUTRE = "autre"


class Correspondent(BaseModel):
    """A professional of the national directory (by RPPS) attached to the patient with a role.

    The display name is the caller's (read from identity's directory by the front-end); a
    live lookup of the RPPS against identity's directory is left for integration.
    """

    model_config = ConfigDict(extra="forbid")

    id: uuid.UUID
    patient_id: uuid.UUID
    structure_id: str
    rpps: str
    role: CorrespondentRole
    display_name: str
    specialty: str | None = None
    added_by: str
    added_at: datetime
    removed: bool = False


def luhn_ok(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        n = int(ch)
        if i % 2 == 1:
            n = n * 2 - 9 if n > 4 else n * 2
        total += n
    return total % 10 == 0


def check_rpps(value: str) -> str:
    """An RPPS number: 11 digits, the last a Luhn check digit (ANS test numbers pass it)."""
    cleaned = value.strip()
    if len(cleaned) != 11 or not cleaned.isdigit():
        raise ValueError("an RPPS number has 11 digits")
    if not luhn_ok(cleaned):
        raise ValueError("the RPPS check digit (Luhn) does not match")
    return cleaned


RPPS_FIELD = Field(description="RPPS number: 11 digits with a Luhn check digit")
