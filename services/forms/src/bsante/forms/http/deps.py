"""Dependencies of the forms routes: who calls (with which action), and the narrow ports."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Header, Request

from bsante.chassis.api import ServiceDep, if_match_version
from bsante.chassis.auth import Principal, allowed
from bsante.contracts.permissions import Action
from bsante.forms.handlers import Caller, Ports
from bsante.forms.patients import PatientDirectory

# Definitions are not patient data; everything read about a patient here is clinical.
DefinitionReader = Annotated[Principal, allowed(Action.READ_PATIENT)]
Reader = Annotated[Principal, allowed(Action.READ_CLINICAL)]
Filler = Annotated[Principal, allowed(Action.FILL_FORM)]
IfMatch = Annotated[str | None, Header(max_length=50)]


async def ports(svc: ServiceDep, request: Request) -> Ports:
    directory: PatientDirectory = request.app.state.patients
    return Ports(store=svc.store, unit_of_work=svc.messaging.unit_of_work, patients=directory)


PortsDep = Annotated[Ports, Depends(ports)]


def caller(principal: Principal, request: Request) -> Caller:
    return Caller(principal, request.headers.get("authorization", ""))


def expected_version(if_match: str | None) -> int | None:
    return if_match_version(if_match)
