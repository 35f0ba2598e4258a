"""API server CPU per status PATCH of an agreement, by the shape of what its status stores.

    .venv/bin/python -m bench.status_shapes [--agreements 100] [--rounds 5] [--repeat 2]

On the local control plane (as `make bench-cluster`): agreements of 10 HTTP endpoints, each
given one status shape with a PUT of its status, then patched as the operator's routine
refresh does (``lastEvaluated``, ``currentPeriod``, ``endpoints``) from 4 clients while two
watches follow the namespace (the operator's and the benchmark's in the cluster benchmark).
CPU of kube-apiserver and etcd from /proc over the patches. No operator runs: the statuses
are rendered in-process by the engine, so the figures isolate what the stored shape costs.

Shapes: the status as this tree writes it (daily bars as runs of days alike) and with one
entry per day (as before), each for a new agreement, a 90-day-old one (every day measured) and
with three locations' views of every endpoint; without the daily bars; no status but a state.
"""

from __future__ import annotations

import argparse
import asyncio
import copy
import json
import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

from bench.apiserver_cpu import CpuMeter, control_plane_pids
from bench.cluster import (
    GROUP,
    PLURAL,
    REPO,
    VERSION,
    Progress,
    _load,
    agreement,
    api_client,
    kubectl_runner,
    start_control_plane,
)
from bench.common import QuietStore
from sla_operator.domain.model import ProbeResult
from sla_operator.domain.parse import agreement_from_manifest
from sla_operator.domain.render import daily_runs
from sla_operator.engine import Engine, EngineSettings
from sla_operator.store.base import Key, Kind

NAMESPACE = "shapes"
METADATA_ONLY = "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1, application/json"
ANSWERED_SHORT = "runs of days alike, answered with its metadata only"


class LastStatus(QuietStore):
    def __init__(self) -> None:
        self.status: dict[str, Any] = {}

    async def write_status(self, kind: Kind, key: Key, status: Any) -> None:
        if kind is Kind.AGREEMENT:
            self.status.update(status)


def rendered_status(urls: list[str]) -> dict[str, Any]:
    """An agreement created 10 minutes ago, every endpoint Up, as the engine writes it."""
    now = datetime.now(UTC).replace(microsecond=0)
    body = agreement("shape", urls, 10, 30, 0)
    body["metadata"].update(namespace=NAMESPACE, uid="shape", generation=1,
                            creationTimestamp=f"{now - timedelta(minutes=10):%Y-%m-%dT%H:%M:%SZ}")
    clock = [now - timedelta(minutes=9)]
    store = LastStatus()
    engine = Engine(store, EngineSettings(status_interval=30), clock=lambda: clock[0])
    engine.upsert_agreement(agreement_from_manifest(body))

    async def run() -> None:
        while clock[0] < now:
            for key, runtime in engine.agreements.items():
                for endpoint in runtime.agreement.endpoints:
                    engine.on_probe_result(key, endpoint, ProbeResult(clock[0], True, 0.012, "200 OK"))
            await engine.evaluate_round()
            clock[0] += timedelta(seconds=5)

    asyncio.run(run())
    return {name: value for name, value in store.status.items() if value is not None}


def per_day(status: dict[str, Any]) -> dict[str, Any]:
    """The status with one daily entry per day, as before the bars were stored as runs."""
    copied = copy.deepcopy(status)
    days = []
    for run in copied["daily"]:
        first = datetime.fromisoformat(run["date"]).date()
        figures = {k: v for k, v in run.items() if k not in ("date", "days")}
        days.extend({"date": (first + timedelta(days=i)).isoformat(), **figures}
                    for i in range(run.get("days", 1)))
    copied["daily"] = days
    return copied


def with_locations(status: dict[str, Any], names: tuple[str, ...] = ("a", "b", "c")) -> None:
    """Each endpoint seen from three locations (``status.endpoints[].locations``)."""
    for entry in status["endpoints"]:
        entry["locations"] = [{"name": name, "state": "Up", "since": entry["since"],
                               "lastProbeTime": entry["lastProbeTime"], "message": "200 OK"}
                              for name in names]


def shapes(status: dict[str, Any]) -> dict[str, dict[str, Any]]:
    def changed(change: Callable[[dict[str, Any]], None], base: dict[str, Any] = status
                ) -> dict[str, Any]:
        copied = copy.deepcopy(base)
        change(copied)
        return copied

    def measured_all_along(s: dict[str, Any]) -> None:
        for day in s["daily"]:
            for name in ("excludedSeconds", "unmonitoredSeconds"):
                day.pop(name, None)
            day["availability"] = "100.0000"

    def runs_of(change: Callable[[dict[str, Any]], None]) -> Callable[[dict[str, Any]], None]:
        def apply(s: dict[str, Any]) -> None:
            change(s)
            s["daily"] = daily_runs(s["daily"])
        return apply

    days = per_day(status)
    return {
        "one entry per day (before), a new agreement": changed(lambda s: None, days),
        "runs of days alike (this tree), a new agreement": changed(lambda s: None),
        ANSWERED_SHORT: changed(lambda s: None),
        "one entry per day (before), a 90-day-old agreement": changed(measured_all_along, days),
        "runs of days alike, a 90-day-old agreement": changed(runs_of(measured_all_along), days),
        "one entry per day (before), three locations": changed(with_locations, days),
        "runs of days alike, three locations": changed(with_locations),
        "no daily bars": changed(lambda s: s.pop("daily")),
        "no status but state and lastEvaluated": {"state": "Up",
                                                  "lastEvaluated": status["lastEvaluated"]},
    }


