"""Availability and error budgets, checked against figures worked out by hand.

Unless a test says otherwise: objective 99.9 %, November 2026 in UTC (30 days = 2,592,000 s),
evaluated after the month ended.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest

from sla_operator.domain.accounting import (
    AccountingInput,
    PeriodFigures,
    compute_days,
    compute_history,
    compute_period,
)
from sla_operator.domain.intervals import Interval
from sla_operator.domain.model import (
    CalendarPeriod,
    Exclusion,
    ExclusionReason,
    Impact,
    Incident,
    IncidentType,
    MaintenanceWindow,
    Severity,
    Window,
    WindowType,
)
from sla_operator.domain.periods import period_at, period_for_label, period_label
from sla_operator.domain.schedule import maintenance_intervals

NOVEMBER = Interval(datetime(2026, 11, 1, tzinfo=UTC), datetime(2026, 12, 1, tzinfo=UTC))
AFTER_NOVEMBER = datetime(2026, 12, 1, tzinfo=UTC)
MONTH_SECONDS = 30 * 86400  # 2,592,000


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def between(start: str, end: str) -> Interval:
    return Interval(utc(start), utc(end))


def incident(
    name: str,
    start: str,
    end: str | None = None,
    *,
    impact: Impact = Impact.DOWNTIME,
    dependency: bool = False,
    exclusion: ExclusionReason | None = None,
) -> Incident:
    return Incident(
        namespace="payments",
        name=name,
        agreement="payments-api",
        type=IncidentType.OUTAGE,
        severity=Severity.P4 if dependency else Severity.P1,
        title=name,
        started_at=utc(start),
        resolved_at=utc(end) if end else None,
        impact=impact,
        dependency=dependency,
        exclusion=Exclusion(exclusion) if exclusion else None,
    )


def november(
    *incidents: Incident,
    maintenance: tuple[Interval, ...] = (),
    unmonitored: tuple[Interval, ...] = (),
    monitored_since: datetime | None = None,
    now: datetime = AFTER_NOVEMBER,
) -> PeriodFigures:
    inputs = AccountingInput(Decimal("99.9"), monitored_since, maintenance, incidents, unmonitored)
    return compute_period(inputs, NOVEMBER, now, "2026-11")


def test_a_clean_month_at_three_nines_has_a_budget_of_2592_seconds() -> None:
    # 0.001 x 2,592,000 s = 2,592 s
    figures = november()
    assert figures.budget_total_seconds == 2592
    assert figures.budget_remaining_seconds == 2592
    assert figures.budget_remaining_ratio == 1.0
    assert figures.availability == 1.0
    assert figures.eligible_seconds == figures.elapsed_seconds == MONTH_SECONDS
    assert figures.met
    assert figures.incidents == 0


def test_maintenance_time_is_not_downtime() -> None:
    # Maintenance 10 Nov 02:00-04:00 (7,200 s); outage 03:45-04:15 (1,800 s), half inside it.
    # M = 7,200; D = 04:00-04:15 = 900; E = 2,592,000 - 7,200 = 2,584,800
    # availability = (2,584,800 - 900) / 2,584,800 = 0.99965181...
    # budget = 0.001 x 2,584,800 = 2,584.8; remaining = 2,584.8 - 900 = 1,684.8
    figures = november(
        incident("outage", "2026-11-10T03:45", "2026-11-10T04:15"),
        maintenance=(between("2026-11-10T02:00", "2026-11-10T04:00"),),
    )
    assert figures.maintenance_seconds == 7200
    assert figures.downtime_seconds == 900
    assert figures.eligible_seconds == 2_584_800
    assert figures.availability == pytest.approx(2_583_900 / 2_584_800, abs=1e-15)
    assert figures.budget_total_seconds == 2584.8
    assert figures.budget_remaining_seconds == 1684.8
    assert figures.budget_remaining_ratio == pytest.approx(1684.8 / 2584.8)
    assert figures.met  # 99.9652 % >= 99.9 %
    assert figures.incidents == 1


def test_exactly_the_objective_meets_it() -> None:
    # 2,592 s down in a clean month: (2,592,000 - 2,592) / 2,592,000 = 0.999 exactly = 99.9 %
    figures = november(incident("outage", "2026-11-10T00:00", "2026-11-10T00:43:12"))
    assert figures.downtime_seconds == 2592
    assert figures.budget_remaining_seconds == 0
    assert figures.met


def test_maintenance_over_healthy_time_shrinks_the_denominator_and_the_budget() -> None:
    # The same 2,592 s outage with a whole day (86,400 s) of maintenance on 5 Nov:
    # E = 2,592,000 - 86,400 = 2,505,600; availability = 2,503,008 / 2,505,600 = 0.99896551...
    # budget = 0.001 x 2,505,600 = 2,505.6; remaining = 2,505.6 - 2,592 = -86.4
    figures = november(
        incident("outage", "2026-11-10T00:00", "2026-11-10T00:43:12"),
        maintenance=(between("2026-11-05T00:00", "2026-11-06T00:00"),),
    )
    assert figures.availability == pytest.approx(2_503_008 / 2_505_600, abs=1e-15)
    assert figures.budget_total_seconds == 2505.6
    assert figures.budget_remaining_seconds == -86.4
    assert not figures.met


def test_maintenance_still_ahead_shrinks_the_budget_but_not_the_elapsed_figures() -> None:
    # Now 16 Nov 00:00: elapsed 15 days = 1,296,000 s. Maintenance 10 Nov (past) and 25 Nov
    # (ahead), 2 h each. M (elapsed) = 7,200; E = 1,296,000 - 7,200 = 1,288,800.
    # budget = 0.001 x (2,592,000 - 14,400) = 2,577.6
    figures = november(
        maintenance=(
            between("2026-11-10T02:00", "2026-11-10T04:00"),
            between("2026-11-25T02:00", "2026-11-25T04:00"),
        ),
        now=utc("2026-11-16T00:00"),
    )
    assert figures.elapsed_seconds == 1_296_000
    assert figures.maintenance_seconds == 7200
    assert figures.eligible_seconds == 1_288_800
    assert figures.budget_total_seconds == 2577.6


def test_an_open_incident_runs_until_now() -> None:
    # Down since 15 Nov 23:50, now 16 Nov 00:00: 600 s of downtime; budget 2,592 - 600 = 1,992
    figures = november(incident("open", "2026-11-15T23:50"), now=utc("2026-11-16T00:00"))
    assert figures.downtime_seconds == 600
    assert figures.budget_remaining_seconds == 1992


def test_nothing_has_elapsed_before_the_period_starts() -> None:
    figures = november(now=utc("2026-10-20T00:00"))
    assert figures.elapsed_seconds == 0
    assert figures.availability == 1.0
    assert figures.budget_total_seconds == 2592


@pytest.mark.parametrize(
    ("label", "hours", "sundays", "budget"),
    [
        # 743 h = 2,674,800 s; Sundays 1, 8, 15, 22, 29 x 2 h = 36,000 s
        # budget = 0.001 x (2,674,800 - 36,000) = 2,638.8
        ("2026-03", 743, 5, 2638.8),
        # 745 h = 2,682,000 s; Sundays 4, 11, 18, 25 x 2 h = 28,800 s
        # budget = 0.001 x (2,682,000 - 28,800) = 2,653.2
        ("2026-10", 745, 4, 2653.2),
    ],
)
def test_london_months_with_a_sunday_window_across_dst(
    label: str, hours: int, sundays: int, budget: float
) -> None:
    window = Window(period=CalendarPeriod.MONTH, time_zone="Europe/London")
    period = period_for_label(window, label)
    weekly = MaintenanceWindow(
        namespace="payments",
        name="weekly",
        schedule="0 2 * * SUN",
        duration=timedelta(hours=2),
        time_zone="Europe/London",
    )
    maintenance = maintenance_intervals(weekly, period)
    inputs = AccountingInput(Decimal("99.9"), None, maintenance, ())
    figures = compute_period(inputs, period, period.end, label)
    assert figures.elapsed_seconds == hours * 3600
    assert figures.maintenance_seconds == sundays * 7200
    assert figures.budget_total_seconds == budget
    plain = compute_period(AccountingInput(Decimal("99.9"), None, (), ()), period, period.end, label)
    assert plain.budget_total_seconds == hours * 3.6  # 2,674.8 and 2,682.0


def test_a_third_party_outage_inside_a_service_outage_is_excluded_where_they_overlap() -> None:
    # Service down 10:00-11:00 (3,600 s); the payment provider down 10:15-10:45 (1,800 s).
    # X = 1,800; D = 3,600 - 1,800 = 1,800; E = 2,592,000 - 1,800 = 2,590,200
    # availability = (2,590,200 - 1,800) / 2,590,200 = 0.99930507...
    # budget = 0.001 x (2,592,000 - 1,800) = 2,590.2; remaining = 2,590.2 - 1,800 = 790.2
    figures = november(
        incident("provider", "2026-11-10T10:15", "2026-11-10T10:45", dependency=True),
        incident("outage", "2026-11-10T10:00", "2026-11-10T11:00"),
    )
    assert figures.excluded_seconds == 1800
    assert figures.downtime_seconds == 1800
    assert figures.eligible_seconds == 2_590_200
    assert figures.availability == pytest.approx(2_588_400 / 2_590_200, abs=1e-15)
    assert figures.budget_total_seconds == 2590.2
    assert figures.budget_remaining_seconds == 790.2
    assert figures.excluded_incidents == ("provider",)
    assert figures.incidents == 1  # the dependency's own incident is not the service's


def test_a_third_party_outage_while_the_service_is_up_excludes_nothing() -> None:
    figures = november(incident("provider", "2026-11-10T10:15", "2026-11-10T10:45", dependency=True))
    assert figures.excluded_seconds == 0
    assert figures.eligible_seconds == MONTH_SECONDS
    assert figures.excluded_incidents == ()


def test_an_incident_excluded_as_blocked_costs_nothing() -> None:
    # Blocked 1 h: X = 3,600, D = 0; budget = 0.001 x (2,592,000 - 3,600) = 2,588.4
    figures = november(
        incident("blocked", "2026-11-12T08:00", "2026-11-12T09:00", exclusion=ExclusionReason.BLOCKED),
        incident("real", "2026-11-20T08:00", "2026-11-20T08:05"),
    )
    assert figures.excluded_seconds == 3600
    assert figures.downtime_seconds == 300
    assert figures.budget_total_seconds == 2588.4
    assert figures.budget_remaining_seconds == 2288.4
    assert figures.excluded_incidents == ("blocked",)
    assert figures.incidents == 2


def test_a_degraded_incident_is_not_downtime() -> None:
    figures = november(incident("slow", "2026-11-12T08:00", "2026-11-12T09:00", impact=Impact.DEGRADED))
    assert figures.downtime_seconds == 0
    assert figures.availability == 1.0
    assert figures.incidents == 1


def test_a_month_that_was_all_maintenance_is_fully_available_with_no_budget() -> None:
    # M = |P| = 2,592,000; E = 0, so availability is 1.0; budget = 0.001 x 0 = 0
    figures = november(
        incident("during", "2026-11-10T00:00", "2026-11-11T00:00"),
        maintenance=(between("2026-10-31T00:00", "2026-12-02T00:00"),),
    )
    assert figures.maintenance_seconds == MONTH_SECONDS
    assert figures.eligible_seconds == 0
    assert figures.downtime_seconds == 0
    assert figures.availability == 1.0
    assert figures.budget_total_seconds == 0
    assert figures.budget_remaining_ratio == 1.0
    assert figures.met


def test_without_a_budget_any_downtime_leaves_none() -> None:
    inputs = AccountingInput(Decimal(100), None, (), (incident("x", "2026-11-02T00:00", "2026-11-02T00:01"),))
    figures = compute_period(inputs, NOVEMBER, AFTER_NOVEMBER, "2026-11")
    assert figures.budget_total_seconds == 0
    assert figures.budget_remaining_ratio == 0.0
    assert not figures.met


def test_time_before_the_agreement_existed_is_unmonitored() -> None:
    # Created 16 Nov 00:00: U = 15 days = 1,296,000 s; the outage of 10 Nov falls in it.
    # D = 600 (20 Nov); E = 2,592,000 - 1,296,000 = 1,296,000
    # availability = 1,295,400 / 1,296,000 = 0.99953703...; budget 2,592 (U does not shrink
    # it), remaining 1,992
    figures = november(
        incident("before", "2026-11-10T00:00", "2026-11-10T01:00"),
        incident("after", "2026-11-20T00:00", "2026-11-20T00:10"),
        monitored_since=utc("2026-11-16T00:00"),
    )
    assert figures.unmonitored_seconds == 1_296_000
    assert figures.downtime_seconds == 600
    assert figures.eligible_seconds == 1_296_000
    assert figures.availability == pytest.approx(1_295_400 / 1_296_000, abs=1e-15)
    assert figures.budget_total_seconds == 2592
    assert figures.budget_remaining_seconds == 1992


def test_maintenance_before_the_agreement_existed_is_unmonitored_not_maintenance() -> None:
    # Created 16 Nov 00:00; windows on 10 Nov (2 h, before it existed) and 25 Nov (1 h).
    # U = 1,296,000 (all of 1-16 Nov, the first window included); M = 3,600 (25 Nov only)
    # E = 2,592,000 - 1,296,000 - 3,600 = 1,292,400; the budget still leaves out every
    # scheduled window of the period: 0.001 x (2,592,000 - 10,800) = 2,581.2
    figures = november(
        maintenance=(between("2026-11-10T00:00", "2026-11-10T02:00"),
                     between("2026-11-25T00:00", "2026-11-25T01:00")),
        monitored_since=utc("2026-11-16T00:00"),
    )
    assert figures.maintenance_seconds == 3600
    assert figures.unmonitored_seconds == 1_296_000
    assert figures.eligible_seconds == 1_292_400
    assert figures.budget_total_seconds == pytest.approx(2581.2)


def test_time_the_operator_was_down_is_unmonitored_not_downtime() -> None:
    # Operator down 20 Nov 12:00-14:00 (U = 7,200); outage 13:30-14:30, half in the gap:
    # D = 1,800; E = 2,592,000 - 7,200 = 2,584,800; availability = 2,583,000 / 2,584,800
    # remaining = 2,592 - 1,800 = 792
    figures = november(
        incident("outage", "2026-11-20T13:30", "2026-11-20T14:30"),
        unmonitored=(between("2026-11-20T12:00", "2026-11-20T14:00"),),
    )
    assert figures.unmonitored_seconds == 7200
    assert figures.downtime_seconds == 1800
    assert figures.eligible_seconds == 2_584_800
    assert figures.availability == pytest.approx(2_583_000 / 2_584_800, abs=1e-15)
    assert figures.budget_remaining_seconds == 792


def test_maintenance_and_exclusions_take_precedence_over_unmonitored_time() -> None:
    # Gap 00:00-06:00 on 20 Nov; maintenance 01:00-02:00; blocked 03:00-04:00 inside the gap.
    # M = 3,600; X = 3,600; U = 21,600 - 3,600 - 3,600 = 14,400
    figures = november(
        incident("blocked", "2026-11-20T03:00", "2026-11-20T04:00", exclusion=ExclusionReason.BLOCKED),
        maintenance=(between("2026-11-20T01:00", "2026-11-20T02:00"),),
        unmonitored=(between("2026-11-20T00:00", "2026-11-20T06:00"),),
    )
    assert (figures.maintenance_seconds, figures.excluded_seconds) == (3600, 3600)
    assert figures.unmonitored_seconds == 14_400
    assert figures.eligible_seconds == MONTH_SECONDS - 21_600


def test_a_rolling_30_day_window_counts_the_last_30_days() -> None:
    # Now 20 Nov 00:00; period 21 Oct 00:00 - 20 Nov 00:00. Outage 20 Oct 23:00 - 21 Oct
    # 01:00 counts 3,600 s inside; an open outage since 19 Nov 23:30 counts 1,800 s.
    # D = 5,400; availability = 2,586,600 / 2,592,000 = 0.99791666...; budget 2,592;
    # remaining = -2,808 (overspent), ratio = -2,808 / 2,592 = -1.0833...
    window = Window(type=WindowType.ROLLING, duration=timedelta(days=30))
    now = utc("2026-11-20T00:00")
    period = period_at(window, now)
    inputs = AccountingInput(
        Decimal("99.9"),
        None,
        (),
        (incident("old", "2026-10-20T23:00", "2026-10-21T01:00"), incident("open", "2026-11-19T23:30")),
    )
    figures = compute_period(inputs, period, now, period_label(window, period))
    assert figures.label == "rolling-30d"
    assert figures.downtime_seconds == 5400
    assert figures.availability == pytest.approx(2_586_600 / 2_592_000, abs=1e-15)
    assert figures.budget_remaining_seconds == -2808
    assert figures.budget_remaining_ratio == pytest.approx(-2808 / 2592)
    assert not figures.met


def test_the_result_does_not_depend_on_incident_order() -> None:
    given = [
        incident("provider", "2026-11-10T10:15", "2026-11-10T10:45", dependency=True),
        incident("outage", "2026-11-10T10:00", "2026-11-10T11:00"),
        incident("blocked", "2026-11-10T10:30", "2026-11-10T12:00", exclusion=ExclusionReason.BLOCKED),
    ]
    assert november(*given) == november(*reversed(given))


def test_days_are_local_and_the_last_one_is_partial() -> None:
    # London, now 29 Mar 2026 12:00Z (13:00 BST). Outage 28 Mar 23:30Z - 29 Mar 00:30Z:
    # 1,800 s on each side of local midnight (GMT until 01:00Z).
    inputs = AccountingInput(
        Decimal("99.9"), None, (), (incident("night", "2026-03-28T23:30", "2026-03-29T00:30"),)
    )
    days = compute_days(inputs, "Europe/London", utc("2026-03-29T12:00"), days=3)
    assert [d.date for d in days] == [date(2026, 3, 27), date(2026, 3, 28), date(2026, 3, 29)]
    assert [d.downtime_seconds for d in days] == [0, 1800, 1800]
    assert days[1].availability == pytest.approx(1 - 1800 / 86400)
    # 29 Mar so far: 00:00Z to 12:00Z = 43,200 s
    assert days[2].availability == pytest.approx(1 - 1800 / 43200)


def test_ninety_days_are_returned_even_at_midnight() -> None:
    inputs = AccountingInput(Decimal("99.9"), None, (), ())
    days = compute_days(inputs, "UTC", utc("2026-11-26T00:00"))
    assert len(days) == 90
    assert days[-1].date == date(2026, 11, 26)
    assert days[0].date == date(2026, 8, 29)
    assert all(d.availability == 1.0 for d in days[:-1])
    assert days[-1].availability is None  # today has not begun: nothing was eligible yet


def test_a_day_before_the_agreement_existed_has_no_availability() -> None:
    inputs = AccountingInput(Decimal("99.9"), utc("2026-11-25T12:00"), (), ())
    days = compute_days(inputs, "UTC", utc("2026-11-26T06:00"), days=3)
    assert [d.availability for d in days] == [None, 1.0, 1.0]
    assert days[0].unmonitored_seconds == 86400


def test_history_keeps_closed_periods_since_monitoring_began() -> None:
    # Created 15 Aug; now 26 Nov: closed months August (half unmonitored), September, October
    window = Window(period=CalendarPeriod.MONTH)
    inputs = AccountingInput(
        Decimal("99.9"),
        utc("2026-08-15T00:00"),
        (),
        (incident("october", "2026-10-03T00:00", "2026-10-03T00:04"),),
    )
    history = compute_history(inputs, window, utc("2026-11-26T10:00"))
    assert [p.label for p in history] == ["2026-08", "2026-09", "2026-10"]
    assert history[0].unmonitored_seconds == 14 * 86400
    # October: 31 days = 2,678,400 s; D = 240; availability = 2,678,160 / 2,678,400
    assert history[2].downtime_seconds == 240
    assert history[2].availability == pytest.approx(2_678_160 / 2_678_400, abs=1e-15)
    assert history[2].budget_total_seconds == 2678.4
    assert [p.label for p in compute_history(inputs, window, utc("2026-11-26T10:00"), keep=2)] == [
        "2026-09",
        "2026-10",
    ]


def test_a_rolling_window_has_no_history() -> None:
    inputs = AccountingInput(Decimal("99.9"), None, (), ())
    assert compute_history(inputs, Window(type=WindowType.ROLLING), utc("2026-11-26T10:00")) == []
