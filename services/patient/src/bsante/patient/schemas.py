"""HTTP bodies of the patient API: input validated field by field, outputs."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from bsante.chassis.text import SafeMultilineText, SafeText
from bsante.contracts.events import VitaleBeneficiary, VitaleCardRead
from bsante.patient.annotations import CorrespondentRole, Visibility, check_rpps
from bsante.patient.domain import (
    Attributes,
    Contact,
    DocumentCheckData,
    InsData,
    InsiAnswer,
    PatientRecord,
    StatusWord,
    Traits,
)
from bsante.patient.errors import invalid
from bsante.patient.identity.nir import validate_matricule
from bsante.patient.identity.status import CompanionDocument, IdentityDocumentType
from bsante.patient.identity.traits import (
    IdentityTraits,
    TraitValidationError,
    validate_birth_date,
    validate_birth_place,
    validate_name,
)

NAME = Field(max_length=100)


class TraitsIn(BaseModel):
    """RNIV traits as typed from an identity document (or the card)."""

    model_config = ConfigDict(extra="forbid")

    birth_name: str = NAME
    birth_given_names: str = Field(
        max_length=100, description="All birth given names, space-separated, in order"
    )
    first_birth_given_name: str | None = Field(
        default=None, max_length=100, description="Defaults to the first of the list"
    )
    used_name: str | None = Field(default=None, max_length=100)
    used_first_name: str | None = Field(default=None, max_length=100)
    sex: Literal["M", "F", "I"]
    birth_date: date
    birth_place: str | None = Field(
        default=None,
        max_length=20,
        description="INSEE COG code: commune of birth, or 99xxx country when born abroad",
    )

    @field_validator("birth_name", "birth_given_names")
    @classmethod
    def _required_name(cls, value: str, info: ValidationInfo) -> str:
        checked = validate_name(value, info.field_name or "name")
        assert checked is not None
        return checked

    @field_validator("first_birth_given_name", "used_name", "used_first_name")
    @classmethod
    def _optional_name(cls, value: str | None, info: ValidationInfo) -> str | None:
        return validate_name(value, info.field_name or "name", required=False)

    @field_validator("birth_date")
    @classmethod
    def _plausible_date(cls, value: date) -> date:
        return validate_birth_date(value)

    @field_validator("birth_place")
    @classmethod
    def _known_place(cls, value: str | None) -> str | None:
        entry = validate_birth_place(value)
        return entry.code if entry else None

    def to_traits(self, prefix: str = "") -> Traits:
        try:
            traits = IdentityTraits.create(
                birth_name=self.birth_name,
                birth_given_names=self.birth_given_names,
                first_birth_given_name=self.first_birth_given_name,
                sex=self.sex,
                birth_date=self.birth_date,
                birth_place=self.birth_place,
                used_name=self.used_name,
                used_first_name=self.used_first_name,
            )
        except TraitValidationError as error:
            raise invalid(prefix + error.field, error.reason) from None
        return Traits.of(traits)


def _matricule(value: str | None) -> str | None:
    return None if value is None else validate_matricule(value)


class PatientIn(TraitsIn):
    contact: Contact | None = None
    nir: str | None = Field(
        default=None,
        max_length=30,
        description="Matricule (NIR/NIA) as declared, e.g. from the carte Vitale; key checked",
    )

    confirm_nir_birth_place: bool = Field(
        default=False,
        description="Keep a birth place that differs from the one the NIR encodes (a commune "
        "merged or renamed since the birth); sex and birth year/month must agree",
    )

    _nir = field_validator("nir")(_matricule)


class PhysicianRef(BaseModel):
    rpps: str
    display_name: str


class PatientOut(BaseModel):
    id: uuid.UUID
    structure_id: str
    ipp: str
    traits: Traits
    contact: Contact
    identity_status: StatusWord
    identity_status_code: str
    ins: InsData | None
    ins_shareable: bool = Field(description="Only a qualified INS may reference health data")
    nir: str | None
    insi_queried_at: datetime | None = Field(
        description="When INSi was last queried for this record (= last_insi.queried_at)"
    )
    last_insi: InsiAnswer | None
    document_check: DocumentCheckData | None
    attributes: Attributes
    origin: str
    active: bool
    merged_into: uuid.UUID | None
    merged_from: list[uuid.UUID]
    dmp_opposition: bool = Field(
        default=False, description="The patient opposes feeding their DMP: documents are not sent"
    )
    version: int
    created_at: datetime
    updated_at: datetime
    medecin_traitant: PhysicianRef | None = Field(
        default=None, description="The current médecin traitant (on GET /patients/{id} only)"
    )

    @classmethod
    def of(cls, p: PatientRecord, version: int) -> PatientOut:
        return cls(
            **p.model_dump(exclude={"history", "search", "created_by"}),
            identity_status_code=p.status.value,
            ins_shareable=p.status.ins_shareable,
            version=version,
        )


class PatientSummary(BaseModel):
    id: uuid.UUID
    ipp: str
    birth_name: str
    used_name: str | None
    first_birth_given_name: str
    sex: str
    birth_date: date
    identity_status: StatusWord

    @classmethod
    def of(cls, p: PatientRecord) -> PatientSummary:
        return cls(
            id=p.id,
            ipp=p.ipp,
            birth_name=p.traits.birth_name,
            used_name=p.traits.used_name,
            first_birth_given_name=p.traits.first_birth_given_name,
            sex=p.traits.sex,
            birth_date=p.traits.birth_date,
            identity_status=p.identity_status,
        )


class Page(BaseModel):
    items: list[Any]
    total: int
    limit: int
    offset: int


class PatientPage(Page):
    items: list[PatientSummary]


class HistoryOut(BaseModel):
    items: list[dict[str, Any]]


class InsiSearchIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    accept_reference_traits: bool = Field(
        default=False,
        description="The agent checked the INS traits and accepts that they replace the "
        "typed ones (provisional identity)",
    )


class InsiOutcome(BaseModel):
    result: Literal["recovered", "qualified", "discrepancy", "not_found", "several_found"]
    insi_code: str
    insi_label: str
    discrepancies: list[dict[str, Any]]
    patient: PatientOut


class DocumentCheckIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    document_type: IdentityDocumentType
    companion: CompanionDocument | None = None
    checked_at: datetime | None = Field(default=None, description="Defaults to now")
    document_traits: TraitsIn | None = Field(
        default=None, description="Traits read on the document, compared with the identity"
    )

    @field_validator("checked_at")
    @classmethod
    def _past(cls, value: datetime | None) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("give a time zone (e.g. Z)")
        if value > datetime.now(UTC):
            raise ValueError("is in the future")
        return value


class MergeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    duplicate_id: uuid.UUID


class VitaleSelectIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    beneficiary: int = Field(ge=0, le=19, description="Index in the card's beneficiaries")
    sex: Literal["M", "F", "I"] | None = Field(
        default=None, description="When neither the card nor the NIR tells"
    )


class VitaleCreateIn(VitaleSelectIn):
    card: VitaleCardRead


class CardReadIn(BaseModel):
    """A carte Vitale read on a workstation, posted by the card bridge with the user's token."""

    model_config = ConfigDict(extra="forbid")

    workstation_id: str = Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9._:-]+$")
    holder_nir: str = Field(min_length=13, max_length=15)
    card_serial: str | None = Field(default=None, max_length=40)
    beneficiaries: list[VitaleBeneficiary] = Field(min_length=1, max_length=20)


