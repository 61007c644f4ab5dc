"""Service-only routes of the patient service: what other services read on a user's behalf.

Guarded by a service scope, not by the habilitation matrix: the calling service has checked its
user's rights on its own route. The user and the acting structure come in headers and go into
the access audit with the calling client, so the trail says "forms, for this user, read this".
"""

from __future__ import annotations

import uuid
from datetime import date
from typing import Annotated, Literal

from fastapi import APIRouter, Header, Path, Query
from pydantic import BaseModel, Field

from bsante.chassis.api import ServiceDep
from bsante.chassis.auth import ServicePrincipal, service_scope
from bsante.chassis.errors import NotFound
from bsante.contracts.permissions import ServiceScope
from bsante.patient import repository
from bsante.patient.annotations import CorrespondentRole
from bsante.patient.domain import Contact
from bsante.patient.schemas import PhysicianRef

router = APIRouter(prefix="/internal/patients", tags=["internal"])
PatientReader = Annotated[ServicePrincipal, service_scope(ServiceScope.PATIENT_READ)]


class FactsTraits(BaseModel):
    birth_name: str
    first_birth_given_name: str
    birth_given_names: str
    used_name: str | None
    sex: Literal["M", "F", "I"]
    birth_date: date
    birth_place: str | None = None
    used_first_name: str | None = None


class InsFacts(BaseModel):
    matricule: str
    oid: str


class PatientFacts(BaseModel):
    """What forms, documents and the DMP connector need of a record: identity traits, contact
    and médecin traitant for the DLU, birth date for the norms; IPP, identity status and INS for
    a document's header and the DMP (the INS only with a qualifiée identity, per the RNIV); the
    patient's opposition to DMP feeding."""

    id: uuid.UUID
    structure_id: str
    active: bool
    traits: FactsTraits
    contact: Contact
    medecin_traitant: PhysicianRef | None = None
    ipp: str | None = None
    identity_status: Literal["provisoire", "recuperee", "validee", "qualifiee"] = "provisoire"
    ins: InsFacts | None = Field(
        default=None, description="The INS, only when the identity is qualifiée (RNIV)"
    )
    dmp_opposition: bool = False


@router.get("/by-ins/{matricule}", response_model=PatientFacts)
async def read_by_ins(
    matricule: Annotated[str, Path(pattern=r"^[0-9]{13}([0-9]{2})?$")],
    oid: Annotated[str, Query(min_length=1, max_length=64, description="The INS's OID")],
    caller: PatientReader,
    svc: ServiceDep,
    x_structure_id: Annotated[
        str, Header(min_length=1, max_length=100, description="The acting structure")
    ],
    x_on_behalf_of: Annotated[
        str, Header(min_length=1, max_length=200, description="The user or service acted for")
    ],
) -> PatientFacts:
    """The structure's record whose identity is qualifiée with this INS, else 404: what lets a
    received document be attached with no human (RNIV: only a qualifiée INS identifies)."""
    # The matricule key document is a point look-up by id (no query, nothing to index).
    patient_id = await repository.owner_of(svc.store, x_structure_id, matricule)
    found = (
        None if patient_id is None else await repository.get(svc.store, x_structure_id, patient_id)
    )
    if found is None:
        raise NotFound("No qualifiée identity with this INS")
    patient, _ = found
    if (
        not patient.active
        or patient.identity_status != "qualifiee"
        or patient.ins is None
        or patient.ins.matricule != matricule
        or patient.ins.oid != oid
    ):
        raise NotFound("No qualifiée identity with this INS")
    return await read_for_service(patient.id, caller, svc, x_structure_id, x_on_behalf_of)


@router.get("/{patient_id}", response_model=PatientFacts)
async def read_for_service(
    patient_id: uuid.UUID,
    caller: PatientReader,
    svc: ServiceDep,
    x_structure_id: Annotated[
        str, Header(min_length=1, max_length=100, description="The user's acting structure")
    ],
    x_on_behalf_of: Annotated[
        str, Header(min_length=1, max_length=200, description="The user the service acts for")
    ],
) -> PatientFacts:
    """The record's identity facts, if the acting structure knows the patient; else 404."""
    found = await repository.get(svc.store, x_structure_id, str(patient_id))
    if found is None:
        raise NotFound("No such patient")
    patient, _ = found
    attached = await repository.correspondents(svc.store, patient.lineage)
    physician = next((c for c in attached if c.role is CorrespondentRole.MEDECIN_TRAITANT), None)
    async with svc.messaging.unit_of_work() as uow:
        await uow.audit(
            user_id=x_on_behalf_of,
            acting_structure=x_structure_id,
            patient_id=str(patient.id),
            action="read",
            resource="patient",
            service_client=caller.client_id,
        )
    return PatientFacts(
        id=patient.id,
        structure_id=patient.structure_id,
        active=patient.active,
        traits=FactsTraits.model_validate(patient.traits.model_dump()),
        contact=patient.contact,
        dmp_opposition=patient.dmp_opposition,
        medecin_traitant=(
            PhysicianRef(rpps=physician.rpps, display_name=physician.display_name)
            if physician is not None
            else None
        ),
        ipp=patient.ipp,
        identity_status=patient.identity_status,
        ins=(
            InsFacts(matricule=patient.ins.matricule, oid=patient.ins.oid)
            if patient.ins is not None and patient.identity_status == "qualifiee"
            else None
        ),
    )
