"""Prometheus metrics: one custom collector that reads the engine's state at every scrape."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from sla_operator.domain.model import Severity, State
from sla_operator.engine import Engine
from sla_operator.engine.runtime import LATENCY_BUCKETS

AGREEMENT_LABELS = ["namespace", "agreement", "service", "environment"]
PROBE_LABELS = [*AGREEMENT_LABELS, "endpoint"]


class EngineCollector(Collector):
    """Yields every sla_* family from the engine's current state (API.md, "Metrics")."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def collect(self) -> Iterator[Metric]:
        yield from self._agreement_families()
        yield from self._probe_families()
        lag = self.engine.scheduler.lag
        yield HistogramMetricFamily(
            "sla_operator_probe_lag_seconds", "How late probes start against their schedule.",
            buckets=[(_bound(b), c) for b, c in zip(lag.buckets, lag.cumulative_counts, strict=True)],
            sum_value=lag.sum)

    def _agreement_families(self) -> Iterator[Metric]:
        def gauge(name: str, doc: str, extra: list[str] | None = None) -> GaugeMetricFamily:
            return GaugeMetricFamily(name, doc, labels=AGREEMENT_LABELS + (extra or []))

        objective = gauge("sla_objective_ratio", "Objective of the agreement, 0..1.")
        availability = gauge("sla_availability_ratio", "Current-period availability, 0..1.")
        total = gauge("sla_error_budget_total_seconds", "Error budget of the current period.")
        remaining = gauge("sla_error_budget_remaining_seconds", "Error budget left (may be negative).")
        ratio = gauge("sla_error_budget_remaining_ratio", "Remaining error budget / total.")
        state = gauge("sla_state", "1 on the agreement's current state.", ["state"])
        maintenance = gauge("sla_maintenance_active", "1 during scheduled maintenance.")
        open_incidents = gauge("sla_incidents_open", "Open incidents by severity.", ["severity"])
        period = gauge("sla_period_availability_ratio", "Availability of the last closed period.",
                       ["period"])
        downtime = CounterMetricFamily(
            "sla_downtime_seconds", "Seconds Down, outside maintenance and exclusions.",
            labels=AGREEMENT_LABELS)
        eligible = CounterMetricFamily(
            "sla_eligible_seconds", "Seconds monitored, outside maintenance and exclusions.",
            labels=AGREEMENT_LABELS)
        breached = CounterMetricFamily(
            "sla_incident_response_breached", "Incidents not acknowledged within the response target.",
            labels=[*AGREEMENT_LABELS, "severity"])
        for runtime in self.engine.agreements.values():
            a = runtime.agreement
            labels = [a.namespace, a.name, a.service, a.environment.value]
            objective.add_metric(labels, a.objective_ratio)
            availability.add_metric(labels, runtime.availability)
            budget_total, budget_left, budget_ratio = runtime.budget
            total.add_metric(labels, budget_total)
            remaining.add_metric(labels, budget_left)
            ratio.add_metric(labels, budget_ratio)
            for candidate in State:
                state.add_metric([*labels, candidate.value], float(runtime.state is candidate))
            maintenance.add_metric(labels, float(runtime.maintenance_active))
            downtime.add_metric(labels, runtime.downtime_total)
            eligible.add_metric(labels, runtime.eligible_total)
            incidents = self.engine.incidents_of(a)
            for severity in Severity:
                of_severity = [i for i in incidents if i.severity is severity]
                open_incidents.add_metric([*labels, severity.value],
                                          sum(1 for i in of_severity if i.is_open))
                breached.add_metric([*labels, severity.value], sum(
                    1 for late in runtime.breached.values() if late == severity.value))
            last = runtime.history[max(runtime.history)] if runtime.history else None
            if last is not None and last.get("availability") is not None:  # None: no data
                period.add_metric([*labels, last["period"]], float(last["availability"]) / 100)
        yield from (objective, availability, total, remaining, ratio, state, maintenance,
                    open_incidents, period, downtime, eligible, breached)

    def _probe_families(self) -> Iterator[Metric]:
        success = GaugeMetricFamily("sla_probe_success", "1 if the last probe succeeded.",
                                    labels=PROBE_LABELS)
        duration = HistogramMetricFamily("sla_probe_duration_seconds", "Probe latency.",
                                         labels=PROBE_LABELS)
        probes = CounterMetricFamily("sla_probes", "Probes run, by result.",
                                     labels=[*PROBE_LABELS, "result"])
        expiry = GaugeMetricFamily("sla_probe_certificate_expiry_timestamp_seconds",
                                   "notAfter of the endpoint's TLS certificate.", labels=PROBE_LABELS)
        for runtime in self.engine.agreements.values():
            a = runtime.agreement
            for endpoint in a.endpoints:
                labels = [a.namespace, a.name, a.service, a.environment.value, endpoint.name]
                health = runtime.healths.get(endpoint.name)
                stats = runtime.probe_stats.get(endpoint.name)
                if health is None or health.last is None or stats is None:
                    continue
                success.add_metric(labels, float(health.last.ok))
                probes.add_metric([*labels, "success"], stats.successes)
                probes.add_metric([*labels, "failure"], stats.failures)
                cumulative, buckets = 0, []
                for bound, count in zip((*LATENCY_BUCKETS, float("inf")), stats.bucket_counts,
                                        strict=True):
                    cumulative += count
                    buckets.append((_bound(bound), cumulative))
                duration.add_metric(labels, buckets, stats.latency_sum)
                if health.last.certificate_not_after is not None:
                    expiry.add_metric(labels, health.last.certificate_not_after.timestamp())
        yield from (success, duration, probes, expiry)


def _bound(value: float) -> str:
    return "+Inf" if value == float("inf") else repr(value)


HealthCheck = Callable[[], list[str]]


def metrics_app(engine: Engine, registry: CollectorRegistry, stale_after: float = 60.0,
                checks: Sequence[HealthCheck] = ()) -> web.Application:
    """/metrics in the Prometheus text format and /healthz, which fails (503, one line per
    reason) when the evaluation loop stalls, the probe scheduler stopped, or a check fails."""

    async def metrics(_: web.Request) -> web.Response:
        return web.Response(body=generate_latest(registry),
                            headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def healthz(_: web.Request) -> web.Response:
        problems = engine.health_problems(stale_after)
        for check in checks:
            problems += check()
        if problems:
            return web.Response(status=503, text="".join(f"{p}\n" for p in problems))
        return web.Response(text="ok\n")

    app = web.Application()
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/healthz", healthz)
    return app


async def serve(app: web.Application, host: str, port: int) -> web.AppRunner | None:
    """Start ``app`` on host:port (port 0 disables it); the caller cleans the runner up."""
    if port == 0:
        return None
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    return runner
