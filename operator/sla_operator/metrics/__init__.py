"""Prometheus metrics: one custom collector over the engine's snapshot, read at every scrape.

Series per endpoint are bounded by default: ``sla_probe_success``, ``sla_probes_total`` (two),
``sla_probe_failures_total`` (one per reason that occurred, of nine) and, for TLS endpoints,
``sla_probe_certificate_expiry_timestamp_seconds``. Probe latency is a
histogram per agreement (``sla_agreement_probe_duration_seconds``); the per-endpoint histogram
``sla_probe_duration_seconds`` (14 series per endpoint) is exported only with
``--endpoint-histograms``. The /metrics route renders off the event loop (``exposition``).

The families made from the agreements are listed once (``FAMILIES``) and made two ways from
the same views: as text, written straight into the /metrics body (``metrics/text.py``), and as
prometheus_client samples for a reader that asks for them (``metrics/families.py``, e.g.
``generate_latest``). A test holds the two equal over a rich snapshot.
"""

from sla_operator.metrics.app import EXPOSITION, metrics_app, serve
from sla_operator.metrics.collector import ENDPOINT_HISTOGRAMS_UP_TO, EngineCollector
from sla_operator.metrics.families import FAMILIES

__all__ = ["ENDPOINT_HISTOGRAMS_UP_TO", "EXPOSITION", "FAMILIES", "EngineCollector",
           "metrics_app", "serve"]
