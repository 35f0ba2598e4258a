"""The SLA report: one statement line per agreement and period, as a table, JSON or CSV."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from itertools import chain

from sla_operator.domain.accounting import AccountingInput, compute_period
from sla_operator.domain.credits import credit_for_text
from sla_operator.domain.errors import SpecError
from sla_operator.domain.intervals import Interval, union
from sla_operator.domain.model import Agreement, Incident, MaintenanceWindow, WindowType
from sla_operator.domain.periods import period_at, period_for_label, period_label, rolling_label
from sla_operator.domain.render import percent
from sla_operator.domain.schedule import maintenance_intervals


@dataclass(frozen=True)
class StatementLine:
    namespace: str
    agreement: str
    service: str
    environment: str
    period: str
    start: str
    end: str
    availability: str | None  # None: no eligible time in the period ("no data")
    objective: str
    met: bool
    credit_percent: int  # service credit earned, percent of the period's fees (spec.credits)
    downtime_seconds: int
    maintenance_seconds: int
    excluded_seconds: int
    unmonitored_seconds: int
    budget_total_seconds: int
    budget_remaining_seconds: int
    incidents: int
    excluded_incidents: str


def statement_line(agreement: Agreement, windows: Sequence[MaintenanceWindow],
                   incidents: Sequence[Incident], unmonitored: Sequence[Interval],
                   label: str | None, now: datetime) -> StatementLine:
    """Figures of one period, recomputed from the records (exclusions added later count)."""
    period = statement_period(agreement, label, now)
    bounds = Interval(period.start - timedelta(days=1), period.end)
    maintenance = union(chain.from_iterable(
        maintenance_intervals(w, bounds) for w in windows if w.applies_to(agreement)))
    mine = [i for i in incidents if i.namespace == agreement.namespace
            and i.agreement == agreement.name]
    inputs = AccountingInput(agreement.objective, agreement.created_at, maintenance, mine,
                             tuple(unmonitored))
    name = period_label(agreement.window, period)
    figures = compute_period(inputs, period, now, name)
    availability = percent(figures.availability) if figures.eligible_seconds > 0 else None
    return StatementLine(
        namespace=agreement.namespace, agreement=agreement.name, service=agreement.service,
        environment=agreement.environment.value, period=name,
        start=period.start.isoformat(), end=period.end.isoformat(),
        availability=availability,
        objective=str(agreement.objective),
        met=figures.met,
        credit_percent=credit_for_text(agreement.credits, availability),
        downtime_seconds=round(figures.downtime_seconds),
        maintenance_seconds=round(figures.maintenance_seconds),
        excluded_seconds=round(figures.excluded_seconds),
        unmonitored_seconds=round(figures.unmonitored_seconds),
        budget_total_seconds=round(figures.budget_total_seconds),
        budget_remaining_seconds=round(figures.budget_remaining_seconds),
        incidents=figures.incidents,
        excluded_incidents=" ".join(figures.excluded_incidents),
    )


def statement_period(agreement: Agreement, label: str | None, now: datetime) -> Interval:
    """The period ``label`` names for this agreement, or its current one without a label.

    A rolling window has no named periods. Its current window is not shown in their place:
    a statement asked for 2026-11 would then carry figures of other days under that request.
    """
    window = agreement.window
    if label is None:
        return period_at(window, now)
    if window.type is WindowType.ROLLING:
        raise SpecError.at("period", (
            f"{label!r} names a calendar period, but this agreement is measured over a "
            f"rolling window ({rolling_label(window.duration)}), which has only its current "
            "window: report it without a period"))
    return period_for_label(window, label)


_TABLE_COLUMNS = (("NAMESPACE", "namespace"), ("AGREEMENT", "agreement"), ("PERIOD", "period"),
                  ("AVAILABILITY", "availability"), ("OBJECTIVE", "objective"), ("MET", "met"),
                  ("CREDIT", "credit_percent"),
                  ("DOWNTIME", "downtime_seconds"), ("MAINTENANCE", "maintenance_seconds"),
                  ("EXCLUDED", "excluded_seconds"), ("UNMONITORED", "unmonitored_seconds"),
                  ("BUDGET LEFT", "budget_remaining_seconds"), ("INCIDENTS", "incidents"),
                  ("EXCLUDED INCIDENTS", "excluded_incidents"))


def format_statement(lines: Sequence[StatementLine], output: str) -> str:
    rows = [asdict(line) for line in lines]
    if output == "json":
        return json.dumps({"agreements": rows}, indent=2) + "\n"
    if output == "csv":
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=list(StatementLine.__dataclass_fields__))
        writer.writeheader()
        writer.writerows(rows)
        return buffer.getvalue()
    cells = [[title for title, _ in _TABLE_COLUMNS]]
    cells += [[_cell(row[key], key) for _, key in _TABLE_COLUMNS] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(_TABLE_COLUMNS))]
    return "".join("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() + "\n"
                   for r in cells)


def _cell(value: object, key: str) -> str:
    if key == "met":
        return "yes" if value else "NO"
    if key == "availability":
        return "no data" if value is None else f"{value}%"
    if key == "credit_percent":
        return f"{value}%"
    if key.endswith("_seconds"):
        return f"{value}s"
    return str(value) if value != "" else "-"
