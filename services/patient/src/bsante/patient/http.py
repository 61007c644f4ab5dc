"""Patient HTTP API: the record, its identity (INSi, documents, Vitale), search and merge."""

from __future__ import annotations

import uuid
from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Query, Request, Response
from fastapi.responses import JSONResponse

from bsante.chassis.api import ServiceDep, etag, if_match_version, required_if_match
from bsante.chassis.auth import Principal, allowed
from bsante.chassis.errors import DomainError, NotFound
from bsante.chassis.openapi import etag_response, problems
from bsante.chassis.service import Service
from bsante.contracts.events import VitaleCardRead
from bsante.contracts.permissions import Action
from bsante.patient import handlers, repository
from bsante.patient.domain import Contact, PatientRecord
from bsante.patient.fhir import PatientIdentity, to_fr_core_patient
from bsante.patient.identity.nir import InvalidMatriculeError, validate_matricule
from bsante.patient.insi_gateway import InsiGateway
from bsante.patient.schemas import (
    DocumentCheckIn,
    HistoryOut,
    InsiOutcome,
    InsiSearchIn,
    MergeIn,
    PatientIn,
    PatientOut,
    PatientPage,
    PatientSummary,
    TraitsIn,
    VitaleCreateIn,
    VitaleOutcome,
    VitaleSelectIn,
)

router = APIRouter(prefix="/patients", tags=["patients"])


def insi_gateway(request: Request) -> InsiGateway:
    gateway: InsiGateway = request.app.state.insi
    return gateway


InsiDep = Annotated[InsiGateway, Depends(insi_gateway)]
Reader = Annotated[Principal, allowed(Action.READ_PATIENT)]
Editor = Annotated[Principal, allowed(Action.EDIT_PATIENT)]
IfMatch = Annotated[str | None, Header(max_length=50)]
ConfirmNotDuplicate = Annotated[
    bool, Query(description="Create/update even though a record has the same traits")
]


# 201 when the beneficiary's record is created, 200 when it existed.
CREATED_OR_FOUND: dict[int | str, dict[str, Any]] = {
    201: {"model": VitaleOutcome, "description": "Created"}
}


def _out(response: Response, patient: PatientRecord, version: int) -> PatientOut:
    response.headers["ETag"] = etag(version)
    return PatientOut.of(patient, version)


# -- creation, search -----------------------------------------------------------------------


NEW_PATIENT_EXAMPLE = {
    "birth_name": "MARTIN",
    "birth_given_names": "Jeanne Louise",
    "sex": "F",
    "birth_date": "1941-03-12",
    "birth_place": "75056",
}


@router.post(
    "",
    status_code=201,
    response_model=PatientOut,
    openapi_extra={
        "requestBody": {"content": {"application/json": {"example": NEW_PATIENT_EXAMPLE}}}
    },
)
async def create_patient(
    body: PatientIn,
    principal: Editor,
    svc: ServiceDep,
    response: Response,
    confirm_not_duplicate: ConfirmNotDuplicate = False,
) -> PatientOut:
    """Create a record from typed traits (provisional identity). 409 on a likely duplicate."""
    patient, version = await handlers.create_patient(
        svc, principal, body, confirm_not_duplicate=confirm_not_duplicate
    )
    response.headers["Location"] = f"patients/{patient.id}"
    return _out(response, patient, version)


@router.get("", response_model=PatientPage)
async def search_patients(
    principal: Reader,
    svc: ServiceDep,
    name: Annotated[
        str | None, Query(max_length=100, description="Birth or used name prefix")
    ] = None,
    given: Annotated[
        str | None, Query(max_length=100, description="First given name prefix")
    ] = None,
    birth_date: date | None = None,
    ins: Annotated[str | None, Query(max_length=30, description="INS or declared NIR")] = None,
    ipp: Annotated[str | None, Query(max_length=30)] = None,
    limit: Annotated[int, Query(ge=1, le=50)] = 20,
    offset: Annotated[int, Query(ge=0, le=10_000)] = 0,
) -> PatientPage:
    """Search the structure's active records (accent-, case-, space- and hyphen-insensitive).

    Audit: one access record per patient returned (a result line shows names and birth
    date), action `search`; a search returning nobody records nothing.
    """
    matricule = None
    if ins:
        try:
            matricule = validate_matricule(ins)
        except InvalidMatriculeError as error:
            raise DomainError(
                "The request has invalid fields",
                errors=[{"field": "query.ins", "location": "query", "message": str(error)}],
            ) from None
    items, total = await repository.search(
        svc.store,
        principal.acting_structure,
        name=name,
        given=given,
        birth_date=birth_date.isoformat() if birth_date else None,
        matricule=matricule,
        ipp=ipp,
        limit=limit,
        offset=offset,
    )
    if items:
        async with svc.messaging.unit_of_work() as uow:
            for patient in items:
                await handlers.audit(uow, principal, str(patient.id), "search")
    return PatientPage(
        items=[PatientSummary.of(p) for p in items], total=total, limit=limit, offset=offset
    )


