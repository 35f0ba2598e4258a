"""Maintenance schedules: when one-off and recurring MaintenanceWindows exclude time.

Recurring windows fire on the local wall clock of their time zone ("0 2 * * SUN" in
Europe/London is 02:00 local every Sunday, summer and winter), and last ``duration`` of real
elapsed time. Iteration goes day by day, never minute by minute, so ten years of a weekly
schedule is a few thousand cheap steps.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from itertools import pairwise
from zoneinfo import ZoneInfo

from sla_operator.domain.cron import CronExpression, matching_days
from sla_operator.domain.durations import format_duration
from sla_operator.domain.errors import Problem, SpecError
from sla_operator.domain.intervals import Interval, clip_all, union
from sla_operator.domain.model import MaintenanceWindow
from sla_operator.domain.periods import local_to_utc, zone

# How far ahead a schedule is searched for its first (or next) firing; long enough for
# "0 0 29 2 *", which skips 2100 and so can wait eight years.
SEARCH_HORIZON = timedelta(days=8 * 366)
# Where the search starts for a window without validFrom.
SEARCH_ORIGIN = datetime(2000, 1, 1, tzinfo=UTC)

Recurrence = tuple[CronExpression, timedelta]  # a recurring window's schedule and duration


@lru_cache(maxsize=512)
def _cron(text: str) -> CronExpression:
    return CronExpression.parse(text, "spec.schedule")


def _constant_offset(day: date, time_zone: ZoneInfo) -> timedelta | None:
    """The day's UTC offset when it does not change during the day, else None."""
    midnight = datetime(day.year, day.month, day.day, tzinfo=time_zone)
    offset = midnight.utcoffset()
    following = (midnight + timedelta(days=1)).utcoffset()
    return offset if offset == following else None


def _utc_midnight(day: date, offset: timedelta) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC) - offset


def _day_firings(cron: CronExpression, day: date, time_zone: ZoneInfo) -> list[datetime]:
    """The UTC instants ``cron`` fires on local ``day``, ascending, without repeats."""
    offset = _constant_offset(day, time_zone)
    if offset is not None:
        utc_midnight = _utc_midnight(day, offset)
        return [utc_midnight + timedelta(minutes=m) for m in cron.minutes_of_day]
    local_midnight = datetime(day.year, day.month, day.day)
    firings: list[datetime] = []
    for minute in cron.minutes_of_day:
        instant = local_to_utc(local_midnight + timedelta(minutes=minute), time_zone)
        if not firings or instant > firings[-1]:
            firings.append(instant)
    return firings


def occurrences(cron: CronExpression, time_zone: str, start: datetime, end: datetime) -> Iterator[datetime]:
    """Fire times of ``cron`` in [start, end) on the local wall clock of ``time_zone``, in UTC.

    A local time skipped by clocks going forward fires at the first instant after the gap;
    an ambiguous one (clocks going back) fires once, at its first occurrence.
    """
    tz = zone(time_zone, "spec.timeZone")
    last_fired: datetime | None = None
    first_day, last_day = start.astimezone(tz).date(), end.astimezone(tz).date()
    for day in matching_days(cron, first_day, last_day):
        for instant in _day_firings(cron, day, tz):
            if instant >= end:
                return
            if instant >= start and (last_fired is None or instant > last_fired):
                last_fired = instant
                yield instant


def shortest_gap(
    cron: CronExpression, time_zone: ZoneInfo, first_day: date, last_day: date
) -> timedelta | None:
    """The least real time between consecutive firings over these local days (None: < 2)."""
    shortest: timedelta | None = None
    previous: datetime | None = None
    for day in matching_days(cron, first_day, last_day):
        offset = _constant_offset(day, time_zone)
        if offset is None:
            firings = _day_firings(cron, day, time_zone)
            day_shortest = min((b - a for a, b in pairwise(firings)), default=None)
        else:
            # Without an offset change the day's gaps are the wall-clock ones: only its
            # first and last firing matter for the gaps to its neighbours.
            utc_midnight = _utc_midnight(day, offset)
            times = cron.minutes_of_day
            firings = [utc_midnight + timedelta(minutes=m) for m in (times[0], times[-1])]
            day_shortest = cron.shortest_gap_in_a_day
        candidates = [gap for gap in (shortest, day_shortest) if gap is not None]
        if previous is not None:
            candidates.append(firings[0] - previous)
        shortest = min(candidates, default=None)
        previous = firings[-1]
    return shortest


def _recurrence(window: MaintenanceWindow) -> Recurrence | None:
    if window.schedule is None or window.duration is None:
        return None
    if window.duration <= timedelta(0):
        raise SpecError.at("spec.duration", "must be longer than 0s")
    return _cron(window.schedule), window.duration


def _form(window: MaintenanceWindow) -> Interval | Recurrence:
    """A one-off window's span, or a recurring window's schedule and duration."""
    recurrence = _recurrence(window)
    if recurrence is not None:
        return recurrence
    if window.start is not None and window.end is not None:
        if window.end <= window.start:
            raise SpecError.at("spec.end", "must be after spec.start")
        return Interval(window.start, window.end)
    raise SpecError.at(
        "spec", "set start and end for a one-off window, or schedule and duration for a recurring one"
    )


