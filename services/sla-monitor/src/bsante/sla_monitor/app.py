"""Composition root of the SLA monitor."""

from __future__ import annotations

from datetime import timedelta
from zoneinfo import ZoneInfo

from pydantic import SecretStr

from bsante.chassis.auth import JwksSource
from bsante.chassis.embedded import EmbeddedContext
from bsante.chassis.service import Service
from bsante.chassis.store import Index
from bsante.chassis.tasks import Periodic
from bsante.contracts.manifest import load
from bsante.sla_monitor import incidents, probes, records, usage
from bsante.sla_monitor.http import routers
from bsante.sla_monitor.monitor import DeadLetterCounter, Monitor
from bsante.sla_monitor.settings import SlaMonitorSettings
from bsante.sla_monitor.usage import subscriptions

PROBE_TASK = "probe-cycle"
# A structure's tickets, newest first; the open ones by their next deadline and by age; every
# ticket by opening (support's list, the month's compliance).
TICKET_INDEXES = [
    Index(records.TICKETS, ("structure_id", "opened_at")),
    Index(records.TICKETS, ("open", "next_deadline")),
    Index(records.TICKETS, ("open", "opened_at")),
    Index(records.TICKETS, ("opened_at",)),
]
INDEXES: list[Index] = [*usage.INDEXES, *probes.INDEXES, *incidents.INDEXES, *TICKET_INDEXES]


def build(
    settings: SlaMonitorSettings | None = None,
    *,
    standalone: bool = False,
    jwks: JwksSource | None = None,
    peers: probes.Peers | None = None,
    probed: list[str] | None = None,
    dead_letters: DeadLetterCounter | None = None,
) -> Service[SlaMonitorSettings]:
    """`peers`/`probed`: how to reach the services to probe, and which (default: HTTP, every
    service and the gateway of the manifest)."""
    settings = settings or SlaMonitorSettings()
    manifest = load()
    svc = Service(
        settings,
        title="Bureautique Santé — SLA monitor",
        routers=routers,
        events=subscriptions(ZoneInfo(settings.timezone), incidents.record_job_failure),
        indexes=INDEXES,
        jwks=jwks,
        standalone=standalone,
    )
    if probed is None:
        probed = [e.name for e in manifest.services if e.kind in ("service", "gateway")]
    prober = probes.Prober(
        peers or probes.HttpPeers(settings.probe_url_template, settings.probe_timeout_seconds),
        probed,
        settings.probe_timeout_seconds,
        settings.synthetic_username or None,
        settings.synthetic_password.get_secret_value() or None,
    )
    monitor = Monitor(
        svc.messaging,
        prober,
        incidents.Thresholds(
            failed_probes=settings.incident_after_failed_probes,
            job_failures=settings.job_failures_threshold,
            dead_letters=settings.dead_letters_threshold,
            window=timedelta(minutes=settings.incident_window_minutes),
        ),
        settings.ops_structure,
        dead_letters,
        manifest.topics,
    )
    svc.app.state.monitor = monitor
    if settings.probes_enabled:
        svc.supervise(Periodic(PROBE_TASK, monitor.tick, every=settings.probe_interval_seconds))
    return svc


def build_embedded(context: EmbeddedContext) -> Service[SlaMonitorSettings]:
    settings = SlaMonitorSettings(
        store_url=context.store_url("sla-monitor"), bus_url=context.bus_url
    )
    if not settings.synthetic_username:
        # The demo structure administrator identity seeds in the embedded platform (it may
        # read a patient record and view the SLA): the synthetic transactions run in `make run`.
        settings = settings.model_copy(
            update={
                "synthetic_username": "admin@tilleuls.demo",
                "synthetic_password": SecretStr("Tilleuls-Demo-2026"),
            }
        )
    names = [e.name for e in load().of_kind("service")]
    peers = probes.InProcessPeers(context.transport, settings.probe_timeout_seconds)
    svc = build(settings, jwks=context.jwks, peers=peers, probed=names)
    bus = svc.bus
    if hasattr(bus, "read"):
        svc.app.state.monitor.dead_letters = bus
    return svc
