"""Use cases of the record itself: create, correct the traits, contact, read, search, export."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from bsante.chassis.auth import Principal
from bsante.contracts.events import DmpOppositionRecorded
from bsante.patient import domain, repository
from bsante.patient.annotations import Correspondent, CorrespondentRole
from bsante.patient.domain import Contact, PatientRecord, Traits, new_patient
from bsante.patient.errors import ConflictError, InvalidRequest
from bsante.patient.fhir import PatientIdentity, to_fr_core_patient
from bsante.patient.handlers.common import (
    Ports,
    audit,
    emit_updated,
    insert_new,
    load,
    load_active,
    require_active,
)
from bsante.patient.identity.nir import (
    InvalidMatriculeError,
    nir_disagreements,
    validate_matricule,
)
from bsante.patient.schemas import PatientIn, TraitsIn


def check_nir_agrees(
    nir: str | None, traits: Traits, *, birth_place_confirmed: bool, field: str = "nir"
) -> None:
    """The declared matricule must say what the traits say (sex, birth year and month); a
    different birth place needs the caller's confirmation (a commune merged or renamed)."""
    if nir is None:
        return
    found = nir_disagreements(
        nir, sex=traits.sex, birth_date=traits.birth_date, birth_place=traits.birth_place
    )
    refused = [d for d in found if not (d.confirmable and birth_place_confirmed)]
    if refused:
        raise InvalidRequest(
            "The NIR does not agree with the traits",
            errors=[
                {
                    "field": d.field,
                    "location": "body",
                    "message": d.message
                    + (" (confirm with confirm_nir_birth_place=true)" if d.confirmable else ""),
                    "type": "nir_mismatch",
                }
                for d in refused
            ]
            + [{"field": field, "location": "body", "message": "disagrees with the traits"}],
        )


async def create_patient(
    ports: Ports, principal: Principal, body: PatientIn, *, confirm_not_duplicate: bool
) -> tuple[PatientRecord, int]:
    traits = body.to_traits()
    check_nir_agrees(body.nir, traits, birth_place_confirmed=body.confirm_nir_birth_place)

    def build(ipp: str) -> PatientRecord:
        return new_patient(
            structure_id=principal.acting_structure,
            ipp=ipp,
            traits=traits,
            author=principal.user_id,
            contact=body.contact,
            nir=body.nir,
        )

    return await insert_new(
        ports, principal, build, "nir", confirm_not_duplicate=confirm_not_duplicate
    )


async def correct_traits(
    ports: Ports,
    principal: Principal,
    patient_id: str,
    body: TraitsIn,
    expected: int,
    *,
    confirm_not_duplicate: bool,
    confirm_nir_birth_place: bool = False,
) -> tuple[PatientRecord, int]:
    patient = await load_active(ports, principal, patient_id)
    traits = body.to_traits()
    if patient.ins is None:
        check_nir_agrees(patient.nir, traits, birth_place_confirmed=confirm_nir_birth_place)
    try:
        updated = domain.correct_traits(patient, traits, principal.user_id)
    except domain.TraitsLockedError as error:
        raise ConflictError(
            str(error), errors=[{"field": "traits", "message": "recovered from INSi"}]
        ) from None
    changes = ["traits"]
    if updated.identity_status != patient.identity_status:
        changes.append("identity_status")
    async with ports.unit_of_work() as uow:
        if repository.traits_key(patient.structure_id, patient.traits) != repository.traits_key(
            updated.structure_id, updated.traits
        ):
            await repository.release_traits(uow.tx, patient)
            homonyms = await repository.claim_traits(
                uow.tx, updated, confirmed=confirm_not_duplicate
            )
            if homonyms:
                updated = updated.flagged_homonym()
                for other in await repository.flag_homonyms(
                    uow.tx, principal.acting_structure, homonyms
                ):
                    await emit_updated(uow, other, ["attributes"], principal.user_id)
                if "attributes" not in changes:
                    changes.append("attributes")
        version = await repository.save(uow.tx, updated, expected)
        await emit_updated(uow, updated, changes, principal.user_id)
        await audit(uow, principal, patient_id, "update")
    return updated, version


async def update_contact(
    ports: Ports, principal: Principal, patient_id: str, contact: Contact, expected: int
) -> tuple[PatientRecord, int]:
    patient = await load_active(ports, principal, patient_id)
    updated = patient.model_copy(update={"contact": contact}).logged(
        principal.user_id, "contact_updated"
    )
    async with ports.unit_of_work() as uow:
        version = await repository.save(uow.tx, updated, expected)
        await emit_updated(uow, updated, ["contact"], principal.user_id)
        await audit(uow, principal, patient_id, "update")
    return updated, version


