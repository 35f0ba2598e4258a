"""A status read back (from the API server or the state folder) is untrusted input.

Anyone with status rights, a restore from backup or an older version may have written it.
What the operator takes back from it (frozen history, unmonitored gaps, conditions, the
last evaluation, Down streaks) is parsed here like a spec: a bad entry is dropped with a
problem naming its field path, and whatever the operator recomputes (history from the
records) is recomputed. Nothing read back reaches the figures, `/metrics` or a page raw.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from sla_operator.domain.errors import Problem, SpecError
from sla_operator.domain.fields import parse_time
from sla_operator.domain.intervals import Interval
from sla_operator.domain.records import format_time

# Calendar period labels the operator writes: 2026, 2026-10, 2026-Q4, 2026-W44.
PERIOD_LABEL = re.compile(r"^\d{4}(-(0[1-9]|1[0-2])|-Q[1-4]|-W(0[1-9]|[1-4]\d|5[0-3]))?$")
# A decimal as the operator writes one: ASCII digits, an optional sign, point and exponent.
DECIMAL = re.compile(r"-?[0-9]+(\.[0-9]+)?([eE][-+]?[0-9]{1,4})?\Z")
# More seconds than a year and a day cannot be in one closed period (or one gap count).
MAX_SECONDS = 367 * 86400
MAX_COUNT = 1_000_000
# Labels are in the agreement's time zone: a period may begin up to 14 hours before its
# first day begins in UTC (UTC+14).
LABEL_ZONE_SLACK = timedelta(hours=14)
CONDITION_STATUSES = ("True", "False", "Unknown")
NAME_LENGTH = 253


@dataclass(frozen=True)
class DownStreak:
    """An endpoint that was Down when the status was written, and since when."""

    endpoint: str
    since: datetime
    consecutive_failures: int | None


@dataclass(frozen=True)
class UpStreak:
    """An endpoint that was Up when the status was written, and since when."""

    endpoint: str
    since: datetime
    consecutive_successes: int


@dataclass(frozen=True)
class SavedStatus:
    history: Mapping[str, Mapping[str, Any]]  # period label -> entry, normalised
    unmonitored: tuple[Interval, ...]
    conditions: tuple[Mapping[str, Any], ...]
    last_evaluated: datetime | None
    down_streaks: tuple[DownStreak, ...]
    problems: tuple[Problem, ...]
    up_streaks: tuple[UpStreak, ...] = ()


def read_saved_status(status: object, now: datetime) -> SavedStatus:
    """Everything usable in ``status``; each part that is not is named in ``problems``."""
    problems: list[Problem] = []
    if not isinstance(status, Mapping):
        if status is not None:
            problems.append(Problem("status", "is not an object; ignored"))
        status = {}
    history = read_history(status.get("history"), problems, now)
    unmonitored = _each(status.get("unmonitored"), "status.unmonitored", problems,
                        lambda raw, path: _gap(raw, path, now, problems))
    conditions = _each(status.get("conditions"), "status.conditions", problems,
                       lambda raw, path: _condition(raw, path, now))
    last = _last_evaluated(status.get("lastEvaluated"), now, problems)
    streaks = _each(status.get("endpoints"), "status.endpoints", problems,
                    lambda raw, path: _streak(raw, path, now))
    return SavedStatus(history, tuple(g for g in unmonitored if g is not None),
                       tuple(conditions), last,
                       tuple(s for s in streaks if s is not None), tuple(problems),
                       _up_streaks(status.get("endpoints"), now))


def _each(raw: object, path: str, problems: list[Problem], parse: Any) -> list[Any]:
    if raw is None:
        return []
    if not isinstance(raw, list):
        problems.append(Problem(path, "is not a list; ignored"))
        return []
    kept = []
    for index, entry in enumerate(raw):
        try:
            if not isinstance(entry, Mapping):
                raise SpecError.at(f"{path}[{index}]", "is not an object")
            kept.append(parse(entry, f"{path}[{index}]"))
        except SpecError as error:
            problems.extend(Problem(p.path, f"{p.message}; entry dropped") for p in error.problems)
    return kept


def read_history(raw: object, problems: list[Problem],
                 now: datetime | None = None) -> dict[str, Mapping[str, Any]]:
    """``status.history`` by period label; bad entries are dropped and named in ``problems``.

    With ``now``, an entry of a period that has not begun by then, or that starts or ends
    after it, is bad too: history holds closed periods only."""
    entries = _each(raw, "status.history", problems,
                    lambda entry, path: _history_entry(entry, path, now))
    return {entry["period"]: entry for entry in entries}


def _history_entry(raw: Mapping[str, Any], path: str,
                   now: datetime | None = None) -> Mapping[str, Any]:
    label = raw.get("period")
    if not isinstance(label, str) or not PERIOD_LABEL.match(label):
        raise SpecError.at(f"{path}.period", f"{_shown(label)} is not a period label such as "
                                             "2026, 2026-10, 2026-Q4 or 2026-W44")
    try:
        first_day = label_first_day(label)
    except ValueError:
        raise SpecError.at(f"{path}.period", f"{label} names no calendar period") from None
    if now is not None and first_day > (now + LABEL_ZONE_SLACK).date():
        raise SpecError.at(f"{path}.period", f"{label} has not begun yet")
    entry: dict[str, Any] = {"period": label}
    for name in ("start", "end"):
        if raw.get(name) is not None:
            moment = parse_time(raw[name], f"{path}.{name}")
            _not_after(moment, now, f"{path}.{name}")
            entry[name] = format_time(moment)
    if "availability" not in raw:
        raise SpecError.at(f"{path}.availability", "is missing")
    # Older versions wrote fewer fields: each one present must be right, none else is needed.
    entry["availability"] = _percent(raw["availability"], f"{path}.availability", nullable=True)
    if "objective" in raw:
        entry["objective"] = _percent(raw["objective"], f"{path}.objective", nullable=False)
    if "met" in raw:
        if not isinstance(raw["met"], bool):
            raise SpecError.at(f"{path}.met", f"{_shown(raw['met'])} is not true or false")
        entry["met"] = raw["met"]
    for name in ("downtimeSeconds", "maintenanceSeconds", "excludedSeconds", "unmonitoredSeconds"):
        if name in raw:
            entry[name] = _count(raw[name], f"{path}.{name}", MAX_SECONDS)
    if "incidents" in raw:
        entry["incidents"] = _count(raw["incidents"], f"{path}.incidents", MAX_COUNT)
    if "creditPercent" in raw:
        entry["creditPercent"] = _count(raw["creditPercent"], f"{path}.creditPercent", 100)
    return entry


def parse_decimal(value: object) -> Decimal | None:
    """A decimal string as the operator writes them (``99.9912``, ``-0.5``, ``1E+2``), or None.

    ``Decimal()`` alone takes more than that (``_1``, `` 5``, ``Infinity``, other scripts'
    digits), and some of it ``float()`` refuses: a string taken back must read the same way
    in every consumer, so only plain ASCII decimals are accepted."""
    if not isinstance(value, str) or not DECIMAL.match(value):
        return None
    try:
        return Decimal(value)
    except InvalidOperation:
        return None


def _percent(value: object, path: str, nullable: bool) -> str | None:
    if value is None and nullable:
        return None
    number = parse_decimal(value)
    if number is None or not number.is_finite() or not 0 <= number <= 100:
        allowed = "a percent string from 0 to 100" + (" or null" if nullable else "")
        raise SpecError.at(path, f"{_shown(value)} is not {allowed}")
    return value if isinstance(value, str) else None


def _count(value: object, path: str, limit: int) -> int:
    number: float | None = None
    if isinstance(value, int | float) and not isinstance(value, bool):
        number = float(value)
    if number is None or not math.isfinite(number) or not 0 <= number <= limit:
        raise SpecError.at(path, f"{_shown(value)} is not a number from 0 to {limit}")
    return round(number)


def label_first_day(label: str) -> date:
    """The first day of the calendar period a history label names, in the label's own
    calendar (2026-W44: Monday 26 October 2026)."""
    year, _, part = label.partition("-")
    if not part:
        return date(int(year), 1, 1)
    if part.startswith("W"):
        return date.fromisocalendar(int(year), int(part[1:]), 1)
    if part.startswith("Q"):
        return date(int(year), 3 * int(part[1:]) - 2, 1)
    return date(int(year), int(part), 1)


def _not_after(moment: datetime, now: datetime | None, path: str) -> None:
    if now is not None and moment > now:
        raise SpecError.at(path, f"{format_time(moment)} is in the future")


def _gap(raw: Mapping[str, Any], path: str, now: datetime,
         problems: list[Problem]) -> Interval | None:
    """A gap that begins in the future is dropped, one that ends in it is cut at ``now``:
    time not yet lived cannot have been unmonitored, and taken back it would hide downtime."""
    start = parse_time(raw.get("start"), f"{path}.start")
    end = parse_time(raw.get("end"), f"{path}.end")
    if end < start:
        raise SpecError.at(f"{path}.end", "is before start")
    _not_after(start, now, f"{path}.start")
    if end > now:
        problems.append(Problem(f"{path}.end", f"{format_time(end)} is in the future; "
                                               f"cut at {format_time(now)}"))
        end = now
    return Interval(start, end) if end > start else None


def _condition(raw: Mapping[str, Any], path: str, now: datetime) -> Mapping[str, Any]:
    kind, status = raw.get("type"), raw.get("status")
    if not isinstance(kind, str) or not kind or len(kind) > NAME_LENGTH:
        raise SpecError.at(f"{path}.type", f"{_shown(kind)} is not a condition type")
    if status not in CONDITION_STATUSES:
        raise SpecError.at(f"{path}.status", f"{_shown(status)} is not one of True, False, Unknown")
    changed = parse_time(raw.get("lastTransitionTime"), f"{path}.lastTransitionTime")
    _not_after(changed, now, f"{path}.lastTransitionTime")
    return {**{k: v for k, v in raw.items() if isinstance(v, str | int) and not isinstance(v, bool)},
            "type": kind, "status": status, "lastTransitionTime": format_time(changed)}


def _last_evaluated(raw: object, now: datetime, problems: list[Problem]) -> datetime | None:
    if raw is None:
        return None
    try:
        moment = parse_time(raw, "status.lastEvaluated")
    except SpecError as error:
        problems.extend(Problem(p.path, f"{p.message}; ignored") for p in error.problems)
        return None
    if moment > now:
        # A last evaluation in the future would hide the gap since then as monitored time.
        problems.append(Problem("status.lastEvaluated", f"{format_time(moment)} is in the future; "
                                                        "ignored"))
        return None
    return moment


def _streak(raw: Mapping[str, Any], path: str, now: datetime) -> DownStreak | None:
    if raw.get("state") != "Down" or not raw.get("since"):
        return None
    name = raw.get("name")
    if not isinstance(name, str) or not name:
        raise SpecError.at(f"{path}.name", f"{_shown(name)} is not an endpoint name")
    since = parse_time(raw["since"], f"{path}.since")
    _not_after(since, now, f"{path}.since")
    failures = raw.get("consecutiveFailures")
    count = (failures if isinstance(failures, int) and not isinstance(failures, bool)
             and 0 < failures <= MAX_COUNT else None)
    return DownStreak(name, since, count)


def _up_streaks(raw: object, now: datetime) -> tuple[UpStreak, ...]:
    """Endpoints the status says were Up. Only a hint for a restart moments later (the
    first status need not wait for the first probes): an entry that does not read as one
    cleanly is left out, and that endpoint waits for its first probe as before."""
    streaks: list[UpStreak] = []
    for entry in raw if isinstance(raw, list) else ():
        if not isinstance(entry, Mapping) or entry.get("state") != "Up":
            continue
        name, successes = entry.get("name"), entry.get("consecutiveSuccesses")
        try:
            since = parse_time(entry.get("since"), "since")
        except SpecError:
            continue
        if (isinstance(name, str) and name and since <= now and isinstance(successes, int)
                and not isinstance(successes, bool) and 0 <= successes <= MAX_COUNT):
            streaks.append(UpStreak(name, since, successes))
    return tuple(streaks)


def _shown(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def describe(problems: Sequence[Problem]) -> str:
    """One line for an Event or the log; long lists are cut, with the count left."""
    shown = "; ".join(str(p) for p in problems[:5])
    more = len(problems) - 5
    return shown + (f"; and {more} more" if more > 0 else "")
