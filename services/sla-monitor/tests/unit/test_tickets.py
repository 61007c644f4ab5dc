"""Ticket state machine and its clocks: starts, stops, pauses, priority changes, alerts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from bsante.sla_monitor.contract.calendars import PARIS
from bsante.sla_monitor.contract.clocks import Outcome, StopReason, deadline_of, due_alerts
from bsante.sla_monitor.contract.errors import (
    AlreadyDone,
    ClockStopped,
    InvalidTransition,
    NaiveDatetime,
    TimeOutOfOrder,
)
from bsante.sla_monitor.contract.indicators import (
    BY_ID,
    INDICATORS,
    CalendarKind,
    Calendars,
    Category,
    Event,
    IndicatorId,
    Phase,
    Priority,
)
from bsante.sla_monitor.contract.tickets import Incident, State, Ticket

H = timedelta(hours=1)
M = timedelta(minutes=1)
CAL = Calendars()


def paris(*args: int) -> datetime:
    return datetime(*args, tzinfo=PARIS)  # type: ignore[misc]


def ticket(
    opened: datetime,
    priority: Priority = Priority.BLOQUANT,
    category: Category = Category.INCIDENT,
    phase: Phase | None = None,
    calendars: Calendars = CAL,
) -> Ticket:
    return Ticket("t-1", "s-1", category, priority, opened, calendars, phase)


def clock(t: Ticket, indicator: IndicatorId, sequence: int = 1):  # type: ignore[no-untyped-def]
    return next(c for c in t.clocks if c.indicator is indicator and c.sequence == sequence)


def ids(t: Ticket) -> set[IndicatorId]:
    return {c.indicator for c in t.clocks}


def test_each_indicator_says_its_calendar_start_stop_target_and_objective() -> None:
    by = BY_ID
    assert by[IndicatorId.RESTORATION].calendar is CalendarKind.ALWAYS
    assert by[IndicatorId.RESTORATION].target == 4 * H
    take_in = by[IndicatorId.TAKE_IN]
    assert (take_in.starts_on, take_in.stops_on, take_in.target, take_in.objective) == (
        Event.OPENED,
        Event.TAKEN_IN,
        30 * M,
        0.90,
    )
    assert by[IndicatorId.QUALIFICATION].stops_on is Event.QUALIFIED
    assert by[IndicatorId.ESCALATION].starts_on is Event.LEVEL2_REQUIRED
    assert by[IndicatorId.ESCALATION].target == 15 * M
    assert by[IndicatorId.INTERVENTION].target == H
    assert by[IndicatorId.INTERVENTION_ON_CALL].calendar is CalendarKind.ALWAYS
    assert by[IndicatorId.INTERVENTION_ON_CALL].target == 4 * H
    assert by[IndicatorId.RESOLUTION_BLOQUANT].target == 8 * H
    assert by[IndicatorId.RESOLUTION_MAJEUR].calendar is CalendarKind.WORKING_DAYS
    assert by[IndicatorId.RESOLUTION_MAJEUR].target == timedelta(days=4)
    assert [by[IndicatorId(f"reader_announcement_{p}")].target for p in Phase] == [
        3 * M,
        15 * M,
        2 * H,
    ]
    assert [by[IndicatorId(f"reader_on_site_{p}")].target for p in Phase] == [
        timedelta(days=n) for n in (1, 2, 3)
    ]
    # Opening, taking in, qualification and resolution stop distinct clocks.
    stops = {i.id: i.stops_on for i in INDICATORS}
    assert len({stops[IndicatorId.TAKE_IN], stops[IndicatorId.QUALIFICATION]}) == 2
    assert len({i.id for i in INDICATORS}) == len(INDICATORS)


def test_a_blocking_incident_walks_the_whole_life_and_meets_every_clock() -> None:
    t = ticket(paris(2026, 12, 7, 9))  # Monday, in service hours
    assert ids(t) == {
        IndicatorId.TAKE_IN,
        IndicatorId.INTERVENTION,
        IndicatorId.QUALIFICATION,
        IndicatorId.RESOLUTION_BLOQUANT,
    }
    t.take_in(paris(2026, 12, 7, 9, 10))
    assert clock(t, IndicatorId.TAKE_IN).stopped_at == paris(2026, 12, 7, 9, 10)
    assert clock(t, IndicatorId.QUALIFICATION).running  # taking in is not qualifying
    t.intervene(paris(2026, 12, 7, 9, 40))
    t.qualify(paris(2026, 12, 7, 10), needs_level2=True)
    assert clock(t, IndicatorId.ESCALATION).started_at == paris(2026, 12, 7, 10)
    t.escalate(paris(2026, 12, 7, 10, 10))
    t.resolve(paris(2026, 12, 7, 15))
    t.close(paris(2026, 12, 8, 9))
    assert t.state is State.CLOSED
    assert all(c.outcome(CAL, paris(2026, 12, 9)) is Outcome.MET for c in t.clocks)
    assert [s.action for s in t.history] == [
        "open",
        "take_in",
        "intervene",
        "qualify",
        "escalate",
        "resolve",
        "close",
    ]


def test_impossible_transitions_raise_domain_errors() -> None:
    t = ticket(paris(2026, 12, 7, 9))
    with pytest.raises(InvalidTransition) as closing:
        t.close(paris(2026, 12, 7, 9, 5))
    assert (closing.value.action, closing.value.state) == ("close", "new")
    with pytest.raises(InvalidTransition):
        t.qualify(paris(2026, 12, 7, 9, 5))  # not taken in
    t.take_in(paris(2026, 12, 7, 9, 5))
    with pytest.raises(AlreadyDone):
        t.take_in(paris(2026, 12, 7, 9, 6))
    with pytest.raises(InvalidTransition):
        t.resolve(paris(2026, 12, 7, 9, 6))  # unqualified
    with pytest.raises(InvalidTransition):
        t.close(paris(2026, 12, 7, 9, 6))  # unqualified
    with pytest.raises(InvalidTransition):
        t.escalate(paris(2026, 12, 7, 9, 6))
    t.qualify(paris(2026, 12, 7, 9, 30))
    with pytest.raises(AlreadyDone):
        t.qualify(paris(2026, 12, 7, 9, 31))
    t.resolve(paris(2026, 12, 7, 11))
    with pytest.raises(AlreadyDone):
        t.resolve(paris(2026, 12, 7, 12))
    with pytest.raises(InvalidTransition):
        t.wait_for_customer(paris(2026, 12, 7, 12))
    t.close(paris(2026, 12, 7, 12))
    with pytest.raises(AlreadyDone):
        t.close(paris(2026, 12, 7, 13))
    with pytest.raises(AlreadyDone):
        t.resolve(paris(2026, 12, 7, 13))
    assert t.state is State.CLOSED  # failed calls changed nothing
    assert len(t.history) == 5


def test_events_out_of_order_and_naive_times_are_refused_without_effect() -> None:
    t = ticket(paris(2026, 12, 7, 9))
    with pytest.raises(TimeOutOfOrder):
        t.take_in(paris(2026, 12, 7, 8))
    with pytest.raises(NaiveDatetime):
        t.take_in(datetime(2026, 12, 7, 10))
    assert t.state is State.NEW and clock(t, IndicatorId.TAKE_IN).running


def test_a_ticket_opened_on_sunday_is_measured_from_monday_8() -> None:
    sunday = paris(2026, 12, 6, 15)
    t = ticket(sunday, Priority.MINEUR, Category.REQUEST)
    take_in = clock(t, IndicatorId.TAKE_IN)
    assert take_in.started_at == sunday  # the record keeps the real opening
    assert take_in.deadline == paris(2026, 12, 7, 8, 30)
    assert CAL[CalendarKind.SERVICE_HOURS].next_open(sunday) == paris(2026, 12, 7, 8)
    t.take_in(paris(2026, 12, 7, 8, 20))  # 17 real hours later, 20 service minutes
    assert clock(t, IndicatorId.TAKE_IN).outcome(CAL, paris(2026, 12, 8)) is Outcome.MET


def test_on_call_applies_to_blocking_incidents_opened_outside_service_hours() -> None:
    night = ticket(paris(2026, 12, 8, 22))  # Tuesday 22:00
    assert IndicatorId.INTERVENTION_ON_CALL in ids(night)
    assert IndicatorId.INTERVENTION not in ids(night)
    assert clock(night, IndicatorId.INTERVENTION_ON_CALL).deadline == paris(2026, 12, 9, 2)
    # A minor incident at night waits for service hours: 1 h from Wednesday 08:00.
    minor_night = ticket(paris(2026, 12, 8, 22), Priority.MINEUR)
    assert IndicatorId.INTERVENTION_ON_CALL not in ids(minor_night)
    assert clock(minor_night, IndicatorId.INTERVENTION).deadline == paris(2026, 12, 9, 9)
    # Raised to bloquant in the night: the on-call clock takes over from the change.
    minor_night.change_priority(paris(2026, 12, 8, 23), Priority.BLOQUANT)
    superseded = clock(minor_night, IndicatorId.INTERVENTION)
    assert superseded.stop_reason is StopReason.PRIORITY_CHANGED
    assert clock(minor_night, IndicatorId.INTERVENTION_ON_CALL).deadline == paris(2026, 12, 9, 3)
    # In service hours a blocking incident gets the 1-hour intervention, not on-call.
    day = ticket(paris(2026, 12, 8, 10))
    assert IndicatorId.INTERVENTION in ids(day)
    assert IndicatorId.INTERVENTION_ON_CALL not in ids(day)


def test_waiting_for_customer_keeps_each_interval_and_extends_the_deadline() -> None:
    t = ticket(paris(2027, 11, 10, 16))  # Wednesday; Thursday 11/11 is a holiday
    resolution = clock(t, IndicatorId.RESOLUTION_BLOQUANT)
    assert resolution.deadline == paris(2027, 11, 12, 14)
    t.take_in(paris(2027, 11, 10, 16, 5))
    t.qualify(paris(2027, 11, 10, 16, 30))
    t.wait_for_customer(paris(2027, 11, 10, 17))
    paused = clock(t, IndicatorId.RESOLUTION_BLOQUANT)
    assert paused.paused and paused.deadline is None
    assert paused.initial_deadline == paris(2027, 11, 12, 14)
    # Frozen while paused: the holiday and the night consume nothing.
    frozen = paused.elapsed(CAL, paris(2027, 11, 12, 9))
    assert frozen == H
    t.customer_replied(paris(2027, 11, 12, 10))
    t.wait_for_customer(paris(2027, 11, 12, 11))
    t.customer_replied(paris(2027, 11, 12, 11, 30))
    resumed = clock(t, IndicatorId.RESOLUTION_BLOQUANT)
    assert [(p.start, p.end) for p in resumed.pauses] == [
        (paris(2027, 11, 10, 17), paris(2027, 11, 12, 10)),
        (paris(2027, 11, 12, 11), paris(2027, 11, 12, 11, 30)),
    ]
    # 3 h of open time in the first pause, 30 min in the second.
    assert resumed.deadline == paris(2027, 11, 12, 17, 30)
    assert resumed.initial_deadline == paris(2027, 11, 12, 14)  # never rewritten
    assert t.state is State.QUALIFIED
    # Take-in is not pausable and was stopped anyway; it is untouched.
    assert clock(t, IndicatorId.TAKE_IN).pauses == ()


def test_a_priority_change_closes_the_clock_and_records_a_new_one() -> None:
    t = ticket(paris(2026, 12, 7, 9), Priority.MAJEUR)
    majeur = clock(t, IndicatorId.RESOLUTION_MAJEUR)
    t.take_in(paris(2026, 12, 7, 9, 10))
    t.change_priority(paris(2026, 12, 7, 11), Priority.BLOQUANT)
    old = clock(t, IndicatorId.RESOLUTION_MAJEUR)
    assert old.stop_reason is StopReason.PRIORITY_CHANGED
    assert old.deadline == majeur.deadline  # the old deadline stays on the record
    new = clock(t, IndicatorId.RESOLUTION_BLOQUANT)
    assert (new.started_at, new.priority) == (paris(2026, 12, 7, 11), Priority.BLOQUANT)
    # 8 service hours from Monday 11:00: 7 h on Monday, 1 h on Tuesday.
    assert new.deadline == paris(2026, 12, 8, 9)
    assert clock(t, IndicatorId.TAKE_IN).sequence == 1  # not bound to the priority


def test_priority_back_and_forth_numbers_the_clocks() -> None:
    t = ticket(paris(2026, 12, 7, 9), Priority.BLOQUANT)
    t.take_in(paris(2026, 12, 7, 9, 5))
    t.wait_for_customer(paris(2026, 12, 7, 9, 30))
    t.change_priority(paris(2026, 12, 7, 10), Priority.MAJEUR)
    t.change_priority(paris(2026, 12, 7, 10, 30), Priority.BLOQUANT)
    seqs = [
        (c.indicator, c.sequence, c.stop_reason)
        for c in t.clocks
        if c.indicator in (IndicatorId.RESOLUTION_BLOQUANT, IndicatorId.RESOLUTION_MAJEUR)
    ]
    assert seqs == [
        (IndicatorId.RESOLUTION_BLOQUANT, 1, StopReason.PRIORITY_CHANGED),
        (IndicatorId.RESOLUTION_MAJEUR, 1, StopReason.PRIORITY_CHANGED),
        (IndicatorId.RESOLUTION_BLOQUANT, 2, None),
    ]
    latest = clock(t, IndicatorId.RESOLUTION_BLOQUANT, 2)
    assert latest.paused  # started while the ticket waits: paused from its start
    t.customer_replied(paris(2026, 12, 7, 11))
    assert clock(t, IndicatorId.RESOLUTION_BLOQUANT, 2).deadline == paris(2026, 12, 8, 9)


def test_card_reader_replacement_delays_depend_on_the_phase() -> None:
    opened = paris(2026, 12, 7, 10)
    for phase, announce, on_site in (
        (Phase.PILOT, paris(2026, 12, 7, 10, 3), paris(2026, 12, 8, 10)),
        (Phase.CALIBRATION, paris(2026, 12, 7, 10, 15), paris(2026, 12, 9, 10)),
        (Phase.WAVE, paris(2026, 12, 7, 12), paris(2026, 12, 10, 10)),
    ):
        t = ticket(opened, Priority.MAJEUR, Category.CARD_READER_REPLACEMENT, phase)
        assert ids(t) == {
            IndicatorId.TAKE_IN,
            IndicatorId(f"reader_announcement_{phase}"),
            IndicatorId(f"reader_on_site_{phase}"),
        }
        assert clock(t, IndicatorId(f"reader_announcement_{phase}")).deadline == announce
        assert clock(t, IndicatorId(f"reader_on_site_{phase}")).deadline == on_site
    t = ticket(opened, Priority.MAJEUR, Category.CARD_READER_REPLACEMENT, Phase.PILOT)
    t.take_in(paris(2026, 12, 7, 10, 1))
    t.announce(paris(2026, 12, 7, 10, 2))
    with pytest.raises(AlreadyDone):
        t.announce(paris(2026, 12, 7, 10, 4))
    t.intervene(paris(2026, 12, 8, 9))
    assert all(not c.running for c in t.clocks)
    with pytest.raises(InvalidTransition):
        ticket(opened).announce(paris(2026, 12, 7, 11))


def test_resolving_stops_every_clock_still_running() -> None:
    t = ticket(paris(2026, 12, 7, 9))
    t.take_in(paris(2026, 12, 7, 9, 5))
    t.qualify(paris(2026, 12, 7, 9, 20))
    t.resolve(paris(2026, 12, 7, 9, 50))  # fixed remotely, no separate intervention step
    assert clock(t, IndicatorId.INTERVENTION).stopped_at == paris(2026, 12, 7, 9, 50)
    assert not t.running_clocks()
    with pytest.raises(ClockStopped):
        clock(t, IndicatorId.INTERVENTION).pause(paris(2026, 12, 7, 10))


def test_a_late_take_in_is_breached_before_and_after_it_happens() -> None:
    t = ticket(paris(2026, 12, 7, 9), Priority.MINEUR, Category.REQUEST)
    take_in = clock(t, IndicatorId.TAKE_IN)
    assert take_in.outcome(CAL, paris(2026, 12, 7, 9, 29)) is Outcome.RUNNING
    assert take_in.outcome(CAL, paris(2026, 12, 7, 9, 31)) is Outcome.BREACHED
    t.take_in(paris(2026, 12, 7, 9, 45))
    assert clock(t, IndicatorId.TAKE_IN).outcome(CAL, paris(2026, 12, 8)) is Outcome.BREACHED


def test_escalation_levels_fire_once_even_when_the_scheduler_was_late() -> None:
    t = ticket(paris(2026, 12, 7, 9), Priority.MINEUR, Category.REQUEST)
    assert due_alerts(t.id, t.clocks, CAL, paris(2026, 12, 7, 9, 20)) == []
    # The scheduler wakes up only at 11:00: the 80 % warning (9:24) and the deadline (9:30)
    # of take-in are both due, with their real due times.
    late = due_alerts(t.id, t.clocks, CAL, paris(2026, 12, 7, 11))
    take_in = [a for a in late if a.indicator is IndicatorId.TAKE_IN]
    assert [(a.level, a.due_at) for a in take_in] == [
        ("warning", paris(2026, 12, 7, 9, 24)),
        ("deadline_reached", paris(2026, 12, 7, 9, 30)),
    ]
    fired = {a.key for a in late}
    assert due_alerts(t.id, t.clocks, CAL, paris(2026, 12, 7, 11, 5), fired) == []
    # Once taken in, the take-in clock is over: no TTO level behaves like a TTR one.
    t.take_in(paris(2026, 12, 7, 11, 10))
    later = due_alerts(t.id, t.clocks, CAL, paris(2026, 12, 7, 18), fired)
    assert {a.indicator for a in later} == {IndicatorId.QUALIFICATION}


def test_a_paused_clock_fires_nothing_while_waiting() -> None:
    t = ticket(paris(2026, 12, 7, 9))
    t.take_in(paris(2026, 12, 7, 9, 5))
    t.intervene(paris(2026, 12, 7, 9, 10))
    t.qualify(paris(2026, 12, 7, 9, 30))
    t.wait_for_customer(paris(2026, 12, 7, 10))
    assert due_alerts(t.id, t.clocks, CAL, paris(2026, 12, 14)) == []


def test_incident_restoration_runs_24x7_from_the_first_failed_probe() -> None:
    inc = Incident("i-1", paris(2027, 10, 30, 23, 30), CAL)
    gtr = inc.clocks[0]
    assert gtr.indicator is IndicatorId.RESTORATION
    assert gtr.deadline == datetime(2027, 10, 31, 1, 30, tzinfo=UTC)  # 4 real hours
    inc.restore(datetime(2027, 10, 31, 1, 0, tzinfo=UTC))
    assert inc.clocks[0].outcome(CAL, paris(2027, 11, 1)) is Outcome.MET
    with pytest.raises(AlreadyDone):
        inc.restore(paris(2027, 11, 1))


def test_alsace_moselle_tickets_use_their_own_holidays() -> None:
    am = Calendars(alsace_moselle=True)
    t = ticket(paris(2026, 12, 24, 17), Priority.MINEUR, Category.REQUEST, calendars=am)
    assert clock(t, IndicatorId.QUALIFICATION).deadline == paris(2026, 12, 28, 11)
    general = ticket(paris(2026, 12, 24, 17), Priority.MINEUR, Category.REQUEST)
    assert clock(general, IndicatorId.QUALIFICATION).deadline == paris(2026, 12, 26, 11)


def test_deadline_of_any_indicator_from_a_start_time() -> None:
    thursday = paris(2026, 12, 24, 17)
    assert deadline_of(IndicatorId.QUALIFICATION, thursday, CAL) == paris(2026, 12, 26, 11)
    assert deadline_of(IndicatorId.RESTORATION, thursday, CAL) == paris(2026, 12, 24, 21)
    assert deadline_of(IndicatorId.RESOLUTION_MAJEUR, thursday, CAL) == paris(2026, 12, 31, 17)
    pause = [(paris(2026, 12, 26, 9), paris(2026, 12, 26, 10))]
    assert deadline_of(IndicatorId.QUALIFICATION, thursday, CAL, pause) == paris(2026, 12, 26, 12)
    # Take-in does not pause: the same pause changes nothing.
    assert deadline_of(IndicatorId.TAKE_IN, thursday, CAL, pause) == paris(2026, 12, 24, 17, 30)
    # It agrees with the clock a ticket records.
    t = ticket(thursday, Priority.MINEUR, Category.REQUEST)
    assert clock(t, IndicatorId.QUALIFICATION).deadline == deadline_of(
        IndicatorId.QUALIFICATION, thursday, CAL
    )
