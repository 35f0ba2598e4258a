"""Mutable per-agreement state the engine keeps in memory between evaluations."""

from __future__ import annotations

import bisect
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sla_operator.domain.accounting import DayFigures, PeriodFigures
from sla_operator.domain.failure_reasons import FAILURE_REASONS, REASON_INDEX
from sla_operator.domain.health import UNPROBED, EndpointHealth, observe
from sla_operator.domain.intervals import Interval, union
from sla_operator.domain.model import Agreement, Endpoint, ProbeResult, Probing, State
from sla_operator.domain.published import Published
from sla_operator.domain.quorum import DEFAULT_LOCATION
from sla_operator.domain.views import AgreementView, ClosedPeriodView, Dissent
from sla_operator.engine.locations import Disagreements, Heartbeats, decided_health, seen_until
from sla_operator.engine.support import SupportCounts

NEW_HEALTH = UNPROBED  # frozen: one for every endpoint not probed yet

# Probe latency buckets (seconds), shared by every endpoint's histogram.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


@dataclass
class ProbeStats:
    """Counters behind sla_probes_total, sla_probe_failures_total and
    sla_probe_duration_seconds for one endpoint."""

    successes: int = 0
    failures: int = 0
    bucket_counts: list[int] = field(default_factory=lambda: [0] * (len(LATENCY_BUCKETS) + 1))
    latency_sum: float = 0.0
    failures_by_reason: list[int] = field(default_factory=lambda: [0] * len(FAILURE_REASONS))
    """Failures per reason, in the order of FAILURE_REASONS (a failure without a reason, only
    ever made by hand, is counted in ``failures`` alone)."""

    def record(self, result: ProbeResult) -> None:
        if result.ok:
            self.successes += 1
        else:
            self.failures += 1
            if result.reason is not None:
                self.failures_by_reason[REASON_INDEX[result.reason]] += 1
        self.bucket_counts[bisect.bisect_left(LATENCY_BUCKETS, result.latency_seconds)] += 1
        self.latency_sum += result.latency_seconds


