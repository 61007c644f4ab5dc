"""The CI-SIS check run before signing: CDA_extended.xsd and the structurationMinimale
schematron of the ANS kit, when the kit is installed (`conformance.ConformanceValidator`)."""

from __future__ import annotations

from pathlib import Path

from bsante.documents.conformance import (
    CisisKit,
    ConformanceValidator,
    KitNotFound,
    shared_validator,
    signing_schematrons,
)


class KitConformance:
    """Failed checks as problem `errors`: XSD errors, then the failed schematron asserts."""

    def __init__(self, validator: ConformanceValidator) -> None:
        self.validator = validator

    @classmethod
    def located(cls, root: str = "") -> KitConformance | None:
        """The kit at `root` (else searched as `CisisKit.locate` does); None when absent."""
        try:
            kit = CisisKit(Path(root).resolve()) if root else CisisKit.locate()
        except KitNotFound:
            return None
        validator = shared_validator(kit)
        return cls(validator) if validator is not None else None

    @property
    def kit_root(self) -> str:
        return str(self.validator.kit.root)

    def warm_up(self) -> None:
        """Load the schema and compile the signing schematrons now (tens of seconds the first
        time in a process, then nothing), so that the first signature does not pay for them.
        Blocking: the service runs it in a worker thread at start."""
        kit = self.validator.kit
        _ = self.validator.schema
        for sch in signing_schematrons(kit, dlu=True):
            self.validator.prepare(sch)

    def check(self, cda: bytes, *, dlu: bool = False) -> list[dict[str, str]]:
        report = self.validator.validate(cda, signing_schematrons(self.validator.kit, dlu=dlu))
        errors = [{"field": "cda", "message": f"XSD: {error}"} for error in report.xsd_errors]
        errors.extend(
            {"field": "cda", "message": f"{failed.id or 'assert'}: {failed.text}"[:500],
             "location": failed.location[:300]}
            for failed in report.failed_asserts
            if failed.is_error
        )  # fmt: skip
        return errors
