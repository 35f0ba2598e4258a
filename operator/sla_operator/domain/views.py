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


class Histogram:
    """Cumulative bucket counts as Prometheus wants them: ascending bounds, +Inf last.

    Held as two flat tuples, the bounds (shared by every histogram of one kind) and the
    counts: one is made per probe result, and a tuple of (bound, count) pairs was fourteen
    objects for the garbage collector to walk where this is two. Immutable."""

    __slots__ = ("bounds", "counts", "sum")
    bounds: tuple[float, ...]
    counts: tuple[int, ...]
    sum: float

    # Empty, it is still a histogram (+Inf only): a scrape before the first round is valid.
    def __init__(self, buckets: tuple[tuple[float, int], ...] = ((float("inf"), 0),),
                 sum: float = 0.0) -> None:
        object.__setattr__(self, "bounds", tuple(bound for bound, _ in buckets))
        object.__setattr__(self, "counts", tuple(count for _, count in buckets))
        object.__setattr__(self, "sum", sum)

    @classmethod
    def of(cls, bounds: tuple[float, ...], counts: tuple[int, ...], sum: float) -> Histogram:
        """From bounds and cumulative counts of the same length (not checked: the hot path)."""
        histogram = object.__new__(cls)
        object.__setattr__(histogram, "bounds", bounds)
        object.__setattr__(histogram, "counts", counts)
        object.__setattr__(histogram, "sum", sum)
        return histogram

    @property
    def buckets(self) -> tuple[tuple[float, int], ...]:
        """(bound, cumulative count) pairs."""
        return tuple(zip(self.bounds, self.counts, strict=True))

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"Histogram is immutable: cannot set {name!r}")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"Histogram is immutable: cannot delete {name!r}")

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Histogram):
            return NotImplemented
        return (self.bounds, self.counts, self.sum) == (other.bounds, other.counts, other.sum)

    def __hash__(self) -> int:
        return hash((self.bounds, self.counts, self.sum))

    def __repr__(self) -> str:
        return f"Histogram(buckets={self.buckets!r}, sum={self.sum!r})"


NO_OBSERVATIONS = Histogram()
"""The empty histogram (+Inf only), shared."""


@dataclass(frozen=True, slots=True)
class ProbeView:
    """One endpoint: its health and the counters behind the probe metrics.

    One is made per probe result and lives until the endpoint's next one: slots, so that
    it is one object for the garbage collector to walk, not two (with its ``__dict__``)."""

    name: str
    dependency: bool
    state: State
    last_ok: bool | None  # None: no probe has finished yet
    successes: int = 0
    failures: int = 0
    latency: Histogram = NO_OBSERVATIONS
    certificate_not_after: datetime | None = None
    failures_by_reason: tuple[int, ...] = ()
    """Failures per reason in the order of FAILURE_REASONS (empty: none yet)."""
    location: str = "default"  # where this process's probes (``last_ok``) ran
    reported: tuple[tuple[str, bool], ...] = ()
    """Other locations (run --location), each with whether its last reported result
    succeeded, by name."""


@dataclass(frozen=True)
class Dissent:
    """What fewer locations than the quorum see (run --location): ``seeing`` of the
    ``reporting`` fresh locations see an endpoint ``state``; not the agreement's state."""

    state: State
    seeing: int
    reporting: int


@dataclass(frozen=True)
class ClosedPeriodView:
    """A period frozen into the agreement's history."""

    label: str
    availability: float | None  # ratio 0..1; None when it had no eligible time
    credit_percent: int | None = None  # service credit earned; None when the entry has none


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
    support_requests: Mapping[Severity, int] = field(default_factory=dict)  # seen since start
    support_breached: Mapping[Severity, int] = field(default_factory=dict)  # late since start
    probes: tuple[ProbeView, ...] = ()
    dissent: Dissent | None = None
    evaluated_at: datetime | None = None
    labels: Mapping[str, str] = field(default_factory=dict)  # the agreement's metadata.labels
    support_response: Mapping[Severity, timedelta] = field(default_factory=dict)  # its targets

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
class SupportRequestView:
    """A support request and where its first response stands: what notifications compare.

    ``response_due`` is None while the request's agreement is not there (no target to
    measure against); ``breached`` is then False."""

    namespace: str
    name: str
    agreement: str
    severity: Severity
    title: str
    opened_at: datetime
    response_due: datetime | None
    breached: bool
    customer: str = ""
    reference: str = ""
    responded_at: datetime | None = None
    uid: str | None = None

    @property
    def key(self) -> tuple[str, str]:
        return (self.namespace, self.name)


@dataclass(frozen=True)
class LocationStanding:
    """A location, as the deciding operator (run --location) sees it."""

    name: str
    up: bool  # its results are fresh: this process's own, or its Lease held
    disagreeing: bool  # it has seen an endpoint otherwise than its quorum for long


@dataclass(frozen=True)
class Snapshot:
    """Everything the outputs may show, as of ``taken_at``.

    ``incidents`` holds the open ones and those resolved within the last 90 days: older ones
    change no running figure and appear nowhere."""

    taken_at: datetime
    agreements: tuple[AgreementView, ...] = ()
    incidents: tuple[Incident, ...] = ()
    windows: tuple[WindowView, ...] = ()
    probe_lag: Histogram = NO_OBSERVATIONS
    support_requests: tuple[SupportRequestView, ...] = ()
    locations: tuple[LocationStanding, ...] = ()  # run --location only

    def agreement(self, namespace: str, name: str) -> AgreementView | None:
        return next((a for a in self.agreements if a.key == (namespace, name)), None)


EMPTY_SNAPSHOT = Snapshot(taken_at=datetime.min.replace(tzinfo=UTC))
