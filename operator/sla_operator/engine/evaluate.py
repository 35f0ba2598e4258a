"""One evaluation of one agreement: figures, incident decisions and the status to write."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from itertools import chain
from typing import Any
from zoneinfo import ZoneInfo

from sla_operator.domain.accounting import (
    AccountingInput,
    PeriodFigures,
    compute_days,
    compute_history,
    compute_period,
    counted_time,
)
from sla_operator.domain.credits import credit_for_text
from sla_operator.domain.durations import format_duration
from sla_operator.domain.health import EndpointHealth, service_health
from sla_operator.domain.incidents import Action, Situation, decide
from sla_operator.domain.intervals import Interval, intersect, subtract, total_seconds, union
from sla_operator.domain.location_reports import location_entries
from sla_operator.domain.model import Endpoint, Impact, Incident, MaintenanceWindow, State
from sla_operator.domain.periods import period_at, period_label, previous_periods
from sla_operator.domain.records import format_time, incident_status
from sla_operator.domain.render import (
    Condition,
    agreement_conditions,
    conditions,
    daily_runs,
    day_entry,
    endpoint_entry,
    history_entry,
    intervals_list,
    period_dict,
)
from sla_operator.domain.schedule import active_and_next, maintenance_intervals
from sla_operator.domain.support import SupportRequest
from sla_operator.engine.runtime import NEW_HEALTH, AgreementRuntime
from sla_operator.engine.support import support_history, support_statuses, with_support
from sla_operator.store.base import Key

HISTORY_KEEP = 13
DAILY_DAYS = 90
UNMONITORED_RETENTION = timedelta(days=400)
# How far back the counters look for time not counted yet: records dated back further than
# this (a person's late edit of last week) change the figures, not the counters.
COUNTED_LOOKBACK = timedelta(days=1)


@dataclass(frozen=True)
class Evaluation:
    actions: list[Action]
    status: dict[str, Any]
    signature: tuple[object, ...]  # what makes a status write urgent when it changes
    incident_status: dict[Key, dict[str, Any]]
    support_status: dict[Key, dict[str, Any]] = field(default_factory=dict)


Occurrences = Callable[[MaintenanceWindow, Interval], list[Interval]]
"""A window's maintenance inside some bounds (maintenance_intervals, or a memo of it)."""


def scheduled_maintenance(windows: Sequence[MaintenanceWindow], bounds: Interval,
                          occurrences: Occurrences = maintenance_intervals) -> list[Interval]:
    return union(chain.from_iterable(occurrences(w, bounds) for w in windows))


def evaluate_agreement(runtime: AgreementRuntime, incidents: Sequence[Incident],
                       windows: Sequence[MaintenanceWindow], now: datetime,
                       occurrences: Occurrences = maintenance_intervals, *,
                       requests: Sequence[SupportRequest] = ()) -> Evaluation:
    agreement = runtime.agreement
    runtime.changes += 1  # first: an evaluation that fails half-way may have changed some
    period = period_at(agreement.window, now)
    bounds = Interval(min(period.start, now - timedelta(days=DAILY_DAYS + 1)), max(period.end, now))
    maintenance = scheduled_maintenance(windows, bounds, occurrences)
    maintenance_active = any(i.contains(now) for i in maintenance)
    runtime.decide_by_quorum(now)
    unmonitored = _track_monitoring(runtime, now)
    # Every record an agreement ever had stays in the store; the running figures (period, 90
    # days, counters) only need those that reach into them. Closed periods are frozen already.
    recent = [i for i in incidents if i.is_open or i.interval(now).end >= bounds.start]
    inputs = AccountingInput(agreement.objective, agreement.created_at, maintenance,
                             recent, unmonitored)
    figures = compute_period(inputs, period, now, period_label(agreement.window, period))
    service = service_health(agreement, runtime.healths)
    exhausted = figures.budget_total_seconds > 0 and figures.budget_remaining_seconds <= 0
    actions = decide(Situation(agreement, service, runtime.healths, maintenance_active, exhausted,
                               period.start, now, maintenance), incidents)
    state = State.MAINTENANCE if maintenance_active else service.state
    _count(runtime, inputs, now)
    runtime.state, runtime.maintenance_active = state, maintenance_active
    runtime.availability, runtime.figures = figures.availability, figures
    runtime.budget = (figures.budget_total_seconds, figures.budget_remaining_seconds,
                      figures.budget_remaining_ratio)
    runtime.last_evaluated = now
    _refresh_history(runtime, windows, incidents, now, unmonitored, occurrences)
    support_history(agreement, runtime.history, requests, now, HISTORY_KEEP)
    _refresh_daily(runtime, inputs, now)
    wanted = agreement_conditions(agreement, state, figures, runtime.rejection,
                                  runtime.store_error)
    runtime.conditions = conditions(runtime.conditions, wanted, agreement.generation, now)
    open_names = sorted(i.name for i in incidents if i.is_open)
    runtime.open_incidents = bool(open_names)
    status = {
        "observedGeneration": agreement.generation,
        "state": state.value,
        "message": _message(runtime, state),
        "lastEvaluated": format_time(now),
        "conditions": runtime.conditions,
        "currentPeriod": with_support(period_dict(figures), agreement, requests, period, now),
        "endpoints": _endpoint_entries(runtime),
        "openIncidents": open_names,
        "history": [runtime.history[k] for k in sorted(runtime.history)][-HISTORY_KEEP:],
        "daily": runtime.daily_stored,
        "unmonitored": intervals_list(unmonitored),
    }
    runtime.current_period = status["currentPeriod"]
    healths = runtime.healths
    signature = (state, tuple((n, healths[n].state) for n in runtime.sorted_health_names()),
                 tuple(open_names), tuple(c["status"] for c in runtime.conditions))
    return Evaluation(actions, status, signature,
                      _incident_statuses(runtime, incidents, maintenance, unmonitored,
                                         figures, now),
                      support_statuses(agreement, runtime.support, requests, runtime.started, now))


