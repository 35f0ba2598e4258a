"""Field-level parsing shared by every manifest kind: each failure names its field path."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sla_operator.domain import model as m
from sla_operator.domain.errors import Problem, SpecError

T = TypeVar("T")

# Accepted times: from the Unix epoch up to, not including, the year 9000. Far-future times
# such as 9999-12-31 parse, but adding any duration to them (a response target, a search
# horizon) overflows datetime; below the year 9000 every accepted duration still fits.
EARLIEST_TIME = datetime(1970, 1, 1, tzinfo=UTC)
END_OF_TIMES = datetime(9000, 1, 1, tzinfo=UTC)


class Collector:
    """Gathers problems so one parse reports all of them."""

    def __init__(self) -> None:
        self.problems: list[Problem] = []

    def run(self, fn: Callable[[], T], default: T) -> T:
        try:
            return fn()
        except SpecError as error:
            self.problems.extend(error.problems)
            return default

    def add(self, path: str, message: str) -> None:
        self.problems.append(Problem(path, message))

    def raise_if_any(self) -> None:
        if self.problems:
            raise SpecError(self.problems)


def parse_time(value: object, path: str) -> datetime:
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise SpecError.at(path, f"{value!r} is not an RFC 3339 time") from None
    else:
        raise SpecError.at(path, f"{value!r} is not an RFC 3339 time")
    shown = repr(value) if isinstance(value, str) else repr(moment.isoformat())
    if moment.tzinfo is None:
        raise SpecError.at(path, f"{shown} has no time zone offset (add Z or +00:00)")
    if not EARLIEST_TIME <= moment < END_OF_TIMES:
        raise SpecError.at(path, f"{shown} is out of range: use a time from 1970-01-01T00:00:00Z "
                                 "up to, not including, 9000-01-01T00:00:00Z")
    return moment


def optional_time(spec: Mapping[str, Any], key: str, path: str) -> datetime | None:
    value = spec.get(key)
    return None if value is None else parse_time(value, f"{path}.{key}")


def check_zone(name: object, path: str) -> str:
    if not isinstance(name, str) or not name:
        raise SpecError.at(path, "must be an IANA time zone name such as UTC or Europe/London")
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise SpecError.at(path, f"unknown time zone {name!r}; use an IANA name such as "
                                 "UTC, Europe/London or America/New_York") from None
    return name


def integer(value: object, path: str, minimum: int, maximum: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise SpecError.at(path, f"{value!r} is not an integer")
    if value < minimum or (maximum is not None and value > maximum):
        upper = f" and at most {maximum}" if maximum is not None else ""
        raise SpecError.at(path, f"{value} is out of range: must be at least {minimum}{upper}")
    return value


def nonempty_string(value: object, path: str) -> str:
    if not isinstance(value, str) or not value:
        raise SpecError.at(path, "must be a non-empty string")
    return value


def selector(raw: object, path: str) -> m.LabelSelector:
    if not isinstance(raw, Mapping):
        raise SpecError.at(path, "must be a label selector (matchLabels / matchExpressions)")
    expressions = []
    for i, expr in enumerate(raw.get("matchExpressions") or []):
        operator = expr.get("operator")
        if operator not in ("In", "NotIn", "Exists", "DoesNotExist"):
            raise SpecError.at(f"{path}.matchExpressions[{i}].operator",
                               f"{operator!r}: allowed are In, NotIn, Exists, DoesNotExist")
        expressions.append(
            m.Requirement(str(expr.get("key", "")), operator, tuple(expr.get("values") or ()))
        )
    labels = {str(k): str(v) for k, v in (raw.get("matchLabels") or {}).items()}
    return m.LabelSelector(labels, tuple(expressions))


def enum_value(kind: type[Any], value: object, path: str) -> Any:
    try:
        return kind(value)
    except ValueError:
        allowed = ", ".join(str(v.value) for v in kind)
        raise SpecError.at(path, f"{value!r} is not allowed; use one of: {allowed}") from None
