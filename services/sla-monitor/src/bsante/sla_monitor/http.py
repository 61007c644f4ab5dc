"""SLA monitor HTTP API: tickets, contract deadlines and compliance, availability, incidents,
burn rates, usage indicators, and the ops and status pages. Routes only translate.

Support (role ops, `manage_platform`) sees every structure and moves tickets through their
steps; a structure's users (`manage_tickets`, `view_sla`) see their acting structure only.
"""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta
from importlib import resources
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse
from pydantic import AwareDatetime, BaseModel, Field

from bsante.chassis.auth import Principal, allowed
from bsante.chassis.errors import RuleViolation
from bsante.chassis.openapi import creates, problems
from bsante.chassis.service import Service, service_settings
from bsante.chassis.store import Query as StoreQuery
from bsante.contracts.permissions import Action, is_allowed
from bsante.sla_monitor import incidents, probes, support, usage
from bsante.sla_monitor.contract.availability import (
    Period,
    availability_report,
    platform_timeline,
)
from bsante.sla_monitor.contract.clocks import deadline_of
from bsante.sla_monitor.contract.compliance import compliance, month_of
from bsante.sla_monitor.contract.indicators import (
    AVAILABILITY,
    BY_ID,
    INDICATORS,
    CalendarKind,
    Category,
    IndicatorId,
    Phase,
    Priority,
)
from bsante.sla_monitor.monitor import Monitor, rule_name, window_label
from bsante.sla_monitor.records import (
    INCIDENTS,
    TICKETS,
    StoredSubject,
    calendars,
    incident_of,
)
from bsante.sla_monitor.settings import SlaMonitorSettings

Settings = Annotated[SlaMonitorSettings, Depends(service_settings(SlaMonitorSettings))]
Viewer = Annotated[Principal, allowed(Action.VIEW_SLA)]
TicketUser = Annotated[Principal, allowed(Action.MANAGE_TICKETS)]
Support = Annotated[Principal, allowed(Action.MANAGE_PLATFORM)]
# No deadline of the contract is further than a few working days; a year covers any pause.
_EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)


def now() -> datetime:
    return datetime.now(UTC)


def scope_of(principal: Principal) -> str | None:
    """None for support (every structure), else the acting structure."""
    if is_allowed(principal.roles, principal.profession, Action.MANAGE_PLATFORM):
        return None
    return principal.acting_structure


def _service(request: Request) -> Service:
    svc: Service = request.app.state.service
    return svc


# -- models ---------------------------------------------------------------------------------


class ClockOut(BaseModel):
    indicator: str
    sequence: int
    calendar: str
    target_seconds: int
    priority: str
    started_at: datetime
    initial_deadline: datetime
    deadline: datetime | None = Field(description="None while paused (waiting for the customer)")
    pauses: list[list[datetime | None]]
    stopped_at: datetime | None
    stop_reason: str | None
    outcome: str


class StepOut(BaseModel):
    action: str
    at: datetime


class TicketOut(BaseModel):
    id: str
    structure_id: str
    category: str
    priority: str
    phase: str | None
    state: str
    summary: str
    opened_at: datetime
    opened_by: str
    opened_in_service_hours: bool
    incident_id: str | None
    next_deadline: datetime | None
    steps: list[StepOut]
    clocks: list[ClockOut]

    @classmethod
    def of(cls, data: dict[str, Any]) -> TicketOut:
        return cls.model_validate(
            {**data, "steps": [{"action": s["action"], "at": s["at"]} for s in data["steps"]]}
        )


class TicketPage(BaseModel):
    items: list[TicketOut]
    limit: int
    offset: int


class TicketIn(BaseModel):
    category: Category
    priority: Priority
    summary: str = Field(min_length=1, max_length=200)
    phase: Phase | None = Field(
        default=None, description="Deployment phase (card-reader replacements)"
    )
    opened_at: AwareDatetime | None = Field(
        default=None, description="Default now; a ticket phoned in earlier may be backdated"
    )


class StepIn(BaseModel):
    at: AwareDatetime | None = Field(default=None, description="Default now")


class QualifyIn(StepIn):
    needs_level2: bool = False


class PriorityIn(StepIn):
    priority: Priority


