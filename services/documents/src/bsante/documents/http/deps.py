"""Dependencies of the documents routes: who calls (with which action), and the narrow ports."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Header, Request

from bsante.chassis.auth import Principal, ServicePrincipal, allowed, service_scope
from bsante.contracts.permissions import Action, ServiceScope
from bsante.documents.handlers import Caller, Ports

Drafter = Annotated[Principal, allowed(Action.DRAFT_DOCUMENT)]
Signer = Annotated[Principal, allowed(Action.SIGN_DOCUMENT)]
Reader = Annotated[Principal, allowed(Action.READ_CLINICAL)]
Connector = Annotated[ServicePrincipal, service_scope(ServiceScope.DOCUMENTS_READ)]
Attacher = Annotated[ServicePrincipal, service_scope(ServiceScope.DOCUMENTS_ATTACH)]
IfMatch = Annotated[str | None, Header(max_length=50)]


async def ports(request: Request) -> Ports:
    built: Ports = request.app.state.ports
    return built


PortsDep = Annotated[Ports, Depends(ports)]


def caller(principal: Principal) -> Caller:
    return Caller(principal)


def kit_of(request: Request) -> str | None:
    kit: str | None = request.app.state.kit_root
    return kit
