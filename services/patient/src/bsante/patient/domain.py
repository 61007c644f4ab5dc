"""The patient record (RNIV traits, INS, identity status, history) and its rules; no I/O.

The identitovigilance rules themselves live in the pure `identity` package; this module keeps
the stored shape of a record and converts it to and from that package's value objects.
"""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from bsante.chassis.text import SafeText, search_key
from bsante.patient.identity.nir import Ins, InsOid
from bsante.patient.identity.status import (
    CompanionDocument,
    IdentityAttributes,
    IdentityDocumentCheck,
    IdentityDocumentType,
    IdentityRecord,
    IdentityStatus,
    TraitDiscrepancy,
)
from bsante.patient.identity.traits import IdentityTraits, Sex

StatusWord = Literal["provisoire", "recuperee", "validee", "qualifiee"]

# The events and the API speak words; the identity library speaks FR Core codes.
STATUS_WORD: dict[IdentityStatus, StatusWord] = {
    IdentityStatus.PROVISOIRE: "provisoire",
    IdentityStatus.RECUPEREE: "recuperee",
    IdentityStatus.VALIDEE: "validee",
    IdentityStatus.QUALIFIEE: "qualifiee",
}
STATUS_CODE: dict[str, IdentityStatus] = {word: code for code, word in STATUS_WORD.items()}
# Merge keeps the more reliable record: qualified > recovered/validated > provisional.
STATUS_RANK: dict[str, int] = {"provisoire": 0, "recuperee": 1, "validee": 1, "qualifiee": 2}


def now() -> datetime:
    return datetime.now(UTC)


class Traits(BaseModel):
    """Stored/returned RNIV traits (already validated)."""

    model_config = ConfigDict(extra="forbid")

    birth_name: str
    first_birth_given_name: str
    birth_given_names: str
    sex: Literal["M", "F", "I"]
    birth_date: date
    birth_place: str | None = None
    used_name: str | None = None
    used_first_name: str | None = None

    @classmethod
    def of(cls, traits: IdentityTraits) -> Traits:
        return cls(
            birth_name=traits.birth_name,
            first_birth_given_name=traits.first_birth_given_name,
            birth_given_names=traits.birth_given_names,
            sex=traits.sex.value,
            birth_date=traits.birth_date,
            birth_place=traits.birth_place,
            used_name=traits.used_name,
            used_first_name=traits.used_first_name,
        )

    def identity(self) -> IdentityTraits:
        return IdentityTraits(
            birth_name=self.birth_name,
            first_birth_given_name=self.first_birth_given_name,
            birth_given_names=self.birth_given_names,
            sex=Sex(self.sex),
            birth_date=self.birth_date,
            birth_place=self.birth_place,
            used_name=self.used_name,
            used_first_name=self.used_first_name,
        )

    def strict(self) -> tuple[Any, ...]:
        """The strict traits (RNIV): the ones INSi returns and a document proves."""
        return (
            self.birth_name,
            self.first_birth_given_name,
            self.birth_given_names,
            self.sex,
            self.birth_date,
            self.birth_place,
        )


class Address(BaseModel):
    model_config = ConfigDict(extra="forbid")

    lines: list[SafeText] = Field(default_factory=list, max_length=3)
    postal_code: str | None = Field(default=None, pattern=r"^[0-9]{5}$")
    city: SafeText | None = Field(default=None, max_length=100)
    country: SafeText | None = Field(default=None, max_length=100)


class Contact(BaseModel):
    """Contact data (traits complémentaires): not identity traits, never compared with INSi."""

    model_config = ConfigDict(extra="forbid")

    address: Address | None = None
    phone: str | None = Field(default=None, pattern=r"^\+?[0-9 .]{6,20}$")
    mobile: str | None = Field(default=None, pattern=r"^\+?[0-9 .]{6,20}$")
    email: str | None = Field(
        default=None, max_length=254, pattern=r"^[^@\s]+@[^@\s]+\.[A-Za-z]{2,}$"
    )


class InsData(BaseModel):
    matricule: str
    oid: str

    def value(self) -> Ins:
        return Ins(self.matricule, InsOid(self.oid))


