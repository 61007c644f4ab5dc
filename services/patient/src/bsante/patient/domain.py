"""The patient aggregate (minimal identity traits for now) and its rules; no I/O."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, date, datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, StringConstraints, field_validator

# Letters (with French diacritics), spaces, hyphens and apostrophes, as identity documents show.
NAME_PATTERN = r"^[A-Za-zÀ-ÖØ-öø-ÿŒœ' -]+$"
Name = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=100, pattern=NAME_PATTERN),
]
Sex = Literal["M", "F", "I"]
IdentityStatus = Literal["provisoire", "recuperee", "validee", "qualifiee"]


class IdentityTraits(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    birth_name: Name
    first_name: Name
    sex: Sex
    birth_date: date

    @field_validator("birth_date")
    @classmethod
    def _plausible(cls, value: date) -> date:
        if value > datetime.now(UTC).date():
            raise ValueError("birth date is in the future")
        if value.year < 1880:
            raise ValueError("birth date is before 1880")
        return value

    @field_validator("birth_name", "first_name")
    @classmethod
    def _no_double_separators(cls, value: str) -> str:
        if re.search(r"[-' ]{2,}", value) or value[0] in "-'" or value[-1] in "-'":
            raise ValueError("separators must sit between letters")
        return value


class Patient(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: uuid.UUID
    structure_id: str
    traits: IdentityTraits
    identity_status: IdentityStatus = "provisoire"
    created_at: datetime
    created_by: str
    updated_at: datetime


def new_patient(structure_id: str, traits: IdentityTraits, author: str) -> Patient:
    now = datetime.now(UTC)
    return Patient(
        id=uuid.uuid4(),
        structure_id=structure_id,
        traits=traits,
        created_at=now,
        created_by=author,
        updated_at=now,
    )
