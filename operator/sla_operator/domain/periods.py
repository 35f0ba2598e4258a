"""Measurement periods: calendar weeks, months, quarters and years in a time zone, or rolling.

Calendar periods begin at local midnight, so their length in real seconds follows the zone's
daylight-saving changes: a Europe/London March is 743 hours long and its October 745.
"""

from __future__ import annotations

import functools
import math
import re
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sla_operator.domain.durations import format_duration
from sla_operator.domain.errors import SpecError
from sla_operator.domain.intervals import Interval
from sla_operator.domain.model import CalendarPeriod, Window, WindowType

TIME_ZONE_PATH = "spec.window.timeZone"

_LABEL_FORMS: dict[CalendarPeriod, tuple[re.Pattern[str], str]] = {
    CalendarPeriod.WEEK: (re.compile(r"^(\d{4})-W(\d{2})$"), "an ISO week like 2026-W44"),
    CalendarPeriod.MONTH: (re.compile(r"^(\d{4})-(\d{2})$"), "a month like 2026-10"),
    CalendarPeriod.QUARTER: (re.compile(r"^(\d{4})-Q([1-4])$"), "a quarter like 2026-Q4"),
    CalendarPeriod.YEAR: (re.compile(r"^(\d{4})$"), "a year like 2026"),
}


