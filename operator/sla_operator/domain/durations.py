"""Durations as written in manifests: Go-style ``1h30m``, ``800ms``, plus ``d`` and ``w``.

No duration may exceed ``MAX_DURATION`` (3650d, ten years). The CRD pattern accepts any
number of digits, and ``99999999999w`` would otherwise overflow ``timedelta``; ten years is
far beyond any sensible interval, window, response target or maintenance, and added to any
accepted time (see ``fields.parse_time``) it stays inside what ``datetime`` can hold.
"""

from __future__ import annotations

import re
from datetime import timedelta

from sla_operator.domain.errors import SpecError

# Kept identical to the pattern in the CRDs so the API server and the operator agree.
DURATION_PATTERN = r"^([0-9]+(\.[0-9]+)?(ms|s|m|h|d|w))+$"

_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}
_PART = re.compile(r"([0-9]+(?:\.[0-9]+)?)(ms|s|m|h|d|w)")
_WHOLE = re.compile(DURATION_PATTERN)
MAX_DURATION = timedelta(days=3650)


def parse_duration(text: object, path: str) -> timedelta:
    """Parse ``text`` as a duration, or raise a SpecError naming ``path``."""
    if not isinstance(text, str) or not _WHOLE.match(text):
        raise SpecError.at(
            path,
            f"{text!r} is not a duration; use a number with a unit: ms, s, m, h, d, w "
            "(e.g. 30s, 1h30m, 800ms)",
        )
    # Digits beyond a float's range read as infinity, which the bound rejects as well.
    seconds = sum(float(n) * _UNIT_SECONDS[u] for n, u in _PART.findall(text))
    if seconds > MAX_DURATION.total_seconds():
        raise SpecError.at(
            path, f"{text!r} is too long: durations may be at most 3650d (ten years)"
        )
    return timedelta(seconds=seconds)


def format_duration(value: timedelta) -> str:
    """Render a duration compactly (``2h``, ``1h30m``, ``800ms``), the inverse of parsing."""
    total_ms = round(value.total_seconds() * 1000)
    if total_ms == 0:
        return "0s"
    parts: list[str] = []
    for unit, size in (("h", 3_600_000), ("m", 60_000), ("s", 1000), ("ms", 1)):
        count, total_ms = divmod(total_ms, size)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts)
