"""Domain figures rendered into the status shapes of API.md (plain dicts, stable key order)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from sla_operator.domain.accounting import DayFigures, PeriodFigures
from sla_operator.domain.credits import credit_percent
from sla_operator.domain.health import EndpointHealth
from sla_operator.domain.intervals import Interval
from sla_operator.domain.model import Agreement, CreditTier, State
from sla_operator.domain.records import format_time


def percent(ratio: float) -> str:
    """A ratio as a percentage with 4 decimals, never rounding up to a false 100%."""
    # Scale in decimal: a float product such as 0.29 * 100 = 28.999999999999996 floors to 28.9999.
    value = (Decimal(repr(ratio)) * 100).quantize(Decimal("0.0001"), rounding="ROUND_FLOOR")
    return f"{value:.4f}"


def period_dict(figures: PeriodFigures) -> dict[str, Any]:
    ratio = Decimal(str(figures.budget_remaining_ratio)).quantize(Decimal("0.0001"))
    return {
        "start": format_time(figures.period.start),
        "end": format_time(figures.period.end),
        "label": figures.label,
        # No eligible time, no figure: "100%" would claim what nobody measured.
        "availability": percent(figures.availability) if figures.eligible_seconds > 0 else None,
        "objective": str(figures.objective),
        "elapsedSeconds": round(figures.elapsed_seconds),
        "eligibleSeconds": round(figures.eligible_seconds),
        "downtimeSeconds": round(figures.downtime_seconds),
        "maintenanceSeconds": round(figures.maintenance_seconds),
        "excludedSeconds": round(figures.excluded_seconds),
        "unmonitoredSeconds": round(figures.unmonitored_seconds),
        "incidents": figures.incidents,
        "errorBudget": {
            "totalSeconds": round(figures.budget_total_seconds),
            "remainingSeconds": round(figures.budget_remaining_seconds),
            "remainingRatio": f"{ratio:.4f}",
            "remainingPercent": f"{ratio * 100:.2f}",
        },
    }


def history_entry(figures: PeriodFigures, credits: Sequence[CreditTier] = ()) -> dict[str, Any]:
    shown = percent(figures.availability)
    measured = Decimal(shown) if figures.eligible_seconds > 0 else None
    entry = {
        "period": figures.label,
        "start": format_time(figures.period.start),
        "end": format_time(figures.period.end),
        "availability": shown,
        "objective": str(figures.objective),
        "met": figures.met,
        "creditPercent": credit_percent(credits, measured),
        "downtimeSeconds": round(figures.downtime_seconds),
        "maintenanceSeconds": round(figures.maintenance_seconds),
        "excludedSeconds": round(figures.excluded_seconds),
        "unmonitoredSeconds": round(figures.unmonitored_seconds),
        "incidents": figures.incidents,
    }
    return _without_zero(entry, _HISTORY_OPTIONAL)


# Every agreement's status is stored, and each status write makes the API server decode,
# validate, merge and encode all of it (bench/RESULTS.md, issue 21): figures API.md does not
# show are left out where they are 0, and readers take a missing one as 0.
_HISTORY_OPTIONAL = ("unmonitoredSeconds",)
_DAY_OPTIONAL = ("excludedSeconds", "unmonitoredSeconds")


def daily_runs(entries: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Daily bars (one entry per consecutive day, oldest first) as stored in the status:
    consecutive days with the same figures become one entry, its ``date`` the first of them
    and ``days`` how many (left out when 1). A day alone reads as before; 90 days of the same
    figures are one entry instead of 90, which is most of what an agreement stores otherwise
    and what the API server decodes, validates and encodes at every status write."""
    runs: list[dict[str, Any]] = []
    last_figures: dict[str, Any] | None = None
    for entry in entries:
        figures = {k: v for k, v in entry.items() if k != "date"}
        if last_figures is not None and figures == last_figures:
            runs[-1]["days"] = runs[-1].get("days", 1) + 1
            continue
        runs.append({"date": entry["date"], **figures})
        last_figures = figures
    for run in runs:  # ``days`` right after ``date``: how the entry reads in kubectl's output
        if "days" in run:
            days = run.pop("days")
            figures = {k: run.pop(k) for k in list(run) if k != "date"}
            run.update(days=days, **figures)
    return runs


