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
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from sla_operator.domain.errors import Problem, SpecError
from sla_operator.domain.fields import parse_time
from sla_operator.domain.intervals import Interval
from sla_operator.domain.records import format_time

# Calendar period labels the operator writes: 2026, 2026-10, 2026-Q4, 2026-W44.
PERIOD_LABEL = re.compile(r"^\d{4}(-(0[1-9]|1[0-2])|-Q[1-4]|-W(0[1-9]|[1-4]\d|5[0-3]))?$")
# More seconds than a year and a day cannot be in one closed period (or one gap count).
MAX_SECONDS = 367 * 86400
MAX_COUNT = 1_000_000
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
    history = read_history(status.get("history"), problems)
    unmonitored = _each(status.get("unmonitored"), "status.unmonitored", problems, _gap)
    conditions = _each(status.get("conditions"), "status.conditions", problems, _condition)
    last = _last_evaluated(status.get("lastEvaluated"), now, problems)
    streaks = _each(status.get("endpoints"), "status.endpoints", problems, _streak)
    return SavedStatus(history, tuple(unmonitored), tuple(conditions), last,
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


def read_history(raw: object, problems: list[Problem]) -> dict[str, Mapping[str, Any]]:
    """``status.history`` by period label; bad entries are dropped and named in ``problems``."""
    entries = _each(raw, "status.history", problems, _history_entry)
    return {entry["period"]: entry for entry in entries}


def _history_entry(raw: Mapping[str, Any], path: str) -> Mapping[str, Any]:
    label = raw.get("period")
    if not isinstance(label, str) or not PERIOD_LABEL.match(label):
        raise SpecError.at(f"{path}.period", f"{_shown(label)} is not a period label such as "
                                             "2026, 2026-10, 2026-Q4 or 2026-W44")
    entry: dict[str, Any] = {"period": label}
    for name in ("start", "end"):
        if raw.get(name) is not None:
            entry[name] = format_time(parse_time(raw[name], f"{path}.{name}"))
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
    return entry


def _percent(value: object, path: str, nullable: bool) -> str | None:
    if value is None and nullable:
        return None
    try:
        number = Decimal(value) if isinstance(value, str) else None
    except InvalidOperation:
        number = None
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


def _gap(raw: Mapping[str, Any], path: str) -> Interval:
    start = parse_time(raw.get("start"), f"{path}.start")
    end = parse_time(raw.get("end"), f"{path}.end")
    if end < start:
        raise SpecError.at(f"{path}.end", "is before start")
    return Interval(start, end)


def _condition(raw: Mapping[str, Any], path: str) -> Mapping[str, Any]:
    kind, status = raw.get("type"), raw.get("status")
    if not isinstance(kind, str) or not kind or len(kind) > NAME_LENGTH:
        raise SpecError.at(f"{path}.type", f"{_shown(kind)} is not a condition type")
    if status not in CONDITION_STATUSES:
        raise SpecError.at(f"{path}.status", f"{_shown(status)} is not one of True, False, Unknown")
    changed = parse_time(raw.get("lastTransitionTime"), f"{path}.lastTransitionTime")
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


def _streak(raw: Mapping[str, Any], path: str) -> DownStreak | None:
    if raw.get("state") != "Down" or not raw.get("since"):
        return None
    name = raw.get("name")
    if not isinstance(name, str) or not name:
        raise SpecError.at(f"{path}.name", f"{_shown(name)} is not an endpoint name")
    since = parse_time(raw["since"], f"{path}.since")
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
