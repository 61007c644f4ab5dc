"""Incidents: opened from failing conditions (probes, job failures, dead-letter growth), closed on
recovery, each with its 4-hour restoration clock started at the first failure.

A condition is computed by each source; `reconcile` opens what newly fails and closes what
recovered. At most one open incident per scope: the scope's claim document is inserted in the
same transaction as the incident, and removed in the one that closes it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from bsante.chassis.messaging import Messaging, UnitOfWork
from bsante.chassis.store import Index, Query, Store
from bsante.contracts.events import IncidentClosed, IncidentOpened, JobFailed
from bsante.sla_monitor import metrics
from bsante.sla_monitor.contract.clocks import due_alerts
from bsante.sla_monitor.contract.indicators import Category, Priority
from bsante.sla_monitor.records import INCIDENTS, OPEN_INCIDENTS, calendars, incident_of, iso
from bsante.sla_monitor.support import fire_alerts, open_ticket

JOB_FAILURES = "job_failures"
DEAD_LETTER_SAMPLES = "dead_letter_samples"
PLATFORM = "platform"
INDEXES: list[Index] = [
    Index(INCIDENTS, ("open", "opened_at")),
    Index(INCIDENTS, ("first_failed_at",)),
    # The open scopes are listed whole (few documents); this index backs that scan.
    Index(OPEN_INCIDENTS, ("incident_id",)),
    Index(JOB_FAILURES, ("failed_at",)),
]


@dataclass(frozen=True)
class Condition:
    scope: str
    source: str  # probe | job_failures | dead_letters
    priority: Priority
    failing: bool
    since: datetime | None = None  # the first failure, where the restoration clock starts


@dataclass(frozen=True)
class Thresholds:
    failed_probes: int = 3
    job_failures: int = 5
    dead_letters: int = 10
    window: timedelta = timedelta(minutes=15)


def probe_conditions(states: Mapping[str, Mapping[str, Any]], n: int) -> list[Condition]:
    """`platform` (bloquant) when every readiness probe fails or nobody can log in; otherwise
    one majeur condition per failing service or synthetic transaction."""

    def down(s: Mapping[str, Any]) -> bool:
        return not s["up"] and s["consecutive_failures"] >= n

    def since(group: Sequence[Mapping[str, Any]]) -> datetime:
        return min(datetime.fromisoformat(s["since"]) for s in group)

    health = [s for s in states.values() if s["kind"] == "health"]
    login = [s for s in states.values() if s["target"] == "synthetic:login"]
    platform_down = [s for s in health if down(s)] if health and all(map(down, health)) else []
    platform_down += [s for s in login if down(s)]
    out = [
        Condition(
            PLATFORM,
            "probe",
            Priority.BLOQUANT,
            bool(platform_down),
            since(platform_down) if platform_down else None,
        )
    ]
    for s in states.values():
        failing = down(s) and not platform_down
        out.append(
            Condition(
                s["target"],
                "probe",
                Priority.MAJEUR,
                failing,
                datetime.fromisoformat(s["since"]) if failing else None,
            )
        )
    return out


async def record_job_failure(uow: UnitOfWork, failure: JobFailed) -> None:
    await uow.tx.insert_if_absent(
        JOB_FAILURES,
        f"{failure.service}:{failure.job_id}",
        {"service": failure.service, "kind": failure.kind, "failed_at": iso(failure.failed_at)},
    )


async def job_conditions(store: Store, now: datetime, t: Thresholds) -> list[Condition]:
    """Per service whose jobs failed in the window: failing at `t.job_failures` failures."""
    docs = await store.find(
        JOB_FAILURES,
        Query(where={"failed_at": {"$gte": (now - t.window).isoformat()}}, limit=10_000),
    )
    by_service: dict[str, list[datetime]] = {}
    for d in docs:
        by_service.setdefault(d.data["service"], []).append(
            datetime.fromisoformat(d.data["failed_at"])
        )
    open_scopes = await open_incident_scopes(store)
    out = [
        Condition(
            f"jobs:{svc}", "job_failures", Priority.MAJEUR, len(times) >= t.job_failures, min(times)
        )
        for svc, times in by_service.items()
    ]
    seen = {c.scope for c in out}
    # An open job incident whose failures left the window has recovered.
    out += [
        Condition(scope, "job_failures", Priority.MAJEUR, False)
        for scope in open_scopes
        if scope.startswith("jobs:") and scope not in seen
    ]
    return out


async def dead_letter_conditions(
    uow: UnitOfWork, counts: Mapping[str, int], now: datetime, t: Thresholds
) -> list[Condition]:
    """Growth of each dead-letter topic over the window; failing at `t.dead_letters` new ones.
    The samples of the window are kept per topic (dead letters only grow until replayed)."""
    out: list[Condition] = []
    for topic, count in counts.items():
        doc = await uow.tx.get(DEAD_LETTER_SAMPLES, topic)
        samples: list[list[Any]] = list(doc.data["samples"]) if doc else []
        samples = [s for s in samples if datetime.fromisoformat(s[0]) >= now - t.window]
        samples.append([now.isoformat(), count])
        growth = count - min(c for _, c in samples)
        first_growth = next((s[0] for s in samples if s[1] > samples[0][1]), samples[-1][0])
        if doc is None:
            await uow.tx.insert(DEAD_LETTER_SAMPLES, topic, {"samples": samples})
        else:
            await uow.tx.update(DEAD_LETTER_SAMPLES, topic, {"samples": samples}, doc.version)
        out.append(
            Condition(
                f"dead_letters:{topic}",
                "dead_letters",
                Priority.MAJEUR,
                growth >= t.dead_letters,
                datetime.fromisoformat(first_growth),
            )
        )
    return out


async def open_incident_scopes(store: Store) -> list[str]:
    return [d.id for d in await store.find(OPEN_INCIDENTS, Query(limit=1000))]


async def reconcile(
    uow: UnitOfWork, conditions: Sequence[Condition], now: datetime, ops_structure: str
) -> dict[str, list[str]]:
    """Open an incident (and its ticket) per newly failing scope; close recovered ones."""
    opened: list[str] = []
    closed: list[str] = []
    for c in conditions:
        claim = await uow.tx.get(OPEN_INCIDENTS, c.scope)
        if c.failing and claim is None:
            first = c.since or now
            incident_id = f"{c.scope}@{first.isoformat()}"
            inserted = await uow.tx.insert_if_absent(
                OPEN_INCIDENTS, c.scope, {"incident_id": incident_id}
            )
            if inserted is None:
                continue
            incident = incident_of(
                {"id": incident_id, "first_failed_at": first.isoformat(), "priority": c.priority}
            )
            deadline = incident.clocks[0].deadline or now
            ticket = await open_ticket(
                uow,
                structure_id=ops_structure,
                category=Category.INCIDENT,
                priority=c.priority,
                summary=f"Incident {c.scope} ({c.source})",
                opened_by="sla-monitor",
                at=now,
                alsace_moselle=False,
                incident_id=incident_id,
            )
            await uow.tx.insert(
                INCIDENTS,
                incident_id,
                {
                    "id": incident_id,
                    "scope": c.scope,
                    "source": c.source,
                    "priority": c.priority.value,
                    "first_failed_at": first.isoformat(),
                    "opened_at": now.isoformat(),
                    "restoration_deadline": deadline.isoformat(),
                    "restored_at": None,
                    "open": True,
                    "ticket_id": ticket["id"],
                    "fired": [],
                },
            )
            await uow.emit(
                IncidentOpened(
                    incident_id=incident_id,
                    scope=c.scope,
                    source=c.source,
                    priority=c.priority.value,
                    first_failed_at=first,
                    opened_at=now,
                    restoration_deadline=deadline,
                ),
                structure_id=ops_structure,
                subject_id=incident_id,
            )
            opened.append(incident_id)
        elif not c.failing and claim is not None:
            incident_id = claim.data["incident_id"]
            await close(uow, incident_id, now, ops_structure)
            await uow.tx.delete(OPEN_INCIDENTS, c.scope, claim.version)
            closed.append(incident_id)
    return {"opened": opened, "closed": closed}


async def close(uow: UnitOfWork, incident_id: str, at: datetime, ops_structure: str) -> None:
    doc = await uow.tx.get(INCIDENTS, incident_id)
    if doc is None or not doc.data["open"]:
        return
    incident = incident_of({**doc.data, "restored_at": at.isoformat()})
    within = incident.clocks[0].outcome(calendars(False), at).value == "met"
    await uow.tx.update(
        INCIDENTS,
        incident_id,
        {**doc.data, "open": False, "restored_at": at.isoformat(), "within_target": within},
        doc.version,
    )
    await uow.emit(
        IncidentClosed(
            incident_id=incident_id,
            scope=doc.data["scope"],
            restored_at=at,
            within_restoration_target=within,
        ),
        structure_id=ops_structure,
        subject_id=incident_id,
    )


async def watch_incidents(messaging: Messaging, now: datetime, ops_structure: str) -> int:
    """Restoration levels (80 % spent, breached) of open incidents, fired once each."""
    count = 0
    for doc in await messaging.store.find(INCIDENTS, Query(where={"open": True}, limit=500)):
        incident = incident_of(doc.data)
        alerts = due_alerts(
            incident.id, incident.clocks, incident.calendars, now, doc.data["fired"]
        )
        if alerts:
            count += await fire_alerts(
                messaging,
                INCIDENTS,
                "incident",
                doc.id,
                ops_structure,
                alerts,
                incident.clocks,
                now,
            )
    return count


async def open_incidents(store: Store) -> list[dict[str, Any]]:
    return [
        d.data
        for d in await store.find(
            INCIDENTS, Query(where={"open": True}, order_by=[("opened_at", True)], limit=200)
        )
    ]


def refresh_gauge(incidents: Sequence[Mapping[str, Any]]) -> None:
    for p in Priority:
        metrics.INCIDENTS_OPEN.labels(p.value).set(
            sum(1 for i in incidents if i["priority"] == p.value)
        )