@dataclass
class AgreementRuntime:
    agreement: Agreement
    started: datetime
    healths: dict[str, EndpointHealth] = field(default_factory=dict)
    """Each endpoint's health as the agreement counts it: the one location's, or with
    ``spec.probing`` what a quorum of ``locations`` sees."""
    location: str = DEFAULT_LOCATION  # where this process's own probes run
    located: bool = False
    """Run with ``--location``: other locations' reports count, by quorum, with or without
    ``spec.probing`` (see ``probing``)."""
    locations: dict[str, dict[str, EndpointHealth]] = field(default_factory=dict)
    """Deciding by quorum: endpoint -> location -> what that location sees."""
    heartbeats: Heartbeats = field(default_factory=dict)  # the engine's, shared
    disagreements: Disagreements = field(default_factory=Disagreements)
    dissent: Dissent | None = None  # as of ``decide_by_quorum``: what a minority sees
    probe_stats: dict[str, ProbeStats] = field(default_factory=dict)
    unmonitored: list[Interval] = field(default_factory=list)
    history: dict[str, dict[str, Any]] = field(default_factory=dict)  # label -> frozen entry
    daily: list[dict[str, Any]] = field(default_factory=list)  # one entry per day
    daily_stored: list[dict[str, Any]] = field(default_factory=list)  # as runs (daily_runs)
    daily_key: tuple[object, ...] = ()
    conditions: list[dict[str, Any]] = field(default_factory=list)
    state: State = State.UNKNOWN
    open_incidents: bool = False  # as of the last evaluation
    warm_until: datetime | None = None  # restored after a restart: see ``warming``
    carried: set[str] = field(default_factory=set)  # endpoints whose state a restart carried over
    dirty: bool = True  # a probe changed an endpoint's state: evaluate soon
    last_evaluated: datetime | None = None
    last_written: dict[str, Any] | None = None
    last_written_at: datetime | None = None
    partial_writes: int = 0  # status writes since the last whole one (see status_patch)
    last_signature: tuple[object, ...] = ()
    refresh_at: datetime | None = None  # the next routine status write, at this object's phase
    write_pending: bool = False  # a state change not written yet (cap, pause or failure)
    held_back: bool = False  # the pending write was counted as deferred already
    status_failures: int = 0  # status writes failed in a row (for the back-off)
    downtime_total: float = 0.0  # counters: seconds since this process started
    eligible_total: float = 0.0
    # Recent downtime and eligible time already in the counters (None until the first count).
    counted: tuple[list[Interval], list[Interval]] | None = None
    current_period: dict[str, Any] = field(default_factory=dict)
    budget: tuple[float, float, float] = (0.0, 0.0, 1.0)  # total, remaining, ratio
    availability: float = 1.0
    figures: PeriodFigures | None = None  # the current period as numbers, for the snapshot
    days: tuple[DayFigures, ...] = ()  # the figures behind ``daily``, oldest first
    maintenance_active: bool = False
    rejection: str | None = None  # why the newest spec was refused (the previous one still runs)
    store_error: str | None = None  # why an incident could not be recorded this round
    retry_at: datetime | None = None  # after a failure: not evaluated again before this
    write_failures: int = 0  # incident writes failed in a row (for the back-off)
    evaluation_failed: bool = False  # the last evaluation raised (see Engine.last_round)
    breached: dict[str, str] = field(default_factory=dict)  # incident -> severity when it went late
    late_at_start: set[str] | None = None  # incidents already late at the first evaluation
    support: SupportCounts = field(default_factory=SupportCounts)  # support requests seen, late
    restore_problems: str | None = None  # what was wrong in the status read back (for an Event)
    seen_status: object = None  # the status as last delivered by the watch (a standby shows it)
    published: Published | None = None  # ``seen_status`` read, once per new status
    published_from: object = None  # the status ``published`` was read from
    changes: int = 0
    """Bumped wherever something the snapshot shows of this agreement changes (a probe, an
    evaluation, a new spec): while it stands still, the last view is still true."""
    probe_changes: int = 0
    """The part of ``changes`` that were probe results (their views are the only news)."""
    observed: set[str] = field(default_factory=set)
    """Endpoints with a probe result since ``view`` was made: only their views are made again."""
    view: AgreementView | None = None
    """The last AgreementView made of this runtime (see ``engine.snapshot``), with the
    ``changes`` and open-incident counts it was made at."""
    view_made_at: tuple[int, object] = (-1, None)
    view_probe_changes: int = 0  # ``probe_changes`` when ``view`` was made
    last_closed: tuple[object, ClosedPeriodView | None] = (None, None)
    """The newest ``history`` entry the view's ``last_closed`` was made from, and that view."""
    endpoint_entries: dict[str, tuple[EndpointHealth, bool, dict[str, Any]]] = field(
        default_factory=dict)
    """Each endpoint's status entry, with the health and dependency flag it was made from."""
    health_names: tuple[object, int, tuple[str, ...]] = (None, 0, ())
    """``healths``, its length and its names sorted (see ``sorted_health_names``)."""
    no_data_since: datetime | None = None
    """Since when no own endpoint has had a probe result (or a state a restart carried over):
    that time says nothing of the service and is unmonitored. None once one has."""
    first_result: datetime | None = None
    """The earliest own probe result since ``no_data_since`` (where that unmonitored time ends)."""
    _newest_probe: datetime | None = field(default=None, repr=False)
    _newest_known: bool = field(default=False, repr=False)  # ``_newest_probe`` is up to date
    _quorum_seen: datetime | None = field(default=None, repr=False)  # see ``decide_by_quorum``
    _endpoints: dict[str, Endpoint] = field(default_factory=dict, repr=False)
    _positions: dict[str, int] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        # An agreement never evaluated (its status has no lastEvaluated) has had no probe
        # result since it was created: a moment before it reached the engine, usually.
        created = self.agreement.created_at
        evaluated = isinstance(self.seen_status, Mapping) and self.seen_status.get("lastEvaluated")
        self.no_data_since = (created if created is not None and created < self.started
                              and not evaluated else self.started)
        self._endpoints = {e.name: e for e in self.agreement.endpoints}
        self._positions = {e.name: i for i, e in enumerate(self.agreement.endpoints)}

    @property
    def probing(self) -> Probing | None:
        """How locations decide: ``spec.probing``, or by default every location that reports
        (run with ``--location``); None: the one location's results are the endpoint's."""
        return self.agreement.probing or (Probing() if self.located else None)

    def position(self, name: str) -> int | None:
        """Where endpoint ``name`` is in the agreement's list (and its snapshot view's)."""
        return self._positions.get(name)

    def probes(self, endpoint: Endpoint) -> bool:
        """Whether ``endpoint`` is one of the agreement's as it is now (not an older version)."""
        known = self._endpoints.get(endpoint.name)
        return known is endpoint or (known is not None and known == endpoint)

    def observe(self, endpoint: Endpoint, result: ProbeResult) -> None:
        """A result of this process's own probe: through its location's state machine into
        the intake."""
        # Once per probe: nothing is made here that is not kept.
        name = endpoint.name
        if self.probing is None:
            own = self.healths.get(name) or NEW_HEALTH
        else:
            own = self.locations.get(name, {}).get(self.location) or NEW_HEALTH
        stats = self.probe_stats.get(name)
        if stats is None:
            stats = self.probe_stats[name] = ProbeStats()
        stats.record(result)
        self.take(endpoint, self.location, observe(own, endpoint, result))

    def take(self, endpoint: Endpoint, location: str, seen: EndpointHealth) -> None:
        """The one intake of what a location sees of an endpoint (``seen.last`` is its newest
        result): alone it is the endpoint's health; deciding by quorum, one of the views the
        quorum decides on."""
        name = endpoint.name
        before = self.healths.get(name) or NEW_HEALTH
        result = seen.last
        assert result is not None, "a location's view comes with its newest result"
        probing = self.probing
        if probing is None:
            after = seen
        else:
            views = self.locations.setdefault(name, {})
            views[location] = seen
            after, _ = decided_health(endpoint, views, probing, result.time, self.heartbeats)
            # Until a quorum of locations sees a state, nothing is known of the service.
            result = after.last if after.state is not State.UNKNOWN else None
        self.healths[name] = after
        if result is not None:
            self._note_result(endpoint, before, result.time)
        self.changes += 1
        self.probe_changes += 1
        self.observed.add(name)
        self._note_change(before, after)

    def _note_result(self, endpoint: Endpoint, before: EndpointHealth, time: datetime) -> None:
        """An own endpoint's newest result, and the first one since no data."""
        if endpoint.dependency:
            return
        if self._newest_known and (self._newest_probe is None or time > self._newest_probe):
            self._newest_probe = time
        if self.no_data_since is not None:
            if before.last is None and before.state is not State.UNKNOWN:
                # A state a restart carried over: known since the start, nothing unmonitored.
                self.no_data_since = self.first_result = None
            elif self.first_result is None or time < self.first_result:
                self.first_result = time

    def _note_change(self, before: EndpointHealth, after: EndpointHealth) -> None:
        # One more endpoint found Up (its first probe) of a service already Up with nothing
        # open is no reason: no decision can follow from it, and the next routine evaluation
        # shows it. At start-up that is every probe of the first interval, and a thousand
        # agreements evaluated every round for it took the core.
        first_up_of_many = (before.state is State.UNKNOWN and after.state is State.UP
                            and self.state is State.UP and not self.open_incidents)
        # A first failure of an endpoint with no state yet keeps a service from being Up
        # (see service_health): a reason, though the endpoint's own state does not change.
        first_failure = (after.state is State.UNKNOWN and after.consecutive_failures == 1
                         and self.state is not State.UNKNOWN)
        if ((after.state is not before.state or after.consecutive_slow != before.consecutive_slow
                or first_failure) and not first_up_of_many):
            self.dirty = True

    def warming(self, now: datetime) -> bool:
        """Whether the first evaluation after a restart should still wait: until every own
        endpoint has been probed once or had its state carried over, or ``warm_until``."""
        if self.warm_until is None:
            return False
        if now >= self.warm_until or all(
                (health := self.healths.get(e.name)) is not None
                and (health.last is not None or e.name in self.carried)
                for e in self.agreement.own_endpoints):
            self.warm_until = None
            return False
        return True

    def replace_agreement(self, agreement: Agreement) -> None:
        """Keep the health of endpoints whose probe did not change; forget removed ones."""
        old = {e.name: e for e in self.agreement.endpoints}
        kept = {e.name for e in agreement.endpoints if old.get(e.name) == e}
        self.healths = {n: h for n, h in self.healths.items() if n in kept}
        self.locations = {n: v for n, v in self.locations.items() if n in kept}
        if (agreement.probing is None) != (self.agreement.probing is None) and not self.located:
            # One location's health is its own view, and the other way round.
            if agreement.probing is None:
                self.healths = {n: v[self.location] for n, v in self.locations.items()
                                if self.location in v}
                self.locations = {}
            else:
                self.locations = {n: {self.location: h} for n, h in self.healths.items()
                                  if h.last is not None}
        if self.no_data_since is None and not any(
                e.name in self.healths for e in agreement.own_endpoints):
            # Every own endpoint's probe changed: nothing is known of the new ones until
            # their first results (from the last evaluation, the last time the old were read).
            self.no_data_since = self.last_evaluated or self.started
        self.probe_stats = {n: s for n, s in self.probe_stats.items()
                            if n in {e.name for e in agreement.endpoints}}
        self.agreement = agreement
        self._endpoints = {e.name: e for e in agreement.endpoints}
        self._positions = {e.name: i for i, e in enumerate(agreement.endpoints)}
        self.changes += 1
        self._newest_known = False  # removed endpoints' results no longer count
        self.view, self.view_made_at = None, (-1, None)  # other endpoints: made afresh
        self.dirty = True

    def add_unmonitored(self, gap: Interval) -> None:
        self.unmonitored = union([*self.unmonitored, gap])

    def newest_probe_time(self) -> datetime | None:
        """The start of the newest probe result of an own endpoint (kept up to date by
        ``observe``; looked for again after a new spec); deciding by quorum, until when a
        quorum of locations was known to see one (as of ``decide_by_quorum``)."""
        if self.probing is not None:
            return self._quorum_seen
        if not self._newest_known:
            times = [h.last.time for e in self.agreement.own_endpoints
                     if (h := self.healths.get(e.name)) is not None and h.last is not None]
            self._newest_probe, self._newest_known = max(times, default=None), True
        return self._newest_probe

    def decide_by_quorum(self, now: datetime) -> None:
        """Deciding by quorum: each endpoint's health again as of ``now`` (locations turn
        stale with time, not only with results). A health that stays the same stays the
        same object (its status entry is kept by identity)."""
        probing = self.probing
        if probing is None:
            return
        # Until when a quorum of locations was known to see an own endpoint.
        self._quorum_seen = max((t for e in self.agreement.own_endpoints
                                 if (t := seen_until(self.locations.get(e.name, {}), probing,
                                                     self.heartbeats, now)) is not None),
                                default=None)
        self.dissent = None
        for endpoint in self.agreement.endpoints:
            views = self.locations.get(endpoint.name)
            if views:
                decided, disagreeing = decided_health(endpoint, views, probing, now,
                                                      self.heartbeats)
                self.disagreements.note(endpoint.name, disagreeing, now)
                down = sum(views[location].state is State.DOWN for location in disagreeing)
                if down and not endpoint.dependency and (
                        self.dissent is None or down > self.dissent.seeing):
                    self.dissent = Dissent(State.DOWN, down, len(views))
                if decided != self.healths.get(endpoint.name):
                    self.healths[endpoint.name] = decided

    def sorted_health_names(self) -> tuple[str, ...]:
        """The names in ``healths``, sorted. Names are only added to it (by a probe, or a
        restored streak) until a new spec replaces it: the same dict at the same length holds
        the same names."""
        held, length, names = self.health_names
        if held is not self.healths or length != len(self.healths):
            names = tuple(sorted(self.healths))
            self.health_names = (self.healths, len(self.healths), names)
        return names
