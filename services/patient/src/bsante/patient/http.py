"""Patient HTTP API: the record, its identity (INSi, documents, Vitale), search and merge."""

from __future__ import annotations

import uuid
from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Query, Request, Response
from fastapi.responses import JSONResponse

from bsante.chassis.api import ServiceDep, etag, if_match_version, required_if_match
from bsante.chassis.auth import Principal, allowed
from bsante.chassis.openapi import creates, etag_response, problems
from bsante.chassis.service import service_settings
from bsante.contracts.permissions import Action
from bsante.patient.domain import Contact, PatientRecord
from bsante.patient.handlers import Ports, ins, merge, record, vitale
from bsante.patient.insi_gateway import InsiGateway
from bsante.patient.schemas import (
    CardEventAccepted,
    CardPresenceIn,
    CardReadAccepted,
    CardReadIn,
    DmpOppositionIn,
    DocumentCheckIn,
    HistoryOut,
    InsiOutcome,
    InsiSearchIn,
    MergeIn,
    PatientIn,
    PatientOut,
    PatientPage,
    PatientSummary,
    PhysicianRef,
    TraitsIn,
    VitaleCreateIn,
    VitaleOutcome,
    VitaleSelectIn,
)
from bsante.patient.settings import PatientSettings

router = APIRouter(prefix="/patients", tags=["patients"])


async def insi_gateway(request: Request) -> InsiGateway:
    gateway: InsiGateway = request.app.state.insi
    return gateway


async def ports(svc: ServiceDep) -> Ports:
    """The narrow ports the use cases get (never the whole service)."""
    return Ports(store=svc.store, unit_of_work=svc.messaging.unit_of_work)


InsiDep = Annotated[InsiGateway, Depends(insi_gateway)]
PortsDep = Annotated[Ports, Depends(ports)]
Reader = Annotated[Principal, allowed(Action.READ_PATIENT)]
Editor = Annotated[Principal, allowed(Action.EDIT_PATIENT)]
DmpSender = Annotated[Principal, allowed(Action.SEND_DMP)]
IfMatch = Annotated[str | None, Header(max_length=50)]
ConfirmNotDuplicate = Annotated[
    bool, Query(description="Create/update even though a record has the same traits")
]
ConfirmNirBirthPlace = Annotated[
    bool,
    Query(description="Keep a birth place that differs from the one the NIR encodes"),
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
        "requestBody": {"content": {"application/json": {"example": NEW_PATIENT_EXAMPLE}}},
        **creates("patient_id"),
    },
)
async def create_patient(
    body: PatientIn,
    principal: Editor,
    ports: PortsDep,
    response: Response,
    confirm_not_duplicate: ConfirmNotDuplicate = False,
) -> PatientOut:
    """Create a record from typed traits (provisional identity). 409 on a likely duplicate;
    with `confirm_not_duplicate=true` both records are flagged homonyms. A declared NIR must
    agree with the sex, the birth year and month (422), and with the birth place unless
    `confirm_nir_birth_place` is set in the body."""
    patient, version = await record.create_patient(
        ports, principal, body, confirm_not_duplicate=confirm_not_duplicate
    )
    response.headers["Location"] = f"patients/{patient.id}"
    return _out(response, patient, version)