async def record_dmp_opposition(
    ports: Ports, principal: Principal, patient_id: str, opposed: bool, expected: int | None
) -> tuple[PatientRecord, int]:
    """The patient's opposition to feeding their DMP, or its lifting (audited, evented)."""
    patient, version = await load(ports, principal, patient_id)
    require_active(patient)
    updated = patient.model_copy(update={"dmp_opposition": opposed}).logged(
        principal.user_id, "dmp_opposition_recorded" if opposed else "dmp_opposition_lifted"
    )
    async with ports.unit_of_work() as uow:
        saved = await repository.save(uow.tx, updated, version if expected is None else expected)
        await uow.emit(
            DmpOppositionRecorded(
                patient_id=patient.id,
                opposed=opposed,
                recorded_by=principal.user_id,
                recorded_at=ports.clock(),
            ),
            structure_id=patient.structure_id,
            subject_id=str(patient.id),
        )
        await audit(uow, principal, patient_id, "update")
    return updated, saved


async def read_patient(
    ports: Ports, principal: Principal, patient_id: str, resource: str = "patient"
) -> tuple[PatientRecord, int]:
    """The record (audited as a read of `resource`)."""
    patient, version = await load(ports, principal, patient_id)
    async with ports.unit_of_work() as uow:
        await audit(uow, principal, str(patient.id), "read", resource)
    return patient, version


async def read_record(
    ports: Ports, principal: Principal, patient_id: str
) -> tuple[PatientRecord, int, Correspondent | None]:
    """The record, its version and its current médecin traitant (audited as a read)."""
    patient, version = await read_patient(ports, principal, patient_id)
    attached = await repository.correspondents(ports.store, patient.lineage)
    physician = next((c for c in attached if c.role is CorrespondentRole.MEDECIN_TRAITANT), None)
    return patient, version, physician


@dataclass(frozen=True)
class SearchPatients:
    name: str | None = None
    given: str | None = None
    birth_date: date | None = None
    ins: str | None = None
    ipp: str | None = None
    limit: int = 20
    offset: int = 0


async def search_patients(
    ports: Ports, principal: Principal, query: SearchPatients
) -> tuple[list[PatientRecord], int]:
    """Active records matching the query; one `search` access record per patient returned."""
    matricule = None
    if query.ins:
        try:
            matricule = validate_matricule(query.ins)
        except InvalidMatriculeError as error:
            raise InvalidRequest(
                "The request has invalid fields",
                errors=[{"field": "query.ins", "location": "query", "message": str(error)}],
            ) from None
    items, total = await repository.search(
        ports.store,
        principal.acting_structure,
        name=query.name,
        given=query.given,
        birth_date=query.birth_date.isoformat() if query.birth_date else None,
        matricule=matricule,
        ipp=query.ipp,
        limit=query.limit,
        offset=query.offset,
    )
    if items:
        async with ports.unit_of_work() as uow:
            for patient in items:
                await audit(uow, principal, str(patient.id), "search")
    return items, total


async def export_fhir(
    ports: Ports, principal: Principal, patient_id: str, *, ipp_system_base: str
) -> tuple[dict[str, Any], int]:
    """The record as a FHIR FR Core Patient, audited as an export."""
    patient, version = await load(ports, principal, patient_id)
    resource = to_fr_core_patient(
        PatientIdentity(
            id=str(patient.id),
            traits=patient.traits.identity(),
            status=patient.status,
            ipp=patient.ipp,
            ipp_system=f"{ipp_system_base}{patient.structure_id}",
            ins=patient.ins.value() if patient.ins else None,
            insi_queried_at=patient.insi_queried_at,
            document_check=patient.document_check.value() if patient.document_check else None,
            active=patient.active,
        )
    )
    resource.update(_fhir_contact(patient.contact))
    async with ports.unit_of_work() as uow:
        await audit(uow, principal, str(patient.id), "export")
    return resource, version


def _fhir_contact(contact: Contact) -> dict[str, Any]:
    out: dict[str, Any] = {}
    telecom = [
        {"system": system, "value": value, **({"use": use} if use else {})}
        for system, value, use in (
            ("phone", contact.phone, "home"),
            ("phone", contact.mobile, "mobile"),
            ("email", contact.email, None),
        )
        if value
    ]
    if telecom:
        out["telecom"] = telecom
    a = contact.address
    if a is not None:
        address = {
            k: v
            for k, v in (
                ("line", a.lines or None),
                ("postalCode", a.postal_code),
                ("city", a.city),
                ("country", a.country),
            )
            if v
        }
        if address:
            out["address"] = [{"use": "home", **address}]
    return out
