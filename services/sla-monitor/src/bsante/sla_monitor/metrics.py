"""Prometheus metrics of the SLA monitor; histogram buckets sit exactly on the contract's
thresholds, so "share within target" is one bucket over the count."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

from bsante.sla_monitor.contract.clocks import Clock
from bsante.sla_monitor.contract.indicators import INDICATORS, Calendars

# Every target of the contract, in seconds (3 min … 4 working days), and the probe timeouts.
CONTRACT_BUCKETS: tuple[float, ...] = tuple(sorted({i.target.total_seconds() for i in INDICATORS}))
PROBE_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)

PROBES = Counter(
    "slamonitor_probes_total",
    "Probe runs by target, kind (health, synthetic) and outcome (success, failure)",
    ["target", "kind", "outcome"],
)
PROBE_UP = Gauge("slamonitor_probe_up", "1 when the last probe of the target succeeded", ["target"])
PROBE_DURATION = Histogram(
    "slamonitor_probe_duration_seconds", "Duration of one probe", ["target"], buckets=PROBE_BUCKETS
)
CLOCK_DURATION = Histogram(
    "slamonitor_clock_duration_seconds",
    "Business time a stopped contract clock consumed, on its own calendar",
    ["indicator", "priority", "calendar"],
    buckets=CONTRACT_BUCKETS,
)
TICKETS_OPENED = Counter(
    "slamonitor_tickets_opened_total", "Support tickets opened", ["category", "priority"]
)
BREACHES = Counter("slamonitor_sla_breaches_total", "Contract clocks breached", ["indicator"])
INCIDENTS_OPEN = Gauge("slamonitor_incidents_open", "Open incidents", ["priority"])
BURN_RATE = Gauge(
    "slamonitor_availability_burn_rate",
    "Error budget burn rate of the availability objective over a window (computed by the "
    "service from its probes)",
    ["window"],
)
BURN_ALERT = Gauge(
    "slamonitor_burn_rate_alert", "1 while a multi-window burn-rate rule fires", ["rule"]
)


def observe_clock(clock: Clock, calendars: Calendars) -> None:
    if clock.stopped_at is None:
        return
    CLOCK_DURATION.labels(
        clock.indicator.value, clock.priority.value, clock.calendar.value
    ).observe(clock.elapsed(calendars, clock.stopped_at).total_seconds())