def zone(name: str, path: str) -> ZoneInfo:
    """The IANA zone called ``name``, or a SpecError naming ``path``."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, TypeError):
        raise SpecError.at(
            path, f"unknown time zone {name!r}; use an IANA name such as UTC or Europe/London"
        ) from None


def local_to_utc(local: datetime, time_zone: ZoneInfo) -> datetime:
    """The UTC instant a naive local wall-clock time stands for in ``time_zone``.

    An ambiguous time (clocks going back) means its first occurrence; a time skipped by
    clocks going forward means the first instant after the gap, the transition itself.
    """
    first = local.replace(tzinfo=time_zone, fold=0).astimezone(UTC)
    if first.astimezone(time_zone).replace(tzinfo=None) == local:
        return first
    # In a gap the two folds straddle the transition; find it to the second (tzdb
    # transitions fall on whole seconds).
    other = local.replace(tzinfo=time_zone, fold=1).astimezone(UTC)
    earlier, later = sorted((first, other))
    low, high = math.floor(earlier.timestamp()), math.ceil(later.timestamp())
    before = _offset_at(low, time_zone)
    while high - low > 1:
        middle = (low + high) // 2
        if _offset_at(middle, time_zone) == before:
            low = middle
        else:
            high = middle
    return datetime.fromtimestamp(high, UTC)


def _offset_at(epoch_seconds: int, time_zone: ZoneInfo) -> timedelta | None:
    return datetime.fromtimestamp(epoch_seconds, time_zone).utcoffset()


def local_midnight(day: date, time_zone: ZoneInfo) -> datetime:
    """The UTC instant local ``day`` begins."""
    return local_to_utc(datetime(day.year, day.month, day.day), time_zone)


@functools.lru_cache(maxsize=4096)
def local_day(time_zone: str, day: date) -> Interval:
    """The whole local calendar ``day`` as a UTC interval (23, 24 or 25 hours long)."""
    tz = zone(time_zone, TIME_ZONE_PATH)
    return Interval(local_midnight(day, tz), local_midnight(day + timedelta(days=1), tz))


def _period_start(period: CalendarPeriod, day: date) -> date:
    if period is CalendarPeriod.WEEK:
        return day - timedelta(days=day.weekday())
    if period is CalendarPeriod.MONTH:
        return day.replace(day=1)
    if period is CalendarPeriod.QUARTER:
        return date(day.year, 3 * ((day.month - 1) // 3) + 1, 1)
    return date(day.year, 1, 1)


def _next_period_start(period: CalendarPeriod, first: date) -> date:
    if period is CalendarPeriod.WEEK:
        return first + timedelta(days=7)
    months = {CalendarPeriod.MONTH: 1, CalendarPeriod.QUARTER: 3, CalendarPeriod.YEAR: 12}[period]
    index = first.year * 12 + first.month - 1 + months
    return date(index // 12, index % 12 + 1, 1)


def _calendar_period(window: Window, first: date) -> Interval:
    return _calendar_bounds(window.time_zone, window.period, first)


# Periods, and the periods before them, are asked for at every evaluation of every agreement:
# each is worked out once per time zone and first day (a few hundred entries at most).
@functools.lru_cache(maxsize=4096)
def _calendar_bounds(time_zone: str, period: CalendarPeriod, first: date) -> Interval:
    tz = zone(time_zone, TIME_ZONE_PATH)
    following = _next_period_start(period, first)
    return Interval(local_midnight(first, tz), local_midnight(following, tz))


def period_at(window: Window, moment: datetime) -> Interval:
    """The period containing ``moment``; a rolling window is the duration ending at it."""
    moment = moment.astimezone(UTC)
    if window.type is WindowType.ROLLING:
        return Interval(moment - window.duration, moment)
    local_date = moment.astimezone(zone(window.time_zone, TIME_ZONE_PATH)).date()
    return _calendar_period(window, _period_start(window.period, local_date))


def previous_periods(window: Window, moment: datetime, count: int) -> list[Interval]:
    """The ``count`` closed calendar periods before the current one, oldest first."""
    if window.type is WindowType.ROLLING:
        return []
    return list(_periods_before(window, period_at(window, moment), count))


@functools.lru_cache(maxsize=1024)
def _periods_before(window: Window, current: Interval, count: int) -> tuple[Interval, ...]:
    periods: list[Interval] = []
    for _ in range(count):
        current = period_at(window, current.start - timedelta(microseconds=1))
        periods.append(current)
    return tuple(periods[::-1])


def rolling_label(duration: timedelta) -> str:
    """``rolling-30d`` for whole days, otherwise the compact duration (``rolling-36h``)."""
    if duration % timedelta(days=1) == timedelta(0):
        return f"rolling-{duration.days}d"
    return f"rolling-{format_duration(duration)}"


def period_label(window: Window, period: Interval) -> str:
    """The name of a period in reports: ``2026-10``, ``2026-W44``, ``2026-Q4`` or ``2026``."""
    if window.type is WindowType.ROLLING:
        return rolling_label(window.duration)
    return _calendar_label(window.time_zone, window.period, period.start)


@functools.lru_cache(maxsize=4096)
def _calendar_label(time_zone: str, period: CalendarPeriod, start: datetime) -> str:
    first = start.astimezone(zone(time_zone, TIME_ZONE_PATH)).date()
    if period is CalendarPeriod.WEEK:
        iso = first.isocalendar()
        return f"{iso.year:04d}-W{iso.week:02d}"
    if period is CalendarPeriod.MONTH:
        return f"{first.year:04d}-{first.month:02d}"
    if period is CalendarPeriod.QUARTER:
        return f"{first.year:04d}-Q{(first.month - 1) // 3 + 1}"
    return f"{first.year:04d}"


def period_for_label(window: Window, label: str) -> Interval:
    """The calendar period a label names (the inverse of ``period_label``)."""
    if window.type is WindowType.ROLLING:
        raise SpecError.at(
            "period", f"{label!r}: a rolling window has no named periods, only the current one"
        )
    pattern, example = _LABEL_FORMS[window.period]
    found = pattern.match(label)
    try:
        if found is None:
            raise ValueError(label)
        year, part = int(found.group(1)), int(found.groups()[-1])
        return _calendar_period(window, _first_day(window.period, year, part))
    except (ValueError, OverflowError):
        raise SpecError.at(
            "period", f"{label!r} is not a {window.period.value} label; expected {example}"
        ) from None


def _first_day(period: CalendarPeriod, year: int, part: int) -> date:
    if period is CalendarPeriod.WEEK:
        return date.fromisocalendar(year, part, 1)
    if period is CalendarPeriod.MONTH:
        return date(year, part, 1)
    if period is CalendarPeriod.QUARTER:
        return date(year, 3 * (part - 1) + 1, 1)
    return date(year, 1, 1)
