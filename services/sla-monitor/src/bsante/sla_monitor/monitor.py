"""The monitoring cycle the supervised task runs: probe, store, open or close incidents, fire the
escalation levels of tickets and incidents, and publish the burn rates.

Probes (external calls) run before any transaction; their results are then written in one.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from bsante.chassis.messaging import Messaging, UnitOfWork
from bsante.contracts.topics import dlq
from bsante.sla_monitor import incidents, metrics, probes, support
from bsante.sla_monitor.contract.availability import (
    SRE_WORKBOOK,
    Timeline,
    burn_rates,
    firing,
    platform_timeline,
)


class DeadLetterCounter(Protocol):
    async def read(self, topic: str) -> list[Any]: ...


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass
class CycleReport:
    at: datetime
    results: list[probes.Result]
    opened: list[str] = field(default_factory=list)
    closed: list[str] = field(default_factory=list)
    alerts: int = 0


def rule_name(rule: Any) -> str:
    return (
        f"{rule.action.value}_{int(rule.long.total_seconds())}s_{int(rule.short.total_seconds())}s"
    )


def health_only(lines: dict[str, Timeline]) -> list[Timeline]:
    return [line for name, line in lines.items() if name.startswith("health:")]


@dataclass
class Monitor:
    messaging: Messaging
    prober: probes.Prober
    thresholds: incidents.Thresholds
    ops_structure: str
    dead_letters: DeadLetterCounter | None = None
    dead_letter_topics: tuple[str, ...] = ()
    clock: Callable[[], datetime] = utcnow
    _started: bool = False

    async def tick(self) -> None:
        """The supervised task's body. Its first run comes while the platform is still starting
        its services one by one: it is skipped, so startup is not counted as an outage."""
        if not self._started:
            self._started = True
            return
        await self.cycle()

    async def cycle(self, at: datetime | None = None) -> CycleReport:
        now = at or self.clock()
        results = await self.prober.run(now)
        counts: dict[str, int] = {}
        if self.dead_letters is not None:
            for topic in self.dead_letter_topics:
                counts[topic] = len(await self.dead_letters.read(dlq(topic)))
        jobs = await incidents.job_conditions(self.messaging.store, now, self.thresholds)
        report = CycleReport(now, results)

        async def block(uow: UnitOfWork) -> dict[str, list[str]]:
            states = await probes.record(uow.tx, results)
            conditions = incidents.probe_conditions(states, self.thresholds.failed_probes)
            conditions += jobs
            conditions += await incidents.dead_letter_conditions(uow, counts, now, self.thresholds)
            return await incidents.reconcile(uow, conditions, now, self.ops_structure)

        changes = await self.messaging.run_unit_of_work(block)
        report.opened, report.closed = changes["opened"], changes["closed"]
        report.alerts = await support.watch_tickets(self.messaging, now)
        report.alerts += await incidents.watch_incidents(self.messaging, now, self.ops_structure)
        incidents.refresh_gauge(await incidents.open_incidents(self.messaging.store))
        await self.publish_burn_rates(now)
        return report

    async def burn(self, now: datetime) -> tuple[dict[timedelta, float | None], list[Any]]:
        longest = max(r.long for r in SRE_WORKBOOK)
        lines = health_only(await probes.timelines(self.messaging.store, now - longest, now))
        if not lines:
            return {}, []
        rates = burn_rates(platform_timeline(lines), now)
        return rates, firing(rates)

    async def publish_burn_rates(self, now: datetime) -> None:
        rates, fired = await self.burn(now)
        for window, rate in rates.items():
            metrics.BURN_RATE.labels(window_label(window)).set(rate if rate is not None else 0)
        names = {rule_name(r) for r in fired}
        for rule in SRE_WORKBOOK:
            metrics.BURN_ALERT.labels(rule_name(rule)).set(1 if rule_name(rule) in names else 0)


def window_label(window: timedelta) -> str:
    minutes = int(window.total_seconds() // 60)
    if minutes % 1440 == 0:
        return f"{minutes // 1440}d"
    if minutes % 60 == 0:
        return f"{minutes // 60}h"
    return f"{minutes}m"
