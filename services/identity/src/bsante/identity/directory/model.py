"""Directory documents (professionals, structures, activities) built from parsed lines; no I/O.

* `professionals/<PSIdNat>`: one per person (8 + RPPS or 0 + ADELI), with profession, specialties
  (savoir-faire) and MSSanté addresses gathered from their activity lines.
* `structures/<StructIdNat>`: directory structures that have a FINESS, geographic establishment
  (ET, from "Numéro FINESS site") or legal entity (EJ); an ET points to its EJ. Tenant structures
  (the platform's customers, e.g. `demo-ehpad`) live in the same collection with `tenant: true`.
* `activities/<digest>`: one professional practising at one site (cabinet or establishment).

National identifiers used in documents are derived (`PSIdNat`, `StructIdNat`), never typed.
"""

from __future__ import annotations

import hashlib
from typing import Any

from bsante.identity.directory.annuaire import PersonActivity
from bsante.identity.directory.identifiers import (
    FINESS,
    PSIDNAT_OID,
    STRUCTIDNAT_OID,
    FinessKind,
)
from bsante.identity.domain import search_key

JSON = dict[str, Any]
PROFESSIONALS = "professionals"
STRUCTURES = "structures"
ACTIVITIES = "activities"


def structure_id(finess: FINESS) -> str:
    """Directory id of a FINESS structure: its StructIdNat (1 + FINESS)."""
    return finess.struct_id_nat.value


def activity_id(ps_id_nat: str, site_key: str, practice_mode: str | None) -> str:
    raw = f"{ps_id_nat}|{site_key}|{practice_mode or ''}".encode()
    return hashlib.sha256(raw).hexdigest()[:32]


def _union(first: list[Any], second: list[Any]) -> list[Any]:
    out = list(first)
    for item in second:
        if item not in out:
            out.append(item)
    return out


def professional_doc(
    line: PersonActivity, *, source: str, import_id: str | None, imported_at: str
) -> JSON:
    specialties = []
    if line.skill_code:
        specialties.append(
            {"type": line.skill_type_code, "code": line.skill_code, "label": line.skill_label}
        )
    mssante = [line.structure.mssante_email] if line.structure.mssante_email else []
    return {
        "ps_id_nat": line.ps_id_nat.value,
        "ps_id_nat_oid": PSIDNAT_OID,
        "rpps": line.rpps.value if line.rpps else None,
        "adeli": line.adeli.value if line.adeli else None,
        "civility": line.civility_label,
        "last_name": line.last_name,
        "first_name": line.first_name,
        "name_key": search_key(f"{line.last_name} {line.first_name or ''}"),
        "profession_code": line.profession_code,
        "profession_label": line.profession_label,
        "category_code": line.category_code,
        "specialties": specialties,
        "mssante": mssante,
        "city": line.structure.commune_label,
        "city_key": search_key(line.structure.commune_label),
        "source": source,
        "import_id": import_id,
        "updated_at": imported_at,
    }


def merge_professional(current: JSON, incoming: JSON) -> JSON:
    """Fold a further activity line of the same person, seen in the same import, into its doc.

    The first line of an import replaces what a previous import left; later lines of the same
    import add their specialties and MSSanté addresses. The city stays the first activity's.
    """
    if current.get("import_id") != incoming.get("import_id") or incoming.get("import_id") is None:
        return incoming
    merged = dict(incoming)
    merged["specialties"] = _union(current.get("specialties", []), incoming["specialties"])
    merged["mssante"] = _union(current.get("mssante", []), incoming["mssante"])
    merged["city"], merged["city_key"] = current.get("city"), current.get("city_key", "")
    return merged


def structure_docs(
    line: PersonActivity, *, source: str, import_id: str | None, imported_at: str
) -> list[JSON]:
    """The FINESS structures a line names: its site (ET) and legal entity (EJ), when present."""
    site, legal = line.structure.finess_site, line.structure.finess_ej
    docs = []
    if legal is not None:
        docs.append(
            {
                "id": structure_id(legal),
                "struct_id_nat_oid": STRUCTIDNAT_OID,
                "finess": legal.value,
                "finess_kind": FinessKind.EJ.value,
                "legal_entity": None,
                "name": None,
                "name_key": "",
                "siren": line.structure.siren,
                "city": None,
                "city_key": "",
                "postal_code": None,
                "commune_code": None,
                "tenant": False,
                "source": source,
                "import_id": import_id,
                "updated_at": imported_at,
            }
        )
    if site is not None:
        name = line.structure.trade_name or line.structure.company_name
        docs.append(
            {
                "id": structure_id(site),
                "struct_id_nat_oid": STRUCTIDNAT_OID,
                "finess": site.value,
                "finess_kind": FinessKind.ET.value,
                "legal_entity": structure_id(legal) if legal else None,
                "name": name,
                "name_key": search_key(name),
                "siret": line.structure.siret,
                "siren": line.structure.siren,
                "city": line.structure.commune_label,
                "city_key": search_key(line.structure.commune_label),
                "postal_code": line.structure.postal_code,
                "commune_code": line.structure.commune_code,
                "tenant": False,
                "source": source,
                "import_id": import_id,
                "updated_at": imported_at,
            }
        )
    return docs


def merge_structure(current: JSON, incoming: JSON) -> JSON:
    """A legal entity seen only as such keeps the name an establishment line may have given it."""
    merged = dict(incoming)
    for key in ("name", "name_key", "city", "city_key", "postal_code", "commune_code"):
        if not merged.get(key) and current.get(key):
            merged[key] = current[key]
    return merged


def activity_doc(
    line: PersonActivity, *, source: str, import_id: str | None, imported_at: str
) -> JSON:
    s = line.structure
    site_key = (
        (f"tech:{s.technical_id}" if s.technical_id else None)
        or (f"finess:{s.finess_site.value}" if s.finess_site else None)
        or (f"siret:{s.siret}" if s.siret else None)
        or f"site:{search_key(s.company_name)}:{s.postal_code or ''}"
    )
    ps = line.ps_id_nat.value
    return {
        "id": activity_id(ps, site_key, line.practice_mode_code),
        "ps_id_nat": ps,
        "rpps": line.rpps.value if line.rpps else None,
        "name_key": search_key(f"{line.last_name} {line.first_name or ''}"),
        "profession_code": line.profession_code,
        "specialty_code": line.skill_code,
        "specialty_label": line.skill_label,
        "practice_mode_code": line.practice_mode_code,
        "practice_mode_label": line.practice_mode_label,
        "structure_id": structure_id(s.finess_site) if s.finess_site else None,
        "structure_technical_id": s.technical_id,
        "site_name": s.trade_name or s.company_name,
        "siret": s.siret,
        "finess_site": s.finess_site.value if s.finess_site else None,
        "finess_ej": s.finess_ej.value if s.finess_ej else None,
        "postal_code": s.postal_code,
        "commune_code": s.commune_code,
        "city": s.commune_label,
        "city_key": search_key(s.commune_label),
        "phone": s.phone,
        "mssante": s.mssante_email,
        "source": source,
        "import_id": import_id,
        "updated_at": imported_at,
    }
