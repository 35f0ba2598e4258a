"""Frozen domain objects: what a manifest means once it has been parsed and checked."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from decimal import Decimal
from enum import StrEnum
from functools import cached_property

from sla_operator.domain.alert_tiers import DEFAULT_TIERS, BurnTier
from sla_operator.domain.failure_reasons import FailureReason
from sla_operator.domain.intervals import Interval


class Environment(StrEnum):
    PRODUCTION = "production"
    SANDBOX = "sandbox"


class State(StrEnum):
    UP = "Up"
    DEGRADED = "Degraded"
    DOWN = "Down"
    MAINTENANCE = "Maintenance"
    UNKNOWN = "Unknown"


class Severity(StrEnum):
    P1 = "P1"
    P2 = "P2"
    P3 = "P3"
    P4 = "P4"

    @property
    def rank(self) -> int:
        """Lower is more severe: P1 is 1."""
        return int(self.value[1])

    def more_severe_than(self, other: Severity) -> bool:
        return self.rank < other.rank


class IncidentType(StrEnum):
    OUTAGE = "outage"
    DEGRADATION = "degradation"
    BREACH = "breach"
    CERTIFICATE = "certificate"


class IncidentState(StrEnum):
    INVESTIGATING = "investigating"
    IDENTIFIED = "identified"
    MONITORING = "monitoring"
    RESOLVED = "resolved"


class Impact(StrEnum):
    DOWNTIME = "downtime"
    DEGRADED = "degraded"
    NONE = "none"


class Origin(StrEnum):
    AUTOMATIC = "automatic"
    MANUAL = "manual"


class ExclusionReason(StrEnum):
    THIRD_PARTY = "thirdParty"
    BLOCKED = "blocked"
    OTHER = "other"


# ---------------------------------------------------------------- selectors


@dataclass(frozen=True)
class Requirement:
    """One matchExpressions entry: In, NotIn, Exists, DoesNotExist."""

    key: str
    operator: str
    values: tuple[str, ...] = ()

    def matches(self, labels: Mapping[str, str]) -> bool:
        present = self.key in labels
        if self.operator == "In":
            return present and labels[self.key] in self.values
        if self.operator == "NotIn":
            return not present or labels[self.key] not in self.values
        if self.operator == "Exists":
            return present
        return not present  # DoesNotExist


@dataclass(frozen=True)
class LabelSelector:
    """A Kubernetes label selector; the empty selector matches everything."""

    match_labels: Mapping[str, str] = field(default_factory=dict)
    match_expressions: tuple[Requirement, ...] = ()

    def matches(self, labels: Mapping[str, str]) -> bool:
        return all(labels.get(k) == v for k, v in self.match_labels.items()) and all(
            r.matches(labels) for r in self.match_expressions
        )


# ---------------------------------------------------------------- probes


@dataclass(frozen=True)
class SecretRef:
    name: str
    key: str


@dataclass(frozen=True)
class Header:
    """An HTTP header whose value is literal or read from a Secret in the SLA's namespace."""

    name: str
    value: str | None = None
    secret: SecretRef | None = None


@dataclass(frozen=True)
class HttpProbe:
    url: str
    method: str = "GET"
    headers: tuple[Header, ...] = ()
    body: str = ""
    expected_status: tuple[int, ...] = ()  # empty: any 2xx
    body_regex: str | None = None
    follow_redirects: bool = True
    insecure_skip_verify: bool = False
    certificate_expiry_warning: timedelta | None = None

    kind = "http"

    def status_ok(self, status: int) -> bool:
        if self.expected_status:
            return status in self.expected_status
        return 200 <= status < 300


@dataclass(frozen=True)
class TcpProbe:
    host: str
    port: int

    kind = "tcp"


@dataclass(frozen=True)
class DnsProbe:
    name: str
    type: str = "A"
    server: str | None = None  # "host:port" or "host"; None: the system resolver
    expect: tuple[str, ...] = ()

    kind = "dns"


@dataclass(frozen=True)
class GrpcProbe:
    host: str
    port: int
    service: str = ""
    tls: bool = False
    insecure_skip_verify: bool = False

    kind = "grpc"


@dataclass(frozen=True)
class TlsProbe:
    host: str
    port: int = 443
    server_name: str | None = None
    insecure_skip_verify: bool = False
    certificate_expiry_warning: timedelta | None = None

    kind = "tls"


