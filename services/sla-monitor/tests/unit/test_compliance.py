"""Monthly compliance per indicator from tickets and incidents."""

from __future__ import annotations

from datetime import datetime, timedelta

from bsante.sla_monitor.contract.calendars import PARIS
from bsante.sla_monitor.contract.compliance import compliance, month_of
from bsante.sla_monitor.contract.indicators import Calendars, Category, IndicatorId, Priority
from bsante.sla_monitor.contract.tickets import Incident, Ticket

CAL = Calendars()
M = timedelta(minutes=1)


def paris(*args: int) -> datetime:
    return datetime(*args, tzinfo=PARIS)  # type: ignore[misc]


def request(n: int, opened: datetime, taken_after: timedelta | None) -> Ticket:
    t = Ticket(f"t-{n}", "s-1", Category.REQUEST, Priority.MINEUR, opened, CAL)
    if taken_after is not None:
        t.take_in(opened + taken_after)
    return t


def test_take_in_share_and_breaches_per_month() -> None:
    opened = paris(2026, 12, 7, 9)
    tickets = [request(n, opened, 10 * M) for n in range(8)]
    tickets.append(request(8, opened, 45 * M))  # late
    tickets.append(request(9, opened, None))  # never taken in: late already
    tickets.append(request(10, paris(2026, 12, 31, 17, 50), None))  # running, within target
    tickets.append(request(11, paris(2027, 1, 4, 9), 5 * M))  # January
    at = paris(2026, 12, 31, 17, 55)
    report = compliance(tickets, at)
    dec = report[("2026-12", IndicatorId.TAKE_IN)]
    assert (dec.met, len(dec.breaches), dec.running, dec.measured) == (8, 2, 1, 10)
    assert dec.share == 0.8 and not dec.compliant  # 80 % < 90 %
    assert {b.subject_id for b in dec.breaches} == {"t-8", "t-9"}
    never = next(b for b in dec.breaches if b.subject_id == "t-9")
    assert never.stopped_at is None and never.deadline == paris(2026, 12, 7, 9, 30)
    assert ("2027-01", IndicatorId.TAKE_IN) not in report  # started after `at`
    later = compliance(tickets, paris(2027, 2, 1))
    assert later[("2027-01", IndicatorId.TAKE_IN)].share == 1.0
    assert later[("2027-01", IndicatorId.TAKE_IN)].compliant


def test_ninety_percent_is_compliant() -> None:
    opened = paris(2026, 12, 7, 9)
    tickets = [request(n, opened, 10 * M) for n in range(9)] + [request(9, opened, 2 * M * 60)]
    row = compliance(tickets, paris(2026, 12, 8))[("2026-12", IndicatorId.TAKE_IN)]
    assert row.share == 0.9 and row.compliant


def test_superseded_clocks_count_only_when_already_late() -> None:
    on_time = Ticket("a", "s", Category.INCIDENT, Priority.BLOQUANT, paris(2026, 12, 7, 9), CAL)
    on_time.take_in(paris(2026, 12, 7, 9, 5))
    on_time.change_priority(paris(2026, 12, 7, 10), Priority.MAJEUR)
    late = Ticket("b", "s", Category.INCIDENT, Priority.BLOQUANT, paris(2026, 12, 7, 9), CAL)
    late.take_in(paris(2026, 12, 7, 9, 5))
    late.change_priority(paris(2026, 12, 8, 12), Priority.MAJEUR)  # 8 h were spent already
    row = compliance([on_time, late], paris(2026, 12, 9))[
        ("2026-12", IndicatorId.RESOLUTION_BLOQUANT)
    ]
    assert (row.met, row.superseded, [b.subject_id for b in row.breaches]) == (0, 1, ["b"])
    majeur = compliance([on_time, late], paris(2026, 12, 9))[
        ("2026-12", IndicatorId.RESOLUTION_MAJEUR)
    ]
    assert majeur.running == 2


def test_restoration_breaches_from_incidents() -> None:
    quick = Incident("i-1", paris(2026, 12, 5, 1), CAL)
    quick.restore(paris(2026, 12, 5, 4, 59))
    slow = Incident("i-2", paris(2026, 12, 6, 1), CAL)  # Sunday night: 24/7 still counts
    slow.restore(paris(2026, 12, 6, 5, 1))
    row = compliance([quick, slow], paris(2026, 12, 10))[("2026-12", IndicatorId.RESTORATION)]
    assert (row.met, [b.subject_id for b in row.breaches]) == (1, ["i-2"])
    assert row.breaches[0].elapsed == timedelta(hours=4, minutes=1)


def test_months_are_local_months() -> None:
    # 1/1 00:30 in Paris is 31/12 23:30 UTC, and belongs to January.
    assert month_of(paris(2026, 12, 31, 23, 30)) == "2026-12"
    assert month_of(paris(2027, 1, 1, 0, 30)) == "2027-01"
