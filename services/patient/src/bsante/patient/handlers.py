"""Use cases of the patient record: a command in, domain calls, one unit of work out."""

from __future__ import annotations

from typing import Any

from bsante.chassis.auth import Principal
from bsante.chassis.errors import Conflict, DomainError, NotFound
from bsante.chassis.messaging import UnitOfWork
from bsante.chassis.service import Service
from bsante.chassis.store import ConcurrencyConflict
from bsante.contracts.events import (
    AccessAction,
    InsQualified,
    PatientCreated,
    PatientsMerged,
    PatientUpdated,
    VitaleCardRead,
)
from bsante.patient import domain, repository
from bsante.patient.domain import (
    Contact,
    Discrepancy,
    InsiAnswer,
    PatientRecord,
    Traits,
    new_patient,
    now,
)
from bsante.patient.identity.insi import (
    InsiFaultError,
    InsiResponse,
    InsiResultCode,
    SearchByTraits,
    SearchByVitale,
    parse_insi_birth_date,
)
from bsante.patient.identity.nir import (
    InvalidMatriculeError,
    compute_nir_key,
    validate_matricule,
)
from bsante.patient.identity.status import (
    IdentityDocumentCheck,
    IdentityRecord,
    IdentityStatus,
    RefusalReason,
    Transition,
    TransitionRefusedError,
)
from bsante.patient.identity.traits import IdentityTraits, TraitValidationError
from bsante.patient.insi_gateway import InsiGateway, InsiUnavailableError
from bsante.patient.schemas import (
    DocumentCheckIn,
    InsiOutcome,
    PatientIn,
    PatientOut,
    TraitsIn,
    VitaleSelectIn,
    invalid,
)

# INSi request elements -> our field names, so that a rejected request names the trait.
INSI_FIELDS = {
    "NomNaissance": "birth_name",
    "Prenom": "birth_given_names",
    "Sexe": "sex",
    "DateNaissance": "birth_date",
    "LieuNaissance": "birth_place",
    "MatriculeOD": "holder_nir",
    "MatriculeIndividu": "nir",
    "RangNaissance": "birth_rank",
}


class InsiUnavailable(DomainError):
    status = 503
    kind = "insi-unavailable"


async def audit(
    uow: UnitOfWork,
    principal: Principal,
    patient_id: str,
    action: AccessAction,
    resource: str = "patient",
) -> None:
    await uow.audit(
        user_id=principal.user_id,
        acting_structure=principal.acting_structure,
        patient_id=patient_id,
        action=action,
        resource=resource,
    )


async def load(svc: Service, principal: Principal, patient_id: str) -> tuple[PatientRecord, int]:
    found = await repository.get(svc.store, principal.acting_structure, patient_id)
    if found is None:
        raise NotFound("No such patient")
    return found


def require_active(patient: PatientRecord) -> None:
    if not patient.active:
        raise Conflict(
            "This record was merged into another one; work on that one",
            errors=[{"field": "patient_id", "message": f"merged into {patient.merged_into}"}],
        )


def _duplicates_conflict(dups: list[PatientRecord]) -> Conflict:
    return Conflict(
        "A record with the same birth name, first given name, sex and birth date exists: "
        "open it, or confirm that this is another person (confirm_not_duplicate=true)",
        errors=[
            {"field": "traits", "message": "possible duplicate", "patient_id": str(d.id)}
            for d in dups
        ],
    )


async def emit_updated(
    uow: UnitOfWork, patient: PatientRecord, changes: list[str], by: str
) -> None:
    await uow.emit(
        PatientUpdated(
            patient_id=patient.id,
            identity_status=patient.identity_status,
            changes=changes,
            updated_by=by,
        ),
        structure_id=patient.structure_id,
        subject_id=str(patient.id),
    )


async def _insert_new(
    svc: Service, principal: Principal, build: Any, matricule_field: str
) -> tuple[PatientRecord, int]:
    """Insert a new record; `build(ipp)` makes it. Retries when the IPP counter moved."""
    for attempt in range(3):
        try:
            async with svc.messaging.unit_of_work() as uow:
                ipp = await repository.next_ipp(uow.tx, principal.acting_structure)
                patient: PatientRecord = build(ipp)
                if patient.matricule:
                    await repository.claim_matricule(
                        uow.tx,
                        patient.structure_id,
                        patient.matricule,
                        str(patient.id),
                        field=matricule_field,
                    )
                version = await repository.add(uow.tx, patient)
                await uow.emit(
                    PatientCreated(
                        patient_id=patient.id,
                        identity_status=patient.identity_status,
                        created_by=principal.user_id,
                        origin=patient.origin,
                    ),
                    structure_id=patient.structure_id,
                    subject_id=str(patient.id),
                )
                await audit(uow, principal, str(patient.id), "create")
            return patient, version
        except ConcurrencyConflict:
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


