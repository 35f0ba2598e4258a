"""Support hours: when a business-hours response target's clock runs.

Support hours are wall-clock times in a time zone (``09:00`` to ``17:00`` Monday to Friday in
Europe/London), so each day's hours are found in local time and only then turned into
instants: a day of a DST change keeps its 09:00 to 17:00, and the week after it starts an hour
earlier or later in UTC. A wall time that a spring-forward change skips counts from the
instant the clock passes it (Python's ``fold=0``).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from datetime import UTC, date, datetime, time, timedelta
from functools import partial
from typing import Any
from zoneinfo import ZoneInfo

from sla_operator.domain import model as m
from sla_operator.domain.errors import SpecError
from sla_operator.domain.fields import Collector, check_zone, enum_value
from sla_operator.domain.intervals import Interval

DAY_NAMES = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_CLOCK = re.compile(r"^([01][0-9]|2[0-3]):[0-5][0-9]$|^24:00$")
# A business-hours target longer than this many weeks of support hours is refused when the
# agreement is read, so that finding a due time always ends quickly.
MAX_WEEKS = 520


def parse_support_hours(raw: object, targets: Mapping[m.Severity, timedelta]
                        ) -> m.SupportHours | None:
    """``spec.supportHours`` into SupportHours; None when absent (support is 24/7)."""
    if raw is None:
        return None
    path = "spec.supportHours"
    if not isinstance(raw, Mapping):
        raise SpecError.at(path, "must be an object {timeZone, days, from, to, hours}")
    errors = Collector()
    zone = errors.run(lambda: check_zone(raw.get("timeZone", "UTC"), f"{path}.timeZone"), "UTC")
    days = errors.run(lambda: _days(raw.get("days", list(DAY_NAMES[:5])), f"{path}.days"),
                      frozenset(range(5)))
    nine: time | None = time(9)
    five: time | None = time(17)
    start = errors.run(lambda: _clock(raw.get("from", "09:00"), f"{path}.from"), nine)
    end = errors.run(lambda: _clock(raw.get("to", "17:00"), f"{path}.to"), five)
    if _clock_delta(end) <= _clock_delta(start):
        errors.add(f"{path}.to", f"{raw.get('to')!r} is not after from {raw.get('from')!r} "
                                 "(support hours within one day; 24:00 is the end of the day)")
    no_hours: dict[m.Severity, m.ResponseHours] = {}
    hours = errors.run(lambda: _hours(raw.get("hours") or {}, f"{path}.hours"), no_hours)
    errors.raise_if_any()
    begin = start or time(0)
    weekly = len(days) * (_clock_delta(end) - _clock_delta(begin))
    for severity in sorted(s for s, h in hours.items() if h is m.ResponseHours.BUSINESS):
        if targets[severity] > weekly * MAX_WEEKS:
            errors.add(f"{path}.hours.{severity.value}",
                       f"business: the target of {severity.value} would take more than "
                       f"{MAX_WEEKS} weeks of these support hours")
    errors.raise_if_any()
    return m.SupportHours(zone, days, begin, end, hours)


def _clock_delta(clock: time | None) -> timedelta:
    """A wall time as the time since midnight (None: 24:00, the end of the day)."""
    if clock is None:
        return timedelta(days=1)
    return timedelta(hours=clock.hour, minutes=clock.minute)


def _days(raw: object, path: str) -> frozenset[int]:
    if not isinstance(raw, list) or not raw:
        raise SpecError.at(path, f"must be a non-empty list of {', '.join(DAY_NAMES)}")
    bad = [d for d in raw if d not in DAY_NAMES]
    if bad:
        raise SpecError.at(path, f"{bad[0]!r} is not a day: use {', '.join(DAY_NAMES)}")
    return frozenset(DAY_NAMES.index(d) for d in raw)


def _clock(raw: object, path: str) -> time | None:
    """HH:MM; ``24:00`` (the end of the day) is None."""
    if not isinstance(raw, str) or not _CLOCK.match(raw):
        raise SpecError.at(path, f"{raw!r} is not a wall time HH:MM (00:00 to 24:00)")
    if raw == "24:00":
        return None
    return time(int(raw[:2]), int(raw[3:]))


def _hours(raw: object, path: str) -> dict[m.Severity, m.ResponseHours]:
    if not isinstance(raw, Mapping):
        raise SpecError.at(path, "must map severities (P1..P4) to always or business")
    errors = Collector()
    result: dict[m.Severity, m.ResponseHours] = {}
    for key, value in raw.items():
        severity = errors.run(partial(enum_value, m.Severity, key, path), None)
        chosen = errors.run(partial(enum_value, m.ResponseHours, value, f"{path}.{key}"), None)
        if severity is not None and chosen is not None:
            result[severity] = chosen
    errors.raise_if_any()
    return result


def hours_dict(hours: m.SupportHours | None) -> dict[str, Any] | None:
    """The manifest form (for round trips and the docs)."""
    if hours is None:
        return None
    return {"timeZone": hours.time_zone, "days": [DAY_NAMES[d] for d in sorted(hours.days)],
            "from": hours.start.strftime("%H:%M"),
            "to": "24:00" if hours.end is None else hours.end.strftime("%H:%M"),
            "hours": {s.value: h.value for s, h in sorted(hours.hours.items())}}


# ---------------------------------------------------------------- the clock


def _instant(day: date, clock: time, zone: ZoneInfo) -> datetime:
    return datetime.combine(day, clock, tzinfo=zone).astimezone(UTC)


def support_windows(hours: m.SupportHours, since: datetime) -> Iterator[Interval]:
    """Each day's support hours as instants, in order, from the one ``since`` falls in or
    the next one (endless: the caller stops)."""
    zone = ZoneInfo(hours.time_zone)
    day = since.astimezone(zone).date() - timedelta(days=1)
    while True:
        if day.weekday() in hours.days:
            start = _instant(day, hours.start, zone)
            end = (_instant(day + timedelta(days=1), time(0), zone) if hours.end is None
                   else _instant(day, hours.end, zone))
            if end > start and end > since:
                yield Interval(start, end)
        day += timedelta(days=1)


def business_due(opened: datetime, target: timedelta, hours: m.SupportHours) -> datetime:
    """The instant ``target`` of support hours have passed since ``opened``."""
    left = target
    windows = support_windows(hours, opened)
    while True:  # ends: targets beyond MAX_WEEKS of support hours are refused when parsed
        window = next(windows)
        start = max(window.start, opened)
        available = window.end - start
        if left <= available:
            return start + left
        left -= available


def business_time(start: datetime, end: datetime, hours: m.SupportHours) -> timedelta:
    """How much of [start, end) lies inside support hours."""
    total = timedelta(0)
    if end <= start:
        return total
    for window in support_windows(hours, start):
        if window.start >= end:
            break
        total += min(window.end, end) - max(window.start, start)
    return total


def counts_business(agreement: m.Agreement, severity: m.Severity) -> bool:
    hours = agreement.support_hours
    return hours is not None and hours.counts_business(severity)


def response_due(agreement: m.Agreement, severity: m.Severity, opened: datetime) -> datetime:
    """When a response to a request of ``severity`` opened at ``opened`` is due."""
    target = agreement.support_response[severity]
    hours = agreement.support_hours
    if hours is not None and hours.counts_business(severity):
        return business_due(opened, target, hours)
    return opened + target


def response_time(agreement: m.Agreement, severity: m.Severity, opened: datetime,
                  responded: datetime) -> timedelta:
    """The time a response took, as its target counts it (support hours only, for a
    business-hours severity)."""
    hours = agreement.support_hours
    if hours is not None and hours.counts_business(severity):
        return business_time(opened, responded, hours)
    return max(responded - opened, timedelta(0))
