"""Composition root of the forms service."""

from __future__ import annotations

import httpx
from pydantic import SecretStr

from bsante.chassis.auth import JwksSource
from bsante.chassis.embedded import EmbeddedContext
from bsante.chassis.service import Service
from bsante.chassis.service_client import ServiceClient, token_provider
from bsante.contracts.permissions import ServiceScope
from bsante.forms import repository
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
    token_transport: httpx.AsyncBaseTransport | None = None,
) -> Service[FormsSettings]:
    """`patients` replaces the patient service (tests); `patient_transport` and
    `token_transport` reach the patient service and identity in-process (embedded platform)."""
    settings = settings or FormsSettings()
    svc = Service(
        settings,
        title="Bureautique Santé — forms",
        routers=[router],
        indexes=repository.INDEXES,
        jwks=jwks,
        standalone=standalone,
    )
    if patients is None:
        tokens = token_provider(settings, [ServiceScope.PATIENT_READ], transport=token_transport)
        client = ServiceClient(
            settings.patient_url,
            tokens,
            timeout=settings.patient_timeout_seconds,
            transport=patient_transport,
        )
        if svc.verifier is None:
            raise ValueError("forms verifies user tokens: it needs a JWKS source")
        patients = HttpPatientDirectory(client, svc.verifier)
    svc.app.state.patients = patients
    http_errors.install(svc.app)
    return svc


def build_embedded(context: EmbeddedContext) -> Service[FormsSettings]:
    """forms asks the patient service about patients with its service token: in one process,
    straight to the patient and identity apps."""
    secret = context.register_service_client("forms", [ServiceScope.PATIENT_READ])
    settings = FormsSettings(
        store_url=context.store_url("forms"),
        bus_url=context.bus_url,
        patient_url="http://patient",
        service_token_url="http://identity/oauth/token",
        service_client_secret=SecretStr(secret),
    )
    return build(
        settings,
        jwks=context.jwks,
        patient_transport=context.transport("patient"),
        token_transport=context.transport("identity"),
    )