# -- tickets --------------------------------------------------------------------------------

tickets_router = APIRouter(prefix="/tickets", tags=["tickets"])


@tickets_router.post(
    "", response_model=TicketOut, status_code=201, openapi_extra=creates("ticket_id")
)
async def open_ticket(
    request: Request, body: TicketIn, principal: TicketUser, settings: Settings
) -> TicketOut:
    """Open a ticket for the acting structure; every applicable clock starts at its opening."""
    svc = _service(request)
    at = support.check_time(body.opened_at, now(), "opened_at")
    structure = principal.acting_structure

    async def block(uow: Any) -> dict[str, Any]:
        return await support.open_ticket(
            uow,
            structure_id=structure,
            category=body.category,
            priority=body.priority,
            summary=body.summary,
            opened_by=principal.user_id,
            at=at,
            alsace_moselle=structure in settings.alsace_moselle_structures,
            phase=body.phase,
        )

    data = await svc.messaging.run_unit_of_work(block)
    return TicketOut.of(data)


@tickets_router.get("", response_model=TicketPage)
async def list_tickets(
    request: Request,
    principal: TicketUser,
    open_only: Annotated[bool, Query(alias="open")] = False,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Annotated[int, Query(ge=0, le=100_000)] = 0,
) -> TicketPage:
    """Newest first; support sees every structure, a structure its own tickets."""
    rows = await support.list_tickets(
        _service(request).store,
        scope_of(principal),
        open_only=open_only,
        limit=limit,
        offset=offset,
    )
    return TicketPage(items=[TicketOut.of(r) for r in rows], limit=limit, offset=offset)


@tickets_router.get("/{ticket_id}", response_model=TicketOut)
async def read_ticket(request: Request, ticket_id: uuid.UUID, principal: TicketUser) -> TicketOut:
    """One ticket with its steps and clocks (404 for another structure's ticket)."""
    data = await support.get_ticket(_service(request).store, str(ticket_id), scope_of(principal))
    return TicketOut.of(data)


async def _act(
    request: Request,
    ticket_id: uuid.UUID,
    principal: Principal,
    action: str,
    at: datetime | None,
    **args: Any,
) -> TicketOut:
    moment = now()
    when = support.check_time(at, moment, "at")
    data = await support.act(
        _service(request).messaging,
        str(ticket_id),
        action,
        when,
        moment,
        structure=scope_of(principal),
        **args,
    )
    return TicketOut.of(data)


# 409: the ticket's state does not allow this step (closing an unqualified ticket, ...).
CONFLICT = problems(409)


@tickets_router.post("/{ticket_id}/take-in", response_model=TicketOut, responses=CONFLICT)
async def take_in(request: Request, ticket_id: uuid.UUID, body: StepIn, p: Support) -> TicketOut:
    """A technician owns the ticket: stops the take-in clock (30 min, service hours)."""
    return await _act(request, ticket_id, p, "take_in", body.at)


@tickets_router.post("/{ticket_id}/qualify", response_model=TicketOut, responses=CONFLICT)
async def qualify(request: Request, ticket_id: uuid.UUID, body: QualifyIn, p: Support) -> TicketOut:
    """Diagnosis and level set: stops the qualification clock; `needs_level2` starts the
    escalation clock (15 min)."""
    return await _act(request, ticket_id, p, "qualify", body.at, needs_level2=body.needs_level2)


@tickets_router.post("/{ticket_id}/escalate", response_model=TicketOut, responses=CONFLICT)
async def escalate(request: Request, ticket_id: uuid.UUID, body: StepIn, p: Support) -> TicketOut:
    """Level 2 has the ticket: stops the escalation clock."""
    return await _act(request, ticket_id, p, "escalate", body.at)


@tickets_router.post("/{ticket_id}/intervene", response_model=TicketOut, responses=CONFLICT)
async def intervene(request: Request, ticket_id: uuid.UUID, body: StepIn, p: Support) -> TicketOut:
    """A technician starts acting (on site for a card reader): stops the intervention clocks."""
    return await _act(request, ticket_id, p, "intervene", body.at)


