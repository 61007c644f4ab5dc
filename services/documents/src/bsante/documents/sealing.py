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
    """Sealing with the cachet of the structure named by its FINESS (blocking calls)."""

    def seal_pdf(self, pdf: bytes, *, finess: str) -> bytes:
        """The PDF with its PAdES signature."""
        ...

    def seal_cda(self, cda: bytes, *, finess: str) -> bytes | None:
        """A detached XAdES signature of the CDA (the CDA itself stays schema-valid), or None
        when nothing seals."""
        ...

    def verify(self, cda: bytes, pdf: bytes | None, *, cda_signature: bytes | None) -> Verification:
        """Both signatures (the CDA's only when `pdf` is None) and the chain."""
        ...


class Unsealed:
    """No signing key configured: nothing is sealed, and verification says so."""

    def seal_pdf(self, pdf: bytes, *, finess: str) -> bytes:
        return pdf

    def seal_cda(self, cda: bytes, *, finess: str) -> bytes | None:
        return None

    def verify(self, cda: bytes, pdf: bytes | None, *, cda_signature: bytes | None) -> Verification:
        return Verification(
            cda_valid=False,
            pdf_valid=False,
            sealed=False,
            problems=["no sealing key is configured: the artefacts carry no signature"],
        )


class CachetSealer:
    """The port over `bsante.documents.signing`: the structure's cachet seals the PDF (PAdES)
    and the CDA (enveloped XAdES-BES); verification checks both and their chain.

    Each structure's cachet (by FINESS) is loaded (its demo one made) on first use, not at
    start: a platform that never signs pays nothing. Verification trusts the same anchors
    whichever structure sealed.
    """

    def __init__(self, settings: SealingSettings) -> None:
        self._settings = settings
        self._sealers: dict[str | None, signing.Sealer] = {}
        self._lock = threading.Lock()

    def _loaded(self, finess: str | None) -> signing.Sealer:
        with self._lock:
            if finess not in self._sealers:
                self._sealers[finess] = self._settings.sealer(finess)
            return self._sealers[finess]

    def seal_pdf(self, pdf: bytes, *, finess: str) -> bytes:
        return self._loaded(finess).seal_pdf(pdf)

    def seal_cda(self, cda: bytes, *, finess: str) -> bytes | None:
        return self._loaded(finess).seal_cda_detached(cda)

    def verify(self, cda: bytes, pdf: bytes | None, *, cda_signature: bytes | None) -> Verification:
        sealer = next(iter(self._sealers.values()), None) or self._loaded(None)
        return verification_of(sealer.verify(cda, pdf, cda_signature=cda_signature), pdf)


def verification_of(found: signing.Verification, pdf: bytes | None) -> Verification:
    """The signing module's findings as the port's `Verification`."""
    problems = [
        f"{a.artefact}: {a.reason}" for a in (found.cda, found.pdf) if a is not None and not a.valid
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
