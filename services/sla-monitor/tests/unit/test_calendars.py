"""Worked cases of business time: service hours, holidays, Alsace-Moselle, DST, pauses."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from bsante.sla_monitor.contract.calendars import (
    PARIS,
    Calendar,
    FrenchHolidays,
    NoHolidays,
    Segment,
    always_open,
    service_hours,
    working_days,
)
from bsante.sla_monitor.contract.errors import NaiveDatetime, NoOpenTime

H = timedelta(hours=1)
SH = service_hours()
SH_AM = service_hours(alsace_moselle=True)
ALWAYS = always_open()
WD = working_days()


def paris(*args: int) -> datetime:
    return datetime(*args, tzinfo=PARIS)  # type: ignore[misc]


def test_christmas_eve_plus_four_service_hours_lands_on_saturday_morning() -> None:
    # Thu 24/12/2026 17:00: one hour on Thursday, Friday 25 is Noël, three hours on Saturday.
    assert SH.add(paris(2026, 12, 24, 17), 4 * H) == paris(2026, 12, 26, 11)
    assert SH.elapsed(paris(2026, 12, 24, 17), paris(2026, 12, 26, 11)) == 4 * H


def test_in_alsace_moselle_saint_etienne_pushes_it_to_monday() -> None:
    # 26/12 is a holiday there: Saturday closed, Sunday closed, Monday 28/12 08:00 + 3 h.
    assert date(2026, 12, 26) not in FrenchHolidays()
    assert FrenchHolidays(alsace_moselle=True).name(date(2026, 12, 26)) is not None
    assert SH_AM.add(paris(2026, 12, 24, 17), 4 * H) == paris(2026, 12, 28, 11)


def test_good_friday_is_a_holiday_only_in_alsace_moselle() -> None:
    thursday = paris(2027, 3, 25, 17)
    assert SH.add(thursday, 2 * H) == paris(2027, 3, 26, 9)
    # Fri 26/03 closed, Sat 27 8–12 open, then Easter Monday: 1 h Thu + 1 h Sat.
    assert SH_AM.add(thursday, 2 * H) == paris(2027, 3, 27, 9)


def test_friday_afternoon_to_monday_morning_is_seven_service_hours() -> None:
    # Fri 16–18 (2 h) + Sat 8–12 (4 h) + Mon 8–9 (1 h).
    assert SH.elapsed(paris(2026, 12, 4, 16), paris(2026, 12, 7, 9)) == 7 * H


def test_saturday_before_easter_plus_two_hours_skips_easter_monday() -> None:
    # Sat 27/03/2027 11:00: 1 h left on Saturday, Sunday (also the spring DST change),
    # Easter Monday 29/03, then Tuesday 08:00 + 1 h.
    deadline = SH.add(paris(2027, 3, 27, 11), 2 * H)
    assert deadline == paris(2027, 3, 30, 9)
    assert deadline.astimezone(PARIS).utcoffset() == 2 * H  # summer time by then


def test_restoration_across_spring_forward_is_four_real_hours() -> None:
    start = paris(2027, 3, 27, 23)  # CET, the night clocks jump 02:00 → 03:00
    deadline = ALWAYS.add(start, 4 * H)
    assert deadline - start.astimezone(UTC) == 4 * H
    local = deadline.astimezone(PARIS)
    assert (local.hour, local.utcoffset()) == (4, 2 * H)  # 04:00 CEST, not 03:00
    assert ALWAYS.elapsed(start, deadline) == 4 * H


def test_restoration_across_fall_back_is_four_real_hours() -> None:
    start = paris(2027, 10, 30, 23)  # CEST; clocks go back 03:00 → 02:00
    deadline = ALWAYS.add(start, 4 * H)
    assert deadline - start.astimezone(UTC) == 4 * H
    local = deadline.astimezone(PARIS)
    # 02:00 CET, the second 02:00 of the night (fold=1), not 03:00.
    assert (local.hour, local.utcoffset(), local.fold) == (2, H, 1)  # 02:00 CET, not 03:00


def test_the_generic_engine_agrees_with_the_24x7_shortcut_on_dst_nights() -> None:
    generic = Calendar("all", {wd: (Segment(0, 1440),) for wd in range(7)}, NoHolidays())
    for start in (paris(2027, 3, 27, 23), paris(2027, 10, 30, 23)):
        assert generic.add(start, 4 * H) == ALWAYS.add(start, 4 * H)
        assert generic.elapsed(start, start.astimezone(UTC) + 30 * H) == 30 * H
    # The local day of a change has 23 and 25 real hours.
    assert generic.elapsed(paris(2027, 3, 28), paris(2027, 3, 29)) == 23 * H
    assert generic.elapsed(paris(2027, 10, 31), paris(2027, 11, 1)) == 25 * H


def test_service_hours_are_not_affected_by_the_night_change() -> None:
    # Fri 29/10/2027 17:00 + 6 h: 1 h Fri, 4 h Sat, (Sunday 31: DST change), 1 h Tue (1/11 holiday).
    assert SH.add(paris(2027, 10, 29, 17), 6 * H) == paris(2027, 11, 2, 9)
    # Sat 30/10 8:00 → Mon 1/11 is only Saturday's 4 h; the 25-hour Sunday adds nothing.
    assert SH.elapsed(paris(2027, 10, 30, 8), paris(2027, 11, 2, 8)) == 4 * H


def test_a_ticket_opened_on_sunday_starts_its_clock_on_monday_8() -> None:
    sunday = paris(2026, 12, 6, 15)
    assert not SH.is_open(sunday)
    assert SH.next_open(sunday) == paris(2026, 12, 7, 8)
    assert SH.add(sunday, timedelta(minutes=30)) == paris(2026, 12, 7, 8, 30)
    assert SH.elapsed(sunday, paris(2026, 12, 7, 8)) == timedelta(0)


def test_after_closing_time_and_before_opening() -> None:
    assert SH.add(paris(2026, 12, 7, 19), H) == paris(2026, 12, 8, 9)
    assert SH.add(paris(2026, 12, 7, 6), H) == paris(2026, 12, 7, 9)
    # A deadline can be exactly closing time; it does not jump to the next morning.
    assert SH.add(paris(2026, 12, 7, 14), 4 * H) == paris(2026, 12, 7, 18)
    # Saturday afternoon is closed.
    assert SH.add(paris(2026, 12, 5, 11, 30), H) == paris(2026, 12, 7, 8, 30)


def test_a_pause_spanning_a_holiday_extends_only_by_its_open_hours() -> None:
    opened = paris(2027, 11, 10, 16)  # Wednesday; Thursday 11/11 is the Armistice
    assert SH.add(opened, 8 * H) == paris(2027, 11, 12, 14)
    pause = (paris(2027, 11, 10, 17), paris(2027, 11, 12, 10))  # Wed 17:00 → Fri 10:00
    # Paused open time: Wed 17–18 and Fri 8–10, 3 h; the holiday is not counted twice.
    assert SH.elapsed(*pause) == 3 * H
    assert SH.add(opened, 8 * H, [pause]) == paris(2027, 11, 12, 17)
    assert SH.elapsed(opened, paris(2027, 11, 12, 17), [pause]) == 8 * H


def test_pauses_on_the_24x7_calendar_and_overlapping_pauses() -> None:
    start = paris(2026, 12, 1, 10)
    pauses = [(paris(2026, 12, 1, 11), paris(2026, 12, 1, 12)), (start + H / 2, start + 1.5 * H)]
    # Merged: 10:30–12:00, 1.5 h.
    assert ALWAYS.add(start, 4 * H, pauses) == paris(2026, 12, 1, 15, 30)
    assert ALWAYS.elapsed(start, paris(2026, 12, 1, 15, 30), pauses) == 4 * H
    # A pause starting exactly at the deadline does not move it.
    assert ALWAYS.add(start, H, [(start + H, start + 3 * H)]) == start + H


def test_four_working_days_skip_weekends_and_holidays() -> None:
    # Wed 10/11/2027 10:00: Thu 11/11 holiday; Fri, Mon, Tue, then Wed 17/11 10:00.
    assert WD.add(paris(2027, 11, 10, 10), timedelta(days=4)) == paris(2027, 11, 17, 10)
    # Opened on Saturday: the first working day is Monday, four whole days end on Friday 00:00.
    assert WD.add(paris(2026, 12, 5, 9), timedelta(days=4)) == paris(2026, 12, 11, 0)
    # Fri 26/03/2027 12:00: the spring-change weekend, then Easter Monday; Fri 12 h, Tue, Wed 12 h.
    assert WD.add(paris(2027, 3, 26, 12), timedelta(days=2)) == paris(2027, 3, 31, 12)


def test_inputs_in_utc_give_the_same_answers() -> None:
    start = paris(2026, 12, 24, 17)
    assert SH.add(start.astimezone(UTC), 4 * H) == paris(2026, 12, 26, 11)


def test_naive_datetimes_and_negative_durations_are_refused() -> None:
    with pytest.raises(NaiveDatetime):
        SH.add(datetime(2026, 12, 1, 10), H)
    with pytest.raises(NaiveDatetime):
        ALWAYS.elapsed(paris(2026, 12, 1), datetime(2026, 12, 2))
    with pytest.raises(ValueError):
        SH.add(paris(2026, 12, 1, 10), -H)


def test_a_calendar_without_open_time_is_refused() -> None:
    with pytest.raises(NoOpenTime):
        Calendar("never", {}, NoHolidays())


def test_french_holidays_are_the_eleven_national_days_plus_two_in_alsace_moselle() -> None:
    national = FrenchHolidays().between(date(2027, 1, 1), date(2027, 12, 31))
    local = FrenchHolidays(alsace_moselle=True).between(date(2027, 1, 1), date(2027, 12, 31))
    assert len(national) == 11
    assert set(local) - set(national) == {date(2027, 3, 26), date(2027, 12, 26)}
    assert date(2027, 5, 17) in national  # Lundi de Pentecôte
