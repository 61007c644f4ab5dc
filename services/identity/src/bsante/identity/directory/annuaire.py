"""Streaming parser for the Annuaire Santé public extraction "PS_LibreAcces_Personne_activite".

File format: pipe-separated (``|``), no quoting, one header line, UTF-8 (a BOM is tolerated),
LF or CRLF line ends, one line per (professional x activity). Lines in the real file are
believed to end with a trailing ``|`` (pandas users get an extra "Unnamed" column); the parser
accepts lines with or without it.

Column list (56 columns) -- no official ANS description was reachable from here, so it was
reconstructed from public code that reads the real file:

* a pandas script listing the full header in file order (GitHub code index, file id
  12126572586: "Type d'identifiant PP" ... "Libellé genre activité");
* an ingestion job whose comment says the headers were "vérifiés sur sample 300 KB du
  2026-05-05" and which reads the same names (GitHub code index, file id 59090913351);
* other readers using "Code Département (structure)", "Code commune (coord. structure)",
  "Code savoir-faire" (e.g. an R script on PS_LibreAcces_Personne_activite_202504040839.txt).

Only the columns in :data:`REQUIRED_COLUMNS` are read; they are looked up by name, so column
order and extra columns do not matter. One public comment claims the file is Windows-1252;
others read it as UTF-8 (as specified for this project), so the encoding is a parameter.

Identifier semantics: "Type d'identifiant PP" is 8 for RPPS and 0 for ADELI, "Identifiant PP"
holds the RPPS/ADELI number and "Identification nationale PP" the PSIdNat (type + number, e.g.
``0750006033`` for an ADELI in a public datasette example). A line whose national identifier
is present but disagrees with type + number is rejected.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from enum import StrEnum
from typing import IO, Final

from bsante.identity.directory.identifiers import (
    ADELI,
    FINESS,
    PSIDNAT_PREFIX_ADELI,
    PSIDNAT_PREFIX_RPPS,
    RPPS,
    FinessKind,
    PSIdNat,
    luhn_check_digit,
)

SEPARATOR: Final = "|"

COLUMNS: Final[tuple[str, ...]] = (
    "Type d'identifiant PP",
    "Identifiant PP",
    "Identification nationale PP",
    "Code civilité d'exercice",
    "Libellé civilité d'exercice",
    "Code civilité",
    "Libellé civilité",
    "Nom d'exercice",
    "Prénom d'exercice",
    "Code profession",
    "Libellé profession",
    "Code catégorie professionnelle",
    "Libellé catégorie professionnelle",
    "Code type savoir-faire",
    "Libellé type savoir-faire",
    "Code savoir-faire",
    "Libellé savoir-faire",
    "Code mode exercice",
    "Libellé mode exercice",
    "Numéro SIRET site",
    "Numéro SIREN site",
    "Numéro FINESS site",
    "Numéro FINESS établissement juridique",
    "Identifiant technique de la structure",
    "Raison sociale site",
    "Enseigne commerciale site",
    "Complément destinataire (coord. structure)",
    "Complément point géographique (coord. structure)",
    "Numéro Voie (coord. structure)",
    "Indice répétition voie (coord. structure)",
    "Code type de voie (coord. structure)",
    "Libellé type de voie (coord. structure)",
    "Libellé Voie (coord. structure)",
    "Mention distribution (coord. structure)",
    "Bureau cedex (coord. structure)",
    "Code postal (coord. structure)",
    "Code commune (coord. structure)",
    "Libellé commune (coord. structure)",
    "Code pays (coord. structure)",
    "Libellé pays (coord. structure)",
    "Téléphone (coord. structure)",
    "Téléphone 2 (coord. structure)",
    "Télécopie (coord. structure)",
    "Adresse e-mail (coord. structure)",
    "Code Département (structure)",
    "Libellé Département (structure)",
    "Ancien identifiant de la structure",
    "Autorité d'enregistrement",
    "Code secteur d'activité",
    "Libellé secteur d'activité",
    "Code section tableau pharmaciens",
    "Libellé section tableau pharmaciens",
    "Code rôle",
    "Libellé rôle",
    "Code genre activité",
    "Libellé genre activité",
)

# Logical field -> column name. Only these columns must be present in the header.
_FIELDS: Final[dict[str, str]] = {
    "id_type": "Type d'identifiant PP",
    "id_pp": "Identifiant PP",
    "id_nat": "Identification nationale PP",
    "civility_code": "Code civilité d'exercice",
    "civility_label": "Libellé civilité d'exercice",
    "last_name": "Nom d'exercice",
    "first_name": "Prénom d'exercice",
    "profession_code": "Code profession",
    "profession_label": "Libellé profession",
    "category_code": "Code catégorie professionnelle",
    "category_label": "Libellé catégorie professionnelle",
    "skill_type_code": "Code type savoir-faire",
    "skill_code": "Code savoir-faire",
    "skill_label": "Libellé savoir-faire",
    "practice_mode_code": "Code mode exercice",
    "practice_mode_label": "Libellé mode exercice",
    "siret": "Numéro SIRET site",
    "siren": "Numéro SIREN site",
    "finess_site": "Numéro FINESS site",
    "finess_ej": "Numéro FINESS établissement juridique",
    "structure_technical_id": "Identifiant technique de la structure",
    "company_name": "Raison sociale site",
    "trade_name": "Enseigne commerciale site",
    "postal_code": "Code postal (coord. structure)",
    "commune_code": "Code commune (coord. structure)",
    "commune_label": "Libellé commune (coord. structure)",
    "phone": "Téléphone (coord. structure)",
    "email": "Adresse e-mail (coord. structure)",
}

REQUIRED_COLUMNS: Final[frozenset[str]] = frozenset(_FIELDS.values())

_ID_TYPE_RPPS: Final = PSIDNAT_PREFIX_RPPS
_ID_TYPE_ADELI: Final = PSIDNAT_PREFIX_ADELI
_MSSANTE_SUFFIX: Final = ".mssante.fr"
_UTF8_BOM: Final = b"\xef\xbb\xbf"


class AnnuaireHeaderError(ValueError):
    """The header line is missing, or lacks required columns, or repeats a column name.

    Raised before any line is yielded so that the caller can refuse the whole file.
    """

    def __init__(
        self,
        message: str,
        *,
        missing: frozenset[str] = frozenset(),
        duplicated: frozenset[str] = frozenset(),
    ) -> None:
        super().__init__(message)
        self.missing = missing
        self.duplicated = duplicated


class RejectReason(StrEnum):
    """Why a data line was not turned into a record."""

    WRONG_COLUMN_COUNT = "wrong_column_count"
    ENCODING = "encoding"
    MISSING_IDENTIFIER = "missing_identifier"
    UNKNOWN_IDENTIFIER_TYPE = "unknown_identifier_type"
    INVALID_RPPS = "invalid_rpps"
    INVALID_ADELI = "invalid_adeli"
    INCONSISTENT_NATIONAL_ID = "inconsistent_national_id"
    INVALID_FINESS_SITE = "invalid_finess_site"
    INVALID_FINESS_EJ = "invalid_finess_ej"
    MISSING_NAME = "missing_name"


@dataclass(frozen=True, slots=True)
class Rejection:
    """A data line that was refused; ``line_number`` is 1-based and counts the header."""

    line_number: int
    reason: RejectReason
    detail: str


@dataclass(frozen=True, slots=True)
class Structure:
    """Where the activity takes place (coordinates of the structure)."""

    finess_site: FINESS | None
    finess_ej: FINESS | None
    siret: str | None
    siren: str | None
    technical_id: str | None
    company_name: str | None
    trade_name: str | None
    postal_code: str | None
    commune_code: str | None
    commune_label: str | None
    phone: str | None
    email: str | None

    @property
    def mssante_email(self) -> str | None:
        """The e-mail if it is an MSSanté address (``…@<domain>.mssante.fr``)."""
        if self.email is not None and self.email.lower().endswith(_MSSANTE_SUFFIX):
            return self.email
        return None


@dataclass(frozen=True, slots=True)
class PersonActivity:
    """One parsed line: a professional and one of their activities."""

    line_number: int
    ps_id_nat: PSIdNat
    rpps: RPPS | None
    adeli: ADELI | None
    civility_code: str | None
    civility_label: str | None
    last_name: str
    first_name: str | None
    profession_code: str | None
    profession_label: str | None
    category_code: str | None
    category_label: str | None
    skill_type_code: str | None
    skill_code: str | None
    skill_label: str | None
    practice_mode_code: str | None
    practice_mode_label: str | None
    structure: Structure


ParseResult = PersonActivity | Rejection


def parse_personne_activite(
    stream: Iterable[bytes] | Iterable[str],
    *,
    encoding: str = "utf-8",
) -> Iterator[ParseResult]:
    """Validate the header now, then return a lazy iterator of records and rejections.

    ``stream`` may be a binary or text file object, or any iterable of lines. Binary lines are
    decoded one at a time with ``encoding``; a line that does not decode is rejected rather
    than aborting the file. Memory use does not depend on the file size. Blank lines are
    skipped. Raises :class:`AnnuaireHeaderError` immediately if the header is unusable.
    """
    lines = _decoded_lines(stream, encoding)
    try:
        first = next(lines)
    except StopIteration:
        raise AnnuaireHeaderError("empty file: no header line") from None
    if isinstance(first, _UndecodableLine):
        raise AnnuaireHeaderError(f"header line is not valid {encoding}")
    indexes, width = _read_header(first[1])
    return _parse_body(lines, indexes, width)


class _UndecodableLine:
    __slots__ = ("line_number", "error")

    def __init__(self, line_number: int, error: str) -> None:
        self.line_number = line_number
        self.error = error


def _decoded_lines(
    stream: Iterable[bytes] | Iterable[str], encoding: str
) -> Iterator[tuple[int, str] | _UndecodableLine]:
    """Yield (line_number, text without line end), BOM removed from the first line."""
    source: Iterable[bytes | str] = stream
    for line_number, raw in enumerate(source, start=1):
        if isinstance(raw, bytes):
            if line_number == 1 and raw.startswith(_UTF8_BOM):
                raw = raw[len(_UTF8_BOM) :]
            try:
                text = raw.decode(encoding)
            except UnicodeDecodeError as exc:
                yield _UndecodableLine(line_number, str(exc))
                continue
        else:
            text = raw
            if line_number == 1 and text.startswith("\ufeff"):
                text = text[1:]
        # Text streams opened with newline="" keep "\r\n"; strip every line-end flavour.
        yield line_number, text.rstrip("\r\n")


def _read_header(header: str) -> tuple[dict[str, int], int]:
    names = [name.strip() for name in header.split(SEPARATOR)]
    if names and names[-1] == "":
        names.pop()  # trailing separator
    seen: set[str] = set()
    duplicated: set[str] = set()
    for name in names:
        if name in seen:
            duplicated.add(name)
        seen.add(name)
    missing = REQUIRED_COLUMNS - seen
    problems = []
    if missing:
        problems.append("missing columns: " + ", ".join(sorted(missing)))
    dup_required = duplicated & REQUIRED_COLUMNS
    if dup_required:
        problems.append("duplicated columns: " + ", ".join(sorted(dup_required)))
    if problems:
        raise AnnuaireHeaderError(
            "not a PS_LibreAcces_Personne_activite header (" + "; ".join(problems) + ")",
            missing=frozenset(missing),
            duplicated=frozenset(dup_required),
        )
    position = {name: i for i, name in enumerate(names)}
    return {field: position[column] for field, column in _FIELDS.items()}, len(names)


def _parse_body(
    lines: Iterator[tuple[int, str] | _UndecodableLine],
    indexes: dict[str, int],
    width: int,
) -> Iterator[ParseResult]:
    for item in lines:
        if isinstance(item, _UndecodableLine):
            yield Rejection(item.line_number, RejectReason.ENCODING, item.error)
            continue
        line_number, text = item
        if not text.strip():
            continue
        yield _parse_line(line_number, text, indexes, width)


def _opt(value: str) -> str | None:
    value = value.strip()
    return value or None


def _parse_line(line_number: int, text: str, indexes: dict[str, int], width: int) -> ParseResult:
    fields = text.split(SEPARATOR)
    if len(fields) == width + 1 and fields[-1] == "":
        fields.pop()  # trailing separator
    if len(fields) != width:
        return Rejection(
            line_number,
            RejectReason.WRONG_COLUMN_COUNT,
            f"expected {width} columns, got {len(fields)}",
        )

    def get(field: str) -> str | None:
        return _opt(fields[indexes[field]])

    id_type = get("id_type")
    id_pp = get("id_pp")
    id_nat = get("id_nat")
    if id_pp is None:
        if id_nat is None:
            return Rejection(line_number, RejectReason.MISSING_IDENTIFIER, "no RPPS/ADELI")
        # Without "Identifiant PP", fall back on the national identifier's own prefix.
        id_type, id_pp = id_type or id_nat[:1], id_nat[1:]

    rpps: RPPS | None = None
    adeli: ADELI | None = None
    if id_type == _ID_TYPE_RPPS:
        try:
            rpps = RPPS(id_pp)
        except ValueError as exc:
            return Rejection(line_number, RejectReason.INVALID_RPPS, str(exc))
        ps_id_nat = rpps.ps_id_nat
    elif id_type == _ID_TYPE_ADELI:
        try:
            adeli = ADELI(id_pp)
        except ValueError as exc:
            return Rejection(line_number, RejectReason.INVALID_ADELI, str(exc))
        ps_id_nat = adeli.ps_id_nat
    else:
        return Rejection(
            line_number,
            RejectReason.UNKNOWN_IDENTIFIER_TYPE,
            f"identifier type {id_type!r} is neither 8 (RPPS) nor 0 (ADELI)",
        )
    if id_nat is not None and id_nat != ps_id_nat.value:
        return Rejection(
            line_number,
            RejectReason.INCONSISTENT_NATIONAL_ID,
            f"national identifier {id_nat!r} does not match {ps_id_nat.value!r}",
        )

    last_name = get("last_name")
    if last_name is None:
        return Rejection(line_number, RejectReason.MISSING_NAME, "empty Nom d'exercice")

    finess_site: FINESS | None = None
    finess_ej: FINESS | None = None
    raw_site = get("finess_site")
    if raw_site is not None:
        try:
            finess_site = FINESS(raw_site, FinessKind.ET)
        except ValueError as exc:
            return Rejection(line_number, RejectReason.INVALID_FINESS_SITE, str(exc))
    raw_ej = get("finess_ej")
    if raw_ej is not None:
        try:
            finess_ej = FINESS(raw_ej, FinessKind.EJ)
        except ValueError as exc:
            return Rejection(line_number, RejectReason.INVALID_FINESS_EJ, str(exc))

    return PersonActivity(
        line_number=line_number,
        ps_id_nat=ps_id_nat,
        rpps=rpps,
        adeli=adeli,
        civility_code=get("civility_code"),
        civility_label=get("civility_label"),
        last_name=last_name,
        first_name=get("first_name"),
        profession_code=get("profession_code"),
        profession_label=get("profession_label"),
        category_code=get("category_code"),
        category_label=get("category_label"),
        skill_type_code=get("skill_type_code"),
        skill_code=get("skill_code"),
        skill_label=get("skill_label"),
        practice_mode_code=get("practice_mode_code"),
        practice_mode_label=get("practice_mode_label"),
        structure=Structure(
            finess_site=finess_site,
            finess_ej=finess_ej,
            siret=get("siret"),
            siren=get("siren"),
            technical_id=get("structure_technical_id"),
            company_name=get("company_name"),
            trade_name=get("trade_name"),
            postal_code=get("postal_code"),
            commune_code=get("commune_code"),
            commune_label=get("commune_label"),
            phone=get("phone"),
            email=get("email"),
        ),
    )


# --- Synthetic data -------------------------------------------------------------------------

_LAST_NAMES: Final = (
    "MARTIN", "BERNARD", "DUBOIS", "THOMAS", "ROBERT", "RICHARD", "PETIT", "DURAND",
    "LEROY", "MOREAU", "SIMON", "LAURENT", "LEFEBVRE", "MICHEL", "GARCIA", "DAVID",
)  # fmt: skip
_FIRST_NAMES: Final = (
    "Marie", "Jean", "Camille", "Léa", "Hugo", "Chloé", "Lucas", "Inès", "Noé", "Zoé",
)  # fmt: skip
# (profession code, label, savoir-faire type, savoir-faire code, savoir-faire label)
_PROFESSIONS: Final = (
    ("10", "Médecin", "S", "SM54", "Médecine générale (SM)"),
    ("10", "Médecin", "S", "SM26", "Qualifié en Médecine Générale (SM)"),
    ("21", "Pharmacien", "", "", ""),
    ("40", "Chirurgien-Dentiste", "", "", ""),
    ("50", "Sage-Femme", "", "", ""),
    ("60", "Infirmier", "", "", ""),
    ("70", "Masseur-Kinésithérapeute", "", "", ""),
)
_COMMUNES: Final = (
    ("75056", "75015", "Paris", "75"),
    ("69123", "69003", "Lyon", "69"),
    ("13055", "13005", "Marseille", "13"),
    ("33063", "33000", "Bordeaux", "33"),
    ("2A004", "20000", "Ajaccio", "2A"),
    ("2B033", "20200", "Bastia", "2B"),
)


def synthetic_personne_activite_lines(
    count: int,
    seed: int = 0,
    *,
    trailing_separator: bool = True,
    newline: str = "\n",
) -> Iterator[str]:
    """Yield the header then ``count`` valid, deterministic data lines (with line ends)."""
    rng = random.Random(seed)
    end = (SEPARATOR if trailing_separator else "") + newline
    yield SEPARATOR.join(COLUMNS) + end
    width = len(COLUMNS)
    pos = {name: i for i, name in enumerate(COLUMNS)}
    for n in range(count):
        row = [""] * width
        rpps = RPPS.from_payload(f"10{rng.randrange(10**8):08d}")
        code_commune, postal, commune, dept = rng.choice(_COMMUNES)
        prof_code, prof_label, sf_type, sf_code, sf_label = rng.choice(_PROFESSIONS)
        women = rng.random() < 0.5
        row[pos["Type d'identifiant PP"]] = _ID_TYPE_RPPS
        row[pos["Identifiant PP"]] = rpps.value
        row[pos["Identification nationale PP"]] = rpps.ps_id_nat.value
        row[pos["Code civilité d'exercice"]] = "DR" if prof_code == "10" else ""
        row[pos["Libellé civilité d'exercice"]] = "Docteur" if prof_code == "10" else ""
        row[pos["Code civilité"]] = "MME" if women else "M"
        row[pos["Libellé civilité"]] = "Madame" if women else "Monsieur"
        last_name = rng.choice(_LAST_NAMES)
        first_name = rng.choice(_FIRST_NAMES)
        row[pos["Nom d'exercice"]] = last_name
        row[pos["Prénom d'exercice"]] = first_name
        row[pos["Code profession"]] = prof_code
        row[pos["Libellé profession"]] = prof_label
        row[pos["Code catégorie professionnelle"]] = "C"
        row[pos["Libellé catégorie professionnelle"]] = "Civil"
        row[pos["Code type savoir-faire"]] = sf_type
        row[pos["Code savoir-faire"]] = sf_code
        row[pos["Libellé savoir-faire"]] = sf_label
        mode_code, mode_label = rng.choice((("L", "Libéral"), ("S", "Salarié")))
        row[pos["Code mode exercice"]] = mode_code
        row[pos["Libellé mode exercice"]] = mode_label
        siren = f"{rng.randrange(10**8):08d}"
        siren += luhn_check_digit(siren)
        row[pos["Numéro SIRET site"]] = siren + f"{rng.randrange(10**4):04d}" + "0"
        row[pos["Numéro SIREN site"]] = siren
        if n % 3 == 0:
            # Hospital activity: FINESS site (ET) and legal entity (EJ) in the same département.
            row[pos["Numéro FINESS site"]] = _finess(rng, dept)
            row[pos["Numéro FINESS établissement juridique"]] = _finess(rng, dept)
        row[pos["Identifiant technique de la structure"]] = f"R10{n:013d}"
        row[pos["Raison sociale site"]] = f"CABINET {last_name}"
        row[pos["Code postal (coord. structure)"]] = postal
        row[pos["Code commune (coord. structure)"]] = code_commune
        row[pos["Libellé commune (coord. structure)"]] = commune
        row[pos["Code pays (coord. structure)"]] = "99000"
        row[pos["Libellé pays (coord. structure)"]] = "France"
        row[pos["Téléphone (coord. structure)"]] = f"01{rng.randrange(10**8):08d}"
        if n % 2 == 0:
            row[pos["Adresse e-mail (coord. structure)"]] = (
                f"{first_name.lower()}.{rng.randrange(10**6)}@exemple.mssante.fr"
            )
        row[pos["Code Département (structure)"]] = dept
        yield SEPARATOR.join(row) + end


def write_synthetic_personne_activite(
    target: IO[bytes],
    count: int,
    seed: int = 0,
    *,
    bom: bool = False,
    trailing_separator: bool = True,
    newline: str = "\n",
) -> None:
    """Write a synthetic UTF-8 file to a binary stream, one line at a time."""
    if bom:
        target.write(_UTF8_BOM)
    for line in synthetic_personne_activite_lines(
        count, seed, trailing_separator=trailing_separator, newline=newline
    ):
        target.write(line.encode("utf-8"))


def _finess(rng: random.Random, dept: str) -> str:
    return FINESS.from_payload(f"{dept}{rng.randrange(10**6):06d}").value
