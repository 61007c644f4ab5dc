"""Persistence of patients over the store port, always scoped to one structure."""

from __future__ import annotations

from bsante.chassis.store import Store, Transaction
from bsante.patient.domain import Patient

COLLECTION = "patients"


async def add(tx: Transaction, patient: Patient) -> int:
    doc = await tx.insert(COLLECTION, str(patient.id), patient.model_dump(mode="json"))
    return doc.version


async def get(store: Store, structure_id: str, patient_id: str) -> tuple[Patient, int] | None:
    """The patient and its version, or None when absent or of another structure."""
    doc = await store.get(COLLECTION, patient_id)
    if doc is None or doc.data.get("structure_id") != structure_id:
        return None
    return Patient.model_validate(doc.data), doc.version


async def save(tx: Transaction, patient: Patient, expected_version: int) -> int:
    doc = await tx.update(
        COLLECTION, str(patient.id), patient.model_dump(mode="json"), expected_version
    )
    return doc.version
