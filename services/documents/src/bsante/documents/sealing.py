"""The sealing port of the documents service: what seals a signed document's artefacts with the
structure's certificate (cachet) and checks them again.

`bsante.documents.signing` (XAdES on the CDA, PAdES on the PDF) plugs in here; `Unsealed` is
the stand-in of a service built without a signing key: artefacts are kept as rendered and the
verification says they carry no seal. Sealing runs on the CPU pool (`run_cpu`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol


@dataclass(frozen=True)
class Verification:
    """What checking the seals found; `problems` name each failure."""

    cda_valid: bool
    pdf_valid: bool
    sealed: bool
    problems: list[str] = field(default_factory=list)
    signer: str | None = None

    @property
    def valid(self) -> bool:
        return self.cda_valid and self.pdf_valid and not self.problems


class Sealer(Protocol):
    def seal_pdf(self, pdf: bytes, *, structure_id: str) -> bytes:
        """The PDF with its PAdES signature (blocking)."""
        ...

    def seal_cda(self, cda: bytes, *, structure_id: str) -> bytes:
        """The CDA with its enveloped XAdES signature (blocking)."""
        ...

    def verify(self, cda: bytes, pdf: bytes) -> Verification:
        """Both signatures and the chain (blocking)."""
        ...


class Unsealed:
    """No signing key configured: nothing is sealed, and verification says so."""

    def seal_pdf(self, pdf: bytes, *, structure_id: str) -> bytes:
        return pdf

    def seal_cda(self, cda: bytes, *, structure_id: str) -> bytes:
        return cda

    def verify(self, cda: bytes, pdf: bytes) -> Verification:
        return Verification(
            cda_valid=False,
            pdf_valid=False,
            sealed=False,
            problems=["no sealing key is configured: the artefacts carry no signature"],
        )
