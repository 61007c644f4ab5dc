"""The directory of professionals and structures: search (any signed-in user), registration and
Annuaire Santé import (directory managers)."""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request, Response
from pydantic import BaseModel, Field, model_validator

from bsante.chassis.api import ServiceDep
from bsante.chassis.auth import CurrentPrincipal, Principal, allowed
from bsante.chassis.errors import NotFoundError
from bsante.chassis.openapi import creates
from bsante.chassis.text import SafeText
from bsante.contracts.permissions import Action
from bsante.identity.api.deps import (
    ClockDep,
    Limit,
    Offset,
    PageInfo,
    SettingsDep,
    UnitOfWorkDep,
)
from bsante.identity.directory import model, repository
from bsante.identity.directory.identifiers import (
    PSIDNAT_OID,
    RPPS,
    PSIdNat,
)
from bsante.identity.directory.importer import IMPORTS, import_annuaire
from bsante.identity.handlers import directory as handlers

router = APIRouter(prefix="/directory", tags=["directory"])
Manager = Annotated[Principal, allowed(Action.MANAGE_DIRECTORY)]


class Specialty(BaseModel):
    type: str | None = None
    code: str
    label: str | None = None


class SpecialtyIn(BaseModel):
    type: SafeText | None = Field(None, max_length=20)
    code: SafeText = Field(min_length=1, max_length=20)
    label: SafeText | None = Field(None, max_length=200)


class ProfessionalOut(BaseModel):
    ps_id_nat: str = Field(description="8 + RPPS or 0 + ADELI")
    ps_id_nat_oid: str = PSIDNAT_OID
    rpps: str | None
    adeli: str | None
    civility: str | None = None
    last_name: str
    first_name: str | None
    profession_code: str | None = Field(description="TRE_G15")
    profession_label: str | None = None
    specialties: list[Specialty] = []
    mssante: list[str] = []
    city: str | None = None
    source: str


class ActivityOut(BaseModel):
    id: str
    ps_id_nat: str
    profession_code: str | None
    specialty_code: str | None
    practice_mode_code: str | None
    practice_mode_label: str | None
    structure_id: str | None = Field(description="StructIdNat of the FINESS site, if any")
    site_name: str | None
    finess_site: str | None
    finess_ej: str | None
    siret: str | None
    postal_code: str | None
    city: str | None
    mssante: str | None


class ProfessionalDetail(ProfessionalOut):
    activities: list[ActivityOut]


class ProfessionalPage(PageInfo):
    items: list[ProfessionalOut]


class StructureOut(BaseModel):
    id: str
    struct_id_nat_oid: str | None = None
    finess: str | None = None
    finess_kind: Literal["EJ", "ET"] | None = None
    legal_entity: str | None = None
    name: str | None = None
    siret: str | None = None
    postal_code: str | None = None
    city: str | None = None
    tenant: bool = False


class StructureDetail(StructureOut):
    activities: list[ActivityOut]


class StructurePage(PageInfo):
    items: list[StructureOut]


def _professional(data: dict[str, Any]) -> ProfessionalOut:
    return ProfessionalOut.model_validate(data, from_attributes=False)


@router.get("/professionals", response_model=ProfessionalPage)
async def search_professionals(
    _: CurrentPrincipal,
    svc: ServiceDep,
    name: Annotated[str | None, Query(max_length=100, description="Start of 'LAST first'")] = None,
    rpps: Annotated[str | None, Query(pattern=r"^[0-9]{11}$")] = None,
    profession: Annotated[str | None, Query(max_length=10, description="TRE_G15 code")] = None,
    city: Annotated[
        str | None, Query(max_length=100, description="Main activity's commune")
    ] = None,
    limit: Limit = 20,
    offset: Offset = 0,
) -> ProfessionalPage:
    """Search by name (accent- and case-insensitive prefix), RPPS, profession, city; paginated."""
    page = await repository.search_professionals(
        svc.store,
        name=name,
        rpps=rpps,
        profession=profession,
        city=city,
        limit=limit,
        offset=offset,
    )
    return ProfessionalPage(
        items=[_professional(d.data) for d in page.items],
        total=page.total,
        limit=limit,
        offset=offset,
    )


class MssRecipientOut(BaseModel):
    """An MSSanté address to send a document to (what the documents service puts in
    `DocumentSigned.mssante`)."""

    kind: Literal["professional"] = "professional"
    address: str
    directory_id: str = Field(description="PSIdNat (8 + RPPS / 0 + ADELI)")
    rpps: str | None
    last_name: str
    first_name: str | None
    profession_label: str | None = None
    city: str | None = None


class MssRecipientPage(BaseModel):
    items: list[MssRecipientOut]


