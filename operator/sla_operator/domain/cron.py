"""Five-field cron expressions (minute hour day-of-month month day-of-week), parsed by hand.

Supports ``*``, lists, ranges, steps (``*/15``, ``1-5/2``, ``10/20``), month and weekday
names (JAN..DEC, SUN..SAT; 0 and 7 are both Sunday) and the macros @hourly, @daily,
@midnight, @weekly, @monthly, @yearly and @annually.

Day of month and day of week follow Vixie cron: when both fields are restricted a day
matches if either does; a field whose text starts with ``*`` (``*`` or ``*/2``) counts as
unrestricted, so the other field alone decides.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from functools import cached_property
from itertools import pairwise

from sla_operator.domain.errors import Problem, SpecError

_MACROS = {
    "@hourly": "0 * * * *",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@weekly": "0 0 * * 0",
    "@monthly": "0 0 1 * *",
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
}
_MONTH_NAMES = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
_DAY_NAMES = ("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT")


@dataclass(frozen=True)
class _Field:
    name: str
    low: int
    high: int
    names: dict[str, int]

    @property
    def allowed(self) -> str:
        spelled = f", or names {'/'.join(self.names)}" if self.names else ""
        return f"{self.low}-{self.high}{spelled}"


_FIELDS = (
    _Field("minute", 0, 59, {}),
    _Field("hour", 0, 23, {}),
    _Field("day-of-month", 1, 31, {}),
    _Field("month", 1, 12, {name: i + 1 for i, name in enumerate(_MONTH_NAMES)}),
    _Field("day-of-week", 0, 7, {name: i for i, name in enumerate(_DAY_NAMES)}),
)


class _FieldError(ValueError):
    """One part of one field is wrong; the parser turns it into a Problem."""


def _value(text: str, spec: _Field) -> int:
    named = spec.names.get(text.upper())
    if named is not None:
        return named
    if not text.isdigit():
        raise _FieldError(f"{text[:20]!r} is not a number")
    if len(text) > 4:  # no field goes past 4 digits, and int() refuses very long ones
        raise _FieldError(f"{text[:20]}… is out of range")
    number = int(text)
    if not spec.low <= number <= spec.high:
        raise _FieldError(f"{number} is out of range")
    return number


def _range(text: str, spec: _Field) -> tuple[int, int]:
    if text == "*":
        return spec.low, spec.high
    if "-" not in text:
        return (value := _value(text, spec)), value
    first_text, _, last_text = text.partition("-")
    first, last = _value(first_text, spec), _value(last_text, spec)
    if spec.name == "day-of-week" and last == 0 < first:
        last = 7  # FRI-SUN: Sunday closes the week
    if first > last:
        raise _FieldError(f"range {text!r} runs backwards")
    return first, last


def _element(text: str, spec: _Field) -> set[int]:
    base, slash, step_text = text.partition("/")
    step = 1
    if slash:
        if not step_text.isdigit() or int(step_text) == 0:
            raise _FieldError(f"step {step_text!r} must be a whole number of at least 1")
        step = int(step_text)
    first, last = _range(base, spec)
    if slash and "-" not in base:
        last = spec.high  # "10/20" means every 20 from 10 on
    return set(range(first, last + 1, step))


def _field_values(text: str, spec: _Field) -> frozenset[int]:
    values: set[int] = set()
    for element in text.split(","):
        if not element:
            raise _FieldError("empty list element")
        values |= _element(element, spec)
    return frozenset(values)


@dataclass(frozen=True)
class CronExpression:
    """A parsed cron expression; ``text`` is what was written, macros included."""

    text: str
    minutes: frozenset[int]
    hours: frozenset[int]
    days_of_month: frozenset[int]
    months: frozenset[int]
    days_of_week: frozenset[int]  # 0 = Sunday .. 6 = Saturday
    day_of_month_restricted: bool
    day_of_week_restricted: bool

    @classmethod
    def parse(cls, text: str, path: str) -> CronExpression:
        """Parse ``text`` or raise a SpecError at ``path`` naming every wrong field."""
        expanded = _MACROS.get(text.strip().lower(), text)
        parts = expanded.split()
        if len(parts) != len(_FIELDS):
            hint = "; macros: " + ", ".join(_MACROS) if text.strip().startswith("@") else ""
            raise SpecError.at(
                path,
                f"{text!r} has {len(parts)} fields; a schedule needs 5: "
                f"minute hour day-of-month month day-of-week (e.g. '0 2 * * SUN'){hint}",
            )
        values: list[frozenset[int]] = []
        problems: list[Problem] = []
        for part, spec in zip(parts, _FIELDS, strict=True):
            try:
                values.append(_field_values(part, spec))
            except _FieldError as wrong:
                problems.append(Problem(path, f"{spec.name} field {part!r}: {wrong}; allowed {spec.allowed}"))
        if problems:
            raise SpecError(problems)
        minutes, hours, days_of_month, months, days_of_week = values
        return cls(
            text=text,
            minutes=minutes,
            hours=hours,
            days_of_month=days_of_month,
            months=months,
            days_of_week=frozenset(day % 7 for day in days_of_week),
            day_of_month_restricted=not parts[2].startswith("*"),
            day_of_week_restricted=not parts[4].startswith("*"),
        )

    def matches_day(self, day: date) -> bool:
        if day.month not in self.months:
            return False
        by_month_day = day.day in self.days_of_month
        by_week_day = day.isoweekday() % 7 in self.days_of_week
        if self.day_of_month_restricted and self.day_of_week_restricted:
            return by_month_day or by_week_day
        return by_month_day and by_week_day

    @cached_property
    def minutes_of_day(self) -> tuple[int, ...]:
        """The wall-clock times the expression fires on a matching day, as minutes since 00:00."""
        return tuple(sorted(hour * 60 + minute for hour in self.hours for minute in self.minutes))

    @cached_property
    def shortest_gap_in_a_day(self) -> timedelta | None:
        """The least wall-clock time between two firings on the same day (None: fires once)."""
        times = self.minutes_of_day
        gaps = [later - earlier for earlier, later in pairwise(times)]
        return timedelta(minutes=min(gaps)) if gaps else None


def matching_days(cron: CronExpression, first: date, last: date) -> Iterator[date]:
    """Days in [first, last] on which ``cron`` fires, skipping months it never fires in."""
    day = first
    while day <= last:
        if day.month not in cron.months:
            day = date(day.year + day.month // 12, day.month % 12 + 1, 1)
            continue
        if cron.matches_day(day):
            yield day
        day += timedelta(days=1)
