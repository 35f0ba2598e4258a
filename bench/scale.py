"""Phase three: 10,000 HTTP endpoints on one core; schedule lag and peak memory.

Run as its own process (``python -m bench.scale JSON``) so that the CPU pinning and the
peak RSS belong to the engine alone; prints its figures as one JSON line.
"""

from __future__ import annotations

import asyncio
import json
import os
import resource
import sys
import time
from typing import Any

from bench.common import http_endpoints, quantile
from bench.engine import no_secrets
from sla_operator.cli import use_event_loop
from sla_operator.domain.model import Endpoint, ProbeResult
from sla_operator.probes.base import ProbeContext
from sla_operator.probes.policy import AddressPolicy
from sla_operator.probes.scheduler import ProbeScheduler


async def measure_scale(
    target_urls: list[str], endpoint_count: int, interval: float, intervals: int
) -> dict[str, Any]:
    probes = failures = 0
    first_failure = ""

    def record(owner: tuple[str, str], endpoint: Endpoint, result: ProbeResult) -> None:
        nonlocal probes, failures, first_failure
        probes += 1
        if not result.ok:
            failures += 1
            first_failure = first_failure or result.message

    lags: list[float] = []
    scheduler = ProbeScheduler(record, concurrency=256)
    observe = scheduler.lag.observe

    def observe_and_keep(seconds: float) -> None:
        lags.append(seconds)
        observe(seconds)

    scheduler.lag.observe = observe_and_keep  # type: ignore[method-assign]
    context = ProbeContext(policy=AddressPolicy(), resolve_secret=no_secrets)
    endpoints = http_endpoints(target_urls, endpoint_count, interval)
    cpu_start, wall_start = time.process_time(), time.monotonic()
    scheduler.set_endpoints(("bench", "scale"), endpoints, context)
    task = asyncio.create_task(scheduler.run())
    await asyncio.sleep(interval * intervals + 1)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    lags.sort()
    return {
        "endpoints": endpoint_count,
        "interval_seconds": interval,
        "wall_seconds": round(time.monotonic() - wall_start, 1),
        "cpu_seconds": round(time.process_time() - cpu_start, 2),
        "probes": probes,
        "failures": failures,
        "first_failure": first_failure,
        "skipped": scheduler.skipped,
        "lag_p50_seconds": quantile(lags, 0.50),
        "lag_p99_seconds": quantile(lags, 0.99),
        "lag_max_seconds": lags[-1] if lags else float("nan"),
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "cpu_affinity": sorted(os.sched_getaffinity(0)),
    }


def main() -> None:
    options = json.loads(sys.argv[1])
    if options.get("cpu") is not None:
        os.sched_setaffinity(0, {options["cpu"]})
    use_event_loop(no_uvloop=False)  # as the operator runs; SLA_OPERATOR_UVLOOP=0 turns it off
    figures = asyncio.run(
        measure_scale(options["urls"], options["endpoints"], options["interval"], options["intervals"])
    )
    print(json.dumps(figures), flush=True)


if __name__ == "__main__":
    main()
