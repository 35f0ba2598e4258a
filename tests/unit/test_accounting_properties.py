"""Properties the accounting must keep for any incidents, maintenance and moment."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from itertools import pairwise

from hypothesis import given, settings
from hypothesis import strategies as st

from sla_operator.domain.accounting import AccountingInput, PeriodFigures, compute_days, compute_period
from sla_operator.domain.intervals import Interval, intersect, subtract, total_seconds, union
from sla_operator.domain.model import (
    CalendarPeriod,
    Exclusion,
    ExclusionReason,
    Impact,
    Incident,
    IncidentType,
    Severity,
    Window,
)
from sla_operator.domain.periods import local_day, period_for_label

START = datetime(2026, 11, 1, tzinfo=UTC)
NOVEMBER = Interval(START, datetime(2026, 12, 1, tzinfo=UTC))
MINUTES_IN_NOVEMBER = 30 * 1440
FEW = settings(max_examples=60, deadline=None)

minutes = st.integers(min_value=-2 * 1440, max_value=MINUTES_IN_NOVEMBER + 2 * 1440)
lengths = st.integers(min_value=0, max_value=3 * 1440)
objectives = st.decimals(min_value=Decimal("90"), max_value=Decimal("99.999"), places=3)


def at(minute: int) -> datetime:
    return START + timedelta(minutes=minute)


@st.composite
def intervals(draw: st.DrawFn) -> Interval:
    start = draw(minutes)
    return Interval(at(start), at(start + draw(lengths)))


@st.composite
def incidents(draw: st.DrawFn, name: str = "incident") -> Incident:
    span = draw(intervals())
    return Incident(
        namespace="payments",
        name=name,
        agreement="payments-api",
        type=IncidentType.OUTAGE,
        severity=Severity.P2,
        title=name,
        started_at=span.start,
        resolved_at=draw(st.sampled_from([span.end, None])),
        impact=draw(st.sampled_from(list(Impact))),
        dependency=draw(st.booleans()),
        exclusion=draw(st.sampled_from([None, Exclusion(ExclusionReason.BLOCKED)])),
    )


@st.composite
def incident_lists(draw: st.DrawFn) -> list[Incident]:
    count = draw(st.integers(min_value=0, max_value=6))
    return [draw(incidents(f"incident-{n}")) for n in range(count)]


@st.composite
def inputs(draw: st.DrawFn) -> AccountingInput:
    return AccountingInput(
        objective=draw(objectives),
        monitored_since=draw(st.sampled_from([None, at(draw(minutes))])),
        maintenance=draw(st.lists(intervals(), max_size=4)),
        incidents=draw(incident_lists()),
        unmonitored=draw(st.lists(intervals(), max_size=3)),
    )


def figures_of(given_inputs: AccountingInput, now: datetime) -> PeriodFigures:
    return compute_period(given_inputs, NOVEMBER, now, "2026-11")


@FEW
@given(inputs(), minutes)
def test_availability_stays_between_zero_and_one(given_inputs: AccountingInput, now: int) -> None:
    figures = figures_of(given_inputs, at(now))
    assert 0.0 <= figures.availability <= 1.0
    assert 0 <= figures.downtime_seconds <= figures.eligible_seconds
    # maintenance, excluded, unmonitored and eligible time partition the elapsed time
    parts = (
        figures.maintenance_seconds
        + figures.excluded_seconds
        + figures.unmonitored_seconds
        + figures.eligible_seconds
    )
    assert parts == figures.elapsed_seconds
    margin = figures.availability * 100 - float(figures.objective)
    if abs(margin) > 1e-9:  # away from the boundary, where float rounding could decide
        assert figures.met == (margin > 0)


@FEW
@given(inputs(), minutes, intervals())
def test_adding_maintenance_never_adds_downtime(
    given_inputs: AccountingInput, now: int, extra: Interval
) -> None:
    before = figures_of(given_inputs, at(now))
    more = replace(given_inputs, maintenance=[*given_inputs.maintenance, extra])
    after = figures_of(more, at(now))
    assert after.downtime_seconds <= before.downtime_seconds
    assert after.budget_total_seconds <= before.budget_total_seconds


@FEW
@given(inputs(), minutes, st.integers(min_value=0, max_value=5))
def test_maintenance_over_downtime_never_lowers_availability(
    given_inputs: AccountingInput, now: int, which: int
) -> None:
    before = figures_of(given_inputs, at(now))
    down = [i.interval(at(now)) for i in given_inputs.incidents if i.impact is Impact.DOWNTIME]
    if not down:
        return
    more = replace(given_inputs, maintenance=[*given_inputs.maintenance, down[which % len(down)]])
    after = figures_of(more, at(now))
    assert after.availability >= before.availability - 1e-12


@FEW
@given(
    st.lists(intervals(), min_size=1, max_size=3),
    st.data(),
    minutes,
)
def test_downtime_inside_maintenance_counts_zero(
    maintenance: list[Interval], data: st.DataObject, now: int
) -> None:
    window = data.draw(st.sampled_from(maintenance))
    first = data.draw(st.integers(min_value=0, max_value=int(window.seconds // 60)))
    last = data.draw(st.integers(min_value=first, max_value=int(window.seconds // 60)))
    outage = Incident(
        namespace="payments",
        name="inside",
        agreement="payments-api",
        type=IncidentType.OUTAGE,
        severity=Severity.P1,
        title="inside",
        started_at=window.start + timedelta(minutes=first),
        resolved_at=window.start + timedelta(minutes=last),
    )
    figures = figures_of(AccountingInput(Decimal("99.9"), None, maintenance, [outage]), at(now))
    assert figures.downtime_seconds == 0
    assert figures.availability == 1.0


@FEW
@given(inputs(), incidents("whole"), st.floats(min_value=0, max_value=1), minutes)
def test_splitting_an_incident_in_two_adjacent_ones_changes_no_figure(
    given_inputs: AccountingInput, whole: Incident, fraction: float, now: int
) -> None:
    if whole.resolved_at is None:
        whole = replace(whole, resolved_at=whole.started_at + timedelta(hours=1))
    assert whole.resolved_at is not None
    cut = whole.started_at + (whole.resolved_at - whole.started_at) * fraction
    halves = [
        replace(whole, name="first", resolved_at=cut),
        replace(whole, name="second", started_at=cut),
    ]
    one = figures_of(replace(given_inputs, incidents=[*given_inputs.incidents, whole]), at(now))
    two = figures_of(replace(given_inputs, incidents=[*given_inputs.incidents, *halves]), at(now))
    # the number of incidents and their names differ by construction; every time figure agrees
    assert replace(one, incidents=0, excluded_incidents=()) == replace(
        two, incidents=0, excluded_incidents=()
    )


@FEW
@given(inputs(), st.permutations(range(6)), minutes)
def test_incident_order_does_not_matter(given_inputs: AccountingInput, order: list[int], now: int) -> None:
    listed = list(given_inputs.incidents)
    shuffled = [listed[i] for i in order if i < len(listed)]
    assert figures_of(given_inputs, at(now)) == figures_of(replace(given_inputs, incidents=shuffled), at(now))


@settings(max_examples=30, deadline=None)
@given(
    inputs(),
    st.integers(min_value=0, max_value=MINUTES_IN_NOVEMBER),
    st.sampled_from(["UTC", "Europe/London"]),
)
def test_each_day_matches_the_day_computed_as_its_own_period(
    given_inputs: AccountingInput, now: int, time_zone: str
) -> None:
    days = compute_days(given_inputs, time_zone, at(now), days=7)
    assert len(days) == 7
    for day in days:
        alone = compute_period(given_inputs, local_day(time_zone, day.date), at(now), "day")
        assert (day.downtime_seconds, day.maintenance_seconds) == (
            alone.downtime_seconds,
            alone.maintenance_seconds,
        )
        assert (day.excluded_seconds, day.unmonitored_seconds) == (
            alone.excluded_seconds,
            alone.unmonitored_seconds,
        )
        assert day.availability == (alone.availability if alone.eligible_seconds else None)


@settings(max_examples=25, deadline=None)
@given(
    st.integers(min_value=2000, max_value=2040),
    st.sampled_from(["UTC", "Europe/London", "America/New_York"]),
    objectives,
    st.lists(st.tuples(st.integers(0, 364 * 1440), st.integers(0, 3 * 1440)), max_size=5),
)
def test_monthly_budgets_of_a_year_add_up_to_the_yearly_budget(
    year: int, time_zone: str, objective: Decimal, outages: list[tuple[int, int]]
) -> None:
    yearly_window = Window(period=CalendarPeriod.YEAR, time_zone=time_zone)
    monthly_window = Window(period=CalendarPeriod.MONTH, time_zone=time_zone)
    year_period = period_for_label(yearly_window, str(year))
    downtime = [
        Incident(
            namespace="payments",
            name=f"outage-{n}",
            agreement="payments-api",
            type=IncidentType.OUTAGE,
            severity=Severity.P1,
            title="outage",
            started_at=year_period.start + timedelta(minutes=start),
            resolved_at=year_period.start + timedelta(minutes=start + length),
        )
        for n, (start, length) in enumerate(outages)
    ]
    given_inputs = AccountingInput(objective, None, (), downtime)
    now = year_period.end + timedelta(days=1)
    whole = compute_period(given_inputs, year_period, now, str(year))
    months = [
        compute_period(given_inputs, period_for_label(monthly_window, label), now, label)
        for label in (f"{year}-{m:02d}" for m in range(1, 13))
    ]
    assert sum(m.elapsed_seconds for m in months) == whole.elapsed_seconds
    assert abs(sum(m.budget_total_seconds for m in months) - whole.budget_total_seconds) < 1e-6
    assert abs(sum(m.budget_remaining_seconds for m in months) - whole.budget_remaining_seconds) < 1e-6


# ---------------------------------------------------------------- interval laws

interval_lists = st.lists(intervals(), max_size=6)


@FEW
@given(interval_lists, interval_lists)
def test_union_counts_shared_time_once(left: list[Interval], right: list[Interval]) -> None:
    # |A or B| = |A| + |B| - |A and B|
    assert total_seconds([*left, *right]) == (
        total_seconds(left) + total_seconds(right) - total_seconds(intersect(left, right))
    )


@FEW
@given(interval_lists, interval_lists)
def test_subtract_and_intersect_split_a_set_in_two(left: list[Interval], right: list[Interval]) -> None:
    kept, shared = subtract(left, right), intersect(left, right)
    assert intersect(kept, right) == []
    assert union([*kept, *shared]) == union(left)
    assert intersect(left, right) == intersect(right, left)


@FEW
@given(interval_lists)
def test_set_results_are_sorted_disjoint_and_idempotent(given_list: list[Interval]) -> None:
    merged = union(given_list)
    assert all(a.end < b.start for a, b in pairwise(merged))
    assert union(merged) == merged
    assert intersect(given_list, given_list) == merged
    assert subtract(given_list, given_list) == []


@settings(max_examples=40, deadline=None)
@given(
    inputs(),
    st.integers(min_value=0, max_value=MINUTES_IN_NOVEMBER),
    st.sampled_from(["UTC", "Europe/London", "America/New_York", "Asia/Kolkata"]),
)
def test_ninety_days_match_each_day_intersected_on_its_own(
    given_inputs: AccountingInput, now: int, time_zone: str
) -> None:
    """The days are split once and swept; each must equal its whole day cut out separately."""
    moment = at(now)
    days = compute_days(given_inputs, time_zone, moment, days=90)
    assert len(days) == 90
    since = local_day(time_zone, days[0].date).start
    for day in days:
        whole = local_day(time_zone, day.date)
        alone = compute_period(given_inputs, whole, moment, "day")
        elapsed = total_seconds(intersect([Interval(since, moment)], [whole]))
        assert day.downtime_seconds == alone.downtime_seconds
        assert day.maintenance_seconds == alone.maintenance_seconds
        assert day.excluded_seconds == alone.excluded_seconds
        assert day.unmonitored_seconds == alone.unmonitored_seconds
        assert elapsed == alone.elapsed_seconds
        assert day.availability == (alone.availability if alone.eligible_seconds else None)
