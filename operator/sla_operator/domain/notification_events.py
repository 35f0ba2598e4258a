"""What happened between two snapshots, as notification events (pure functions).

Notifications read only the engine's frozen snapshots: comparing the one before with the one
after tells which incidents opened, escalated, got an update or resolved, which maintenance
was announced, started or ended, and which error budget ran out. Nothing of the engine's
runtime is consulted, so the events are the same whichever replica derives them.

Each event carries an ``identity`` made of what it is about (incident, occurrence, period):
derived again from the same change, it is the same, so its delivery id (the idempotency key)
is too. ``subject`` orders deliveries: events of one subject are delivered in order.

``supportResponseBreached``: an incident not acknowledged within its agreement's support
response target (``spec.supportResponse``), as ``status.responseBreached`` says it: once per
incident, when the target passes unacknowledged or a late acknowledgement arrives; and
likewise a SupportRequest whose first response goes late (unanswered past its due time, or
answered after it): once per request, its subject ``supportrequest/NAME``.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime

from sla_operator.domain.intervals import Interval
from sla_operator.domain.model import Incident, IncidentState, IncidentUpdate, Severity
from sla_operator.domain.notifications import EventType
from sla_operator.domain.records import response_breached
from sla_operator.domain.views import AgreementView, Snapshot, SupportRequestView, WindowView


@dataclass(frozen=True)
class NotificationEvent:
    type: EventType
    namespace: str
    agreements: tuple[str, ...]  # the agreements (of ``namespace``) it concerns
    subject: str  # "incident/NAME", "maintenance/NAME", "agreement/NAME": ordered per subject
    occurred_at: datetime
    identity: str  # stable for the same change, whoever derives it, however often
    incident: Incident | None = None
    update: IncidentUpdate | None = None  # incidentUpdated: the entry added
    previous_severity: Severity | None = None  # incidentEscalated
    window: WindowView | None = None
    occurrence: Interval | None = None  # the maintenance occurrence announced, started, ended
    agreement: AgreementView | None = None  # budgetExhausted
    support_request: SupportRequestView | None = None  # supportResponseBreached of a request


def derive_events(before: Snapshot, after: Snapshot) -> list[NotificationEvent]:
    """Every event between ``before`` and ``after``, in the order they happened per subject."""
    events = list(_incident_events(before, after))
    events += _window_events(before, after)
    events += _budget_events(before, after)
    events += _response_events(before, after)
    events += _request_response_events(before, after)
    return events


# ---------------------------------------------------------------- incidents


def _incident_events(before: Snapshot, after: Snapshot) -> Iterator[NotificationEvent]:
    earlier = {i.key: i for i in before.incidents}
    for incident in sorted(after.incidents, key=lambda i: (i.started_at, i.key)):
        previous = earlier.get(incident.key)
        if previous is None:
            if incident.resolved_at is not None and incident.resolved_at < before.taken_at:
                continue  # resolved long ago: newly visible, not new (a restart, a resync)
            yield _incident_event(EventType.INCIDENT_OPENED, incident, incident.started_at, "")
            if incident.resolved_at is not None:  # opened and resolved between two snapshots
                yield _resolved(incident)
            continue
        yield from _changes(previous, incident)


def _changes(previous: Incident, incident: Incident) -> Iterator[NotificationEvent]:
    escalated = incident.severity.more_severe_than(previous.severity)
    resolved = previous.resolved_at is None and incident.resolved_at is not None
    known = len(previous.updates)
    added = incident.updates[known:] if incident.updates[:known] == previous.updates else ()
    for update in added:
        if resolved and update.state is IncidentState.RESOLVED and update.by is None:
            continue  # the resolution's own entry: said by incidentResolved
        if escalated and update.severity is not None and update.by is None:
            continue  # the escalation's own entry: said by incidentEscalated
        yield _incident_event(EventType.INCIDENT_UPDATED, incident, update.time,
                              f"{update.time.isoformat()}#{incident.updates.index(update)}",
                              update=update)
    if escalated:
        at = next((u.time for u in reversed(added) if u.severity == incident.severity),
                  None) or incident.started_at
        yield _incident_event(EventType.INCIDENT_ESCALATED, incident, at,
                              f"{incident.severity}", previous_severity=previous.severity)
    if resolved:
        yield _resolved(incident)


def _resolved(incident: Incident) -> NotificationEvent:
    assert incident.resolved_at is not None
    return _incident_event(EventType.INCIDENT_RESOLVED, incident, incident.resolved_at,
                           incident.resolved_at.isoformat())


def _incident_event(kind: EventType, incident: Incident, at: datetime, detail: str,
                    **extra: object) -> NotificationEvent:
    origin = incident.uid or incident.started_at.isoformat()
    return NotificationEvent(
        type=kind, namespace=incident.namespace, agreements=(incident.agreement,),
        subject=f"incident/{incident.name}", occurred_at=at,
        identity=f"{kind}/{incident.namespace}/{incident.name}/{origin}/{detail}",
        incident=incident, **extra)  # type: ignore[arg-type]


# ---------------------------------------------------------------- maintenance


def _window_events(before: Snapshot, after: Snapshot) -> Iterator[NotificationEvent]:
    earlier = {(w.namespace, w.name): w for w in before.windows}
    later = {(w.namespace, w.name): w for w in after.windows}
    for key, window in later.items():
        previous = earlier.get(key)
        upcoming = window.upcoming
        if (upcoming is not None and _announced(window, upcoming, after.taken_at)
                and not (previous is not None and previous.upcoming == upcoming
                         and _announced(previous, upcoming, before.taken_at))
                and not (previous is not None and previous.active == upcoming)):
            yield _window_event(EventType.MAINTENANCE_ANNOUNCED, window, upcoming, after.taken_at)
        was = previous.active if previous is not None else None
        if was is not None and window.active != was:
            yield _window_event(EventType.MAINTENANCE_ENDED, window, was,
                                min(was.end, after.taken_at))
        if window.active is not None and window.active != was:
            yield _window_event(EventType.MAINTENANCE_STARTED, window, window.active,
                                window.active.start)
    for key, previous in earlier.items():
        if key not in later and previous.active is not None:  # removed while under way
            yield _window_event(EventType.MAINTENANCE_ENDED, previous, previous.active,
                                min(previous.active.end, after.taken_at))


def _announced(window: WindowView, occurrence: Interval, now: datetime) -> bool:
    return occurrence.start - window.announce <= now < occurrence.start


def _window_event(kind: EventType, window: WindowView, occurrence: Interval,
                  at: datetime) -> NotificationEvent:
    return NotificationEvent(
        type=kind, namespace=window.namespace, agreements=window.agreements,
        subject=f"maintenance/{window.name}", occurred_at=at,
        identity=f"{kind}/{window.namespace}/{window.name}/{occurrence.start.isoformat()}",
        window=window, occurrence=occurrence)


# ---------------------------------------------------------------- error budget


def _budget_events(before: Snapshot, after: Snapshot) -> Iterator[NotificationEvent]:
    earlier = {a.key: a for a in before.agreements}
    for view in after.agreements:
        previous = earlier.get(view.key)
        now, then = view.period, previous.period if previous is not None else None
        if now is None or then is None or now.label != then.label:
            continue  # a new agreement or a new period starts with its budget whole
        if then.budget_remaining_seconds > 0 >= now.budget_remaining_seconds:
            yield NotificationEvent(
                type=EventType.BUDGET_EXHAUSTED, namespace=view.namespace,
                agreements=(view.name,), subject=f"agreement/{view.name}",
                occurred_at=view.evaluated_at or after.taken_at,
                identity=f"{EventType.BUDGET_EXHAUSTED}/{view.namespace}/{view.name}/{now.label}",
                agreement=view)


# ---------------------------------------------------------------- support response


def _response_events(before: Snapshot, after: Snapshot) -> Iterator[NotificationEvent]:
    earlier = {i.key: i for i in before.incidents}
    targets = {a.key: a.support_response for a in after.agreements}
    for incident in after.incidents:
        support = targets.get((incident.namespace, incident.agreement))
        if not support or incident.severity not in support:
            continue
        if not response_breached(incident, support, after.taken_at):
            continue
        due = incident.started_at + support[incident.severity]
        previous = earlier.get(incident.key)
        if previous is None:
            if due < before.taken_at:
                continue  # late long ago: newly visible (a restart), not news
        elif previous.severity in support and response_breached(previous, support,
                                                                before.taken_at):
            continue  # said already
        # occurredAt is when the response fell due: the moment it went late.
        yield _incident_event(EventType.SUPPORT_RESPONSE_BREACHED, incident, due, "")


def _request_response_events(before: Snapshot, after: Snapshot) -> Iterator[NotificationEvent]:
    earlier = {r.key: r for r in before.support_requests}
    for request in after.support_requests:
        due = request.response_due
        if not request.breached or due is None:
            continue
        previous = earlier.get(request.key)
        if previous is not None and previous.breached:
            continue  # said already
        if (previous is None or previous.response_due is None) and due < before.taken_at:
            continue  # late before it came into view (a restart, its agreement arriving)
        origin = request.uid or request.opened_at.isoformat()
        kind = EventType.SUPPORT_RESPONSE_BREACHED
        # Once per request: its identity holds nothing that a later edit changes.
        yield NotificationEvent(
            type=kind, namespace=request.namespace, agreements=(request.agreement,),
            subject=f"supportrequest/{request.name}", occurred_at=due,
            identity=f"{kind}/{request.namespace}/supportrequest/{request.name}/{origin}",
            support_request=request)
