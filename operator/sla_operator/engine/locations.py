"""An endpoint's health as a quorum of locations sees it (domain/quorum.py), in the shape the
rest of the engine reads (an EndpointHealth): service state, incidents, messages and the
status entry then work the same for one location and for several.

A location's view is as fresh as its newest result, or, for another location's report, as
its Lease (the location's heartbeat) says it is still there: a report is written only when
the view changes, so its own times say nothing of whether it still holds."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from sla_operator.domain.health import EndpointHealth
from sla_operator.domain.location_reports import Heartbeat
from sla_operator.domain.model import Endpoint, Probing
from sla_operator.domain.quorum import LocationView, decide, quorum_seen_until

FRESH_INTERVALS = 2
"""A location's view is fresh for this many probe intervals (as one location's is)."""

Heartbeats = Mapping[str, Heartbeat]
"""The locations' Leases as last read, by location."""


def _counted(views: Mapping[str, EndpointHealth], probing: Probing, heartbeats: Heartbeats,
             now: datetime) -> list[tuple[EndpointHealth, datetime]]:
    """The views of the locations that count for the agreement, each with the newest moment
    it is known to hold."""
    counted = []
    for location, health in views.items():
        if health.last is None or (probing.locations and location not in probing.locations):
            continue
        heartbeat = heartbeats.get(location)
        seen = health.last.time if heartbeat is None else max(health.last.time,
                                                              heartbeat.seen(now))
        counted.append((health, seen))
    return counted


def decided_health(endpoint: Endpoint, views: Mapping[str, EndpointHealth], probing: Probing,
                   now: datetime, heartbeats: Heartbeats) -> EndpointHealth:
    """The endpoint's health by quorum as of ``now``: its state and since, and as its last
    result the newest of a location that sees that state (what the message shows)."""
    counted = _counted(views, probing, heartbeats, now)
    fresh_after = now - FRESH_INTERVALS * endpoint.interval
    decision = decide((LocationView(h.state, h.since, seen >= fresh_after) for h, seen in counted),
                      probing.quorum_of(len(counted)))
    results = [h.last for h, _ in counted if h.last is not None]
    agreeing = [h.last for h, _ in counted if h.last is not None and h.state is decision.state]
    last = max(agreeing or results, key=lambda r: r.time, default=None)
    return EndpointHealth(state=decision.state, since=decision.since, last=last)


def seen_until(views: Mapping[str, EndpointHealth], probing: Probing, heartbeats: Heartbeats,
               now: datetime) -> datetime | None:
    """Until when a quorum of the counted locations was known to see the endpoint."""
    counted = _counted(views, probing, heartbeats, now)
    return quorum_seen_until((seen for _, seen in counted), probing.quorum_of(len(counted)))
