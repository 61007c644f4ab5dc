"""SLA figures: monthly compliance for 100 000 synthetic tickets over a year, on the contract's
calendars (service hours with French holidays, 24/7, working days)."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

from bsante.sla_monitor.contract.availability import (
    Period,
    Sample,
    availability_report,
    burn_rates,
    firing,
    timeline,
)
from bsante.sla_monitor.contract.compliance import compliance
from bsante.sla_monitor.contract.indicators import Calendars, Category, Phase, Priority
from bsante.sla_monitor.contract.tickets import Ticket

TICKETS = 100_000
YEAR_START = datetime(2027, 1, 1, tzinfo=UTC)
YEAR = timedelta(days=365)
M = timedelta(minutes=1)


def synthetic_tickets(count: int, calendars: Calendars, seed: int = 14) -> list[Ticket]:
    """Tickets spread over a year, walked through their life with random (seeded) delays."""
    rng = random.Random(seed)
    out: list[Ticket] = []
    categories = (Category.INCIDENT, Category.REQUEST, Category.CARD_READER_REPLACEMENT)
    for n in range(count):
        opened = YEAR_START + timedelta(seconds=rng.randrange(int(YEAR.total_seconds())))
        category = rng.choices(categories, (6, 3, 1))[0]
        priority = rng.choices(tuple(Priority), (1, 3, 6))[0]
        phase = rng.choice(tuple(Phase)) if category is Category.CARD_READER_REPLACEMENT else None
        t = Ticket(f"t-{n}", f"s-{n % 50}", category, priority, opened, calendars, phase)
        at = opened + rng.expovariate(1 / 20) * M
        t.take_in(at)
        if category is Category.CARD_READER_REPLACEMENT:
            at += rng.expovariate(1 / 10) * M
            t.announce(at)
        if rng.random() < 0.2:
            at += rng.expovariate(1 / 120) * M
            t.wait_for_customer(at)
            at += rng.expovariate(1 / 600) * M
            t.customer_replied(at)
        at += rng.expovariate(1 / 60) * M
        t.intervene(at)
        if category is not Category.CARD_READER_REPLACEMENT:
            at += rng.expovariate(1 / 90) * M
            needs_level2 = rng.random() < 0.15
            t.qualify(at, needs_level2=needs_level2)
            if needs_level2:
                at += rng.expovariate(1 / 10) * M
                t.escalate(at)
            if rng.random() < 0.05:
                t.change_priority(at, rng.choice(tuple(Priority)))
            at += rng.expovariate(1 / 600) * M
            t.resolve(at)
            t.close(at + timedelta(days=1))
        out.append(t)
    return out


def test_compliance_of_100k_tickets_over_a_year(benchmark: Any) -> None:
    calendars = Calendars()
    tickets = synthetic_tickets(TICKETS, calendars)
    at = YEAR_START + YEAR + timedelta(days=30)
    report = benchmark.pedantic(compliance, args=(tickets, at), rounds=3, iterations=1)
    months = {month for month, _ in report}
    assert {f"2027-{m:02d}" for m in range(1, 13)} <= months
    measured = sum(row.measured for row in report.values())
    assert measured > 2 * TICKETS
    benchmark.extra_info["clocks_measured"] = measured
    benchmark.extra_info["breaches"] = sum(len(row.breaches) for row in report.values())


def test_building_20k_tickets_through_the_state_machine(benchmark: Any) -> None:
    calendars = Calendars()
    tickets = benchmark.pedantic(synthetic_tickets, args=(20_000, calendars), rounds=1)
    assert len(tickets) == 20_000


def test_availability_and_burn_rates_of_a_month_of_30_second_probes(benchmark: Any) -> None:
    rng = random.Random(14)
    start = datetime(2027, 3, 1, tzinfo=UTC)
    samples = []
    t = start
    while t < start + timedelta(days=31):
        samples.append(Sample(t, rng.random() > 0.002))
        t += timedelta(seconds=30)
    calendars = Calendars()
    end = start + timedelta(days=31)

    def run() -> int:
        line = timeline(samples, end)
        days = availability_report(line, calendars, Period.DAY, start, end)
        fired = firing(burn_rates(line, end))
        return len(days) + len(fired)

    assert benchmark(run) >= 31


def test_probe_cycle_of_the_embedded_platform(benchmark: Any, tmp_path: Any) -> None:
    """One monitoring cycle: every readiness probe and the synthetic login and patient read
    through the in-process transports, the stored spans, incidents and escalation checks."""
    import asyncio
    import os

    from asgi_lifespan import LifespanManager

    from bsante.gateway.app import build_embedded
    from bsante.gateway.settings import GatewaySettings
    from bsante.platform.embedded import build_services

    os.environ["SLA_MONITOR_PROBES_ENABLED"] = "false"
    os.environ["SLA_MONITOR_SYNTHETIC_USERNAME"] = "admin@tilleuls.demo"
    os.environ["SLA_MONITOR_SYNTHETIC_PASSWORD"] = "Tilleuls-Demo-2026"
    loop = asyncio.new_event_loop()
    try:
        services = build_services(tmp_path)

        async def start() -> LifespanManager:
            manager = LifespanManager(build_embedded(GatewaySettings(), services))
            await manager.__aenter__()
            return manager

        manager = loop.run_until_complete(start())
        monitor = services["sla-monitor"].app.state.monitor
        report = benchmark.pedantic(
            lambda: loop.run_until_complete(monitor.cycle()), rounds=20, iterations=1
        )
        assert all(r.up for r in report.results)
        benchmark.extra_info["targets"] = len(report.results)
        loop.run_until_complete(manager.__aexit__(None, None, None))
    finally:
        for name in (
            "SLA_MONITOR_PROBES_ENABLED",
            "SLA_MONITOR_SYNTHETIC_USERNAME",
            "SLA_MONITOR_SYNTHETIC_PASSWORD",
        ):
            os.environ.pop(name, None)
        loop.close()


def test_reading_10k_stored_tickets(benchmark: Any) -> None:
    """Per stored ticket: replaying its steps (what a new step does) and reading its stored
    clocks (what the compliance route does)."""
    from bsante.sla_monitor.records import StoredSubject, step, ticket_json, ticket_of

    calendars = Calendars()
    docs = []
    for t in synthetic_tickets(10_000, calendars, seed=15):
        steps = [step(s.action, s.at, **_args(t, s)) for s in t.history[1:]]
        initial = t.history[0].priority
        docs.append(
            ticket_json(
                t,
                steps=steps,
                initial_priority=initial,
                alsace_moselle=False,
                summary="",
                opened_by="u",
                incident_id=None,
                fired=[],
                at=YEAR_START + YEAR,
            )
        )

    def replay_and_read() -> int:
        replayed = [ticket_of(d) for d in docs]
        read = [StoredSubject.of(d) for d in docs]
        # The stored clocks are the replayed ones: no deadline moves when read back.
        assert [r.clocks for r in read] == [t.clocks for t in replayed]
        return len(read)

    assert benchmark.pedantic(replay_and_read, rounds=1, iterations=1) == 10_000


def test_compliance_of_100k_stored_tickets(benchmark: Any) -> None:
    """The compliance route's work for a year of 100 000 stored tickets: read the stored
    clocks, then judge them (the route reads one month; this is the whole year)."""
    from bsante.sla_monitor.records import StoredSubject, ticket_json

    calendars = Calendars()
    at = YEAR_START + YEAR + timedelta(days=30)
    docs = [
        ticket_json(
            t,
            steps=[],
            initial_priority=t.history[0].priority,
            alsace_moselle=False,
            summary="",
            opened_by="u",
            incident_id=None,
            fired=[],
            at=at,
        )
        for t in synthetic_tickets(TICKETS, calendars)
    ]

    def run() -> int:
        report = compliance([StoredSubject.of(d) for d in docs], at)
        return sum(row.measured for row in report.values())

    measured = benchmark.pedantic(run, rounds=1, iterations=1)
    assert measured > 2 * TICKETS


def _args(ticket: Ticket, s: Any) -> dict[str, Any]:
    if s.action == "qualify":
        return {"needs_level2": ticket.needs_level2}
    if s.action == "change_priority":
        return {"priority": s.priority.value}
    return {}