def _endpoint_entries(runtime: AgreementRuntime) -> list[dict[str, Any]]:
    """Each endpoint's status entry; one whose health is the same object as at the last
    evaluation keeps its entry (a health is replaced, never changed, by each probe). The
    record of entries is updated in place: only endpoints probed since make anything."""
    known_entries = runtime.endpoint_entries
    healths = runtime.healths
    endpoints = runtime.agreement.endpoints
    located = runtime.probing is not None  # each location's view too
    entries = []
    for endpoint in endpoints:
        name, dependency = endpoint.name, endpoint.dependency
        health = healths.get(name) or NEW_HEALTH
        known = known_entries.get(name)
        if known is not None and known[0] is health and known[1] == dependency:
            entry = known[2]
        else:
            entry = endpoint_entry(name, dependency, health, endpoint.discovered)
            known_entries[name] = (health, dependency, entry)
        if located:
            locations = location_entries(runtime.locations.get(name, {}))
            if entry.get("locations") != locations:
                entry = {**entry, "locations": locations}
                known_entries[name] = (health, dependency, entry)
        entries.append(entry)
    if len(known_entries) > len(entries):  # endpoints a new spec removed
        current = {e.name for e in endpoints}
        for name in [n for n in known_entries if n not in current]:
            del known_entries[name]
    return entries


def _message(runtime: AgreementRuntime, state: State) -> str:
    """What the state rests on: the failing or slow own endpoints, else how many answer;
    a failing dependency is named apart, as not counting against the agreement."""
    healths = runtime.healths
    own: list[str] = []
    third_party: list[str] = []
    answering = unprobed = 0
    for endpoint in runtime.agreement.endpoints:
        health = healths.get(endpoint.name)
        text = _endpoint_trouble(endpoint, health) if health is not None else None
        if text is not None:
            (third_party if endpoint.dependency else own).append(text)
        elif not endpoint.dependency:
            if health is None or health.state is State.UNKNOWN:
                unprobed += 1
            elif health.state is State.UP or health.state is State.DEGRADED:
                answering += 1
    if own:
        message = f"{state.value}: " + "; ".join(own)
    elif state is State.UNKNOWN:
        message = "waiting for the first probe results"
    else:
        message = f"{state.value}: {answering} endpoint(s) answering"
        if unprobed:
            message += f", {unprobed} not probed yet"
    if third_party:
        message += "; third party (not counted against the agreement): " + "; ".join(third_party)
    return message


