"""Use cases a professional drives over HTTP: a document's DMP status, its visibility and
withdrawal, consultation (ITI-18, ITI-43), and the DMP's administrative side.

The DMP is called outside any transaction; each access to patient data is audited.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Any

from bsante.chassis.auth import Principal
from bsante.chassis.errors import AccessDenied, ConflictError, NotFoundError, Unavailable
from bsante.chassis.jobs import schedule
from bsante.chassis.messaging import UnitOfWork
from bsante.chassis.store import Store
from bsante.dmp_connector import vihf, xds
from bsante.dmp_connector.dmp_client import DmpClient, DmpRefused, DmpUnavailable
from bsante.dmp_connector.feeding import VISIBILITY, WITHDRAW, ChangeJob
from bsante.dmp_connector.peers import PatientIns, Patients, PeerUnavailable, Structures
from bsante.dmp_connector.repository import State, Submission, get_submission, save_submission

UnitOfWorkFactory = Callable[[], AbstractAsyncContextManager[UnitOfWork]]
# TRE_G15 profession codes and their labels, for the VIHF subject:role.
PROFESSIONS = {
    "10": "Médecin",
    "21": "Pharmacien",
    "40": "Chirurgien-Dentiste",
    "50": "Sage-Femme",
    "60": "Infirmier",
}


class DmpRefusal(ConflictError):
    kind = "dmp-refused"


class DmpDown(Unavailable):
    kind = "dmp-unavailable"


@dataclass(frozen=True)
class Ports:
    store: Store
    unit_of_work: UnitOfWorkFactory
    patients: Patients
    dmp: DmpClient
    structures: Structures
    sector: str = "SA07"


async def _audit(
    uow: UnitOfWork, principal: Principal, patient_id: str, action: str, resource: str
) -> None:
    await uow.audit(
        user_id=principal.user_id,
        acting_structure=principal.acting_structure,
        patient_id=patient_id,
        action=action,  # type: ignore[arg-type]
        resource=resource,
    )


async def _submission(
    ports: Ports, principal: Principal, document_id: uuid.UUID
) -> tuple[Submission, int]:
    loaded = await get_submission(ports.store, str(document_id))
    if loaded is None or loaded[0].structure_id != principal.acting_structure:
        raise NotFoundError(
            "No DMP submission for this document",
            errors=[{"field": "document_id", "message": "unknown"}],
        )
    return loaded


async def status(ports: Ports, principal: Principal, document_id: uuid.UUID) -> Submission:
    submission, _ = await _submission(ports, principal, document_id)
    async with ports.unit_of_work() as uow:
        await _audit(uow, principal, submission.patient_id, "read", "dmp_submission")
    return submission


async def request_change(
    ports: Ports,
    principal: Principal,
    document_id: uuid.UUID,
    operation: str,
    visibility: list[str] | None = None,
) -> Submission:
    """Schedule an ITI-57 update (visibility, withdrawal) of a submitted document."""
    for _ in range(3):
        submission, version = await _submission(ports, principal, document_id)
        if submission.state is not State.SUBMITTED:
            raise ConflictError(
                f"The document is {submission.state.value}, not in the DMP",
                errors=[{"field": "document_id", "message": f"state {submission.state.value}"}],
            )
        if submission.pending_change is not None:
            raise ConflictError(
                "A change of this document is already under way",
                errors=[
                    {"field": "document_id", "message": f"pending {submission.pending_change}"}
                ],
            )
        changed = submission.model_copy(update={"pending_change": operation})
        async with ports.unit_of_work() as uow:
            # The version check of this update is the claim: two concurrent changes, one wins.
            await save_submission(uow.tx, changed, version)
            await schedule(
                uow.tx,
                kind=VISIBILITY if operation == "visibility" else WITHDRAW,
                idempotency_key=f"{submission.document_id}/{operation}/{version}",
                payload=ChangeJob(
                    document_id=submission.document_id,
                    requested_by=principal.user_id,
                    visibility=list(visibility or []),
                ),
                structure_id=submission.structure_id,
                subject_id=submission.document_id,
            )
            await _audit(uow, principal, submission.patient_id, "update", "dmp_submission")
        return changed
    raise AssertionError("unreachable")


# -- consultation and administration (synchronous DMP calls) ----------------------------------


async def actor_of(ports: Ports, principal: Principal) -> vihf.Actor:
    ps_id_nat = principal.claims.get("ps_id_nat")
    if not ps_id_nat:
        raise AccessDenied(
            "A DMP access needs a professional identified by a PSIdNat",
            errors=[{"field": "ps_id_nat", "message": "absent from the token"}],
        )
    # Identifiant_Structure is the national structure id (StructIdNat), not our tenant id: the
    # DMP keys the structure's authorisations and the documents it fed on it.
    try:
        struct_id_nat = await ports.structures.struct_id_nat(principal.acting_structure)
    except PeerUnavailable as error:
        raise Unavailable(f"The identity service is unavailable ({error})") from None
    if not struct_id_nat:
        raise ConflictError(
            "A DMP access needs the structure's national id: the structure has no FINESS",
            errors=[{"field": "acting_structure", "message": "no FINESS in the directory"}],
        )
    profession = principal.profession or "10"
    return vihf.Actor(
        ps_id_nat=str(ps_id_nat),
        name=str(principal.claims.get("name") or ps_id_nat),
        profession=profession,
        profession_display=PROFESSIONS.get(profession, profession),
        structure_id=struct_id_nat,
        sector=ports.sector,
    )


async def _ins(ports: Ports, principal: Principal, patient_id: uuid.UUID) -> PatientIns:
    try:
        found = await ports.patients.ins(
            str(patient_id), structure_id=principal.acting_structure, on_behalf_of=principal.user_id
        )
    except PeerUnavailable as error:
        raise Unavailable(f"The patient service is unavailable ({error})") from None
    if found is None:
        raise NotFoundError(
            "No such patient", errors=[{"field": "patient_id", "message": "unknown"}]
        )
    if found.identity_status != "qualifiee" or not found.ins or not found.ins_oid:
        raise ConflictError(
            "The DMP is reached with a qualified INS only",
            errors=[{"field": "patient_id", "message": "identity not qualifiée"}],
        )
    return found


async def _call(coro: Any) -> Any:
    try:
        return await coro
    except DmpUnavailable as error:
        raise DmpDown(f"The DMP is unavailable: {error}") from None
    except DmpRefused as error:
        raise DmpRefusal(f"The DMP refused the request: {error}") from None


def _raise_failure(response: xds.RegistryResponse) -> None:
    if not response.success:
        first = response.errors[0] if response.errors else xds.RegistryError("?", "Failure")
        raise DmpRefusal(
            f"The DMP refused the request: {first.code}",
            errors=[{"field": "dmp", "message": f"{first.code}: {first.context}"}],
        )


async def list_documents(
    ports: Ports, principal: Principal, patient_id: uuid.UUID
) -> list[xds.EntryView]:
    patient = await _ins(ports, principal, patient_id)
    actor = await actor_of(ports, principal)
    response, found = await _call(
        ports.dmp.query(
            actor,
            patient.ins or "",
            patient.ins_oid or "",
            xds.find_documents(xds.patient_cx(patient.ins or "", patient.ins_oid or "")),
        )
    )
    async with ports.unit_of_work() as uow:
        await _audit(uow, principal, str(patient_id), "search", "dmp_documents")
    _raise_failure(response)
    return list(found)


async def retrieve_document(
    ports: Ports, principal: Principal, patient_id: uuid.UUID, unique_id: str
) -> tuple[bytes, str]:
    patient = await _ins(ports, principal, patient_id)
    actor = await actor_of(ports, principal)
    ins, oid = patient.ins or "", patient.ins_oid or ""
    response, found = await _call(ports.dmp.query(actor, ins, oid, xds.get_documents([unique_id])))
    _raise_failure(response)
    entry = next((e for e in found if e.unique_id == unique_id), None)
    if entry is None:
        raise NotFoundError(
            "No such document in the patient's DMP",
            errors=[{"field": "unique_id", "message": "unknown"}],
        )
    status_, body, mime = await _call(
        ports.dmp.retrieve(actor, ins, oid, entry.repository_id, unique_id)
    )
    async with ports.unit_of_work() as uow:
        await _audit(uow, principal, str(patient_id), "read", "dmp_document")
    _raise_failure(status_)
    if body is None:
        raise NotFoundError(
            "The DMP returned no document",
            errors=[{"field": "unique_id", "message": "not returned"}],
        )
    return body, mime


async def dmp_state(
    ports: Ports,
    principal: Principal,
    patient_id: uuid.UUID,
    operation: str = "TestExistence",
    *,
    declare_self: bool = False,
    **attributes: str,
) -> dict[str, Any]:
    patient = await _ins(ports, principal, patient_id)
    actor = await actor_of(ports, principal)
    if declare_self:
        attributes["psIdNat"] = actor.ps_id_nat
    answer = await _call(
        ports.dmp.admin(actor, patient.ins or "", patient.ins_oid or "", operation, **attributes)
    )
    async with ports.unit_of_work() as uow:
        await _audit(
            uow,
            principal,
            str(patient_id),
            "read" if operation in ("TestExistence", "AccessHistory") else "update",
            "dmp_administration",
        )
    accesses = [dict(a.attrib) for a in answer]
    return {
        "exists": answer.get("exists") == "true",
        "status": answer.get("status"),
        "structure_authorisation": answer.get("authorisation"),
        "medecin_traitant_ps_id_nat": answer.get("medecinTraitant"),
        "accesses": accesses,
    }
