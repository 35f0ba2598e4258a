"""Cron parsing and maintenance schedules on the local wall clock, across DST changes."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from itertools import pairwise
from zoneinfo import ZoneInfo

import pytest

from sla_operator.domain.cron import CronExpression
from sla_operator.domain.errors import SpecError
from sla_operator.domain.intervals import Interval
from sla_operator.domain.model import MaintenanceWindow
from sla_operator.domain.schedule import (
    active_and_next,
    maintenance_intervals,
    occurrences,
    validate_maintenance,
)

PATH = "spec.schedule"


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def between(start: str, end: str) -> Interval:
    return Interval(utc(start), utc(end))


def cron(text: str) -> CronExpression:
    return CronExpression.parse(text, PATH)


def fires(text: str, time_zone: str, start: str, end: str) -> list[str]:
    found = occurrences(cron(text), time_zone, utc(start), utc(end))
    return [instant.strftime("%Y-%m-%dT%H:%M") for instant in found]


def recurring(schedule: str = "0 2 * * SUN", hours: float = 2, **fields: object) -> MaintenanceWindow:
    return MaintenanceWindow(
        namespace="payments",
        name="weekly",
        schedule=schedule,
        duration=timedelta(hours=hours),
        time_zone=str(fields.pop("time_zone", "Europe/London")),
        **fields,  # type: ignore[arg-type]
    )


def one_off(start: str, end: str) -> MaintenanceWindow:
    return MaintenanceWindow(namespace="payments", name="db", start=utc(start), end=utc(end))


# ---------------------------------------------------------------- parsing


@pytest.mark.parametrize(
    ("text", "field", "expected"),
    [
        ("*/15 * * * *", "minutes", {0, 15, 30, 45}),
        ("5,10-12 * * * *", "minutes", {5, 10, 11, 12}),
        ("10/20 * * * *", "minutes", {10, 30, 50}),
        ("0 1-9/4 * * *", "hours", {1, 5, 9}),
        ("0 0 31 * *", "days_of_month", {31}),
        ("0 0 * jan,Mar-MAY *", "months", {1, 3, 4, 5}),
        ("0 0 * * MON-FRI", "days_of_week", {1, 2, 3, 4, 5}),
        ("0 0 * * 7", "days_of_week", {0}),  # 7 is Sunday as well as 0
        ("0 0 * * FRI-SUN", "days_of_week", {5, 6, 0}),
        ("0 0 * * 5-7", "days_of_week", {5, 6, 0}),
        ("@hourly", "minutes", {0}),
        ("@weekly", "days_of_week", {0}),
        ("@monthly", "days_of_month", {1}),
        ("@Annually", "months", {1}),
    ],
)
def test_cron_fields_expand_to_their_values(text: str, field: str, expected: set[int]) -> None:
    assert getattr(cron(text), field) == frozenset(expected)


def test_macros_mean_their_five_field_forms() -> None:
    for macro, five in [("@daily", "0 0 * * *"), ("@yearly", "0 0 1 1 *"), ("@midnight", "0 0 * * *")]:
        parsed, spelled = cron(macro), cron(five)
        assert (parsed.minutes, parsed.hours, parsed.days_of_month) == (
            spelled.minutes,
            spelled.hours,
            spelled.days_of_month,
        )
        assert (parsed.months, parsed.days_of_week) == (spelled.months, spelled.days_of_week)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("0 2 * *", "has 4 fields; a schedule needs 5"),
        ("@reboot", "macros: @hourly"),
        ("60 * * * *", "minute field '60': 60 is out of range; allowed 0-59"),
        ("0 24 * * *", "hour field '24'"),
        ("0 0 0 * *", "day-of-month field '0'"),
        ("0 0 * 13 *", "month field '13'"),
        ("0 0 * * 8", "day-of-week field '8'"),
        ("0 0 * * SUNDAY", "'SUNDAY' is not a number; allowed 0-7, or names SUN/MON"),
        ("0 0 * FOO *", "names JAN/FEB"),
        ("*/0 * * * *", "step '0' must be a whole number of at least 1"),
        ("0 5-1 * * *", "range '5-1' runs backwards"),
        ("0 1,,2 * * *", "empty list element"),
        ("0 0 ? * *", "day-of-month field '?'"),
    ],
)
def test_a_bad_schedule_names_the_field_and_what_is_allowed(text: str, message: str) -> None:
    with pytest.raises(SpecError) as raised:
        cron(text)
    assert raised.value.problems[0].path == PATH
    assert message in str(raised.value)


def test_every_wrong_field_is_reported_at_once() -> None:
    with pytest.raises(SpecError) as raised:
        cron("61 25 * * *")
    assert [p.message.split(" field")[0] for p in raised.value.problems] == ["minute", "hour"]


@pytest.mark.parametrize(
    ("text", "day", "matches"),
    [
        # both restricted: the 13th OR a Friday
        ("0 0 13 * FRI", date(2026, 11, 13), True),  # Friday the 13th
        ("0 0 13 * FRI", date(2026, 10, 13), True),  # a Tuesday, but the 13th
        ("0 0 13 * FRI", date(2026, 11, 20), True),  # a Friday, not the 13th
        ("0 0 13 * FRI", date(2026, 11, 19), False),
        # day of week unrestricted: day of month alone decides
        ("0 0 13 * *", date(2026, 11, 20), False),
        # a field starting with * counts as unrestricted (Vixie cron): odd days AND Monday
        ("0 0 */2 * MON", date(2026, 11, 2), False),  # Monday the 2nd
        ("0 0 */2 * MON", date(2026, 11, 9), True),  # Monday the 9th
        ("0 0 */2 * MON", date(2026, 11, 11), False),  # odd, a Wednesday
        # month always restricts
        ("0 0 13 FEB FRI", date(2026, 11, 13), False),
    ],
)
def test_day_of_month_and_day_of_week_follow_the_or_rule(text: str, day: date, matches: bool) -> None:
    assert cron(text).matches_day(day) is matches


# ---------------------------------------------------------------- occurrences


def test_a_sunday_window_in_london_keeps_local_time_across_the_spring_change() -> None:
    # GMT (UTC+0) until 29 March 01:00 GMT; then BST (UTC+1): 02:00 BST = 01:00Z.
    # On the change day the clocks jump 01:00 GMT -> 02:00 BST, so 02:00 BST exists (01:00Z).
    assert fires("0 2 * * SUN", "Europe/London", "2026-03-15T00:00", "2026-04-06T00:00") == [
        "2026-03-15T02:00",
        "2026-03-22T02:00",
        "2026-03-29T01:00",
        "2026-04-05T01:00",
    ]


def test_a_sunday_window_in_london_keeps_local_time_across_the_autumn_change() -> None:
    # BST until 25 October 02:00 BST (01:00Z), when clocks go back to 01:00 GMT; 02:00 local
    # then happens once, in GMT: 02:00Z.
    assert fires("0 2 * * SUN", "Europe/London", "2026-10-10T00:00", "2026-11-02T00:00") == [
        "2026-10-11T01:00",
        "2026-10-18T01:00",
        "2026-10-25T02:00",
        "2026-11-01T02:00",
    ]


def test_a_time_skipped_by_the_spring_change_fires_when_the_clocks_jump() -> None:
    # 01:30 local does not exist on 29 March 2026 in London; the gap ends at 01:00Z
    assert fires("30 1 * * *", "Europe/London", "2026-03-28T00:00", "2026-03-31T00:00") == [
        "2026-03-28T01:30",
        "2026-03-29T01:00",
        "2026-03-30T00:30",
    ]


def test_a_time_repeated_by_the_autumn_change_fires_once() -> None:
    # 01:30 local happens at 00:30Z (BST) and again at 01:30Z (GMT): only the first fires
    assert fires("30 1 * * *", "Europe/London", "2026-10-24T00:00", "2026-10-27T00:00") == [
        "2026-10-24T00:30",
        "2026-10-25T00:30",
        "2026-10-26T01:30",
    ]


def test_times_collapsed_by_the_gap_fire_once_and_in_order() -> None:
    found = list(
        occurrences(cron("*/15 * * * *"), "Europe/London", utc("2026-03-29T00:00"), utc("2026-03-29T02:00"))
    )
    # 00:00..00:45 GMT, then 01:00..01:45 skipped local times and 02:00 BST all at 01:00Z,
    # then 02:15 BST = 01:15Z ... 02:45 BST = 01:45Z
    assert [t.strftime("%H:%M") for t in found] == [
        "00:00", "00:15", "00:30", "00:45", "01:00", "01:15", "01:30", "01:45",
    ]  # fmt: skip


def test_a_weekly_schedule_over_ten_years_fires_every_week() -> None:
    found = list(
        occurrences(cron("0 2 * * SUN"), "Europe/London", utc("2020-01-01T00:00"), utc("2030-01-01T00:00"))
    )
    # 3653 days from Wednesday 1 Jan 2020: 521 whole weeks + 6 days, which include a Sunday
    assert len(found) == 522
    assert all(later > earlier for earlier, later in pairwise(found))
    assert {t.astimezone(ZoneInfo("Europe/London")).hour for t in found} == {2}


def test_occurrences_are_half_open() -> None:
    assert fires("0 * * * *", "UTC", "2026-11-01T01:00", "2026-11-01T03:00") == [
        "2026-11-01T01:00",
        "2026-11-01T02:00",
    ]


def test_a_minutely_schedule_never_repeats_an_instant_across_the_autumn_change() -> None:
    found = list(
        occurrences(cron("* * * * *"), "Europe/London", utc("2026-10-24T23:00"), utc("2026-10-25T03:00"))
    )
    assert all(later > earlier for earlier, later in pairwise(found))
    # 00:00Z-01:00Z is 01:00-01:59 BST (fires); 01:00Z-02:00Z repeats 01:00-01:59 in GMT (does
    # not fire again): 4 hours of minutes minus the repeated 60
    assert len(found) == 4 * 60 - 60


# ---------------------------------------------------------------- maintenance intervals


def test_a_one_off_window_is_clipped_to_the_bounds() -> None:
    window = one_off("2026-11-30T23:00", "2026-12-01T02:00")
    bounds = between("2026-11-01T00:00", "2026-12-01T00:00")
    assert maintenance_intervals(window, bounds) == [between("2026-11-30T23:00", "2026-12-01T00:00")]
    assert maintenance_intervals(window, between("2026-10-01T00:00", "2026-11-01T00:00")) == []


def test_a_recurring_window_includes_an_occurrence_that_began_before_the_bounds() -> None:
    # Saturday 23:00 UTC for 3 h: the one of 31 Oct runs into November until 02:00Z
    window = recurring("0 23 * * SAT", hours=3, time_zone="UTC")
    got = maintenance_intervals(window, between("2026-11-01T00:00", "2026-11-15T00:00"))
    assert got == [
        between("2026-11-01T00:00", "2026-11-01T02:00"),
        between("2026-11-07T23:00", "2026-11-08T02:00"),
        between("2026-11-14T23:00", "2026-11-15T00:00"),
    ]


def test_a_london_sunday_window_in_march_2026() -> None:
    got = maintenance_intervals(recurring(), between("2026-03-01T00:00", "2026-03-31T23:00"))
    # Sundays 1, 8, 15, 22 at 02:00Z (GMT) and 29 at 01:00Z (BST), 2 h each
    assert [i.start.strftime("%d %H:%M") for i in got] == [
        "01 02:00", "08 02:00", "15 02:00", "22 02:00", "29 01:00",
    ]  # fmt: skip
    assert sum(i.seconds for i in got) == 5 * 7200


def test_validity_bounds_limit_which_occurrences_count() -> None:
    # occurrences *starting* in [validFrom, validUntil): 8, 15 Nov. The one of 1 Nov starts
    # before validFrom and the one of 22 Nov starts at validUntil.
    window = recurring(
        time_zone="UTC",
        valid_from=utc("2026-11-01T03:00"),
        valid_until=utc("2026-11-22T02:00"),
    )
    got = maintenance_intervals(window, between("2026-11-01T00:00", "2026-12-01T00:00"))
    assert got == [
        between("2026-11-08T02:00", "2026-11-08T04:00"),
        between("2026-11-15T02:00", "2026-11-15T04:00"),
    ]


def test_a_window_with_neither_form_cannot_give_intervals() -> None:
    window = MaintenanceWindow(namespace="payments", name="empty")
    with pytest.raises(SpecError, match="set start and end"):
        maintenance_intervals(window, between("2026-11-01T00:00", "2026-12-01T00:00"))


@pytest.mark.parametrize(
    ("now", "active", "following"),
    [
        # Sunday 8 Nov 02:00-04:00Z (GMT)
        ("2026-11-08T03:00", ("2026-11-08T02:00", "2026-11-08T04:00"),
         ("2026-11-15T02:00", "2026-11-15T04:00")),
        ("2026-11-08T04:00", None, ("2026-11-15T02:00", "2026-11-15T04:00")),
        ("2026-11-08T01:59", None, ("2026-11-08T02:00", "2026-11-08T04:00")),
    ],
)  # fmt: skip
def test_the_active_and_next_occurrence_of_a_recurring_window(
    now: str, active: tuple[str, str] | None, following: tuple[str, str]
) -> None:
    got_active, got_next = active_and_next(recurring(), utc(now))
    assert got_active == (between(*active) if active else None)
    assert got_next == between(*following)


def test_a_recurring_window_past_its_validity_has_no_next_occurrence() -> None:
    window = recurring(valid_until=utc("2026-11-09T00:00"))
    assert active_and_next(window, utc("2026-11-08T03:00")) == (
        between("2026-11-08T02:00", "2026-11-08T04:00"),
        None,
    )


@pytest.mark.parametrize(
    ("now", "active", "upcoming"),
    [("2026-11-30T12:00", False, True), ("2026-12-01T03:00", True, False),
     ("2026-12-01T04:00", False, False)],
)  # fmt: skip
def test_the_active_and_next_occurrence_of_a_one_off_window(now: str, active: bool, upcoming: bool) -> None:
    window = one_off("2026-12-01T02:00", "2026-12-01T04:00")
    span = between("2026-12-01T02:00", "2026-12-01T04:00")
    assert active_and_next(window, utc(now)) == (span if active else None, span if upcoming else None)


# ---------------------------------------------------------------- validation


def problems_of(window: MaintenanceWindow) -> dict[str, str]:
    with pytest.raises(SpecError) as raised:
        validate_maintenance(window)
    return {p.path: p.message for p in raised.value.problems}


@pytest.mark.parametrize(
    "window",
    [
        recurring(),
        recurring("0 0 29 2 *"),  # fires on leap days only
        recurring("*/15 * * * *", hours=0.25),  # back to back: touching is not overlapping
        recurring(valid_from=utc("2026-01-01T00:00"), valid_until=utc("2026-02-01T00:00")),
        one_off("2026-12-01T02:00", "2026-12-01T04:00"),
    ],
)
def test_a_sound_window_passes_validation(window: MaintenanceWindow) -> None:
    validate_maintenance(window)


def test_a_window_needs_exactly_one_form() -> None:
    assert "set start and end" in problems_of(MaintenanceWindow(namespace="n", name="w"))["spec"]
    both = recurring(start=utc("2026-12-01T02:00"), end=utc("2026-12-01T04:00"))
    assert "mutually exclusive" in problems_of(both)["spec"]


def test_every_problem_is_listed_with_its_field() -> None:
    window = MaintenanceWindow(
        namespace="n",
        name="w",
        start=utc("2026-12-01T04:00"),
        end=utc("2026-12-01T02:00"),
        schedule="0 2 * * FUNDAY",
        duration=timedelta(0),
        time_zone="Mars/Olympus_Mons",
        valid_from=utc("2027-01-01T00:00"),
        valid_until=utc("2026-01-01T00:00"),
    )
    assert set(problems_of(window)) == {
        "spec", "spec.end", "spec.timeZone", "spec.validUntil", "spec.schedule", "spec.duration",
    }  # fmt: skip


def test_half_a_pair_is_reported_at_the_missing_field() -> None:
    assert "required" in problems_of(MaintenanceWindow("n", "w", start=utc("2026-12-01T00:00")))["spec.end"]
    assert "required" in problems_of(MaintenanceWindow("n", "w", schedule="@daily"))["spec.duration"]


def test_a_schedule_that_never_fires_is_rejected() -> None:
    message = problems_of(recurring("0 0 30 2 *"))["spec.schedule"]
    assert "never fires" in message
    assert "30 February" in message


def test_a_schedule_that_only_fires_outside_its_validity_never_fires() -> None:
    # February the 29th does not come between March 2026 and March 2027
    window = recurring("0 0 29 2 *", valid_from=utc("2026-03-01T00:00"), valid_until=utc("2027-03-01T00:00"))
    assert "never fires" in problems_of(window)["spec.schedule"]


def test_a_duration_longer_than_the_recurrence_is_rejected() -> None:
    message = problems_of(recurring("0 2 * * *", hours=25))["spec.duration"]
    assert "longer than the recurrence" in message


def test_the_spring_change_shortens_the_recurrence() -> None:
    # 00:30 and 02:30 daily are 2 h apart on the wall clock, but on 29 March 2026 in London
    # 00:30 GMT (00:30Z) and 02:30 BST (01:30Z) are 1 h apart: 90 minutes would overlap
    message = problems_of(recurring("30 0,2 * * *", hours=1.5, valid_from=utc("2026-01-01T00:00")))[
        "spec.duration"
    ]
    assert "fires as little as 1h apart" in message
    validate_maintenance(recurring("30 0,2 * * *", hours=1.5, time_zone="UTC"))


def test_a_weekly_window_may_not_last_a_week_where_clocks_spring_forward() -> None:
    # Sunday 02:00 to the next Sunday 02:00 across 29 March is 167 real hours
    assert "167h" in problems_of(recurring(hours=168))["spec.duration"]
    validate_maintenance(recurring(hours=167))


def test_a_cron_field_with_thousands_of_digits_is_a_spec_error_not_a_crash() -> None:
    from sla_operator.domain.cron import CronExpression

    with pytest.raises(SpecError) as caught:
        CronExpression.parse("0 0 " + "9" * 5000 + " * *", "spec.schedule")
    assert "spec.schedule" in str(caught.value) and "out of range" in str(caught.value)