@tickets_router.post("/{ticket_id}/announce", response_model=TicketOut, responses=CONFLICT)
async def announce(request: Request, ticket_id: uuid.UUID, body: StepIn, p: Support) -> TicketOut:
    """The card-reader replacement is announced: stops the announcement clock of the phase."""
    return await _act(request, ticket_id, p, "announce", body.at)


@tickets_router.post("/{ticket_id}/wait-for-customer", response_model=TicketOut, responses=CONFLICT)
async def wait_for_customer(
    request: Request, ticket_id: uuid.UUID, body: StepIn, p: Support
) -> TicketOut:
    """Pause the pausable clocks; the interval is stored and extends their deadlines."""
    return await _act(request, ticket_id, p, "wait_for_customer", body.at)


@tickets_router.post("/{ticket_id}/customer-replied", response_model=TicketOut, responses=CONFLICT)
async def customer_replied(
    request: Request, ticket_id: uuid.UUID, body: StepIn, p: TicketUser
) -> TicketOut:
    """The structure answered: the pause ends, the clocks resume."""
    return await _act(request, ticket_id, p, "customer_replied", body.at)


@tickets_router.post("/{ticket_id}/priority", response_model=TicketOut, responses=CONFLICT)
async def change_priority(
    request: Request, ticket_id: uuid.UUID, body: PriorityIn, p: Support
) -> TicketOut:
    """Priority-bound clocks are superseded and new ones start: no deadline is rewritten."""
    return await _act(
        request, ticket_id, p, "change_priority", body.at, priority=body.priority.value
    )


@tickets_router.post("/{ticket_id}/resolve", response_model=TicketOut, responses=CONFLICT)
async def resolve(request: Request, ticket_id: uuid.UUID, body: StepIn, p: Support) -> TicketOut:
    """Stops the resolution clocks (and any clock still running)."""
    return await _act(request, ticket_id, p, "resolve", body.at)


@tickets_router.post("/{ticket_id}/close", response_model=TicketOut, responses=CONFLICT)
async def close(request: Request, ticket_id: uuid.UUID, body: StepIn, p: Support) -> TicketOut:
    """Only a resolved ticket closes (409 otherwise)."""
    return await _act(request, ticket_id, p, "close", body.at)


# -- the contract ---------------------------------------------------------------------------

sla_router = APIRouter(prefix="/sla", tags=["sla"])


class IndicatorOut(BaseModel):
    id: str
    label: str
    calendar: str
    starts_on: str
    stops_on: str
    target_seconds: int
    objective: float
    priorities: list[str]
    categories: list[str]
    phase: str | None
    on_call: bool | None
    pausable: bool


class IndicatorsOut(BaseModel):
    indicators: list[IndicatorOut]
    availability_objective: float
    availability_bases: list[str]
    availability_basis_note: str


@sla_router.get("/indicators", response_model=IndicatorsOut)
async def list_indicators(_: Viewer) -> IndicatorsOut:
    """The contract as data: each indicator's calendar, start and stop events, target."""
    return IndicatorsOut(
        indicators=[
            IndicatorOut(
                id=i.id.value,
                label=i.label,
                calendar=i.calendar.value,
                starts_on=i.starts_on.value,
                stops_on=i.stops_on.value,
                target_seconds=int(i.target.total_seconds()),
                objective=i.objective,
                priorities=sorted(p.value for p in i.priorities),
                categories=sorted(c.value for c in i.categories),
                phase=i.phase.value if i.phase else None,
                on_call=i.on_call,
                pausable=i.pausable,
            )
            for i in INDICATORS
        ],
        availability_objective=AVAILABILITY.objective,
        availability_bases=[b.value for b in AVAILABILITY.bases],
        availability_basis_note=(
            "Both bases are reported; the 99 % objective and the burn-rate alerts apply to the "
            "24/7 basis (real time), the service-hours figure is informative."
        ),
    )


class PauseIn(BaseModel):
    start: AwareDatetime
    end: AwareDatetime


class DeadlineIn(BaseModel):
    indicator: IndicatorId
    start: AwareDatetime
    pauses: list[PauseIn] = Field(default_factory=list, max_length=100)
    alsace_moselle: bool = False


