"""The hosting contract's indicators as data: calendar, start and stop events, target, objective."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum

from bsante.sla_monitor.contract.calendars import (
    Calendar,
    always_open,
    service_hours,
    working_days,
)


class CalendarKind(StrEnum):
    SERVICE_HOURS = "service_hours"
    ALWAYS = "24x7"
    WORKING_DAYS = "working_days"


class Priority(StrEnum):
    BLOQUANT = "bloquant"
    MAJEUR = "majeur"
    MINEUR = "mineur"


class Category(StrEnum):
    INCIDENT = "incident"
    REQUEST = "request"
    CARD_READER_REPLACEMENT = "card_reader_replacement"


class Phase(StrEnum):
    """Deployment phase of a structure, which sets the card-reader replacement delays."""

    PILOT = "pilot"
    CALIBRATION = "calibration"
    WAVE = "wave"


class Event(StrEnum):
    """What starts or stops a clock; each is a distinct, dated step of a ticket or an incident."""

    OPENED = "opened"
    TAKEN_IN = "taken_in"  # a technician of the support group owns the ticket (not any update)
    QUALIFIED = "qualified"  # diagnosis, priority and level set
    LEVEL2_REQUIRED = "level2_required"  # the qualification decided that level 2 must handle it
    ESCALATED = "escalated"  # level 2 has the ticket
    ANNOUNCED = "announced"  # the replacement (date, means) is announced to the structure
    INTERVENED = "intervened"  # a technician starts acting (remotely, or on site for a reader)
    RESOLVED = "resolved"
    FIRST_FAILED_PROBE = "first_failed_probe"
    RESTORED = "restored"


class IndicatorId(StrEnum):
    AVAILABILITY = "availability"
    RESTORATION = "restoration"
    TAKE_IN = "take_in"
    INTERVENTION = "intervention"
    INTERVENTION_ON_CALL = "intervention_on_call"
    ESCALATION = "escalation"
    QUALIFICATION = "qualification"
    RESOLUTION_BLOQUANT = "resolution_bloquant"
    RESOLUTION_MAJEUR = "resolution_majeur"
    READER_ANNOUNCEMENT_PILOT = "reader_announcement_pilot"
    READER_ANNOUNCEMENT_CALIBRATION = "reader_announcement_calibration"
    READER_ANNOUNCEMENT_WAVE = "reader_announcement_wave"
    READER_ON_SITE_PILOT = "reader_on_site_pilot"
    READER_ON_SITE_CALIBRATION = "reader_on_site_calibration"
    READER_ON_SITE_WAVE = "reader_on_site_wave"


@dataclass(frozen=True)
class Indicator:
    """One promise of the contract measured by a clock.

    `target` is the delay on `calendar`; `objective` the share of clocks that must meet it in a
    month (the contract only states 90 % for take-in; elsewhere every clock must meet it).
    `pausable`: waiting-for-customer intervals are kept out of the clock.
    `on_call`: None for every ticket; True only for on-call tickets (a blocking incident opened
    outside service hours), False for every other one.
    """

    id: IndicatorId
    label: str
    calendar: CalendarKind
    starts_on: Event
    stops_on: Event
    target: timedelta
    objective: float = 1.0
    priorities: frozenset[Priority] = frozenset()  # empty: every priority
    categories: frozenset[Category] = frozenset()  # empty: every category
    phase: Phase | None = None
    on_call: bool | None = None
    pausable: bool = False

    def applies(
        self,
        category: Category,
        priority: Priority,
        phase: Phase | None,
        opened_in_service_hours: bool,
    ) -> bool:
        if self.starts_on is Event.FIRST_FAILED_PROBE:
            return False  # incidents only
        if self.categories and category not in self.categories:
            return False
        if self.priorities and priority not in self.priorities:
            return False
        if self.phase is not None and phase is not self.phase:
            return False
        if self.on_call is not None:
            return self.on_call is is_on_call(priority, opened_in_service_hours)
        return True

    @property
    def priority_bound(self) -> bool:
        """A priority change ends this indicator's clock and starts a new one."""
        return bool(self.priorities) or self.on_call is not None


def is_on_call(priority: Priority, opened_in_service_hours: bool) -> bool:
    """The on-call team answers blocking incidents outside service hours."""
    return priority is Priority.BLOQUANT and not opened_in_service_hours


AVAILABILITY_OBJECTIVE = 0.99

_H = timedelta(hours=1)
_M = timedelta(minutes=1)
_D = timedelta(days=1)
_NOT_READER = frozenset({Category.INCIDENT, Category.REQUEST})
_READER = frozenset({Category.CARD_READER_REPLACEMENT})
_READER_DELAYS = {
    Phase.PILOT: (3 * _M, 1 * _D),
    Phase.CALIBRATION: (15 * _M, 2 * _D),
    Phase.WAVE: (2 * _H, 3 * _D),
}