# -- carte Vitale ---------------------------------------------------------------------------


@router.post("/from-vitale", response_model=VitaleOutcome, responses=CREATED_OR_FOUND)
async def create_from_vitale(
    body: VitaleCreateIn, principal: Editor, svc: ServiceDep, insi: InsiDep, response: Response
) -> VitaleOutcome:
    """Find or create the chosen beneficiary of a carte Vitale read (same payload as the
    card bridge's VitaleCardRead). 201 when created, 200 when the person was known."""
    patient, version, created = await handlers.create_or_find_from_vitale(
        svc, insi, principal, body.card, body
    )
    response.status_code = 201 if created else 200
    return VitaleOutcome(created=created, patient=_out(response, patient, version))


async def _card_read(svc: Service, principal: Principal, read_id: uuid.UUID) -> VitaleCardRead:
    doc = await svc.store.get(repository.CARD_READS, str(read_id))
    if doc is None or doc.data.get("structure_id") != principal.acting_structure:
        raise NotFound("No such card read")
    return VitaleCardRead.model_validate(doc.data["card"])


@router.get("/card-reads/{read_id}")
async def read_card(read_id: uuid.UUID, principal: Editor, svc: ServiceDep) -> dict[str, Any]:
    """A card read published by the card bridge, to pick a beneficiary; `patient_id` tells
    which beneficiaries already have a record (by their NIR)."""
    card = await _card_read(svc, principal, read_id)
    beneficiaries = []
    for person in card.beneficiaries:
        owner = None
        if person.nir:
            try:
                nir = handlers._card_nir(person.nir, "nir")
                owner = await repository.owner_of(svc.store, principal.acting_structure, nir)
            except DomainError:
                owner = None
        beneficiaries.append({**person.model_dump(), "patient_id": owner})
    return {"read_id": str(read_id), **card.model_dump(), "beneficiaries": beneficiaries}


@router.post(
    "/card-reads/{read_id}/select", response_model=VitaleOutcome, responses=CREATED_OR_FOUND
)
async def select_beneficiary(
    read_id: uuid.UUID,
    body: VitaleSelectIn,
    principal: Editor,
    svc: ServiceDep,
    insi: InsiDep,
    response: Response,
) -> VitaleOutcome:
    card = await _card_read(svc, principal, read_id)
    patient, version, created = await handlers.create_or_find_from_vitale(
        svc, insi, principal, card, body, prefix="card."
    )
    response.status_code = 201 if created else 200
    return VitaleOutcome(created=created, patient=_out(response, patient, version))


# -- one record -----------------------------------------------------------------------------


@router.get("/{patient_id}", response_model=PatientOut)
async def read_patient(
    patient_id: uuid.UUID, principal: Reader, svc: ServiceDep, response: Response
) -> PatientOut:
    patient, version = await handlers.load(svc, principal, str(patient_id))
    async with svc.messaging.unit_of_work() as uow:
        await handlers.audit(uow, principal, str(patient.id), "read")
    return _out(response, patient, version)


@router.get("/{patient_id}/history", response_model=HistoryOut)
async def read_history(patient_id: uuid.UUID, principal: Reader, svc: ServiceDep) -> HistoryOut:
    """What was done to the record: creation, corrections (with the previous traits), INSi
    queries, document checks, merges."""
    patient, _ = await handlers.load(svc, principal, str(patient_id))
    async with svc.messaging.unit_of_work() as uow:
        await handlers.audit(uow, principal, str(patient.id), "read", "patient-history")
    return HistoryOut(items=[h.model_dump(mode="json") for h in patient.history])