def _endpoint_trouble(endpoint: Endpoint, health: EndpointHealth) -> str | None:
    """``name: what is wrong`` for a Down, failing or slow endpoint; None when it is fine."""
    last = health.last
    if last is None:
        return None
    if health.state is State.DOWN:
        return f"{endpoint.name}: {last.message}"
    if health.state is State.UNKNOWN and health.consecutive_failures:
        return (f"{endpoint.name}: {last.message} ({health.consecutive_failures} of "
                f"{endpoint.failure_threshold} failures before Down)")
    if health.state is State.DEGRADED and endpoint.degraded_latency is not None:
        return (f"{endpoint.name}: {round(last.latency_seconds * 1000)}ms, slower than "
                f"degradedLatency {format_duration(endpoint.degraded_latency)} ({last.message})")
    return None


def _track_monitoring(runtime: AgreementRuntime, now: datetime) -> tuple[Interval, ...]:
    """Time with no fresh probe result (longer than two intervals) is unmonitored, and so is
    the time before an own endpoint's first result: until then nothing says whether the
    service was available, so none of it is eligible (a new agreement is "no data", not 100%).

    Returns the unmonitored time as of ``now``: the recorded gaps and, while no result has
    come yet, the time since ``no_data_since`` (recorded once the first result says where
    it ends: a probe that started before this evaluation may still be answering)."""
    own = runtime.agreement.own_endpoints
    longest = max((e.interval for e in own), default=timedelta(seconds=30))
    reference = runtime.newest_probe_time() or runtime.started
    if now - reference > 2 * longest:
        runtime.add_unmonitored(Interval(reference, now))
    cutoff = now - UNMONITORED_RETENTION
    runtime.unmonitored = [i for i in runtime.unmonitored if i.end > cutoff]
    since = runtime.no_data_since
    if since is None:
        return tuple(runtime.unmonitored)
    healths = runtime.healths
    first = runtime.first_result
    # A state a restart carried over (no result of this process yet): known from the start.
    carried = any((h := healths.get(e.name)) is not None and h.last is None
                  and h.state is not State.UNKNOWN for e in own)
    if first is None and not carried:
        return tuple(union([*runtime.unmonitored, Interval(since, max(since, now))]))
    if first is not None and first > since and not carried:
        runtime.add_unmonitored(Interval(since, first))
    runtime.no_data_since = runtime.first_result = None
    return tuple(runtime.unmonitored)


def _count(runtime: AgreementRuntime, inputs: AccountingInput, now: datetime) -> None:
    """Feed the counters behind burn-rate alerts: each instant of downtime and eligible time
    counts once, whenever it becomes known.

    An incident dated back to its first failed probe is counted in full, whatever the
    agreement's window (a rolling window's elapsed time does not grow). Time that leaves the
    figures (an exclusion added later, a record briefly unreadable) leaves the counters where
    they are, and is not counted again when it comes back. The counters start with the process.
    """
    span = Interval(now - COUNTED_LOOKBACK, now)
    downtime, eligible = counted_time(inputs, span, now)
    if runtime.counted is not None:
        counted_downtime, counted_eligible = runtime.counted
        runtime.downtime_total += total_seconds(subtract(downtime, counted_downtime))
        runtime.eligible_total += total_seconds(subtract(eligible, counted_eligible))
        downtime = union([*counted_downtime, *downtime])
        eligible = union([*counted_eligible, *eligible])
    runtime.counted = (intersect(downtime, [span]), intersect(eligible, [span]))


def _refresh_history(runtime: AgreementRuntime, windows: Sequence[MaintenanceWindow],
                     incidents: Sequence[Incident], now: datetime,
                     unmonitored: Sequence[Interval],
                     occurrences: Occurrences = maintenance_intervals) -> None:
    """Freeze each closed period once; after a lost status, rebuild it from the records."""
    agreement = runtime.agreement
    _credit_history(runtime)
    created = agreement.created_at
    closed = [p for p in previous_periods(agreement.window, now, HISTORY_KEEP)
              if created is None or p.end > created]
    if all(period_label(agreement.window, p) in runtime.history for p in closed):
        return
    bounds = Interval(closed[0].start, closed[-1].end)
    inputs = AccountingInput(agreement.objective, created,
                             scheduled_maintenance(windows, bounds, occurrences),
                             incidents, tuple(unmonitored))
    for figures in compute_history(inputs, agreement.window, now, HISTORY_KEEP):
        runtime.history.setdefault(figures.label, history_entry(figures, agreement.credits))
    for label in sorted(runtime.history)[:-HISTORY_KEEP]:
        del runtime.history[label]


