"""The simulator's patients: which INS have a DMP, whether it is open, who may access it."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# The INSi demo identities of the platform and the CI-SIS kit's test patient (test NIRs).
DEMO: dict[str, dict[str, Any]] = {
    "279035121518989": {"status": "ouvert"},
    "162018885045327": {"status": "ouvert"},
    "212057505612326": {"status": "ouvert"},
    "109076322083489": {"status": "ouvert"},
}


@dataclass
class DmpPatient:
    ins: str
    status: str = "ouvert"  # ouvert | ferme
    authorisations: dict[str, str] = field(default_factory=dict)  # structure -> autorise...
    medecin_traitant: str | None = None  # PSIdNat
    accesses: list[dict[str, str]] = field(default_factory=list)


def load(path: Path | None) -> dict[str, DmpPatient]:
    """`{"<INS>": {"status": "ouvert"|"ferme", "authorisations": {...}, "medecin_traitant":
    "8..."}}`; the demo set when no file is given."""
    raw: dict[str, dict[str, Any]] = json.loads(path.read_text()) if path else DEMO
    return {
        ins: DmpPatient(
            ins=ins,
            status=str(entry.get("status", "ouvert")),
            authorisations=dict(entry.get("authorisations", {})),
            medecin_traitant=entry.get("medecin_traitant"),
        )
        for ins, entry in raw.items()
    }
