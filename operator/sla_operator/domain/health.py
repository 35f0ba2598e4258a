"""Endpoint state machines (thresholds) and the service state derived from them."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
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


def observe(health: EndpointHealth, endpoint: Endpoint, result: ProbeResult) -> EndpointHealth:
    """The health after one more probe result."""
    if not result.ok:
        failures = health.consecutive_failures + 1
        streak_start = result.time if failures == 1 else health.failure_streak_start
        state, since = health.state, health.since
        if failures >= endpoint.failure_threshold and state is not State.DOWN:
            state, since = State.DOWN, streak_start
        return replace(health, state=state, since=since, consecutive_failures=failures,
                       consecutive_successes=0, failure_streak_start=streak_start,
                       consecutive_slow=0, slow_streak_start=None, last=result)

    successes = health.consecutive_successes + 1
    success_start = result.time if successes == 1 else health.success_streak_start
    slow = (endpoint.degraded_latency is not None
            and result.latency_seconds > endpoint.degraded_latency.total_seconds())
    slow_count = health.consecutive_slow + 1 if slow else 0
    slow_start = (result.time if slow_count == 1 else health.slow_streak_start) if slow else None
    state, since = health.state, health.since
    recovered = state is not State.DOWN or successes >= endpoint.success_threshold
    if recovered:
        target = State.DEGRADED if slow else State.UP
        if target is not state:
            # Up after Down dates from the first success of the recovery streak.
            since = success_start if state is State.DOWN else result.time
            if target is State.DEGRADED and state is not State.DOWN:
                since = slow_start
            state = target
    return replace(health, state=state, since=since, consecutive_failures=0,
                   consecutive_successes=successes, success_streak_start=success_start,
                   failure_streak_start=None, consecutive_slow=slow_count,
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
    """Down when any / all own endpoints are Down (``downtimeWhen``); dependencies never count."""
    own = [(e.name, healths.get(e.name, EndpointHealth())) for e in agreement.own_endpoints]
    known = [(name, h) for name, h in own if h.state is not State.UNKNOWN]
    if not known:
        return ServiceHealth(State.UNKNOWN)
    down = [(name, h) for name, h in known if h.state is State.DOWN]
    degraded = tuple(name for name, h in known if h.state is State.DEGRADED)
    every_down = len(down) == len(own)
    is_down = bool(down) if agreement.downtime_when is DowntimeWhen.ANY else every_down
    down_names = tuple(name for name, _ in down)
    if is_down:
        starts = [h.since for _, h in down if h.since is not None]
        pick = min if agreement.downtime_when is DowntimeWhen.ANY else max
        return ServiceHealth(State.DOWN, pick(starts) if starts else None, down_names,
                             degraded, every_down)
    if degraded or down:
        starts = [h.since for name, h in known if name in degraded and h.since is not None]
        return ServiceHealth(State.DEGRADED, min(starts) if starts else None, down_names,
                             degraded, False)
    recovered = [h.since for _, h in known if h.since is not None]
    return ServiceHealth(State.UP, max(recovered) if recovered else None)