def _recurring_spans(
    window: MaintenanceWindow, recurrence: Recurrence, start: datetime, end: datetime
) -> Iterator[Interval]:
    """Occurrences [t, t + duration) whose t is in [start, end) and within the validity bounds."""
    cron, duration = recurrence
    if window.valid_from is not None:
        start = max(start, window.valid_from)
    if window.valid_until is not None:
        end = min(end, window.valid_until)
    if start >= end:
        return
    for instant in occurrences(cron, window.time_zone, start, end):
        yield Interval(instant, instant + duration)


def maintenance_intervals(window: MaintenanceWindow, bounds: Interval) -> list[Interval]:
    """The time ``window`` excludes inside ``bounds``: clipped, unioned and sorted."""
    form = _form(window)
    if isinstance(form, Interval):
        return clip_all([form], bounds)
    spans = _recurring_spans(window, form, bounds.start - form[1], bounds.end)
    return union(clip_all(spans, bounds))


def active_and_next(window: MaintenanceWindow, now: datetime) -> tuple[Interval | None, Interval | None]:
    """The occurrence in progress at ``now`` (if any) and the next to start after it (if any)."""
    form = _form(window)
    if isinstance(form, Interval):
        return (form if form.contains(now) else None), (form if form.start > now else None)
    active: Interval | None = None
    for span in _recurring_spans(window, form, now - form[1], now + SEARCH_HORIZON):
        if span.start > now:
            return active, span
        if span.contains(now):
            active = span
    return active, None


def validate_maintenance(window: MaintenanceWindow) -> None:
    """Raise a SpecError listing every problem with ``window``, each at its field path."""
    problems: list[Problem] = []
    one_off = window.start is not None or window.end is not None
    recurring = window.schedule is not None or window.duration is not None
    if one_off and recurring:
        problems.append(
            Problem(
                "spec",
                "start/end (a one-off window) and schedule/duration (a recurring one) are "
                "mutually exclusive; set one pair",
            )
        )
    elif not one_off and not recurring:
        problems.append(
            Problem(
                "spec",
                "set start and end for a one-off window, or schedule and duration for a recurring one",
            )
        )
    if one_off:
        problems += _one_off_problems(window)
    try:
        zone(window.time_zone, "spec.timeZone")
    except SpecError as unknown:
        problems += unknown.problems
    if (
        window.valid_from is not None
        and window.valid_until is not None
        and window.valid_until <= window.valid_from
    ):
        problems.append(Problem("spec.validUntil", "must be after spec.validFrom"))
    if recurring:
        problems += _recurring_problems(window)
    recurrence = None if problems else _recurrence(window)
    if recurrence is not None:
        problems += _firing_problems(window, recurrence)
    if problems:
        raise SpecError(problems)


def _one_off_problems(window: MaintenanceWindow) -> list[Problem]:
    if window.start is None:
        return [Problem("spec.start", "required with spec.end (an RFC 3339 time)")]
    if window.end is None:
        return [Problem("spec.end", "required with spec.start (an RFC 3339 time)")]
    if window.end <= window.start:
        return [
            Problem(
                "spec.end",
                f"{window.end.isoformat()} must be after spec.start {window.start.isoformat()}",
            )
        ]
    return []


def _recurring_problems(window: MaintenanceWindow) -> list[Problem]:
    problems: list[Problem] = []
    if window.schedule is None:
        problems.append(Problem("spec.schedule", "required with spec.duration (e.g. '0 2 * * SUN')"))
    else:
        try:
            _cron(window.schedule)
        except SpecError as unparsable:
            problems += unparsable.problems
    if window.duration is None:
        problems.append(Problem("spec.duration", "required with spec.schedule (e.g. 2h)"))
    elif window.duration <= timedelta(0):
        problems.append(Problem("spec.duration", "must be longer than 0s (e.g. 2h)"))
    return problems


def _firing_problems(window: MaintenanceWindow, recurrence: Recurrence) -> list[Problem]:
    """A schedule that never fires, or whose occurrences would overlap each other."""
    cron, duration = recurrence
    time_zone = zone(window.time_zone, "spec.timeZone")
    start = window.valid_from or SEARCH_ORIGIN
    end = start + SEARCH_HORIZON
    if window.valid_until is not None:
        end = min(end, window.valid_until)
    if next(occurrences(cron, window.time_zone, start, end), None) is None:
        return [
            Problem(
                "spec.schedule",
                f"{window.schedule!r} never fires between {start:%Y-%m-%d} and {end:%Y-%m-%d}; "
                "check the day of month exists in the month (30 2 is 30 February) and the "
                "validity bounds",
            )
        ]
    gap = shortest_gap(cron, time_zone, start.astimezone(time_zone).date(), end.astimezone(time_zone).date())
    if gap is not None and duration > gap:
        return [
            Problem(
                "spec.duration",
                f"{format_duration(duration)} is longer than the recurrence: "
                f"{window.schedule!r} fires as little as {format_duration(gap)} apart in "
                f"{window.time_zone}, so occurrences would overlap; use at most {format_duration(gap)}",
            )
        ]
    return []