@router.get("/mssante-recipients", response_model=MssRecipientPage)
async def search_mssante_recipients(
    _: Annotated[Principal, allowed(Action.SEND_MSSANTE)],
    svc: ServiceDep,
    name: Annotated[str | None, Query(max_length=100, description="Start of 'LAST first'")] = None,
    rpps: Annotated[str | None, Query(pattern=r"^[0-9]{11}$")] = None,
    city: Annotated[
        str | None, Query(max_length=100, description="Main activity's commune")
    ] = None,
    limit: Limit = 20,
) -> MssRecipientPage:
    """Professionals of the directory with an MSSanté address, by name, RPPS or city: one item
    per address (a professional may have several)."""
    page = await repository.search_professionals(
        svc.store, name=name, rpps=rpps, profession=None, city=city, limit=limit, offset=0
    )
    items: list[MssRecipientOut] = []
    for doc in page.items:
        data = doc.data
        for address in data.get("mssante") or []:
            items.append(
                MssRecipientOut(
                    address=address,
                    directory_id=data["ps_id_nat"],
                    rpps=data.get("rpps"),
                    last_name=data["last_name"],
                    first_name=data.get("first_name"),
                    profession_label=data.get("profession_label"),
                    city=data.get("city"),
                )
            )
    return MssRecipientPage(items=items[:limit])


def _ps_id_nat(identifier: str) -> str:
    """An RPPS (11 digits) or a PSIdNat (8 + RPPS / 0 + ADELI)."""
    try:
        if len(identifier) == 11 and identifier.isdigit():
            return RPPS(identifier).ps_id_nat.value
        return PSIdNat(identifier).value
    except ValueError:
        raise NotFoundError("No such professional") from None


@router.get("/professionals/{identifier}", response_model=ProfessionalDetail)
async def get_professional(
    identifier: str, _: CurrentPrincipal, svc: ServiceDep
) -> ProfessionalDetail:
    """A professional by RPPS or national id, with their activities."""
    ps_id_nat = _ps_id_nat(identifier)
    doc = await repository.get(svc.store, model.PROFESSIONALS, ps_id_nat)
    if doc is None:
        raise NotFoundError("No such professional")
    activities = await repository.activities(svc.store, "ps_id_nat", ps_id_nat)
    return ProfessionalDetail(
        **_professional(doc).model_dump(),
        activities=[ActivityOut.model_validate(a.data) for a in activities],
    )


class ProfessionalIn(BaseModel):
    rpps: str | None = Field(None, pattern=r"^[0-9]{11}$")
    adeli: str | None = Field(None, pattern=r"^[0-9A-Z]{9}$")
    civility: SafeText | None = Field(None, max_length=50)
    last_name: SafeText = Field(min_length=1, max_length=100)
    first_name: SafeText | None = Field(None, max_length=100)
    profession_code: str = Field(min_length=1, max_length=10, description="TRE_G15 code")
    profession_label: SafeText | None = Field(None, max_length=100)
    specialties: list[SpecialtyIn] = Field(default_factory=list, max_length=20)
    mssante: list[Annotated[SafeText, Field(max_length=200)]] = Field(
        default_factory=list, max_length=10, description="MSSanté addresses (…@….mssante.fr)"
    )
    city: SafeText | None = Field(None, max_length=100)

    @model_validator(mode="after")
    def _identifier(self) -> ProfessionalIn:
        if (self.rpps is None) == (self.adeli is None):
            raise ValueError("give exactly one of rpps, adeli")
        for address in self.mssante:
            if not address.lower().endswith(".mssante.fr") or "@" not in address:
                raise ValueError(f"not an MSSanté address: {address}")
        return self


@router.post("/professionals", status_code=201, response_model=ProfessionalOut)
async def register_professional(
    body: ProfessionalIn, _: Manager, uow: UnitOfWorkDep, clock: ClockDep, response: Response
) -> ProfessionalOut:
    """Register a professional by hand (e.g. not yet in the extraction).

    The national id (PSIdNat) is derived from the RPPS or ADELI, never typed.
    """
    doc = await handlers.register_professional(
        handlers.RegisterProfessional(
            rpps=body.rpps,
            adeli=body.adeli,
            civility=body.civility,
            last_name=body.last_name,
            first_name=body.first_name,
            profession_code=body.profession_code,
            profession_label=body.profession_label,
            specialties=[s.model_dump() for s in body.specialties],
            mssante=body.mssante,
            city=body.city,
        ),
        uow=uow,
        clock=clock,
    )
    response.headers["Location"] = f"professionals/{doc['ps_id_nat']}"
    return _professional(doc)


