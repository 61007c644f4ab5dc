"""Use cases of a document's lifecycle: finalize (freeze and render the PDF), abandon a draft,
sign (CDA N1 around the PDF, conformance, seals, blobs, DocumentSigned), start a new version
of a signed document, and the verification of its seals.

External work (peers, rendering, validation, sealing, blob writes) happens before the unit of
work that records the step; the step itself is a versioned update, so of two concurrent
signatures one wins and the other is a 409.
"""

from __future__ import annotations

import uuid
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta

from bsante.chassis.blobs import BlobCorrupted, BlobKind, iterate
from bsante.chassis.cpu import run_cpu
from bsante.chassis.errors import AccessDenied, ConflictError, PreconditionFailed
from bsante.contracts.events.documents import (
    DmpIntent,
    DmpVisibility,
    DocumentReplaced,
    DocumentSigned,
    MssRecipient,
)
from bsante.documents import cda, dlu, pdf, repository
from bsante.documents.cps import CardAccess, CardBridgeKey, CpsNotConfigured
from bsante.documents.domain import Artefact, Document, DocumentsRefusal, Sharing, WrongState
from bsante.documents.handlers.common import PDF, XML, Caller, Ports, audit, document
from bsante.documents.handlers.drafts import Saved, author_of, body_of, patient_of, structure_of
from bsante.documents.sealing import Verification
from bsante.documents.sources import AuthorFacts


def _owner(document_id: uuid.UUID) -> str:
    return f"document:{document_id}"


async def _keep(ports: Ports, data: bytes, kind: BlobKind, media_type: str, owner: str) -> Artefact:
    info = await ports.blobs.put(iterate(data), kind=kind, media_type=media_type)
    # Referenced before the document names it: a crash in between leaves a kept orphan,
    # never a document whose blob was collected.
    await ports.blobs.add_reference(info.sha256, owner)
    return Artefact(sha256=info.sha256, size=info.size, media_type=info.media_type)


def _organisation(found: Document) -> cda.Organisation:
    structure = structure_of(found.facts)
    organisation = structure.to_cda() if structure is not None else None
    if organisation is None:
        raise DocumentsRefusal(
            "The structure has no FINESS: its documents cannot be rendered",
            errors=[{"field": "structure.finess", "message": "missing"}],
        )
    return organisation


def _professional(facts: AuthorFacts | None, organisation: cda.Organisation) -> cda.Professional:
    professional = facts.to_cda(organisation) if facts is not None else None
    if professional is None:
        raise DocumentsRefusal(
            "The author must be a professional with an RPPS and a profession",
            errors=[{"field": "author.rpps", "message": "missing"}],
        )
    return professional


def _page(
    found: Document, ports: Ports, author: cda.Professional, signed_at: datetime | None
) -> pdf.ReportPage:
    return pdf.ReportPage(
        title=found.title,
        organisation=author.organisation,
        patient=patient_of(found.facts).to_cda(ports.ipp_root),
        author=author,
        document_date=found.document_date or found.created_at.date(),
        signed_at=signed_at,
    )


async def _author(ports: Ports, caller: Caller, found: Document) -> AuthorFacts | None:
    """The drafter when a professional, else the caller (a secretary prepares, a médecin
    finalizes and signs)."""
    drafter = author_of(found.facts)
    if drafter is not None and drafter.rpps:
        return drafter
    if caller.user == found.author_id:
        return drafter
    return await ports.sources.directory.author(caller.user)


async def finalize(
    ports: Ports, caller: Caller, document_id: uuid.UUID, expected_version: int
) -> Saved:
    """Freeze a draft's content and render its PDF/A (off the event loop)."""
    found, current = await document(ports, caller, document_id)
    if found.status != "draft":
        raise WrongState(found.status, "finalized")
    if expected_version != current:
        raise PreconditionFailed(
            "The document changed since the version named by If-Match; reload and retry",
            errors=[{"field": "If-Match", "message": f"the current version is {current}"}],
        )
    organisation = _organisation(found)
    author_facts = await _author(ports, caller, found)
    author = _professional(author_facts, organisation)
    rendered = await run_cpu(
        pdf.render_body_pdf, _page(found, ports, author, None), body_of(found), found.values
    )
    artefact = await _keep(ports, rendered, ports.kinds.pdf, PDF, _owner(found.id))
    facts = dict(found.facts)
    if author_facts is not None:
        facts["author"] = asdict(author_facts)
    now = ports.clock()
    final = found.model_copy(
        update={
            "status": "final",
            "pdf": artefact,
            "facts": facts,
            "finalized_at": now,
            "finalized_by": caller.user,
            "updated_at": now,
        }
    )
    async with ports.unit_of_work() as uow:
        version = await repository.save(uow.tx, final, expected_version)
        await audit(uow, caller, found.patient_id, "update")
    return Saved(final, version)


