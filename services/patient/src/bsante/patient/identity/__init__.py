"""Identitovigilance domain (RNIV): INS matricule, identity traits, COG codes, status, INSi."""

from bsante.patient.identity.nir import Ins, InsOid, InvalidMatriculeError, compute_nir_key
from bsante.patient.identity.status import (
    IdentityDocumentCheck,
    IdentityDocumentType,
    IdentityStatus,
    TraitDiscrepancy,
    TransitionRefusedError,
)
from bsante.patient.identity.traits import (
    IdentityTraits,
    Sex,
    TraitValidationError,
    to_ins_form,
)

__all__ = [
    "IdentityDocumentCheck",
    "IdentityDocumentType",
    "IdentityStatus",
    "IdentityTraits",
    "Ins",
    "InsOid",
    "InvalidMatriculeError",
    "Sex",
    "TraitDiscrepancy",
    "TraitValidationError",
    "TransitionRefusedError",
    "compute_nir_key",
    "to_ins_form",
]
