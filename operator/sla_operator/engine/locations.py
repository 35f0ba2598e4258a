"""An endpoint's health as a quorum of locations sees it (domain/quorum.py), in the shape the
rest of the engine reads (an EndpointHealth): service state, incidents, messages and the
status entry then work the same for one location and for several.

A location's view is as fresh as its newest result, or, for another location's report, as
its Lease (the location's heartbeat) says it is still there: a report is written only when
the view changes, so its own times say nothing of whether it still holds."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sla_operator.domain.health import EndpointHealth
from sla_operator.domain.location_reports import Heartbeat
from sla_operator.domain.model import Endpoint, Probing, State
from sla_operator.domain.quorum import LocationView, decide, quorum_seen_until

FRESH_INTERVALS = 2
"""A location's view is fresh for this many probe intervals (as one location's is)."""

Heartbeats = Mapping[str, Heartbeat]
"""The locations' Leases as last read, by location."""


def _counted(views: Mapping[str, EndpointHealth], probing: Probing, heartbeats: Heartbeats,
             now: datetime) -> list[tuple[str, EndpointHealth, datetime]]:
    """The views of the locations that count for the agreement, each with the newest moment
    it is known to hold."""
    counted = []
    for location, health in views.items():
        if health.last is None or (probing.locations and location not in probing.locations):
            continue
        heartbeat = heartbeats.get(location)
        seen = health.last.time if heartbeat is None else max(health.last.time,
                                                              heartbeat.seen(now))
        counted.append((location, health, seen))
    return counted


def decided_health(endpoint: Endpoint, views: Mapping[str, EndpointHealth], probing: Probing,
                   now: datetime, heartbeats: Heartbeats) -> tuple[EndpointHealth, set[str]]:
    """The endpoint's health by quorum as of ``now``: its state and since, and as its last
    result the newest of a location that sees that state (what the message shows); with the
    fresh locations that see another state than the one decided."""
    counted = _counted(views, probing, heartbeats, now)
    fresh_after = now - FRESH_INTERVALS * endpoint.interval
    decision = decide((LocationView(h.state, h.since, seen >= fresh_after)
                       for _, h, seen in counted), probing.quorum_of(len(counted)))
    results = [h.last for _, h, _ in counted if h.last is not None]
    agreeing = [h.last for _, h, _ in counted if h.last is not None and h.state is decision.state]
    last = max(agreeing or results, key=lambda r: r.time, default=None)
    disagreeing = set()
    if decision.state is not State.UNKNOWN:
        disagreeing = {location for location, h, seen in counted if seen >= fresh_after
                       and h.state is not State.UNKNOWN and h.state is not decision.state}
    return EndpointHealth(state=decision.state, since=decision.since, last=last), disagreeing


def seen_until(views: Mapping[str, EndpointHealth], probing: Probing, heartbeats: Heartbeats,
               now: datetime) -> datetime | None:
    """Until when a quorum of the counted locations was known to see the endpoint."""
    counted = _counted(views, probing, heartbeats, now)
    return quorum_seen_until((seen for _, _, seen in counted), probing.quorum_of(len(counted)))


@dataclass
class Disagreements:
    """Since when each location has seen an endpoint otherwise than its quorum decided.

    Never downtime nor an incident: a location that disagrees for long is told (a Warning
    Event, once) and shown (sla_location_disagreement), since it is a location, not the
    service, that is likely wrong."""

    since: dict[tuple[str, str], datetime] = field(default_factory=dict)
    """(endpoint, location) -> since when it disagrees."""
    told: set[tuple[str, str]] = field(default_factory=set)

    def note(self, endpoint: str, disagreeing: set[str], now: datetime) -> None:
        for key in [k for k in self.since if k[0] == endpoint and k[1] not in disagreeing]:
            del self.since[key]
            self.told.discard(key)
        for location in disagreeing:
            self.since.setdefault((endpoint, location), now)

    def lasting(self, now: datetime, after: timedelta) -> set[str]:
        """The locations that have disagreed for at least ``after`` on some endpoint."""
        return {location for (_, location), since in self.since.items() if now - since >= after}

    def news(self, now: datetime, after: timedelta) -> list[tuple[str, str, datetime]]:
        """(endpoint, location, since) of disagreements that reached ``after`` since the last
        call: each is told once."""
        found = [(endpoint, location, since) for (endpoint, location), since in self.since.items()
                 if now - since >= after and (endpoint, location) not in self.told]
        self.told.update((endpoint, location) for endpoint, location, _ in found)
        return sorted(found)