def _credit_history(runtime: AgreementRuntime) -> None:
    """Each frozen period's credit under the agreement's tiers: entries taken back from a
    status written before the tiers (or before they changed) get theirs. An entry is replaced,
    never changed in place: readers know an entry by its identity."""
    credits = runtime.agreement.credits
    for label, entry in runtime.history.items():
        wanted = credit_for_text(credits, entry.get("availability"))
        if entry.get("creditPercent") != wanted:
            runtime.history[label] = {**entry, "creditPercent": wanted}


def _refresh_daily(runtime: AgreementRuntime, inputs: AccountingInput, now: datetime) -> None:
    """All 90 days when the records changed or the day turned; otherwise only today."""
    zone = runtime.agreement.window.time_zone
    key = (now.astimezone(ZoneInfo(zone)).date(), len(inputs.incidents))
    if runtime.daily_key != key or not runtime.daily:
        days = compute_days(inputs, zone, now, DAILY_DAYS)
        runtime.daily = [day_entry(d) for d in days]
        runtime.daily_stored = daily_runs(runtime.daily)
        runtime.days = tuple(days)
        runtime.daily_key = key
    else:
        today = compute_days(inputs, zone, now, 1)
        entry = day_entry(today[-1])
        if entry != runtime.daily[-1]:
            runtime.daily[-1] = entry
            runtime.daily_stored = daily_runs(runtime.daily)
        # A new tuple, never a changed one: a published snapshot keeps the days it was given.
        # Unchanged figures keep the old tuple, so the status page sees nothing new to render.
        if not runtime.days or runtime.days[-1] != today[-1]:
            runtime.days = (*runtime.days[:-1], today[-1])


def _incident_statuses(runtime: AgreementRuntime, incidents: Sequence[Incident],
                       maintenance: Sequence[Interval], unmonitored: Sequence[Interval],
                       figures: PeriodFigures, now: datetime) -> dict[Key, dict[str, Any]]:
    agreement = runtime.agreement
    recent = now - timedelta(days=DAILY_DAYS)
    dependency_down = union(i.interval(now) for i in incidents if i.dependency)
    result = {}
    late: set[str] = set()
    for incident in incidents:
        if not incident.is_open and incident.resolved_at is not None and incident.resolved_at < recent:
            continue
        counted = 0.0
        if incident.impact is Impact.DOWNTIME and not incident.dependency and incident.exclusion is None:
            left = subtract([incident.interval(now)],
                            [*maintenance, *dependency_down, *unmonitored])
            counted = total_seconds(left)
        status = incident_status(incident, agreement.support_response, counted, now)
        if status["responseBreached"]:
            late.add(incident.name)
        result[incident.key] = status
    _count_breaches(runtime, incidents, late)
    return result


def _count_breaches(runtime: AgreementRuntime, incidents: Sequence[Incident],
                    late: set[str]) -> None:
    """sla_incident_response_breached_total counts responses this process saw go late.

    Like any counter it starts with the process: incidents already late at its first
    evaluation are the baseline. Each is counted once, under its severity at that moment."""
    if runtime.late_at_start is None:
        runtime.late_at_start = set(late)
        return
    severities = {i.name: i.severity.value for i in incidents}
    for name in late - runtime.late_at_start:
        runtime.breached.setdefault(name, severities[name])


def maintenance_status(window: MaintenanceWindow, previous: dict[str, Any] | None,
                       now: datetime, rejection: str | None = None) -> dict[str, Any]:
    active, upcoming = active_and_next(window, now)
    ready = Condition("Ready", True, "Scheduled",
                      "active now" if active else
                      (f"next at {format_time(upcoming.start)}" if upcoming else "no future occurrence"))
    if rejection:
        ready = Condition("Ready", False, "InvalidSpec",
                          f"{rejection} (the last valid version stays in effect)")
    return {
        "observedGeneration": window.generation,
        "active": active is not None,
        "currentStart": format_time(active.start) if active else None,
        "currentEnd": format_time(active.end) if active else None,
        "nextStart": format_time(upcoming.start) if upcoming else None,
        "nextEnd": format_time(upcoming.end) if upcoming else None,
        "conditions": conditions((previous or {}).get("conditions") or [], [ready],
                                 window.generation, now),
    }