class DeadlineOut(BaseModel):
    indicator: str
    calendar: str
    target_seconds: int
    start: datetime
    deadline: datetime
    deadline_local: str = Field(description="The deadline in Europe/Paris, ISO 8601")


def _reasonable(at: datetime, field: str) -> None:
    if not _EARLIEST <= at <= now() + timedelta(days=3660):
        raise RuleViolation(
            f"{field} is out of reason", errors=[{"field": field, "message": "out of range"}]
        )


@sla_router.post("/deadline", response_model=DeadlineOut)
async def compute_deadline(body: DeadlineIn, _: Viewer) -> DeadlineOut:
    """The deadline of any indicator for a clock started at `start` with these pauses: the
    contract's arithmetic, checkable from outside (nothing is stored)."""
    spec = BY_ID.get(body.indicator)
    if spec is None:
        # Availability is a monthly rate (GET /sla/availability), not a clock with a deadline.
        raise RuleViolation(
            f"{body.indicator.value} has no deadline",
            errors=[{"field": "indicator", "message": "not an indicator measured by a clock"}],
        )
    _reasonable(body.start, "start")
    for n, p in enumerate(body.pauses):
        _reasonable(p.start, f"pauses.{n}.start")
        _reasonable(p.end, f"pauses.{n}.end")
        if p.end < p.start:
            raise RuleViolation(
                "A pause ends after it starts",
                errors=[{"field": f"pauses.{n}.end", "message": "before start"}],
            )
    cals = calendars(body.alsace_moselle)
    deadline = deadline_of(
        body.indicator, body.start, cals, [(p.start, p.end) for p in body.pauses]
    )
    return DeadlineOut(
        indicator=spec.id.value,
        calendar=spec.calendar.value,
        target_seconds=int(spec.target.total_seconds()),
        start=body.start.astimezone(UTC),
        deadline=deadline,
        deadline_local=deadline.astimezone(cals[CalendarKind.SERVICE_HOURS].tz).isoformat(),
    )


class BreachOut(BaseModel):
    subject_id: str
    indicator: str
    sequence: int
    started_at: datetime
    deadline: datetime | None
    elapsed_seconds: float
    target_seconds: float
    stopped_at: datetime | None


class ComplianceRow(BaseModel):
    indicator: str
    objective: float
    measured: int
    met: int
    running: int
    superseded: int
    share: float | None
    compliant: bool
    breaches: list[BreachOut]


class ComplianceOut(BaseModel):
    month: str
    structure_id: str | None
    computed_at: datetime
    indicators: list[ComplianceRow]


MonthParam = Annotated[str | None, Query(pattern=r"^20[0-9]{2}-(0[1-9]|1[0-2])$")]


async def monthly_compliance(svc: Service, structure: str | None, month: str) -> ComplianceOut:
    at = now()
    year, mon = (int(x) for x in month.split("-"))
    first = date(year, mon, 1)
    # Clocks start at opening or at a later step; a ticket opened up to a month earlier may
    # still start one in this month (a priority change).
    since = datetime(first.year, first.month, 1, tzinfo=UTC) - timedelta(days=45)
    where: dict[str, Any] = {"opened_at": {"$gte": since.isoformat()}}
    if structure is not None:
        where["structure_id"] = structure
    docs = await svc.store.find(TICKETS, StoreQuery(where=where, limit=100_000))
    subjects: list[Any] = [StoredSubject.of(d.data) for d in docs]
    incident_docs = await svc.store.find(
        INCIDENTS, StoreQuery(where={"first_failed_at": {"$gte": since.isoformat()}}, limit=10_000)
    )
    subjects += [incident_of(d.data) for d in incident_docs]
    rows = compliance(subjects, at)
    out = []
    for (m, indicator), row in sorted(rows.items(), key=lambda kv: kv[0][1].value):
        if m != month:
            continue
        out.append(
            ComplianceRow(
                indicator=indicator.value,
                objective=row.objective,
                measured=row.measured,
                met=row.met,
                running=row.running,
                superseded=row.superseded,
                share=row.share,
                compliant=row.compliant,
                breaches=[
                    BreachOut(
                        subject_id=b.subject_id,
                        indicator=b.indicator.value,
                        sequence=b.sequence,
                        started_at=b.started_at,
                        deadline=b.deadline,
                        elapsed_seconds=b.elapsed.total_seconds(),
                        target_seconds=b.target.total_seconds(),
                        stopped_at=b.stopped_at,
                    )
                    for b in row.breaches[:200]
                ],
            )
        )
    return ComplianceOut(month=month, structure_id=structure, computed_at=at, indicators=out)


