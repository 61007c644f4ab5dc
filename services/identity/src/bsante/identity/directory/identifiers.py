"""Value objects for French health identifiers: RPPS, ADELI, FINESS, PSIdNat and StructIdNat.

Sources and decisions (see also the shared specs, french-ehealth.md section 3):

* RPPS: 11 digits, the last one a Luhn check digit. No normative text was found; the ANS test
  RPPS 99700367909 and the example 01234567897 pass Luhn, and so does every RPPS embedded in
  the IGC-Santé test-card certificates we found (e.g. ``CN=899700367917``).
* ADELI: 9 characters. The key algorithm is unknown, so only the format is checked. Letters
  occur (Corsican départements 2A/2B, and an ANS test card carries ``0B7010446``), hence the
  alphabet is ``[0-9A-Z]``.
* FINESS: 9 characters = département (2 digits, or ``2A``/``2B``) + 6 digits + a Luhn check
  digit computed over the first 8 characters. Corsica: the fact sheet left the substitution
  unverified. We checked six real Corsican numbers published in the ARS Corse "recueils des actes
  administratifs" (CH Bastia 2B0000020, CH Calvi 2B0005342, CH Corte-Tattone 2B0004246,
  CH Bonifacio 2A0000170, CH Castelluccio 2A0000386, CH Sartène 2A0002606; pages on attrap.fr).
  None passes with the NIR-style 2A→19/2B→18 nor with 2A/2B→20; all six pass when the letter is
  replaced by its rank (A→1, B→2, i.e. 2A→21, 2B→22), which is what :func:`finess_luhn_digits`
  does.
* PSIdNat (OID 1.2.250.1.71.4.2.1): ``8`` + RPPS or ``0`` + ADELI. Other prefixes (1/3/4/5/6:
  identifiers internal to a structure) are not person-level national identifiers and are
  refused here.
* StructIdNat (OID 1.2.250.1.71.4.2.2): ``1`` + FINESS. Prefixes 2 (SIREN), 3 (SIRET),
  4 (RPPS rang) and 0 (cabinet ADELI) are not modelled yet.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum
from typing import ClassVar, Final

PSIDNAT_OID: Final = "1.2.250.1.71.4.2.1"
STRUCTIDNAT_OID: Final = "1.2.250.1.71.4.2.2"

PSIDNAT_PREFIX_RPPS: Final = "8"
PSIDNAT_PREFIX_ADELI: Final = "0"
STRUCTIDNAT_PREFIX_FINESS: Final = "1"

_RPPS_RE: Final = re.compile(r"[0-9]{11}")
_ADELI_RE: Final = re.compile(r"[0-9A-Z]{9}")
_FINESS_RE: Final = re.compile(r"(?:[0-9]{2}|2[AB])[0-9]{7}")

# Corsican départements carry a letter; see the module docstring for the evidence.
_CORSICA_SUBSTITUTION: Final = {"2A": "21", "2B": "22"}


def luhn_is_valid(digits: str) -> bool:
    """Return True when ``digits`` (ASCII digits only, check digit last) passes the Luhn test."""
    if not digits or not digits.isascii() or not digits.isdigit():
        return False
    return _luhn_sum(digits, double_first=False) % 10 == 0


def luhn_check_digit(payload: str) -> str:
    """Return the Luhn check digit to append to ``payload`` (ASCII digits only)."""
    if not payload or not payload.isascii() or not payload.isdigit():
        raise ValueError(f"Luhn payload must be a non-empty string of digits, got {payload!r}")
    # The check digit will sit at the rightmost (undoubled) place, so the payload's last digit
    # is doubled.
    return str((10 - _luhn_sum(payload, double_first=True) % 10) % 10)


def _luhn_sum(digits: str, *, double_first: bool) -> int:
    total = 0
    double = double_first
    for char in reversed(digits):
        value = ord(char) - 48
        if double:
            value *= 2
            if value > 9:
                value -= 9
        total += value
        double = not double
    return total


def finess_luhn_digits(finess: str) -> str:
    """Return the all-digit string over which a FINESS check digit is computed."""
    prefix = finess[:2]
    return _CORSICA_SUBSTITUTION.get(prefix, prefix) + finess[2:]


def _require_str(value: object, label: str) -> str:
    if not isinstance(value, str):
        raise ValueError(f"{label} must be a string, got {type(value).__name__}")
    return value


@dataclass(frozen=True, slots=True)
class RPPS:
    """Répertoire Partagé des Professionnels de Santé number: 11 digits, Luhn check digit."""

    value: str

    def __post_init__(self) -> None:
        value = _require_str(self.value, "RPPS")
        if not _RPPS_RE.fullmatch(value):
            raise ValueError(f"RPPS must be exactly 11 digits, got {value!r}")
        if not luhn_is_valid(value):
            raise ValueError(f"RPPS {value!r} has an invalid Luhn check digit")

    @classmethod
    def from_payload(cls, payload: str) -> RPPS:
        """Build an RPPS from its first 10 digits by appending the Luhn check digit."""
        if len(payload) != 10:
            raise ValueError(f"RPPS payload must be 10 digits, got {payload!r}")
        return cls(payload + luhn_check_digit(payload))

    @property
    def ps_id_nat(self) -> PSIdNat:
        return PSIdNat(PSIDNAT_PREFIX_RPPS + self.value)

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True, slots=True)
class ADELI:
    """ADELI number: 9 characters; only the format is checked (the key algorithm is unknown)."""

    value: str

    def __post_init__(self) -> None:
        value = _require_str(self.value, "ADELI")
        if not _ADELI_RE.fullmatch(value):
            raise ValueError(f"ADELI must be exactly 9 characters among 0-9 and A-Z, got {value!r}")

    @property
    def ps_id_nat(self) -> PSIdNat:
        return PSIdNat(PSIDNAT_PREFIX_ADELI + self.value)

    def __str__(self) -> str:
        return self.value


class FinessKind(StrEnum):
    """What a FINESS number designates."""

    EJ = "EJ"  # entité juridique (legal entity)
    ET = "ET"  # établissement, i.e. geographic establishment


@dataclass(frozen=True, slots=True)
class FINESS:
    """FINESS number (9 chars, Luhn) with an optional kind: legal entity (EJ) or site (ET).

    The number alone does not say whether it is an EJ or an ET; the kind comes from context
    (e.g. the column of the Annuaire Santé extraction it was read from). ``None`` means unknown.
    Equality includes the kind.
    """

    value: str
    kind: FinessKind | None = None

    def __post_init__(self) -> None:
        value = _require_str(self.value, "FINESS")
        if not _FINESS_RE.fullmatch(value):
            raise ValueError(
                "FINESS must be 9 characters: département (2 digits, 2A or 2B) then 7 digits, "
                f"got {value!r}"
            )
        if not luhn_is_valid(finess_luhn_digits(value)):
            raise ValueError(f"FINESS {value!r} has an invalid Luhn check digit")
        if self.kind is not None and not isinstance(self.kind, FinessKind):
            raise ValueError(f"FINESS kind must be a FinessKind, got {self.kind!r}")

    @classmethod
    def from_payload(cls, payload: str, kind: FinessKind | None = None) -> FINESS:
        """Build a FINESS from its first 8 characters by appending the Luhn check digit."""
        if len(payload) != 8:
            raise ValueError(f"FINESS payload must be 8 characters, got {payload!r}")
        digits = finess_luhn_digits(payload)
        if not digits.isascii() or not digits.isdigit():
            raise ValueError(f"FINESS payload has invalid characters: {payload!r}")
        return cls(payload + luhn_check_digit(digits), kind)

    @property
    def departement(self) -> str:
        """Two-character département code (``2A``/``2B`` for Corsica)."""
        return self.value[:2]

    @property
    def struct_id_nat(self) -> StructIdNat:
        return StructIdNat(STRUCTIDNAT_PREFIX_FINESS + self.value)

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True, slots=True)
class PSIdNat:
    """National identifier of a health professional (OID 1.2.250.1.71.4.2.1).

    Only the person-level forms are accepted: ``8`` + RPPS and ``0`` + ADELI.
    """

    value: str

    OID: ClassVar[str] = PSIDNAT_OID

    def __post_init__(self) -> None:
        value = _require_str(self.value, "PSIdNat")
        prefix, rest = value[:1], value[1:]
        try:
            if prefix == PSIDNAT_PREFIX_RPPS:
                RPPS(rest)
            elif prefix == PSIDNAT_PREFIX_ADELI:
                ADELI(rest)
            else:
                raise ValueError(
                    "PSIdNat must start with 8 (RPPS) or 0 (ADELI); other prefixes are "
                    "structure-internal identifiers"
                )
        except ValueError as exc:
            raise ValueError(f"invalid PSIdNat {value!r}: {exc}") from None

    @property
    def rpps(self) -> RPPS | None:
        return RPPS(self.value[1:]) if self.value[0] == PSIDNAT_PREFIX_RPPS else None

    @property
    def adeli(self) -> ADELI | None:
        return ADELI(self.value[1:]) if self.value[0] == PSIDNAT_PREFIX_ADELI else None

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True, slots=True)
class StructIdNat:
    """National identifier of a structure (OID 1.2.250.1.71.4.2.2); only ``1`` + FINESS here."""

    value: str

    OID: ClassVar[str] = STRUCTIDNAT_OID

    def __post_init__(self) -> None:
        value = _require_str(self.value, "StructIdNat")
        if value[:1] != STRUCTIDNAT_PREFIX_FINESS:
            raise ValueError(
                f"invalid StructIdNat {value!r}: only the FINESS form (prefix 1) is supported"
            )
        try:
            FINESS(value[1:])
        except ValueError as exc:
            raise ValueError(f"invalid StructIdNat {value!r}: {exc}") from None

    @property
    def finess(self) -> FINESS:
        return FINESS(self.value[1:])

    def __str__(self) -> str:
        return self.value
