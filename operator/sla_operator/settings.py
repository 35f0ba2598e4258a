"""Operator settings from the command line, in one typed place."""

from __future__ import annotations

import os
import socket
import uuid
from dataclasses import dataclass, field

from sla_operator.domain.shards import Sharding
from sla_operator.engine import EngineSettings
from sla_operator.engine.writes import DEFAULT_MAX_STATUS_WRITES_PER_SECOND
from sla_operator.probes.policy import AddressPolicy, NamespaceRule


def default_identity() -> str:
    """The pod's name where Kubernetes gives it, else the host; unique per process."""
    base = os.environ.get("POD_NAME") or socket.gethostname()
    return f"{base}_{uuid.uuid4().hex[:8]}"


def lease_name(base: str, sharding: Sharding) -> str:
    """Each shard elects its own leader: ``BASE-shard-I`` with several shards, else ``BASE``."""
    return f"{base}-shard-{sharding.index}" if sharding.sharded else base


@dataclass(frozen=True)
class LeaseSettings:
    name: str = "sla-operator"
    """The Lease's name (kubectl get lease NAME)."""
    namespace: str = "default"
    """Where the Lease lives: the operator's own namespace."""
    identity: str = field(default_factory=default_identity)
    """This replica's name in holderIdentity."""
    duration: float = 15.0
    """Seconds a candidate waits without seeing a renewal before it takes the Lease."""
    renew_deadline: float = 10.0
    """Seconds the holder keeps writing without a successful renewal; less than duration."""
    retry_period: float = 2.0
    """Seconds between attempts to take or renew."""


@dataclass(frozen=True)
class Settings:
    namespaces: tuple[str, ...] = ()
    """Namespaces to watch; empty means all of them."""
    metrics_port: int = 9090
    """Port of /metrics and /healthz; 0 disables the listener."""
    status_port: int = 8080
    """Port of the status page; 0 disables it."""
    bind_address: str = "0.0.0.0"
    """Address the HTTP listeners bind to."""
    endpoint_histograms: bool | None = None
    """Export the probe latency histogram per endpoint too: always (True), never (False), or
    while the process probes at most metrics.ENDPOINT_HISTOGRAMS_UP_TO endpoints (None)."""
    deny_cidrs: tuple[str, ...] = ()
    """Extra ranges probes may not connect to (cloud metadata is always denied)."""
    allow_cidrs: tuple[str, ...] = ()
    """When given, probes may connect only to these ranges."""
    probe_policy: tuple[NamespaceRule, ...] = ()
    """The administrators' per-namespace ranges (--probe-policy FILE)."""
    evaluate_interval: float = 1.0
    """Seconds between evaluation rounds."""
    status_interval: float = 30.0
    """Seconds between routine status writes of one object; state changes are written at once."""
    status_heartbeat: float = 0.0
    """Seconds between writes of a status whose shown part did not change (--status-heartbeat);
    0: every routine refresh writes."""
    probe_concurrency: int = 256
    """Probes in flight at once, across all agreements."""
    max_status_writes_per_second: float = DEFAULT_MAX_STATUS_WRITES_PER_SECOND
    """Cap on status writes to the API server, state changes first; 0: no cap (local mode)."""
    resync_interval: float = 60.0
    """Cluster mode: seconds between lists that catch missed deletions and stopped watches."""
    lease: LeaseSettings | None = None
    """Cluster mode: leader election with this Lease (--leader-elect); None runs alone."""
    rule_labels: tuple[tuple[str, str], ...] = ()
    """Labels of the PrometheusRules the operator keeps (e.g. for a ruleSelector)."""
    sharding: Sharding = field(default_factory=Sharding)
    """Cluster mode: this process's shard (--shards N --shard I); one shard handles all."""
    discover: bool = False
    """Cluster mode: Services and Ingresses annotated sla.dev/agreement add endpoints to that
    agreement (--discover); needs get/list/watch on them."""
    location: str | None = None
    """Cluster mode: where this process probes from (--location); None: the single location
    ``default``."""
    disagreement_after: float = 300.0
    """Cluster mode with a location: seconds of disagreement with a quorum before a location
    is told and shown (--disagreement-after)."""
    locations_namespace: str = "default"
    """Cluster mode with a location: where the locations' Leases (their heartbeats) are, the
    operator's own namespace (--leader-elect-namespace, else $POD_NAMESPACE)."""
    extra: dict[str, str] = field(default_factory=dict)
    """Mode-specific options (e.g. the manifests and state folders of local mode)."""

    def engine_settings(self) -> EngineSettings:
        return EngineSettings(
            evaluate_interval=self.evaluate_interval,
            status_interval=self.status_interval,
            status_heartbeat=self.status_heartbeat,
            probe_concurrency=self.probe_concurrency,
            max_status_writes_per_second=self.max_status_writes_per_second,
            policy=AddressPolicy.from_cidrs(self.deny_cidrs, self.allow_cidrs),
            namespace_rules=self.probe_policy,
            pace_collector=True,
            sharding=self.sharding,
            location=self.location,
            disagreement_after=self.disagreement_after,
        )