async def abandon(
    ports: Ports, caller: Caller, document_id: uuid.UUID, expected_version: int
) -> Saved:
    found, _ = await document(ports, caller, document_id)
    if found.status != "draft":
        raise WrongState(found.status, "abandoned")
    now = ports.clock()
    abandoned = found.model_copy(
        update={"status": "abandoned", "abandoned_at": now, "updated_at": now}
    )
    async with ports.unit_of_work() as uow:
        version = await repository.save(uow.tx, abandoned, expected_version)
        if found.parent_document_id is not None:
            # The signed parent may be given a new version again.
            await uow.tx.delete(repository.REPLACEMENTS, str(found.parent_document_id))
        await audit(uow, caller, found.patient_id, "update")
    return Saved(abandoned, version)


@dataclass(frozen=True)
class SignRequest:
    dmp: bool | None = None
    dmp_visibility: list[DmpVisibility] = field(default_factory=list)
    mssante: list[MssRecipient] = field(default_factory=list)
    # The signer's own CPS signs instead of the structure's cachet.
    card: CardAccess | None = None


class NotConformant(DocumentsRefusal):
    kind = "not-conformant"


def _metadata(ports: Ports, found: Document, signed_at: datetime) -> cda.DocumentMetadata:
    started = min(found.created_at, signed_at)
    return cda.DocumentMetadata(
        id_root=ports.id_root,
        document_id=str(found.id),
        set_id=str(found.set_id),
        version=found.version,
        parent_document_id=str(found.parent_document_id) if found.parent_document_id else None,
        type_code=found.type_code or "",
        title=found.title,
        effective_time=signed_at,
        authored_at=found.finalized_at or started,
        signed_at=signed_at,
        service_event=cda.ServiceEvent(start=started - timedelta(seconds=1), end=signed_at),
        encounter_start=started - timedelta(seconds=1),
    )


