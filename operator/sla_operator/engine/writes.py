"""The engine's load on the API server, bounded: one budget for every status write.

A token bucket refilled at ``--max-status-writes-per-second`` pays for each status write
(agreements, windows, incidents). Writes that change something people act on (a new state,
an incident opened or changed, a condition flipped) are offered first in every round;
routine refreshes (``lastEvaluated`` and the running figures) take what is left, each object
at its own phase of the status interval so that they spread evenly instead of coming due in
the same round. Incident records themselves are never held back: they take a token as they
go, so the refreshes after them yield.

When the API server answers 429 (API Priority and Fairness) or 503 with ``Retry-After``,
every write waits that long: APF throttles per priority level, which all of this process's
writes share.
"""

from __future__ import annotations

import logging
import math
import zlib
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from sla_operator.store.base import Key

log = logging.getLogger("sla_operator.engine")
DEFAULT_MAX_STATUS_WRITES_PER_SECOND = 50.0
DEFAULT_STATUS_HEARTBEAT = 300.0


class WriteBudget:
    """A token bucket over the engine's clock; ``rate`` 0 means no cap."""

    def __init__(self, rate: float, burst: float) -> None:
        if rate < 0 or math.isnan(rate):
            raise ValueError(f"max status writes per second must be 0 (no cap) or more, got {rate:g}")
        self.rate = rate
        self.burst = max(1.0, burst)
        self._tokens = self.burst
        self._at: datetime | None = None
        self.paused_until: datetime | None = None
        self._episode_throttles = 0
        self.sent = 0
        """Status writes made (sla_operator_status_writes_total)."""
        self.deferred = 0
        """Status writes held back by the cap or a pause, each counted once
        (sla_operator_status_writes_deferred_total)."""
        self.throttled = 0
        """Answers that asked the operator to wait (sla_operator_api_throttled_total)."""

    @property
    def capped(self) -> bool:
        return self.rate > 0

    def paused(self, now: datetime) -> bool:
        return self.paused_until is not None and now < self.paused_until

    def _refill(self, now: datetime) -> None:
        if self._at is not None and now > self._at:
            elapsed = (now - self._at).total_seconds()
            self._tokens = min(self.burst, self._tokens + elapsed * self.rate)
        if self._at is None or now > self._at:
            self._at = now

    def can_write(self, now: datetime) -> bool:
        """Whether a write may go out now (without taking its token)."""
        if self.paused(now):
            return False
        if not self.capped:
            return True
        self._refill(now)
        return self._tokens >= 1.0

    def take(self, now: datetime, force: bool = False) -> bool:
        """Take a token for one status write; False: not now (the caller keeps it pending).

        ``force`` (the last writes on shutdown) ignores the cap, not a pause."""
        if self.paused(now):
            return False
        if force or not self.capped:
            return True
        self._refill(now)
        if self._tokens < 1.0:
            return False
        self._tokens -= 1.0
        return True

    def charge(self, now: datetime) -> None:
        """A write that is never held back (an incident record) still spends from the budget:
        the routine writes after it wait, so the average stays within the rate."""
        if self.capped:
            self._refill(now)
            self._tokens = max(self._tokens - 1.0, -self.burst)

    def written(self) -> None:
        self.sent += 1
        if self._episode_throttles:
            log.info("API server accepts writes again (after %d throttled answer(s))",
                     self._episode_throttles)
            self._episode_throttles = 0

    def pause(self, now: datetime, seconds: float, reason: str) -> None:
        """The API server asked to wait: no write before ``now + seconds``. Said once per
        episode (until a write succeeds again), not once per refused write."""
        self.throttled += 1
        until = now + timedelta(seconds=seconds)
        if self.paused_until is None or until > self.paused_until:
            self.paused_until = until
        self._episode_throttles += 1
        if self._episode_throttles == 1:
            log.warning("API server asked to slow down (%s): writes paused for %gs, "
                        "state changes go first when they resume", reason, seconds)
        else:
            log.debug("API server asked to slow down again (%s): paused for %gs", reason, seconds)