ProbeSpec = HttpProbe | TcpProbe | DnsProbe | GrpcProbe | TlsProbe


@dataclass(frozen=True)
class Endpoint:
    name: str
    probe: ProbeSpec
    interval: timedelta = timedelta(seconds=30)
    timeout: timedelta = timedelta(seconds=5)
    failure_threshold: int = 3
    success_threshold: int = 2
    degraded_latency: timedelta | None = None
    dependency: bool = False
    discovered: bool = False  # added by an annotated Service or Ingress (domain/discovery.py)

    @cached_property
    def certificate_expiry_warning(self) -> timedelta | None:
        if isinstance(self.probe, HttpProbe | TlsProbe):
            return self.probe.certificate_expiry_warning
        return None


@dataclass(frozen=True)
class ProbeResult:
    """The outcome of one probe attempt. ``message`` is short and never holds a secret."""

    time: datetime  # when the probe started
    ok: bool
    latency_seconds: float
    message: str
    certificate_not_after: datetime | None = None
    reason: FailureReason | None = None  # why it failed (None when it succeeded)


# ---------------------------------------------------------------- agreement


class WindowType(StrEnum):
    CALENDAR = "calendar"
    ROLLING = "rolling"


class CalendarPeriod(StrEnum):
    WEEK = "week"
    MONTH = "month"
    QUARTER = "quarter"
    YEAR = "year"


@dataclass(frozen=True)
class Window:
    """How an agreement is measured: a calendar period in a time zone, or a rolling duration."""

    type: WindowType = WindowType.CALENDAR
    period: CalendarPeriod = CalendarPeriod.MONTH
    duration: timedelta = timedelta(days=30)  # rolling only
    time_zone: str = "UTC"


class DowntimeWhen(StrEnum):
    ANY = "any"
    ALL = "all"


@dataclass(frozen=True)
class Alerting:
    enabled: bool = True
    labels: Mapping[str, str] = field(default_factory=dict)
    runbook_url: str | None = None
    tiers: tuple[BurnTier, ...] = DEFAULT_TIERS  # the enabled burn-rate tiers


@dataclass(frozen=True)
class StatusPageOptions:
    public: bool = False
    group: str | None = None


DEFAULT_SUPPORT_RESPONSE: Mapping[Severity, timedelta] = {
    Severity.P1: timedelta(minutes=15),
    Severity.P2: timedelta(hours=1),
    Severity.P3: timedelta(hours=8),
    Severity.P4: timedelta(hours=24),
}


class ResponseHours(StrEnum):
    """Which time a response target counts: all of it, or only the support hours'."""

    ALWAYS = "always"
    BUSINESS = "business"


@dataclass(frozen=True)
class SupportHours:
    """When support is staffed: ``start`` to ``end`` wall time on ``days`` in ``time_zone``
    (DST-correct). Severities whose ``hours`` are business count only that time."""

    time_zone: str = "UTC"
    days: frozenset[int] = frozenset(range(5))  # Monday is 0
    start: time = time(9)
    end: time | None = time(17)  # None: the end of the day (24:00)
    hours: Mapping[Severity, ResponseHours] = field(default_factory=dict)  # absent: always

    def counts_business(self, severity: Severity) -> bool:
        return self.hours.get(severity) is ResponseHours.BUSINESS


@dataclass(frozen=True)
class Probing:
    """``spec.probing``: which locations' results decide, and how many must agree."""

    locations: tuple[str, ...] = ()  # empty: every location that reports
    quorum: int | None = None  # None: a majority of those locations

    def quorum_of(self, reporting: int) -> int:
        """The quorum among ``locations`` (or, when none are named, ``reporting`` ones)."""
        if self.quorum is not None:
            return self.quorum
        return max(len(self.locations) or reporting, 1) // 2 + 1


@dataclass(frozen=True)
class CreditTier:
    """A service credit: a period whose availability is below ``below`` (percent) earns
    ``percent`` of that period's fees back."""

    below: Decimal
    percent: int