class DocumentCheckData(BaseModel):
    document_type: IdentityDocumentType
    companion: CompanionDocument | None = None
    checked_by: str
    checked_at: datetime

    def value(self) -> IdentityDocumentCheck:
        return IdentityDocumentCheck(
            document_type=self.document_type,
            companion=self.companion,
            checked_by=self.checked_by,
            checked_at=self.checked_at,
        )


class Discrepancy(BaseModel):
    field: str
    local: str | None
    reference: str | None

    @classmethod
    def of(cls, d: TraitDiscrepancy) -> Discrepancy:
        return cls(field=d.field, local=d.local, reference=d.reference)


class InsiAnswer(BaseModel):
    """The last INSi answer for this identity, kept so the user sees a pending discrepancy."""

    queried_at: datetime
    code: str
    label: str
    outcome: Literal["applied", "discrepancy", "not_found", "several_found"]
    discrepancies: list[Discrepancy] = Field(default_factory=list)
    reference: Traits | None = None


class Attributes(BaseModel):
    doubtful: bool = False
    fictitious: bool = False
    homonym: bool = False
    partial_birth_date: bool = Field(
        default=False,
        description="The birth date has an unknown day or month (INSi/card lunar date): "
        "the calendar date shown stands in for it",
    )


class HistoryEntry(BaseModel):
    at: datetime
    by: str
    action: str
    details: dict[str, Any] = Field(default_factory=dict)


class SearchKeys(BaseModel):
    """Accent-, case-, space- and hyphen-free keys (see bsante.chassis.text.search_key)."""

    birth_name: str
    used_name: str
    given_name: str
    matricule: str | None = None


