"""RNIV identity confidence status (PROV, RECUP, VALI, QUAL) and its transitions."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import StrEnum

from bsante.patient.identity.cog import CogRepository, default_cog
from bsante.patient.identity.nir import Ins
from bsante.patient.identity.traits import (
    IdentityTraits,
    TraitValidationError,
    to_ins_form,
    validate_given_names,
)

__all__ = [
    "ALLOWED_TRANSITIONS",
    "CompanionDocument",
    "IdentityAttributes",
    "IdentityDocumentCheck",
    "IdentityDocumentType",
    "IdentityRecord",
    "IdentityStatus",
    "RefusalReason",
    "TraitDiscrepancy",
    "Transition",
    "TransitionRefusedError",
    "compare_traits",
]


class IdentityStatus(StrEnum):
    """The 4 exclusive statuses of RNIV [EXI SI 07] (codes of FR Core fr-core-cs-identity-status).

    Two independent criteria: traits recovered from the INSi teleservice (yes/no) and checked
    against a high-trust identification device (yes/no).
    """

    PROVISOIRE = "PROV"
    RECUPEREE = "RECUP"
    VALIDEE = "VALI"
    QUALIFIEE = "QUAL"

    @property
    def label(self) -> str:
        return _LABELS[self]

    @property
    def insi_recovered(self) -> bool:
        return self in {IdentityStatus.RECUPEREE, IdentityStatus.QUALIFIEE}

    @property
    def document_checked(self) -> bool:
        return self in {IdentityStatus.VALIDEE, IdentityStatus.QUALIFIEE}

    @property
    def ins_shareable(self) -> bool:
        """Only a qualified identity may reference exchanged health data with its INS."""
        return self is IdentityStatus.QUALIFIEE


_LABELS = {
    IdentityStatus.PROVISOIRE: "Identité provisoire",
    IdentityStatus.RECUPEREE: "Identité récupérée",
    IdentityStatus.VALIDEE: "Identité validée",
    IdentityStatus.QUALIFIEE: "Identité qualifiée",
}

# event -> {from: to}. Re-applying an event to a status that already has its criterion keeps
# the status (a re-check), it never downgrades.
ALLOWED_TRANSITIONS: dict[str, dict[IdentityStatus, IdentityStatus]] = {
    "insi_recovery": {
        IdentityStatus.PROVISOIRE: IdentityStatus.RECUPEREE,
        IdentityStatus.RECUPEREE: IdentityStatus.RECUPEREE,
        IdentityStatus.VALIDEE: IdentityStatus.QUALIFIEE,
        IdentityStatus.QUALIFIEE: IdentityStatus.QUALIFIEE,
    },
    "document_check": {
        IdentityStatus.PROVISOIRE: IdentityStatus.VALIDEE,
        IdentityStatus.VALIDEE: IdentityStatus.VALIDEE,
        IdentityStatus.RECUPEREE: IdentityStatus.QUALIFIEE,
        IdentityStatus.QUALIFIEE: IdentityStatus.QUALIFIEE,
    },
}


class IdentityDocumentType(StrEnum):
    """Documents an admission agent may record when checking an identity.

    High-trust devices per RNIV (regional identitovigilance cells, e.g. identito-na.fr and
    ARS ARA summary of RNIV 2024): passport; national identity card (EU/EEA/Swiss/... only,
    which this model cannot check); permanent residence permit; and, without those, for
    minors: birth certificate extract or livret de famille together with a parent's (or
    guardian's, with the court decision) high-trust document, or the travel document for
    foreign minors; for a direct EHPAD admission: birth certificate extract or livret de
    famille together with the resident's carte Vitale bearing a photo.
    A driving licence is recordable but never high-trust.
    """

    PASSEPORT = "passeport"
    CARTE_NATIONALE_IDENTITE = "carte_nationale_identite"
    TITRE_SEJOUR = "titre_sejour"
    DOCUMENT_CIRCULATION_ETRANGER_MINEUR = "document_circulation_etranger_mineur"
    EXTRAIT_ACTE_NAISSANCE = "extrait_acte_naissance"
    LIVRET_FAMILLE = "livret_famille"
    PERMIS_CONDUIRE = "permis_conduire"


class CompanionDocument(StrEnum):
    """What must accompany a birth certificate / livret de famille to make it high-trust."""

    PARENT_HIGH_TRUST_DOCUMENT = "parent_high_trust_document"
    GUARDIAN_HIGH_TRUST_DOCUMENT_AND_COURT_DECISION = "guardian_document_and_court_decision"
    CARTE_VITALE_WITH_PHOTO = "carte_vitale_with_photo"


_HIGH_TRUST_ALONE = frozenset(
    {
        IdentityDocumentType.PASSEPORT,
        IdentityDocumentType.CARTE_NATIONALE_IDENTITE,
        IdentityDocumentType.TITRE_SEJOUR,
        IdentityDocumentType.DOCUMENT_CIRCULATION_ETRANGER_MINEUR,
    }
)
_HIGH_TRUST_WITH_COMPANION = frozenset(
    {IdentityDocumentType.EXTRAIT_ACTE_NAISSANCE, IdentityDocumentType.LIVRET_FAMILLE}
)


@dataclass(frozen=True, slots=True, kw_only=True)
class IdentityDocumentCheck:
    """A coherence check of the identity against a document, by a user, at a time."""

    document_type: IdentityDocumentType
    checked_by: str
    checked_at: datetime
    companion: CompanionDocument | None = None
    # Traits as read on the document; when given they are compared with the identity.
    document_traits: IdentityTraits | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "document_type", IdentityDocumentType(self.document_type))
        if self.companion is not None:
            object.__setattr__(self, "companion", CompanionDocument(self.companion))
        if not self.checked_by or not self.checked_by.strip():
            raise ValueError("checked_by: the user who checked the document is required")
        if self.checked_at.tzinfo is None:
            # Audit trails compare instants across services: naive datetimes are ambiguous.
            raise ValueError("checked_at: must be timezone-aware")

    def high_trust_refusal(self) -> str | None:
        """None when the check is a high-trust identification, else the reason why not."""
        if self.document_type in _HIGH_TRUST_ALONE:
            return None
        if self.document_type in _HIGH_TRUST_WITH_COMPANION:
            if self.companion is None:
                return (
                    f"{self.document_type.value} is high-trust only together with a parent's "
                    "or guardian's high-trust document (minor) or the carte Vitale with photo "
                    "(EHPAD resident)"
                )
            return None
        return f"{self.document_type.value} is not a high-trust identification device"

    @property
    def is_high_trust(self) -> bool:
        return self.high_trust_refusal() is None


@dataclass(frozen=True, slots=True)
class TraitDiscrepancy:
    """A trait whose local value differs from the reference (INSi or document) value."""

    field: str
    local: str | None
    reference: str | None


class RefusalReason(StrEnum):
    TRAITS_MISMATCH = "traits_mismatch"
    NOT_HIGH_TRUST = "not_high_trust"
    ATTRIBUTE_FORBIDS = "attribute_forbids"  # identité douteuse / fictive [EXI SI 09]


class TransitionRefusedError(ValueError):
    """The requested status change is not allowed; the status is left unchanged."""

    def __init__(
        self,
        reason: RefusalReason,
        message: str,
        discrepancies: tuple[TraitDiscrepancy, ...] = (),
    ) -> None:
        super().__init__(message)
        self.reason = reason
        self.discrepancies = discrepancies


@dataclass(frozen=True, slots=True)
class IdentityAttributes:
    """RNIV attributes. Doubtful or fictitious identities stay provisional and never call INSi.

    Doubtful and fictitious cannot be combined (FR Core invariant fr-core-identity-reliability-2).
    """

    doubtful: bool = False
    fictitious: bool = False
    homonym: bool = False

    def __post_init__(self) -> None:
        if self.doubtful and self.fictitious:
            raise ValueError("attributes: an identity cannot be both doubtful and fictitious")

    @property
    def locks_provisional(self) -> bool:
        return self.doubtful or self.fictitious


def _same_birth_place(local: str | None, reference: str | None, cog: CogRepository) -> bool:
    if local == reference:
        return True
    if local is None or reference is None:
        return False

    # INSi returns the COG code in force at the birth date; a local identity may carry the
    # current code of the same (since merged or recoded) commune. Same current commune = same.
    def current(code: str) -> str:
        entry = cog.lookup(code)
        if entry is not None and entry.successor and entry.kind.value != "pays":
            return entry.successor
        return code

    return current(local) == current(reference)


def compare_traits(
    local: IdentityTraits, reference: IdentityTraits, cog: CogRepository | None = None
) -> tuple[TraitDiscrepancy, ...]:
    """Compare strict traits the RNIV way.

    Names are compared in INS form: case and diacritics are ignored (INSi returns uppercase
    without accents while local entry follows the document), but letters, spaces, hyphens and
    apostrophes must match: "SAINT-ELOI" differs from "SAINT ELOI", because INS traits must be
    copied as returned. The first given name must start the reference list at a word
    boundary. Used name/first name are not INS traits and are not compared. A birth place
    is compared only when the reference has one.
    """
    cog = cog or default_cog()
    out: list[TraitDiscrepancy] = []
    if to_ins_form(local.birth_name) != to_ins_form(reference.birth_name):
        out.append(TraitDiscrepancy("birth_name", local.birth_name, reference.birth_name))
    if to_ins_form(local.birth_given_names) != to_ins_form(reference.birth_given_names):
        out.append(
            TraitDiscrepancy(
                "birth_given_names", local.birth_given_names, reference.birth_given_names
            )
        )
    try:
        validate_given_names(reference.birth_given_names, local.first_birth_given_name)
    except TraitValidationError:
        out.append(
            TraitDiscrepancy(
                "first_birth_given_name",
                local.first_birth_given_name,
                reference.first_birth_given_name,
            )
        )
    if local.sex is not reference.sex:
        out.append(TraitDiscrepancy("sex", local.sex.value, reference.sex.value))
    if local.birth_date != reference.birth_date:
        out.append(
            TraitDiscrepancy(
                "birth_date", local.birth_date.isoformat(), reference.birth_date.isoformat()
            )
        )
    if reference.birth_place is not None and not _same_birth_place(
        local.birth_place, reference.birth_place, cog
    ):
        out.append(TraitDiscrepancy("birth_place", local.birth_place, reference.birth_place))
    return tuple(out)


@dataclass(frozen=True, slots=True)
class Transition:
    """Outcome of an accepted event: the new record and what the caller must announce."""

    previous: IdentityStatus
    record: IdentityRecord
    # Informative on PROV -> RECUP (INS traits replace the typed ones after the agent's
    # coherence check); always empty when the transition leads to or keeps QUAL.
    discrepancies: tuple[TraitDiscrepancy, ...] = ()

    @property
    def status(self) -> IdentityStatus:
        return self.record.status

    @property
    def became_qualified(self) -> bool:
        """True exactly once, when the identity enters QUAL: emit InsQualified then."""
        return (
            self.previous is not IdentityStatus.QUALIFIEE
            and self.record.status is IdentityStatus.QUALIFIEE
        )

    @property
    def changed(self) -> bool:
        return self.previous is not self.record.status


@dataclass(frozen=True, slots=True, kw_only=True)
class IdentityRecord:
    """Pure aggregate of a digital identity's traits, INS and RNIV status."""

    traits: IdentityTraits
    status: IdentityStatus = IdentityStatus.PROVISOIRE
    ins: Ins | None = None
    insi_queried_at: datetime | None = None
    document_check: IdentityDocumentCheck | None = None
    attributes: IdentityAttributes = field(default_factory=IdentityAttributes)

    def __post_init__(self) -> None:
        if self.status.insi_recovered and self.ins is None:
            raise ValueError(f"status {self.status.value} requires the INS recovered from INSi")
        if self.status.document_checked and self.document_check is None:
            raise ValueError(f"status {self.status.value} requires a document check")
        if self.attributes.locks_provisional and self.status is not IdentityStatus.PROVISOIRE:
            raise ValueError("a doubtful or fictitious identity must stay provisional")

    def after_insi_recovery(
        self,
        *,
        ins: Ins,
        reference: IdentityTraits,
        queried_at: datetime,
        cog: CogRepository | None = None,
    ) -> Transition:
        """Apply an INSi "identity found" answer (code 00) whose traits the agent accepted.

        PROV -> RECUP adopts the INS traits (local used names kept); VALI -> QUAL and
        QUAL -> QUAL require the reference to match the checked local traits, otherwise
        TransitionRefusedError(TRAITS_MISMATCH) carries the discrepancies.
        """
        if self.attributes.locks_provisional:
            raise TransitionRefusedError(
                RefusalReason.ATTRIBUTE_FORBIDS,
                "a doubtful or fictitious identity must not be sent to INSi [EXI SI 09]",
            )
        discrepancies = compare_traits(self.traits, reference, cog)
        target = ALLOWED_TRANSITIONS["insi_recovery"][self.status]
        if discrepancies and self.status.document_checked:
            raise TransitionRefusedError(
                RefusalReason.TRAITS_MISMATCH,
                "INSi traits differ from the traits checked on an identity document; the "
                "identity cannot become qualified until the difference is resolved",
                discrepancies,
            )
        adopted = replace(
            reference.ins_form(),
            used_name=self.traits.used_name,
            used_first_name=self.traits.used_first_name,
        )
        record = replace(self, traits=adopted, status=target, ins=ins, insi_queried_at=queried_at)
        return Transition(self.status, record, discrepancies)

    def after_document_check(
        self, check: IdentityDocumentCheck, cog: CogRepository | None = None
    ) -> Transition:
        """Apply a high-trust document check: PROV -> VALI, RECUP -> QUAL."""
        refusal = check.high_trust_refusal()
        if refusal is not None:
            raise TransitionRefusedError(RefusalReason.NOT_HIGH_TRUST, refusal)
        if self.attributes.locks_provisional:
            raise TransitionRefusedError(
                RefusalReason.ATTRIBUTE_FORBIDS,
                "a doubtful or fictitious identity must stay provisional [EXI SI 09]",
            )
        if check.document_traits is not None:
            discrepancies = compare_traits(check.document_traits, self.traits, cog)
            if discrepancies:
                raise TransitionRefusedError(
                    RefusalReason.TRAITS_MISMATCH,
                    "the document's traits differ from the identity's traits",
                    discrepancies,
                )
        target = ALLOWED_TRANSITIONS["document_check"][self.status]
        return Transition(self.status, replace(self, status=target, document_check=check))