@dataclass(frozen=True)
class Agreement:
    namespace: str
    name: str
    service: str
    objective: Decimal  # percent, 0 < objective < 100
    endpoints: tuple[Endpoint, ...]
    environment: Environment = Environment.PRODUCTION
    window: Window = Window()
    downtime_when: DowntimeWhen = DowntimeWhen.ANY
    maintenance_selector: LabelSelector | None = None
    support_response: Mapping[Severity, timedelta] = field(
        default_factory=lambda: dict(DEFAULT_SUPPORT_RESPONSE)
    )
    alerting: Alerting = Alerting()
    status_page: StatusPageOptions = StatusPageOptions()
    credits: tuple[CreditTier, ...] = ()  # highest threshold first
    support_hours: SupportHours | None = None  # None: support is 24/7
    probing: Probing | None = None  # None: one location, the one that runs the agreement
    labels: Mapping[str, str] = field(default_factory=dict)
    created_at: datetime | None = None
    uid: str | None = None
    generation: int = 0

    @property
    def key(self) -> tuple[str, str]:
        return (self.namespace, self.name)

    @property
    def objective_ratio(self) -> float:
        return float(self.objective / 100)

    @cached_property
    def own_endpoints(self) -> tuple[Endpoint, ...]:
        """Endpoints that are the service itself (not third-party dependencies)."""
        # Kept: every evaluation asks, and an agreement never changes (a new spec is a new one).
        return tuple(e for e in self.endpoints if not e.dependency)

    def endpoint(self, name: str) -> Endpoint | None:
        return next((e for e in self.endpoints if e.name == name), None)


# ---------------------------------------------------------------- maintenance


@dataclass(frozen=True)
class MaintenanceWindow:
    namespace: str
    name: str
    description: str = ""
    labels: Mapping[str, str] = field(default_factory=dict)
    sla_selector: LabelSelector | None = None
    sla_names: tuple[str, ...] = ()
    start: datetime | None = None  # one-off
    end: datetime | None = None
    schedule: str | None = None  # recurring: cron, evaluated in time_zone
    duration: timedelta | None = None
    time_zone: str = "UTC"
    valid_from: datetime | None = None
    valid_until: datetime | None = None
    announce: timedelta = timedelta(hours=168)
    generation: int = 0

    @property
    def key(self) -> tuple[str, str]:
        return (self.namespace, self.name)

    def applies_to(self, agreement: Agreement) -> bool:
        """Whether this window excludes time from ``agreement`` (same namespace only).

        An agreement with a maintenanceSelector chooses its windows by their labels; otherwise
        a window chooses its agreements by slaNames / slaSelector, and one naming neither
        applies to every agreement in its namespace.
        """
        if agreement.namespace != self.namespace:
            return False
        if agreement.maintenance_selector is not None:
            return agreement.maintenance_selector.matches(self.labels)
        if not self.sla_names and self.sla_selector is None:
            return True
        if agreement.name in self.sla_names:
            return True
        return self.sla_selector is not None and self.sla_selector.matches(agreement.labels)


# ---------------------------------------------------------------- incidents


@dataclass(frozen=True)
class Exclusion:
    reason: ExclusionReason
    note: str = ""


@dataclass(frozen=True)
class IncidentUpdate:
    time: datetime
    state: IncidentState
    message: str
    severity: Severity | None = None
    by: str | None = None  # who wrote it (a person's name or kubeconfig user); None: the operator


@dataclass(frozen=True)
class Incident:
    namespace: str
    name: str
    agreement: str
    type: IncidentType
    severity: Severity
    title: str
    started_at: datetime
    state: IncidentState = IncidentState.INVESTIGATING
    impact: Impact = Impact.DOWNTIME
    origin: Origin = Origin.AUTOMATIC
    resolved_at: datetime | None = None
    endpoints: tuple[str, ...] = ()
    dependency: bool = False  # a third-party dependency's outage: excluded where it overlaps
    exclusion: Exclusion | None = None
    acknowledged_at: datetime | None = None
    acknowledged_by: str | None = None
    updates: tuple[IncidentUpdate, ...] = ()
    uid: str | None = None
    owner_uid: str | None = None  # the uid of the agreement that owns it, where one does

    @property
    def key(self) -> tuple[str, str]:
        return (self.namespace, self.name)

    @property
    def is_open(self) -> bool:
        return self.resolved_at is None

    def interval(self, now: datetime) -> Interval:
        """The time this incident covers; an open one runs until ``now``."""
        end = self.resolved_at if self.resolved_at is not None else now
        return Interval(self.started_at, max(end, self.started_at))
