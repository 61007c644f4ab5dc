"""Composition root of the patient service."""

from __future__ import annotations

from bsante.chassis.auth import JwksSource
from bsante.chassis.embedded import EmbeddedContext
from bsante.chassis.service import Service
from bsante.patient import http, http_annotations, http_errors, http_internal, repository
from bsante.patient.insi_gateway import InsiGateway, insi_from_settings
from bsante.patient.settings import PatientSettings
from bsante.patient.subscriptions import subscriptions


def build(
    settings: PatientSettings | None = None,
    *,
    standalone: bool = False,
    jwks: JwksSource | None = None,
    insi: InsiGateway | None = None,
) -> Service[PatientSettings]:
    settings = settings or PatientSettings()
    service = Service(
        settings,
        title="Bureautique Santé — patient",
        routers=[http.router, http_annotations.router, http_internal.router],
        events=subscriptions(),
        indexes=repository.INDEXES,
        jwks=jwks,
        standalone=standalone,
        state={"insi": insi or insi_from_settings(settings)},
    )
    http_errors.install(service.app)
    return service


def build_embedded(context: EmbeddedContext) -> Service[PatientSettings]:
    settings = PatientSettings(store_url=context.store_url("patient"), bus_url=context.bus_url)
    return build(settings, jwks=context.jwks)
