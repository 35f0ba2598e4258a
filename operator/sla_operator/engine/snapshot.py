"""Build the frozen snapshot the outputs read from the engine's mutable runtime.

Called at the end of every evaluation round (and when objects are removed): the cost is one
small view per agreement and window; the 90 days are shared, not copied (the runtime replaces
its tuple of days instead of changing it).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import datetime, timedelta
from itertools import accumulate, chain, repeat

from sla_operator.domain.model import Agreement, Incident, MaintenanceWindow, Severity, State
from sla_operator.domain.published import read_published
from sla_operator.domain.saved import describe, parse_decimal
from sla_operator.domain.schedule import active_and_next
from sla_operator.domain.support import SupportRequest, request_view
from sla_operator.domain.views import (
    EMPTY_SNAPSHOT,
    AgreementView,
    ClosedPeriodView,
    Histogram,
    ProbeView,
    Snapshot,
    SupportRequestView,
    WindowView,
)
from sla_operator.engine.runtime import LATENCY_BUCKETS, AgreementRuntime, ProbeStats
from sla_operator.probes.scheduler import LagHistogram
from sla_operator.store.base import Key

log = logging.getLogger("sla_operator.engine")
RECENT = timedelta(days=90)  # resolved incidents older than this appear nowhere


def build_snapshot(runtimes: Iterable[AgreementRuntime], incidents: Iterable[Incident],
                   windows: Iterable[MaintenanceWindow], lag: LagHistogram, now: datetime,
                   previous: Snapshot = EMPTY_SNAPSHOT, mirror: bool = False,
                   foreign: Iterable[AgreementRuntime] = (),
                   requests: Iterable[SupportRequest] = ()) -> Snapshot:
    """One view per agreement and window; one that cannot be built keeps its previous view.

    ``mirror`` (a standby): each agreement as its status shows it, not as evaluated here.
    ``foreign``: other shards' agreements, always as their statuses show them.
    ``requests``: the support requests held, each with where its response stands."""
    cutoff = now - RECENT
    recent = tuple(i for i in incidents if i.resolved_at is None or i.resolved_at >= cutoff)
    open_by_agreement = _open_counts(recent)
    runtimes = list(runtimes)
    others = list(foreign)
    before: dict[Key, AgreementView] | None = None  # the previous views, when one is wanted

    def earlier(key: Key) -> AgreementView | None:
        nonlocal before
        if before is None:
            before = {view.key: view for view in previous.agreements}
        return before.get(key)

    agreements = []
    for runtime, mirrored in chain(zip(runtimes, repeat(mirror)), zip(others, repeat(True))):
        key = runtime.agreement.key
        try:
            counts = open_by_agreement.get(key, _NONE_OPEN)
            # The previous snapshot's view matters only to a runtime without a view of its own.
            agreements.append(mirrored_view(runtime, counts) if mirrored else
                              _current_view(runtime, counts,
                                            earlier(key) if runtime.view is None else None))
        except Exception:  # one agreement's bad data must not blank every output
            log.exception("agreement %s/%s: view not refreshed", *key)
            # Never left out: without a view it would vanish from /metrics (and page as
            # absent) and from the status page. Its last view, or one that says who it is.
            kept = earlier(key)
            agreements.append(kept if kept is not None else bare_view(runtime.agreement))
    by_namespace: dict[str, list[AgreementRuntime]] = {}
    for runtime in [*runtimes, *others]:
        by_namespace.setdefault(runtime.agreement.namespace, []).append(runtime)
    views = []
    shown: set[Key] = set()
    for window in windows:
        shown.add(window.key)
        try:  # a window selects agreements of its own namespace only
            views.append(_window_view(window, by_namespace.get(window.namespace, []), now))
        except Exception:  # a window whose schedule cannot be computed is left out
            log.exception("maintenance window %s/%s: view not refreshed", *window.key)
    for key in [k for k in _WINDOW_VIEWS if k not in shown]:
        del _WINDOW_VIEWS[key]
    held = {r.agreement.key: r.agreement for r in [*runtimes, *others]}
    return Snapshot(taken_at=now, agreements=tuple(agreements), incidents=recent,
                    windows=tuple(views), probe_lag=_lag(lag),
                    support_requests=_request_views(requests, held, now))


def _current_view(runtime: AgreementRuntime, open_incidents: dict[Severity, int],
                  previous: AgreementView | None) -> AgreementView:
    """The runtime's last view while nothing it shows changed (the same object, so that
    /metrics keeps its lines too); otherwise a new one, with new probe views only for the
    endpoints probed since. When probes are all that changed, the rest of the view is the
    last one's."""
    made_at = (runtime.changes, open_incidents)
    cached = runtime.view
    if cached is not None and runtime.view_made_at == made_at:
        return cached
    view: AgreementView | None = None
    if cached is not None:
        probes = cached.probes
        if runtime.observed:
            earlier = list(probes)
            for name in runtime.observed:
                index = runtime.position(name)
                if index is not None:
                    endpoint = runtime.agreement.endpoints[index]
                    earlier[index] = _probe_view(runtime, name, endpoint.dependency,
                                                 earlier[index])
            probes = tuple(earlier)
        changed_at, counts = runtime.view_made_at
        if (counts == open_incidents and runtime.changes - changed_at
                == runtime.probe_changes - runtime.view_probe_changes):
            view = _with_probes(cached, probes)
        else:
            view = agreement_view(runtime, open_incidents, previous, probes)
    else:
        view = agreement_view(runtime, open_incidents, previous)
    runtime.view, runtime.view_made_at = view, made_at
    runtime.view_probe_changes = runtime.probe_changes
    runtime.observed.clear()
    return view