async def create_patient(
    svc: Service, principal: Principal, body: PatientIn, *, confirm_not_duplicate: bool
) -> tuple[PatientRecord, int]:
    traits = body.to_traits()
    dups = await repository.same_traits(svc.store, principal.acting_structure, traits)
    if dups and not confirm_not_duplicate:
        raise _duplicates_conflict(dups)

    def build(ipp: str) -> PatientRecord:
        return new_patient(
            structure_id=principal.acting_structure,
            ipp=ipp,
            traits=traits,
            author=principal.user_id,
            contact=body.contact,
            nir=body.nir,
            homonym=bool(dups),
        )

    return await _insert_new(svc, principal, build, "nir")


async def correct_traits(
    svc: Service,
    principal: Principal,
    patient_id: str,
    body: TraitsIn,
    expected: int,
    *,
    confirm_not_duplicate: bool,
) -> tuple[PatientRecord, int]:
    patient, _ = await load(svc, principal, patient_id)
    require_active(patient)
    traits = body.to_traits()
    dups = await repository.same_traits(
        svc.store, principal.acting_structure, traits, excluding=patient_id
    )
    if dups and not confirm_not_duplicate:
        raise _duplicates_conflict(dups)
    try:
        updated = domain.correct_traits(patient, traits, principal.user_id)
    except domain.TraitsLockedError as error:
        raise Conflict(
            str(error), errors=[{"field": "traits", "message": "recovered from INSi"}]
        ) from None
    if dups:
        updated = updated.model_copy(
            update={"attributes": updated.attributes.model_copy(update={"homonym": True})}
        )
    changes = ["traits"]
    if updated.identity_status != patient.identity_status:
        changes.append("identity_status")
    async with svc.messaging.unit_of_work() as uow:
        version = await repository.save(uow.tx, updated, expected)
        await emit_updated(uow, updated, changes, principal.user_id)
        await audit(uow, principal, patient_id, "update")
    return updated, version


async def update_contact(
    svc: Service, principal: Principal, patient_id: str, contact: Contact, expected: int
) -> tuple[PatientRecord, int]:
    patient, _ = await load(svc, principal, patient_id)
    require_active(patient)
    updated = patient.model_copy(update={"contact": contact}).logged(
        principal.user_id, "contact_updated"
    )
    async with svc.messaging.unit_of_work() as uow:
        version = await repository.save(uow.tx, updated, expected)
        await emit_updated(uow, updated, ["contact"], principal.user_id)
        await audit(uow, principal, patient_id, "update")
    return updated, version


# -- INS: INSi recovery and document check --------------------------------------------------


def _fault(error: InsiFaultError, prefix: str = "") -> DomainError:
    field = INSI_FIELDS.get(error.field or "", error.field or "traits")
    return DomainError(
        f"INSi rejected the request: {error.reason}",
        errors=[
            {
                "field": prefix + field,
                "location": "body" if prefix else "record",
                "message": error.reason,
                "type": error.subcode,
            }
        ],
    )


async def _search_by_traits(insi: InsiGateway, traits: Traits) -> InsiResponse:
    request = SearchByTraits(
        birth_name=traits.birth_name,
        given_names=traits.first_birth_given_name,
        sex=traits.sex,
        birth_date=traits.birth_date.isoformat(),
    )
    response = await insi.search_by_traits(request)
    if response.code is InsiResultCode.SEVERAL_FOUND:
        # As INSi users do: narrow with every given name and the birth place.
        response = await insi.search_by_traits(
            SearchByTraits(
                birth_name=traits.birth_name,
                given_names=traits.birth_given_names,
                sex=traits.sex,
                birth_date=traits.birth_date.isoformat(),
                birth_place=traits.birth_place,
            )
        )
    return response


async def _save_identity_change(
    svc: Service,
    principal: Principal,
    before: PatientRecord,
    after: PatientRecord,
    expected: int,
    transition: Transition | None,
    via: str,
) -> int:
    async with svc.messaging.unit_of_work() as uow:
        if after.ins is not None and (before.ins is None or before.ins != after.ins):
            await repository.claim_matricule(
                uow.tx, after.structure_id, after.ins.matricule, str(after.id), field="ins"
            )
        version = await repository.save(uow.tx, after, expected)
        if transition is not None:
            changes = [
                name
                for name, changed in (
                    ("identity_status", transition.changed),
                    ("ins", before.ins != after.ins),
                    ("traits", before.traits != after.traits),
                )
                if changed
            ]
            if changes:
                await emit_updated(uow, after, changes, principal.user_id)
            if transition.became_qualified:
                assert after.ins is not None
                await uow.emit(
                    InsQualified(
                        patient_id=after.id,
                        ins_oid=after.ins.oid,
                        qualified_by=principal.user_id,
                        via="insi" if via == "insi" else "document",
                        qualified_at=now(),
                    ),
                    structure_id=after.structure_id,
                    subject_id=str(after.id),
                )
        await audit(uow, principal, str(after.id), "update")
    return version