async def sign(
    ports: Ports,
    caller: Caller,
    document_id: uuid.UUID,
    request: SignRequest,
    expected_version: int,
) -> Saved:
    """Sign a final document with the caller's own professional account; a received PDF is
    shared the same way, wrapped as it is in a CDA N1 the signer authenticates."""
    found, current = await document(ports, caller, document_id)
    shared = found.status == "received"
    if found.status != "final" and not shared:
        raise WrongState(
            found.status, "signed" if found.status != "draft" else "signed before it is final"
        )
    if shared:
        _shareable(found)
    if expected_version != current:
        raise PreconditionFailed(
            "The document changed since the version named by If-Match; reload and retry",
            errors=[{"field": "If-Match", "message": f"the current version is {current}"}],
        )
    signer_facts = await ports.sources.directory.author(caller.user)
    if signer_facts is None or not signer_facts.rpps:
        raise AccessDenied("Only a professional signs, with their own account (RPPS)")
    patient = patient_of(found.facts)
    wants_dmp = patient.ins_qualified if request.dmp is None else request.dmp
    if wants_dmp and not patient.ins_qualified:
        raise DocumentsRefusal(
            "The DMP is fed only for a patient whose INS is qualifiée",
            errors=[{"field": "dmp", "message": "the patient's INS is not qualifiée"}],
        )
    organisation = _organisation(found)
    signer = _professional(signer_facts, organisation)
    card = await _signers_card(ports, request.card, signer_facts.rpps)
    signed_at = ports.clock()
    if shared:
        # Not ours to change: the received PDF goes into the CDA byte for byte, unsealed; the
        # signer is its CDA author and legal authenticator.
        assert found.file is not None
        author = signer
        sealed_pdf = await ports.blobs.read(found.file.sha256)
    else:
        author = _professional(author_of(found.facts), organisation)
        page = _page(found, ports, author, signed_at)
        rendered = await run_cpu(pdf.render_body_pdf, page, body_of(found), found.values)
        if card is not None:
            assert ports.cps is not None
            sealed_pdf = await run_cpu(ports.cps.seal_pdf, card, rendered, signed_at=signed_at)
        else:
            sealed_pdf = await run_cpu(ports.sealer.seal_pdf, rendered, finess=organisation.finess)
    metadata = _metadata(ports, found, signed_at)
    structured_dlu = not shared and "dlu_answers" in found.facts
    if structured_dlu:
        try:
            element = dlu.build_dlu(
                metadata,
                patient.to_cda(ports.ipp_root),
                author,
                found.facts["dlu_answers"],
                legal_authenticator=signer,
            )
        except dlu.DluInputError as error:
            raise DocumentsRefusal(
                "The DLU form's answers cannot make a DLU-EHPAD document",
                errors=[{"field": f"dlu.{error.field}", "message": error.message}],
            ) from None
    else:
        element = cda.build_cda_n1(
            metadata,
            patient.to_cda(ports.ipp_root),
            author,
            sealed_pdf,
            legal_authenticator=signer,
        )
    document_bytes = cda.to_bytes(element)
    if ports.conformance is not None:
        failed = await run_cpu(ports.conformance.check, document_bytes, dlu=structured_dlu)
        if failed:
            raise NotConformant(
                f"The CDA fails {len(failed)} CI-SIS check(s): nothing was signed",
                errors=failed,
            )
    signature: bytes | None
    if card is not None:
        assert ports.cps is not None
        signature = await run_cpu(ports.cps.seal_cda, card, document_bytes, signed_at=signed_at)
    else:
        signature = await run_cpu(ports.sealer.seal_cda, document_bytes, finess=organisation.finess)
    owner = _owner(found.id)
    pdf_artefact = (
        found.file
        if shared and found.file is not None
        else await _keep(ports, sealed_pdf, ports.kinds.pdf, PDF, owner)
    )
    cda_artefact = await _keep(ports, document_bytes, ports.kinds.cda, XML, owner)
    signature_artefact = (
        await _keep(ports, signature, ports.kinds.cda, XML, owner) if signature else None
    )
    sharing = Sharing(
        dmp_requested=wants_dmp,
        dmp_visibility=list(request.dmp_visibility),
        mssante=[r.model_dump(mode="json") for r in request.mssante],
    )
    signed = found.model_copy(
        update={
            "status": "signed",
            "signed_at": signed_at,
            "signed_by": caller.user,
            "signed_with": "cps" if card is not None else "cachet",
            "pdf": pdf_artefact,
            "cda": cda_artefact,
            "cda_signature": signature_artefact,
            "sharing": sharing,
            "updated_at": signed_at,
        }
    )
    async with ports.unit_of_work() as uow:
        version = await repository.save(uow.tx, signed, expected_version)
        await uow.emit(
            DocumentSigned(
                document_id=found.id,
                set_id=found.set_id,
                version=found.version,
                parent_document_id=found.parent_document_id,
                patient_id=found.patient_id,
                author_id=found.author_id,
                author_rpps=author.rpps,
                legal_authenticator_id=caller.user,
                type_code=found.type_code or "",
                class_code=found.class_code,
                title=found.title[:200],
                signed_at=signed_at,
                cda_sha256=cda_artefact.sha256,
                cda_size=cda_artefact.size,
                pdf_sha256=pdf_artefact.sha256,
                pdf_size=pdf_artefact.size,
                dmp=DmpIntent(requested=wants_dmp, visibility=list(request.dmp_visibility)),
                mssante=list(request.mssante),
            ),
            structure_id=found.structure_id,
            subject_id=str(found.set_id),
        )
        if found.parent_document_id is not None:
            await uow.emit(
                DocumentReplaced(
                    document_id=found.id,
                    replaced_document_id=found.parent_document_id,
                    set_id=found.set_id,
                    version=found.version,
                    patient_id=found.patient_id,
                ),
                structure_id=found.structure_id,
                subject_id=str(found.set_id),
            )
            parent = await uow.tx.get(repository.DOCUMENTS, str(found.parent_document_id))
            if parent is not None:
                replaced = Document.model_validate(parent.data)
                await repository.save(
                    uow.tx, replaced.model_copy(update={"replaced_by": found.id}), parent.version
                )
        await audit(uow, caller, found.patient_id, "update")
    return Saved(signed, version)


