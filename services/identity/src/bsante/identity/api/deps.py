"""Dependency aliases shared by identity's routers."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Query, Request
from pydantic import BaseModel

from bsante.chassis.service import service_settings
from bsante.identity.cps import CpsLoginVerifier
from bsante.identity.keys import KeyRing
from bsante.identity.settings import IdentitySettings

settings = service_settings(IdentitySettings)


def keyring(request: Request) -> KeyRing:
    ring: KeyRing = request.app.state.keyring
    return ring


def cps_verifier(request: Request) -> CpsLoginVerifier | None:
    verifier: CpsLoginVerifier | None = request.app.state.cps_verifier
    return verifier


SettingsDep = Annotated[IdentitySettings, Depends(settings)]
KeyRingDep = Annotated[KeyRing, Depends(keyring)]
CpsVerifierDep = Annotated[CpsLoginVerifier | None, Depends(cps_verifier)]
Limit = Annotated[int, Query(ge=1, le=200, description="Page size")]
Offset = Annotated[int, Query(ge=0, le=1_000_000, description="Items to skip")]


class PageInfo(BaseModel):
    total: int
    limit: int
    offset: int