@sla_router.get("/compliance", response_model=ComplianceOut)
async def read_compliance(
    request: Request, principal: Viewer, month: MonthParam = None
) -> ComplianceOut:
    """Per indicator, the share of the month's clocks within target and the breaches
    (a running clock past its target is a breach already). Default: the current month."""
    return await monthly_compliance(
        _service(request), scope_of(principal), month or month_of(now())
    )


class AvailabilityRow(BaseModel):
    target: str
    start: datetime
    end: datetime
    ratio_24x7: float | None
    ratio_service_hours: float | None
    down_seconds_24x7: float
    down_seconds_service_hours: float
    meets_objective: bool | None = Field(description="On the 24/7 basis, the contract's one")


class AvailabilityOut(BaseModel):
    period: str
    objective: float
    rows: list[AvailabilityRow]


async def availability_rows(
    svc: Service, period: Period, start: datetime, end: datetime
) -> list[AvailabilityRow]:
    lines = await probes.timelines(svc.store, start, end)
    health = [line for name, line in lines.items() if name.startswith("health:")]
    if health:
        lines = {"platform": platform_timeline(health), **lines}
    cals = calendars(False)
    out = []
    for target, line in lines.items():
        for always, hours in availability_report(line, cals, period, start, end):
            out.append(
                AvailabilityRow(
                    target=target,
                    start=always.start,
                    end=always.end,
                    ratio_24x7=always.ratio,
                    ratio_service_hours=hours.ratio,
                    down_seconds_24x7=always.down.total_seconds(),
                    down_seconds_service_hours=hours.down.total_seconds(),
                    meets_objective=always.meets(),
                )
            )
    return out


@sla_router.get("/availability", response_model=AvailabilityOut)
async def read_availability(
    request: Request,
    _: Viewer,
    period: Period = Period.DAY,
    start: Annotated[date | None, Query(alias="from")] = None,
    end: Annotated[date | None, Query(alias="to")] = None,
) -> AvailabilityOut:
    """Availability of the platform and of each probed target per local day, ISO week or month,
    on both bases (24/7 and service hours). Default: the last 7 days."""
    today = datetime.now(calendars(False)[CalendarKind.SERVICE_HOURS].tz).date()
    end = end or today
    start = start or end - timedelta(days=6)
    if start > end or (end - start).days > 366:
        raise RuleViolation(
            "`from` must be before `to`, at most 366 days apart",
            errors=[{"field": "from", "message": "out of range"}],
        )
    tz = calendars(False)[CalendarKind.SERVICE_HOURS].tz
    a = datetime(start.year, start.month, start.day, tzinfo=tz)
    b = datetime(end.year, end.month, end.day, tzinfo=tz) + timedelta(days=1)
    rows = await availability_rows(_service(request), period, a, b)
    return AvailabilityOut(period=period.value, objective=AVAILABILITY.objective, rows=rows)


class IncidentOut(BaseModel):
    id: str
    scope: str
    source: str
    priority: str
    first_failed_at: datetime
    opened_at: datetime
    restoration_deadline: datetime
    restored_at: datetime | None
    remaining_seconds: float | None = Field(description="Restoration time left (negative: late)")
    ticket_id: str | None


def incident_out(data: dict[str, Any], at: datetime) -> IncidentOut:
    remaining = None
    if data.get("restored_at") is None:
        remaining = (datetime.fromisoformat(data["restoration_deadline"]) - at).total_seconds()
    return IncidentOut.model_validate({**data, "remaining_seconds": remaining})


class IncidentPage(BaseModel):
    items: list[IncidentOut]


@sla_router.get("/incidents", response_model=IncidentPage)
async def list_incidents(request: Request, _: Support) -> IncidentPage:
    """Open incidents, newest first, with their restoration countdown (ops only)."""
    at = now()
    return IncidentPage(
        items=[incident_out(i, at) for i in await incidents.open_incidents(_service(request).store)]
    )


