"""Burn-rate alert tiers: the Google SRE workbook's four, which ``spec.alerting.tiers`` may
disable or change (factor, windows, severity), or add to (docs/API.md, "Alert rules").

Each tier has a name, carried by its alert as the ``tier`` label, so that Alertmanager can
route or inhibit one tier by name whatever its severity and windows are.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from decimal import Decimal, InvalidOperation
from typing import Any, Final

from sla_operator.domain.errors import Problem, SpecError

SEVERITIES: Final = ("page", "ticket")
"""The routing severities of the alert contract: a tier may only move between them."""

# A Prometheus duration as a range selector accepts it: whole numbers, units largest first
# (kept identical to the pattern in the CRD, which adds minLength 2: never empty).
WINDOW_PATTERN: Final = r"^([0-9]+y)?([0-9]+w)?([0-9]+d)?([0-9]+h)?([0-9]+m)?([0-9]+s)?([0-9]+ms)?$"
NAME_PATTERN: Final = r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$"
MIN_FACTOR: Final = Decimal("0.01")
MAX_FACTOR: Final = Decimal(1000)
MAX_WINDOW_SECONDS: Final = 366 * 86400
"""Windows longer than a year would ask Prometheus for more than any retention keeps."""

_WINDOW = re.compile(WINDOW_PATTERN)
_NAME = re.compile(NAME_PATTERN)
_UNIT_SECONDS: Final = {"y": 365 * 86400.0, "w": 604800.0, "d": 86400.0, "h": 3600.0,
                        "m": 60.0, "s": 1.0, "ms": 0.001}
_PART = re.compile(r"([0-9]+)(ms|y|w|d|h|m|s)")
_FIELDS: Final = ("name", "enabled", "factor", "longWindow", "shortWindow", "severity")


@dataclass(frozen=True)
class BurnTier:
    """One multiwindow burn-rate alert: both windows must burn faster than ``factor``."""

    name: str
    severity: str
    factor: Decimal
    long_window: str
    short_window: str


DEFAULT_TIERS: Final[tuple[BurnTier, ...]] = (
    BurnTier("fast", "page", Decimal("14.4"), "1h", "5m"),
    BurnTier("medium", "page", Decimal("6"), "6h", "30m"),
    BurnTier("slow", "ticket", Decimal("3"), "1d", "2h"),
    BurnTier("long-term", "ticket", Decimal("1"), "3d", "6h"),
)
"""The SRE workbook's tiers (a 30-day budget: 2% in 1h, 5% in 6h, 10% in 1d, 10% in 3d)."""


def window_seconds(window: str) -> float:
    """Seconds of a window that matches WINDOW_PATTERN."""
    return sum(int(number) * _UNIT_SECONDS[unit] for number, unit in _PART.findall(window))


def parse_tiers(raw: object, path: str = "spec.alerting.tiers") -> tuple[BurnTier, ...]:
    """``spec.alerting.tiers`` merged over DEFAULT_TIERS, or SpecError with every problem.

    An entry names a default tier to change or disable it (only the fields it gives change),
    or a new tier, which must give factor, longWindow, shortWindow and severity. The result
    holds the enabled tiers: the defaults in their order, then new tiers in the list's."""
    if raw is None:
        return DEFAULT_TIERS
    if not isinstance(raw, list):
        raise SpecError.at(path, "must be a list of tiers such as "
                                 "{name: fast, factor: 10} or {name: long-term, enabled: false}")
    problems: list[Problem] = []
    tiers: dict[str, BurnTier | None] = {tier.name: tier for tier in DEFAULT_TIERS}
    seen: dict[str, int] = {}
    for index, item in enumerate(raw):
        where = f"{path}[{index}]"
        if not isinstance(item, Mapping):
            problems.append(Problem(where, "must be an object with a name"))
            continue
        name = item.get("name")
        if not isinstance(name, str) or not _NAME.match(name):
            problems.append(Problem(f"{where}.name", f"{name!r} is not a tier name (a DNS "
                                    "label such as fast, medium, slow or long-term)"))
            continue
        if name in seen:
            problems.append(Problem(f"{where}.name", f"tier {name!r} is already given at "
                                    f"{path}[{seen[name]}]"))
            continue
        seen[name] = index
        tier = _entry(item, where, DEFAULT_TIERS_BY_NAME.get(name), problems)
        tiers[name] = tier
    if problems:
        raise SpecError(problems)
    return tuple(tier for tier in tiers.values() if tier is not None)


