"""DMP connector HTTP API: per-document DMP status and changes, consultation, administration."""

from __future__ import annotations

import uuid
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from bsante.chassis.api import ServiceDep
from bsante.chassis.auth import Principal, allowed
from bsante.chassis.openapi import problems
from bsante.contracts.events import DmpVisibility
from bsante.contracts.permissions import Action
from bsante.dmp_connector import consultation
from bsante.dmp_connector.repository import Step, Submission

router = APIRouter(tags=["dmp"])
Reader = Annotated[Principal, allowed(Action.READ_CLINICAL)]
Sender = Annotated[Principal, allowed(Action.SEND_DMP)]
Consulter = Annotated[Principal, allowed(Action.CONSULT_DMP)]
UniqueId = Annotated[
    str, Path(min_length=3, max_length=128, pattern=r"^[0-9.]+(\^[A-Za-z0-9.\-]{1,64})?$")
]


async def ports(svc: ServiceDep, request: Request) -> consultation.Ports:
    return consultation.Ports(
        store=svc.store,
        unit_of_work=svc.messaging.unit_of_work,
        patients=request.app.state.patients,
        dmp=request.app.state.dmp,
        structures=request.app.state.structures,
    )


PortsDep = Annotated[consultation.Ports, Depends(ports)]


class SubmissionOut(BaseModel):
    document_id: str
    patient_id: str
    state: str = Field(
        description="waiting_qualified_ins, blocked_patient_opposition, queued, "
        "submitted, failed, withdrawn"
    )
    reason: str | None
    error_code: str | None
    unique_id: str | None
    replaces_unique_id: str | None
    visibility: list[DmpVisibility]
    pending_change: str | None
    updated_at: str
    history: list[Step]

    @classmethod
    def of(cls, s: Submission) -> SubmissionOut:
        return cls(
            document_id=s.document_id,
            patient_id=s.patient_id,
            state=s.state.value,
            reason=s.reason,
            error_code=s.error_code,
            unique_id=s.unique_id,
            replaces_unique_id=s.replaces_unique_id,
            visibility=s.visibility,
            pending_change=s.pending_change,
            updated_at=s.updated_at,
            history=s.history,
        )


class VisibilityIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    visibility: list[DmpVisibility] = Field(
        max_length=3,
        description="Empty: visible to all; MASQUE_PS hides it from professionals, "
        "INVISIBLE_PATIENT from the patient",
    )


class DmpEntryOut(BaseModel):
    unique_id: str
    title: str
    type_code: str
    class_code: str
    creation_time: str
    status: str
    confidentiality: list[str]
    size: int


class DmpStateOut(BaseModel):
    exists: bool
    status: str | None = Field(description="ouvert or ferme")
    structure_authorisation: str | None = Field(description="autorise, interdit, non_definie")
    medecin_traitant_ps_id_nat: str | None


class AuthorisationIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    authorisation: Literal["autorise", "interdit", "non_definie"] = Field(
        description="The patient authorises the structure, forbids it, or the authorisation "
        "is removed"
    )


class AccessOut(BaseModel):
    at: str
    actor: str
    structure: str
    action: str


@router.get("/documents/{document_id}/dmp", response_model=SubmissionOut)
async def submission_status(
    document_id: uuid.UUID, principal: Reader, ports: PortsDep
) -> SubmissionOut:
    """Where the document stands with the DMP (waiting, queued, submitted, failed...)."""
    return SubmissionOut.of(await consultation.status(ports, principal, document_id))


@router.put(
    "/documents/{document_id}/dmp/visibility",
    status_code=202,
    response_model=SubmissionOut,
    responses=problems(409),
)
async def change_visibility(
    document_id: uuid.UUID, body: VisibilityIn, principal: Sender, ports: PortsDep
) -> SubmissionOut:
    """Hide the document from professionals or from the patient, or show it again
    (ITI-57 Update Document Set: a new version of its DocumentEntry)."""
    changed = await consultation.request_change(
        ports, principal, document_id, "visibility", list(dict.fromkeys(body.visibility))
    )
    return SubmissionOut.of(changed)