async def recover_ins(
    svc: Service,
    insi: InsiGateway,
    principal: Principal,
    patient_id: str,
    *,
    accept_reference_traits: bool,
    expected: int | None,
) -> InsiOutcome:
    """Query INSi with the record's traits and apply the RNIV transition when allowed."""
    patient, version = await load(svc, principal, patient_id)
    require_active(patient)
    expected = version if expected is None else expected
    if patient.attributes.doubtful or patient.attributes.fictitious:
        raise DomainError(
            "A doubtful or fictitious identity must not be sent to INSi",
            errors=[{"field": "attributes", "message": "doubtful or fictitious"}],
        )
    try:
        response = await _search_by_traits(insi, patient.traits)
    except InsiFaultError as error:
        raise _fault(error) from None
    except InsiUnavailableError as error:
        raise InsiUnavailable(str(error)) from None
    queried_at = now()

    def answered(
        outcome: str, discrepancies: list[Discrepancy], reference: Traits | None = None
    ) -> InsiAnswer:
        return InsiAnswer.model_validate(
            {
                "queried_at": queried_at,
                "code": response.code.value,
                "label": response.label,
                "outcome": outcome,
                "discrepancies": discrepancies,
                "reference": reference,
            }
        )

    async def keep_answer(answer: InsiAnswer, result: str) -> InsiOutcome:
        noted = patient.model_copy(update={"last_insi": answer}).logged(
            principal.user_id, "insi_query", code=answer.code, outcome=answer.outcome
        )
        new_version = await _save_identity_change(
            svc, principal, patient, noted, expected, None, "insi"
        )
        return InsiOutcome.model_validate(
            {
                "result": result,
                "insi_code": answer.code,
                "insi_label": answer.label,
                "discrepancies": [d.model_dump() for d in answer.discrepancies],
                "patient": PatientOut.of(noted, new_version),
            }
        )

    if response.code is not InsiResultCode.FOUND or response.identity is None:
        outcome = "not_found" if response.code is InsiResultCode.NOT_FOUND else "several_found"
        return await keep_answer(answered(outcome, []), outcome)
    identity = response.identity
    reference = identity.traits()
    try:
        transition = patient.identity_record().after_insi_recovery(
            ins=identity.ins, reference=reference, queried_at=queried_at
        )
    except TransitionRefusedError as error:
        if error.reason is not RefusalReason.TRAITS_MISMATCH:
            raise DomainError(str(error)) from None
        found = [Discrepancy.of(d) for d in error.discrepancies]
        return await keep_answer(
            answered("discrepancy", found, Traits.of(reference)), "discrepancy"
        )
    if transition.discrepancies and not accept_reference_traits:
        # RNIV: INS traits replace the typed ones only once the agent checked they match.
        found = [Discrepancy.of(d) for d in transition.discrepancies]
        return await keep_answer(
            answered("discrepancy", found, Traits.of(reference)), "discrepancy"
        )
    after = (
        patient.with_identity(transition.record)
        .model_copy(update={"last_insi": answered("applied", [], Traits.of(reference))})
        .logged(
            principal.user_id,
            "insi_recovery",
            status_before=patient.identity_status,
            ins_oid=identity.ins.oid.value,
        )
    )
    new_version = await _save_identity_change(
        svc, principal, patient, after, expected, transition, "insi"
    )
    return InsiOutcome(
        result="qualified" if after.status is IdentityStatus.QUALIFIEE else "recovered",
        insi_code=response.code.value,
        insi_label=response.label,
        discrepancies=[],
        patient=PatientOut.of(after, new_version),
    )


