"""Status writes per second the engine sends, on a simulated clock (no API server, no sleeping).

    .venv/bin/python -m bench.status_writes [--agreements 1000] [--rate 50] [--interval 30]

Start-up (every first status), then steady state (routine refreshes), then a burst (every
agreement changes state at once): writes per simulated second, largest and mean, and how many
seconds the burst took to be written in full.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from bench.common import QuietStore
from sla_operator.domain.model import ProbeResult
from sla_operator.domain.parse import agreement_from_manifest
from sla_operator.engine import Engine, EngineSettings
from sla_operator.store.base import Key, Kind

T0 = datetime(2026, 11, 26, 4, 0, tzinfo=UTC)


class CountingStore(QuietStore):
    """Takes every write at once and counts the agreements' status writes."""

    def __init__(self) -> None:
        self.states: list[tuple[str, str]] = []  # (name, state after it) of each write
        self.held: dict[Key, str] = {}

    async def write_status(self, kind: Kind, key: Key, status: Mapping[str, Any]) -> None:
        if kind is Kind.AGREEMENT:
            # A write is a merge patch: the state is in it only when it changed.
            self.held[key] = str(status.get("state", self.held.get(key)))
            self.states.append((key[1], self.held[key]))


def manifest(index: int) -> dict[str, Any]:
    return {"apiVersion": "sla.dev/v1alpha1", "kind": "ServiceLevelAgreement",
            "metadata": {"name": f"svc-{index:05d}", "namespace": "bench", "uid": f"uid-{index}",
                         "generation": 1, "creationTimestamp": "2026-10-01T00:00:00Z"},
            "spec": {"service": f"Service {index}", "objective": "99.9",
                     "endpoints": [{"name": "api", "http": {"url": "http://127.0.0.1:9/"}}]}}


async def main(agreements: int, rate: float, interval: float) -> None:
    now = [T0]
    store = CountingStore()
    engine = Engine(store, EngineSettings(status_interval=interval,
                                          max_status_writes_per_second=rate),
                    clock=lambda: now[0])
    for index in range(agreements):
        engine.upsert_agreement(agreement_from_manifest(manifest(index)))

    async def seconds(count: int) -> list[int]:
        written = []
        for _ in range(count):
            before = len(store.states)
            await engine.evaluate_round()
            written.append(len(store.states) - before)
            now[0] += timedelta(seconds=1)
        return written

    started = time.process_time()
    startup = await seconds(int(2 * interval + agreements / max(rate, 1)))
    steady = await seconds(int(interval))
    for key, runtime in engine.agreements.items():
        for endpoint in runtime.agreement.endpoints:
            engine.on_probe_result(key, endpoint, ProbeResult(now[0], True, 0.01, "200 OK"))
    before = len(store.states)
    burst = await seconds(int(agreements / max(rate, 1) + interval))
    first_up: dict[str, int] = {}
    for index, (name, state) in enumerate(store.states[before:]):
        if state == "Up":
            first_up.setdefault(name, index)
    ups = sorted(first_up.values())
    cpu = time.process_time() - started
    print(f"agreements {agreements}, cap {rate:g}/s (0: none), status interval {interval:g}s")
    for name, run in (("start-up", startup), ("steady", steady), ("burst", burst)):
        print(f"  {name:9} writes/s max {max(run):5d}  mean {sum(run) / len(run):7.1f}")
    print(f"  burst: {len(ups)} of {agreements} state changes written, the last after "
          f"{_second_of(burst, ups[-1] + 1) if ups else 0}s; writes before it that were "
          f"refreshes: {ups[-1] + 1 - len(ups) if ups else 0}")
    print(f"  deferred {engine.writes.deferred}, engine CPU {cpu:.1f}s "
          f"for {len(startup) + len(steady) + len(burst)} simulated seconds")


def _second_of(per_second: list[int], count: int) -> int:
    """The simulated second by whose end ``count`` writes had gone out."""
    total = 0
    for second, written in enumerate(per_second, start=1):
        total += written
        if total >= count:
            return second
    return len(per_second)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--agreements", type=int, default=1000)
    parser.add_argument("--rate", type=float, default=50.0)
    parser.add_argument("--interval", type=float, default=30.0)
    args = parser.parse_args()
    asyncio.run(main(args.agreements, args.rate, args.interval))
