"""Composition root of the forms service."""

from __future__ import annotations

import httpx

from bsante.chassis.auth import JwksSource
from bsante.chassis.service import Service
from bsante.forms.http import errors as http_errors
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
) -> Service:
    """`patients` replaces the patient service (tests); `patient_transport` reaches it
    in-process (embedded platform)."""
    settings = settings or FormsSettings()
    directory = patients or HttpPatientDirectory(
        settings.patient_url,
        timeout=settings.patient_timeout_seconds,
        transport=patient_transport,
    )
    service = Service(
        settings,
        title="Bureautique Santé — forms",
        routers=[router],
        jwks=jwks,
        standalone=standalone,
        state={"patients": directory},
    )
    http_errors.install(service.app)
    return service