def routine_patch(status: dict[str, Any], round_: int) -> dict[str, Any]:
    stamp = f"{datetime.now(UTC):%Y-%m-%dT%H:%M:%SZ}"
    patch: dict[str, Any] = {"lastEvaluated": stamp}
    if "currentPeriod" in status:
        patch["currentPeriod"] = {**status["currentPeriod"],
                                  "elapsedSeconds": status["currentPeriod"]["elapsedSeconds"] + round_}
    if "endpoints" in status:
        patch["endpoints"] = [{**entry, "lastProbeTime": stamp,
                               "consecutiveSuccesses": entry["consecutiveSuccesses"] + round_}
                              for entry in status["endpoints"]]
    return {"status": patch}


def patch(api: Any, name: str, body: dict[str, Any], short: bool) -> None:
    """As the operator writes a status: the answer read off the connection, not parsed;
    ``short`` asks for the object's metadata only instead of the whole object."""
    response = api.patch_namespaced_custom_object_status(
        GROUP, VERSION, NAMESPACE, PLURAL, name, body,
        _content_type="application/merge-patch+json", _preload_content=False,
        **({"_headers": {"Accept": METADATA_ONLY}} if short else {}))
    try:
        response.drain_conn()
    finally:
        response.release_conn()


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--agreements", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=5, help="patches of each agreement per shape")
    parser.add_argument("--repeat", type=int, default=2, help="passes over every shape")
    args = parser.parse_args()
    progress = Progress()
    plane = start_control_plane(_load("controlplane"), progress)
    try:
        meter = CpuMeter(control_plane_pids(plane._procs))
        kubectl = kubectl_runner(plane.kubeconfig)
        kubectl("apply", "-f", str(REPO / "crds"))
        kubectl("wait", "--for=condition=Established", f"crd/{PLURAL}.{GROUP}", "--timeout=60s")
        kubectl("create", "namespace", NAMESPACE)
        from kubernetes import client, watch

        api = client.CustomObjectsApi(api_client(plane.kubeconfig))
        urls = [f"http://127.0.0.1:{9000 + i}/" for i in range(8)]
        names = [f"agreement-{i:05d}" for i in range(args.agreements)]
        with ThreadPoolExecutor(8) as pool:
            list(pool.map(lambda n: api.create_namespaced_custom_object(
                GROUP, VERSION, NAMESPACE, PLURAL, agreement(n, urls, 10, 30, 0)), names))

        def follow() -> None:
            reader = client.CustomObjectsApi(api_client(plane.kubeconfig))
            while True:
                try:
                    for _ in watch.Watch().stream(reader.list_namespaced_custom_object, GROUP, VERSION,
                                                  NAMESPACE, PLURAL, timeout_seconds=300):
                        pass
                except Exception:  # a dropped watch: follow again
                    time.sleep(0.5)

        for _ in range(2):
            threading.Thread(target=follow, daemon=True).start()
        status = rendered_status(urls)
        results: dict[str, list[tuple[float, float, float]]] = {}
        for _ in range(args.repeat):
            for label, shape in shapes(status).items():
                def put(name: str, shape: dict[str, Any] = shape) -> None:
                    obj = api.get_namespaced_custom_object(GROUP, VERSION, NAMESPACE, PLURAL, name)
                    obj["status"] = shape
                    api.replace_namespaced_custom_object_status(GROUP, VERSION, NAMESPACE, PLURAL,
                                                               name, obj)
                with ThreadPoolExecutor(4) as pool:
                    list(pool.map(put, names))
                stored = api.get_namespaced_custom_object(GROUP, VERSION, NAMESPACE, PLURAL, names[0])
                size = len(json.dumps(stored, separators=(",", ":")))
                time.sleep(2)
                meter.start()
                for round_ in range(args.rounds):
                    with ThreadPoolExecutor(4) as pool:
                        list(pool.map(lambda n, r=round_, s=shape, short=label == ANSWERED_SHORT:
                                      patch(api, n, routine_patch(s, r), short), names))
                window = meter.stop()
                count = args.rounds * len(names)
                apiserver = window.cpu.get("kube-apiserver", float("nan")) / count * 1000
                etcd = window.cpu.get("etcd", float("nan")) / count * 1000
                results.setdefault(label, []).append((size, apiserver, etcd))
                progress.phase(f"{label}: {size / 1000:.1f} kB stored, API server {apiserver:.1f} ms "
                               f"per patch, etcd {etcd:.1f} ms (load {os.getloadavg()[0]:.1f})")
        print(f"\n{args.agreements} agreements x 10 endpoints, {args.rounds} routine patches each "
              f"per shape, {args.repeat} pass(es); load average at the end "
              f"{', '.join(f'{v:.2f}' for v in os.getloadavg())}\n")
        print("| status stored | agreement as stored | API server CPU per patch | etcd CPU per patch |")
        print("|---|---|---|---|")
        for label, runs in results.items():
            print(f"| {label} | {runs[0][0] / 1000:.1f} kB | "
                  f"{' / '.join(f'{r[1]:.1f}' for r in runs)} ms | "
                  f"{' / '.join(f'{r[2]:.1f}' for r in runs)} ms |")
    finally:
        plane.stop()


if __name__ == "__main__":
    main()
