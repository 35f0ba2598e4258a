"""Incident decisions: which incidents to open, escalate or resolve, as plain data.

Each automatic incident fills a *slot* of its agreement (the outage, the degradation, a
dependency's outage, a certificate warning, the budget breach). A slot holds at most one open
incident, which makes decisions idempotent: after a restart the open incidents read back from
the store fill their slots again and nothing is opened twice. Manual incidents are never touched.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from sla_operator.domain.health import UNPROBED, EndpointHealth, ServiceHealth
from sla_operator.domain.intervals import Interval
from sla_operator.domain.model import (
    Agreement,
    DowntimeWhen,
    Impact,
    Incident,
    IncidentState,
    IncidentType,
    IncidentUpdate,
    Origin,
    Severity,
    State,
)

Slot = tuple[str, str]  # (kind, endpoint or "")


def slot_of(incident: Incident) -> Slot | None:
    if incident.origin is not Origin.AUTOMATIC:
        return None
    if incident.dependency:
        return ("dependency", incident.endpoints[0] if incident.endpoints else "")
    if incident.type is IncidentType.CERTIFICATE:
        return ("certificate", incident.endpoints[0] if incident.endpoints else "")
    return (incident.type.value, "")


@dataclass(frozen=True)
class Open:
    incident: Incident


@dataclass(frozen=True)
class Change:
    """New values for an open incident's fields, plus timeline entries to append."""

    incident: Incident
    fields: Mapping[str, object] = field(default_factory=dict)
    updates: tuple[IncidentUpdate, ...] = ()


Action = Open | Change


@dataclass(frozen=True)
class Situation:
    """Everything the decision needs, read at one instant."""

    agreement: Agreement
    service: ServiceHealth
    endpoints: Mapping[str, EndpointHealth]
    maintenance_active: bool
    budget_exhausted: bool
    period_start: datetime
    now: datetime
    maintenance: Sequence[Interval] = ()  # scheduled maintenance around now

    def after_maintenance(self, moment: datetime | None) -> datetime:
        """A failure streak that began inside a window that is over counts from its end.

        Streaks that began before a window keep their start: that time was downtime."""
        start = moment or self.now
        for window in self.maintenance:
            if window.start <= start < window.end <= self.now:
                start = window.end
        return start


# Kubernetes names are DNS subdomains of at most 253 characters; a clash adds "-NN".
NAME_LIMIT = 253 - 3
TITLE_LIMIT = 1000


def incident_name(agreement: str, kind: str, started_at: datetime) -> str:
    stamp = started_at.strftime("%Y%m%d-%H%M")
    suffix = f"-{stamp}" if kind == "outage" else f"-{kind}-{stamp}"
    head = agreement[:max(1, NAME_LIMIT - len(suffix))].rstrip("-.")
    return (head + suffix)[:NAME_LIMIT]


def decide(situation: Situation, incidents: Iterable[Incident]) -> list[Action]:
    """Open, escalate and resolve automatic incidents so they match the situation.

    ``incidents`` are the agreement's incidents, open and resolved: a streak whose incident a
    person already resolved is not opened again (the person's word stands)."""
    known = list(incidents)
    current = {s: i for i in known if i.is_open and (s := slot_of(i)) is not None}
    wanted = dict(_wanted(situation))
    actions: list[Action] = []
    for slot, (desired, title) in wanted.items():
        existing = current.get(slot)
        if existing is None:
            if not _closed_this_episode(known, slot, desired.episode_start):
                actions.append(Open(_new_incident(situation, slot, desired, title)))
        else:
            change = _escalation(existing, desired, title, situation.now)
            if change is not None:
                actions.append(change)
    for slot, existing in current.items():
        if slot not in wanted and _may_resolve(existing, slot, situation):
            actions.append(_resolution(existing, slot, situation))
    return actions


@dataclass(frozen=True)
class _Desired:
    type: IncidentType
    severity: Severity
    impact: Impact
    started_at: datetime
    endpoints: tuple[str, ...]
    dependency: bool = False
    episode: datetime | None = None  # when the condition began, if not started_at

    @property
    def episode_start(self) -> datetime:
        return self.episode or self.started_at


