"""Prometheus metrics: one custom collector over the engine's snapshot, read at every scrape.

Series per endpoint are bounded by default: ``sla_probe_success``, ``sla_probes_total`` (two)
and, for TLS endpoints, ``sla_probe_certificate_expiry_timestamp_seconds``. Probe latency is a
histogram per agreement (``sla_agreement_probe_duration_seconds``); the per-endpoint histogram
``sla_probe_duration_seconds`` (14 series per endpoint) is exported only with
``--endpoint-histograms``. The /metrics route renders off the event loop (``exposition``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Protocol

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.exposition import gzip_accepted
from prometheus_client.registry import Collector

from sla_operator.domain.model import Severity, State
from sla_operator.domain.views import AgreementView, Histogram, Snapshot
from sla_operator.engine import EngineSettings
from sla_operator.engine.writes import WriteBudget
from sla_operator.exposition import Exposition

log = logging.getLogger("sla_operator.metrics")
AGREEMENT_LABELS = ["namespace", "agreement", "service", "environment"]
PROBE_LABELS = [*AGREEMENT_LABELS, "endpoint"]
# --endpoint-histograms auto (the default): sla_probe_duration_seconds per endpoint while the
# process probes at most this many endpoints (14 series each: 14,000 at most); above it, the
# per-agreement histogram alone, so a large fleet's scrape stays bounded.
ENDPOINT_HISTOGRAMS_UP_TO = 1000
# (family, labels, value) to add once all of one agreement's samples are known.
Family = GaugeMetricFamily | CounterMetricFamily | HistogramMetricFamily
Sample = tuple[Family, list[str], float | Histogram]


class SnapshotSource(Protocol):
    """What the outputs read of the engine (the Engine itself in the operator)."""

    @property
    def snapshot(self) -> Snapshot: ...

    @property
    def active(self) -> bool: ...

    @property
    def settings(self) -> EngineSettings: ...

    @property
    def writes(self) -> WriteBudget: ...

    def health_problems(self, stale_after: float) -> list[str]: ...


class EngineCollector(Collector):
    """Yields every sla_* family from the engine's current snapshot (API.md, "Metrics").

    It reads ``engine.snapshot`` only, never the runtime: a scrape sees one whole round. An
    agreement whose figures cannot be exported is left out of that scrape (and logged); the
    others are not. ``endpoint_histograms`` adds ``sla_probe_duration_seconds`` per endpoint
    (True), never (False), or while the process probes at most ENDPOINT_HISTOGRAMS_UP_TO
    endpoints (None, the default); without it that family is announced with no samples."""

    def __init__(self, engine: SnapshotSource, endpoint_histograms: bool | None = None) -> None:
        self.engine = engine
        self.endpoint_histograms = endpoint_histograms

    def collect(self) -> Iterator[Metric]:
        snapshot: Snapshot = self.engine.snapshot
        families = _Families()
        # A standby shows the holder's statuses on its page; its /metrics leaves them to the
        # holder, so that no series is counted twice.
        # Other shards' agreements are on the page, and in their own shard's /metrics.
        sharding = self.engine.settings.sharding
        views = [view for view in (snapshot.agreements if self.engine.active else ())
                 if sharding.owns(view.namespace, view.name)]
        histograms = self.endpoint_histograms
        if histograms is None:
            histograms = sum(len(view.probes) for view in views) <= ENDPOINT_HISTOGRAMS_UP_TO
        for view in views:
            try:
                samples = list(_agreement_samples(view, families, histograms))
            except Exception:
                log.exception("agreement %s/%s: left out of this scrape", *view.key)
                continue
            for family, labels, value in samples:
                _add(family, labels, value)
        yield from families.all()
        yield GaugeMetricFamily(
            "sla_operator_leader", "1 on the replica that probes and writes (the Lease holder, "
            "or the only replica), 0 on a standby.", value=float(self.engine.active))
        sharding = self.engine.settings.sharding
        shard = GaugeMetricFamily("sla_operator_shard", "1, labelled with the shard this "
                                  "process handles and how many there are (--shard, --shards).",
                                  labels=["shard", "shards"])
        shard.add_metric([str(sharding.index), str(sharding.count)], 1.0)
        yield shard
        writes = self.engine.writes
        for name, doc, value in (
                ("sla_operator_status_writes", "Status writes sent.", writes.sent),
                ("sla_operator_status_writes_deferred", "Status writes held back by "
                 "--max-status-writes-per-second or a Retry-After, each once.", writes.deferred),
                ("sla_operator_api_throttled", "API answers that asked to wait (429, Retry-After).",
                 writes.throttled)):
            yield CounterMetricFamily(name, doc, value=value)
        lag = snapshot.probe_lag
        yield HistogramMetricFamily(
            "sla_operator_probe_lag_seconds", "How late probes start against their schedule.",
            buckets=_buckets(lag), sum_value=lag.sum)


class _Families:
    def __init__(self) -> None:
        def gauge(name: str, doc: str, extra: list[str] | None = None) -> GaugeMetricFamily:
            return GaugeMetricFamily(name, doc, labels=AGREEMENT_LABELS + (extra or []))

        def counter(name: str, doc: str, extra: list[str] | None = None) -> CounterMetricFamily:
            return CounterMetricFamily(name, doc, labels=AGREEMENT_LABELS + (extra or []))

        self.objective = gauge("sla_objective_ratio", "Objective of the agreement, 0..1.")
        self.availability = gauge("sla_availability_ratio", "Current-period availability, 0..1.")
        self.total = gauge("sla_error_budget_total_seconds", "Error budget of the current period.")
        self.remaining = gauge("sla_error_budget_remaining_seconds",
                               "Error budget left (may be negative).")
        self.ratio = gauge("sla_error_budget_remaining_ratio", "Remaining error budget / total.")
        self.state = gauge("sla_state", "1 on the agreement's current state.", ["state"])
        self.maintenance = gauge("sla_maintenance_active", "1 during scheduled maintenance.")
        self.open_incidents = gauge("sla_incidents_open", "Open incidents by severity.", ["severity"])
        self.period = gauge("sla_period_availability_ratio",
                            "Availability of the last closed period.", ["period"])
        self.downtime = counter("sla_downtime_seconds",
                                "Seconds Down, outside maintenance and exclusions.")
        self.eligible = counter("sla_eligible_seconds",
                                "Seconds monitored, outside maintenance and exclusions.")
        self.breached = counter("sla_incident_response_breached",
                                "Incidents not acknowledged within the response target.", ["severity"])
        self.success = GaugeMetricFamily("sla_probe_success", "1 if the last probe succeeded.",
                                         labels=PROBE_LABELS)
        self.duration = HistogramMetricFamily(
            "sla_probe_duration_seconds",
            "Probe latency per endpoint (only with --endpoint-histograms).", labels=PROBE_LABELS)
        self.agreement_duration = HistogramMetricFamily(
            "sla_agreement_probe_duration_seconds",
            "Probe latency of all the agreement's endpoints together.", labels=AGREEMENT_LABELS)
        self.probes = CounterMetricFamily("sla_probes", "Probes run, by result.",
                                          labels=[*PROBE_LABELS, "result"])
        self.expiry = GaugeMetricFamily("sla_probe_certificate_expiry_timestamp_seconds",
                                        "notAfter of the endpoint's TLS certificate.",
                                        labels=PROBE_LABELS)

    def all(self) -> Iterator[Metric]:
        yield from (self.objective, self.availability, self.total, self.remaining, self.ratio,
                    self.state, self.maintenance, self.open_incidents, self.period,
                    self.downtime, self.eligible, self.breached,
                    self.success, self.duration, self.agreement_duration, self.probes,
                    self.expiry)


def _agreement_samples(view: AgreementView, f: _Families,
                       endpoint_histograms: bool) -> Iterator[Sample]:
    labels = [view.namespace, view.name, view.service, view.environment.value]
    yield f.objective, labels, view.objective_ratio
    if view.period is not None:
        yield f.availability, labels, view.period.availability
        yield f.total, labels, view.period.budget_total_seconds
        yield f.remaining, labels, view.period.budget_remaining_seconds
        yield f.ratio, labels, view.period.budget_remaining_ratio
    for candidate in State:
        yield f.state, [*labels, candidate.value], float(view.state is candidate)
    yield f.maintenance, labels, float(view.maintenance_active)
    yield f.downtime, labels, view.downtime_total_seconds
    yield f.eligible, labels, view.eligible_total_seconds
    for severity in Severity:
        yield f.open_incidents, [*labels, severity.value], view.open_incidents.get(severity, 0)
        yield f.breached, [*labels, severity.value], view.responses_breached.get(severity, 0)
    closed = view.last_closed
    if closed is not None and closed.availability is not None:
        yield f.period, [*labels, closed.label], closed.availability
    probed = [probe for probe in view.probes if probe.last_ok is not None]
    if probed:
        yield f.agreement_duration, labels, _merged(probe.latency for probe in probed)
    for probe in probed:
        probe_labels = [*labels, probe.name]
        yield f.success, probe_labels, 1.0 if probe.last_ok else 0.0
        yield f.probes, [*probe_labels, "success"], probe.successes
        yield f.probes, [*probe_labels, "failure"], probe.failures
        if endpoint_histograms:
            yield f.duration, probe_labels, probe.latency
        if probe.certificate_not_after is not None:
            yield f.expiry, probe_labels, probe.certificate_not_after.timestamp()


def _merged(histograms: Iterable[Histogram]) -> Histogram:
    """One histogram of several with the same bounds (every endpoint uses the same)."""
    bounds: tuple[float, ...] = ()
    counts: list[int] = []
    total = 0.0
    for histogram in histograms:
        if not counts:
            bounds = tuple(bound for bound, _ in histogram.buckets)
            counts = [0] * len(bounds)
        for index, (_, count) in enumerate(histogram.buckets):
            counts[index] += count
        total += histogram.sum
    return Histogram(tuple(zip(bounds, counts, strict=True)), total)


def _add(family: Family, labels: list[str], value: float | Histogram) -> None:
    if isinstance(value, Histogram):
        assert isinstance(family, HistogramMetricFamily)
        family.add_metric(labels, _buckets(value), value.sum)
    else:
        assert not isinstance(family, HistogramMetricFamily)
        family.add_metric(labels, value)


def _buckets(histogram: Histogram) -> list[tuple[str, float]]:
    return [(_bound(bound), count) for bound, count in histogram.buckets]


def _bound(value: float) -> str:
    return "+Inf" if value == float("inf") else repr(value)


HealthCheck = Callable[[], list[str]]
EXPOSITION = web.AppKey("exposition", Exposition)
WRITE_SLICE = 256 * 1024


def metrics_app(engine: SnapshotSource, registry: CollectorRegistry, stale_after: float = 60.0,
                checks: Sequence[HealthCheck] = ()) -> web.Application:
    """/metrics in the Prometheus text format and /healthz, which fails (503, one line per
    reason) when the evaluation loop stalls, the probe scheduler stopped, or a check fails.

    /metrics is rendered in a worker thread, once per snapshot (see ``exposition``)."""
    exposition = Exposition(registry, lambda: (engine.snapshot, engine.active))

    async def metrics(request: web.Request) -> web.StreamResponse:
        gzipped = gzip_accepted(request.headers.get("Accept-Encoding", ""))
        body = await exposition.body(gzipped)
        response = web.StreamResponse(headers={"Content-Type": CONTENT_TYPE_LATEST})
        if gzipped:
            response.headers["Content-Encoding"] = "gzip"
        response.content_length = len(body)
        await response.prepare(request)
        # In slices: handed over whole, tens of megabytes would be copied into the socket's
        # buffer in one go on the loop.
        view = memoryview(body)
        for start in range(0, len(body), WRITE_SLICE):
            await response.write(view[start:start + WRITE_SLICE])
        await response.write_eof()
        return response

    async def healthz(_: web.Request) -> web.Response:
        problems = engine.health_problems(stale_after)
        for check in checks:
            problems += check()
        if problems:
            return web.Response(status=503, text="".join(f"{p}\n" for p in problems))
        return web.Response(text="ok\n")

    async def close(_: web.Application) -> None:
        exposition.close()

    app = web.Application()
    app[EXPOSITION] = exposition
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/healthz", healthz)
    app.on_cleanup.append(close)
    return app


async def serve(app: web.Application, host: str, port: int) -> web.AppRunner | None:
    """Start ``app`` on host:port (port 0 disables it); the caller cleans the runner up."""
    if port == 0:
        return None
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    return runner
