"""CPU per status write in local mode: realistic statuses through ``LocalStore.write_status``.

    .venv/bin/python -m bench.local_writes [--agreements 1000] [--endpoints 100] [--rounds 3]

The engine itself makes the statuses (on a simulated clock, agreements created in July so
the 90 daily bars are all there): each round is a 30 s routine refresh of every agreement, in
which half of the endpoints (probed every 60 s) have a new result, with a new latency and
time. The statuses are then written to a state folder in a temporary directory: the first
round creates the files, each later round rewrites them as the running operator does.
Reported: CPU seconds (process time, all threads: the file I/O runs in a worker thread) per
write, for the first round and each rewrite round, and, apart, ``dump_yaml`` alone on the
same statuses. Wall time is shown but mostly waits for fsync.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import tempfile
import time
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench.common import QuietStore
from sla_operator.domain.model import ProbeResult
from sla_operator.domain.parse import agreement_from_manifest
from sla_operator.engine import Engine, EngineSettings
from sla_operator.local.files import dump_yaml, merge_patch
from sla_operator.local.store import LocalStore
from sla_operator.store.base import Key, Kind

T0 = datetime(2026, 11, 26, 4, 0, tzinfo=UTC)
REFRESH = timedelta(seconds=30)


class CapturingStore(QuietStore):
    """Keeps the status writes the engine makes (merge patches: the fields that changed, or
    all of them), and each agreement's whole status as a store would hold it; writes nothing."""

    def __init__(self) -> None:
        self.patches: dict[Key, Mapping[str, Any]] = {}
        self.whole: dict[Key, dict[str, Any]] = {}

    async def write_status(self, kind: Kind, key: Key, status: Mapping[str, Any]) -> None:
        if kind is Kind.AGREEMENT:
            # Copied at once: the engine reuses its lists from one evaluation to the next.
            self.patches[key] = _copy(status)
            self.whole[key] = merge_patch(self.whole.get(key, {}), self.patches[key])


def manifest(index: int, endpoints: int) -> dict[str, Any]:
    return {"apiVersion": "sla.dev/v1alpha1", "kind": "ServiceLevelAgreement",
            "metadata": {"name": f"svc-{index:05d}", "namespace": f"team-{index // 50:03d}",
                         "uid": f"uid-{index}", "generation": 1,
                         "creationTimestamp": "2026-07-01T00:00:00Z"},
            "spec": {"service": f"Service {index}", "objective": "99.9",
                     "endpoints": [{"name": f"endpoint-{e:03d}",
                                    "http": {"url": f"http://127.0.0.1:{8000 + e % 8}/"}}
                                   for e in range(endpoints)]}}


Batch = list[tuple[Key, Mapping[str, Any]]]


async def statuses(agreements: int, endpoints: int, rounds: int) -> list[tuple[Batch, Batch]]:
    """Each round's status writes as the engine makes them, and the whole statuses after it."""
    now = [T0]
    capture = CapturingStore()
    engine = Engine(capture, EngineSettings(round_seconds=1e9, write_seconds=1e9),
                    clock=lambda: now[0])
    for index in range(agreements):
        engine.upsert_agreement(agreement_from_manifest(manifest(index, endpoints)))
    chance = random.Random(12)
    result = []
    for number in range(rounds):
        now[0] += REFRESH
        for key, runtime in engine.agreements.items():
            for endpoint in runtime.agreement.endpoints:
                if number and chance.random() < 0.5:
                    continue  # probed in the other half of its interval
                probed = now[0] - timedelta(seconds=chance.uniform(0, 30))
                engine.on_probe_result(key, endpoint, ProbeResult(
                    probed, True, chance.uniform(0.002, 0.2), "200 OK"))
        capture.patches.clear()
        await engine.evaluate_round(force=True)
        result.append((list(capture.patches.items()),
                       [(key, _copy(capture.whole[key])) for key in capture.patches]))
    return result


def _copy(value: Any) -> Any:
    """A copy of plain data (the engine's own lists and entries are not to be shared)."""
    if isinstance(value, Mapping):
        return {key: _copy(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_copy(item) for item in value]
    return value


async def write(store: LocalStore, batch: Batch) -> tuple[float, float]:
    """CPU and wall seconds to write ``batch`` one status after another."""
    cpu, wall = time.process_time(), time.perf_counter()
    for key, status in batch:
        await store.write_status(Kind.AGREEMENT, key, status)
    return time.process_time() - cpu, time.perf_counter() - wall


async def main(agreements: int, endpoints: int, rounds: int) -> None:
    started = time.perf_counter()
    made = await statuses(agreements, endpoints, rounds + 1)
    sample = made[-1][1][0][1]
    text = dump_yaml({"status": sample})
    print(f"{agreements} agreements x {endpoints} endpoints, {rounds} rewrite round(s); "
          f"statuses made in {time.perf_counter() - started:.1f}s; one status: "
          f"{len(sample['endpoints'])} endpoints, {len(sample['daily'])} daily bars, "
          f"{len(text)} bytes of YAML")
    cpu = time.process_time()
    for _, whole in made[1:]:
        for _, status in whole:
            dump_yaml({"status": status})
    dumps = sum(len(whole) for _, whole in made[1:])
    print(f"  dump_yaml alone       {(time.process_time() - cpu) / dumps * 1e3:7.3f} ms CPU "
          f"per status ({dumps} statuses)")
    with tempfile.TemporaryDirectory(prefix="bench-local-writes-") as directory:
        store = LocalStore(Path(directory))
        first = made[0][0]
        first_cpu, first_wall = await write(store, first)
        print(f"  first write           {first_cpu / len(first) * 1e3:7.3f} ms CPU per write, "
              f"{first_wall / len(first) * 1e3:7.3f} ms wall ({len(first)} files)")
        for number, (batch, _) in enumerate(made[1:], start=1):
            cpu_spent, wall_spent = await write(store, batch)
            print(f"  rewrite, round {number}      {cpu_spent / len(batch) * 1e3:7.3f} ms CPU per "
                  f"write, {wall_spent / len(batch) * 1e3:7.3f} ms wall ({len(batch)} writes)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--agreements", type=int, default=1000)
    parser.add_argument("--endpoints", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=3, help="rewrite rounds after the first")
    args = parser.parse_args()
    asyncio.run(main(args.agreements, args.endpoints, args.rounds))
