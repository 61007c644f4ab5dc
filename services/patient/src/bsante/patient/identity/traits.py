"""RNIV identity traits (traits stricts et complémentaires), their validation and normalisation."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from enum import StrEnum

from bsante.chassis.text import search_key
from bsante.patient.identity.cog import (
    FRANCE_COUNTRY_CODE,
    CogEntry,
    CogRepository,
    UnknownCogCodeError,
    default_cog,
    is_country_code,
    looks_like_commune_code,
)

__all__ = [
    "MAX_NAME_LENGTH",
    "MIN_BIRTH_DATE",
    "IdentityTraits",
    "Sex",
    "TraitValidationError",
    "parse_birth_date",
    "to_ins_form",
    "validate_birth_date",
    "validate_birth_place",
    "validate_given_names",
    "validate_name",
    "validate_sex",
]

# Decision (no normative maximum found): 100 characters per name field is far above any
# civil-status name and bounds storage/UI.
MAX_NAME_LENGTH = 100
# Decision: reject anything before 1850 as a typing error (the oldest verified human lived
# 122 years); archives older than that are not this service's use case.
MIN_BIRTH_DATE = date(1850, 1, 1)

# Separators allowed inside names. The typographic apostrophe is folded to ASCII.
_APOSTROPHES = {"\u2019": "'", "\u2018": "'", "\u02bc": "'", "`": "'", "\u00b4": "'"}
_HYPHENS = {"\u2010": "-", "\u2011": "-", "\u2012": "-", "\u2013": "-"}
# Letters that NFKD does not decompose into ASCII.
_SPECIAL_LETTERS = {
    "Œ": "OE",
    "œ": "OE",
    "Æ": "AE",
    "æ": "AE",
    "ß": "SS",
    "Ø": "O",
    "ø": "O",
    "Ð": "D",
    "ð": "D",
    "Þ": "TH",
    "þ": "TH",
    "Ł": "L",
    "ł": "L",
    "Đ": "D",
    "đ": "D",
}
_INS_FORM_RE = re.compile(r"^[A-Z]+(?:(?: |-|'| - |' )[A-Z]+)*$")


class TraitValidationError(ValueError):
    """An identity trait is invalid; ``field`` names it (as in IdentityTraits)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.reason = message


class Sex(StrEnum):
    """Sexe (trait strict). INSi only knows M and F; I = indéterminé, local identities only."""

    MALE = "M"
    FEMALE = "F"
    UNDETERMINED = "I"


def _fold_punctuation(value: str) -> str:
    for src, dst in (_APOSTROPHES | _HYPHENS).items():
        value = value.replace(src, dst)
    return value


def _collapse_spaces(value: str) -> str:
    return re.sub(r"\s+", " ", value).strip()


def to_ins_form(value: str) -> str:
    """Uppercase, no diacritics, ligatures expanded: the character set INSi returns.

    "Éloïse d’Ornée-Œuvray" -> "ELOISE D'ORNEE-OEUVRAY". Used both to compare local traits
    with INS traits and as the stored form of traits recovered from INSi.
    """
    value = _collapse_spaces(_fold_punctuation(value))
    value = "".join(_SPECIAL_LETTERS.get(ch, ch) for ch in value)
    decomposed = unicodedata.normalize("NFKD", value)
    stripped = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return stripped.upper()


