"""Phase one: our engine (ProbeScheduler + run_probe) at a fixed total probe rate."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

from bench.common import http_endpoints
from sla_operator.domain.model import Endpoint, ProbeResult
from sla_operator.probes.base import ProbeContext
from sla_operator.probes.policy import AddressPolicy
from sla_operator.probes.scheduler import ProbeScheduler

OWNER = ("bench", "engine")


async def no_secrets(name: str, key: str) -> str:
    raise LookupError(f"the benchmark has no secret {name}/{key}")


@dataclass
class RateFigures:
    probes: int
    failures: int
    cpu_seconds: float
    wall_seconds: float

    @property
    def probes_per_cpu_second(self) -> float:
        return self.probes / self.cpu_seconds if self.cpu_seconds else float("nan")

    @property
    def rate(self) -> float:
        return self.probes / self.wall_seconds


@dataclass
class _Tally:
    probes: int = 0
    failures: int = 0
    first_failure: str = ""

    def record(self, owner: tuple[str, str], endpoint: Endpoint, result: ProbeResult) -> None:
        self.probes += 1
        if not result.ok:
            self.failures += 1
            self.first_failure = self.first_failure or result.message


async def measure_engine(
    target_urls: list[str], endpoint_count: int, rate: float, duration: float
) -> tuple[RateFigures, str]:
    """Probes per CPU second of this process while the engine probes at ``rate`` per second."""
    interval = endpoint_count / rate
    tally = _Tally()
    context = ProbeContext(policy=AddressPolicy(), resolve_secret=no_secrets)
    scheduler = ProbeScheduler(tally.record, concurrency=256)
    scheduler.set_endpoints(OWNER, http_endpoints(target_urls, endpoint_count, interval), context)
    task = asyncio.create_task(scheduler.run())
    try:
        await asyncio.sleep(interval + 1)  # warm-up: every endpoint has run once
        before = _Tally(tally.probes, tally.failures)
        cpu_start, wall_start = time.process_time(), time.monotonic()
        await asyncio.sleep(duration)
        cpu = time.process_time() - cpu_start
        wall = time.monotonic() - wall_start
        figures = RateFigures(tally.probes - before.probes, tally.failures - before.failures, cpu, wall)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    return figures, tally.first_failure
