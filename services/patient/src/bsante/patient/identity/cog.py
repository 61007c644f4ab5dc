"""INSEE Code Officiel Géographique (COG) lookup for birth places: communes and countries."""

from __future__ import annotations

import csv
import gzip
import io
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from functools import cache
from importlib import resources
from typing import Protocol

__all__ = [
    "DATASET_RESOURCE",
    "DATASET_SOURCE",
    "CogEntry",
    "CogKind",
    "CogRepository",
    "EmbeddedCog",
    "InMemoryCog",
    "UnknownCogCodeError",
    "default_cog",
    "is_country_code",
    "looks_like_commune_code",
]

DATASET_RESOURCE = "cog_communes.csv.gz"
DATASET_SOURCE = (
    "communes: npm @etalab/decoupage-administratif@6.0.0 data/communes.json (COG 2026, "
    "Licence Ouverte) incl. anciensCodes; countries: INSEE country file (COG, LIBCOG, "
    "DATE_DEBUT, DATE_FIN) as republished in pass-culture/pass-culture-app-native "
    "src/features/bonification/inseeCountries.ts (2025). Rebuild with tools/build_cog_data.py."
)

FRANCE_COUNTRY_CODE = "99100"

# Metropolitan (01-95 incl. 2A/2B, and 20 for pre-1976 Corsica) and overseas (97x, 98x)
# commune codes are 5 characters; foreign countries are 99xxx.
_COMMUNE_CODE_RE = re.compile(r"^(?:[0-9]{2}|2A|2B)[0-9]{3}$")
_COUNTRY_CODE_RE = re.compile(r"^99[0-9]{3}$")


class CogKind(StrEnum):
    """What a COG code designates."""

    COMMUNE = "commune"
    ARRONDISSEMENT = "arrondissement"  # Paris/Lyon/Marseille arrondissements municipaux
    COMMUNE_DELEGUEE = "deleguee"
    COMMUNE_ASSOCIEE = "associee"
    ANCIENNE_COMMUNE = "ancienne"  # code retired by a merger or recoding, still a birth place
    PAYS = "pays"


@dataclass(frozen=True, slots=True)
class CogEntry:
    code: str
    kind: CogKind
    name: str
    # Current commune (for ancienne/déléguée/associée/arrondissement) or sovereign country.
    successor: str | None = None
    valid_from: str | None = None
    valid_to: str | None = None

    @property
    def is_abroad(self) -> bool:
        return self.kind is CogKind.PAYS


class UnknownCogCodeError(ValueError):
    """Raised for a syntactically valid code that is not in the COG dataset."""


class CogRepository(Protocol):
    """Swappable source of COG codes (embedded file, database table, test double...)."""

    def lookup(self, code: str) -> CogEntry | None: ...


def looks_like_commune_code(code: str) -> bool:
    return bool(_COMMUNE_CODE_RE.match(code)) and not code.startswith("99")


def is_country_code(code: str) -> bool:
    return bool(_COUNTRY_CODE_RE.match(code))


class InMemoryCog:
    """COG repository over an in-memory mapping; also used by tests."""

    def __init__(self, entries: Iterable[CogEntry]) -> None:
        self._entries: Mapping[str, CogEntry] = {e.code: e for e in entries}

    def lookup(self, code: str) -> CogEntry | None:
        return self._entries.get(code.strip().upper())

    def __len__(self) -> int:
        return len(self._entries)


def _parse_rows(text: str) -> list[CogEntry]:
    return [
        CogEntry(
            code=row["code"],
            kind=CogKind(row["kind"]),
            name=row["name"],
            successor=row["successor"] or None,
            valid_from=row["valid_from"] or None,
            valid_to=row["valid_to"] or None,
        )
        for row in csv.DictReader(io.StringIO(text))
    ]


class EmbeddedCog(InMemoryCog):
    """COG dataset shipped in this package (no network access at run time)."""

    source = DATASET_SOURCE

    def __init__(self) -> None:
        raw = resources.files(__package__).joinpath(DATASET_RESOURCE).read_bytes()
        super().__init__(_parse_rows(gzip.decompress(raw).decode("utf-8")))


@cache
def default_cog() -> EmbeddedCog:
    """Lazily loaded shared instance (about 40,000 codes, loaded on first use)."""
    return EmbeddedCog()
