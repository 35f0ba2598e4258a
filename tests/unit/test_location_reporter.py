"""The `probe` command's reporter: a report is written when the location's view of an
endpoint changes, never for a probe that changes nothing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sla_operator.domain.model import ProbeResult
from sla_operator.domain.parse import agreement_from_manifest
from sla_operator.engine.settings import EngineSettings
from sla_operator.kube.reporter import Reporter
from sla_operator.probes.base import user_agent
from sla_operator.store.base import StoreError

T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
SECOND = timedelta(seconds=1)
MANIFEST = {"metadata": {"name": "checkout", "namespace": "shop"},
            "spec": {"service": "Checkout", "objective": "99.9", "endpoints": [
                {"name": "api", "interval": "1s", "timeout": "500ms", "failureThreshold": 2,
                 "http": {"url": "http://127.0.0.1:8099/healthz"}}]}}
AGREEMENT = agreement_from_manifest(MANIFEST)
API = AGREEMENT.endpoints[0]


class Reports:
    """The store's report writes, as a list; fails the next ``failing`` of them."""

    def __init__(self) -> None:
        self.written: list[dict[str, Any]] = []
        self.seen_before: list[bool] = []
        self.failing = 0

    async def read_secret(self, namespace: str, name: str, key: str) -> str:
        raise AssertionError("no probe here sends a Secret")

    async def write_location_report(self, report: dict[str, Any], exists: bool = True) -> None:
        self.seen_before.append(exists)
        if self.failing:
            self.failing -= 1
            raise StoreError("API 500: Internal Server Error")
        self.written.append(report)


def result(second: int, ok: bool) -> ProbeResult:
    return ProbeResult(T0 + second * SECOND, ok, 0.01, "200 OK" if ok else "503")


async def test_a_report_is_written_per_change_of_view_not_per_probe() -> None:
    store = Reports()
    reporter = Reporter(store, "eu-west", EngineSettings())  # type: ignore[arg-type]
    reporter.upsert(AGREEMENT)
    assert reporter.contexts.of("shop").user_agent == user_agent("eu-west")
    for second in range(5):
        reporter.on_probe_result(AGREEMENT.key, API, result(second, True))
    await reporter.write_changed()
    for second in range(5, 10):
        reporter.on_probe_result(AGREEMENT.key, API, result(second, True))
    await reporter.write_changed()
    assert [r["spec"]["endpoints"][0]["state"] for r in store.written] == ["Up"]
    store.failing = 1
    for second in range(10, 12):
        reporter.on_probe_result(AGREEMENT.key, API, result(second, False))
    await reporter.write_changed()  # failed: tried again next time
    await reporter.write_changed()
    assert [r["spec"]["endpoints"][0]["state"] for r in store.written] == ["Up", "Down"]
    assert store.written[-1]["spec"]["endpoints"][0]["since"] == "2026-12-01T09:00:10Z"
    # The first report is created at once; the failed write of the second was not the first.
    assert store.seen_before == [False, True, True]


async def test_an_agreement_gone_is_no_longer_probed_nor_reported() -> None:
    store = Reports()
    reporter = Reporter(store, "eu-west", EngineSettings())  # type: ignore[arg-type]
    reporter.listed("shop", [MANIFEST])
    reporter.changed_agreement("MODIFIED", {**MANIFEST, "status": {"state": "Up"}})
    assert reporter.agreements == {AGREEMENT.key: AGREEMENT}
    reporter.changed_agreement("DELETED", MANIFEST)
    reporter.on_probe_result(AGREEMENT.key, API, result(0, True))
    await reporter.write_changed()
    assert store.written == [] and reporter.scheduler.endpoint_count == 0


def test_the_reporter_exports_its_location_s_probe_results_and_whether_it_reports() -> None:
    from prometheus_client import CollectorRegistry, generate_latest

    from sla_operator.kube.reporter_metrics import ReporterCollector
    from sla_operator.store.fence import WriteSwitch

    reporter = Reporter(Reports(), "eu-west", EngineSettings())  # type: ignore[arg-type]
    reporter.upsert(AGREEMENT)
    reporter.on_probe_result(AGREEMENT.key, API, result(0, False))
    registry = CollectorRegistry()
    registry.register(ReporterCollector(reporter, WriteSwitch(active=False)))
    text = generate_latest(registry).decode()
    assert ('sla_probe_success{agreement="checkout",endpoint="api",environment="production",'
            'location="eu-west",namespace="shop",service="Checkout"} 0.0') in text
    assert "sla_operator_leader 0.0" in text
