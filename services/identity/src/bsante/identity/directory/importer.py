"""Import of the Annuaire Santé extraction (PS_LibreAcces personne-activité) into the directory.

Two streaming passes over the file, memory independent of its size:

1. validate: the header, then every line; a file whose header is wrong, with no valid line, or
   with more rejected lines than `max_reject_ratio` is refused before anything is written;
2. write: batches of lines, one store transaction per batch. Documents are keyed by national
   identifiers, so a re-import updates them and never duplicates. Each batch first reads the
   documents it touches (one query per collection), then inserts or updates them at the version
   read; a concurrent change makes the batch start again.

A failure in pass 2 (store down, process killed) leaves the batches already committed; running
the same import again completes it, since the import is idempotent.
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

import structlog

from bsante.chassis.errors import RuleViolation
from bsante.chassis.messaging import Messaging, UnitOfWork
from bsante.chassis.store import ConcurrencyConflict, DuplicateDocument
from bsante.contracts.events import (
    DIRECTORY_TENANT,
    DirectoryImported,
    ProfessionalRegistered,
    StructureRegistered,
)
from bsante.identity.directory import model
from bsante.identity.directory.annuaire import (
    AnnuaireHeaderError,
    PersonActivity,
    Rejection,
    parse_personne_activite,
)

log = structlog.get_logger(__name__)

MAX_LISTED_REJECTIONS = 1000
IMPORTS = "directory_imports"


class AnnuaireImportRefused(RuleViolation):
    """The file is not an importable extraction; nothing was written."""

    kind = "annuaire-import-refused"


@dataclass
class ImportReport:
    import_id: str
    file_name: str
    status: str = "running"
    lines: int = 0
    accepted: int = 0
    rejected: int = 0
    rejected_by_reason: dict[str, int] = field(default_factory=dict)
    rejections: list[dict[str, Any]] = field(default_factory=list)
    professionals_created: int = 0
    professionals_updated: int = 0
    structures_created: int = 0
    structures_updated: int = 0
    activities_upserted: int = 0
    started_at: str = ""
    finished_at: str | None = None
    duration_seconds: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


@contextmanager
def _open(path: Path) -> Iterator[IO[bytes]]:
    with path.open("rb") as stream:
        yield stream


def validate(path: Path, report: ImportReport, *, max_reject_ratio: float) -> None:
    """Pass 1: parse everything, count and list rejections; refuse an unimportable file."""
    reasons: Counter[str] = Counter()
    with _open(path) as stream:
        try:
            results = parse_personne_activite(stream)
        except AnnuaireHeaderError as error:
            raise AnnuaireImportRefused(
                f"Not an Annuaire Santé personne-activité file: {error}",
                errors=[
                    *(
                        {"field": "header", "message": f"missing column: {c}"}
                        for c in sorted(error.missing)
                    ),
                    *(
                        {"field": "header", "message": f"duplicated column: {c}"}
                        for c in sorted(error.duplicated)
                    ),
                ]
                or [{"field": "header", "message": str(error)}],
            ) from None
        for result in results:
            report.lines += 1
            if isinstance(result, Rejection):
                report.rejected += 1
                reasons[result.reason.value] += 1
                if len(report.rejections) < MAX_LISTED_REJECTIONS:
                    report.rejections.append(
                        {
                            "line": result.line_number,
                            "reason": result.reason.value,
                            "detail": result.detail,
                        }
                    )
            else:
                report.accepted += 1
    report.rejected_by_reason = dict(reasons)
    if report.accepted == 0:
        raise AnnuaireImportRefused(
            "The file holds no valid line; nothing was imported",
            errors=[{"field": "file", "message": f"{report.rejected} lines rejected"}],
        )
    if report.rejected > max_reject_ratio * report.lines:
        raise AnnuaireImportRefused(
            f"{report.rejected} of {report.lines} lines are invalid (more than "
            f"{max_reject_ratio:.0%}); nothing was imported",
            errors=[{"field": "file", "message": f"{n} lines: {r}"} for r, n in reasons.items()],
        )


async def import_annuaire(
    messaging: Messaging,
    path: Path,
    *,
    file_name: str | None = None,
    batch_size: int = 2000,
    max_reject_ratio: float = 0.5,
    source: str = "annuaire",
    entry_events: bool = False,
) -> ImportReport:
    """Validate then import `path`; raise AnnuaireImportRefused (nothing written) if unfit.

    One `DirectoryImported` event sums the import up. `entry_events` also raises
    `ProfessionalRegistered` / `StructureRegistered` per new entry: off by default, as the
    national extraction holds millions of lines that no consumer needs one by one.
    """
    started = datetime.now(UTC)
    report = ImportReport(
        import_id=str(uuid.uuid4()),
        file_name=file_name or path.name,
        started_at=started.isoformat(),
    )
    validate(path, report, max_reject_ratio=max_reject_ratio)
    imported_at = started.isoformat()
    batch: list[PersonActivity] = []
    with _open(path) as stream:
        for result in parse_personne_activite(stream):
            if isinstance(result, PersonActivity):
                batch.append(result)
                if len(batch) >= batch_size:
                    await _write_batch(messaging, batch, report, source, imported_at, entry_events)
                    batch = []
        if batch:
            await _write_batch(messaging, batch, report, source, imported_at, entry_events)
    finished = datetime.now(UTC)
    report.status = "done"
    report.finished_at = finished.isoformat()
    report.duration_seconds = round((finished - started).total_seconds(), 3)
    async with messaging.unit_of_work() as uow:
        await uow.tx.insert(IMPORTS, report.import_id, report.to_json())
        await uow.emit(
            DirectoryImported(
                import_id=report.import_id,
                lines=report.lines,
                professionals_created=report.professionals_created,
                professionals_updated=report.professionals_updated,
                structures_created=report.structures_created,
                activities_upserted=report.activities_upserted,
                rejected=report.rejected,
            ),
            structure_id=DIRECTORY_TENANT,
            subject_id=report.import_id,
        )
    log.info(
        "annuaire_imported",
        import_id=report.import_id,
        lines=report.lines,
        rejected=report.rejected,
        duration_seconds=report.duration_seconds,
    )
    return report


async def _write_batch(
    messaging: Messaging,
    batch: list[PersonActivity],
    report: ImportReport,
    source: str,
    imported_at: str,
    entry_events: bool,
) -> None:
    professionals: dict[str, dict[str, Any]] = {}
    structures: dict[str, dict[str, Any]] = {}
    activities: dict[str, dict[str, Any]] = {}
    kw = {"source": source, "import_id": report.import_id, "imported_at": imported_at}
    for line in batch:
        doc = model.professional_doc(line, **kw)
        key = doc["ps_id_nat"]
        professionals[key] = (
            model.merge_professional(professionals[key], doc) if key in professionals else doc
        )
        for structure in model.structure_docs(line, **kw):
            sid = structure["id"]
            structures[sid] = (
                model.merge_structure(structures[sid], structure)
                if sid in structures
                else structure
            )
        activity = model.activity_doc(line, **kw)
        activities[activity["id"]] = activity

    for attempt in range(3):
        stats = Counter[str]()
        store = messaging.store
        old_professionals = await store.get_many(model.PROFESSIONALS, list(professionals))
        old_structures = await store.get_many(model.STRUCTURES, list(structures))
        old_activities = await store.get_many(model.ACTIVITIES, list(activities))
        try:
            async with messaging.unit_of_work() as uow:
                for pid, doc in professionals.items():
                    old = old_professionals.get(pid)
                    if old is None:
                        await uow.tx.insert(model.PROFESSIONALS, pid, doc)
                        if entry_events:
                            await registered_professional(uow, doc, source)
                        stats["professionals_created"] += 1
                    else:
                        merged = model.merge_professional(old.data, doc)
                        await uow.tx.update(model.PROFESSIONALS, pid, merged, old.version)
                        stats["professionals_updated"] += 1
                for sid, doc in structures.items():
                    old = old_structures.get(sid)
                    if old is None:
                        await uow.tx.insert(model.STRUCTURES, sid, doc)
                        if entry_events:
                            await registered_structure(uow, doc, source)
                        stats["structures_created"] += 1
                    elif not old.data.get("tenant"):
                        merged = model.merge_structure(old.data, doc)
                        await uow.tx.update(model.STRUCTURES, sid, merged, old.version)
                        stats["structures_updated"] += 1
                for aid, doc in activities.items():
                    old = old_activities.get(aid)
                    if old is None:
                        await uow.tx.insert(model.ACTIVITIES, aid, doc)
                    else:
                        await uow.tx.update(model.ACTIVITIES, aid, doc, old.version)
                    stats["activities_upserted"] += 1
        except (ConcurrencyConflict, DuplicateDocument):
            if attempt == 2:
                raise
            log.info("annuaire_batch_conflict", attempt=attempt + 1)
            continue
        for name, value in stats.items():
            setattr(report, name, getattr(report, name) + value)
        return


async def registered_professional(uow: UnitOfWork, doc: dict[str, Any], source: str) -> None:
    await uow.emit(
        ProfessionalRegistered(
            ps_id_nat=doc["ps_id_nat"],
            rpps=doc["rpps"],
            adeli=doc["adeli"],
            profession_code=doc["profession_code"],
            source=source,
        ),
        structure_id=DIRECTORY_TENANT,
        subject_id=doc["ps_id_nat"],
    )


async def registered_structure(uow: UnitOfWork, doc: dict[str, Any], source: str) -> None:
    await uow.emit(
        StructureRegistered(
            structure_id=doc["id"],
            finess=doc.get("finess"),
            finess_kind=doc.get("finess_kind"),
            tenant=bool(doc.get("tenant")),
            source=source,
        ),
        structure_id=DIRECTORY_TENANT,
        subject_id=doc["id"],
    )
