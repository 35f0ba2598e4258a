"""The engine's bookkeeping for a whole fleet, without probes or I/O: CPU per evaluation and per
snapshot round.

    python -m bench.fleet [--agreements 1000] [--endpoints 100] [--interval 60] [--seconds 60]

A agreements x E endpoints, each probed once per --interval (synthetic results, all answering,
a few slow), fed to the runtimes as the probe scheduler would: spread evenly over each second.
Every simulated second is one round: the results of that second, then the evaluations due
(each agreement every ``status_interval`` at its own phase, and after a state change), then
one snapshot, as ``Engine.evaluate_round`` and ``Engine.publish`` do. One agreement in ten has
an endpoint that goes down and up again, so some evaluations follow state changes.

CPU time (time.process_time) of each part is summed over --seconds of steady state, the garbage
collector's apart (it runs in whichever part allocations cross its threshold), after one
interval of warm-up in which every endpoint got its first result and every agreement its first
evaluation; the collector is set up as the operator's process sets it (thresholds, and what
exists after the warm-up frozen). Prints one JSON line.
"""

from __future__ import annotations

import argparse
import gc
import json
import random
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from sla_operator.cli import GC_THRESHOLDS
from sla_operator.domain.model import (
    Agreement,
    Endpoint,
    HttpProbe,
    LabelSelector,
    MaintenanceWindow,
    ProbeResult,
)
from sla_operator.engine.evaluate import evaluate_agreement
from sla_operator.engine.runtime import AgreementRuntime
from sla_operator.engine.snapshot import build_snapshot
from sla_operator.engine.windows import Windows
from sla_operator.probes.scheduler import LagHistogram

START = datetime(2026, 11, 26, 12, tzinfo=UTC)
STATUS_INTERVAL = 30.0
AGREEMENTS_PER_NAMESPACE = 50


def fleet(agreements: int, endpoints: int, interval: float) -> list[AgreementRuntime]:
    runtimes = []
    for index in range(agreements):
        namespace = f"team-{index // AGREEMENTS_PER_NAMESPACE:03d}"
        agreement = Agreement(
            namespace=namespace, name=f"a{index}", service=f"Bench {index}",
            objective=Decimal("99.9"), labels={"team": namespace},
            endpoints=tuple(Endpoint(f"e{n}", HttpProbe(f"http://127.0.0.1:9/e{n}"),
                                     interval=timedelta(seconds=interval),
                                     degraded_latency=timedelta(seconds=1))
                            for n in range(endpoints)),
            created_at=START - timedelta(days=400))
        runtimes.append(AgreementRuntime(agreement, started=START - timedelta(seconds=interval)))
    return runtimes


def weekly(namespace: str) -> MaintenanceWindow:
    return MaintenanceWindow(namespace=namespace, name="weekly", schedule="0 3 * * SUN",
                             duration=timedelta(hours=1),
                             sla_selector=LabelSelector({"team": namespace}))


