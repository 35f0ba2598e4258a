"""Availability and error budget per period, in figures a customer can check by hand.

Within the elapsed part of a period, time falls into exactly one of: maintenance (M),
excluded (X: a third-party outage during a service outage, or an incident a person marked
excluded), unmonitored (U: before the agreement existed, or no probe data), downtime (D) or
available. Eligible time E = elapsed - M - X - U; availability = (E - D) / E.

Arithmetic is exact (Decimal seconds from whole microseconds); rounding is left to whoever
presents the figures.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from itertools import pairwise

from sla_operator.domain.intervals import Interval, intersect, subtract, union
from sla_operator.domain.model import Impact, Incident, Window
from sla_operator.domain.periods import (
    local_day,
    period_label,
    previous_periods,
    zone,
)

_HUNDRED = Decimal(100)
_ONE = Decimal(1)


@dataclass(frozen=True)
class AccountingInput:
    objective: Decimal  # percent, e.g. Decimal("99.9")
    monitored_since: datetime | None  # time before it is unmonitored (the agreement's creation)
    maintenance: Sequence[Interval]  # scheduled maintenance occurrences, any range
    incidents: Sequence[Incident]  # all incidents of the agreement, any order
    unmonitored: Sequence[Interval] = ()  # no probe data: operator down, stale probes


@dataclass(frozen=True)
class PeriodFigures:
    period: Interval
    label: str
    elapsed_seconds: float
    maintenance_seconds: float
    excluded_seconds: float
    unmonitored_seconds: float
    downtime_seconds: float
    eligible_seconds: float
    availability: float  # ratio 0..1; 1.0 when nothing was eligible
    objective: Decimal
    budget_total_seconds: float
    budget_remaining_seconds: float  # negative once the budget is overspent
    budget_remaining_ratio: float  # remaining / total; without a budget 1.0, or 0.0 after downtime
    incidents: int  # incidents of the service itself (not dependencies) overlapping the period
    met: bool  # availability * 100 >= objective
    excluded_incidents: tuple[str, ...]  # names of incidents whose time was excluded


@dataclass(frozen=True)
class DayFigures:
    date: date
    availability: float | None  # ratio 0..1; None when nothing was eligible ("no data")
    downtime_seconds: float
    maintenance_seconds: float
    excluded_seconds: float
    unmonitored_seconds: float


@dataclass(frozen=True)
class TimeSplit:
    """How the elapsed part of one period divides up; the four time sets are disjoint."""

    elapsed: list[Interval]
    maintenance: list[Interval]
    excluded: list[Interval]
    unmonitored: list[Interval]
    downtime: list[Interval]


def _seconds(intervals: Iterable[Interval]) -> Decimal:
    covered = sum((i.end - i.start for i in union(intervals)), timedelta(0))
    return Decimal(covered // timedelta(microseconds=1)) / 1_000_000


def _spans(incidents: Iterable[Incident], now: datetime) -> list[Interval]:
    return union(incident.interval(now) for incident in incidents)


def _service_down(inputs: AccountingInput, now: datetime) -> list[Interval]:
    return _spans((i for i in inputs.incidents if i.impact is Impact.DOWNTIME and not i.dependency), now)


def _split(inputs: AccountingInput, elapsed: list[Interval], now: datetime) -> TimeSplit:
    """Classify the ``elapsed`` time. Each instant's class depends only on that instant, so
    splitting a long span once and slicing it gives the same figures as splitting each slice."""
    # Time before the agreement existed is unmonitored, whatever windows covered it.
    before_monitoring = (
        [Interval(min(elapsed[0].start, inputs.monitored_since), inputs.monitored_since)]
        if inputs.monitored_since is not None and elapsed
        else []
    )
    maintenance = subtract(intersect(inputs.maintenance, elapsed), before_monitoring)
    # Every set below is cut to the elapsed time: incidents outside it cannot change a figure.
    incidents = _touching(inputs.incidents, elapsed, now)
    service_down = _spans((i for i in incidents if i.impact is Impact.DOWNTIME and not i.dependency), now)
    dependency_down = _spans((i for i in incidents if i.dependency), now)
    marked = _spans(
        (i for i in incidents if i.exclusion is not None and i.impact is Impact.DOWNTIME),
        now,
    )
    excusable = union([*intersect(dependency_down, service_down), *marked])
    excluded = subtract(intersect(excusable, elapsed), [*maintenance, *before_monitoring])
    unmonitored = subtract(
        intersect([*before_monitoring, *inputs.unmonitored], elapsed), [*maintenance, *excluded]
    )
    downtime = subtract(intersect(service_down, elapsed), [*maintenance, *excluded, *unmonitored])
    return TimeSplit(elapsed, maintenance, excluded, unmonitored, downtime)


def period_split(inputs: AccountingInput, period: Interval, now: datetime) -> TimeSplit:
    """The elapsed part of ``period`` as its disjoint parts, as intervals: what a statement
    attributes line by line, exactly as ``compute_period`` counts it."""
    return _split(inputs, _elapsed(period, now), now)


def _touching(incidents: Sequence[Incident], elapsed: list[Interval], now: datetime) -> list[Incident]:
    if not elapsed:
        return []
    start, end = elapsed[0].start, elapsed[-1].end
    return [i for i in incidents if (span := i.interval(now)).end >= start and span.start <= end]


def _elapsed(period: Interval, now: datetime) -> list[Interval]:
    return [Interval(period.start, min(now, period.end))] if now > period.start else []


def _overlaps_period(span: Interval, period: Interval) -> bool:
    """Positive overlap, or an incident that began inside the period and has no length yet."""
    return span.overlaps(period) or (span.start == span.end and period.contains(span.start))


def _excluded_incident_names(
    inputs: AccountingInput, excluded: list[Interval], now: datetime
) -> tuple[str, ...]:
    """Incidents that caused an exclusion: marked ones, and dependency outages overlapping
    a service outage, where that time is part of X."""
    service_down = _service_down(inputs, now)
    names: set[str] = set()
    for incident in inputs.incidents:
        if incident.exclusion is not None and incident.impact is Impact.DOWNTIME:
            cause = [incident.interval(now)]
        elif incident.dependency:
            cause = intersect([incident.interval(now)], service_down)
        else:
            continue
        if intersect(cause, excluded):
            names.add(incident.name)
    return tuple(sorted(names))


def _ratio(numerator: Decimal, denominator: Decimal, when_empty: Decimal) -> Decimal:
    return numerator / denominator if denominator else when_empty


def compute_period(inputs: AccountingInput, period: Interval, now: datetime, label: str) -> PeriodFigures:
    """The figures of ``period`` as known at ``now`` (a period still running is partial)."""
    split = _split(inputs, _elapsed(period, now), now)
    elapsed, maintenance = _seconds(split.elapsed), _seconds(split.maintenance)
    excluded, unmonitored = _seconds(split.excluded), _seconds(split.unmonitored)
    downtime = _seconds(split.downtime)
    eligible = elapsed - maintenance - excluded - unmonitored
    availability = _ratio(eligible - downtime, eligible, _ONE)
    # The budget is for the whole period, so it subtracts maintenance still ahead too.
    scheduled = _seconds(intersect(inputs.maintenance, [period]))
    budget_total = (_ONE - inputs.objective / _HUNDRED) * (_seconds([period]) - scheduled - excluded)
    budget_remaining = budget_total - downtime
    no_budget_ratio = _ONE if downtime == 0 else Decimal(0)
    return PeriodFigures(
        period=period,
        label=label,
        elapsed_seconds=float(elapsed),
        maintenance_seconds=float(maintenance),
        excluded_seconds=float(excluded),
        unmonitored_seconds=float(unmonitored),
        downtime_seconds=float(downtime),
        eligible_seconds=float(eligible),
        availability=float(availability),
        objective=inputs.objective,
        budget_total_seconds=float(budget_total),
        budget_remaining_seconds=float(budget_remaining),
        budget_remaining_ratio=float(_ratio(budget_remaining, budget_total, no_budget_ratio)),
        incidents=sum(
            1
            for incident in inputs.incidents
            if not incident.dependency and _overlaps_period(incident.interval(now), period)
        ),
        met=availability * _HUNDRED >= inputs.objective,
        excluded_incidents=_excluded_incident_names(inputs, split.excluded, now),
    )


def counted_time(
    inputs: AccountingInput, span: Interval, now: datetime
) -> tuple[list[Interval], list[Interval]]:
    """Downtime and eligible time inside ``span`` up to ``now``, as intervals: what the
    burn-rate counters count, each instant at most once."""
    split = _split(inputs, _elapsed(span, now), now)
    eligible = subtract(split.elapsed, [*split.maintenance, *split.excluded, *split.unmonitored])
    return split.downtime, eligible


def compute_days(inputs: AccountingInput, time_zone: str, now: datetime, days: int = 90) -> list[DayFigures]:
    """The last ``days`` local days ending with today (partial), oldest first."""
    today = now.astimezone(zone(time_zone, "spec.window.timeZone")).date()
    dates = [today - timedelta(days=back) for back in range(days - 1, -1, -1)]
    if not dates:
        return []
    split = _split(inputs, _elapsed(Interval(local_day(time_zone, dates[0]).start, now), now), now)
    # Each part's time per day in one sweep over the days, not one intersection per day.
    bounds = [local_day(time_zone, day).start for day in dates]
    bounds.append(local_day(time_zone, dates[-1]).end)
    maintenance_days, excluded_days, unmonitored_days, downtime_days, elapsed_days = (
        _per_day(part, bounds)
        for part in (split.maintenance, split.excluded, split.unmonitored, split.downtime,
                     split.elapsed))
    figures: list[DayFigures] = []
    for index, day in enumerate(dates):
        maintenance, excluded, unmonitored, downtime = (
            maintenance_days[index], excluded_days[index], unmonitored_days[index],
            downtime_days[index])
        eligible = elapsed_days[index] - maintenance - excluded - unmonitored
        figures.append(
            DayFigures(
                date=day,
                # A day the agreement did not exist, or wholly unmonitored or in maintenance,
                # has nothing to measure: "no data", never a false 100%.
                availability=float((eligible - downtime) / eligible) if eligible else None,
                downtime_seconds=float(downtime),
                maintenance_seconds=float(maintenance),
                excluded_seconds=float(excluded),
                unmonitored_seconds=float(unmonitored),
            )
        )
    return figures


_MICROSECOND = timedelta(microseconds=1)
_NONE = Decimal(0)


def _per_day(intervals: Sequence[Interval], bounds: Sequence[datetime]) -> list[Decimal]:
    """Seconds of ``intervals`` within each [bounds[k], bounds[k + 1]) (consecutive days),
    exactly as ``_seconds`` of their intersection with that day."""
    merged = union(intervals)
    totals: list[Decimal] = []
    first = 0
    for start, end in pairwise(bounds):
        while first < len(merged) and merged[first].end <= start:
            first += 1
        covered = timedelta(0)
        index = first
        while index < len(merged) and merged[index].start < end:
            piece = merged[index]
            low, high = max(piece.start, start), min(piece.end, end)
            if low < high:
                covered += high - low
            index += 1
        totals.append(Decimal(covered // _MICROSECOND) / 1_000_000 if covered else _NONE)
    return totals


def compute_history(
    inputs: AccountingInput, window: Window, now: datetime, keep: int = 13
) -> list[PeriodFigures]:
    """Closed calendar periods, oldest first, at most ``keep``, ending after monitoring began."""
    since = inputs.monitored_since or datetime.min.replace(tzinfo=UTC)
    return [
        compute_period(inputs, period, now, period_label(window, period))
        for period in previous_periods(window, now, keep)
        if period.end > since
    ]
