"""Operator settings from the command line, in one typed place."""

from __future__ import annotations

from dataclasses import dataclass, field

from sla_operator.engine import EngineSettings
from sla_operator.probes.policy import AddressPolicy


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
    deny_cidrs: tuple[str, ...] = ()
    """Extra ranges probes may not connect to (cloud metadata is always denied)."""
    allow_cidrs: tuple[str, ...] = ()
    """When given, probes may connect only to these ranges."""
    evaluate_interval: float = 1.0
    """Seconds between evaluation rounds."""
    status_interval: float = 30.0
    """Seconds between routine status writes of one object; state changes are written at once."""
    probe_concurrency: int = 256
    """Probes in flight at once, across all agreements."""
    rule_labels: tuple[tuple[str, str], ...] = ()
    """Labels of the PrometheusRules the operator keeps (e.g. for a ruleSelector)."""
    extra: dict[str, str] = field(default_factory=dict)
    """Mode-specific options (e.g. the manifests and state folders of local mode)."""

    def engine_settings(self) -> EngineSettings:
        return EngineSettings(
            evaluate_interval=self.evaluate_interval,
            status_interval=self.status_interval,
            probe_concurrency=self.probe_concurrency,
            policy=AddressPolicy.from_cidrs(self.deny_cidrs, self.allow_cidrs),
        )