def _without_zero(entry: dict[str, Any], names: Sequence[str]) -> dict[str, Any]:
    for name in names:
        if entry.get(name) == 0:
            del entry[name]
    return entry


def day_entry(day: DayFigures) -> dict[str, Any]:
    """One daily bar: date, availability, downtime and maintenance always (API.md), excluded
    and unmonitored seconds only when not 0."""
    return _without_zero({
        "date": day.date.isoformat(),
        "availability": None if day.availability is None else percent(day.availability),
        "downtimeSeconds": round(day.downtime_seconds),
        "maintenanceSeconds": round(day.maintenance_seconds),
        "excludedSeconds": round(day.excluded_seconds),
        "unmonitoredSeconds": round(day.unmonitored_seconds),
    }, _DAY_OPTIONAL)


def endpoint_entry(name: str, dependency: bool, health: EndpointHealth,
                   discovered: bool = False) -> dict[str, Any]:
    last = health.last
    entry = {
        "name": name,
        "state": health.state.value,
        "since": format_time(health.since),
        "lastProbeTime": format_time(last.time) if last else None,
        "latencyMs": round(last.latency_seconds * 1000) if last else None,
        "consecutiveFailures": health.consecutive_failures,
        "consecutiveSuccesses": health.consecutive_successes,
        "message": last.message if last else "no probe has run yet",
        "certificateNotAfter": format_time(last.certificate_not_after) if last else None,
    }
    if dependency:  # only then, like discovered: false is what a missing one means
        entry["dependency"] = True
    if discovered:  # only then: the entries of endpoints of the spec stay as they were
        entry["discovered"] = True
    return entry


@dataclass(frozen=True)
class Condition:
    type: str
    status: bool
    reason: str
    message: str


def invalid_spec_condition(message: str) -> Condition:
    return Condition("Ready", False, "InvalidSpec", message)


def conditions(previous: Sequence[Mapping[str, Any]], wanted: Sequence[Condition],
               generation: int, now: datetime) -> list[dict[str, Any]]:
    """metav1.Condition entries; lastTransitionTime only moves when the status flips."""
    before = {c.get("type"): c for c in previous}
    result = []
    for condition in wanted:
        status = "True" if condition.status else "False"
        old = before.get(condition.type)
        changed = old is None or old.get("status") != status
        result.append({
            "type": condition.type,
            "status": status,
            "reason": condition.reason,
            "message": condition.message,
            "lastTransitionTime": format_time(now) if changed else old["lastTransitionTime"],  # type: ignore[index]
            "observedGeneration": generation,
        })
    return result


def agreement_conditions(agreement: Agreement, state: State, figures: PeriodFigures,
                         rejection: str | None = None,
                         store_error: str | None = None) -> list[Condition]:
    available = state in (State.UP, State.DEGRADED, State.MAINTENANCE)
    exhausted = figures.budget_total_seconds > 0 and figures.budget_remaining_seconds <= 0
    if rejection:
        ready = Condition("Ready", False, "InvalidSpec",
                          f"{rejection} (still probing the last valid spec)")
    elif store_error:
        ready = Condition("Ready", False, "IncidentNotRecorded",
                          f"{store_error} (retried; the figures may miss it until then)")
    else:
        ready = Condition("Ready", True, "Reconciled",
                          f"probing {len(agreement.endpoints)} endpoint(s)")
    return [
        ready,
        Condition("Available", available, state.value,
                  f"{agreement.service} is {state.value.lower()}"),
        Condition("BudgetExhausted", exhausted,
                  "BudgetExhausted" if exhausted else "BudgetRemaining",
                  f"{round(figures.budget_remaining_seconds)}s of "
                  f"{round(figures.budget_total_seconds)}s error budget left in {figures.label}"),
    ]


def intervals_list(intervals: Sequence[Interval]) -> list[dict[str, Any]]:
    return [{"start": format_time(i.start), "end": format_time(i.end)} for i in intervals]
