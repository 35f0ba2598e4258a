"""What another replica published in an agreement's status, read back for a standby's outputs.

A standby (not the Lease holder) neither probes nor evaluates, yet its status page must show
what the leader shows. It reads the figures from the status the leader wrote: the state, the
current period, the 90 daily bars and each endpoint's state. The status is untrusted input
(see ``saved``): every part that is not what the operator writes is left out, with a
problem naming its field path, and nothing read here reaches an output raw.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import TypeVar

from sla_operator.domain.accounting import DayFigures, PeriodFigures
from sla_operator.domain.durations import parse_duration
from sla_operator.domain.errors import Problem, SpecError
from sla_operator.domain.fields import parse_time
from sla_operator.domain.intervals import Interval
from sla_operator.domain.model import State
from sla_operator.domain.periods import rolling_label
from sla_operator.domain.saved import (
    MAX_COUNT,
    MAX_SECONDS,
    PERIOD_LABEL,
    parse_decimal,
    read_history,
)
from sla_operator.domain.views import ClosedPeriodView

T = TypeVar("T")
DAYS_KEPT = 92  # the operator writes 90; a little slack, never an unbounded list
MAX_BUDGET_SECONDS = 10 * MAX_SECONDS  # a yearly budget of an objective near 0%
_PERIOD_SECONDS = ("elapsedSeconds", "eligibleSeconds", "downtimeSeconds", "maintenanceSeconds",
                   "excludedSeconds", "unmonitoredSeconds")
ROLLING_PREFIX = "rolling-"
_DAY_SECONDS = ("downtimeSeconds", "maintenanceSeconds", "excludedSeconds", "unmonitoredSeconds")


@dataclass(frozen=True)
class Published:
    """The figures an agreement's status shows, as numbers; empty when it shows none."""

    state: State = State.UNKNOWN
    period: PeriodFigures | None = None
    days: tuple[DayFigures, ...] = ()
    endpoints: Mapping[str, State] = field(default_factory=dict)
    last_evaluated: datetime | None = None
    last_closed: ClosedPeriodView | None = None  # the newest period in the history
    problems: tuple[Problem, ...] = ()


def read_published(status: object, objective: Decimal) -> Published:
    """The usable part of ``status``; ``objective`` is the agreement's (the spec decides)."""
    if not isinstance(status, Mapping):
        return Published()
    problems: list[Problem] = []
    state = _state(status.get("state"), "status.state", problems)
    period = _guard(problems, lambda: _period(status.get("currentPeriod"), objective))
    days = _days(status.get("daily"), problems)
    endpoints = _endpoints(status.get("endpoints"), problems)
    last = _guard(problems, lambda: _time(status.get("lastEvaluated"), "status.lastEvaluated"))
    history = read_history(status.get("history"), problems)
    closed = None
    if history:
        newest = history[max(history)]
        text = newest.get("availability")
        closed = ClosedPeriodView(str(newest["period"]),
                                  None if text is None else float(Decimal(text) / 100),
                                  newest.get("creditPercent"))
    return Published(state, period, days, endpoints, last, closed, tuple(problems))


def _guard(problems: list[Problem], read: Callable[[], T | None]) -> T | None:
    try:
        return read()
    except SpecError as error:
        problems.extend(Problem(p.path, f"{p.message}; ignored") for p in error.problems)
        return None


def _state(raw: object, path: str, problems: list[Problem]) -> State:
    if raw is None:
        return State.UNKNOWN
    try:
        return State(raw if isinstance(raw, str) else repr(raw))
    except ValueError:
        allowed = ", ".join(s.value for s in State)
        problems.append(Problem(path, f"{_shown(raw)} is not one of {allowed}; ignored"))
        return State.UNKNOWN


def _period(raw: object, objective: Decimal) -> PeriodFigures | None:
    path = "status.currentPeriod"
    if raw is None:
        return None
    if not isinstance(raw, Mapping):
        raise SpecError.at(path, "is not an object")
    start = parse_time(raw.get("start"), f"{path}.start")
    end = parse_time(raw.get("end"), f"{path}.end")
    if end < start:
        raise SpecError.at(f"{path}.end", "is before start")
    label = raw.get("label")
    if not isinstance(label, str) or not (PERIOD_LABEL.match(label) or _rolling_label(label)):
        raise SpecError.at(f"{path}.label", f"{_shown(label)} is not a period label")
    availability = _ratio(raw.get("availability"), f"{path}.availability")
    seconds = {name: _number(raw.get(name), f"{path}.{name}", MAX_SECONDS)
               for name in _PERIOD_SECONDS}
    budget = raw.get("errorBudget")
    if not isinstance(budget, Mapping):
        raise SpecError.at(f"{path}.errorBudget", "is not an object")
    total = _number(budget.get("totalSeconds"), f"{path}.errorBudget.totalSeconds",
                    MAX_BUDGET_SECONDS)
    remaining = _signed(budget.get("remainingSeconds"), f"{path}.errorBudget.remainingSeconds")
    ratio = _decimal(budget.get("remainingRatio"), f"{path}.errorBudget.remainingRatio")
    if availability is None:
        if seconds["eligibleSeconds"] != 0:
            raise SpecError.at(f"{path}.availability", "is missing")
        availability = 1.0  # no eligible time: no figure (the views say "no data")
    return PeriodFigures(
        period=Interval(start, end), label=label,
        elapsed_seconds=seconds["elapsedSeconds"],
        maintenance_seconds=seconds["maintenanceSeconds"],
        excluded_seconds=seconds["excludedSeconds"],
        unmonitored_seconds=seconds["unmonitoredSeconds"],
        downtime_seconds=seconds["downtimeSeconds"],
        eligible_seconds=seconds["eligibleSeconds"],
        availability=availability, objective=objective,
        budget_total_seconds=total, budget_remaining_seconds=remaining,
        budget_remaining_ratio=float(max(min(ratio, Decimal(1)), Decimal(-1000))),
        incidents=int(_number(raw.get("incidents", 0), f"{path}.incidents", MAX_COUNT)),
        met=Decimal(repr(availability)) * 100 >= objective,
        excluded_incidents=())