def validate_name(value: str | None, field: str, *, required: bool = True) -> str | None:
    """Validate a name trait (letters, then single spaces, hyphens or apostrophes).

    Accents and other Latin letters are accepted as typed (local entry follows the identity
    document); the value is returned trimmed with spaces collapsed and apostrophes/hyphens
    folded to ASCII.
    """
    if value is not None and not isinstance(value, str):
        raise TraitValidationError(field, "must be a string")
    if value is None or not value.strip():
        if required:
            raise TraitValidationError(field, "is required")
        return None
    cleaned = unicodedata.normalize("NFC", _collapse_spaces(_fold_punctuation(value)))
    if len(cleaned) > MAX_NAME_LENGTH:
        raise TraitValidationError(field, f"is longer than {MAX_NAME_LENGTH} characters")
    for ch in cleaned:
        if ch in " -'" or unicodedata.category(ch).startswith("L"):
            continue
        raise TraitValidationError(
            field, f"contains {ch!r}; only letters, spaces, hyphens and apostrophes are allowed"
        )
    ins_form = to_ins_form(cleaned)
    if not ins_form.isascii() or not _INS_FORM_RE.match(ins_form):
        raise TraitValidationError(
            field,
            "must start and end with a letter and use single separators between words "
            "(letters must be Latin; transliterate other scripts as on the identity document)",
        )
    return cleaned


def validate_given_names(birth_given_names: str, first_birth_given_name: str) -> tuple[str, str]:
    """Validate the list of birth given names and the first one, which must start the list.

    The list is space-separated, in civil-status order. A compound first name ("Jean-Pierre")
    is one item; the first name may be typed "Jean Pierre" when the list says "JEAN PIERRE"
    (FR Core allows both forms), so the check ignores separators but keeps word boundaries.
    "Jean" is refused for "JEAN-PIERRE MARIE": a hyphenated compound is a single first name.
    """
    names = validate_name(birth_given_names, "birth_given_names")
    first = validate_name(first_birth_given_name, "first_birth_given_name")
    assert names is not None and first is not None  # required=True
    first_key = search_key(first)
    accumulated = ""
    for word in re.split(r"[ ]", to_ins_form(names)):
        accumulated += search_key(word)
        if accumulated == first_key:
            return names, first
        if len(accumulated) >= len(first_key):
            break
    raise TraitValidationError(
        "first_birth_given_name",
        f"{first!r} is not the first name of the birth given names list {names!r}",
    )


def validate_sex(value: Sex | str) -> Sex:
    try:
        return Sex(value.strip().upper() if isinstance(value, str) else value)
    except ValueError:
        raise TraitValidationError("sex", f"must be M, F or I, got {value!r}") from None


def parse_birth_date(value: str) -> date:
    """Parse an ISO date (YYYY-MM-DD); impossible dates (2023-02-30) are rejected."""
    if not re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", value.strip()):
        raise TraitValidationError("birth_date", f"expected YYYY-MM-DD, got {value!r}")
    try:
        return date.fromisoformat(value.strip())
    except ValueError:
        raise TraitValidationError("birth_date", f"{value!r} is not a calendar date") from None


# The calendar date runs furthest ahead at UTC+14 (the Line Islands).
_AHEAD_OF_UTC = timedelta(hours=14)


def _utc_now() -> datetime:
    return datetime.now(UTC)


def latest_today() -> date:
    """The latest calendar date anywhere now: a birth date after it is in the future for
    every structure, whatever its time zone (Paris, Nouméa, Papeete) or the server's. A baby
    born just after midnight in Paris or Nouméa is still "born yesterday" in UTC."""
    return (_utc_now() + _AHEAD_OF_UTC).date()


def validate_birth_date(value: date | str, *, today: date | None = None) -> date:
    """Reject future dates and dates before MIN_BIRTH_DATE.

    Partially unknown dates (day/month 00) exist in the RNIPP; INSi returns them and the RNIV
    has conversion rules. This model stores a calendar date only: converting such a value is
    the INSi adapter's job (see insi.parse_insi_birth_date), not free text in local entry.
    """
    parsed = parse_birth_date(value) if isinstance(value, str) else value
    if not isinstance(parsed, date):
        raise TraitValidationError("birth_date", "must be a date")
    today = today or latest_today()
    if parsed > today:
        raise TraitValidationError("birth_date", f"{parsed.isoformat()} is in the future")
    if parsed < MIN_BIRTH_DATE:
        raise TraitValidationError(
            "birth_date", f"{parsed.isoformat()} is before {MIN_BIRTH_DATE.isoformat()}"
        )
    return parsed


