"""Composition root of the SLA monitor."""

from __future__ import annotations

from zoneinfo import ZoneInfo

from bsante.chassis.auth import JwksSource
from bsante.chassis.embedded import EmbeddedContext
from bsante.chassis.service import Service
from bsante.sla_monitor.http import router
from bsante.sla_monitor.settings import SlaMonitorSettings
from bsante.sla_monitor.usage import INDEXES, subscriptions


def build(
    settings: SlaMonitorSettings | None = None,
    *,
    standalone: bool = False,
    jwks: JwksSource | None = None,
) -> Service[SlaMonitorSettings]:
    settings = settings or SlaMonitorSettings()
    return Service(
        settings,
        title="Bureautique Santé — SLA monitor",
        routers=[router],
        events=subscriptions(ZoneInfo(settings.timezone)),
        indexes=INDEXES,
        jwks=jwks,
        standalone=standalone,
    )


def build_embedded(context: EmbeddedContext) -> Service[SlaMonitorSettings]:
    settings = SlaMonitorSettings(
        store_url=context.store_url("sla-monitor"), bus_url=context.bus_url
    )
    return build(settings, jwks=context.jwks)
