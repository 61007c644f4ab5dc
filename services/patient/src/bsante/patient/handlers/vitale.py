"""Use cases of the carte Vitale: pick a card read's beneficiary, find or create the record."""

from __future__ import annotations

import uuid
from typing import Any

from bsante.chassis.auth import Principal
from bsante.contracts.events import CardInserted, CardRemoved, VitaleCardRead
from bsante.patient import repository
from bsante.patient.domain import PatientRecord, Traits, new_patient
from bsante.patient.errors import ConflictError, NotFoundError, PatientError, invalid
from bsante.patient.handlers.common import Ports, audit, insert_new
from bsante.patient.handlers.ins import insi_fault
from bsante.patient.identity.insi import (
    InsiFaultError,
    InsiIdentity,
    InsiResponse,
    InsiResultCode,
    SearchByVitale,
    is_partial_birth_date,
    parse_insi_birth_date,
)
from bsante.patient.identity.nir import (
    InvalidMatriculeError,
    compute_nir_key,
    validate_matricule,
)
from bsante.patient.identity.status import IdentityRecord
from bsante.patient.identity.traits import IdentityTraits, TraitValidationError
from bsante.patient.insi_gateway import InsiGateway, InsiUnavailableError
from bsante.patient.schemas import CardPresenceIn, CardReadIn, VitaleSelectIn

CARD_NIR = "a NIR of 13 characters, or 15 with its key"


def card_nir(value: str, field: str) -> str:
    """A NIR as a card gives it (13 characters, or 15 with the key): the 15-character form."""
    cleaned = "".join(value.split()).upper()
    try:
        if len(cleaned) == 13:
            return cleaned + f"{compute_nir_key(cleaned):02d}"
        if len(cleaned) != 15:
            raise invalid(field, f"expected {CARD_NIR}, got {len(cleaned)} characters")
        return validate_matricule(cleaned)
    except InvalidMatriculeError as error:
        raise invalid(field, f"expected {CARD_NIR}: {error}") from None


async def card_read(ports: Ports, principal: Principal, read_id: uuid.UUID) -> VitaleCardRead:
    doc = await ports.store.get(repository.CARD_READS, str(read_id))
    if doc is None or doc.data.get("structure_id") != principal.acting_structure:
        raise NotFoundError("No such card read")
    return VitaleCardRead.model_validate(doc.data["card"])


async def read_card(ports: Ports, principal: Principal, read_id: uuid.UUID) -> dict[str, Any]:
    """A card read with, per beneficiary, the record that already has its NIR (if any)."""
    card = await card_read(ports, principal, read_id)
    beneficiaries = []
    for person in card.beneficiaries:
        owner = None
        if person.nir:
            try:
                nir = card_nir(person.nir, "nir")
                owner = await repository.owner_of(ports.store, principal.acting_structure, nir)
            except PatientError:
                owner = None
        beneficiaries.append({**person.model_dump(), "patient_id": owner})
    return {"read_id": str(read_id), **card.model_dump(), "beneficiaries": beneficiaries}


