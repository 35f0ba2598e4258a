"""Phase 4 of `make bench`: the cost of one agreement's evaluation as its records pile up.

An agreement keeps every Incident it ever had; each evaluation round (once a second per agreement
with changes, and at every status interval) recomputes the current period, the 90 daily bars and
the burn-rate counters. Here a flaky agreement has had an outage every ``spacing`` for a year.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from sla_operator.domain.model import (
    Agreement,
    Endpoint,
    HttpProbe,
    Incident,
    IncidentState,
    IncidentType,
    MaintenanceWindow,
    Severity,
)
from sla_operator.domain.schedule import maintenance_intervals
from sla_operator.engine.evaluate import evaluate_agreement
from sla_operator.engine.runtime import AgreementRuntime
from sla_operator.engine.windows import Windows

NOW = datetime(2026, 11, 26, 12, tzinfo=UTC)
YEAR = timedelta(days=365)


def flaky_year(count: int) -> tuple[Agreement, list[Incident]]:
    agreement = Agreement(namespace="bench", name="flaky", service="Flaky", objective=Decimal("99.9"),
                          endpoints=(Endpoint("api", HttpProbe("http://127.0.0.1:9/")),),
                          created_at=NOW - YEAR - timedelta(days=30))
    spacing = YEAR / count
    incidents = [Incident(namespace="bench", name=f"flaky-{n}", agreement="flaky",
                          type=IncidentType.OUTAGE, severity=Severity.P1, title="down",
                          started_at=(start := NOW - YEAR + n * spacing),
                          resolved_at=start + timedelta(minutes=2), state=IncidentState.RESOLVED,
                          endpoints=("api",))
                 for n in range(count)]
    return agreement, incidents


def milliseconds_per_evaluation(count: int, rounds: int = 5) -> float:
    agreement, incidents = flaky_year(count)
    runtime = AgreementRuntime(agreement, started=NOW - timedelta(hours=1))
    evaluate_agreement(runtime, incidents, [], NOW)  # history and daily bars computed once
    started = time.process_time()
    for second in range(1, rounds + 1):
        evaluate_agreement(runtime, incidents, [], NOW + timedelta(seconds=second))
    return (time.process_time() - started) / rounds * 1000


QUARTER_HOURLY = MaintenanceWindow(namespace="bench", name="often", schedule="*/15 * * * *",
                                   duration=timedelta(minutes=5))


def milliseconds_with_a_window(memo: bool, rounds: int = 5) -> float:
    """One evaluation of an agreement a `*/15` window selects: expanded at each evaluation
    (as before), or from the engine's memo of the window's occurrences."""
    agreement, incidents = flaky_year(100)
    runtime = AgreementRuntime(agreement, started=NOW - timedelta(hours=1))
    windows = Windows()
    windows.put(QUARTER_HOURLY)
    occurrences = windows.intervals if memo else maintenance_intervals
    evaluate_agreement(runtime, incidents, [QUARTER_HOURLY], NOW, occurrences)
    started = time.process_time()
    for second in range(1, rounds + 1):
        evaluate_agreement(runtime, incidents, [QUARTER_HOURLY], NOW + timedelta(seconds=second),
                           occurrences)
    return (time.process_time() - started) / rounds * 1000


def report(counts: tuple[int, ...] = (100, 1_000, 15_000)) -> str:
    lines = ["### One agreement's evaluation as incidents pile up (a year of records)", "",
             "| incidents on record | CPU ms per evaluation |", "|---|---|"]
    lines += [f"| {count:,} | {milliseconds_per_evaluation(count):.1f} |" for count in counts]
    lines += ["", "With a `*/15` recurring maintenance window (100 incidents on record):", "",
              "| occurrences | CPU ms per evaluation |", "|---|---|",
              f"| expanded at every evaluation | {milliseconds_with_a_window(False):.1f} |",
              f"| from the engine's memo | {milliseconds_with_a_window(True):.1f} |"]
    return "\n".join(lines) + "\n"
