"""An endpoint's state decided by a quorum of locations (API.md, "Probing from several
locations").

Each location sees the endpoint through its own probes and state machine (domain/health.py);
what counts against the agreement is what at least ``quorum`` of the locations with fresh
results agree on. Time when fewer than ``quorum`` locations are fresh is unmonitored: never
downtime, never available. So raising the quorum can only turn downtime into Up or into
unmonitored time, never add any.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sla_operator.domain.model import State

_UNKNOWN, _UP, _DOWN, _DEGRADED = State.UNKNOWN, State.UP, State.DOWN, State.DEGRADED

DEFAULT_LOCATION = "default"
"""The location of ``run`` without ``--location``: the single location, as before locations."""


@dataclass(frozen=True)
class LocationView:
    """What one location says of one endpoint: its state since when, and whether its results
    are fresh (within two probe intervals)."""

    state: State
    since: datetime | None
    fresh: bool


@dataclass(frozen=True)
class QuorumDecision:
    """The endpoint's state by quorum, since when the quorum was reached; Unknown is
    unmonitored time."""

    state: State
    since: datetime | None


def decide(views: Iterable[LocationView], quorum: int) -> QuorumDecision:
    """Down when at least ``quorum`` fresh locations see it Down; Degraded when at least
    ``quorum`` see it Degraded or worse; Up when at least ``quorum`` fresh locations have a
    state and fewer than ``quorum`` see trouble; otherwise Unknown (unmonitored).

    Down and Degraded date from the moment the quorum was reached: the quorum-th earliest
    ``since`` among the locations that see it so. Up dates from the moment trouble lost its
    quorum (see ``_recovered_since``). A fresh location with no state yet (first failures
    short of its threshold) says nothing either way."""
    if quorum < 1:
        raise ValueError(f"quorum {quorum} is not a whole number of 1 or more")
    reporting = [v for v in views if v.fresh and v.state is not _UNKNOWN]
    down = [v for v in reporting if v.state is _DOWN]
    if len(down) >= quorum:
        return QuorumDecision(_DOWN, _quorum_th(down, quorum))
    troubled = [v for v in reporting if v.state is _DOWN or v.state is _DEGRADED]
    if len(troubled) >= quorum:
        return QuorumDecision(_DEGRADED, _quorum_th(troubled, quorum))
    if len(reporting) >= quorum:
        up = [v for v in reporting if v.state is _UP]
        return QuorumDecision(_UP, _recovered_since(up, quorum - len(troubled)))
    return QuorumDecision(_UNKNOWN, None)


def _quorum_th(views: list[LocationView], quorum: int) -> datetime | None:
    """The quorum-th earliest start: from then on, ``quorum`` of these locations saw it."""
    starts = sorted(v.since for v in views if v.since is not None)
    return starts[min(quorum, len(starts)) - 1] if starts else None


def _recovered_since(up: list[LocationView], short: int) -> datetime | None:
    """When trouble last lost its quorum: ``short`` more locations seeing trouble would
    restore it, so it ended at the ``short``-th latest recovery among those Up now."""
    starts = sorted((v.since for v in up if v.since is not None), reverse=True)
    return starts[min(short, len(starts)) - 1] if starts else None


def quorum_seen_until(last_results: Iterable[datetime], quorum: int) -> datetime | None:
    """Until when ``quorum`` locations had results: the quorum-th newest of their last
    results (None when fewer locations ever had one). Past it, by more than two intervals,
    the time is unmonitored."""
    newest = sorted(last_results, reverse=True)
    return newest[quorum - 1] if len(newest) >= quorum else None
