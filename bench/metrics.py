"""`make bench` phase: what one /metrics scrape costs at 10,000 and 100,000 endpoints.

A snapshot of agreements of 100 HTTP endpoints each (every endpoint probed, no TLS) is
served by the operator's own /metrics app in this process, scraped from another thread. Per
size and per setting of ``--endpoint-histograms``: the series in the exposition and how many
of them carry an ``endpoint`` label (per endpoint), the bytes of one scrape (plain and gzip),
the seconds the first scrape takes (the render, then gzip, as Prometheus asks for it), and
the longest the event loop went without turning while the scrapes were served (a ticker
sleeping 10 ms records its largest gap), beside the same figure over 2 s without a scrape
(the machine's own noise). A gzip scrape of the same snapshot again is timed too: it is
served from the cache.

The render itself is also measured apart from the HTTP round trip, as the worker thread does
it (the cyclic garbage collector held back): the CPU seconds of the rendering thread
(``time.thread_time``) for the first render of a collector, which makes every agreement's
label text, and for the renders after it (the best of ``--repeat`` - 1, since the machine is
shared), which reuse it as the operator does from one snapshot to the next; and, in a render
of its own, the peak of memory allocated meanwhile (``tracemalloc``; it slows that render
down, so it is not timed).

    python -m bench.metrics [--endpoints 10000 100000] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import sys
import threading
import time
import tracemalloc
import urllib.request
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from aiohttp import web
from prometheus_client import CollectorRegistry

from sla_operator.domain.accounting import PeriodFigures
from sla_operator.domain.intervals import Interval
from sla_operator.domain.model import Environment, State
from sla_operator.domain.views import AgreementView, Histogram, ProbeView, Snapshot
from sla_operator.engine import EngineSettings
from sla_operator.engine.writes import WriteBudget
from sla_operator.exposition import render_text
from sla_operator.metrics import EngineCollector, metrics_app

NOW = datetime(2026, 11, 27, 3, 30, tzinfo=UTC)
ENDPOINTS_PER_AGREEMENT = 100
IDLE_SECONDS = 2.0
BOUNDS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, float("inf"))


def snapshot(endpoints: int) -> Snapshot:
    """Endpoints spread over agreements of 100; each endpoint has a few hundred probes."""
    period = PeriodFigures(Interval(datetime(2026, 11, 1, tzinfo=UTC), datetime(2026, 12, 1, tzinfo=UTC)),
                           "2026-11", 2_279_400.0, 0.0, 0.0, 0.0, 30.0, 2_279_400.0, 0.99998,
                           Decimal("99.9"), 2592.0, 2562.0, 0.988, 1, True, ())
    agreements = []
    for n in range(max(1, endpoints // ENDPOINTS_PER_AGREEMENT)):
        probes = []
        for e in range(min(ENDPOINTS_PER_AGREEMENT, endpoints - n * ENDPOINTS_PER_AGREEMENT)):
            seed = n * ENDPOINTS_PER_AGREEMENT + e
            counts = [0, 0, 3 + seed % 5, 140 + seed % 17, 290, 298, 299, 300, 300, 300, 300, 300]
            probes.append(ProbeView(
                name=f"endpoint-{e:03d}", dependency=False, state=State.UP, last_ok=True,
                successes=299, failures=1,
                latency=Histogram(tuple(zip(BOUNDS, counts, strict=True)), 11.5 + e / 100)))
        agreements.append(AgreementView(
            namespace=f"team-{n % 50:02d}", name=f"service-{n:04d}", service=f"Service number {n}",
            environment=Environment.PRODUCTION, objective=Decimal("99.9"), public=False,
            group=None, state=State.UP, period=period, downtime_total_seconds=30.0,
            eligible_total_seconds=86_400.0, probes=tuple(probes), evaluated_at=NOW))
    return Snapshot(taken_at=NOW, agreements=tuple(agreements))


@dataclass
class Source:
    """What the collector reads of the engine: its snapshot, whether it is the leader, its
    settings (the shard it handles) and its status write counters."""

    snapshot: Snapshot
    active: bool = True
    settings: EngineSettings = field(default_factory=EngineSettings)
    writes: WriteBudget = field(default_factory=lambda: WriteBudget(rate=10.0, burst=10.0))

    def health_problems(self, stale_after: float) -> list[str]:
        return []


def collector(source: Source, endpoint_histograms: bool) -> EngineCollector:
    try:
        return EngineCollector(source, endpoint_histograms=endpoint_histograms)
    except TypeError:  # a version before the flag (to measure it): histograms per endpoint
        return EngineCollector(source)


async def _ticker(gaps: list[float], stop: asyncio.Event) -> None:
    last = time.perf_counter()
    while not stop.is_set():
        await asyncio.sleep(0.01)
        now = time.perf_counter()
        gaps.append(now - last - 0.01)
        last = now


def _scrape_blocking(url: str, gzip: bool) -> tuple[bytes, float]:
    request = urllib.request.Request(url, headers={"Accept-Encoding": "gzip" if gzip else "identity"})
    started = time.perf_counter()
    with urllib.request.urlopen(request, timeout=600) as response:
        body: bytes = response.read()
    return body, time.perf_counter() - started


async def _scrape(url: str, gzip: bool) -> tuple[bytes, float]:
    """From a thread of its own, as Prometheus would from elsewhere: the client's reading
    of a large body must not count as the server's loop being held."""
    return await asyncio.to_thread(_scrape_blocking, url, gzip)