def bare_view(agreement: Agreement) -> AgreementView:
    """An agreement with no figures: what it is, its objective, state Unknown."""
    return AgreementView(
        namespace=agreement.namespace, name=agreement.name, service=agreement.service,
        environment=agreement.environment, objective=agreement.objective,
        public=agreement.status_page.public, group=agreement.status_page.group,
        labels=agreement.labels, support_response=agreement.support_response,
        state=State.UNKNOWN,
        probes=tuple(ProbeView(name=e.name, dependency=e.dependency, state=State.UNKNOWN,
                               last_ok=None) for e in agreement.endpoints))


def _with_probes(view: AgreementView, probes: tuple[ProbeView, ...]) -> AgreementView:
    """``view`` with other probe views: ``dataclasses.replace`` without running __init__'s
    twenty assignments again (about a thousand times per round)."""
    copy = object.__new__(AgreementView)
    copy.__dict__.update(view.__dict__)
    object.__setattr__(copy, "probes", probes)
    return copy


def agreement_view(runtime: AgreementRuntime, open_incidents: dict[Severity, int],
                   previous: AgreementView | None = None,
                   probes: tuple[ProbeView, ...] | None = None) -> AgreementView:
    """``probes``: the endpoints' views, when the caller knows them already."""
    agreement = runtime.agreement
    earlier = {p.name: p for p in previous.probes} if previous is not None and probes is None else {}
    breached: dict[Severity, int] = {}
    for severity in runtime.breached.values():
        breached[Severity(severity)] = breached.get(Severity(severity), 0) + 1
    return AgreementView(
        namespace=agreement.namespace, name=agreement.name, service=agreement.service,
        environment=agreement.environment, objective=agreement.objective,
        public=agreement.status_page.public, group=agreement.status_page.group,
        labels=agreement.labels, support_response=agreement.support_response,
        state=runtime.state, maintenance_active=runtime.maintenance_active,
        period=runtime.figures, days=runtime.days, last_closed=_last_closed(runtime),
        downtime_total_seconds=runtime.downtime_total,
        eligible_total_seconds=runtime.eligible_total,
        open_incidents=open_incidents, responses_breached=breached,
        support_requests=runtime.support.by_severity(runtime.support.seen),
        support_breached=runtime.support.by_severity(runtime.support.breached),
        probes=probes if probes is not None else tuple(
            _probe_view(runtime, e.name, e.dependency, earlier.get(e.name))
            for e in agreement.endpoints),
        dissent=runtime.dissent, evaluated_at=runtime.last_evaluated)