DEFAULT_TIERS_BY_NAME: Final = {tier.name: tier for tier in DEFAULT_TIERS}


def _entry(item: Mapping[str, Any], where: str, default: BurnTier | None,
           problems: list[Problem]) -> BurnTier | None:
    """The tier an entry makes (None: disabled, or not made for the problems it adds)."""
    before = len(problems)
    for key in item:
        if key not in _FIELDS:
            problems.append(Problem(f"{where}.{key}", f"unknown field; a tier has "
                                    f"{', '.join(_FIELDS)}"))
    enabled = item.get("enabled", True)
    if not isinstance(enabled, bool):
        problems.append(Problem(f"{where}.enabled", f"{enabled!r} is not true or false"))
    if default is None:
        missing = [key for key in ("factor", "longWindow", "shortWindow", "severity")
                   if item.get(key) is None]
        if missing and enabled is not False:
            problems.append(Problem(where, f"tier {item['name']!r} is not one of the defaults "
                                    f"({', '.join(DEFAULT_TIERS_BY_NAME)}), so it must give "
                                    f"{', '.join(missing)}"))
            return None
    changes: dict[str, Any] = {}
    if item.get("factor") is not None:
        changes["factor"] = _factor(item["factor"], f"{where}.factor", problems)
    if item.get("severity") is not None:
        severity = item["severity"]
        if severity not in SEVERITIES:
            problems.append(Problem(f"{where}.severity",
                                    f"{severity!r} is not one of {', '.join(SEVERITIES)}"))
        changes["severity"] = severity
    for key, field in (("longWindow", "long_window"), ("shortWindow", "short_window")):
        if item.get(key) is not None:
            changes[field] = _window(item[key], f"{where}.{key}", problems)
    if len(problems) > before or enabled is False:
        return None
    base = default or BurnTier(str(item["name"]), "ticket", Decimal(1), "1h", "5m")
    tier = replace(base, **changes)
    if window_seconds(tier.short_window) >= window_seconds(tier.long_window):
        field = "shortWindow" if "short_window" in changes else "longWindow"
        problems.append(Problem(f"{where}.{field}", f"the short window ({tier.short_window}) "
                                f"must be shorter than the long window ({tier.long_window})"))
        return None
    return tier


def _factor(raw: object, path: str, problems: list[Problem]) -> Decimal:
    try:
        value = Decimal(str(raw)) if not isinstance(raw, bool) else Decimal("NaN")
    except InvalidOperation:
        value = Decimal("NaN")
    if not value.is_finite() or not MIN_FACTOR <= value <= MAX_FACTOR:
        problems.append(Problem(path, f"{raw!r} is not a burn-rate factor: a number from "
                                      f"{MIN_FACTOR} to {MAX_FACTOR} (14.4 spends 2% of a "
                                      "30-day budget in an hour)"))
        return Decimal(1)
    return value


def _window(raw: object, path: str, problems: list[Problem]) -> str:
    if not isinstance(raw, str) or not raw or not _WINDOW.match(raw):
        problems.append(Problem(path, f"{raw!r} is not a Prometheus duration such as 5m, "
                                      "1h, 1d or 1h30m (whole numbers, largest unit first)"))
        return "1h"
    seconds = window_seconds(raw)
    if seconds < 60 or seconds > MAX_WINDOW_SECONDS:
        problems.append(Problem(path, f"{raw!r} must be at least 1m and at most 366d"))
        return "1h"
    return raw
