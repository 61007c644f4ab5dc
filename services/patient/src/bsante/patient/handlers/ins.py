"""Use cases of the INS: recovery through the INSi teleservice, and the identity-document check."""

from __future__ import annotations

from bsante.chassis.auth import Principal
from bsante.contracts.events import InsQualified
from bsante.patient import repository
from bsante.patient.domain import Discrepancy, InsiAnswer, PatientRecord, Traits
from bsante.patient.errors import InsiUnavailable, InvalidRequest, PatientError, invalid
from bsante.patient.handlers.common import Ports, audit, emit_updated, load, require_active
from bsante.patient.identity.insi import (
    InsiFaultError,
    InsiResponse,
    InsiResultCode,
    SearchByTraits,
    is_partial_birth_date,
)
from bsante.patient.identity.status import (
    IdentityDocumentCheck,
    IdentityStatus,
    RefusalReason,
    Transition,
    TransitionRefusedError,
)
from bsante.patient.insi_gateway import InsiGateway, InsiUnavailableError
from bsante.patient.schemas import DocumentCheckIn, InsiOutcome, PatientOut

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


def insi_fault(error: InsiFaultError, prefix: str = "") -> PatientError:
    field = INSI_FIELDS.get(error.field or "", error.field or "traits")
    return InvalidRequest(
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


async def save_identity_change(
    ports: Ports,
    principal: Principal,
    before: PatientRecord,
    after: PatientRecord,
    expected: int,
    transition: Transition | None,
    via: str,
) -> int:
    async with ports.unit_of_work() as uow:
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
                        qualified_at=ports.clock(),
                    ),
                    structure_id=after.structure_id,
                    subject_id=str(after.id),
                )
        await audit(uow, principal, str(after.id), "update")
    return version


async def recover_ins(
    ports: Ports,
    insi: InsiGateway,
    principal: Principal,
    patient_id: str,
    *,
    accept_reference_traits: bool,
    expected: int | None,
) -> InsiOutcome:
    """Query INSi with the record's traits and apply the RNIV transition when allowed.

    INSi is called outside any store transaction; the answer is then written at the version
    read (a concurrent change makes it a conflict)."""
    patient, version = await load(ports, principal, patient_id)
    require_active(patient)
    expected = version if expected is None else expected
    if patient.attributes.doubtful or patient.attributes.fictitious:
        raise InvalidRequest(
            "A doubtful or fictitious identity must not be sent to INSi",
            errors=[{"field": "attributes", "message": "doubtful or fictitious"}],
        )
    try:
        response = await _search_by_traits(insi, patient.traits)
    except InsiFaultError as error:
        raise insi_fault(error) from None
    except InsiUnavailableError as error:
        raise InsiUnavailable(str(error)) from None
    queried_at = ports.clock()

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
        # insi_queried_at is when INSi was last asked about this record, whatever it said.
        noted = patient.model_copy(
            update={"last_insi": answer, "insi_queried_at": answer.queried_at}
        ).logged(principal.user_id, "insi_query", code=answer.code, outcome=answer.outcome)
        new_version = await save_identity_change(
            ports, principal, patient, noted, expected, None, "insi"
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
            raise InvalidRequest(str(error)) from None
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
    after = patient.with_identity(transition.record).model_copy(
        update={"last_insi": answered("applied", [], Traits.of(reference))}
    )
    if is_partial_birth_date(identity.birth_date_raw):
        after = after.model_copy(
            update={"attributes": after.attributes.model_copy(update={"partial_birth_date": True})}
        )
    after = after.logged(
        principal.user_id,
        "insi_recovery",
        status_before=patient.identity_status,
        ins_oid=identity.ins.oid.value,
    )
    new_version = await save_identity_change(
        ports, principal, patient, after, expected, transition, "insi"
    )
    return InsiOutcome(
        result="qualified" if after.status is IdentityStatus.QUALIFIEE else "recovered",
        insi_code=response.code.value,
        insi_label=response.label,
        discrepancies=[],
        patient=PatientOut.of(after, new_version),
    )


async def check_document(
    ports: Ports,
    principal: Principal,
    patient_id: str,
    body: DocumentCheckIn,
    expected: int | None,
) -> tuple[PatientRecord, int]:
    patient, version = await load(ports, principal, patient_id)
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
        checked_at=body.checked_at or ports.clock(),
        document_traits=document_traits,
    )
    try:
        transition = patient.identity_record().after_document_check(check)
    except TransitionRefusedError as error:
        if error.reason is RefusalReason.NOT_HIGH_TRUST:
            raise invalid("document_type", str(error)) from None
        if error.reason is RefusalReason.TRAITS_MISMATCH:
            raise InvalidRequest(
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
        raise InvalidRequest(str(error)) from None
    after = patient.with_identity(transition.record).logged(
        principal.user_id,
        "document_check",
        document_type=body.document_type.value,
        status_before=patient.identity_status,
    )
    new_version = await save_identity_change(
        ports,
        principal,
        patient,
        after,
        version if expected is None else expected,
        transition,
        "document",
    )
    return after, new_version