@router.get("", response_model=PatientPage)
async def search_patients(
    principal: Reader,
    ports: PortsDep,
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
    items, total = await record.search_patients(
        ports,
        principal,
        record.SearchPatients(
            name=name,
            given=given,
            birth_date=birth_date,
            ins=ins,
            ipp=ipp,
            limit=limit,
            offset=offset,
        ),
    )
    return PatientPage(
        items=[PatientSummary.of(p) for p in items], total=total, limit=limit, offset=offset
    )


# -- carte Vitale ---------------------------------------------------------------------------


@router.post(
    "/from-vitale",
    response_model=VitaleOutcome,
    responses=CREATED_OR_FOUND,
    openapi_extra=creates("patient_id", "/patient/id"),
)
async def create_from_vitale(
    body: VitaleCreateIn, principal: Editor, ports: PortsDep, insi: InsiDep, response: Response
) -> VitaleOutcome:
    """Find or create the chosen beneficiary of a carte Vitale read (same payload as the
    card bridge's VitaleCardRead). 201 when created, 200 when the person was known."""
    patient, version, created = await vitale.create_or_find_from_vitale(
        ports, insi, principal, body.card, body
    )
    response.status_code = 201 if created else 200
    return VitaleOutcome(created=created, patient=_out(response, patient, version))


@router.post(
    "/card-reads", status_code=202, response_model=CardReadAccepted, responses=problems(422)
)
async def post_card_read(body: CardReadIn, principal: Editor, ports: PortsDep) -> CardReadAccepted:
    """The card bridge on a workstation read a carte Vitale: it posts the read with the signed-in
    professional's token (never a secret of its own); the read becomes a VitaleCardRead of the
    user's acting structure, to pick a beneficiary from (`GET /card-reads/{read_id}`)."""
    return CardReadAccepted(read_id=await vitale.publish_card_read(ports, principal, body))


@router.post(
    "/card-events", status_code=202, response_model=CardEventAccepted, responses=problems(422)
)
async def post_card_presence(
    body: CardPresenceIn, principal: Editor, ports: PortsDep
) -> CardEventAccepted:
    """A card inserted in or removed from a workstation's reader (CardInserted, CardRemoved),
    for the user's live event stream. No card content."""
    return CardEventAccepted(event_id=await vitale.publish_card_presence(ports, principal, body))


@router.get("/card-reads/{read_id}")
async def read_card(read_id: uuid.UUID, principal: Editor, ports: PortsDep) -> dict[str, Any]:
    """A card read published by the card bridge, to pick a beneficiary; `patient_id` tells
    which beneficiaries already have a record (by their NIR)."""
    return await vitale.read_card(ports, principal, read_id)


@router.post(
    "/card-reads/{read_id}/select",
    response_model=VitaleOutcome,
    responses=CREATED_OR_FOUND,
    openapi_extra=creates("patient_id", "/patient/id"),
)
async def select_beneficiary(
    read_id: uuid.UUID,
    body: VitaleSelectIn,
    principal: Editor,
    ports: PortsDep,
    insi: InsiDep,
    response: Response,
) -> VitaleOutcome:
    card = await vitale.card_read(ports, principal, read_id)
    patient, version, created = await vitale.create_or_find_from_vitale(
        ports, insi, principal, card, body, prefix="card."
    )
    response.status_code = 201 if created else 200
    return VitaleOutcome(created=created, patient=_out(response, patient, version))


# -- one record -----------------------------------------------------------------------------


@router.get("/{patient_id}", response_model=PatientOut)
async def read_patient(
    patient_id: uuid.UUID, principal: Reader, ports: PortsDep, response: Response
) -> PatientOut:
    """The record, with its current médecin traitant."""
    patient, version, physician = await record.read_record(ports, principal, str(patient_id))
    out = _out(response, patient, version)
    if physician is not None:
        out.medecin_traitant = PhysicianRef(
            rpps=physician.rpps, display_name=physician.display_name
        )
    return out


@router.get("/{patient_id}/history", response_model=HistoryOut)
async def read_history(patient_id: uuid.UUID, principal: Reader, ports: PortsDep) -> HistoryOut:
    """What was done to the record: creation, corrections (with the previous traits), INSi
    queries, document checks, merges."""
    patient, _ = await record.read_patient(ports, principal, str(patient_id), "patient-history")
    return HistoryOut(items=[h.model_dump(mode="json") for h in patient.history])


@router.put("/{patient_id}/traits", response_model=PatientOut, responses=problems(428))
async def correct_traits(
    patient_id: uuid.UUID,
    traits: TraitsIn,
    principal: Editor,
    ports: PortsDep,
    response: Response,
    if_match: IfMatch = None,
    confirm_not_duplicate: ConfirmNotDuplicate = False,
    confirm_nir_birth_place: ConfirmNirBirthPlace = False,
) -> PatientOut:
    expected = required_if_match(if_match)
    patient, version = await record.correct_traits(
        ports,
        principal,
        str(patient_id),
        traits,
        expected,
        confirm_not_duplicate=confirm_not_duplicate,
        confirm_nir_birth_place=confirm_nir_birth_place,
    )
    return _out(response, patient, version)


@router.put("/{patient_id}/contact", response_model=PatientOut, responses=problems(428))
async def update_contact(
    patient_id: uuid.UUID,
    contact: Contact,
    principal: Editor,
    ports: PortsDep,
    response: Response,
    if_match: IfMatch = None,
) -> PatientOut:
    expected = required_if_match(if_match)
    patient, version = await record.update_contact(
        ports, principal, str(patient_id), contact, expected
    )
    return _out(response, patient, version)


@router.put("/{patient_id}/dmp-opposition", response_model=PatientOut)
async def record_dmp_opposition(
    patient_id: uuid.UUID,
    body: DmpOppositionIn,
    principal: DmpSender,
    ports: PortsDep,
    response: Response,
    if_match: IfMatch = None,
) -> PatientOut:
    """Record the patient's opposition to feeding their DMP (or lift it): the DMP connector
    sends none of their documents while it stands."""
    patient, version = await record.record_dmp_opposition(
        ports, principal, str(patient_id), body.opposed, if_match_version(if_match)
    )
    return _out(response, patient, version)


@router.post("/{patient_id}/insi", response_model=InsiOutcome)
async def query_insi(
    patient_id: uuid.UUID,
    principal: Editor,
    ports: PortsDep,
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
    outcome = await ins.recover_ins(
        ports,
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
    ports: PortsDep,
    response: Response,
    if_match: IfMatch = None,
) -> PatientOut:
    """Record that the identity was checked on a high-trust document (PROV→VALI, RECUP→QUAL)."""
    patient, version = await ins.check_document(
        ports, principal, str(patient_id), body, if_match_version(if_match)
    )
    return _out(response, patient, version)


@router.post("/{patient_id}/merge", response_model=PatientOut)
async def merge_patients(
    patient_id: uuid.UUID, body: MergeIn, principal: Editor, ports: PortsDep, response: Response
) -> PatientOut:
    """Merge `duplicate_id` into this record. The duplicate stays, inactive, as history."""
    patient, version = await merge.merge(ports, principal, str(patient_id), str(body.duplicate_id))
    return _out(response, patient, version)


class FhirJSONResponse(JSONResponse):
    media_type = "application/fhir+json"


@router.get("/{patient_id}/fhir", response_class=FhirJSONResponse, responses=etag_response())
async def read_fhir(
    patient_id: uuid.UUID,
    principal: Reader,
    ports: PortsDep,
    settings: Annotated[PatientSettings, Depends(service_settings(PatientSettings))],
) -> JSONResponse:
    """The record as a FHIR R4 FR Core Patient (fr-core-patient-ins once qualified)."""
    base = settings.ipp_system_base
    resource, version = await record.export_fhir(
        ports, principal, str(patient_id), ipp_system_base=base
    )
    return JSONResponse(
        resource, media_type="application/fhir+json", headers={"ETag": etag(version)}
    )