def _in_thread(work: Any) -> Any:
    """``work()`` in a thread of its own, as the exposition's worker runs it."""
    result: list[Any] = []
    failure: list[BaseException] = []

    def run() -> None:
        try:
            result.append(work())
        except BaseException as error:  # handed to the caller's thread
            failure.append(error)

    thread = threading.Thread(target=run)
    thread.start()
    thread.join()
    if failure:
        raise failure[0]
    return result[0]


def render_cost(registry: CollectorRegistry, repeat: int) -> tuple[float, float, int]:
    """The CPU seconds of the first render in its thread, the least of those after it, and
    the peak bytes a render allocated."""

    def timed() -> float:
        gc.collect()
        gc.disable()
        try:
            started = time.thread_time()
            render_text(registry)
            return time.thread_time() - started
        finally:
            gc.enable()

    def traced() -> int:
        gc.collect()
        gc.disable()
        tracemalloc.start()
        try:
            render_text(registry)
            return tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
            gc.enable()

    cpus = [_in_thread(timed) for _ in range(repeat)]
    return cpus[0], min(cpus[1:] or cpus), _in_thread(traced)


async def measure(endpoints: int, endpoint_histograms: bool, repeat: int = 3) -> dict[str, Any]:
    source = Source(snapshot(endpoints))
    registry = CollectorRegistry()
    registry.register(collector(source, endpoint_histograms))
    first_cpu, render_cpu, render_peak = render_cost(registry, repeat)
    runner = web.AppRunner(metrics_app(source, registry), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    url = f"http://127.0.0.1:{port}/metrics"
    gaps: list[float] = []
    stop = asyncio.Event()
    ticker = asyncio.create_task(_ticker(gaps, stop))
    try:
        await asyncio.sleep(IDLE_SECONDS)  # the machine's own noise, for comparison
        idle = max(gaps, default=0.0)
        gaps.clear()
        packed, first_seconds = await _scrape(url, gzip=True)  # as Prometheus asks
        plain, _ = await _scrape(url, gzip=False)
        _, cached_seconds = await _scrape(url, gzip=True)
    finally:
        stop.set()
        await ticker
        await runner.cleanup()
    lines = [line for line in plain.decode().splitlines() if line and not line.startswith("#")]
    with_endpoint = sum(1 for line in lines if 'endpoint="' in line)
    return {
        "endpoints": endpoints, "endpoint_histograms": endpoint_histograms,
        "series": len(lines), "series_per_endpoint": round(with_endpoint / endpoints, 2),
        "bytes": len(plain), "gzip_bytes": len(packed),
        "first_render_cpu_seconds": round(first_cpu, 3),
        "render_cpu_seconds": round(render_cpu, 3), "render_peak_bytes": render_peak,
        "first_scrape_seconds": round(first_seconds, 3),
        "cached_scrape_seconds": round(cached_seconds, 3),
        "longest_loop_stall_seconds": round(max(gaps, default=0.0), 3),
        "longest_idle_stall_seconds": round(idle, 3),
    }


def report(rows: list[dict[str, Any]]) -> str:
    load = " / ".join(f"{figure:.1f}" for figure in os.getloadavg())
    lines = [
        "### /metrics at scale (one scrape)",
        "",
        "Command: `python -m bench.metrics` (or `python -m bench.run --metrics`); "
        f"{os.cpu_count()} CPUs, load average {load} when done.",
        "",
        "| endpoints | --endpoint-histograms | series | series per endpoint | bytes | gzip bytes "
        "| render CPU, first (again) | render peak memory "
        "| first scrape (gzip) | cached scrape (gzip) | longest loop stall (idle) |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        lines.append(
            f"| {row['endpoints']} | {'on' if row['endpoint_histograms'] else 'off'} | "
            f"{row['series']} | {row['series_per_endpoint']} | {row['bytes'] / 1e6:.1f} MB | "
            f"{row['gzip_bytes'] / 1e6:.2f} MB | {row['first_render_cpu_seconds']:.2f} s "
            f"({row['render_cpu_seconds']:.2f} s) | "
            f"{row['render_peak_bytes'] / 1e6:.0f} MB | {row['first_scrape_seconds']:.2f} s | "
            f"{row['cached_scrape_seconds']:.3f} s | {row['longest_loop_stall_seconds'] * 1000:.0f} ms "
            f"({row['longest_idle_stall_seconds'] * 1000:.0f} ms) |")
    return "\n".join(lines) + "\n"


async def run(sizes: list[int], settings: list[bool], repeat: int = 3) -> list[dict[str, Any]]:
    rows = []
    for endpoints in sizes:
        for endpoint_histograms in settings:
            print(f"metrics: {endpoints} endpoints, endpoint histograms "
                  f"{'on' if endpoint_histograms else 'off'} ...", file=sys.stderr, flush=True)
            rows.append(await measure(endpoints, endpoint_histograms, repeat))
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.metrics", description=__doc__.split("\n")[0])
    parser.add_argument("--endpoints", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--histograms", choices=["off", "on", "both"], default="both",
                        help="--endpoint-histograms settings to measure (default both)")
    parser.add_argument("--repeat", type=int, default=3,
                        help="renders timed per row: the first, and the least of the others "
                             "(default 3)")
    parser.add_argument("--json", action="store_true", help="print the rows as JSON lines too")
    options = parser.parse_args(argv)
    settings = {"off": [False], "on": [True], "both": [False, True]}[options.histograms]
    if options.repeat < 1:
        parser.error(f"--repeat must be at least 1, not {options.repeat}")
    rows = asyncio.run(run(options.endpoints, settings, options.repeat))
    if options.json:
        for row in rows:
            print(json.dumps(row))
    print(report(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