def refresh_slot(key: Key, after: datetime, interval: float) -> datetime:
    """The first instant at or after ``after`` in ``key``'s own phase of ``interval``.

    The phase is a stable hash of namespace/name, so routine refreshes of many objects fall
    evenly over the interval, whenever they were first written, and come back to their
    phase after a delay."""
    if interval <= 0:
        return after
    phase = zlib.crc32(f"{key[0]}/{key[1]}".encode()) / 2**32 * interval
    slots = math.ceil((after.timestamp() - phase) / interval)
    return datetime.fromtimestamp(phase + slots * interval, UTC)


def heartbeat_due(key: Key, written: datetime, heartbeat: float) -> datetime:
    """When a status last written at ``written`` is due for its heartbeat: at the object's own
    phase of the heartbeat, at least half a heartbeat later. Heartbeats of statuses first
    written together (a start-up) spread over the heartbeat instead of coming due together;
    once in phase, one comes every heartbeat, and at most one and a half after a write made
    for a change."""
    return refresh_slot(key, written + timedelta(seconds=heartbeat / 2), heartbeat)


# A whole status is written at least once in this many writes of one object: a field someone
# else changed since (a person's edit through the status subresource, a previous process's
# last write this one did not see) is set right within that many writes.
WHOLE_STATUS_EVERY = 20


def status_patch(held: Mapping[str, Any] | None, status: Mapping[str, Any]) -> dict[str, Any]:
    """The merge patch that turns ``held`` (the object's status as this process last wrote
    or read it) into ``status``: the top-level fields that differ, and None (which deletes)
    for those no longer there; all of ``status`` when nothing is held.

    A routine refresh changes ``lastEvaluated``, the running figures and the endpoints; the
    90 daily bars, the history and the unmonitored gaps rarely. Sent whole they are most of
    the request, and the API server decodes and merges all of it: at 10 endpoints a status
    is about 14 kB, of which the daily bars are 11 kB. A merge patch replaces a list whole,
    so a field goes whole or not at all."""
    if held is None:
        return dict(status)
    patch = {name: value for name, value in status.items()
             if name not in held or held[name] != value}
    patch.update({name: None for name in held if name not in status})
    return patch


# What moves with time alone in an agreement's status: written with the next change people
# read, or at the heartbeat (``--status-heartbeat``), never for itself.
_MOVING_TOP = frozenset({"lastEvaluated"})
_MOVING_PERIOD = frozenset({"elapsedSeconds", "eligibleSeconds"})
_MOVING_ENDPOINT = frozenset({"lastProbeTime", "latencyMs", "consecutiveSuccesses"})
_MOVING_LOCATION = frozenset({"lastProbeTime"})


def shown_part(status: Mapping[str, Any]) -> dict[str, Any]:
    """``status`` without what moves with time alone: the probe times and latencies of each
    endpoint and location, successes counted, the seconds elapsed and eligible, and
    ``lastEvaluated``. Two statuses whose shown parts are equal tell people the same: the
    same states, messages, availability (to its 4 decimals), downtime, budget, incidents,
    conditions, daily bars and history. Downtime growing while a service is Down is shown."""
    shown = {name: value for name, value in status.items() if name not in _MOVING_TOP}
    period = shown.get("currentPeriod")
    if isinstance(period, Mapping):
        shown["currentPeriod"] = {k: v for k, v in period.items() if k not in _MOVING_PERIOD}
    endpoints = shown.get("endpoints")
    if isinstance(endpoints, list):
        shown["endpoints"] = [_endpoint_shown(entry) for entry in endpoints]
    return shown


def _endpoint_shown(entry: object) -> object:
    if not isinstance(entry, Mapping):
        return entry
    kept = {k: v for k, v in entry.items() if k not in _MOVING_ENDPOINT}
    locations = kept.get("locations")
    if isinstance(locations, list):
        kept["locations"] = [{k: v for k, v in view.items() if k not in _MOVING_LOCATION}
                             if isinstance(view, Mapping) else view for view in locations]
    return kept
