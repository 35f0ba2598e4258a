"""/metrics off the event loop: rendered in a worker thread, once per snapshot, shared."""

from __future__ import annotations

import asyncio
import gc
import gzip
import threading
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, replace
from datetime import timedelta
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from metrics_snapshots import NOW, fleet, probe
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    InfoMetricFamily,
    Metric,
)
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import Collector

from sla_operator.domain.model import Severity
from sla_operator.domain.views import ClosedPeriodView
from sla_operator.engine import Engine
from sla_operator.exposition import Pacer, pacing, pause, render_text
from sla_operator.local.store import LocalStore
from sla_operator.metrics import EXPOSITION, EngineCollector, metrics_app

GATE_SECONDS = 120  # only a render that holds the loop waits this long: then the test fails


@dataclass
class Served:
    engine: Engine
    registry: CollectorRegistry
    client: TestClient[web.Request, web.Application]

    @property
    def renders(self) -> int:
        assert self.client.app is not None
        renders: int = self.client.app[EXPOSITION].renders
        return renders

    async def scrape(self, gzipped: bool = False) -> str:
        answer = await self.client.get(
            "/metrics", headers={"Accept-Encoding": "gzip" if gzipped else "identity"},
            auto_decompress=False)
        assert answer.status == 200, await answer.text()
        body = await answer.read()
        if gzipped:
            assert answer.headers["Content-Encoding"] == "gzip"
            body = gzip.decompress(body)
        return body.decode()


async def serve(tmp_path: Path, endpoints: int, endpoint_histograms: bool = False) -> Served:
    engine = Engine(LocalStore(tmp_path))
    engine.snapshot = fleet(endpoints)
    registry = CollectorRegistry()
    registry.register(EngineCollector(engine, endpoint_histograms=endpoint_histograms))
    client = TestClient(TestServer(metrics_app(engine, registry)))
    await client.start_server()
    return Served(engine, registry, client)


@pytest.fixture
async def small(tmp_path: Path) -> AsyncIterator[Served]:
    served = await serve(tmp_path, endpoints=300)
    yield served
    await served.client.close()


