"""Durations as written in manifests: Go-style ``1h30m``, ``800ms``, plus ``d`` and ``w``."""

from __future__ import annotations

import re
from datetime import timedelta

from sla_operator.domain.errors import SpecError

# Kept identical to the pattern in the CRDs so the API server and the operator agree.
DURATION_PATTERN = r"^([0-9]+(\.[0-9]+)?(ms|s|m|h|d|w))+$"

_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}
_PART = re.compile(r"([0-9]+(?:\.[0-9]+)?)(ms|s|m|h|d|w)")
_WHOLE = re.compile(DURATION_PATTERN)


def parse_duration(text: object, path: str) -> timedelta:
    """Parse ``text`` as a duration, or raise a SpecError naming ``path``."""
    if not isinstance(text, str) or not _WHOLE.match(text):
        raise SpecError.at(
            path,
            f"{text!r} is not a duration; use a number with a unit: ms, s, m, h, d, w "
            "(e.g. 30s, 1h30m, 800ms)",
        )
    seconds = sum(float(n) * _UNIT_SECONDS[u] for n, u in _PART.findall(text))
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
