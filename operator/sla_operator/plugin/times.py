"""Times and durations as people type them at 3 a.m.: "now", "10m ago", "in 2h",
"06:21", "2026-12-07 06:21" (local time), "2026-12-07 06:21 Europe/Paris", RFC 3339.

Pure: the current time and the local zone are parameters.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, tzinfo
from datetime import time as time_of_day
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

EXAMPLES = '"now", "10m ago", "in 2h", "06:21", "2026-12-07 06:21", "2026-12-07T06:21:00Z"'

_UNITS = {"s": 1, "sec": 1, "secs": 1, "second": 1, "seconds": 1,
          "m": 60, "min": 60, "mins": 60, "minute": 60, "minutes": 60,
          "h": 3600, "hr": 3600, "hrs": 3600, "hour": 3600, "hours": 3600,
          "d": 86400, "day": 86400, "days": 86400, "w": 604800, "week": 604800, "weeks": 604800}
_SPAN_PART = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([a-z]+)\s*")
_DATE_TIME = re.compile(r"^(\d{4}-\d{2}-\d{2})[T ](\d{1,2}:\d{2}(?::\d{2}(?:\.\d+)?)?)"
                        r"\s*(Z|[+-]\d{2}:?\d{2}|[A-Za-z][\w/+-]*)?$")
_CLOCK = re.compile(r"^(\d{1,2}):(\d{2})(?::(\d{2}))?$")


class TimeError(ValueError):
    """Text that is not a time or a duration; the message says what is accepted."""


def parse_span(text: str) -> timedelta:
    """``90s``, ``10m``, ``1h30m``, ``2 hours``, ``1d``: a positive duration."""
    cleaned = text.strip().lower()
    position, seconds = 0, 0.0
    while position < len(cleaned):
        part = _SPAN_PART.match(cleaned, position)
        if part is None or part.group(2) not in _UNITS:
            raise TimeError(f"{text!r} is not a duration (e.g. 90s, 10m, 1h30m, 2 hours, 1d)")
        seconds += float(part.group(1)) * _UNITS[part.group(2)]
        position = part.end()
    if seconds <= 0:
        raise TimeError(f"{text!r} is not a duration (e.g. 90s, 10m, 1h30m, 2 hours, 1d)")
    return timedelta(seconds=seconds)


def parse_when(text: str, now: datetime, zone: tzinfo | None = None) -> datetime:
    """The moment ``text`` names, in UTC, whole seconds.

    A time without a zone is local time (``zone``; None: the machine's), as a person at
    the terminal means it; DST gaps and folds resolve as the system clock does."""
    cleaned = " ".join(text.strip().split())
    lowered = cleaned.lower()
    if lowered == "now":
        moment = now
    elif lowered.endswith(" ago"):
        moment = now - parse_span(lowered[:-4])
    elif lowered.startswith("in "):
        moment = now + parse_span(lowered[3:])
    elif clock := _CLOCK.match(cleaned):
        local_now = now.astimezone(zone) if zone is not None else now.astimezone()
        moment = _local(datetime.combine(local_now.date(), _clock_time(clock, text)), zone)
    elif stamp := _DATE_TIME.match(cleaned):
        moment = _dated(stamp, text, zone)
    else:
        raise TimeError(f"{text!r} is not a time; use e.g. {EXAMPLES}")
    return moment.astimezone(UTC).replace(microsecond=0)


def _clock_time(clock: re.Match[str], text: str) -> time_of_day:
    hour, minute, second = int(clock.group(1)), int(clock.group(2)), int(clock.group(3) or 0)
    if hour > 23 or minute > 59 or second > 59:
        raise TimeError(f"{text!r} is not a time of day (00:00 to 23:59)")
    return time_of_day(hour, minute, second)


def _dated(stamp: re.Match[str], text: str, zone: tzinfo | None) -> datetime:
    day, clock, named = stamp.groups()
    try:
        naive = datetime.fromisoformat(f"{day}T{clock if clock[1] != ':' else '0' + clock}")
    except ValueError:
        raise TimeError(f"{text!r} is not a valid date and time") from None
    if named is None:
        return _local(naive, zone)
    if named == "Z" or named[0] in "+-":
        offset = named if named == "Z" or ":" in named else f"{named[:3]}:{named[3:]}"
        return datetime.fromisoformat(f"{naive.isoformat()}{offset.replace('Z', '+00:00')}")
    try:
        return naive.replace(tzinfo=ZoneInfo(named))
    except (ZoneInfoNotFoundError, ValueError):
        raise TimeError(f"{text!r}: {named!r} is not a time zone (e.g. UTC, Europe/Paris, "
                        "+01:00)") from None


def _local(naive: datetime, zone: tzinfo | None) -> datetime:
    return naive.replace(tzinfo=zone) if zone is not None else naive.astimezone()


def span_text(seconds: int) -> str:
    """A duration as kubectl's AGE column shows it: 45s, 12m, 3h4m, 2d5h."""
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m"
    if seconds < 86400:
        hours, minutes = divmod(seconds // 60, 60)
        return f"{hours}h{minutes}m" if minutes and hours < 10 else f"{hours}h"
    days, hours = divmod(seconds // 3600, 24)
    return f"{days}d{hours}h" if hours and days < 10 else f"{days}d"
