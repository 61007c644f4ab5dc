"""Matricule INS (NIR or NIA) key computation and the INS value object (matricule + OID)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from enum import StrEnum

__all__ = [
    "INS_OID_NIA",
    "INS_OID_NIR",
    "INS_OID_NIR_DEMO",
    "INS_OID_NIR_TEST",
    "Ins",
    "InsOid",
    "InvalidMatriculeError",
    "MatriculeParts",
    "compute_nir_key",
    "parse_matricule",
    "validate_matricule",
]

# OIDs of the INS assigning authorities (ANS "Référentiel INS"; FR Core fr-core-patient-ins).
INS_OID_NIR = "1.2.250.1.213.1.4.8"
INS_OID_NIA = "1.2.250.1.213.1.4.9"
INS_OID_NIR_TEST = "1.2.250.1.213.1.4.10"
INS_OID_NIR_DEMO = "1.2.250.1.213.1.4.11"


class InsOid(StrEnum):
    """Assigning authority of an INS matricule."""

    NIR = INS_OID_NIR
    NIA = INS_OID_NIA
    NIR_TEST = INS_OID_NIR_TEST
    NIR_DEMO = INS_OID_NIR_DEMO


# Sex digit (1st character). 1/2 are the usual male/female values of a NIR and of most NIA.
# 3/4 have been used for foreign-born persons registered while their immatriculation is
# pending, 7/8 for temporary numbers; we accept them rather than over-validate, because the
# INSi teleservice, not this library, is the authority on whether a matricule exists.
_SEX_DIGITS = frozenset("123478")

# 13 significant characters + 2-digit key. Positions 6-7 hold the birth department, which is
# "2A"/"2B" for people born in Corsica since 1976. Month (positions 4-5) is not range-checked:
# the RNIPP uses fictitious months (20-42, 50+, 99) when the real one is unknown.
_MATRICULE_RE = re.compile(r"^[0-9]{5}(?:[0-9]{2}|2A|2B)[0-9]{8}$")

# Corsican departments are replaced by numbers before the modulo (INSEE/CNAM rule).
_CORSICA_SUBSTITUTION = {"2A": "19", "2B": "18"}


class InvalidMatriculeError(ValueError):
    """Raised when a matricule INS (NIR/NIA) or its OID is malformed."""


@dataclass(frozen=True, slots=True)
class MatriculeParts:
    """The fields encoded in a NIR/NIA (informative only: they are not identity traits)."""

    sex_digit: str
    birth_year: str
    birth_month: str
    department: str
    commune_or_country: str
    order: str
    key: str


def _numeric_nir13(nir13: str) -> int:
    department = nir13[5:7]
    substituted = _CORSICA_SUBSTITUTION.get(department)
    if substituted is not None:
        nir13 = nir13[:5] + substituted + nir13[7:]
    if not nir13.isdigit():
        raise InvalidMatriculeError(
            f"matricule INS: the 13 first characters must be digits (or 2A/2B), got {nir13!r}"
        )
    return int(nir13)


def compute_nir_key(nir13: str) -> int:
    """Return the control key (1..97) of the 13 first characters of a NIR/NIA.

    Key = 97 - (N13 mod 97), with 2A -> 19 and 2B -> 18 substituted before the modulo.
    """
    value = nir13.strip().upper()
    if len(value) != 13:
        raise InvalidMatriculeError(
            f"matricule INS: expected 13 characters to compute a key, got {len(value)}"
        )
    return 97 - (_numeric_nir13(value) % 97)


def _clean(value: str) -> str:
    # Agents often type or paste the number grouped ("2 79 03 51 215 189 89").
    return re.sub(r"[\s.]", "", value).upper()


def validate_matricule(value: str) -> str:
    """Return the canonical 15-character matricule INS or raise InvalidMatriculeError."""
    if not isinstance(value, str):
        raise InvalidMatriculeError("matricule INS: expected a string")
    cleaned = _clean(value)
    if len(cleaned) != 15:
        raise InvalidMatriculeError(
            f"matricule INS: expected 15 characters (13 + 2-digit key), got {len(cleaned)}"
        )
    if cleaned[0] not in _SEX_DIGITS:
        raise InvalidMatriculeError(
            f"matricule INS: first character (sex) must be one of 1, 2, 3, 4, 7, 8; "
            f"got {cleaned[0]!r}"
        )
    if not _MATRICULE_RE.match(cleaned):
        raise InvalidMatriculeError(
            "matricule INS: expected digits only, except 2A/2B as birth department "
            f"(characters 6-7); got {cleaned!r}"
        )
    expected = compute_nir_key(cleaned[:13])
    key = int(cleaned[13:])
    if key != expected:
        raise InvalidMatriculeError(
            f"matricule INS: control key {cleaned[13:]} does not match the 13 first "
            f"characters (expected {expected:02d})"
        )
    return cleaned


def parse_matricule(value: str) -> MatriculeParts:
    """Validate then split a matricule into its encoded fields."""
    m = validate_matricule(value)
    # Overseas departments (97x/98x) use 3 digits for the department and 2 for the commune.
    if m[5:7] in {"97", "98"}:
        department, commune = m[5:8], m[8:10]
    else:
        department, commune = m[5:7], m[7:10]
    return MatriculeParts(
        sex_digit=m[0],
        birth_year=m[1:3],
        birth_month=m[3:5],
        department=department,
        commune_or_country=commune,
        order=m[10:13],
        key=m[13:],
    )


_SEX_OF_DIGIT = {"1": "M", "3": "M", "7": "M", "2": "F", "4": "F", "8": "F"}


@dataclass(frozen=True, slots=True)
class NirDisagreement:
    """A trait the matricule encodes differently; `confirmable` when RNIV allows the gap
    (a birth place coded at the time of birth, before communes merged or were renamed)."""

    field: str
    message: str
    confirmable: bool = False


def nir_disagreements(
    matricule: str, *, sex: str, birth_date: date, birth_place: str | None
) -> list[NirDisagreement]:
    """What a (valid) matricule says that the typed traits contradict.

    Checked: the sex digit (1/3/7 male, 2/4/8 female; sex I is not compared), the year of
    birth, the month when it is a real one (01-12: the RNIPP writes fictitious months 20-42,
    50+ or 99 when it is unknown), and the birth place: department + commune for a birth in
    France (5 characters, 97x/98x overseas included), 99 + country code for a birth abroad.
    """
    m = validate_matricule(matricule)
    found: list[NirDisagreement] = []
    coded_sex = _SEX_OF_DIGIT.get(m[0])
    if sex in ("M", "F") and coded_sex is not None and coded_sex != sex:
        found.append(NirDisagreement("sex", f"the matricule's sex digit {m[0]} says {coded_sex}"))
    if m[1:3] != f"{birth_date.year % 100:02d}":
        found.append(
            NirDisagreement("birth_date", f"the matricule says born in a year ending {m[1:3]}")
        )
    month = int(m[3:5])
    if 1 <= month <= 12 and month != birth_date.month:
        found.append(NirDisagreement("birth_date", f"the matricule says born in month {m[3:5]}"))
    if birth_place:
        coded_place = m[5:10]
        if coded_place != birth_place.upper():
            abroad = coded_place.startswith("99")
            found.append(
                NirDisagreement(
                    "birth_place",
                    f"the matricule says born in {'country' if abroad else 'commune'} "
                    f"{coded_place}",
                    confirmable=True,
                )
            )
    return found


@dataclass(frozen=True, slots=True)
class Ins:
    """Identité Nationale de Santé identifier: matricule INS + OID of its assigning authority.

    The matricule is stored in canonical form (15 characters, no spaces). Building an ``Ins``
    does not make the identity usable for data exchange: only a *qualifiée* identity may carry
    its INS in exchanges (RNIV), which is the status module's concern.
    """

    matricule: str
    oid: InsOid

    def __post_init__(self) -> None:
        try:
            oid = InsOid(self.oid)
        except ValueError:
            known = ", ".join(o.value for o in InsOid)
            raise InvalidMatriculeError(
                f"INS OID {self.oid!r} is not an INS assigning authority (expected one of "
                f"{known}); note that 1.2.250.1.213.1.4.2 is the obsolete INS-C"
            ) from None
        object.__setattr__(self, "oid", oid)
        object.__setattr__(self, "matricule", validate_matricule(self.matricule))

    @classmethod
    def from_insi(cls, num_identifiant: str, cle: str, oid: str) -> Ins:
        """Build from the INSi response fields (NumIdentifiant 13 chars, Cle 2 digits, OID)."""
        return cls(matricule=f"{num_identifiant.strip()}{cle.strip()}", oid=InsOid(oid))

    @property
    def is_nia(self) -> bool:
        """NIA = numéro d'identification d'attente (temporary, pending a NIR)."""
        return self.oid is InsOid.NIA

    @property
    def is_test(self) -> bool:
        """True for test/demo INS, which must never reach production data."""
        return self.oid in {InsOid.NIR_TEST, InsOid.NIR_DEMO}

    @property
    def system(self) -> str:
        """FHIR/URI form of the assigning authority."""
        return f"urn:oid:{self.oid.value}"

    def __str__(self) -> str:
        return f"{self.matricule} ({self.oid.name})"
