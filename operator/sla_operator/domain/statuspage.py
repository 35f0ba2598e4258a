"""The public status page as data: who appears, the overall state, bars, incidents, windows.

Built from a snapshot and nothing else; the statuspage package only renders it (HTML, JSON,
Atom, SVG). Only public agreements and what belongs to them enter this model, so no route can
serve anything of the others. Nothing here comes from a probe (no URL, host or error text):
service names, states and figures, and the incident text people or the operator wrote.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from decimal import Decimal
from enum import StrEnum
from typing import Generic, TypeVar

from sla_operator.domain.accounting import DayFigures, PeriodFigures
from sla_operator.domain.model import Environment, Impact, Incident, IncidentType, State
from sla_operator.domain.render import percent
from sla_operator.domain.views import AgreementView, Snapshot, WindowView

HISTORY = timedelta(days=90)
BARS = 90
# Worst first: the overall banner shows the first of these that any agreement is in.
SEVERITY_OF_STATE = (State.DOWN, State.DEGRADED, State.MAINTENANCE, State.UP)
PUBLIC_IMPACTS = (Impact.DOWNTIME, Impact.DEGRADED)
INTERNAL_TYPES = (IncidentType.BREACH, IncidentType.CERTIFICATE)
EXCLUSION_WORDS = {
    "thirdParty": "not counted against the agreement: a third party's outage",
    "blocked": "not counted against the agreement: blocked data communications",
    "other": "not counted against the agreement",
}
K = TypeVar("K")
V = TypeVar("V")


class BarLevel(StrEnum):
    UP = "up"  # no downtime
    MAINTENANCE = "maintenance"  # no downtime, some maintenance
    MINOR = "minor"  # downtime, objective still met that day
    MAJOR = "major"  # below the objective that day
    NO_DATA = "nodata"  # nothing eligible: never shown as up


@dataclass(frozen=True)
class Bar:
    date: date
    availability: str | None  # percent with 4 decimals; None: no data
    downtime_seconds: int
    maintenance_seconds: int
    level: BarLevel

    @property
    def label(self) -> str:
        """The bar's text alternative: the same facts its colour shows."""
        if self.availability is None:
            figures = "no data"
        else:
            figures = f"{self.availability}% available, {duration_text(self.downtime_seconds)} down"
        maintenance = (f"{duration_text(self.maintenance_seconds)} maintenance"
                       if self.maintenance_seconds else "no maintenance")
        return f"{self.date.isoformat()}: {figures}, {maintenance}"


@dataclass(frozen=True)
class Update:
    time: datetime
    state: str
    message: str


@dataclass(frozen=True)
class PublicIncident:
    namespace: str
    name: str
    agreement: str
    service: str
    type: str
    severity: str
    impact: str
    state: str
    title: str
    started_at: datetime
    resolved_at: datetime | None
    duration_seconds: int
    updates: tuple[Update, ...]  # oldest first, as written
    excluded: str | None = None
    """Why a person excluded its time from the agreement (``spec.exclusion.reason``:
    thirdParty, blocked, other); None when it counts. The note stays internal."""

    @property
    def excluded_text(self) -> str | None:
        """The exclusion in words, for people reading the page."""
        if self.excluded is None:
            return None
        return EXCLUSION_WORDS.get(self.excluded, EXCLUSION_WORDS["other"])

    @property
    def is_open(self) -> bool:
        return self.resolved_at is None

    @property
    def updated_at(self) -> datetime:
        times = [u.time for u in self.updates] + [self.started_at]
        if self.resolved_at is not None:
            times.append(self.resolved_at)
        return max(times)


@dataclass(frozen=True)
class PublicWindow:
    namespace: str
    name: str
    description: str
    start: datetime
    end: datetime
    active: bool
    agreements: tuple[str, ...]  # public agreements only
    services: tuple[str, ...]


@dataclass(frozen=True)
class PublicAgreement:
    namespace: str
    name: str
    service: str
    group: str | None
    environment: Environment
    state: State
    objective: str
    availability: str | None  # current period, percent; None: no data yet
    met: bool | None
    period_label: str | None
    period_start: datetime | None
    period_end: datetime | None
    bars: tuple[Bar, ...]
    open_incidents: tuple[PublicIncident, ...] = ()
    maintenance: tuple[PublicWindow, ...] = ()
    location_note: str | None = None
    """What fewer locations than the quorum see, said as such, not as an outage:
    "Down from 1 of 3 locations"."""

    @property
    def sandbox(self) -> bool:
        return self.environment is Environment.SANDBOX