def mirrored_view(runtime: AgreementRuntime, open_incidents: dict[Severity, int]) -> AgreementView:
    """The agreement as the status last delivered by the watch shows it (see ``published``)."""
    agreement = runtime.agreement
    if runtime.published is None or runtime.published_from is not runtime.seen_status:
        published = read_published(runtime.seen_status, agreement.objective)
        if published.problems:
            log.warning("agreement %s/%s: status shown with parts left out: %s",
                        *agreement.key, describe(published.problems))
        runtime.published, runtime.published_from = published, runtime.seen_status
    shown = runtime.published
    return AgreementView(
        namespace=agreement.namespace, name=agreement.name, service=agreement.service,
        environment=agreement.environment, objective=agreement.objective,
        public=agreement.status_page.public, group=agreement.status_page.group,
        labels=agreement.labels, support_response=agreement.support_response,
        state=shown.state, maintenance_active=shown.state is State.MAINTENANCE,
        period=shown.period, days=shown.days, last_closed=shown.last_closed,
        open_incidents=open_incidents,
        probes=tuple(ProbeView(name=e.name, dependency=e.dependency,
                               state=shown.endpoints.get(e.name, State.UNKNOWN), last_ok=None)
                     for e in agreement.endpoints),
        evaluated_at=shown.last_evaluated)


def window_view(window: MaintenanceWindow, runtimes: Iterable[AgreementRuntime],
                now: datetime) -> WindowView:
    active, upcoming = active_and_next(window, now)
    applies = tuple(sorted(r.agreement.name for r in runtimes if window.applies_to(r.agreement)))
    return WindowView(namespace=window.namespace, name=window.name,
                      description=window.description, agreements=applies, active=active,
                      upcoming=upcoming, announce=window.announce)


_NONE_OPEN: dict[Severity, int] = {}  # shared by the views of agreements with nothing open: never changed

_WINDOW_VIEWS: dict[Key, tuple[MaintenanceWindow, tuple[Agreement, ...], datetime, datetime,
                               WindowView]] = {}
"""Each window's last view: the window and agreements it was made from, and the span of
time [made, until) in which its occurrences stay the same."""


def _window_view(window: MaintenanceWindow, runtimes: list[AgreementRuntime],
                 now: datetime) -> WindowView:
    """``window_view``, or the last one while its window, its namespace's agreements and its
    occurrences are the same: until the occurrence under way ends or the next one starts,
    the occurrences ``active_and_next`` finds are the same ones."""
    agreements = tuple(r.agreement for r in runtimes)
    known = _WINDOW_VIEWS.get(window.key)
    if known is not None:
        held, seen, made, until, view = known
        if (held is window and made <= now < until and len(seen) == len(agreements)
                and all(a is b for a, b in zip(seen, agreements, strict=True))):
            return view
    view = window_view(window, runtimes, now)
    ends = [t for t in (view.active.end if view.active else None,
                        view.upcoming.start if view.upcoming else None) if t is not None]
    if view.upcoming is not None:  # none found: one may come into the search's reach later
        _WINDOW_VIEWS[window.key] = (window, agreements, now, min(ends), view)
    else:
        _WINDOW_VIEWS.pop(window.key, None)
    return view


_DUES: dict[Key, tuple[SupportRequest, Agreement, datetime]] = {}
"""Each request's response due time and the request and agreement it was computed from: it
moves only when one of them does (business hours make it a walk over the calendar)."""


