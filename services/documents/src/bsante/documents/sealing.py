"""The sealing port of the documents service: what seals a signed document's artefacts with the
structure's certificate (cachet) and checks them again.

`bsante.documents.signing` (XAdES on the CDA, PAdES on the PDF) plugs in here; `Unsealed` is
the stand-in of a service built without a signing key: artefacts are kept as rendered and the
verification says they carry no seal. Sealing runs on the CPU pool (`run_cpu`).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Protocol

from bsante.documents import signing
from bsante.documents.signing import SealingSettings


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

    def verify(self, cda: bytes, pdf: bytes | None) -> Verification:
        """Both signatures (the CDA's only when `pdf` is None) and the chain (blocking)."""
        ...


class Unsealed:
    """No signing key configured: nothing is sealed, and verification says so."""

    def seal_pdf(self, pdf: bytes, *, structure_id: str) -> bytes:
        return pdf

    def seal_cda(self, cda: bytes, *, structure_id: str) -> bytes:
        return cda

    def verify(self, cda: bytes, pdf: bytes | None) -> Verification:
        return Verification(
            cda_valid=False,
            pdf_valid=False,
            sealed=False,
            problems=["no sealing key is configured: the artefacts carry no signature"],
        )


class CachetSealer:
    """The port over `bsante.documents.signing`: the structure's cachet seals the PDF (PAdES)
    and the CDA (enveloped XAdES-BES); verification checks both and their chain.

    The signing key is loaded (the demo PKI made) on first use, not at start: a platform
    that never signs pays nothing.
    """

    def __init__(self, settings: SealingSettings) -> None:
        self._settings = settings
        self._sealer: signing.Sealer | None = None
        self._lock = threading.Lock()

    def _loaded(self) -> signing.Sealer:
        with self._lock:
            if self._sealer is None:
                self._sealer = self._settings.sealer()
            return self._sealer

    def seal_pdf(self, pdf: bytes, *, structure_id: str) -> bytes:
        return self._loaded().seal_pdf(pdf)

    def seal_cda(self, cda: bytes, *, structure_id: str) -> bytes:
        return self._loaded().seal_cda(cda)

    def verify(self, cda: bytes, pdf: bytes | None) -> Verification:
        found = self._loaded().verify(cda, pdf)
        problems = [
            f"{a.artefact}: {a.reason}"
            for a in (found.cda, found.pdf)
            if a is not None and not a.valid
        ]
        return Verification(
            cda_valid=found.cda is not None and found.cda.valid,
            # A received PDF is shared unsealed: only its CDA carries a seal.
            pdf_valid=found.pdf.valid if found.pdf is not None else pdf is None,
            sealed=True,
            problems=problems,
            signer=found.cda.signer_subject if found.cda is not None else None,
        )


def configured_sealer(settings: SealingSettings) -> Sealer:
    """The cachet when a key or a demo PKI directory is configured, else `Unsealed`."""
    if (settings.signing_key_file and settings.signing_cert_file) or (
        settings.signing_demo_pki_dir
    ):
        return CachetSealer(settings)
    return Unsealed()
