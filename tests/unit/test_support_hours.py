"""Business-hours response targets: only time inside support hours counts, in the support
time zone, across DST changes (Europe/London and America/New_York)."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sla_operator.domain.errors import SpecError
from sla_operator.domain.model import (
    DEFAULT_SUPPORT_RESPONSE,
    ResponseHours,
    Severity,
    SupportHours,
)
from sla_operator.domain.parse import agreement_from_manifest
from sla_operator.domain.support_hours import (
    business_due,
    business_time,
    hours_dict,
    parse_support_hours,
    support_windows,
)

LONDON = ZoneInfo("Europe/London")
NEW_YORK = ZoneInfo("America/New_York")
WEEKDAYS = frozenset(range(5))
FEW = settings(max_examples=150, deadline=None)


def office(zone: str, days: frozenset[int] = WEEKDAYS, start: time = time(9),
           end: time | None = time(17)) -> SupportHours:
    return SupportHours(zone, days, start, end, {Severity.P4: ResponseHours.BUSINESS})


def local(zone: ZoneInfo, *args: int) -> datetime:
    return datetime(*args, tzinfo=zone)  # type: ignore[misc]


def test_a_p4_opened_friday_afternoon_in_london_is_due_on_monday() -> None:
    opened = local(LONDON, 2026, 11, 20, 16, 30)  # a Friday
    due = business_due(opened, timedelta(hours=8), office("Europe/London"))
    assert due == local(LONDON, 2026, 11, 23, 16, 30)  # Monday: 30 min Friday, 7.5 h Monday


def test_a_request_across_the_october_change_in_london_is_due_at_the_right_instant() -> None:
    # Friday 23 Oct 2026 is BST (UTC+1); clocks go back on Sunday 25 Oct; Monday is GMT.
    opened = local(LONDON, 2026, 10, 23, 16, 30)
    due = business_due(opened, timedelta(hours=8), office("Europe/London"))
    assert due == datetime(2026, 10, 26, 16, 30, tzinfo=UTC)  # 16:30 GMT, not 15:30
    assert opened.astimezone(UTC) == datetime(2026, 10, 23, 15, 30, tzinfo=UTC)


def test_a_request_across_the_march_change_in_new_york_is_due_at_the_right_instant() -> None:
    # Friday 6 Mar 2026 is EST (UTC-5); clocks go forward on Sunday 8 Mar; Monday is EDT.
    opened = local(NEW_YORK, 2026, 3, 6, 16, 0)
    due = business_due(opened, timedelta(hours=3), office("America/New_York"))
    assert due == datetime(2026, 3, 9, 15, 0, tzinfo=UTC)  # 11:00 EDT


def test_a_request_opened_outside_support_hours_starts_at_the_next_opening() -> None:
    opened = local(LONDON, 2026, 11, 21, 12, 0)  # a Saturday
    assert business_due(opened, timedelta(0), office("Europe/London")) == \
        local(LONDON, 2026, 11, 23, 9, 0)
    assert business_due(opened, timedelta(hours=1), office("Europe/London")) == \
        local(LONDON, 2026, 11, 23, 10, 0)


def test_support_hours_to_the_end_of_the_day_count_the_whole_day() -> None:
    every_day = SupportHours("Europe/London", frozenset(range(7)), time(0), None)
    fall_back = local(LONDON, 2026, 10, 25)
    assert business_time(fall_back, local(LONDON, 2026, 10, 26), every_day) == timedelta(hours=25)


def test_only_time_inside_support_hours_counts_as_response_time() -> None:
    hours = office("Europe/London")
    friday = local(LONDON, 2026, 11, 20, 16, 0)
    monday = local(LONDON, 2026, 11, 23, 10, 0)
    assert business_time(friday, monday, hours) == timedelta(hours=2)
    assert business_time(monday, friday, hours) == timedelta(0)


zones = st.sampled_from(["Europe/London", "America/New_York"])
# 2026 has all four changes of both zones: March and October/November.
instants = st.integers(min_value=0, max_value=365 * 24 * 60).map(
    lambda minute: datetime(2026, 1, 1, tzinfo=UTC) + timedelta(minutes=minute))
targets = st.integers(min_value=0, max_value=60 * 60).map(lambda minute: timedelta(minutes=minute))
days = st.frozensets(st.integers(min_value=0, max_value=6), min_size=1)
clocks = st.tuples(st.integers(min_value=0, max_value=23), st.integers(min_value=0, max_value=59))


@st.composite
def support_hours(draw: st.DrawFn) -> SupportHours:
    zone = draw(zones)
    start_hour, start_minute = draw(clocks)
    start = time(start_hour, start_minute)
    length = draw(st.integers(min_value=1, max_value=24 * 60 - start_hour * 60 - start_minute))
    end_minutes = start_hour * 60 + start_minute + length
    end = None if end_minutes == 24 * 60 else time(end_minutes // 60, end_minutes % 60)
    return SupportHours(zone, draw(days), start, end)


@FEW
@given(support_hours(), instants, targets)
def test_the_time_to_the_due_instant_inside_support_hours_is_exactly_the_target(
        hours: SupportHours, opened: datetime, target: timedelta) -> None:
    due = business_due(opened, target, hours)
    assert due >= opened + min(target, timedelta(0))
    assert due - opened >= target  # support hours never run faster than the clock
    assert business_time(opened, due, hours) == target


@FEW
@given(support_hours(), instants, targets)
def test_a_due_instant_lies_within_support_hours_in_local_time(
        hours: SupportHours, opened: datetime, target: timedelta) -> None:
    due = business_due(opened, target, hours)
    if target > timedelta(0):
        inside = any(w.start < due <= w.end for w in _windows_near(hours, due))
        assert inside


def _windows_near(hours: SupportHours, moment: datetime) -> list[object]:
    found = []
    for window in support_windows(hours, moment - timedelta(days=2)):
        if window.start > moment + timedelta(days=1):
            break
        found.append(window)
    return found


@FEW
@given(zones, st.integers(min_value=0, max_value=364), st.integers(min_value=1, max_value=14))
def test_nine_to_five_is_eight_hours_a_day_on_every_day_dst_changes_included(
        zone: str, first_day: int, count: int) -> None:
    every_day = SupportHours(zone, frozenset(range(7)), time(9), time(17))
    tz = ZoneInfo(zone)
    start = datetime(2026, 1, 1, tzinfo=tz) + timedelta(days=first_day)  # local midnight
    end = start + timedelta(days=count)  # wall-clock arithmetic: local midnight again
    assert business_time(start.astimezone(UTC), end.astimezone(UTC), every_day) == \
        timedelta(hours=8 * count)


@FEW
@given(zones, instants, instants)
def test_support_all_day_every_day_counts_every_second(zone: str, a: datetime,
                                                      b: datetime) -> None:
    always = SupportHours(zone, frozenset(range(7)), time(0), None)
    start, end = min(a, b), max(a, b)
    assert business_time(start, end, always) == end - start


@FEW
@given(zones, instants)
def test_each_days_window_starts_at_its_local_wall_time(zone: str, since: datetime) -> None:
    tz = ZoneInfo(zone)
    for window, _ in zip(support_windows(office(zone), since), range(10), strict=False):
        start, end = window.start.astimezone(tz), window.end.astimezone(tz)
        assert (start.hour, start.minute, end.hour, end.minute) == (9, 0, 17, 0)
        assert start.weekday() < 5


def test_support_hours_parse_with_their_defaults() -> None:
    hours = parse_support_hours({"timeZone": "Europe/London", "hours": {"P4": "business"}},
                                DEFAULT_SUPPORT_RESPONSE)
    assert hours == SupportHours("Europe/London", WEEKDAYS, time(9), time(17),
                                 {Severity.P4: ResponseHours.BUSINESS})
    assert hours_dict(hours) == {"timeZone": "Europe/London",
                                 "days": ["Mon", "Tue", "Wed", "Thu", "Fri"],
                                 "from": "09:00", "to": "17:00", "hours": {"P4": "business"}}
    assert parse_support_hours(None, DEFAULT_SUPPORT_RESPONSE) is None


@pytest.mark.parametrize(("raw", "path", "words"), [
    ({"timeZone": "Mars/Olympus"}, "spec.supportHours.timeZone", "unknown time zone"),
    ({"days": ["Monday"]}, "spec.supportHours.days", "'Monday' is not a day"),
    ({"days": []}, "spec.supportHours.days", "non-empty list"),
    ({"from": "9am"}, "spec.supportHours.from", "not a wall time"),
    ({"from": "17:00", "to": "09:00"}, "spec.supportHours.to", "is not after from"),
    ({"hours": {"P5": "business"}}, "spec.supportHours.hours", "'P5' is not allowed"),
    ({"hours": {"P1": "office"}}, "spec.supportHours.hours.P1", "'office' is not allowed"),
    ({"days": ["Sun"], "from": "00:00", "to": "00:01", "hours": {"P4": "business"}},
     "spec.supportHours.hours.P4", "more than 520 weeks"),
])
def test_bad_support_hours_say_which_field_and_why(raw: dict[str, object], path: str,
                                                    words: str) -> None:
    with pytest.raises(SpecError) as caught:
        parse_support_hours(raw, DEFAULT_SUPPORT_RESPONSE)
    assert any(p.path == path and words in p.message for p in caught.value.problems), \
        caught.value.problems


def test_an_agreement_carries_its_support_hours() -> None:
    agreement = agreement_from_manifest({
        "metadata": {"name": "shop", "namespace": "default"},
        "spec": {"service": "Shop", "objective": "99.9",
                 "endpoints": [{"name": "web", "http": {"url": "http://127.0.0.1:1/"}}],
                 "supportResponse": {"P4": "8h"},
                 "supportHours": {"timeZone": "Europe/London", "hours": {"P4": "business"}}}})
    assert agreement.support_hours is not None
    assert agreement.support_hours.counts_business(Severity.P4)
    assert not agreement.support_hours.counts_business(Severity.P1)
