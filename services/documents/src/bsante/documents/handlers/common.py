"""What every use case of the documents service shares: its ports, the caller, lookups, audit."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from bsante.chassis.auth import Principal
from bsante.chassis.blobs import BlobKind, BlobStore
from bsante.chassis.messaging import UnitOfWork
from bsante.chassis.store import Store
from bsante.contracts.events import AccessAction
from bsante.documents import repository
from bsante.documents.cps import CpsSigning
from bsante.documents.domain import Document, NoSuchDocument
from bsante.documents.editor import EditorLimits
from bsante.documents.sealing import Sealer
from bsante.documents.sources import Sources

UnitOfWorkFactory = Callable[[], AbstractAsyncContextManager[UnitOfWork]]

PDF = "application/pdf"
XML = "application/xml"


def _utc_now() -> datetime:
    return datetime.now(UTC)


class Conformance(Protocol):
    """The CI-SIS check of a CDA before it is signed: failed checks, empty when it passes
    (blocking: run on the CPU pool). `dlu`: the DLU-EHPAD schematron too."""

    def check(self, cda: bytes, *, dlu: bool = False) -> list[dict[str, str]]: ...


@dataclass(frozen=True)
class BlobKinds:
    pdf: BlobKind
    cda: BlobKind
    received: BlobKind


@dataclass(frozen=True)
class Ports:
    store: Store
    unit_of_work: UnitOfWorkFactory
    blobs: BlobStore
    sources: Sources
    sealer: Sealer
    conformance: Conformance | None
    kinds: BlobKinds
    # The signer's own CPS through the card bridge (None: only the cachet seals).
    cps: CpsSigning | None = None
    limits: EditorLimits = EditorLimits()
    id_root: str = "1.2.250.1.999.1.1"
    ipp_root: str = "1.2.250.1.999.1.2"
    clock: Callable[[], datetime] = field(default=_utc_now)


@dataclass(frozen=True)
class Caller:
    principal: Principal

    @property
    def structure(self) -> str:
        return self.principal.acting_structure

    @property
    def user(self) -> str:
        return self.principal.user_id


async def document(ports: Ports, caller: Caller, document_id: uuid.UUID) -> tuple[Document, int]:
    """The acting structure's document; another structure's answers 404 (nothing leaks)."""
    found = await repository.get(ports.store, caller.structure, str(document_id))
    if found is None:
        raise NoSuchDocument()
    return found


async def audit(
    uow: UnitOfWork,
    caller: Caller,
    patient_id: uuid.UUID | str,
    action: AccessAction,
    *,
    service_client: str | None = None,
) -> None:
    await uow.audit(
        user_id=caller.user,
        acting_structure=caller.structure,
        patient_id=str(patient_id),
        action=action,
        resource="document",
        service_client=service_client,
    )


async def audited(
    ports: Ports, caller: Caller, patient_id: uuid.UUID | str, action: AccessAction = "read"
) -> None:
    async with ports.unit_of_work() as uow:
        await audit(uow, caller, patient_id, action)


def json_of(model: Any) -> dict[str, Any]:
    data: dict[str, Any] = model.model_dump(mode="json")
    return data