def _request_views(requests: Iterable[SupportRequest], agreements: dict[Key, Agreement],
                   now: datetime) -> tuple[SupportRequestView, ...]:
    views = []
    for request in requests:
        agreement = agreements.get((request.namespace, request.agreement))
        known = _DUES.get(request.key)
        due = None
        if agreement is not None and known is not None and known[0] is request \
                and known[1] is agreement:
            due = known[2]
        try:
            view = request_view(request, agreement, now, due)
        except Exception:  # one request's bad data must not blank every output
            log.exception("support request %s/%s: left out of the snapshot", *request.key)
            continue
        if agreement is not None and view.response_due is not None:
            _DUES[request.key] = (request, agreement, view.response_due)
        views.append(view)
    held = {view.key for view in views}
    for key in [k for k in _DUES if k not in held]:
        del _DUES[key]
    return tuple(sorted(views, key=lambda v: v.key))


def _open_counts(incidents: Iterable[Incident]) -> dict[Key, dict[Severity, int]]:
    counts: dict[Key, dict[Severity, int]] = {}
    for incident in incidents:
        if incident.is_open:
            mine = counts.setdefault((incident.namespace, incident.agreement), {})
            mine[incident.severity] = mine.get(incident.severity, 0) + 1
    return counts


def _last_closed(runtime: AgreementRuntime) -> ClosedPeriodView | None:
    """The newest history entry; its figures come from a status, so they are text."""
    if not runtime.history:
        return None
    entry = runtime.history[max(runtime.history)]
    known, view = runtime.last_closed
    if known is entry:  # entries are replaced, never changed: the same one, the same view
        return view
    credit = entry.get("creditPercent")
    view = ClosedPeriodView(label=str(entry["period"]),
                            availability=_closed_availability(entry.get("availability")),
                            credit_percent=credit if isinstance(credit, int) else None)
    runtime.last_closed = (entry, view)
    return view


def _closed_availability(text: object) -> float | None:
    """A history entry's availability as a ratio; None (no figure) for one that does not
    read as a percent: history comes from a status, and one bad entry must cost no more than
    its own figure."""
    number = parse_decimal(text)
    if number is None or not 0 <= number <= 100:
        return None
    return float(number / 100)


_BOUNDS = (*LATENCY_BUCKETS, float("inf"))


def _probe_view(runtime: AgreementRuntime, name: str, dependency: bool,
                previous: ProbeView | None) -> ProbeView:
    """Made again only after a probe finished: most rounds, most endpoints have no news."""
    health = runtime.healths.get(name)
    stats = runtime.probe_stats.get(name) or _NO_STATS
    state = health.state if health is not None else _UNKNOWN
    reported: tuple[tuple[str, bool], ...] = ()
    if runtime.probing is not None:  # the decided health is the quorum's: the own view apart
        views = runtime.locations.get(name, {})
        health = views.get(runtime.location)
        reported = tuple((location, view.last.ok) for location, view in sorted(views.items())
                         if location != runtime.location and view.last is not None)
    last = health.last if health is not None else None
    if (previous is not None and previous.successes == stats.successes
            and previous.failures == stats.failures and previous.dependency == dependency
            and previous.state is state and previous.reported == reported):
        return previous
    # The counts by reason move only with a failure: after a success, the previous tuple.
    if previous is not None and previous.failures == stats.failures:
        by_reason = previous.failures_by_reason
    else:
        by_reason = tuple(stats.failures_by_reason) if stats.failures else ()
    return ProbeView(name, dependency, state, last.ok if last is not None else None,
                     stats.successes, stats.failures,
                     Histogram.of(_BOUNDS, tuple(accumulate(stats.bucket_counts)),
                                  stats.latency_sum),
                     last.certificate_not_after if last is not None else None,
                     by_reason, runtime.location, reported)


_NO_STATS = ProbeStats()  # never recorded into: the counters of an endpoint not probed yet
_UNKNOWN = State.UNKNOWN


def _lag(lag: LagHistogram) -> Histogram:
    return Histogram.of(tuple(lag.buckets), tuple(lag.cumulative_counts), lag.sum)
