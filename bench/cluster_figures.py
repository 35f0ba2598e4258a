"""Pure helpers of the cluster benchmark: counters from the API server's /metrics text, rates,
quantiles, operator flags, the Markdown section and its place in bench/RESULTS.md.

No I/O here, so tests/unit can check every piece without a cluster.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

REQUEST_METRIC = "apiserver_request_total"
SECTION_BEGIN = "<!-- bench-cluster: begin (written by python -m bench.cluster --write) -->"
SECTION_END = "<!-- bench-cluster: end -->"
STATUS_WRITE_VERBS = frozenset({"PATCH", "PUT", "UPDATE", "APPLY"})
WRITE_VERBS = STATUS_WRITE_VERBS | {"POST", "CREATE"}  # an object created counts as a write too

_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')
_ESCAPES = {"\\\\": "\\", '\\"': '"', "\\n": "\n"}


Labels = frozenset[tuple[str, str]]


def parse_counter(text: str, name: str = REQUEST_METRIC) -> dict[Labels, float]:
    """Every sample of the counter ``name`` in Prometheus text exposition, keyed by its labels.

    Comments, other metrics and metrics whose name only starts with ``name`` are ignored;
    a sample that cannot be read raises ValueError naming the line.
    """
    samples: dict[Labels, float] = {}
    for number, line in enumerate(text.splitlines(), 1):
        if not line.startswith(name) or line.startswith("#"):
            continue
        rest = line[len(name):]
        if rest[:1] not in ("{", " "):
            continue  # another metric with a longer name
        labels: Labels = frozenset()
        if rest.startswith("{"):
            close = _closing_brace(rest)
            if close < 0:
                raise ValueError(f"line {number}: {name} sample without a closing brace: {line[:200]}")
            labels = frozenset(
                (key, _unescape(value)) for key, value in _LABEL.findall(rest[1:close]))
            rest = rest[close + 1:]
        fields = rest.split()
        if not fields:
            raise ValueError(f"line {number}: {name} sample without a value: {line[:200]}")
        try:
            value = float(fields[0])
        except ValueError:
            raise ValueError(f"line {number}: {name} value {fields[0]!r} is not a number") from None
        samples[labels] = samples.get(labels, 0.0) + value
    return samples


def _closing_brace(rest: str) -> int:
    quoted = escaped = False
    for index, char in enumerate(rest):
        if escaped:
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == '"':
            quoted = not quoted
        elif char == "}" and not quoted:
            return index
    return -1


def _unescape(value: str) -> str:
    return re.sub(r'\\[\\"n]', lambda match: _ESCAPES[match.group(0)], value)


def counter_delta(before: Mapping[Labels, float], after: Mapping[Labels, float]) -> dict[Labels, float]:
    """After - before per series; a series that went down (a restarted server) counts from zero."""
    delta: dict[Labels, float] = {}
    for labels, value in after.items():
        old = before.get(labels, 0.0)
        delta[labels] = value - old if value >= old else value
    return delta


def total_by(samples: Mapping[Labels, float], label: str,
             where: Mapping[str, str | Iterable[str]] | None = None) -> dict[str, float]:
    """Sum of the samples per value of ``label`` over the series that match ``where``."""
    totals: dict[str, float] = {}
    for labels, value in samples.items():
        if not _matches(dict(labels), where or {}):
            continue
        key = dict(labels).get(label, "")
        totals[key] = totals.get(key, 0.0) + value
    return totals


def _matches(labels: Mapping[str, str], where: Mapping[str, str | Iterable[str]]) -> bool:
    for key, wanted in where.items():
        value = labels.get(key, "")
        if isinstance(wanted, str):
            if value != wanted:
                return False
        elif value not in set(wanted):
            return False
    return True


def status_writes(samples: Mapping[Labels, float], resource: str = "servicelevelagreements") -> float:
    """Writes to ``resource``'s status subresource (PATCH, PUT, server-side apply)."""
    by_verb = total_by(samples, "verb", {"resource": resource, "subresource": "status"})
    return sum(value for verb, value in by_verb.items() if verb in STATUS_WRITE_VERBS)


