"""INSi teleservice port (search by traits / by carte Vitale) and an in-process simulator.

Shape of the real SOAP service (CNAM "ServiceIdentiteCertifiee" 1.0.0), as seen in public
client code (padoa/tlsi-ins, fixtures of INSi responses):

* RECSANSVITALE (action ``rechercherInsAvecTraitsIdentite``, namespace
  http://www.cnamts.fr/INSiRecSans): NomNaissance, Prenom, Sexe (M|F), DateNaissance
  (YYYY-MM-DD), optional LieuNaissance (COG).
* RECVITALE (action ``rechercherInsAvecCarteVitale``, namespace
  http://www.cnamts.fr/INSiRecVit): optional MatriculeIndividu (beneficiary), MatriculeOD
  (card holder, "ouvrant droit"), optional NomNaissance, DateNaissance ("DateLunaire"),
  RangNaissance (twin rank).
* RESULTAT/CR/CodeCR: 00 "OK" (one identity: INSACTIF = NumIdentifiant + Cle + OID, INSHISTO
  history, TIQ = NomNaissance, ListePrenom, Sexe, DateNaissance, LieuNaissance), 01 "Aucune
  identite trouvee", 02 "Plusieurs identites trouvees".
* Rejected calls come back as SOAP 1.2 Faults (Code soap:Sender + Subcode, French Reason,
  Detail with an error code and severity). The real functional error codes for malformed
  traits were not found in public sources: the simulator's codes are its own (``simu_*``).
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date
from enum import StrEnum
from typing import Protocol

from bsante.chassis.text import search_key
from bsante.patient.identity.nir import (
    Ins,
    InvalidMatriculeError,
    compute_nir_key,
    validate_matricule,
)
from bsante.patient.identity.traits import (
    IdentityTraits,
    Sex,
    TraitValidationError,
    to_ins_form,
    validate_name,
)

__all__ = [
    "ACTION_SEARCH_BY_TRAITS",
    "ACTION_SEARCH_BY_VITALE",
    "InsiClient",
    "InsiFaultError",
    "InsiIdentity",
    "InsiResponse",
    "InsiResultCode",
    "InsiSimulator",
    "SearchByTraits",
    "SearchByVitale",
    "SimulatedPerson",
    "VitaleLink",
    "parse_insi_birth_date",
]

ACTION_SEARCH_BY_TRAITS = "urn:ServiceIdentiteCertifiee:1.0.0:rechercherInsAvecTraitsIdentite"
ACTION_SEARCH_BY_VITALE = "urn:ServiceIdentiteCertifiee:1.0.0:rechercherInsAvecCarteVitale"

_LUNAR_DATE_RE = re.compile(r"^([0-9]{4})-([0-9]{2})-([0-9]{2})$")


class InsiResultCode(StrEnum):
    FOUND = "00"
    NOT_FOUND = "01"
    SEVERAL_FOUND = "02"

    @property
    def label(self) -> str:
        # LibelleCR as returned by the service (ASCII, no accents).
        return {
            InsiResultCode.FOUND: "OK",
            InsiResultCode.NOT_FOUND: "Aucune identite trouvee",
            InsiResultCode.SEVERAL_FOUND: "Plusieurs identites trouvees",
        }[self]


class InsiFaultError(Exception):
    """A SOAP Fault from INSi: the request was rejected (nothing was searched)."""

    def __init__(self, subcode: str, reason: str, *, field: str | None = None) -> None:
        super().__init__(f"{subcode}: {reason}")
        self.code = "soap:Sender"  # client-side error, as in real INSi faults
        self.subcode = subcode
        self.reason = reason
        self.field = field
        self.severity = "erreur"


def parse_insi_birth_date(value: str) -> date:
    """Convert an INSi birth date ("DateLunaire") into a calendar date.

    The RNIPP keeps partially unknown dates (day and/or month 00) and "lunar" dates (a day
    beyond the month's end). Decision (RNIV conversion table not available here): 00 day or
    month -> 01, day beyond month end -> last day of the month. Keep the raw INSi value
    (InsiIdentity.birth_date_raw) for audit.
    """
    m = _LUNAR_DATE_RE.match(value.strip())
    if not m:
        raise ValueError(f"DateNaissance: expected YYYY-MM-DD, got {value!r}")
    year, month, day = (int(g) for g in m.groups())
    if year < 1 or month > 12 or day > 31:
        raise ValueError(f"DateNaissance: {value!r} is not a possible date")
    month = month or 1
    day = min(day or 1, calendar.monthrange(year, month)[1])
    return date(year, month, day)


def is_partial_birth_date(value: str) -> bool:
    """True when an INSi/card date has an unknown day or month (00) or a lunar day (beyond
    the month's end): the calendar date `parse_insi_birth_date` gives is then a stand-in."""
    m = _LUNAR_DATE_RE.match(value.strip())
    if not m:
        return False
    year, month, day = (int(g) for g in m.groups())
    if month == 0 or day == 0 or month > 12 or year < 1:
        return True
    return day > calendar.monthrange(year, month)[1]


@dataclass(frozen=True, slots=True, kw_only=True)
class SearchByTraits:
    """RECSANSVITALE request. ``given_names``: first given name, optionally followed by the
    other birth given names (space-separated) to disambiguate a 02 answer."""

    birth_name: str
    given_names: str
    sex: str
    birth_date: str
    birth_place: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class SearchByVitale:
    """RECVITALE request built from the carte Vitale: holder (ouvrant droit) number,
    optional beneficiary number, birth date as on the card (may be lunar), twin rank."""

    holder_nir: str
    birth_date: str
    birth_rank: str = "1"
    beneficiary_nir: str | None = None
    birth_name: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class InsiIdentity:
    """An identity as returned by INSi (INSACTIF + TIQ, with INSHISTO)."""

    ins: Ins
    birth_name: str
    given_names: str  # ListePrenom, space-separated, in civil-status order
    sex: Sex
    birth_date_raw: str
    birth_place: str
    historical_ins: tuple[Ins, ...] = ()

    @property
    def first_given_name(self) -> str:
        # FR Core: "extraire le premier prénom de la liste des prénoms retournée".
        return self.given_names.split(" ")[0]

    @property
    def birth_date(self) -> date:
        return parse_insi_birth_date(self.birth_date_raw)

    def traits(self) -> IdentityTraits:
        """Reference traits, unvalidated against today's COG (INSi is the authority)."""
        return IdentityTraits(
            birth_name=self.birth_name,
            first_birth_given_name=self.first_given_name,
            birth_given_names=self.given_names,
            sex=self.sex,
            birth_date=self.birth_date,
            birth_place=self.birth_place,
        )


@dataclass(frozen=True, slots=True)
class InsiResponse:
    code: InsiResultCode
    identity: InsiIdentity | None = None

    @property
    def label(self) -> str:
        return self.code.label


class InsiClient(Protocol):
    """Port to the INSi teleservice; adapters: SOAP client (production), InsiSimulator."""

    def search_by_traits(self, request: SearchByTraits) -> InsiResponse: ...

    def search_by_vitale(self, request: SearchByVitale) -> InsiResponse: ...


@dataclass(frozen=True, slots=True)
class VitaleLink:
    """A carte Vitale on which the person appears: holder's matricule and twin rank."""

    holder_nir: str
    birth_rank: str = "1"


@dataclass(frozen=True, slots=True, kw_only=True)
class SimulatedPerson:
    identity: InsiIdentity
    vitale: tuple[VitaleLink, ...] = field(default_factory=tuple)


def _required(value: str | None, element: str) -> str:
    if value is None or not value.strip():
        raise InsiFaultError(
            "simu_donnee_obligatoire", f"L'element {element} est obligatoire", field=element
        )
    return value.strip()


def _checked_name(value: str, element: str) -> str:
    try:
        validate_name(value, element)
    except TraitValidationError as exc:
        raise InsiFaultError(
            "simu_format_invalide", f"{element} invalide: {exc.reason}", field=element
        ) from None
    return to_ins_form(value)


def _checked_date(value: str, element: str, today: date) -> date:
    try:
        parsed = parse_insi_birth_date(value)
    except ValueError:
        raise InsiFaultError(
            "simu_format_invalide",
            f"{element} invalide: format attendu AAAA-MM-JJ, recu {value!r}",
            field=element,
        ) from None
    if parsed > today:
        raise InsiFaultError(
            "simu_format_invalide", f"{element} invalide: date future", field=element
        )
    return parsed


def _checked_holder(value: str, element: str) -> str:
    cleaned = re.sub(r"\s", "", value).upper()
    # The card carries the 13-character number; the key may or may not be sent.
    try:
        if len(cleaned) == 13:
            compute_nir_key(cleaned)
            return cleaned
        return validate_matricule(cleaned)[:13]
    except InvalidMatriculeError as exc:
        raise InsiFaultError(
            "simu_format_invalide", f"{element} invalide: {exc}", field=element
        ) from None


def _given_names_match(requested: str, listed: str) -> bool:
    """Requested given names must start the listed ones at a word boundary."""
    words = to_ins_form(listed).split(" ")
    wanted = search_key(requested)
    acc = ""
    for word in words:
        acc += search_key(word)
        if acc == wanted:
            return True
        if len(acc) >= len(wanted):
            return False
    return False


class InsiSimulator:
    """In-process INSi answering from a configurable dataset of reference identities.

    Matching by traits: birth name, sex and birth date equal (INS form), requested given
    names start the ListePrenom, and the birth place equal when given. Matching by card: same
    holder number, birth date and rank, and the beneficiary number when given.
    """

    def __init__(self, people: Iterable[SimulatedPerson], *, today: date | None = None) -> None:
        self._people = tuple(people)
        self._today = today
        self.calls: list[tuple[str, SearchByTraits | SearchByVitale]] = []

    def _now(self) -> date:
        return self._today or date.today()

    def _answer(self, matches: list[InsiIdentity]) -> InsiResponse:
        if not matches:
            return InsiResponse(InsiResultCode.NOT_FOUND)
        if len(matches) > 1:
            return InsiResponse(InsiResultCode.SEVERAL_FOUND)
        return InsiResponse(InsiResultCode.FOUND, matches[0])

    def search_by_traits(self, request: SearchByTraits) -> InsiResponse:
        self.calls.append((ACTION_SEARCH_BY_TRAITS, request))
        name = _checked_name(_required(request.birth_name, "NomNaissance"), "NomNaissance")
        given = _checked_name(_required(request.given_names, "Prenom"), "Prenom")
        sex = _required(request.sex, "Sexe")
        if sex not in {"M", "F"}:
            raise InsiFaultError(
                "simu_format_invalide",
                f"Sexe invalide: M ou F attendu, recu {sex!r}",
                field="Sexe",
            )
        birth = _checked_date(
            _required(request.birth_date, "DateNaissance"), "DateNaissance", self._now()
        )
        place = (request.birth_place or "").strip().upper() or None
        if place is not None and not re.fullmatch(r"(?:[0-9]{2}|2A|2B)[0-9]{3}", place):
            raise InsiFaultError(
                "simu_format_invalide",
                f"LieuNaissance invalide: code COG attendu, recu {place!r}",
                field="LieuNaissance",
            )
        matches = [
            p.identity
            for p in self._people
            if to_ins_form(p.identity.birth_name) == name
            and p.identity.sex.value == sex
            and p.identity.birth_date == birth
            and _given_names_match(given, p.identity.given_names)
            and (place is None or p.identity.birth_place == place)
        ]
        return self._answer(matches)

    def search_by_vitale(self, request: SearchByVitale) -> InsiResponse:
        self.calls.append((ACTION_SEARCH_BY_VITALE, request))
        holder = _checked_holder(_required(request.holder_nir, "MatriculeOD"), "MatriculeOD")
        beneficiary = (
            _checked_holder(request.beneficiary_nir, "MatriculeIndividu")
            if request.beneficiary_nir and request.beneficiary_nir.strip()
            else None
        )
        birth = _checked_date(
            _required(request.birth_date, "DateNaissance"), "DateNaissance", self._now()
        )
        rank = _required(request.birth_rank, "RangNaissance")
        if not re.fullmatch(r"[1-9][0-9]{0,2}", rank):
            raise InsiFaultError(
                "simu_format_invalide",
                f"RangNaissance invalide: {rank!r}",
                field="RangNaissance",
            )
        if request.birth_name is not None and request.birth_name.strip():
            _checked_name(request.birth_name, "NomNaissance")
        matches = [
            p.identity
            for p in self._people
            if p.identity.birth_date == birth
            and any(
                _checked_holder(link.holder_nir, "MatriculeOD") == holder
                and link.birth_rank == rank
                for link in p.vitale
            )
            and (beneficiary is None or p.identity.ins.matricule[:13] == beneficiary)
        ]
        return self._answer(matches)