async def _signers_card(ports: Ports, access: CardAccess | None, rpps: str) -> CardBridgeKey | None:
    """The CPS in the workstation's reader, when it signs: it must be the signer's own card."""
    if access is None:
        return None
    if ports.cps is None:
        raise CpsNotConfigured(
            "Signing with a CPS is not available on this platform",
            errors=[{"field": "signer.mode", "message": "no card bridge configured"}],
        )
    card = await run_cpu(ports.cps.key, access)
    # A CPS's PSIdNat is the RPPS behind the identifier type 8.
    if card.ps_id_nat not in (f"8{rpps}", rpps):
        raise AccessDenied(
            "The CPS in the reader is not the signer's own card: nothing was signed",
            errors=[{"field": "signer", "message": "the card belongs to another professional"}],
        )
    return card


def _shareable(found: Document) -> None:
    """A received document is shared as a CDA N1: a PDF, with a type the CDA can carry."""
    if found.file is None or found.file.media_type != PDF:
        raise DocumentsRefusal(
            "Only a received PDF is shared (wrapped in a CDA N1)",
            errors=[{"field": "file", "message": "not a PDF"}],
        )
    if found.type_code is None or found.type_code not in cda.DOCUMENT_TYPES:
        raise DocumentsRefusal(
            "A shared document needs a document type the CDA carries",
            errors=[{"field": "type_code", "message": f"one of {', '.join(cda.DOCUMENT_TYPES)}"}],
        )
    if "patient" not in found.facts:
        raise DocumentsRefusal("The document names no patient facts: attach it again")


async def new_version(ports: Ports, caller: Caller, document_id: uuid.UUID) -> Saved:
    """A draft replacing a signed document: same set, version + 1, the signed one as parent.

    At most one per signed document (claimed in the write); abandoning it frees the claim.
    """
    found, _ = await document(ports, caller, document_id)
    if found.status != "signed" or not found.is_produced:
        raise WrongState(found.status, "given a new version (only a signed document can)")
    if found.replaced_by is not None:
        raise ConflictError(
            "A later version already replaced this document",
            errors=[{"field": "document_id", "message": f"replaced by {found.replaced_by}"}],
        )
    now = ports.clock()
    draft = found.model_copy(
        update={
            "id": uuid.uuid4(),
            "status": "draft",
            "version": found.version + 1,
            "parent_document_id": found.id,
            "author_id": caller.user,
            "created_at": now,
            "updated_at": now,
            "document_date": now.date(),
            "finalized_at": None,
            "finalized_by": None,
            "signed_at": None,
            "signed_by": None,
            "pdf": None,
            "cda": None,
            "cda_signature": None,
            "sharing": None,
            "replaced_by": None,
        }
    )
    async with ports.unit_of_work() as uow:
        try:
            await repository.claim(uow.tx, repository.REPLACEMENTS, str(found.id), draft.id)
        except repository.AlreadyClaimed as taken:
            raise ConflictError(
                "A new version of this document is already being written",
                errors=[{"field": "document_id", "message": f"draft {taken.owner}"}],
            ) from None
        version = await repository.add(uow.tx, draft)
        await audit(uow, caller, found.patient_id, "create")
    return Saved(draft, version)


async def verification(
    ports: Ports, caller: Caller, document_id: uuid.UUID
) -> tuple[Document, Verification]:
    """The seals of a signed document's CDA and PDF checked again, and their stored hashes."""
    found, _ = await document(ports, caller, document_id)
    if found.status != "signed" or found.cda is None or found.pdf is None:
        raise WrongState(found.status, "verified (only a signed document is)")
    problems: list[str] = []
    try:
        cda_bytes = await ports.blobs.read(found.cda.sha256)
        pdf_bytes = await ports.blobs.read(found.pdf.sha256)
        signature = (
            await ports.blobs.read(found.cda_signature.sha256) if found.cda_signature else None
        )
    except BlobCorrupted as error:
        problems.append(str(error))
        result = Verification(cda_valid=False, pdf_valid=False, sealed=True, problems=problems)
    else:
        sealed_pdf = pdf_bytes if found.is_produced else None
        if found.signed_with == "cps" and ports.cps is not None:
            # The signer's CPS sealed: verified to the CPS trust anchors, not the cachet's.
            result = await run_cpu(ports.cps.verify, cda_bytes, sealed_pdf, cda_signature=signature)
        else:
            result = await run_cpu(
                ports.sealer.verify, cda_bytes, sealed_pdf, cda_signature=signature
            )
    async with ports.unit_of_work() as uow:
        await audit(uow, caller, found.patient_id, "read")
    return found, result
