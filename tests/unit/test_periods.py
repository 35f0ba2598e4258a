"""Calendar and rolling periods, their labels, and local days, across time zones and DST."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from itertools import pairwise
from zoneinfo import ZoneInfo

import pytest

from sla_operator.domain.errors import SpecError
from sla_operator.domain.intervals import Interval
from sla_operator.domain.model import CalendarPeriod, Window, WindowType
from sla_operator.domain.periods import (
    local_day,
    local_to_utc,
    period_at,
    period_for_label,
    period_label,
    previous_periods,
    zone,
)

LONDON = ZoneInfo("Europe/London")


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def calendar(period: CalendarPeriod, time_zone: str = "UTC") -> Window:
    return Window(type=WindowType.CALENDAR, period=period, time_zone=time_zone)


def between(start: str, end: str) -> Interval:
    return Interval(utc(start), utc(end))


@pytest.mark.parametrize(
    ("window", "moment", "expected", "label"),
    [
        # 2026-10-28 is a Wednesday; ISO week 44 runs Monday 26 Oct to Monday 2 Nov
        (
            calendar(CalendarPeriod.WEEK),
            "2026-10-28T12:00",
            between("2026-10-26T00:00", "2026-11-02T00:00"),
            "2026-W44",
        ),
        # 31 Dec 2026 (Thursday) is in ISO week 53 of 2026, which ends Monday 4 Jan 2027
        (
            calendar(CalendarPeriod.WEEK),
            "2026-12-31T23:59",
            between("2026-12-28T00:00", "2027-01-04T00:00"),
            "2026-W53",
        ),
        (
            calendar(CalendarPeriod.MONTH),
            "2026-11-15T08:00",
            between("2026-11-01T00:00", "2026-12-01T00:00"),
            "2026-11",
        ),
        (
            calendar(CalendarPeriod.QUARTER),
            "2026-11-15T08:00",
            between("2026-10-01T00:00", "2027-01-01T00:00"),
            "2026-Q4",
        ),
        (
            calendar(CalendarPeriod.YEAR),
            "2026-11-15T08:00",
            between("2026-01-01T00:00", "2027-01-01T00:00"),
            "2026",
        ),
        # 23:30Z on 31 Oct is 00:30 on 1 Nov in Berlin (CET, UTC+1): November there
        (
            calendar(CalendarPeriod.MONTH, "Europe/Berlin"),
            "2026-10-31T23:30",
            between("2026-10-31T23:00", "2026-11-30T23:00"),
            "2026-11",
        ),
        # New York: 1 Oct is EDT (UTC-4), so the quarter begins at 04:00Z; 1 Jan is EST
        # (UTC-5), so it ends at 05:00Z
        (
            calendar(CalendarPeriod.QUARTER, "America/New_York"),
            "2026-11-15T08:00",
            between("2026-10-01T04:00", "2027-01-01T05:00"),
            "2026-Q4",
        ),
    ],
)
def test_calendar_periods_begin_at_local_midnight(
    window: Window, moment: str, expected: Interval, label: str
) -> None:
    period = period_at(window, utc(moment))
    assert period == expected
    assert period_label(window, period) == label
    assert period_for_label(window, label) == expected


@pytest.mark.parametrize(
    ("label", "start", "end", "hours"),
    [
        # GMT until the last Sunday of March: 1 Mar 00:00 GMT = 00:00Z; 1 Apr 00:00 BST =
        # 31 Mar 23:00Z. 31 days x 24 h - 1 h = 743 h
        ("2026-03", "2026-03-01T00:00", "2026-03-31T23:00", 743),
        # 1 Oct 00:00 BST = 30 Sep 23:00Z; 1 Nov 00:00 GMT = 1 Nov 00:00Z. 744 h + 1 h = 745 h
        ("2026-10", "2026-09-30T23:00", "2026-11-01T00:00", 745),
        ("2026-11", "2026-11-01T00:00", "2026-12-01T00:00", 720),
    ],
)
def test_a_london_month_is_as_long_as_its_clocks_say(label: str, start: str, end: str, hours: int) -> None:
    period = period_for_label(calendar(CalendarPeriod.MONTH, "Europe/London"), label)
    assert period == between(start, end)
    assert period.seconds == hours * 3600


def test_a_rolling_period_is_the_duration_ending_now() -> None:
    window = Window(type=WindowType.ROLLING, duration=timedelta(days=30))
    period = period_at(window, utc("2026-11-20T06:00"))
    assert period == between("2026-10-21T06:00", "2026-11-20T06:00")
    assert period_label(window, period) == "rolling-30d"
    assert previous_periods(window, utc("2026-11-20T06:00"), 5) == []


def test_a_rolling_period_of_part_days_is_labelled_in_hours() -> None:
    window = Window(type=WindowType.ROLLING, duration=timedelta(hours=36))
    assert period_label(window, period_at(window, utc("2026-11-20T06:00"))) == "rolling-36h"


def test_previous_periods_are_the_closed_ones_oldest_first() -> None:
    window = calendar(CalendarPeriod.MONTH, "Europe/London")
    periods = previous_periods(window, utc("2026-11-26T10:00"), 3)
    assert [period_label(window, p) for p in periods] == ["2026-08", "2026-09", "2026-10"]
    # consecutive: each ends where the next begins
    assert all(a.end == b.start for a, b in pairwise(periods))
    assert periods[-1].end == utc("2026-11-01T00:00")


def test_previous_weeks_cross_the_year_boundary() -> None:
    window = calendar(CalendarPeriod.WEEK)
    periods = previous_periods(window, utc("2027-01-06T00:00"), 2)
    assert [period_label(window, p) for p in periods] == ["2026-W52", "2026-W53"]


@pytest.mark.parametrize(
    ("period", "label"),
    [
        (CalendarPeriod.MONTH, "2026-13"),
        (CalendarPeriod.MONTH, "2026-00"),
        (CalendarPeriod.MONTH, "2026-W44"),
        (CalendarPeriod.MONTH, "Nov 2026"),
        (CalendarPeriod.WEEK, "2027-W53"),  # 2027 has 52 ISO weeks
        (CalendarPeriod.WEEK, "2026-11"),
        (CalendarPeriod.QUARTER, "2026-Q5"),
        (CalendarPeriod.YEAR, "26"),
        (CalendarPeriod.YEAR, "9999"),  # its end is beyond the calendar
    ],
)
def test_a_label_that_names_no_period_is_a_spec_error(period: CalendarPeriod, label: str) -> None:
    with pytest.raises(SpecError) as raised:
        period_for_label(calendar(period), label)
    assert raised.value.problems[0].path == "period"
    assert repr(label) in str(raised.value)
    assert "expected" in str(raised.value)


def test_a_rolling_window_has_no_named_periods() -> None:
    with pytest.raises(SpecError, match="rolling window has no named periods"):
        period_for_label(Window(type=WindowType.ROLLING), "2026-11")


def test_an_unknown_time_zone_names_the_field() -> None:
    with pytest.raises(SpecError) as raised:
        zone("Mars/Olympus_Mons", "spec.window.timeZone")
    assert raised.value.problems[0].path == "spec.window.timeZone"
    assert "IANA" in raised.value.problems[0].message
    with pytest.raises(SpecError):
        period_at(calendar(CalendarPeriod.MONTH, "../etc/passwd"), utc("2026-11-01T00:00"))


@pytest.mark.parametrize(
    ("local", "expected"),
    [
        ("2026-03-29T00:30", "2026-03-29T00:30"),  # GMT, before the change
        ("2026-03-29T01:30", "2026-03-29T01:00"),  # skipped: the first instant after the gap
        ("2026-03-29T02:00", "2026-03-29T01:00"),  # 02:00 BST
        ("2026-10-25T01:30", "2026-10-25T00:30"),  # happens twice: the first one, BST
        ("2026-10-25T02:00", "2026-10-25T02:00"),  # 02:00 GMT
    ],
)
def test_local_times_resolve_across_london_clock_changes(local: str, expected: str) -> None:
    assert local_to_utc(datetime.fromisoformat(local), LONDON) == utc(expected)


def test_a_day_whose_midnight_was_skipped_starts_when_the_clocks_jump() -> None:
    # Sao Paulo, 4 Nov 2018: 00:00 (UTC-3) jumped to 01:00 (UTC-2), at 03:00Z
    day = local_day("America/Sao_Paulo", date(2018, 11, 4))
    assert day == between("2018-11-04T03:00", "2018-11-05T02:00")
    assert day.seconds == 23 * 3600


def test_the_autumn_change_day_in_london_lasts_25_hours() -> None:
    assert local_day("Europe/London", date(2026, 10, 25)).seconds == 25 * 3600


def test_remembered_periods_follow_the_zone_the_kind_and_the_moment() -> None:
    moment = datetime(2026, 11, 1, 2, 30, tzinfo=UTC)
    utc = Window(period=CalendarPeriod.MONTH, time_zone="UTC")
    tokyo = Window(period=CalendarPeriod.MONTH, time_zone="Asia/Tokyo")
    weekly = Window(period=CalendarPeriod.WEEK, time_zone="UTC")
    assert period_at(utc, moment).start == datetime(2026, 11, 1, tzinfo=UTC)
    assert period_at(tokyo, moment).start == datetime(2026, 10, 31, 15, tzinfo=UTC)
    assert period_at(utc, moment - timedelta(hours=3)).start == datetime(2026, 10, 1, tzinfo=UTC)
    assert period_label(weekly, period_at(weekly, moment)) == "2026-W44"
    assert period_label(tokyo, period_at(tokyo, moment)) == "2026-11"
    first = previous_periods(utc, moment, 3)
    first.clear()  # the caller's own list: the next caller gets all three again
    assert [period_label(utc, p) for p in previous_periods(utc, moment, 3)] == [
        "2026-08", "2026-09", "2026-10"]
    assert [period_label(tokyo, p) for p in previous_periods(tokyo, moment, 2)] == [
        "2026-09", "2026-10"]