class PatientRecord(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: uuid.UUID
    structure_id: str
    ipp: str
    traits: Traits
    contact: Contact = Field(default_factory=Contact)
    identity_status: StatusWord = "provisoire"
    nir: str | None = Field(default=None, description="Matricule declared (card, attestation)")
    ins: InsData | None = None
    insi_queried_at: datetime | None = None
    last_insi: InsiAnswer | None = None
    document_check: DocumentCheckData | None = None
    attributes: Attributes = Field(default_factory=Attributes)
    origin: Literal["manual", "vitale"] = "manual"
    active: bool = True
    merged_into: uuid.UUID | None = None
    merged_from: list[uuid.UUID] = Field(default_factory=list)
    dmp_opposition: bool = Field(
        default=False, description="The patient opposes feeding their DMP (recorded by a PS)"
    )
    history: list[HistoryEntry] = Field(default_factory=list)
    search: SearchKeys
    created_at: datetime
    created_by: str
    updated_at: datetime

    @property
    def status(self) -> IdentityStatus:
        return STATUS_CODE[self.identity_status]

    @property
    def matricule(self) -> str | None:
        """The matricule that identifies this person: the INS once recovered, else declared."""
        return self.ins.matricule if self.ins else self.nir

    @property
    def lineage(self) -> list[str]:
        """This record and the records merged into it: their history is this patient's."""
        return [str(self.id), *(str(i) for i in self.merged_from)]

    def identity_record(self) -> IdentityRecord:
        return IdentityRecord(
            traits=self.traits.identity(),
            status=self.status,
            ins=self.ins.value() if self.ins else None,
            insi_queried_at=self.insi_queried_at,
            document_check=self.document_check.value() if self.document_check else None,
            attributes=IdentityAttributes(
                doubtful=self.attributes.doubtful,
                fictitious=self.attributes.fictitious,
                homonym=self.attributes.homonym,
            ),
        )

    def with_identity(self, record: IdentityRecord) -> PatientRecord:
        """Copy the outcome of an identity transition into the stored record."""
        return self.model_copy(
            update={
                "traits": Traits.of(record.traits),
                "identity_status": STATUS_WORD[record.status],
                "ins": (
                    InsData(matricule=record.ins.matricule, oid=record.ins.oid.value)
                    if record.ins
                    else None
                ),
                "insi_queried_at": record.insi_queried_at,
                "document_check": (
                    DocumentCheckData(
                        document_type=record.document_check.document_type,
                        companion=record.document_check.companion,
                        checked_by=record.document_check.checked_by,
                        checked_at=record.document_check.checked_at,
                    )
                    if record.document_check
                    else None
                ),
            }
        ).reindexed()

    def reindexed(self) -> PatientRecord:
        return self.model_copy(update={"search": search_keys(self.traits, self.matricule)})

    def flagged_homonym(self) -> PatientRecord:
        """Another person shares the strict traits compared for duplicates (RNIV homonym)."""
        if self.attributes.homonym:
            return self
        attributes = self.attributes.model_copy(update={"homonym": True})
        return self.model_copy(update={"attributes": attributes})

    def logged(self, by: str, action: str, **details: Any) -> PatientRecord:
        entry = HistoryEntry(at=now(), by=by, action=action, details=details)
        return self.model_copy(update={"history": [*self.history, entry], "updated_at": now()})


def search_keys(traits: Traits, matricule: str | None) -> SearchKeys:
    return SearchKeys(
        birth_name=search_key(traits.birth_name),
        used_name=search_key(traits.used_name or traits.birth_name),
        given_name=search_key(traits.first_birth_given_name),
        matricule=matricule,
    )


def new_patient(
    *,
    structure_id: str,
    ipp: str,
    traits: Traits,
    author: str,
    contact: Contact | None = None,
    nir: str | None = None,
    origin: Literal["manual", "vitale"] = "manual",
    homonym: bool = False,
) -> PatientRecord:
    at = now()
    return PatientRecord(
        id=uuid.uuid4(),
        structure_id=structure_id,
        ipp=ipp,
        traits=traits,
        contact=contact or Contact(),
        nir=nir,
        origin=origin,
        attributes=Attributes(homonym=homonym),
        history=[HistoryEntry(at=at, by=author, action="created", details={"origin": origin})],
        search=search_keys(traits, nir),
        created_at=at,
        created_by=author,
        updated_at=at,
    )


class TraitsLockedError(ValueError):
    """Strict traits of an identity recovered from INSi are not edited by hand."""


def correct_traits(record: PatientRecord, traits: Traits, author: str) -> PatientRecord:
    """Apply a manual correction of the traits.

    RNIV: strict traits recovered from INSi are copied as returned and never edited locally
    (re-query INSi instead); used names can change. A validated identity whose strict traits
    change loses its document check and goes back to provisional: the document no longer
    proves these traits.
    """
    previous = record.traits
    strict_changed = previous.strict() != traits.strict()
    if strict_changed and record.status.insi_recovered:
        raise TraitsLockedError(
            "the strict traits of an identity recovered from INSi cannot be edited; "
            "query INSi again"
        )
    update: dict[str, Any] = {"traits": traits}
    if strict_changed and record.status is IdentityStatus.VALIDEE:
        update.update(identity_status="provisoire", document_check=None)
    changed = record.model_copy(update=update).reindexed()
    return changed.logged(
        author,
        "traits_corrected",
        previous=previous.model_dump(mode="json"),
        status_before=record.identity_status,
    )


class MergeRefusedError(ValueError):
    pass


def merge(kept: PatientRecord, duplicate: PatientRecord, author: str) -> tuple[PatientRecord, ...]:
    """Merge `duplicate` into `kept`; both are returned, the duplicate inactive (history).

    Refused when they are not the same person for certain (two different matricules), or
    when the duplicate's identity is more reliable than the kept one's (keep that one).
    """
    if kept.id == duplicate.id:
        raise MergeRefusedError("a record cannot be merged into itself")
    if not kept.active or not duplicate.active:
        raise MergeRefusedError("one of the records was already merged")
    if kept.matricule and duplicate.matricule and kept.matricule != duplicate.matricule:
        raise MergeRefusedError("the records carry different matricules: different persons")
    if STATUS_RANK[duplicate.identity_status] > STATUS_RANK[kept.identity_status]:
        raise MergeRefusedError(
            "the duplicate's identity is more reliable: merge the other way round"
        )
    update: dict[str, Any] = {
        "merged_from": [*kept.merged_from, duplicate.id, *duplicate.merged_from]
    }
    if kept.matricule is None and duplicate.nir:
        update["nir"] = duplicate.nir
    new_kept = (
        kept.model_copy(update=update)
        .reindexed()
        .logged(author, "merged_from", patient_id=str(duplicate.id), ipp=duplicate.ipp)
    )
    retired = duplicate.model_copy(update={"active": False, "merged_into": kept.id}).logged(
        author, "merged_into", patient_id=str(kept.id)
    )
    return new_kept, retired
