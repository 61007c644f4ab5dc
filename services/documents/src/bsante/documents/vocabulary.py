"""Which document types (JDV_J07) and classes (JDV_J06) a template may carry.

A type must be one the CDA builder produces (`cda.DOCUMENT_TYPES`) and, when the CI-SIS kit is
installed, a concept of the kit's JDV_J07 value set. The kit ships no JDV_J06: the class codes
are the XDS classCode values of the CI-SIS sharing rules the documents use.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

from bsante.documents.cda import DOCUMENT_TYPES
from bsante.documents.conformance import CisisKit, KitNotFound

CLASS_CODES: dict[str, str] = {
    "10": "Compte rendu",
    "11": "Synthèse",
    "12": "Traitement, soins",
    "13": "Certificat, déclaration",
    "14": "Dossier administratif",
}


@cache
def _kit_types(root: str | None) -> frozenset[str] | None:
    try:
        kit = CisisKit(Path(root)) if root else CisisKit.locate()
        return frozenset(kit.value_set_concepts("JDV_J07"))
    except (KitNotFound, OSError):
        return None


def type_problem(type_code: str, kit_root: str | None = None) -> str | None:
    """Why a type code is refused, or None when accepted."""
    if type_code not in DOCUMENT_TYPES:
        return f"{type_code} is not a document type produced here ({', '.join(DOCUMENT_TYPES)})"
    kit = _kit_types(kit_root)
    if kit is not None and type_code not in kit:
        return f"{type_code} is not in the JDV_J07 value set"
    return None


def class_problem(class_code: str) -> str | None:
    if class_code not in CLASS_CODES:
        return f"{class_code} is not a class code ({', '.join(CLASS_CODES)})"
    return None