class CardReadAccepted(BaseModel):
    read_id: uuid.UUID = Field(description="GET /patients/card-reads/{read_id} once consumed")


class CardEventAccepted(BaseModel):
    event_id: uuid.UUID


class CardPresenceIn(BaseModel):
    """A card inserted in or removed from a workstation's reader (no card content)."""

    model_config = ConfigDict(extra="forbid")

    event: Literal["inserted", "removed"]
    workstation_id: str = Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9._:-]+$")
    reader: str = Field(min_length=1, max_length=200)
    card_kind: Literal["cps", "vitale", "unknown"]
    ps_id_nat: str | None = Field(default=None, pattern=r"^[08][0-9A-Z]{8,11}$")


class VitaleOutcome(BaseModel):
    created: bool
    patient: PatientOut


class PostItIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    text: SafeMultilineText = Field(min_length=1, max_length=500)
    visibility: Visibility = "structure"


class CorrespondentIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    rpps: str = Field(max_length=20)
    role: CorrespondentRole
    display_name: SafeText = Field(min_length=1, max_length=200)
    specialty: SafeText | None = Field(default=None, max_length=100)

    _rpps = field_validator("rpps")(check_rpps)


class DmpOppositionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    opposed: bool = Field(description="true: the patient opposes feeding their DMP; false: lifted")