def _closed_this_episode(known: Sequence[Incident], slot: Slot, episode_start: datetime) -> bool:
    """A person resolved this slot's incident for the current episode: that word stands.

    Stored times are whole seconds while probe times are not, hence the second of slack."""
    earliest = episode_start - timedelta(seconds=1)
    return any(not i.is_open and slot_of(i) == slot and i.started_at >= earliest for i in known)


def _wanted(s: Situation) -> Iterable[tuple[Slot, tuple[_Desired, str]]]:
    service, name = s.service, s.agreement.service
    if service.state is State.DOWN and not s.maintenance_active:
        severity = Severity.P1 if service.every_endpoint_down else Severity.P2
        failing = ", ".join(service.down_endpoints)
        yield ("outage", ""), (_Desired(IncidentType.OUTAGE, severity, Impact.DOWNTIME,
                                        s.after_maintenance(service.since), service.down_endpoints),
                               f"{name} is down: {failing} failing")
    elif service.state is State.DEGRADED and not s.maintenance_active:
        slow = [e for e in s.agreement.own_endpoints
                if s.endpoints.get(e.name, UNPROBED).consecutive_slow >= e.failure_threshold]
        if slow:
            starts = [h.slow_streak_start for e in slow
                      if (h := s.endpoints[e.name]).slow_streak_start is not None]
            names = tuple(e.name for e in slow)
            started = s.after_maintenance(min(starts, default=s.now))
            yield ("degradation", ""), (_Desired(IncidentType.DEGRADATION, Severity.P3,
                                                 Impact.DEGRADED, started, names),
                                        f"{name} is slow: {', '.join(names)} over latency target")
    for endpoint in s.agreement.endpoints:
        warning = endpoint.certificate_expiry_warning
        if warning is None and not endpoint.dependency:
            continue  # nothing below can be about it
        health = s.endpoints.get(endpoint.name, UNPROBED)
        if endpoint.dependency and health.state is State.DOWN:
            yield ("dependency", endpoint.name), (
                _Desired(IncidentType.OUTAGE, Severity.P4, Impact.NONE, health.since or s.now,
                         (endpoint.name,), dependency=True),
                f"{name}: third-party dependency {endpoint.name} is down")
        not_after = health.last.certificate_not_after if health.last else None
        if warning is not None and not_after is not None and not_after - s.now < warning:
            yield ("certificate", endpoint.name), (
                _Desired(IncidentType.CERTIFICATE, Severity.P4, Impact.NONE, s.now, (endpoint.name,),
                         episode=min(s.now, not_after - warning)),
                f"{name}: certificate of {endpoint.name} expires {not_after:%Y-%m-%d %H:%M}Z")
    if s.budget_exhausted:
        yield ("breach", ""), (_Desired(IncidentType.BREACH, Severity.P2, Impact.NONE, s.now, (),
                                        episode=s.period_start),
                               f"{name}: error budget exhausted, objective {s.agreement.objective}% missed")


def _new_incident(s: Situation, slot: Slot, desired: _Desired, title: str) -> Incident:
    kind = slot[1] if slot[0] in ("dependency", "certificate") and slot[1] else slot[0]
    return Incident(
        namespace=s.agreement.namespace,
        # Named after its episode: a certificate or breach incident is dated when it is seen,
        # so a second attempt after a lost copy lands on the same name, and is recognised.
        name=incident_name(s.agreement.name, kind, desired.episode_start),
        agreement=s.agreement.name,
        type=desired.type,
        severity=desired.severity,
        title=_shortened(title),
        started_at=desired.started_at,
        impact=desired.impact,
        origin=Origin.AUTOMATIC,
        endpoints=desired.endpoints,
        dependency=desired.dependency,
        updates=(IncidentUpdate(s.now, IncidentState.INVESTIGATING, _shortened(title),
                                desired.severity),),
    )


def _shortened(title: str) -> str:
    return title if len(title) <= TITLE_LIMIT else title[:TITLE_LIMIT - 1] + "…"


def _operator_severity(incident: Incident) -> Severity | None:
    """The severity the operator last recorded; a different current one was set by a person."""
    recorded = [u.severity for u in incident.updates if u.severity is not None]
    return recorded[-1] if recorded else None