async def check_document(
    svc: Service, principal: Principal, patient_id: str, body: DocumentCheckIn, expected: int | None
) -> tuple[PatientRecord, int]:
    patient, version = await load(svc, principal, patient_id)
    require_active(patient)
    document_traits = (
        body.document_traits.to_traits("document_traits.").identity()
        if body.document_traits
        else None
    )
    check = IdentityDocumentCheck(
        document_type=body.document_type,
        companion=body.companion,
        checked_by=principal.user_id,
        checked_at=body.checked_at or now(),
        document_traits=document_traits,
    )
    try:
        transition = patient.identity_record().after_document_check(check)
    except TransitionRefusedError as error:
        if error.reason is RefusalReason.NOT_HIGH_TRUST:
            raise invalid("document_type", str(error)) from None
        if error.reason is RefusalReason.TRAITS_MISMATCH:
            raise DomainError(
                "The document's traits differ from the identity's: it cannot be validated",
                errors=[
                    {
                        "field": f"document_traits.{d.field}",
                        "message": "differs from the identity",
                        "local": d.reference,
                        "document": d.local,
                    }
                    for d in error.discrepancies
                ],
            ) from None
        raise DomainError(str(error)) from None
    after = patient.with_identity(transition.record).logged(
        principal.user_id,
        "document_check",
        document_type=body.document_type.value,
        status_before=patient.identity_status,
    )
    new_version = await _save_identity_change(
        svc,
        principal,
        patient,
        after,
        version if expected is None else expected,
        transition,
        "document",
    )
    return after, new_version


# -- merge ----------------------------------------------------------------------------------


async def merge(
    svc: Service, principal: Principal, kept_id: str, duplicate_id: str
) -> tuple[PatientRecord, int]:
    kept, kept_version = await load(svc, principal, kept_id)
    duplicate, dup_version = await load(svc, principal, duplicate_id)
    try:
        new_kept, retired = domain.merge(kept, duplicate, principal.user_id)
    except domain.MergeRefusedError as error:
        raise Conflict(
            str(error), errors=[{"field": "duplicate_id", "message": str(error)}]
        ) from None
    async with svc.messaging.unit_of_work() as uow:
        version = await repository.save(uow.tx, new_kept, kept_version)
        await repository.save(uow.tx, retired, dup_version)
        for matricule in {duplicate.nir, duplicate.ins.matricule if duplicate.ins else None}:
            if matricule:
                await repository.move_matricule(uow.tx, kept.structure_id, matricule, kept_id)
        await uow.emit(
            PatientsMerged(
                kept_patient_id=kept.id, merged_patient_id=duplicate.id, merged_by=principal.user_id
            ),
            structure_id=kept.structure_id,
            subject_id=kept_id,
        )
        await audit(uow, principal, kept_id, "update")
        await audit(uow, principal, duplicate_id, "update")
    return new_kept, version


# -- creation from a carte Vitale -----------------------------------------------------------


def _card_nir(value: str, field: str) -> str:
    """A NIR as a card gives it (13 characters, or 15 with the key): the 15-character form."""
    cleaned = "".join(value.split()).upper()
    try:
        if len(cleaned) == 13:
            return cleaned + f"{compute_nir_key(cleaned):02d}"
        return validate_matricule(cleaned)
    except InvalidMatriculeError as error:
        raise invalid(field, str(error)) from None


async def create_or_find_from_vitale(
    svc: Service,
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
    holder = _card_nir(card.holder_nir, prefix + "holder_nir")
    own_nir = _card_nir(person.nir, where + "nir") if person.nir else None
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
        raise _fault(error, where) from None
    except InsiUnavailableError:
        response = None  # the record is created provisional; INSi can be queried later
    identity = response.identity if response and response.code is InsiResultCode.FOUND else None
    queried_at = now()
    record = IdentityRecord(traits=card_traits)
    if identity is not None:
        record = record.after_insi_recovery(
            ins=identity.ins, reference=identity.traits(), queried_at=queried_at
        ).record
    traits = Traits.of(record.traits)

    for _ in range(2):
        existing = await _find_person(svc, principal, identity, own_nir, traits)
        if existing is not None:
            async with svc.messaging.unit_of_work() as uow:
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
            return patient.with_identity(record) if identity is not None else patient

        try:
            patient, version = await _insert_new(svc, principal, build, where + "nir")
        except Conflict:
            continue  # the same person was created meanwhile: find it
        return patient, version, True
    raise Conflict("The card's beneficiary matches a record being changed; retry")


async def _find_person(
    svc: Service,
    principal: Principal,
    identity: Any,
    own_nir: str | None,
    traits: Traits,
) -> tuple[PatientRecord, int] | None:
    structure = principal.acting_structure
    for matricule in (identity.ins.matricule if identity else None, own_nir):
        if matricule:
            owner = await repository.owner_of(svc.store, structure, matricule)
            if owner is not None:
                found = await repository.get(svc.store, structure, owner)
                if found is not None:
                    patient, version = found
                    if not patient.active and patient.merged_into is not None:
                        return await repository.get(svc.store, structure, str(patient.merged_into))
                    return found
    same = await repository.same_traits(svc.store, structure, traits)
    if same:
        return await repository.get(svc.store, structure, str(same[0].id))
    return None
