"""Compose identity, patient, sla-monitor and the gateway on SQLite files and the embedded log."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI

from bsante.chassis.service import Service
from bsante.forms.app import build as build_forms
from bsante.forms.settings import FormsSettings
from bsante.gateway.app import build_embedded
from bsante.gateway.settings import GatewaySettings
from bsante.identity.app import build as build_identity
from bsante.identity.settings import IdentitySettings
from bsante.patient.app import build as build_patient
from bsante.patient.settings import PatientSettings
from bsante.sla_monitor.app import build as build_sla_monitor
from bsante.sla_monitor.settings import SlaMonitorSettings

# The usual origins of a front-end development server (Vite, Create React App, Next.js).
DEV_ORIGINS = [
    f"http://{host}:{port}" for port in (3000, 5173, 8080) for host in ("localhost", "127.0.0.1")
]
# A development proxy on the same machine may forward requests with X-Forwarded-For.
LOOPBACK = ["127.0.0.1/32", "::1/128"]


def build_services(data: Path) -> dict[str, Service]:
    data = data.resolve()
    bus = f"embedded://{data}"

    def store(name: str) -> str:
        return f"sqlite:///{data / (name + '.db')}"

    identity = build_identity(IdentitySettings(store_url=store("identity"), bus_url=bus))

    async def jwks() -> dict[str, Any]:
        # In one process, services read identity's public keys directly.
        return {"keys": [k.public_jwk() for k in identity.app.state.signing_keys]}

    patient = build_patient(PatientSettings(store_url=store("patient"), bus_url=bus), jwks=jwks)
    sla = build_sla_monitor(
        SlaMonitorSettings(store_url=store("sla-monitor"), bus_url=bus), jwks=jwks
    )
    # forms asks the patient service about patients; in one process, straight to its app.
    forms = build_forms(
        FormsSettings(store_url=store("forms"), bus_url=bus, patient_url="http://patient"),
        jwks=jwks,
        patient_transport=httpx.ASGITransport(app=patient.app),
    )
    return {"identity": identity, "patient": patient, "sla-monitor": sla, "forms": forms}


def build_platform(data: Path) -> FastAPI:
    services = build_services(data)
    return build_embedded(demo_gateway_settings(), services)


def demo_gateway_settings() -> GatewaySettings:
    """The gateway's settings, with the demo's defaults where the environment sets none
    (GATEWAY_CORS_ORIGINS, GATEWAY_TRUSTED_PROXIES)."""
    settings = GatewaySettings()
    defaults = {"cors_origins": DEV_ORIGINS, "trusted_proxies": LOOPBACK}
    return settings.model_copy(
        update={k: v for k, v in defaults.items() if k not in settings.model_fields_set}
    )
