"""Composition root of the patient service."""

from __future__ import annotations

from bsante.chassis.auth import JwksSource
from bsante.chassis.service import Service
from bsante.patient.http import router
from bsante.patient.settings import PatientSettings


def build(
    settings: PatientSettings | None = None,
    *,
    standalone: bool = False,
    jwks: JwksSource | None = None,
) -> Service:
    settings = settings or PatientSettings()
    return Service(
        settings,
        title="Bureautique Santé — patient",
        routers=[router],
        jwks=jwks,
        standalone=standalone,
    )
