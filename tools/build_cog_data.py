"""Maintainer tool: rebuild the patient service's COG dataset from public extracts.

Writes services/patient/src/bsante/patient/identity/cog_communes.csv.gz (read at run time by
bsante.patient.identity.cog); this script itself is not shipped with the service.

Inputs
------
* ``communes.json`` from the npm package ``@etalab/decoupage-administratif`` (data.gouv.fr,
  Licence Ouverte; built from INSEE's Code Officiel Géographique). Version 6.0.0 = COG 2026.
  Obtain it with ``npm pack @etalab/decoupage-administratif@6.0.0`` and extract
  ``package/data/communes.json``. Besides current communes it lists arrondissements
  municipaux, communes déléguées/associées, and for each commune its ``anciensCodes``
  (codes that disappeared through mergers or recoding, e.g. Seine-et-Oise 1968, Corsica 1976).
* An INSEE country file (``v_pays_AAAA.csv`` from insee.fr, or any CSV with at least the
  ``COG`` and ``LIBCOG`` columns, ``,`` or ``;`` separated; optional ``DATE_DEBUT`` and
  ``DATE_FIN``), **or** ``--countries-from-existing`` to keep the countries already in the
  current data file.

Usage::

    python tools/build_cog_data.py communes.json v_pays_2026.csv
    python tools/build_cog_data.py communes.json --countries-from-existing
"""

from __future__ import annotations

import argparse
import csv
import gzip
import io
import json
from collections.abc import Iterable, Iterator
from pathlib import Path

__all__ = ["FIELDS", "build_rows", "main", "read_countries", "write_dataset"]

FIELDS = ("code", "kind", "name", "successor", "valid_from", "valid_to")
DEFAULT_OUTPUT = (
    Path(__file__).resolve().parent.parent
    / "services/patient/src/bsante/patient/identity/cog_communes.csv.gz"
)

_KIND_BY_TYPE = {
    "commune-actuelle": "commune",
    "arrondissement-municipal": "arrondissement",
    "commune-deleguee": "deleguee",
    "commune-associee": "associee",
}
_PRIORITY = {"commune": 0, "arrondissement": 1, "deleguee": 2, "associee": 3}


def _commune_rows(communes: list[dict[str, object]]) -> Iterator[dict[str, str]]:
    by_code: dict[str, dict[str, str]] = {}
    for item in communes:
        kind = _KIND_BY_TYPE.get(str(item["type"]))
        if kind is None:
            raise ValueError(f"unknown commune type {item['type']!r}")
        code = str(item["code"])
        successor = str(item.get("chefLieu") or item.get("commune") or "")
        row = {
            "code": code,
            "kind": kind,
            "name": str(item["nom"]),
            "successor": successor,
            "valid_from": "",
            "valid_to": "",
        }
        previous = by_code.get(code)
        # A déléguée/associée often shares the code of its commune nouvelle: the current
        # commune (or arrondissement) row wins, whatever the order of the source.
        if previous is None or _PRIORITY[kind] < _PRIORITY[previous["kind"]]:
            by_code[code] = row
    yield from by_code.values()
    for item in communes:
        for old in item.get("anciensCodes", []) or []:  # type: ignore[attr-defined]
            old_code = str(old)
            if old_code in by_code:
                continue
            # The historic name is not in this source; the successor's name helps the UI.
            by_code[old_code] = {
                "code": old_code,
                "kind": "ancienne",
                "name": str(item["nom"]),
                "successor": str(item["code"]),
                "valid_from": "",
                "valid_to": "",
            }
            yield by_code[old_code]


def read_countries(text: str) -> list[dict[str, str]]:
    """Parse an INSEE country CSV (COG, LIBCOG[, DATE_DEBUT, DATE_FIN])."""
    delimiter = ";" if text.splitlines()[0].count(";") > text.splitlines()[0].count(",") else ","
    rows: dict[str, dict[str, str]] = {}
    for row in csv.DictReader(io.StringIO(text), delimiter=delimiter):
        code = (row.get("COG") or "").strip()
        if not code.startswith("99") or len(code) != 5:
            continue  # INSEE leaves COG empty for some territories without their own code
        entry = {
            "code": code,
            "kind": "pays",
            "name": (row.get("LIBCOG") or "").strip(),
            "successor": (row.get("CRPAY") or "").strip(),
            "valid_from": (row.get("DATE_DEBUT") or "").strip(),
            "valid_to": (row.get("DATE_FIN") or "").strip(),
        }
        previous = rows.get(code)
        # Several rows may share a COG (renamings): keep the most recent one.
        if previous is None or entry["valid_from"] > previous["valid_from"]:
            rows[code] = entry
    return sorted(rows.values(), key=lambda r: r["code"])


def _existing_countries(path: Path) -> list[dict[str, str]]:
    with gzip.open(path, "rt", encoding="utf-8", newline="") as fh:
        return [row for row in csv.DictReader(fh) if row["kind"] == "pays"]


def build_rows(
    communes: list[dict[str, object]], countries: Iterable[dict[str, str]]
) -> list[dict[str, str]]:
    """Merge commune and country rows, sorted by code for reproducible output."""
    rows = list(_commune_rows(communes)) + list(countries)
    return sorted(rows, key=lambda r: (r["code"], r["kind"]))


def write_dataset(rows: list[dict[str, str]], output: Path) -> None:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=FIELDS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    # mtime=0 keeps the gzip byte-identical across rebuilds of the same inputs.
    with (
        open(output, "wb") as raw,
        gzip.GzipFile(filename="", fileobj=raw, mode="wb", mtime=0) as gz,
    ):
        gz.write(buffer.getvalue().encode("utf-8"))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("communes_json", type=Path)
    parser.add_argument("countries_csv", type=Path, nargs="?")
    parser.add_argument("--countries-from-existing", action="store_true")
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT)
    args = parser.parse_args(argv)
    communes = json.loads(args.communes_json.read_text(encoding="utf-8"))
    if args.countries_csv is not None:
        countries = read_countries(args.countries_csv.read_text(encoding="utf-8-sig"))
    elif args.countries_from_existing:
        countries = _existing_countries(args.output)
    else:
        parser.error("give a countries CSV or --countries-from-existing")
    rows = build_rows(communes, countries)
    write_dataset(rows, args.output)
    print(f"wrote {len(rows)} rows to {args.output}")


if __name__ == "__main__":
    main()