@router.put("/{patient_id}/traits", response_model=PatientOut, responses=problems(428))
async def correct_traits(
    patient_id: uuid.UUID,
    traits: TraitsIn,
    principal: Editor,
    svc: ServiceDep,
    response: Response,
    if_match: IfMatch = None,
    confirm_not_duplicate: ConfirmNotDuplicate = False,
) -> PatientOut:
    expected = required_if_match(if_match)
    patient, version = await handlers.correct_traits(
        svc,
        principal,
        str(patient_id),
        traits,
        expected,
        confirm_not_duplicate=confirm_not_duplicate,
    )
    return _out(response, patient, version)


@router.put("/{patient_id}/contact", response_model=PatientOut, responses=problems(428))
async def update_contact(
    patient_id: uuid.UUID,
    contact: Contact,
    principal: Editor,
    svc: ServiceDep,
    response: Response,
    if_match: IfMatch = None,
) -> PatientOut:
    expected = required_if_match(if_match)
    patient, version = await handlers.update_contact(
        svc, principal, str(patient_id), contact, expected
    )
    return _out(response, patient, version)


@router.post("/{patient_id}/insi", response_model=InsiOutcome)
async def query_insi(
    patient_id: uuid.UUID,
    principal: Editor,
    svc: ServiceDep,
    insi: InsiDep,
    response: Response,
    body: InsiSearchIn | None = None,
    if_match: IfMatch = None,
) -> InsiOutcome:
    """Query the INSi teleservice with the record's traits.

    `recovered`/`qualified`: the status moved (PROV→RECUP, VALI→QUAL); `discrepancy`: INSi's
    traits differ from the record's, listed in `discrepancies` and kept in `last_insi`; the
    status does not move (a provisional identity may adopt them with
    `accept_reference_traits`, a validated one cannot become qualified).
    """
    outcome = await handlers.recover_ins(
        svc,
        insi,
        principal,
        str(patient_id),
        accept_reference_traits=(body or InsiSearchIn()).accept_reference_traits,
        expected=if_match_version(if_match),
    )
    response.headers["ETag"] = etag(outcome.patient.version)
    return outcome


@router.post("/{patient_id}/identity-document", response_model=PatientOut)
async def record_document_check(
    patient_id: uuid.UUID,
    body: DocumentCheckIn,
    principal: Editor,
    svc: ServiceDep,
    response: Response,
    if_match: IfMatch = None,
) -> PatientOut:
    """Record that the identity was checked on a high-trust document (PROV→VALI, RECUP→QUAL)."""
    patient, version = await handlers.check_document(
        svc, principal, str(patient_id), body, if_match_version(if_match)
    )
    return _out(response, patient, version)


@router.post("/{patient_id}/merge", response_model=PatientOut)
async def merge_patients(
    patient_id: uuid.UUID, body: MergeIn, principal: Editor, svc: ServiceDep, response: Response
) -> PatientOut:
    """Merge `duplicate_id` into this record. The duplicate stays, inactive, as history."""
    patient, version = await handlers.merge(svc, principal, str(patient_id), str(body.duplicate_id))
    return _out(response, patient, version)


class FhirJSONResponse(JSONResponse):
    media_type = "application/fhir+json"


@router.get("/{patient_id}/fhir", response_class=FhirJSONResponse, responses=etag_response())
async def read_fhir(
    patient_id: uuid.UUID, principal: Reader, svc: ServiceDep, request: Request
) -> JSONResponse:
    """The record as a FHIR R4 FR Core Patient (fr-core-patient-ins once qualified)."""
    patient, version = await handlers.load(svc, principal, str(patient_id))
    settings = svc.settings
    base = getattr(settings, "ipp_system_base", "urn:bsante:ipp:")
    resource = to_fr_core_patient(
        PatientIdentity(
            id=str(patient.id),
            traits=patient.traits.identity(),
            status=patient.status,
            ipp=patient.ipp,
            ipp_system=f"{base}{patient.structure_id}",
            ins=patient.ins.value() if patient.ins else None,
            insi_queried_at=patient.insi_queried_at,
            document_check=patient.document_check.value() if patient.document_check else None,
            active=patient.active,
        )
    )
    resource.update(_fhir_contact(patient.contact))
    async with svc.messaging.unit_of_work() as uow:
        await handlers.audit(uow, principal, str(patient.id), "export")
    return JSONResponse(
        resource, media_type="application/fhir+json", headers={"ETag": etag(version)}
    )


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
