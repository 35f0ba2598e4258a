"""The engine's settings: how often it evaluates and writes; every field has a CLI flag."""

from __future__ import annotations

from dataclasses import dataclass, field

from sla_operator.domain.shards import Sharding
from sla_operator.probes.policy import AddressPolicy, NamespaceRule


@dataclass(frozen=True)
class EngineSettings:
    """How often the engine evaluates and writes; every field has a CLI flag."""

    evaluate_interval: float = 1.0
    """Seconds between evaluation rounds (agreements whose endpoints changed state, or are due)."""
    status_interval: float = 30.0
    """One routine status write per object per this many seconds, each object at its own
    phase of it; state changes go out at once (within max_status_writes_per_second)."""
    status_heartbeat: float = 0.0
    """At most this many seconds between two writes of an agreement's status while nothing
    it shows changes (only ``lastEvaluated``, probe times and latencies, the seconds elapsed):
    its routine refreshes write only what people read; 0: every routine refresh writes.
    ``run --leader-elect`` sets DEFAULT_STATUS_HEARTBEAT: its Lease, renewed every few
    seconds, says until when the writer was alive (see engine/restore.py)."""
    probe_concurrency: int = 256
    """Probes allowed in flight at once across all agreements."""
    max_status_writes_per_second: float = 0.0
    """Cap on status writes (state changes first, then routine refreshes); 0: no cap.
    ``run`` sets DEFAULT_MAX_STATUS_WRITES_PER_SECOND unless told otherwise."""
    policy: AddressPolicy = field(default_factory=AddressPolicy)
    """Which addresses probes may connect to, checked after DNS resolution."""
    namespace_rules: tuple[NamespaceRule, ...] = ()
    """The administrators' probe policy: per namespace, ranges added to ``policy``."""
    pace_collector: bool = False
    """Run the garbage collector after rounds instead of by allocation counts (see
    engine/collector.py): the operator's process sets it; an engine inside another program
    (a test) leaves that program's collector alone."""
    sharding: Sharding = field(default_factory=Sharding)
    """This process's shard of the fleet; only its agreements are taken in (see ``Engine.owns``)."""
    write_seconds: float = 1.0
    """Wall time a round may spend starting held-back and routine writes (see _write_queue)."""
    location: str | None = None
    """Where this process probes from (``--location``): its results are that location's view
    and its HTTP probes say so in their User-Agent; None is the single location ``default``."""
    disagreement_after: float = 300.0
    """Seconds a location may see an endpoint otherwise than its quorum decided before it is
    told (a Warning Event LocationDisagrees) and shown (sla_location_disagreement)."""
    round_seconds: float = 0.5
    """CPU time a round may spend on first evaluations and on agreements due for their status
    interval (those left go to the next round, which then starts at once); state changes are
    always evaluated."""
