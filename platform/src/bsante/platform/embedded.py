"""Compose identity, patient, sla-monitor and the gateway on SQLite files and the embedded log."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI
from pydantic import SecretStr

from bsante.chassis.service import Service
from bsante.contracts.permissions import ServiceScope
from bsante.forms.app import build as build_forms
from bsante.forms.settings import FormsSettings
from bsante.gateway.app import build_embedded
from bsante.gateway.settings import GatewaySettings
from bsante.identity.app import build as build_identity
from bsante.identity.service_clients import ServiceClientSpec, hash_secret, new_secret
from bsante.identity.settings import IdentitySettings
from bsante.patient.app import build as build_patient
from bsante.patient.settings import PatientSettings
from bsante.sla_monitor.app import build as build_sla_monitor
from bsante.sla_monitor.settings import SlaMonitorSettings


def build_services(data: Path) -> dict[str, Service]:
    data = data.resolve()
    bus = f"embedded://{data}"

    def store(name: str) -> str:
        return f"sqlite:///{data / (name + '.db')}"

    # Service clients: a fresh secret at each start, kept in memory only; identity stores its
    # hash and adopts it as the client's current secret (the previous one expires).
    forms_secret = new_secret()
    clients = {
        "forms": ServiceClientSpec(
            scopes=[ServiceScope.PATIENT_READ], secret_hash=hash_secret(forms_secret)
        )
    }
    identity = build_identity(
        IdentitySettings(store_url=store("identity"), bus_url=bus, service_clients=clients)
    )

    async def jwks() -> dict[str, Any]:
        # In one process, services read identity's public keys directly.
        return {"keys": [k.public_jwk() for k in identity.app.state.signing_keys]}

    patient = build_patient(PatientSettings(store_url=store("patient"), bus_url=bus), jwks=jwks)
    sla = build_sla_monitor(
        SlaMonitorSettings(store_url=store("sla-monitor"), bus_url=bus), jwks=jwks
    )
    # forms asks the patient service about patients with its service token; in one process,
    # straight to the patient and identity apps.
    forms = build_forms(
        FormsSettings(
            store_url=store("forms"),
            bus_url=bus,
            patient_url="http://patient",
            service_token_url="http://identity/oauth/token",
            service_client_secret=SecretStr(forms_secret),
        ),
        jwks=jwks,
        patient_transport=httpx.ASGITransport(app=patient.app),
        token_transport=httpx.ASGITransport(app=identity.app),
    )
    return {"identity": identity, "patient": patient, "sla-monitor": sla, "forms": forms}


def build_platform(data: Path) -> FastAPI:
    services = build_services(data)
    return build_embedded(GatewaySettings(), services)
