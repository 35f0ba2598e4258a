"""What the engine publishes after each evaluation round: one frozen, typed snapshot.

Every output reads a snapshot and never the engine's mutable runtime: ``/metrics``, the
status page and its JSON API, and rule generation. A snapshot holds figures as numbers;
turning them into text (percent strings, "no data") is each output's business.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from sla_operator.domain.accounting import DayFigures, PeriodFigures
from sla_operator.domain.intervals import Interval
from sla_operator.domain.model import Environment, Incident, Severity, State


@dataclass(frozen=True)
class Histogram:
    """Cumulative bucket counts as Prometheus wants them: ascending bounds, +Inf last."""

    # Empty, it is still a histogram (+Inf only): a scrape before the first round is valid.
    buckets: tuple[tuple[float, int], ...] = ((float("inf"), 0),)
    sum: float = 0.0


@dataclass(frozen=True)
class ProbeView:
    """One endpoint: its health and the counters behind the probe metrics."""

    name: str
    dependency: bool
    state: State
    last_ok: bool | None  # None: no probe has finished yet
    successes: int = 0
    failures: int = 0
    latency: Histogram = Histogram()
    certificate_not_after: datetime | None = None


@dataclass(frozen=True)
class ClosedPeriodView:
    """A period frozen into the agreement's history."""

    label: str
    availability: float | None  # ratio 0..1; None when it had no eligible time


@dataclass(frozen=True)
class AgreementView:
    """One agreement as of its last evaluation."""

    namespace: str
    name: str
    service: str
    environment: Environment
    objective: Decimal  # percent
    public: bool
    group: str | None
    state: State
    maintenance_active: bool = False
    period: PeriodFigures | None = None  # None until the first evaluation
    days: tuple[DayFigures, ...] = ()  # the last 90 local days, oldest first
    last_closed: ClosedPeriodView | None = None
    downtime_total_seconds: float = 0.0  # counters since this process started
    eligible_total_seconds: float = 0.0
    open_incidents: Mapping[Severity, int] = field(default_factory=dict)
    responses_breached: Mapping[Severity, int] = field(default_factory=dict)
    probes: tuple[ProbeView, ...] = ()
    evaluated_at: datetime | None = None

    @property
    def key(self) -> tuple[str, str]:
        return (self.namespace, self.name)

    @property
    def objective_ratio(self) -> float:
        return float(self.objective / 100)


@dataclass(frozen=True)
class WindowView:
    """A maintenance window with the agreements it applies to and its occurrences around now."""

    namespace: str
    name: str
    description: str
    agreements: tuple[str, ...]  # names, in the window's namespace
    active: Interval | None  # the occurrence under way
    upcoming: Interval | None  # the next one to start
    announce: timedelta  # shown this long before it starts


@dataclass(frozen=True)
class Snapshot:
    """Everything the outputs may show, as of ``taken_at``.

    ``incidents`` holds the open ones and those resolved within the last 90 days: older ones
    change no running figure and appear nowhere."""

    taken_at: datetime
    agreements: tuple[AgreementView, ...] = ()
    incidents: tuple[Incident, ...] = ()
    windows: tuple[WindowView, ...] = ()
    probe_lag: Histogram = Histogram()

    def agreement(self, namespace: str, name: str) -> AgreementView | None:
        return next((a for a in self.agreements if a.key == (namespace, name)), None)


EMPTY_SNAPSHOT = Snapshot(taken_at=datetime.min.replace(tzinfo=UTC))
