"""An endpoint's health as a quorum of locations sees it (domain/quorum.py), in the shape the
rest of the engine reads (an EndpointHealth): service state, incidents, messages and the
status entry then work the same for one location and for several."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from sla_operator.domain.health import EndpointHealth
from sla_operator.domain.model import Endpoint, Probing
from sla_operator.domain.quorum import LocationView, decide, quorum_seen_until

FRESH_INTERVALS = 2
"""A location's result is fresh for this many probe intervals (as one location's is)."""


def counted(views: Mapping[str, EndpointHealth], probing: Probing) -> list[EndpointHealth]:
    """The views of the locations whose results count for the agreement."""
    if not probing.locations:
        return list(views.values())
    return [h for name, h in views.items() if name in probing.locations]


def decided_health(endpoint: Endpoint, views: Mapping[str, EndpointHealth], probing: Probing,
                   now: datetime) -> EndpointHealth:
    """The endpoint's health by quorum as of ``now``: its state and since, and as its last
    result the newest of a location that sees that state (what the message shows)."""
    healths = counted(views, probing)
    fresh_after = now - FRESH_INTERVALS * endpoint.interval
    decision = decide((LocationView(h.state, h.since, h.last is not None
                                    and h.last.time >= fresh_after) for h in healths),
                      probing.quorum_of(len(healths)))
    results = [h.last for h in healths if h.last is not None]
    agreeing = [h.last for h in healths if h.last is not None and h.state is decision.state]
    last = max(agreeing or results, key=lambda r: r.time, default=None)
    return EndpointHealth(state=decision.state, since=decision.since, last=last)


def seen_until(views: Mapping[str, EndpointHealth], probing: Probing) -> datetime | None:
    """Until when a quorum of the counted locations had results (see quorum_seen_until)."""
    healths = counted(views, probing)
    return quorum_seen_until((h.last.time for h in healths if h.last is not None),
                             probing.quorum_of(len(healths)))