class BurnRateOut(BaseModel):
    window: str
    rate: float | None


class BurnRatesOut(BaseModel):
    objective: float
    windows: list[BurnRateOut]
    firing: list[str]


async def burn_rates_out(request: Request) -> BurnRatesOut:
    monitor: Monitor = request.app.state.monitor
    rates, fired = await monitor.burn(now())
    return BurnRatesOut(
        objective=AVAILABILITY.objective,
        windows=[BurnRateOut(window=window_label(w), rate=r) for w, r in sorted(rates.items())],
        firing=[rule_name(r) for r in fired],
    )


@sla_router.get("/burn-rates", response_model=BurnRatesOut)
async def read_burn_rates(request: Request, _: Support) -> BurnRatesOut:
    """Error-budget burn rate of the availability objective per window, and the multi-window
    rules firing (SRE workbook: 1 h/5 min at 14.4, 6 h/30 min at 6, 3 d/6 h at 1)."""
    return await burn_rates_out(request)


# -- usage ----------------------------------------------------------------------------------

usage_router = APIRouter(prefix="/usage", tags=["usage"])


class DailyCount(BaseModel):
    day: date
    count: int


class UsageIndicator(BaseModel):
    structure_id: str
    indicator: str
    days: list[DailyCount]
    total: int


def _period(
    start: date | None, end: date | None, default_days: int, tz: ZoneInfo
) -> tuple[date, date]:
    """The days asked for; by default the last `default_days` local days, today included (the
    indicators count local days: in Paris, from 23:00 UTC in winter, today is tomorrow's UTC
    date)."""
    today = datetime.now(tz).date()
    end = end or today
    start = start or end - timedelta(days=default_days - 1)
    if start > end:
        raise RuleViolation(
            "`from` must not be after `to`", errors=[{"field": "from", "message": "after `to`"}]
        )
    if (end - start).days > 366:
        raise RuleViolation(
            "The period is limited to 366 days",
            errors=[{"field": "from", "message": "period longer than 366 days"}],
        )
    return start, end


@usage_router.get("/patients-created", response_model=UsageIndicator)
async def patients_created(
    request: Request,
    principal: Viewer,
    settings: Settings,
    start: Annotated[date | None, Query(alias="from")] = None,
    end: Annotated[date | None, Query(alias="to")] = None,
) -> UsageIndicator:
    """Patients created per local day in the acting structure (default: the last 30 days)."""
    start, end = _period(start, end, 30, settings.timezone_info)
    rows = await usage.daily(
        _service(request).store, principal.acting_structure, usage.PATIENTS_CREATED, start, end
    )
    return UsageIndicator(
        structure_id=principal.acting_structure,
        indicator=usage.PATIENTS_CREATED,
        days=[DailyCount(day=d, count=c) for d, c in rows],
        total=sum(c for _, c in rows),
    )


class UsageMonth(BaseModel):
    month: str
    counters: dict[str, int]
    rates: dict[str, float | None]
    documents_per_type: dict[str, int]


class UsageOut(BaseModel):
    structure_id: str | None
    months: list[UsageMonth]


async def usage_out(svc: Service, structure: str | None, start: date, end: date) -> UsageOut:
    months = await usage.totals(svc.store, structure, start, end)
    out = []
    for month, counters in sorted(months.items()):
        per_type = {
            k.removeprefix(usage.DOCUMENT_TYPE_PREFIX): v
            for k, v in counters.items()
            if k.startswith(usage.DOCUMENT_TYPE_PREFIX)
        }
        plain = {k: v for k, v in counters.items() if not k.startswith(usage.DOCUMENT_TYPE_PREFIX)}
        out.append(
            UsageMonth(
                month=month,
                counters=plain,
                rates=usage.rates(counters),
                documents_per_type=per_type,
            )
        )
    return UsageOut(structure_id=structure, months=out)


@usage_router.get("/indicators", response_model=UsageOut)
async def usage_indicators(
    request: Request,
    principal: Viewer,
    settings: Settings,
    start: Annotated[date | None, Query(alias="from")] = None,
    end: Annotated[date | None, Query(alias="to")] = None,
) -> UsageOut:
    """Per month: DMP feeding rate, MSSanté sending rate, qualifiée INS share, documents per
    type (the acting structure; support: every structure together). Default: 12 months."""
    start, end = _period(start, end, 366, settings.timezone_info)
    return await usage_out(_service(request), scope_of(principal), start, end)


