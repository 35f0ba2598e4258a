"""``probe --metrics-port``: /metrics and /healthz of a location's reporter."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from sla_operator.store.fence import WriteSwitch

if TYPE_CHECKING:
    from sla_operator.kube.reporter import Reporter


class ReporterCollector(Collector):
    """``sla_probe_success{location}`` of each endpoint this location probes (the same series
    the deciding operator shows for it), and whether this replica is the one reporting."""

    def __init__(self, reporter: Reporter, switch: WriteSwitch) -> None:
        self.reporter, self.switch = reporter, switch

    def collect(self) -> Iterator[Metric]:
        success = GaugeMetricFamily(
            "sla_probe_success", "1 if the last probe succeeded.",
            labels=["namespace", "agreement", "service", "environment", "endpoint", "location"])
        for key, healths in sorted(self.reporter.healths.items()):
            agreement = self.reporter.agreements.get(key)
            if agreement is None:
                continue
            for name, health in sorted(healths.items()):
                if health.last is not None:
                    success.add_metric([agreement.namespace, agreement.name, agreement.service,
                                        agreement.environment.value, name,
                                        self.reporter.location], float(health.last.ok))
        yield success
        yield GaugeMetricFamily(
            "sla_operator_leader", "1 on the replica that probes and reports for the location "
            "(its Lease holder), 0 on a standby.", value=float(self.switch.active))


def reporter_app(registry: CollectorRegistry,
                 problems: Callable[[], list[str]]) -> web.Application:
    """/metrics, and /healthz failing (503, one line per reason) while ``problems`` says why."""

    async def metrics(_: web.Request) -> web.Response:
        return web.Response(body=generate_latest(registry),
                            headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def healthz(_: web.Request) -> web.Response:
        found = problems()
        if found:
            return web.Response(status=503, text="".join(f"{p}\n" for p in found))
        return web.Response(text="ok\n")

    app = web.Application()
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/healthz", healthz)
    return app
