"""The highest probe rate each prober sustains on one core with the probe's own p99 under 100 ms.

Each step runs one prober pinned to the first CPU at a fixed rate for --saturation-duration
seconds (after a warm-up); the target and the exporter's driver share the last CPU. A rate is
sustained when at least 97% of the probes due were done, none was skipped, none failed, and
the 99th percentile of the probe's own latency (our `ProbeResult.latency_seconds`, the
exporter's `probe_duration_seconds`) stayed under 100 ms. The search doubles the rate until a
step fails, then halves the gap between the last rate sustained and the first one not.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

import aiohttp

from bench import blackbox
from bench.common import http_endpoints, quantile
from bench.engine import no_secrets
from sla_operator.domain.model import Endpoint, ProbeResult
from sla_operator.probes.base import ProbeContext
from sla_operator.probes.policy import AddressPolicy
from sla_operator.probes.scheduler import ProbeScheduler

LATENCY_LIMIT = 0.100
DONE_RATIO = 0.97
ENGINE_INTERVAL = 5.0  # seconds; the rate decides how many endpoints share it
DURATION_PATTERN = re.compile(r"^probe_duration_seconds ([\d.e+-]+)$", re.M)
SUCCESS_PATTERN = re.compile(r"^probe_success 1", re.M)


def sustained(step: dict[str, Any]) -> bool:
    return bool(step["done"] >= DONE_RATIO * step["due"] and step["skipped"] == 0
                and step["failures"] == 0 and step["p99"] < LATENCY_LIMIT)


def search(step: Callable[[float], dict[str, Any]], start: float, limit: float,
           refinements: int, name: str) -> tuple[float, list[dict[str, Any]]]:
    """The highest rate found sustained (0 when even ``start`` is not) and every step run."""
    steps: list[dict[str, Any]] = []

    def run(rate: float) -> bool:
        figures = step(rate)
        figures["sustained"] = sustained(figures)
        steps.append(figures)
        print(f"  saturation {name}: {rate:.0f}/s -> done {figures['done']}/{figures['due']}, "
              f"skipped {figures['skipped']}, failures {figures['failures']}, "
              f"p99 {figures['p99'] * 1000:.1f} ms: {'sustained' if figures['sustained'] else 'not'}",
              file=sys.stderr, flush=True)
        return bool(figures["sustained"])

    good, bad = 0.0, None
    rate = start
    while rate <= limit:
        if not run(rate):
            bad = rate
            break
        good, rate = rate, rate * 2
    for _ in range(refinements if bad is not None else 0):
        middle = (good + bad) / 2 if good else bad / 2
        if run(middle):
            good = middle
        else:
            bad = middle
    return good, steps


# ------------------------------------------------------------ our engine, in its own process

def engine_step(urls: list[str], rate: float, duration: float, cpu: int) -> dict[str, Any]:
    settings = {"urls": urls, "rate": rate, "duration": duration, "cpu": cpu}
    output = subprocess.run([sys.executable, "-m", "bench.saturation", json.dumps(settings)],
                            check=True, capture_output=True, text=True)
    figures: dict[str, Any] = json.loads(output.stdout.strip().splitlines()[-1])
    return figures


async def _engine_at(urls: list[str], rate: float, duration: float) -> dict[str, Any]:
    latencies: list[float] = []
    failures = 0
    measuring = False

    def record(owner: tuple[str, str], endpoint: Endpoint, result: ProbeResult) -> None:
        nonlocal failures
        if measuring:
            latencies.append(result.latency_seconds)
            failures += not result.ok

    scheduler = ProbeScheduler(record, concurrency=256)
    context = ProbeContext(policy=AddressPolicy(), resolve_secret=no_secrets)
    count = max(1, round(rate * ENGINE_INTERVAL))
    scheduler.set_endpoints(("bench", "saturation"), http_endpoints(urls, count, ENGINE_INTERVAL), context)
    task = asyncio.create_task(scheduler.run())
    try:
        await asyncio.sleep(ENGINE_INTERVAL + 1)  # every endpoint has run once
        measuring, skipped_before = True, scheduler.skipped
        await asyncio.sleep(duration)
        measuring = False
        skipped = scheduler.skipped - skipped_before
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    latencies.sort()
    return {"rate": rate, "due": round(count / ENGINE_INTERVAL * duration), "done": len(latencies),
            "skipped": skipped, "failures": failures, "p99": quantile(latencies, 0.99)}


# ------------------------------------------------------------ blackbox_exporter

async def exporter_step(urls: list[str], rate: float, duration: float, cpu: int) -> dict[str, Any]:
    with blackbox.running_exporter(cpu) as (_pid, port):
        probe_urls = [f"http://127.0.0.1:{port}/probe?module=http_2xx&target={quote(url, safe='')}"
                      for url in urls]
        connector = aiohttp.TCPConnector(limit=blackbox.DRIVER_CONCURRENCY)
        async with aiohttp.ClientSession(connector=connector) as session:
            await _drive(session, probe_urls, rate, 2.0)  # warm-up
            done, failures, latencies = await _drive(session, probe_urls, rate, duration)
    latencies.sort()
    return {"rate": rate, "due": round(rate * duration), "done": done, "skipped": 0,
            "failures": failures, "p99": quantile(latencies, 0.99)}


async def _drive(session: aiohttp.ClientSession, probe_urls: list[str], rate: float,
                 duration: float) -> tuple[int, int, list[float]]:
    """Calls /probe at ``rate`` for ``duration``; counts only answers back before it ends."""
    slots = asyncio.Semaphore(blackbox.DRIVER_CONCURRENCY)
    start = time.monotonic()
    end = start + duration
    done = failures = 0
    latencies: list[float] = []
    tasks: set[asyncio.Task[None]] = set()

    async def one(url: str) -> None:
        nonlocal done, failures
        try:
            async with session.get(url) as response:
                text = await response.text()
            if time.monotonic() <= end + 1.0:
                done += 1
                failures += SUCCESS_PATTERN.search(text) is None
                found = DURATION_PATTERN.search(text)
                latencies.append(float(found.group(1)) if found else float("inf"))
        except aiohttp.ClientError:
            failures += 1
        finally:
            slots.release()

    index = 0
    while (due := start + index / rate) < end:
        await asyncio.sleep(max(0.0, due - time.monotonic()))
        await slots.acquire()
        task = asyncio.create_task(one(probe_urls[index % len(probe_urls)]))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
        index += 1
    await asyncio.gather(*tasks)
    return done, failures, latencies


def measure(urls: list[str], options: Any, exporter_missing: str | None) -> dict[str, Any]:
    cpus = sorted(os.sched_getaffinity(0))
    prober_cpu = cpus[0]
    result: dict[str, Any] = {"cpu": prober_cpu, "duration": options.saturation_duration}
    result["engine"] = search(lambda rate: engine_step(urls, rate, options.saturation_duration, prober_cpu),
                              options.saturation_start, options.saturation_limit,
                              options.saturation_refinements, "engine")
    if exporter_missing is None:
        result["exporter"] = search(
            lambda rate: asyncio.run(exporter_step(urls, rate, options.saturation_duration, prober_cpu)),
            options.saturation_start, options.saturation_limit, options.saturation_refinements,
            "blackbox_exporter")
    else:
        result["exporter"] = exporter_missing
    return result


def main() -> None:
    from sla_operator.cli import use_event_loop

    options = json.loads(sys.argv[1])
    os.sched_setaffinity(0, {options["cpu"]})
    use_event_loop(no_uvloop=False)
    figures = asyncio.run(_engine_at(options["urls"], options["rate"], options["duration"]))
    print(json.dumps(figures), flush=True)


if __name__ == "__main__":
    main()