# -- dashboards -----------------------------------------------------------------------------

dash_router = APIRouter(tags=["dashboards"])


class TargetStatus(BaseModel):
    target: str
    kind: str
    up: bool
    since: datetime
    last_at: datetime


class OverviewOut(BaseModel):
    at: datetime
    targets: list[TargetStatus]
    availability: list[AvailabilityRow]
    incidents: list[IncidentOut]
    tickets_at_risk: list[TicketOut]
    compliance: ComplianceOut
    burn_rates: BurnRatesOut
    usage: UsageOut


def _month_start(at: datetime) -> datetime:
    local = at.astimezone(calendars(False)[CalendarKind.SERVICE_HOURS].tz)
    return local.replace(day=1, hour=0, minute=0, second=0, microsecond=0)


@dash_router.get("/ops/overview", response_model=OverviewOut)
async def ops_overview(request: Request, _: Support) -> OverviewOut:
    """Everything the ops dashboard shows, in one read (ops only)."""
    svc = _service(request)
    at = now()
    today = at.date()
    return OverviewOut(
        at=at,
        targets=[TargetStatus.model_validate(s) for s in await probes.current_states(svc.store)],
        availability=await availability_rows(svc, Period.MONTH, _month_start(at), at),
        incidents=[incident_out(i, at) for i in await incidents.open_incidents(svc.store)],
        tickets_at_risk=[
            TicketOut.of(t)
            for t in await support.tickets_at_risk(svc.store, None, at, timedelta(hours=1))
        ],
        compliance=await monthly_compliance(svc, None, month_of(at)),
        burn_rates=await burn_rates_out(request),
        usage=await usage_out(svc, None, today - timedelta(days=365), today),
    )


class StatusOut(BaseModel):
    at: datetime
    structure_id: str
    platform: Literal["operational", "degraded", "down", "unknown"]
    capabilities: list[TargetStatus]
    incidents: list[IncidentOut]
    availability_this_month: float | None
    open_tickets: list[TicketOut]


@dash_router.get("/status/summary", response_model=StatusOut)
async def status_summary(request: Request, principal: Viewer) -> StatusOut:
    """The structures' status page: platform state, open incidents, the month's availability
    and the acting structure's open tickets."""
    svc = _service(request)
    at = now()
    states = [TargetStatus.model_validate(s) for s in await probes.current_states(svc.store)]
    open_incidents = [incident_out(i, at) for i in await incidents.open_incidents(svc.store)]
    if any(i.scope == incidents.PLATFORM for i in open_incidents):
        platform = "down"
    elif open_incidents:
        platform = "degraded"
    elif states:
        platform = "operational"
    else:
        platform = "unknown"
    rows = [
        r
        for r in await availability_rows(svc, Period.MONTH, _month_start(at), at)
        if r.target == "platform"
    ]
    mine = await support.list_tickets(
        svc.store, principal.acting_structure, open_only=True, limit=50, offset=0
    )
    return StatusOut(
        at=at,
        structure_id=principal.acting_structure,
        platform=platform,
        capabilities=states,
        incidents=open_incidents,
        availability_this_month=rows[0].ratio_24x7 if rows else None,
        open_tickets=[TicketOut.of(t) for t in mine],
    )


def _page(name: str) -> str:
    return resources.files("bsante.sla_monitor").joinpath("pages", name).read_text()


@dash_router.get("/pages/ops", response_class=HTMLResponse, include_in_schema=False)
async def ops_page() -> HTMLResponse:
    """The ops dashboard: a static page; its data comes from the guarded routes above."""
    return HTMLResponse(_page("ops.html"))


@dash_router.get("/pages/status", response_class=HTMLResponse, include_in_schema=False)
async def status_page() -> HTMLResponse:
    """The structures' status page (static; data from `/status/summary`)."""
    return HTMLResponse(_page("status.html"))


routers = [tickets_router, sla_router, usage_router, dash_router]
