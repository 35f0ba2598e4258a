"""Snapshots made by hand for status page tests: agreements, days, incidents and windows."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from sla_operator.domain.accounting import DayFigures, PeriodFigures
from sla_operator.domain.intervals import Interval
from sla_operator.domain.model import (
    Environment,
    Impact,
    Incident,
    IncidentState,
    IncidentType,
    IncidentUpdate,
    Severity,
    State,
)
from sla_operator.domain.views import AgreementView, Snapshot, WindowView

NOW = datetime(2026, 11, 27, 3, 30, tzinfo=UTC)


def days(today: date | None = None, count: int = 90, **overrides: Any) -> tuple[DayFigures, ...]:
    """``count`` whole available days ending with ``today`` (NOW's); ``overrides`` maps
    "YYYY-MM-DD" to a dict of DayFigures fields for that day."""
    today = today or NOW.date()
    result = []
    for back in range(count - 1, -1, -1):
        day = today - timedelta(days=back)
        figures = DayFigures(day, 1.0, 0.0, 0.0, 0.0, 0.0)
        result.append(replace(figures, **overrides.get(day.isoformat(), {})))
    return tuple(result)


def period(availability: float = 0.9997, objective: str = "99.9", eligible: float = 2_000_000.0,
           downtime: float = 600.0) -> PeriodFigures:
    start = datetime(2026, 11, 1, tzinfo=UTC)
    return PeriodFigures(
        period=Interval(start, datetime(2026, 12, 1, tzinfo=UTC)), label="2026-11",
        elapsed_seconds=eligible, maintenance_seconds=0.0, excluded_seconds=0.0,
        unmonitored_seconds=0.0, downtime_seconds=downtime, eligible_seconds=eligible,
        availability=availability, objective=Decimal(objective), budget_total_seconds=2592.0,
        budget_remaining_seconds=2592.0 - downtime, budget_remaining_ratio=(2592.0 - downtime) / 2592,
        incidents=1, met=availability * 100 >= float(objective), excluded_incidents=())


def agreement(name: str = "payments-api", namespace: str = "payments", public: bool = True,
              state: State = State.UP, **fields: Any) -> AgreementView:
    values: dict[str, Any] = dict(
        namespace=namespace, name=name, service=name.replace("-", " ").title(),
        environment=Environment.PRODUCTION, objective=Decimal("99.9"), public=public, group=None,
        state=state, period=period(), days=days(), evaluated_at=NOW)
    values.update(fields)
    return AgreementView(**values)


def incident(name: str, agreement: str = "payments-api", namespace: str = "payments",
             started: datetime = NOW - timedelta(hours=2), resolved: datetime | None = None,
             **fields: Any) -> Incident:
    values: dict[str, Any] = dict(
        namespace=namespace, name=name, agreement=agreement, type=IncidentType.OUTAGE,
        severity=Severity.P1, title=f"{agreement} is down", started_at=started,
        resolved_at=resolved,
        state=IncidentState.RESOLVED if resolved else IncidentState.INVESTIGATING,
        impact=Impact.DOWNTIME,
        updates=(IncidentUpdate(started, IncidentState.INVESTIGATING, "looking into it"),))
    values.update(fields)
    return Incident(**values)


def window(name: str = "db-upgrade", namespace: str = "payments",
           agreements: tuple[str, ...] = ("payments-api",), starts_in: timedelta = timedelta(days=2),
           length: timedelta = timedelta(hours=2), announce: timedelta = timedelta(hours=168),
           active: bool = False) -> WindowView:
    start = NOW - timedelta(minutes=10) if active else NOW + starts_in
    occurrence = Interval(start, start + length)
    return WindowView(namespace=namespace, name=name, description="Database upgrade",
                      agreements=agreements, active=occurrence if active else None,
                      upcoming=None if active else occurrence, announce=announce)


def snapshot(*agreements: AgreementView, incidents: tuple[Incident, ...] = (),
             windows: tuple[WindowView, ...] = (), taken_at: datetime = NOW) -> Snapshot:
    return Snapshot(taken_at=taken_at, agreements=agreements, incidents=incidents, windows=windows)
