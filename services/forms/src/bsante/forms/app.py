"""Composition root of the forms service."""

from __future__ import annotations

import httpx

from bsante.chassis.auth import JwksSource
from bsante.chassis.embedded import EmbeddedContext
from bsante.chassis.service import Service
from bsante.forms.http import router
from bsante.forms.patients import HttpPatientDirectory, PatientDirectory
from bsante.forms.settings import FormsSettings


def build(
    settings: FormsSettings | None = None,
    *,
    standalone: bool = False,
    jwks: JwksSource | None = None,
    patients: PatientDirectory | None = None,
    patient_transport: httpx.AsyncBaseTransport | None = None,
) -> Service[FormsSettings]:
    """`patients` replaces the patient service (tests); `patient_transport` reaches it
    in-process (embedded platform)."""
    settings = settings or FormsSettings()
    directory = patients or HttpPatientDirectory(
        settings.patient_url,
        timeout=settings.patient_timeout_seconds,
        transport=patient_transport,
    )
    return Service(
        settings,
        title="Bureautique Santé — forms",
        routers=[router],
        jwks=jwks,
        standalone=standalone,
        state={"patients": directory},
    )


def build_embedded(context: EmbeddedContext) -> Service[FormsSettings]:
    """forms asks the patient service about patients: in one process, straight to its app."""
    settings = FormsSettings(
        store_url=context.store_url("forms"), bus_url=context.bus_url, patient_url="http://patient"
    )
    return build(settings, jwks=context.jwks, patient_transport=context.transport("patient"))