INDICATORS: tuple[Indicator, ...] = (
    Indicator(
        IndicatorId.RESTORATION,
        "Garantie de temps de rétablissement (GTR) 4 h 24/7",
        CalendarKind.ALWAYS,
        Event.FIRST_FAILED_PROBE,
        Event.RESTORED,
        4 * _H,
    ),
    Indicator(
        IndicatorId.TAKE_IN,
        "Prise en charge sous 30 min (90 %)",
        CalendarKind.SERVICE_HOURS,
        Event.OPENED,
        Event.TAKEN_IN,
        30 * _M,
        objective=0.90,
    ),
    Indicator(
        IndicatorId.INTERVENTION,
        "Intervention sous 1 h en heures de service",
        CalendarKind.SERVICE_HOURS,
        Event.OPENED,
        Event.INTERVENED,
        1 * _H,
        categories=frozenset({Category.INCIDENT}),
        on_call=False,
        pausable=True,
    ),
    Indicator(
        IndicatorId.INTERVENTION_ON_CALL,
        "Intervention d'astreinte sous 4 h (incident bloquant hors heures de service)",
        CalendarKind.ALWAYS,
        Event.OPENED,
        Event.INTERVENED,
        4 * _H,
        categories=frozenset({Category.INCIDENT}),
        on_call=True,
        pausable=True,
    ),
    Indicator(
        IndicatorId.ESCALATION,
        "Escalade au niveau 2 sous 15 min",
        CalendarKind.SERVICE_HOURS,
        Event.LEVEL2_REQUIRED,
        Event.ESCALATED,
        15 * _M,
    ),
    Indicator(
        IndicatorId.QUALIFICATION,
        "Qualification sous 4 h",
        CalendarKind.SERVICE_HOURS,
        Event.OPENED,
        Event.QUALIFIED,
        4 * _H,
        categories=_NOT_READER,
        pausable=True,
    ),
    Indicator(
        IndicatorId.RESOLUTION_BLOQUANT,
        "Incident bloquant résolu sous 8 h",
        CalendarKind.SERVICE_HOURS,
        Event.OPENED,
        Event.RESOLVED,
        8 * _H,
        categories=frozenset({Category.INCIDENT}),
        priorities=frozenset({Priority.BLOQUANT}),
        pausable=True,
    ),
    Indicator(
        IndicatorId.RESOLUTION_MAJEUR,
        "Incident majeur résolu sous 4 jours ouvrés",
        CalendarKind.WORKING_DAYS,
        Event.OPENED,
        Event.RESOLVED,
        4 * _D,
        categories=frozenset({Category.INCIDENT}),
        priorities=frozenset({Priority.MAJEUR}),
        pausable=True,
    ),
    *(
        Indicator(
            IndicatorId(f"reader_announcement_{phase.value}"),
            f"Remplacement de lecteur, annonce ({phase.value})",
            CalendarKind.SERVICE_HOURS,
            Event.OPENED,
            Event.ANNOUNCED,
            announce,
            categories=_READER,
            phase=phase,
        )
        for phase, (announce, _) in _READER_DELAYS.items()
    ),
    *(
        Indicator(
            IndicatorId(f"reader_on_site_{phase.value}"),
            f"Remplacement de lecteur, intervention sur site ({phase.value})",
            CalendarKind.WORKING_DAYS,
            Event.OPENED,
            Event.INTERVENED,
            on_site,
            categories=_READER,
            phase=phase,
            pausable=True,
        )
        for phase, (_, on_site) in _READER_DELAYS.items()
    ),
)

BY_ID: dict[IndicatorId, Indicator] = {i.id: i for i in INDICATORS}


@dataclass(frozen=True)
class AvailabilityIndicator:
    """Availability is measured from probes, not clocks; both bases are reported."""

    id: IndicatorId
    label: str
    objective: float
    bases: tuple[CalendarKind, ...]


AVAILABILITY = AvailabilityIndicator(
    IndicatorId.AVAILABILITY,
    "Disponibilité mensuelle 99 %",
    AVAILABILITY_OBJECTIVE,
    (CalendarKind.ALWAYS, CalendarKind.SERVICE_HOURS),
)


class Calendars(Mapping[CalendarKind, Calendar]):
    """The three calendars of the contract for one site (Alsace-Moselle or not), built once."""

    def __init__(self, *, alsace_moselle: bool = False) -> None:
        self.alsace_moselle = alsace_moselle
        self._by_kind: dict[CalendarKind, Calendar] = {
            CalendarKind.SERVICE_HOURS: service_hours(alsace_moselle=alsace_moselle),
            CalendarKind.ALWAYS: always_open(),
            CalendarKind.WORKING_DAYS: working_days(alsace_moselle=alsace_moselle),
        }

    def __getitem__(self, kind: CalendarKind) -> Calendar:
        return self._by_kind[kind]

    def __iter__(self) -> Iterator[CalendarKind]:
        return iter(self._by_kind)

    def __len__(self) -> int:
        return len(self._by_kind)