@router.delete(
    "/documents/{document_id}/dmp",
    status_code=202,
    response_model=SubmissionOut,
    responses=problems(409),
)
async def withdraw(document_id: uuid.UUID, principal: Sender, ports: PortsDep) -> SubmissionOut:
    """Withdraw the document from the DMP (ITI-57: availability status Deprecated)."""
    return SubmissionOut.of(
        await consultation.request_change(ports, principal, document_id, "withdraw")
    )


@router.get(
    "/patients/{patient_id}/dmp-documents",
    response_model=list[DmpEntryOut],
    responses=problems(409, 503),
)
async def dmp_documents(
    patient_id: uuid.UUID, principal: Consulter, ports: PortsDep
) -> list[DmpEntryOut]:
    """The documents of the patient's DMP this professional may see (ITI-18 FindDocuments by
    the INS)."""
    found = await consultation.list_documents(ports, principal, patient_id)
    return [
        DmpEntryOut(
            unique_id=e.unique_id,
            title=e.title,
            type_code=e.type_code,
            class_code=e.class_code,
            creation_time=e.creation_time,
            status=e.status.rpartition(":")[2],
            confidentiality=e.confidentiality,
            size=e.size,
        )
        for e in found
    ]


@router.get(
    "/patients/{patient_id}/dmp-documents/{unique_id}",
    response_class=Response,
    responses={200: {"content": {"application/xml": {}}}, **problems(409, 503)},
)
async def dmp_document(
    patient_id: uuid.UUID, unique_id: UniqueId, principal: Consulter, ports: PortsDep
) -> Response:
    """One document of the patient's DMP (ITI-18 GetDocuments, then ITI-43 Retrieve)."""
    body, mime = await consultation.retrieve_document(ports, principal, patient_id, unique_id)
    return Response(
        body,
        media_type=mime if mime in ("text/xml", "application/pdf") else "application/octet-stream",
    )


@router.get("/patients/{patient_id}/dmp", response_model=DmpStateOut, responses=problems(409, 503))
async def dmp_state(patient_id: uuid.UUID, principal: Consulter, ports: PortsDep) -> Any:
    """The patient's DMP: exists and open, this structure's authorisation, the médecin
    traitant DMP."""
    return await consultation.dmp_state(ports, principal, patient_id)


@router.put(
    "/patients/{patient_id}/dmp/authorisation",
    response_model=DmpStateOut,
    responses=problems(409, 503),
)
async def record_authorisation(
    patient_id: uuid.UUID, body: AuthorisationIn, principal: Sender, ports: PortsDep
) -> Any:
    """Record that the patient authorises this structure to access their DMP, or forbids it."""
    action = {"autorise": "AJOUT", "interdit": "INTERDICTION", "non_definie": "SUPPRESSION"}
    return await consultation.dmp_state(
        ports, principal, patient_id, "UpdateAuthorisation", action=action[body.authorisation]
    )


@router.put(
    "/patients/{patient_id}/dmp/medecin-traitant",
    response_model=DmpStateOut,
    responses=problems(409, 503),
)
async def declare_medecin_traitant(
    patient_id: uuid.UUID, principal: Sender, ports: PortsDep
) -> Any:
    """Declare the calling professional as the patient's médecin traitant DMP."""
    return await consultation.dmp_state(
        ports, principal, patient_id, "DeclareMedecinTraitant", declare_self=True
    )


@router.get(
    "/patients/{patient_id}/dmp/access-history",
    response_model=list[AccessOut],
    responses=problems(409, 503),
)
async def access_history(
    patient_id: uuid.UUID, principal: Consulter, ports: PortsDep
) -> list[AccessOut]:
    """Every access to the patient's DMP, for the médecin traitant DMP only."""
    state = await consultation.dmp_state(ports, principal, patient_id, "AccessHistory")
    return [AccessOut.model_validate(a) for a in state["accesses"]]