@dataclass(frozen=True)
class Group:
    name: str | None  # None: agreements without a group, shown without a heading
    agreements: tuple[PublicAgreement, ...]


@dataclass(frozen=True)
class StatusPage:
    # When this content was built; equal pages compare equal whatever their times.
    generated_at: datetime = field(compare=False)
    state: State
    groups: tuple[Group, ...]
    incidents: tuple[PublicIncident, ...]  # newest first by start
    maintenance: tuple[PublicWindow, ...]  # soonest first

    @property
    def agreements(self) -> tuple[PublicAgreement, ...]:
        return tuple(a for g in self.groups for a in g.agreements)

    def agreement(self, namespace: str, name: str) -> PublicAgreement | None:
        return next((a for a in self.agreements if (a.namespace, a.name) == (namespace, name)), None)


def build_status_page(snapshot: Snapshot) -> StatusPage:
    now = snapshot.taken_at
    public = {a.key: a for a in snapshot.agreements if a.public}
    incidents = public_incidents(snapshot.incidents, public, now)
    windows = public_windows(snapshot.windows, public, now)
    open_by_agreement: dict[tuple[str, str], list[PublicIncident]] = {}
    for shown in incidents:
        if shown.is_open:
            open_by_agreement.setdefault((shown.namespace, shown.agreement), []).append(shown)
    agreements = [_shown_agreement(view, tuple(open_by_agreement.get(view.key, ())), windows, now)
                  for view in public.values()]
    return StatusPage(generated_at=now, state=overall_state(a.state for a in agreements
                                                            if not a.sandbox),
                      groups=_groups(agreements), incidents=incidents, maintenance=windows)


def overall_state(states: Iterable[State]) -> State:
    """The worst known state: Down > Degraded > Maintenance > Up; Unknown when none is known."""
    present = set(states)
    return next((s for s in SEVERITY_OF_STATE if s in present), State.UNKNOWN)


def bar_level(day: DayFigures, objective: Decimal) -> BarLevel:
    if day.availability is None:
        return BarLevel.NO_DATA
    if day.downtime_seconds <= 0:
        return BarLevel.MAINTENANCE if day.maintenance_seconds > 0 else BarLevel.UP
    return BarLevel.MINOR if Decimal(repr(day.availability)) * 100 >= objective else BarLevel.MAJOR


class _Memo(Generic[K, V]):
    """Results by the identity of what they were made from.

    The engine hands over the same tuple of days and the same Incident objects until they
    change; looking them up by identity costs nothing, where hashing them would cost as much
    as rebuilding. Entries hold their key, so an id is never taken for another object's."""

    def __init__(self, limit: int = 20_000) -> None:
        self._entries: dict[int, tuple[K, object, V]] = {}
        self._limit = limit

    def get(self, key: K, extra: object, make: Callable[[], V]) -> V:
        entry = self._entries.get(id(key))
        if entry is not None and entry[0] is key and entry[1] == extra:
            return entry[2]
        if len(self._entries) >= self._limit:
            self._entries.clear()
        value = make()
        self._entries[id(key)] = (key, extra, value)
        return value


_BARS: _Memo[tuple[DayFigures, ...], tuple[Bar, ...]] = _Memo()
_RESOLVED: _Memo[Incident, PublicIncident] = _Memo()


def bars(days: tuple[DayFigures, ...], objective: Decimal, today: date) -> tuple[Bar, ...]:
    """Always 90, oldest first: days the engine has not computed yet are "no data"."""
    return _BARS.get(days, (objective, today), lambda: _bars(days, objective, today))


def _bars(days: tuple[DayFigures, ...], objective: Decimal, today: date) -> tuple[Bar, ...]:
    known = {d.date: d for d in days}
    result = []
    for back in range(BARS - 1, -1, -1):
        day = known.get(today - timedelta(days=back))
        if day is None:
            result.append(Bar(today - timedelta(days=back), None, 0, 0, BarLevel.NO_DATA))
            continue
        result.append(Bar(day.date, None if day.availability is None else percent(day.availability),
                          round(day.downtime_seconds), round(day.maintenance_seconds),
                          bar_level(day, objective)))
    return tuple(result)


def public_incidents(incidents: Iterable[Incident], public: dict[tuple[str, str], AgreementView],
                     now: datetime) -> tuple[PublicIncident, ...]:
    shown = [_resolved_incident(i, public[(i.namespace, i.agreement)].service) if not i.is_open
             else _incident(i, public[(i.namespace, i.agreement)].service, now) for i in incidents
             if (i.namespace, i.agreement) in public and i.impact in PUBLIC_IMPACTS
             and not i.dependency and i.type not in INTERNAL_TYPES
             and (i.is_open or i.interval(now).end >= now - HISTORY)]
    return tuple(sorted(shown, key=lambda i: (i.started_at, i.namespace, i.name), reverse=True))


