"""SLA monitor HTTP API: usage indicators of the caller's acting structure."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel

from bsante.chassis.auth import Principal, allowed
from bsante.chassis.errors import DomainError
from bsante.chassis.service import Service, service_settings
from bsante.contracts.permissions import Action
from bsante.sla_monitor import usage
from bsante.sla_monitor.settings import SlaMonitorSettings

router = APIRouter(prefix="/usage", tags=["usage"])


class DailyCount(BaseModel):
    day: date
    count: int


class UsageIndicator(BaseModel):
    structure_id: str
    indicator: str
    days: list[DailyCount]
    total: int


@router.get("/patients-created", response_model=UsageIndicator)
async def patients_created(
    request: Request,
    principal: Annotated[Principal, allowed(Action.VIEW_SLA)],
    settings: Annotated[SlaMonitorSettings, Depends(service_settings(SlaMonitorSettings))],
    start: Annotated[date | None, Query(alias="from")] = None,
    end: Annotated[date | None, Query(alias="to")] = None,
) -> UsageIndicator:
    """Patients created per local day in the acting structure (default: the last 30 days)."""
    svc: Service = request.app.state.service
    today = datetime.now(settings.timezone_info).date()
    end = end or today
    start = start or end - timedelta(days=29)
    if start > end:
        raise DomainError(
            "`from` must not be after `to`", errors=[{"field": "from", "message": "after `to`"}]
        )
    if (end - start).days > 366:
        raise DomainError(
            "The period is limited to 366 days",
            errors=[{"field": "from", "message": "period longer than 366 days"}],
        )
    rows = await usage.daily(
        svc.store, principal.acting_structure, usage.PATIENTS_CREATED, start, end
    )
    return UsageIndicator(
        structure_id=principal.acting_structure,
        indicator=usage.PATIENTS_CREATED,
        days=[DailyCount(day=d, count=c) for d, c in rows],
        total=sum(c for _, c in rows),
    )