def _escalation(existing: Incident, desired: _Desired, title: str, now: datetime) -> Change | None:
    fields: dict[str, object] = {}
    updates: list[IncidentUpdate] = []
    person_set = _operator_severity(existing) != existing.severity
    if desired.severity.more_severe_than(existing.severity) and not person_set:
        fields["severity"] = desired.severity
        updates.append(IncidentUpdate(now, existing.state,
                                      f"severity raised to {desired.severity}: {title}",
                                      desired.severity))
    merged = tuple(dict.fromkeys(existing.endpoints + desired.endpoints))
    if merged != existing.endpoints:
        fields["endpoints"] = merged
    if not fields:
        return None
    return Change(existing, fields, tuple(updates))


def _may_resolve(existing: Incident, slot: Slot, s: Situation) -> bool:
    """Resolve only on evidence: an endpoint the incident is about answering a probe of this
    process. An unknown state (e.g. just after a restart) resolves nothing, and neither does
    a state a restart carried over from the last status: that status may predate the incident
    (written just before a crash that came right after the incident opened), and the probes
    since may have failed, still short of the threshold, which leaves the carried Up standing."""
    kind, endpoint = slot
    own = {e.name for e in s.agreement.own_endpoints}
    if kind == "outage" and not all(
            _answering(s.endpoints.get(name, UNPROBED)) for name in existing.endpoints if name in own):
        # An endpoint the incident is about has not answered since a restart or an edit:
        # the others answering is no evidence that it recovered.
        return False
    if kind == "degradation" and any(
            (seen := s.endpoints.get(name, UNPROBED)).last is None or seen.state is State.UNKNOWN
            for name in existing.endpoints if name in own):
        return False  # not probed since: no evidence the latency is back under target
    if kind == "outage":
        # An outage running into maintenance stays open: accounting leaves the maintenance out.
        return s.service.state in (State.UP, State.DEGRADED)
    if kind == "degradation":
        return s.service.state is not State.UNKNOWN and not s.maintenance_active
    if kind in ("dependency", "certificate"):
        health = s.endpoints.get(endpoint)
        return health is not None and _answering(health)
    return True


def _answering(health: EndpointHealth) -> bool:
    """Up or Degraded, and its latest result, a probe of this process, a success."""
    last = health.last
    return (last is not None and last.ok
            and (health.state is State.UP or health.state is State.DEGRADED))


def _resolution(existing: Incident, slot: Slot, s: Situation) -> Change:
    kind, endpoint = slot
    resolved_at = s.now
    if kind == "outage":
        resolved_at = _outage_end(existing, s)
    elif kind == "dependency":
        health = s.endpoints.get(endpoint)
        resolved_at = (health.since if health and health.since else s.now)
    elif kind == "breach" and existing.started_at < s.period_start:
        resolved_at = s.period_start  # exhausted until its period ended
    resolved_at = min(max(resolved_at, existing.started_at), s.now)
    message = {"outage": "recovered: all endpoints answer again",
               "degradation": "latency back under target",
               "dependency": f"{endpoint} is reachable again",
               "certificate": f"certificate of {endpoint} renewed",
               "breach": "the error budget is no longer exhausted"}[kind]
    return Change(existing, {"state": IncidentState.RESOLVED, "resolved_at": resolved_at},
                  (IncidentUpdate(resolved_at, IncidentState.RESOLVED, message),))


def _outage_end(existing: Incident, s: Situation) -> datetime:
    """When the failing endpoints came back: the first success of their recovery streaks.

    Not the service's ``since``: a service that is Degraded because some other endpoint is
    slow dates that from the slowness, which may predate the outage itself.
    """
    recovered = [h.since for name in existing.endpoints
                 if (h := s.endpoints.get(name)) is not None
                 and h.state in (State.UP, State.DEGRADED) and h.since is not None]
    if not recovered:  # its endpoints left the spec: the outage lasted until now
        return s.now
    # any: Down until the last failing endpoint is back; all: until the first one is.
    return max(recovered) if s.agreement.downtime_when is DowntimeWhen.ANY else min(recovered)


def apply_change(incident: Incident, change: Change) -> Incident:
    """The incident after a Change (what the store will hold once it is written)."""
    values = dict(change.fields)
    return replace(incident, **values, updates=incident.updates + change.updates)  # type: ignore[arg-type]
