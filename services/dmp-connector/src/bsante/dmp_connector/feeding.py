"""Feeding the DMP: from `DocumentSigned` to a submission, its preconditions (a qualified INS,
no opposition, merged records followed), and the durable jobs that call the DMP.

Consumers decide and schedule inside their unit of work; the DMP is called only by the jobs,
outside any transaction.
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog
from pydantic import BaseModel

from bsante.chassis.jobs import (
    Job,
    JobFailure,
    JobKind,
    JobPolicy,
    JobRecord,
    PermanentJobError,
    schedule,
)
from bsante.chassis.messaging import EventRouter, UnitOfWork
from bsante.chassis.store import Store
from bsante.contracts.envelope import Envelope
from bsante.contracts.events import (
    DmpDocumentSubmitted,
    DmpDocumentUpdated,
    DmpOppositionRecorded,
    DmpSubmissionFailed,
    DocumentSigned,
    InsQualified,
    PatientCreated,
    PatientsMerged,
    PatientUpdated,
)
from bsante.dmp_connector import cda_facts, mtom, vihf, xds
from bsante.dmp_connector.cda_facts import CdaFacts, Coded
from bsante.dmp_connector.dmp_client import DmpClient
from bsante.dmp_connector.peers import Documents, Patients, check_claim
from bsante.dmp_connector.repository import (
    SUBMISSIONS,
    WAITING,
    PatientView,
    State,
    Submission,
    get_patient,
    get_submission,
    now_iso,
    save_patient,
    save_submission,
)

log = structlog.get_logger(__name__)
SUBMIT = "dmp.submit"
VISIBILITY = "dmp.visibility"
WITHDRAW = "dmp.withdraw"
ENDPOINT = "dmp"
OPPOSITION = "DMP_OPPOSITION"
DUPLICATE = "XDSDuplicateUniqueIdInRegistry"
_NS = uuid.UUID("6f1b8d1e-3a47-4a51-9d8e-5b1c2f0a7e11")


def entry_uuid(document_id: str, salt: str = "entry") -> str:
    """Stable per document: a repeated submission sends the very same metadata."""
    return f"urn:uuid:{uuid.uuid5(_NS, f'{salt}:{document_id}')}"


# -- preconditions --------------------------------------------------------------------------


def blocker(view: PatientView | None) -> tuple[State, str] | None:
    if view is None or not view.qualified:
        return State.WAITING_INS, "waiting for a qualified INS"
    if view.opposed:
        return State.BLOCKED_OPPOSITION, "the patient opposes feeding the DMP"
    return None


async def decide(
    uow: UnitOfWork,
    submission: Submission,
    version: int,
    view: PatientView | None,
    view_version: int | None,
) -> None:
    """Queue the submission, or park it on its patient until an event moves it."""
    found = blocker(view)
    if found is None:
        queued = submission.moved(State.QUEUED)
        await save_submission(uow.tx, queued, version)
        await schedule(
            uow.tx,
            kind=SUBMIT,
            idempotency_key=f"{queued.document_id}/{queued.round}",
            payload=SubmitJob(document_id=queued.document_id),
            structure_id=queued.structure_id,
            subject_id=queued.document_id,
        )
        if view is not None and submission.document_id in view.pending:
            view = view.model_copy(
                update={"pending": [d for d in view.pending if d != submission.document_id]}
            )
            await save_patient(uow.tx, view, view_version)
        return
    state, reason = found
    if submission.state != state:
        await save_submission(uow.tx, submission.moved(state, reason), version)
    if view is None:
        view = PatientView(patient_id=submission.patient_id, structure_id=submission.structure_id)
    if submission.document_id not in view.pending:
        view = view.model_copy(update={"pending": [*view.pending, submission.document_id]})
        await save_patient(uow.tx, view, view_version)


async def resume(uow: UnitOfWork, patient_id: str) -> None:
    """Re-decide every submission parked on this patient (after a change of its status)."""
    found = await get_patient(uow.tx, patient_id)
    if found is None:
        return
    view, view_version = found
    for document_id in list(view.pending):
        current = await get_patient(uow.tx, patient_id)
        assert current is not None
        view, view_version = current
        loaded = await get_submission(uow.tx, document_id)
        if loaded is None or loaded[0].state not in WAITING or loaded[0].patient_id != patient_id:
            view = view.model_copy(
                update={"pending": [d for d in view.pending if d != document_id]}
            )
            await save_patient(uow.tx, view, view_version)
            continue
        await decide(uow, loaded[0], loaded[1], view, view_version)


async def upsert_patient(
    uow: UnitOfWork, patient_id: str, structure_id: str, **changes: Any
) -> None:
    found = await get_patient(uow.tx, patient_id)
    if found is None:
        view = PatientView(patient_id=patient_id, structure_id=structure_id, **changes)
        await save_patient(uow.tx, view, None)
    else:
        await save_patient(uow.tx, found[0].model_copy(update=changes), found[1])
    await resume(uow, patient_id)


def subscriptions() -> EventRouter:
    events = EventRouter("dmp-connector")

    @events.on(DocumentSigned)
    async def on_signed(uow: UnitOfWork, envelope: Envelope, p: DocumentSigned) -> None:
        if not p.dmp.requested:
            return
        document_id = str(p.document_id)
        at = now_iso()
        patient_id = str(p.patient_id)
        view = await get_patient(uow.tx, patient_id)
        # A merged record's documents go to the surviving one.
        while view is not None and view[0].merged_into:
            patient_id = view[0].merged_into
            view = await get_patient(uow.tx, patient_id)
        submission = Submission(
            document_id=document_id,
            structure_id=envelope.structure_id,
            patient_id=patient_id,
            set_id=str(p.set_id),
            version=p.version,
            parent_document_id=str(p.parent_document_id) if p.parent_document_id else None,
            author_id=p.author_id,
            type_code=p.type_code,
            class_code=p.class_code,
            title=p.title,
            cda_sha256=p.cda_sha256,
            cda_size=p.cda_size,
            visibility=list(p.dmp.visibility),
            state=State.QUEUED,  # until `decide` says otherwise, in this transaction
            entry_uuid=entry_uuid(document_id),
            created_at=at,
            updated_at=at,
        )
        inserted = await uow.tx.insert_if_absent(
            SUBMISSIONS, document_id, submission.model_dump(mode="json")
        )
        if inserted is None:
            return  # the same document signed event twice (another event id): one submission
        await decide(uow, submission, inserted.version, *(view or (None, None)))

    @events.on(PatientCreated)
    async def on_created(uow: UnitOfWork, envelope: Envelope, p: PatientCreated) -> None:
        await upsert_patient(
            uow, str(p.patient_id), envelope.structure_id, identity_status=p.identity_status
        )

    @events.on(PatientUpdated)
    async def on_updated(uow: UnitOfWork, envelope: Envelope, p: PatientUpdated) -> None:
        await upsert_patient(
            uow, str(p.patient_id), envelope.structure_id, identity_status=p.identity_status
        )

    @events.on(InsQualified)
    async def on_qualified(uow: UnitOfWork, envelope: Envelope, p: InsQualified) -> None:
        await upsert_patient(
            uow, str(p.patient_id), envelope.structure_id, identity_status="qualifiee"
        )

    @events.on(DmpOppositionRecorded)
    async def on_opposition(uow: UnitOfWork, envelope: Envelope, p: DmpOppositionRecorded) -> None:
        await upsert_patient(uow, str(p.patient_id), envelope.structure_id, opposed=p.opposed)

    @events.on(PatientsMerged)
    async def on_merged(uow: UnitOfWork, envelope: Envelope, p: PatientsMerged) -> None:
        merged, kept = str(p.merged_patient_id), str(p.kept_patient_id)
        found = await get_patient(uow.tx, merged)
        view = (
            found[0]
            if found
            else PatientView(patient_id=merged, structure_id=envelope.structure_id)
        )
        moving = list(view.pending)
        await save_patient(
            uow.tx,
            view.model_copy(update={"merged_into": kept, "pending": []}),
            found[1] if found else None,
        )
        for document_id in moving:
            loaded = await get_submission(uow.tx, document_id)
            if loaded is not None and loaded[0].state in WAITING:
                moved = loaded[0].model_copy(update={"patient_id": kept})
                await save_submission(uow.tx, moved, loaded[1])
        target = await get_patient(uow.tx, kept)
        target_view = (
            target[0]
            if target
            else PatientView(patient_id=kept, structure_id=envelope.structure_id)
        )
        target_view = target_view.model_copy(
            update={
                "pending": [
                    *target_view.pending,
                    *(d for d in moving if d not in target_view.pending),
                ]
            }
        )
        await save_patient(uow.tx, target_view, target[1] if target else None)
        await resume(uow, kept)

    return events


# -- jobs -----------------------------------------------------------------------------------


class SubmitJob(BaseModel):
    document_id: str


class ChangeJob(BaseModel):
    document_id: str
    requested_by: str
    visibility: list[str] = []


class Outcome(BaseModel):
    unique_id: str
    duplicate: bool = False
    skipped: str | None = None


@dataclass
class Feeder:
    """The job handlers: what they read (store, peers) and whom they call (the DMP)."""

    store: Store
    documents: Documents
    patients: Patients
    dmp: DmpClient
    source_id: str
    practice_setting: str

    def kinds(
        self, attempts: int, backoff: float, timeout: float = 60.0
    ) -> list[JobKind[Any, Any]]:
        policy = JobPolicy(
            max_attempts=attempts,
            initial_backoff=backoff,
            max_backoff=600,
            timeout=timeout,
            max_age=timedelta(days=7),
        )
        return [
            JobKind(
                SUBMIT,
                SubmitJob,
                self.submit,
                on_success=self.submitted,
                on_failure=self.failed,
                policy=policy,
                endpoint=ENDPOINT,
            ),
            JobKind(
                VISIBILITY,
                ChangeJob,
                self.change_visibility,
                on_success=self.changed,
                on_failure=self.change_failed,
                policy=policy,
                endpoint=ENDPOINT,
            ),
            JobKind(
                WITHDRAW,
                ChangeJob,
                self.withdraw,
                on_success=self.changed,
                on_failure=self.change_failed,
                policy=policy,
                endpoint=ENDPOINT,
            ),
        ]

    # -- what every call needs ------------------------------------------------------------

    async def _prepare(self, submission: Submission) -> tuple[CdaFacts, bytes, str, str]:
        patient = await self.patients.ins(
            submission.patient_id,
            structure_id=submission.structure_id,
            on_behalf_of=submission.author_id,
        )
        if patient is None:
            raise PermanentJobError("PATIENT_UNKNOWN: the patient service does not know the record")
        if patient.dmp_opposition:
            raise PermanentJobError(f"{OPPOSITION}: the patient opposes feeding the DMP")
        if patient.identity_status != "qualifiee" or not patient.ins or not patient.ins_oid:
            raise PermanentJobError("INS_NOT_QUALIFIED: the identity is not qualifiée")
        cda = await self.documents.signed_cda(submission.document_id)
        if cda is None:
            raise PermanentJobError("DOCUMENT_UNKNOWN: documents does not know the document")
        check_claim(cda, submission.cda_sha256, submission.cda_size)
        try:
            facts = cda_facts.extract(cda)
        except cda_facts.MalformedCda as error:
            raise PermanentJobError(f"MALFORMED_CDA: {error}") from None
        if facts.ins is not None and (facts.ins, facts.ins_oid) != (patient.ins, patient.ins_oid):
            raise PermanentJobError("INS_MISMATCH: the CDA names another INS than the record")
        return facts, cda, patient.ins, patient.ins_oid

    def actor(self, facts: CdaFacts) -> vihf.Actor:
        author = facts.author
        # Identifiant_Structure is the national id (StructIdNat) of the author's organisation
        # the CDA carries, never our tenant id: the DMP knows structures by that id only.
        if not facts.institution_id:
            raise PermanentJobError(
                "NO_STRUCTURE_ID: the CDA's author organisation carries no national structure id"
            )
        code = author.profession.code if author.profession else "G15_10"
        profession, _, specialty = code.removeprefix("G15_").partition("/")
        return vihf.Actor(
            ps_id_nat=author.id,
            name=f"{author.given} {author.family}".strip(),
            profession=profession,
            profession_display=author.profession.display if author.profession else "",
            structure_id=facts.institution_id,
            sector=facts.facility_type.code if facts.facility_type else "SA07",
            specialty=specialty or None,
        )

    def entry(
        self,
        submission: Submission,
        facts: CdaFacts,
        cda: bytes,
        ins: str,
        oid: str,
        *,
        entry_id: str,
        visibility: list[str],
        replaces: str | None = None,
    ) -> xds.Entry:
        class_code = xds.CLASS_BY_TYPE.get(facts.type_code.code)
        if submission.class_code:
            class_code = Coded(
                submission.class_code,
                xds.OID_CLASS,
                class_code.display if class_code else submission.class_code,
            )
        if class_code is None:
            raise PermanentJobError(f"NO_CLASS_CODE: no classCode for type {facts.type_code.code}")
        return xds.Entry(
            facts=facts,
            entry_uuid=entry_id,
            patient_id=xds.patient_cx(ins, oid),
            class_code=class_code,
            format_code=xds.FORMAT_N1,
            facility_type=facts.facility_type
            or Coded("SA07", "1.2.250.1.71.4.2.4", "Cabinet individuel"),
            practice_setting=facts.practice_setting
            or Coded(self.practice_setting, "1.2.250.1.213.1.1.4.9", self.practice_setting.title()),
            visibility=visibility,
            sha1=hashlib.sha1(cda).hexdigest(),
            size=len(cda),
            replaces_entry_uuid=replaces,
        )

    def submission_set(self, facts: CdaFacts, key: str) -> xds.SubmissionSet:
        return xds.SubmissionSet(
            unique_id=xds.oid_of(uuid.uuid5(_NS, f"ss:{key}")),
            source_id=self.source_id,
            submitted_at=datetime.now(UTC),
            content_type=facts.facility_type
            or Coded("SA07", "1.2.250.1.71.4.2.4", "Cabinet individuel"),
        )

    # -- ITI-41 ---------------------------------------------------------------------------

    async def submit(self, job: Job[SubmitJob]) -> Outcome:
        loaded = await get_submission(self.store, job.payload.document_id)
        if loaded is None:
            raise PermanentJobError("SUBMISSION_UNKNOWN: no such submission")
        submission = loaded[0]
        if submission.state is not State.QUEUED:
            return Outcome(unique_id=submission.unique_id or "", skipped=submission.state.value)
        facts, cda, ins, oid = await self._prepare(submission)
        actor = self.actor(facts)
        state = await self.dmp.admin(actor, ins, oid, "TestExistence")
        if state.get("exists") != "true":
            raise PermanentJobError("DMP_ABSENT: the patient has no DMP")
        if state.get("status") != "ouvert":
            raise PermanentJobError("DMP_CLOSED: the patient's DMP is closed")
        replaces = None
        if submission.parent_document_id:
            parent = await get_submission(self.store, submission.parent_document_id)
            if parent is not None and parent[0].state is State.SUBMITTED:
                replaces = parent[0].logical_id or parent[0].entry_uuid
        entry = self.entry(
            submission,
            facts,
            cda,
            ins,
            oid,
            entry_id=submission.entry_uuid,
            visibility=list(submission.visibility),
            replaces=replaces,
        )
        request = xds.provide_and_register(
            self.submission_set(facts, submission.document_id), entry
        )
        part = mtom.Part(entry.content_id, "text/xml", cda)
        response = await self.dmp.provide_and_register(actor, ins, oid, request, part)
        if response.success:
            return Outcome(unique_id=facts.unique_id)
        codes = [e.code for e in response.errors]
        if DUPLICATE in codes and await self._already_ours(
            actor, ins, oid, facts.unique_id, entry.sha1
        ):
            return Outcome(unique_id=facts.unique_id, duplicate=True)
        first = (
            response.errors[0]
            if response.errors
            else xds.RegistryError("XDSRegistryError", "Failure")
        )
        raise PermanentJobError(f"{first.code}: {first.context}")

    async def _already_ours(
        self, actor: vihf.Actor, ins: str, oid: str, unique_id: str, sha1: str
    ) -> bool:
        """A duplicate uniqueId is a success only when the registry holds this very document
        (a repeat after an answer lost in a crash), not another one with the same id."""
        status, found = await self.dmp.query(actor, ins, oid, xds.get_documents([unique_id]))
        return status.success and any(e.unique_id == unique_id and e.hash == sha1 for e in found)

    async def submitted(self, uow: UnitOfWork, job: Job[SubmitJob], outcome: Outcome) -> None:
        if outcome.skipped:
            return
        loaded = await get_submission(uow.tx, job.payload.document_id)
        if loaded is None:
            return
        submission, version = loaded
        replaces = None
        if submission.parent_document_id:
            parent = await get_submission(uow.tx, submission.parent_document_id)
            if parent is not None and parent[0].state is State.SUBMITTED:
                replaces = parent[0].unique_id
                await save_submission(
                    uow.tx, parent[0].moved(State.WITHDRAWN, "replaced by a new version"), parent[1]
                )
        done = submission.moved(
            State.SUBMITTED,
            "acknowledged by the DMP",
            unique_id=outcome.unique_id,
            logical_id=submission.entry_uuid,
            registry_version=1,
            replaces_unique_id=replaces,
            error_code=None,
        )
        await save_submission(uow.tx, done, version)
        await uow.emit(
            DmpDocumentSubmitted(
                document_id=uuid.UUID(done.document_id),
                patient_id=uuid.UUID(done.patient_id),
                unique_id=outcome.unique_id,
                replaces_unique_id=replaces,
                visibility=done.visibility,
                duplicate=outcome.duplicate,
                submitted_at=datetime.now(UTC),
            ),
            structure_id=done.structure_id,
            subject_id=done.document_id,
        )

    async def failed(self, uow: UnitOfWork, record: JobRecord, failure: JobFailure) -> None:
        document_id = str(record.payload.get("document_id", ""))
        loaded = await get_submission(uow.tx, document_id)
        if loaded is None:
            return
        submission, version = loaded
        code, text = split_error(failure)
        if code == OPPOSITION:
            view = await get_patient(uow.tx, submission.patient_id)
            # A new round: lifting the opposition schedules a job with a new key.
            blocked = submission.moved(State.QUEUED, None, round=submission.round + 1)
            version = await save_submission(uow.tx, blocked, version)
            opposed = (
                view[0]
                if view
                else PatientView(
                    patient_id=submission.patient_id, structure_id=submission.structure_id
                )
            ).model_copy(update={"opposed": True})
            await decide(uow, blocked, version, opposed, view[1] if view else None)
            return
        await save_submission(
            uow.tx, submission.moved(State.FAILED, text, error_code=code), version
        )
        await uow.emit(
            DmpSubmissionFailed(
                document_id=uuid.UUID(document_id),
                patient_id=uuid.UUID(submission.patient_id),
                operation="submit",
                error_code=code,
                error_text=text,
                failed_at=datetime.now(UTC),
            ),
            structure_id=submission.structure_id,
            subject_id=document_id,
        )

    # -- ITI-57 ---------------------------------------------------------------------------

    async def change_visibility(self, job: Job[ChangeJob]) -> dict[str, Any]:
        submission, facts, cda, ins, oid, actor = await self._submitted(job.payload.document_id)
        new_entry = entry_uuid(submission.document_id, f"v{submission.registry_version + 1}")
        entry = self.entry(
            submission, facts, cda, ins, oid, entry_id=new_entry, visibility=job.payload.visibility
        )
        request = xds.update_visibility(
            self.submission_set(facts, job.idempotency_key),
            entry,
            submission.registry_version,
            submission.logical_id or submission.entry_uuid,
        )
        response = await self.dmp.update(actor, ins, oid, request)
        if not response.success:
            first = response.errors[0] if response.errors else xds.RegistryError("?", "Failure")
            raise PermanentJobError(f"{first.code}: {first.context}")
        return {"operation": "visibility", "visibility": job.payload.visibility}

    async def withdraw(self, job: Job[ChangeJob]) -> dict[str, Any]:
        submission, facts, cda, ins, oid, actor = await self._submitted(job.payload.document_id)
        entry = self.entry(
            submission,
            facts,
            cda,
            ins,
            oid,
            entry_id=submission.entry_uuid,
            visibility=list(submission.visibility),
        )
        request = xds.update_status(
            self.submission_set(facts, job.idempotency_key),
            entry,
            submission.logical_id or submission.entry_uuid,
        )
        response = await self.dmp.update(actor, ins, oid, request)
        if not response.success:
            first = response.errors[0] if response.errors else xds.RegistryError("?", "Failure")
            raise PermanentJobError(f"{first.code}: {first.context}")
        return {"operation": "withdraw", "visibility": list(submission.visibility)}

    async def _submitted(
        self, document_id: str
    ) -> tuple[Submission, CdaFacts, bytes, str, str, vihf.Actor]:
        loaded = await get_submission(self.store, document_id)
        if loaded is None or loaded[0].state is not State.SUBMITTED:
            raise PermanentJobError("NOT_SUBMITTED: the document is not in the DMP")
        submission = loaded[0]
        patient = await self.patients.ins(
            submission.patient_id,
            structure_id=submission.structure_id,
            on_behalf_of=submission.author_id,
        )
        if patient is None or not patient.ins or not patient.ins_oid:
            raise PermanentJobError("INS_NOT_QUALIFIED: the record has no INS")
        cda = await self.documents.signed_cda(document_id)
        if cda is None:
            raise PermanentJobError("DOCUMENT_UNKNOWN: documents does not know the document")
        check_claim(cda, submission.cda_sha256, submission.cda_size)
        try:
            facts = cda_facts.extract(cda)
        except cda_facts.MalformedCda as error:
            raise PermanentJobError(f"MALFORMED_CDA: {error}") from None
        return (
            submission,
            facts,
            cda,
            patient.ins,
            patient.ins_oid,
            self.actor(facts),
        )

    async def changed(self, uow: UnitOfWork, job: Job[ChangeJob], outcome: dict[str, Any]) -> None:
        loaded = await get_submission(uow.tx, job.payload.document_id)
        if loaded is None:
            return
        submission, version = loaded
        operation = outcome["operation"]
        if operation == "withdraw":
            updated = submission.moved(
                State.WITHDRAWN, "withdrawn from the DMP", pending_change=None
            )
        else:
            updated = submission.moved(
                State.SUBMITTED,
                "visibility changed",
                visibility=outcome["visibility"],
                pending_change=None,
                registry_version=submission.registry_version + 1,
            )
        await save_submission(uow.tx, updated, version)
        await uow.emit(
            DmpDocumentUpdated(
                document_id=uuid.UUID(updated.document_id),
                patient_id=uuid.UUID(updated.patient_id),
                unique_id=updated.unique_id or "",
                operation=operation,
                visibility=updated.visibility,
                updated_by=job.payload.requested_by,
                updated_at=datetime.now(UTC),
            ),
            structure_id=updated.structure_id,
            subject_id=updated.document_id,
        )

    async def change_failed(self, uow: UnitOfWork, record: JobRecord, failure: JobFailure) -> None:
        document_id = str(record.payload.get("document_id", ""))
        loaded = await get_submission(uow.tx, document_id)
        if loaded is None:
            return
        submission, version = loaded
        code, text = split_error(failure)
        await save_submission(
            uow.tx,
            submission.model_copy(
                update={
                    "pending_change": None,
                    "error_code": code,
                    "reason": text,
                    "updated_at": now_iso(),
                }
            ),
            version,
        )
        await uow.emit(
            DmpSubmissionFailed(
                document_id=uuid.UUID(document_id),
                patient_id=uuid.UUID(submission.patient_id),
                operation="withdraw" if record.kind == WITHDRAW else "visibility",
                error_code=code,
                error_text=text,
                failed_at=datetime.now(UTC),
            ),
            structure_id=submission.structure_id,
            subject_id=document_id,
        )


def split_error(failure: JobFailure) -> tuple[str, str]:
    """("XDS code or local reason", text) from a job's failure."""
    message = failure.error_message
    code, sep, text = message.partition(": ")
    if sep and code and " " not in code:
        return code[:100], text[:300]
    if failure.reason in ("attempts_exhausted", "max_age_exceeded", "worker_lost"):
        return "DMP_UNAVAILABLE", f"{failure.reason}: {message}"[:300]
    return failure.error_type[:100], message[:300]