class LoopGate(Collector):
    """Collected last, in whatever thread renders: it returns only once the event loop has
    run a callback scheduled after the render reached it. A render on the loop's own thread
    could never get that callback run, so it would wait out GATE_SECONDS and fail."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.turned = threading.Event()
        self.render_thread: int | None = None

    def collect(self) -> Iterator[Metric]:
        self.render_thread = threading.get_ident()
        self.loop.call_soon_threadsafe(self.turned.set)
        if not self.turned.wait(GATE_SECONDS):
            raise AssertionError("the event loop did not turn while /metrics was rendered")
        yield GaugeMetricFamily("test_loop_turned", "The loop ran during the render.", value=1)


async def test_rendering_metrics_for_100000_endpoints_does_not_hold_the_event_loop(
        tmp_path: Path) -> None:
    served = await serve(tmp_path, endpoints=100_000)
    gate = LoopGate(asyncio.get_running_loop())
    served.registry.register(gate)
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0)
            ticks += 1

    ticking = asyncio.create_task(ticker())
    try:
        text = await served.scrape()
    finally:
        ticking.cancel()
        await served.client.close()
    assert gate.turned.is_set() and gate.render_thread != threading.get_ident()
    assert ticks > 1  # the loop kept turning while the scrape was answered
    assert text.count("\nsla_probes_total{") == 200_000
    assert text.count("\nsla_probe_success{") == 100_000
    assert "\ntest_loop_turned 1.0\n" in text
    assert served.client.app is not None
    # The render let go of the interpreter between slices, for the loop to start probes.
    assert served.client.app[EXPOSITION].paused_seconds > 0


class FakeCpu:
    def __init__(self) -> None:
        self.now = 0.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)


def test_a_pacer_leaves_the_others_their_share_after_each_slice() -> None:
    cpu = FakeCpu()
    pacer = Pacer(0.25, 0.002, cpu=cpu, sleep=cpu.sleep)
    for _ in range(3):
        cpu.now += 0.001
        pacer()
    # 2 ms used: a quarter of 8 ms, so 6 ms asleep; the third millisecond starts a new slice.
    assert cpu.slept == [pytest.approx(0.006)]
    cpu.now += 0.004  # one long stretch between two pauses: paid for in full at the next
    pacer()
    assert cpu.slept == [pytest.approx(0.006), pytest.approx(0.015)]
    assert pacer.slept == pytest.approx(0.021)


def test_a_pacer_with_the_whole_share_never_sleeps() -> None:
    cpu = FakeCpu()
    pacer = Pacer(1.0, 0.002, cpu=cpu, sleep=cpu.sleep)
    cpu.now += 1.0
    pacer()
    assert cpu.slept == []


@pytest.mark.parametrize("share", [0.0, -0.5, 1.5])
def test_a_pacer_needs_a_share_of_more_than_nothing_and_at_most_all(share: float) -> None:
    with pytest.raises(ValueError, match="share"):
        Pacer(share, 0.002)


def test_pause_calls_the_pacer_of_its_own_thread_only() -> None:
    calls: list[str] = []
    pause()  # no paced render here: nothing happens
    other = threading.Thread(target=pause)
    with pacing(lambda: calls.append("paced")):
        pause()
        other.start()
        other.join()
    pause()
    assert calls == ["paced"]


async def test_scrapes_of_one_snapshot_share_one_render(small: Served) -> None:
    first, second = await asyncio.gather(small.scrape(), small.scrape())
    third = await small.scrape(gzipped=True)
    assert first == second == third
    assert small.renders == 1
    assert gc.isenabled()  # held back only while the text was made


@pytest.mark.parametrize("accept", ["gzip;q=0", "gzip; q=0.0, identity", "identity, *;q=0"])
async def test_no_gzip_for_a_scraper_that_refuses_it(small: Served, accept: str) -> None:
    assert small.client is not None
    answer = await small.client.get("/metrics", headers={"Accept-Encoding": accept},
                                    auto_decompress=False)
    assert answer.status == 200
    assert "Content-Encoding" not in answer.headers, accept
    assert (await answer.read()).decode() == await small.scrape()


async def test_a_new_snapshot_is_rendered_again(small: Served) -> None:
    before = await small.scrape()
    snapshot = small.engine.snapshot
    slower = replace(snapshot.agreements[0], probes=(probe("endpoint-000", fast=0, slow=5),
                                                     *snapshot.agreements[0].probes[1:]))
    small.engine.snapshot = replace(snapshot, taken_at=NOW + timedelta(seconds=1),
                                    agreements=(slower, *snapshot.agreements[1:]))
    after = await small.scrape()
    assert small.renders == 2 and after != before
    assert await small.scrape(gzipped=True) == after
    assert small.renders == 2


async def test_a_change_of_leader_is_rendered_again(small: Served) -> None:
    assert "\nsla_operator_leader 1.0\n" in await small.scrape()
    small.engine.switch.active = False
    assert "\nsla_operator_leader 0.0\n" in await small.scrape()
    assert small.renders == 2


async def test_a_scraper_that_hangs_up_does_not_cancel_the_render_others_wait_for(
        small: Served) -> None:
    leaving = asyncio.create_task(small.scrape())
    staying = asyncio.create_task(small.scrape())
    await asyncio.sleep(0)
    leaving.cancel()
    text = await staying
    assert "sla_probes_total{" in text and small.renders == 1


@pytest.mark.parametrize("endpoint_histograms", [False, True])
async def test_the_agreement_histogram_adds_up_its_endpoints(
        tmp_path: Path, endpoint_histograms: bool) -> None:
    served = await serve(tmp_path, endpoints=200, endpoint_histograms=endpoint_histograms)
    try:
        families = {f.name: f for f in text_string_to_metric_families(await served.scrape())}
    finally:
        await served.client.close()
    per_endpoint = families["sla_probe_duration_seconds"].samples
    per_agreement = families["sla_agreement_probe_duration_seconds"].samples
    counts = {s.labels["agreement"]: s.value for s in per_agreement
              if s.name.endswith("_count")}
    probes = sum(10 + e % 7 + e % 3 for e in range(100))  # fast + slow of fleet()'s endpoints
    assert counts == {"service-0000": probes, "service-0001": probes}
    if not endpoint_histograms:
        assert per_endpoint == []
        return
    assert len(per_endpoint) == 200 * 14  # 12 buckets, _sum and _count per endpoint
    for agreement, count in counts.items():
        assert sum(s.value for s in per_endpoint if s.name.endswith("_count")
                   and s.labels["agreement"] == agreement) == count


class OddFamilies(Collector):
    """What other collectors may yield: a counter with _created, an info, a timestamp, NaN."""

    def collect(self) -> Iterator[Metric]:
        counter = CounterMetricFamily("test_events", "Events,\nby kind \\ source.", labels=["kind"])
        counter.add_metric(["a\"b"], 3, created=1_700_000_000.5)
        yield counter
        yield InfoMetricFamily("test_build", "Build.", value={"version": "1.0", "ünï": "x"})
        gauge = GaugeMetricFamily("test_odd", "Odd values.", labels=["le"])
        gauge.add_metric(["+Inf"], float("nan"), timestamp=1_700_000_000.25)
        gauge.add_metric(["x"], float("-inf"))
        gauge.add_metric(["y"], 1e22)
        yield gauge


def test_the_text_is_what_prometheus_client_writes(tmp_path: Path) -> None:
    engine = Engine(LocalStore(tmp_path))
    odd = replace(fleet(200).agreements[0], namespace="shop", name="odd",
                  service="Zahlungs-API \"neu\" \\ ü\nß", open_incidents={Severity.P1: 2},
                  last_closed=ClosedPeriodView("2026-10", 0.9991),
                  probes=(replace(probe("é\"p", fast=3, slow=1),
                                  certificate_not_after=NOW + timedelta(days=9)),
                          replace(probe("waiting", fast=0, slow=0), last_ok=None)))
    engine.snapshot = replace(fleet(200), agreements=(*fleet(200).agreements, odd))
    for endpoint_histograms in (False, True):
        registry = CollectorRegistry()
        registry.register(EngineCollector(engine, endpoint_histograms=endpoint_histograms))
        registry.register(OddFamilies())
        assert render_text(registry) == generate_latest(registry)