async def create_or_find_from_vitale(
    ports: Ports,
    insi: InsiGateway,
    principal: Principal,
    card: VitaleCardRead,
    select: VitaleSelectIn,
    *,
    prefix: str = "card.",
) -> tuple[PatientRecord, int, bool]:
    """The chosen beneficiary's record: found (same INS/NIR, or same traits) or created."""
    if select.beneficiary >= len(card.beneficiaries):
        raise invalid("beneficiary", "no such beneficiary on the card")
    where = f"{prefix}beneficiaries.{select.beneficiary}."
    person = card.beneficiaries[select.beneficiary]
    holder = card_nir(card.holder_nir, prefix + "holder_nir")
    own_nir = card_nir(person.nir, where + "nir") if person.nir else None
    sex = person.sex or select.sex or ({"1": "M", "2": "F"}.get(own_nir[0]) if own_nir else None)
    if sex is None:
        raise invalid("sex", "the card does not tell the sex: give it")
    try:
        birth_date = parse_insi_birth_date(person.birth_date)
        card_traits = IdentityTraits.create(
            birth_name=person.birth_name,
            birth_given_names=person.given_name,
            sex=sex,
            birth_date=birth_date,
            used_name=person.used_name,
        )
    except TraitValidationError as error:
        field = "given_name" if "given_name" in error.field else error.field
        raise invalid(where + field, error.reason) from None
    except ValueError as error:
        raise invalid(where + "birth_date", str(error)) from None
    partial_date = is_partial_birth_date(person.birth_date)
    response: InsiResponse | None
    try:
        response = await insi.search_by_vitale(
            SearchByVitale(
                holder_nir=holder[:13],
                birth_date=person.birth_date,
                birth_rank=str(person.birth_rank),
                beneficiary_nir=own_nir[:13] if own_nir else None,
                birth_name=person.birth_name,
            )
        )
    except InsiFaultError as error:
        raise insi_fault(error, where) from None
    except InsiUnavailableError:
        response = None  # the record is created provisional; INSi can be queried later
    identity = response.identity if response and response.code is InsiResultCode.FOUND else None
    queried_at = ports.clock()
    record = IdentityRecord(traits=card_traits)
    if identity is not None:
        record = record.after_insi_recovery(
            ins=identity.ins, reference=identity.traits(), queried_at=queried_at
        ).record
        partial_date = partial_date or is_partial_birth_date(identity.birth_date_raw)
    traits = Traits.of(record.traits)

    for _ in range(2):
        existing = await _find_person(ports, principal, identity, own_nir, traits)
        if existing is not None:
            async with ports.unit_of_work() as uow:
                await audit(uow, principal, str(existing[0].id), "read")
            return existing[0], existing[1], False

        def build(ipp: str) -> PatientRecord:
            patient = new_patient(
                structure_id=principal.acting_structure,
                ipp=ipp,
                traits=traits,
                author=principal.user_id,
                nir=own_nir,
                origin="vitale",
            )
            if partial_date:
                patient = patient.model_copy(
                    update={
                        "attributes": patient.attributes.model_copy(
                            update={"partial_birth_date": True}
                        )
                    }
                )
            return patient.with_identity(record) if identity is not None else patient

        try:
            # A person with the same traits was looked up just before: the key claimed in
            # the transaction only catches a concurrent creation, found on the next turn.
            patient, version = await insert_new(
                ports, principal, build, where + "nir", confirm_not_duplicate=False
            )
        except ConflictError:
            continue  # the same person was created meanwhile: find it
        return patient, version, True
    raise ConflictError("The card's beneficiary matches a record being changed; retry")


async def _find_person(
    ports: Ports,
    principal: Principal,
    identity: InsiIdentity | None,
    own_nir: str | None,
    traits: Traits,
) -> tuple[PatientRecord, int] | None:
    structure = principal.acting_structure
    for matricule in (identity.ins.matricule if identity else None, own_nir):
        if matricule:
            owner = await repository.owner_of(ports.store, structure, matricule)
            if owner is not None:
                found = await repository.get(ports.store, structure, owner)
                if found is not None:
                    patient, version = found
                    if not patient.active and patient.merged_into is not None:
                        return await repository.get(
                            ports.store, structure, str(patient.merged_into)
                        )
                    return found
    same = await repository.same_traits(ports.store, structure, traits)
    if same:
        return await repository.get(ports.store, structure, str(same[0].id))
    return None


async def publish_card_read(ports: Ports, principal: Principal, card: CardReadIn) -> uuid.UUID:
    """The card bridge's read, as the event the card-read consumer keeps (202: it lags)."""
    holder = card_nir(card.holder_nir, "holder_nir")
    for index, person in enumerate(card.beneficiaries):
        if person.nir:
            card_nir(person.nir, f"beneficiaries.{index}.nir")
    async with ports.unit_of_work() as uow:
        envelope = await uow.emit(
            VitaleCardRead(
                workstation_id=card.workstation_id,
                read_by=principal.user_id,
                holder_nir=holder,
                card_serial=card.card_serial,
                beneficiaries=card.beneficiaries,
            ),
            structure_id=principal.acting_structure,
            subject_id=card.workstation_id,
        )
    return envelope.event_id


async def publish_card_presence(
    ports: Ports, principal: Principal, presence: CardPresenceIn
) -> uuid.UUID:
    """A card inserted or removed on a workstation, told for the user's live event stream."""
    payload: CardInserted | CardRemoved
    if presence.event == "inserted":
        payload = CardInserted(
            workstation_id=presence.workstation_id,
            reader=presence.reader,
            card_kind=presence.card_kind,
            user_id=principal.user_id,
            ps_id_nat=presence.ps_id_nat if presence.card_kind == "cps" else None,
        )
    else:
        payload = CardRemoved(
            workstation_id=presence.workstation_id,
            reader=presence.reader,
            card_kind=presence.card_kind,
            user_id=principal.user_id,
        )
    async with ports.unit_of_work() as uow:
        envelope = await uow.emit(
            payload, structure_id=principal.acting_structure, subject_id=presence.workstation_id
        )
    return envelope.event_id