class Fleet:
    def __init__(self, agreements: int, endpoints: int, interval: float, seed: int = 1) -> None:
        self.runtimes = fleet(agreements, endpoints, interval)
        self.interval = interval
        self.windows = Windows()
        for namespace in sorted({r.agreement.namespace for r in self.runtimes}):
            self.windows.put(weekly(namespace))
        self.random = random.Random(seed)
        # (runtime, endpoint, second of the interval it is probed at)
        self.schedule: list[list[tuple[AgreementRuntime, Endpoint]]] = [
            [] for _ in range(max(1, round(interval)))]
        slot = 0
        for runtime in self.runtimes:
            for endpoint in runtime.agreement.endpoints:
                self.schedule[slot % len(self.schedule)].append((runtime, endpoint))
                slot += 1
        self.flaky = {id(r) for r in self.runtimes[::10]}
        self.snapshot = build_snapshot([], [], [], LagHistogram(), START)
        self.evaluated_at: dict[int, float] = {}
        self.cpu = {"probe": 0.0, "evaluation": 0.0, "snapshot": 0.0, "collector": 0.0}
        self.counts = {"probe": 0, "evaluation": 0, "snapshot": 0, "collector": 0}
        self.collecting = 0.0  # CPU seconds of the garbage collector so far
        self._collection_started = 0.0
        gc.callbacks.append(self._collection)

    def _collection(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._collection_started = time.process_time()
        else:
            self.collecting += time.process_time() - self._collection_started
            self.counts["collector"] += 1

    def second(self, second: int) -> None:
        now = START + timedelta(seconds=second)
        results = []
        for runtime, endpoint in self.schedule[second % len(self.schedule)]:
            ok = not (id(runtime) in self.flaky and endpoint.name == "e0"
                      and (second // int(self.interval * 4)) % 2 == 1)
            latency = self.random.uniform(0.001, 0.05)
            if self.random.random() < 0.001:
                latency = 1.5  # slow: a Degraded streak starts
            results.append((runtime, endpoint, ProbeResult(now, ok, latency,
                                                          "200 OK" if ok else "connection refused")))
        started, collected = time.process_time(), self.collecting
        for runtime, endpoint, result in results:
            runtime.observe(endpoint, result)
        self._spent("probe", started, collected, len(results))

        started, collected = time.process_time(), self.collecting
        evaluations = 0
        for index, runtime in enumerate(self.runtimes):
            phase = index * STATUS_INTERVAL / len(self.runtimes)
            due = (runtime.last_evaluated is None or runtime.dirty
                   or ((second - phase) % STATUS_INTERVAL < 1 and second >= phase))
            if due:
                agreement = runtime.agreement
                evaluate_agreement(runtime, [], self.windows.of(agreement), now,
                                   self.windows.intervals)
                runtime.dirty = False
                evaluations += 1
        self._spent("evaluation", started, collected, evaluations)

        started, collected = time.process_time(), self.collecting
        self.snapshot = build_snapshot(self.runtimes, [], self.windows_list(), LagHistogram(),
                                       now, self.snapshot)
        self._spent("snapshot", started, collected, 1)

    def windows_list(self) -> list[MaintenanceWindow]:
        return [w for r in self.runtimes[::AGREEMENTS_PER_NAMESPACE]
                for w in self.windows.of(r.agreement)]

    def _spent(self, part: str, started: float, collected: float, count: int) -> None:
        """CPU of ``part`` since ``started``, less the collector's (counted on its own: it
        runs whenever allocations cross a threshold, in whichever part that happens)."""
        collector = self.collecting - collected
        self.cpu[part] += time.process_time() - started - collector
        self.cpu["collector"] += collector
        self.counts[part] += count

    def reset(self) -> None:
        self.cpu = dict.fromkeys(self.cpu, 0.0)
        self.counts = dict.fromkeys(self.counts, 0)


def measure(agreements: int = 1000, endpoints: int = 100, interval: float = 60,
            seconds: int = 60) -> dict[str, Any]:
    gc.set_threshold(*GC_THRESHOLDS)  # as `sla-operator run` and `local` set them
    bench = Fleet(agreements, endpoints, interval)
    warm = int(interval) + 1
    for second in range(warm):
        bench.second(second)
    gc.collect()
    gc.freeze()  # as the engine does after its first round
    bench.reset()
    for second in range(warm, warm + seconds):
        bench.second(second)
    per = {part: bench.cpu[part] / bench.counts[part] if bench.counts[part] else 0.0
           for part in bench.cpu}
    return {
        "agreements": agreements, "endpoints": endpoints, "interval": interval,
        "seconds": seconds, "probes": bench.counts["probe"],
        "evaluations": bench.counts["evaluation"],
        "cpu_seconds": {part: round(value, 3) for part, value in bench.cpu.items()},
        "collections": bench.counts["collector"],
        "us_per_probe_result": round(per["probe"] * 1e6, 2),
        "ms_per_evaluation": round(per["evaluation"] * 1e3, 3),
        "ms_per_snapshot": round(per["snapshot"] * 1e3, 2),
        "collector_ms_per_second": round(bench.cpu["collector"] / seconds * 1e3, 2),
        "core_share": round(sum(bench.cpu.values()) / seconds, 3),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--agreements", type=int, default=1000)
    parser.add_argument("--endpoints", type=int, default=100)
    parser.add_argument("--interval", type=float, default=60)
    parser.add_argument("--seconds", type=int, default=60)
    options = parser.parse_args(argv)
    print(json.dumps(measure(options.agreements, options.endpoints, options.interval,
                             options.seconds)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