def validate_birth_place(code: str | None, cog: CogRepository | None = None) -> CogEntry | None:
    """Validate a birth place COG code: commune (born in France) or 99xxx country (abroad).

    ``None`` means unknown birth place (allowed for a provisional local identity).
    """
    if code is None or not code.strip():
        return None
    normalized = code.strip().upper()
    if not (looks_like_commune_code(normalized) or is_country_code(normalized)):
        raise TraitValidationError(
            "birth_place",
            f"{code!r} is not a COG code (5 characters: commune such as 75056 or 2A004, or "
            "country 99xxx such as 99134); a postal code is not a COG code",
        )
    if normalized == FRANCE_COUNTRY_CODE:
        raise TraitValidationError(
            "birth_place", "99100 (France) is not a birth place: use the commune COG code"
        )
    entry = (cog or default_cog()).lookup(normalized)
    if entry is None:
        raise TraitValidationError(
            "birth_place", f"{normalized} is not a known INSEE COG commune or country code"
        ) from UnknownCogCodeError(normalized)
    return entry


@dataclass(frozen=True, slots=True, kw_only=True)
class IdentityTraits:
    """The traits of a digital identity (RNIV).

    Traits stricts: birth_name, birth_given_names, first_birth_given_name, birth_date, sex,
    birth_place (COG). Traits complémentaires kept here: used_name, used_first_name.
    Construct with ``IdentityTraits.create(...)`` to validate; the constructor itself only
    re-checks types so that already-validated values can be rebuilt cheaply.
    """

    birth_name: str
    first_birth_given_name: str
    birth_given_names: str
    sex: Sex
    birth_date: date
    birth_place: str | None = None
    used_name: str | None = None
    used_first_name: str | None = None

    @classmethod
    def create(
        cls,
        *,
        birth_name: str,
        birth_given_names: str,
        sex: Sex | str,
        birth_date: date | str,
        first_birth_given_name: str | None = None,
        birth_place: str | None = None,
        used_name: str | None = None,
        used_first_name: str | None = None,
        cog: CogRepository | None = None,
        today: date | None = None,
    ) -> IdentityTraits:
        """Validate every trait; the first given name defaults to the first listed one."""
        birth_name_ok = validate_name(birth_name, "birth_name")
        if first_birth_given_name is None:
            listed = validate_name(birth_given_names, "birth_given_names")
            assert listed is not None
            first_birth_given_name = listed.split(" ")[0]
        names, first = validate_given_names(birth_given_names, first_birth_given_name)
        place = validate_birth_place(birth_place, cog)
        assert birth_name_ok is not None
        return cls(
            birth_name=birth_name_ok,
            first_birth_given_name=first,
            birth_given_names=names,
            sex=validate_sex(sex),
            birth_date=validate_birth_date(birth_date, today=today),
            birth_place=place.code if place else None,
            used_name=validate_name(used_name, "used_name", required=False),
            used_first_name=validate_name(used_first_name, "used_first_name", required=False),
        )

    @property
    def born_abroad(self) -> bool | None:
        if self.birth_place is None:
            return None
        return is_country_code(self.birth_place)

    def ins_form(self) -> IdentityTraits:
        """Same traits in INSi character set (uppercase without diacritics)."""
        return IdentityTraits(
            birth_name=to_ins_form(self.birth_name),
            first_birth_given_name=to_ins_form(self.first_birth_given_name),
            birth_given_names=to_ins_form(self.birth_given_names),
            sex=self.sex,
            birth_date=self.birth_date,
            birth_place=self.birth_place,
            used_name=to_ins_form(self.used_name) if self.used_name else None,
            used_first_name=to_ins_form(self.used_first_name) if self.used_first_name else None,
        )