def resource_writes(samples: Mapping[Labels, float], resource: str) -> float:
    """Creations and writes of ``resource`` (POST, PATCH, PUT, server-side apply), any
    subresource, any namespace: e.g. ``locationreports`` or ``leases``."""
    by_verb = total_by(samples, "verb", {"resource": resource})
    return sum(value for verb, value in by_verb.items() if verb in WRITE_VERBS)


def location_names(count: int) -> list[str]:
    """The benchmark's locations: ``a`` (the deciding ``run``), then ``b``, ``c``, … (``probe``)."""
    if not 1 <= count <= 26:
        raise ValueError(f"{count} locations: the benchmark names 1 to 26 (a to z)")
    return [chr(ord("a") + index) for index in range(count)]


def majority(count: int) -> int:
    """The quorum the benchmark asks for: a majority of the locations (2 of 3)."""
    return count // 2 + 1


def quantile(values: Iterable[float], fraction: float) -> float:
    """The nearest-rank quantile (``fraction`` in 0..1) of unsorted values; NaN when empty."""
    if not 0.0 <= fraction <= 1.0:
        raise ValueError(f"quantile fraction {fraction} is outside 0..1")
    ordered = sorted(values)
    if not ordered:
        return math.nan
    rank = max(1, math.ceil(fraction * len(ordered)))
    return ordered[rank - 1]


def peak_per_second(times: Iterable[float]) -> int:
    """The most events in any one-second span (events at ``times`` seconds, in any order)."""
    ordered = sorted(times)
    best = start = 0
    for end, moment in enumerate(ordered):
        while moment - ordered[start] >= 1.0:
            start += 1
        best = max(best, end - start + 1)
    return best


def operator_flag(arguments: Sequence[str], flag: str) -> str | None:
    """The value the last ``--flag VALUE`` or ``--flag=VALUE`` in ``arguments`` gives, else None."""
    found: str | None = None
    for index, argument in enumerate(arguments):
        if argument == flag and index + 1 < len(arguments):
            found = arguments[index + 1]
        elif argument.startswith(flag + "="):
            found = argument[len(flag) + 1:]
    return found


def parse_time(text: str) -> datetime:
    """An RFC 3339 time as the operator writes it (``2026-11-27T07:00:34Z``)."""
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def fresh_since(last_evaluated: Mapping[str, str | None], since: datetime) -> int:
    """How many agreements have a ``status.lastEvaluated`` at or after ``since``."""
    return sum(1 for value in last_evaluated.values() if value and parse_time(value) >= since)


@dataclass
class Goal:
    name: str
    figure: str
    met: bool | None  # None: not measured

    def row(self) -> str:
        verdict = "not measured" if self.met is None else ("met" if self.met else "**missed**")
        return f"| {self.name} | {self.figure} | {verdict} |"


def seconds(value: float | None, digits: int = 2) -> str:
    if value is None or math.isnan(value):
        return "n/a"
    return f"{value:.{digits}f} s"


def replace_section(document: str, section: str) -> str:
    """``document`` with the cluster benchmark's section replaced by ``section`` (appended if absent).

    Only the text between the section's own markers changes, so other sections written by
    other benchmarks stay as they are.
    """
    block = f"{SECTION_BEGIN}\n{section.rstrip()}\n{SECTION_END}\n"
    start = document.find(SECTION_BEGIN)
    end = document.find(SECTION_END, start if start >= 0 else 0)
    if start >= 0 and end >= 0:
        rest = document[end + len(SECTION_END):].lstrip("\n")
        return document[:start] + block + ("\n" + rest if rest.strip() else "")
    if start >= 0 or end >= 0:
        raise ValueError("bench/RESULTS.md has only one of the cluster benchmark's markers; "
                         f"fix it by hand ({SECTION_BEGIN!r} ... {SECTION_END!r})")
    return (document.rstrip("\n") + "\n\n" if document.strip() else "") + block