def _rolling_label(label: str) -> bool:
    """A rolling window's label as the operator writes it (``rolling-30d``, ``rolling-36h``)."""
    if not label.startswith(ROLLING_PREFIX):
        return False
    try:
        duration = parse_duration(label.removeprefix(ROLLING_PREFIX), "label")
    except SpecError:
        return False
    return duration > timedelta(0) and rolling_label(duration) == label


def _days(raw: object, problems: list[Problem]) -> tuple[DayFigures, ...]:
    path = "status.daily"
    if raw is None:
        return ()
    if not isinstance(raw, list):
        problems.append(Problem(path, "is not a list; ignored"))
        return ()
    days: dict[date, DayFigures] = {}
    # Entries are runs of days with the same figures (``days``: how many, 1 when left out);
    # a status of an older version has one entry per day. Each run is bounded, and so the list.
    for index, entry in enumerate(raw[-DAYS_KEPT:]):
        try:
            day = _day(entry, f"{path}[{index}]")
            count = _run_length(entry, f"{path}[{index}].days")
        except SpecError as error:
            problems.extend(Problem(p.path, f"{p.message}; ignored") for p in error.problems)
            continue
        for offset in range(count):
            when = day.date + timedelta(days=offset)
            days[when] = replace(day, date=when) if offset else day
    return tuple(days[d] for d in sorted(days)[-DAYS_KEPT:])


def _run_length(raw: object, path: str) -> int:
    count = raw.get("days", 1) if isinstance(raw, Mapping) else 1
    if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= DAYS_KEPT:
        raise SpecError.at(path, f"{_shown(count)} is not a number of days from 1 to {DAYS_KEPT}")
    return count


def _day(raw: object, path: str) -> DayFigures:
    if not isinstance(raw, Mapping):
        raise SpecError.at(path, "is not an object")
    text = raw.get("date")
    try:
        when = date.fromisoformat(text) if isinstance(text, str) else None
    except ValueError:
        when = None
    if when is None:
        raise SpecError.at(f"{path}.date", f"{_shown(text)} is not a date such as 2026-10-31")
    seconds = {name: _number(raw.get(name, 0), f"{path}.{name}", 86400 + 3600)
               for name in _DAY_SECONDS}
    return DayFigures(date=when, availability=_ratio(raw.get("availability"), f"{path}.availability"),
                      downtime_seconds=seconds["downtimeSeconds"],
                      maintenance_seconds=seconds["maintenanceSeconds"],
                      excluded_seconds=seconds["excludedSeconds"],
                      unmonitored_seconds=seconds["unmonitoredSeconds"])


def _endpoints(raw: object, problems: list[Problem]) -> dict[str, State]:
    if not isinstance(raw, list):
        return {}
    states = {}
    for index, entry in enumerate(raw):
        if isinstance(entry, Mapping) and isinstance(entry.get("name"), str):
            states[entry["name"]] = _state(entry.get("state"), f"status.endpoints[{index}].state",
                                           problems)
    return states


def _time(raw: object, path: str) -> datetime | None:
    return None if raw is None else parse_time(raw, path)


def _decimal(value: object, path: str) -> Decimal:
    number = parse_decimal(value)
    if number is None or not number.is_finite():
        raise SpecError.at(path, f"{_shown(value)} is not a decimal string")
    return number


def _ratio(value: object, path: str) -> float | None:
    """A percent string from 0 to 100 as a ratio; None stays None (no eligible time)."""
    if value is None:
        return None
    number = _decimal(value, path)
    if not 0 <= number <= 100:
        raise SpecError.at(path, f"{_shown(value)} is not a percent string from 0 to 100")
    return float(number / 100)


def _number(value: object, path: str, limit: float) -> float:
    if (isinstance(value, int | float) and not isinstance(value, bool)
            and math.isfinite(value) and 0 <= value <= limit):
        return float(value)
    raise SpecError.at(path, f"{_shown(value)} is not a number from 0 to {limit:g}")


def _signed(value: object, path: str) -> float:
    if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value) \
            and abs(value) <= MAX_BUDGET_SECONDS:
        return float(value)
    raise SpecError.at(path, f"{_shown(value)} is not a number of seconds")


def _shown(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."