@router.get("/structures", response_model=StructurePage)
async def search_structures(
    _: CurrentPrincipal,
    svc: ServiceDep,
    name: Annotated[str | None, Query(max_length=100)] = None,
    finess: Annotated[str | None, Query(pattern=r"^[0-9]{2}[0-9]{7}$|^2[AB][0-9]{7}$")] = None,
    city: Annotated[str | None, Query(max_length=100)] = None,
    limit: Limit = 20,
    offset: Offset = 0,
) -> StructurePage:
    page = await repository.search_structures(
        svc.store, name=name, finess=finess, city=city, limit=limit, offset=offset
    )
    return StructurePage(
        items=[StructureOut.model_validate(d.data) for d in page.items],
        total=page.total,
        limit=limit,
        offset=offset,
    )


@router.get("/structures/{structure_id}", response_model=StructureDetail)
async def get_structure(structure_id: str, _: CurrentPrincipal, svc: ServiceDep) -> StructureDetail:
    """A structure by id (StructIdNat for FINESS structures), with the activities at that site."""
    doc = await repository.get(svc.store, model.STRUCTURES, structure_id)
    if doc is None:
        raise NotFoundError("No such structure")
    activities = await repository.activities(svc.store, "structure_id", structure_id)
    return StructureDetail(
        **StructureOut.model_validate(doc).model_dump(),
        activities=[ActivityOut.model_validate(a.data) for a in activities],
    )


class StructureIn(BaseModel):
    finess: str = Field(pattern=r"^(?:[0-9]{2}|2[AB])[0-9]{7}$")
    finess_kind: Literal["EJ", "ET"]
    legal_entity_finess: str | None = Field(None, pattern=r"^(?:[0-9]{2}|2[AB])[0-9]{7}$")
    name: SafeText = Field(min_length=1, max_length=200)
    siret: str | None = Field(None, pattern=r"^[0-9]{14}$")
    postal_code: str | None = Field(None, pattern=r"^[0-9]{5}$")
    city: SafeText | None = Field(None, max_length=100)


@router.post("/structures", status_code=201, response_model=StructureOut)
async def register_structure(
    body: StructureIn, _: Manager, uow: UnitOfWorkDep, clock: ClockDep, response: Response
) -> StructureOut:
    """Register a FINESS structure by hand; its id is the derived StructIdNat (1 + FINESS)."""
    doc = await handlers.register_structure(
        handlers.RegisterStructure(
            finess=body.finess,
            finess_kind=body.finess_kind,
            legal_entity_finess=body.legal_entity_finess,
            name=body.name,
            siret=body.siret,
            postal_code=body.postal_code,
            city=body.city,
        ),
        uow=uow,
        clock=clock,
    )
    response.headers["Location"] = f"structures/{doc['id']}"
    return StructureOut.model_validate(doc)


class Rejected(BaseModel):
    line: int
    reason: str
    detail: str


class ImportReportOut(BaseModel):
    import_id: str
    file_name: str
    status: str
    lines: int
    accepted: int
    rejected: int
    rejected_by_reason: dict[str, int]
    rejections: list[Rejected] = Field(description="The first 1000 rejected lines")
    professionals_created: int
    professionals_updated: int
    structures_created: int
    structures_updated: int
    activities_upserted: int
    started_at: str
    finished_at: str | None
    duration_seconds: float


@router.post(
    "/imports",
    status_code=201,
    response_model=ImportReportOut,
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"text/plain": {"schema": {"type": "string", "format": "binary"}}},
        },
        **creates("import_id", "/import_id"),
    },
)
async def import_extraction(
    request: Request, _: Manager, svc: ServiceDep, settings: SettingsDep, response: Response
) -> ImportReportOut:
    """Import a PS_LibreAcces personne-activité file sent as the raw body (UTF-8, `|`).

    Bodies are limited to MAX_BODY_BYTES (1 MiB): enough for an update or a region's extract.
    Import the full national file with `python -m bsante.identity.annuaire_import FILE`.
    A file that is not an extraction (header) or mostly invalid is refused and nothing is
    written (422); otherwise the report lists the rejected lines and why.
    """
    fd, name = tempfile.mkstemp(prefix="annuaire-", suffix=".txt")
    path = Path(name)
    try:
        with os.fdopen(fd, "wb") as spool:
            async for chunk in request.stream():
                spool.write(chunk)
        report = await import_annuaire(
            svc.messaging,
            path,
            file_name=request.headers.get("x-file-name", "upload")[:200],
            batch_size=settings.annuaire_batch_size,
            max_reject_ratio=settings.annuaire_max_reject_ratio,
        )
    finally:
        with contextlib.suppress(OSError):
            path.unlink()
    response.headers["Location"] = f"imports/{report.import_id}"
    return ImportReportOut.model_validate(report.to_json())


@router.get("/imports/{import_id}", response_model=ImportReportOut)
async def get_import(import_id: str, _: Manager, svc: ServiceDep) -> ImportReportOut:
    doc = await repository.get(svc.store, IMPORTS, import_id)
    if doc is None:
        raise NotFoundError("No such import")
    return ImportReportOut.model_validate(doc)
