"""Endpoint state machines (thresholds) and the service state derived from them."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from sla_operator.domain.model import Agreement, DowntimeWhen, Endpoint, ProbeResult, State


@dataclass(frozen=True)
class EndpointHealth:
    """What the probes of one endpoint say so far.

    ``since`` is when the current state began in probe time: for Down, the first failed probe
    of the streak that tripped the threshold; for Up after Down, the first successful probe of
    the recovery streak. Incidents take their times from here, not from when a threshold tripped.
    """

    state: State = State.UNKNOWN
    since: datetime | None = None
    consecutive_failures: int = 0
    consecutive_successes: int = 0
    failure_streak_start: datetime | None = None
    success_streak_start: datetime | None = None
    consecutive_slow: int = 0
    slow_streak_start: datetime | None = None
    last: ProbeResult | None = None


# Members read once: on Python 3.11 each ``State.X`` costs a descriptor call, and these are
# read for every probe and every endpoint of every evaluation.
_UNKNOWN, _UP, _DOWN, _DEGRADED = State.UNKNOWN, State.UP, State.DOWN, State.DEGRADED

UNPROBED = EndpointHealth()
"""The health of an endpoint with no probe result yet (frozen: one for all)."""


def observe(health: EndpointHealth, endpoint: Endpoint, result: ProbeResult) -> EndpointHealth:
    """The health after one more probe result."""
    if not result.ok:
        failures = health.consecutive_failures + 1
        streak_start = result.time if failures == 1 else health.failure_streak_start
        state, since = health.state, health.since
        if failures >= endpoint.failure_threshold and state is not _DOWN:
            state, since = _DOWN, streak_start
        # Made whole, not by dataclasses.replace: this runs for every probe.
        return EndpointHealth(state=state, since=since, consecutive_failures=failures,
                              consecutive_successes=0, failure_streak_start=streak_start,
                              success_streak_start=health.success_streak_start,
                              consecutive_slow=0, slow_streak_start=None, last=result)

    successes = health.consecutive_successes + 1
    success_start = result.time if successes == 1 else health.success_streak_start
    slow = (endpoint.degraded_latency is not None
            and result.latency_seconds > endpoint.degraded_latency.total_seconds())
    slow_count = health.consecutive_slow + 1 if slow else 0
    slow_start = (result.time if slow_count == 1 else health.slow_streak_start) if slow else None
    state, since = health.state, health.since
    recovered = state is not _DOWN or successes >= endpoint.success_threshold
    if recovered:
        target = _DEGRADED if slow else _UP
        if target is not state:
            # Up after Down dates from the first success of the recovery streak.
            since = success_start if state is _DOWN else result.time
            if target is _DEGRADED and state is not _DOWN:
                since = slow_start
            state = target
    return EndpointHealth(state=state, since=since, consecutive_failures=0,
                          consecutive_successes=successes, failure_streak_start=None,
                          success_streak_start=success_start, consecutive_slow=slow_count,
                          slow_streak_start=slow_start, last=result)


@dataclass(frozen=True)
class ServiceHealth:
    """The service as a whole, before maintenance is taken into account."""

    state: State
    since: datetime | None = None
    down_endpoints: tuple[str, ...] = ()
    degraded_endpoints: tuple[str, ...] = ()
    every_endpoint_down: bool = False


def service_health(agreement: Agreement, healths: Mapping[str, EndpointHealth]) -> ServiceHealth:
    """Down when any / all own endpoints are Down (``downtimeWhen``); dependencies never count.

    With ``any``, an endpoint whose first probes failed (no state yet, its failures short of
    the threshold) keeps the service from being Up or Degraded: it is Unknown until that
    endpoint is Down or answers, never Up just before it turns out Down."""
    # One pass, nothing made per endpoint: this runs at every evaluation, over every endpoint.
    own = agreement.own_endpoints
    known: list[EndpointHealth] = []
    down: list[tuple[str, EndpointHealth]] = []
    degraded: list[tuple[str, EndpointHealth]] = []
    failing_unknown = False
    for endpoint in own:
        health = healths.get(endpoint.name)
        if health is None or health.state is _UNKNOWN:
            if health is not None and health.consecutive_failures:
                failing_unknown = True
            continue
        known.append(health)
        if health.state is _DOWN:
            down.append((endpoint.name, health))
        elif health.state is _DEGRADED:
            degraded.append((endpoint.name, health))
    if not known:
        return ServiceHealth(_UNKNOWN)
    degraded_names = tuple(name for name, _ in degraded)
    every_down = len(down) == len(own)
    any_down = agreement.downtime_when is DowntimeWhen.ANY
    is_down = bool(down) if any_down else every_down
    down_names = tuple(name for name, _ in down)
    if is_down:
        starts = [h.since for _, h in down if h.since is not None]
        pick = min if any_down else max
        return ServiceHealth(_DOWN, pick(starts) if starts else None, down_names,
                             degraded_names, every_down)
    if failing_unknown and any_down:
        return ServiceHealth(_UNKNOWN)
    if degraded or down:
        starts = [h.since for _, h in degraded if h.since is not None]
        return ServiceHealth(_DEGRADED, min(starts) if starts else None, down_names,
                             degraded_names, False)
    recovered = [h.since for h in known if h.since is not None]
    return ServiceHealth(_UP, max(recovered) if recovered else None)