def public_windows(windows: Iterable[WindowView], public: dict[tuple[str, str], AgreementView],
                   now: datetime) -> tuple[PublicWindow, ...]:
    shown = []
    for window in windows:
        names = tuple(n for n in window.agreements if (window.namespace, n) in public)
        occurrence = window.active or window.upcoming
        if not names or occurrence is None:
            continue
        if window.active is None and occurrence.start - window.announce > now:
            continue  # not announced yet
        shown.append(PublicWindow(
            namespace=window.namespace, name=window.name, description=window.description,
            start=occurrence.start, end=occurrence.end, active=window.active is not None,
            agreements=names, services=tuple(public[(window.namespace, n)].service for n in names)))
    return tuple(sorted(shown, key=lambda w: (w.start, w.namespace, w.name)))


def duration_text(seconds: float) -> str:
    """Whole seconds as people read them: 0s, 45s, 6m 52s, 2h 5m, 3d 4h."""
    total = max(0, round(seconds))
    days, rest = divmod(total, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    parts = [(days, "d"), (hours, "h"), (minutes, "m"), (secs, "s")]
    shown = [f"{value}{unit}" for value, unit in parts if value][:2]
    return " ".join(shown) or "0s"


def _resolved_incident(incident: Incident, service: str) -> PublicIncident:
    """A resolved incident's public form does not depend on the time: made once, not per change."""
    resolved_at = incident.resolved_at
    assert resolved_at is not None
    return _RESOLVED.get(incident, service, lambda: _incident(incident, service, resolved_at))


def _incident(incident: Incident, service: str, now: datetime) -> PublicIncident:
    span = incident.interval(now)
    return PublicIncident(
        namespace=incident.namespace, name=incident.name, agreement=incident.agreement,
        service=service, type=incident.type.value, severity=incident.severity.value,
        impact=incident.impact.value, state=incident.state.value, title=incident.title,
        started_at=incident.started_at, resolved_at=incident.resolved_at,
        duration_seconds=round((span.end - span.start).total_seconds()),
        updates=tuple(Update(u.time, u.state.value, u.message) for u in incident.updates),
        excluded=incident.exclusion.reason.value if incident.exclusion is not None else None)


def _shown_agreement(view: AgreementView, open_incidents: tuple[PublicIncident, ...],
                     windows: Sequence[PublicWindow], now: datetime) -> PublicAgreement:
    """The agreement on the page; one whose figures cannot be shown (a figure read back from
    a status that is not a number) is shown without them rather than not at all, and the
    page of every other agreement is built as usual."""
    try:
        return _agreement(view, open_incidents, windows, now)
    except (ArithmeticError, ValueError, TypeError):
        return _agreement(replace(view, period=None, days=(), last_closed=None),
                          open_incidents, windows, now)


def _agreement(view: AgreementView, open_incidents: tuple[PublicIncident, ...],
               windows: Sequence[PublicWindow], now: datetime) -> PublicAgreement:
    period: PeriodFigures | None = view.period
    measured = period is not None and period.eligible_seconds > 0
    # Before its first evaluation an agreement has no days: 90 bars of "no data" up to today.
    today = view.days[-1].date if view.days else now.date()
    return PublicAgreement(
        namespace=view.namespace, name=view.name, service=view.service, group=view.group,
        environment=view.environment, state=view.state, objective=str(view.objective),
        availability=percent(period.availability) if period is not None and measured else None,
        met=period.met if period is not None and measured else None,
        period_label=period.label if period else None,
        period_start=period.period.start if period else None,
        period_end=period.period.end if period else None,
        bars=bars(view.days, view.objective, today),
        open_incidents=open_incidents,
        maintenance=tuple(w for w in windows if w.namespace == view.namespace
                          and view.name in w.agreements),
        location_note=(f"{view.dissent.state.value} from {view.dissent.seeing} of "
                       f"{view.dissent.reporting} locations") if view.dissent else None)


def _groups(agreements: Sequence[PublicAgreement]) -> tuple[Group, ...]:
    """Ungrouped agreements first, then groups by name; agreements by service name."""
    names = sorted({a.group for a in agreements if a.group is not None}, key=str.casefold)
    ordered: list[str | None] = [None, *names]
    result = []
    for name in ordered:
        members = sorted((a for a in agreements if a.group == name),
                         key=lambda a: (a.service.casefold(), a.namespace, a.name))
        if members:
            result.append(Group(name, tuple(members)))
    return tuple(result)
