"""`make bench-cluster`: the operator against a real API server, 1,000 agreements x 10 endpoints.

    python -m bench.cluster [--agreements 1000] [--endpoints 10] [--interval 30] [--duration 90]
                            [--new-agreements 50] [--operator-arg=--flag=value]... [--write FILE]
                            [--before GIT_REF] [--idle 20] [--locations 1]

Uses the cluster of KUBECONFIG when it names an existing file, else starts the local control
plane of the e2e tests (etcd + kube-apiserver on loopback; no controller-manager). The
agreements probe a local HTTP target (bench/target.py) and `sla-operator run` runs as a child
process with its default status interval. Phases:

1. cluster, target, CRDs and a fresh namespace;
2. the agreements created, then the operator started: time until every one has a status;
3. steady state for --duration seconds: status writes per second and the API server's request
   rate (both from its own ``apiserver_request_total``), operator CPU;
4. --new-agreements applied one at a time with ``kubectl apply`` while the others run: time
   from the apply to the agreement's first status (p50/p99);
5. the operator stopped and started again: time until every agreement's ``lastEvaluated`` is
   later than the restart; peak RSS (VmHWM) of both processes.

With the local control plane, the API server's and etcd's CPU are read from /proc: for
``--idle`` seconds before any operator runs, then over the steady state, giving the API
server's CPU per status write and per second (issue 21). ``--before REF`` first runs the
operator of git REF through phases 2 and 3 on the same agreements: before and after side
by side, with the issue's goals.

``--locations N`` (N > 1): the operator runs as ``run --location a`` and N-1 processes
``sla-operator probe --location b``, ``c``, … probe the same agreements, which ask for
``spec.probing: {locations: [a, b, c, …], quorum: majority}``; the report adds the
LocationReport and Lease writes per second (the API server's counter), and the probe
processes' CPU.

Nothing here is a test; the figures are printed (and written with --write into the cluster
benchmark's own section of the file).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import ModuleType
from typing import Any

from bench.apiserver_cpu import CpuMeter, control_plane_pids
from bench.cluster_cost import CostWindow, cost_goals, cost_rows
from bench.cluster_figures import (
    Goal,
    fresh_since,
    location_names,
    majority,
    operator_flag,
    quantile,
    replace_section,
    resource_writes,
    seconds,
    status_writes,
    total_by,
)
from bench.cluster_steady import (
    ProbeProcess,
    Steady,
    SteadyStateError,
    extract_build,
    has_probe_command,
    idle,
    mean_object_bytes,
    settle,
    steady_state,
)
from bench.common import Target, process_cpu_seconds

REPO = Path(__file__).resolve().parent.parent
E2E = REPO / "tests" / "e2e"
GROUP, VERSION, PLURAL = "sla.dev", "v1alpha1", "servicelevelagreements"
OPERATOR_STATUS_INTERVAL = 30.0  # the operator's default --status-interval
CAP_FLAG = "--max-status-writes-per-second"
STALL = 120.0  # seconds without progress after which the operator's stacks are dumped (py-spy)
APPLY_WAIT = 120.0  # seconds one new agreement is waited for before the next is applied


class BenchError(RuntimeError):
    pass


def _load(name: str) -> ModuleType:
    """A module of tests/e2e (standard library only), loaded by path under its own name."""
    spec = importlib.util.spec_from_file_location(f"sla_e2e_{name}", E2E / f"{name}.py")
    if spec is None or spec.loader is None:
        raise BenchError(f"cannot load {E2E / name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


# ----------------------------------------------------------------------------- progress


class Progress:
    """Phases as lines; a progress line rewritten in place on a terminal, else every 10 s."""

    def __init__(self) -> None:
        self.tty = sys.stderr.isatty()
        self.pending = False
        self.last_line = 0.0
        self.started = time.monotonic()

    def phase(self, text: str) -> None:
        self._end_line()
        print(f"[bench-cluster {self._clock()}] {text}", file=sys.stderr, flush=True)

    def update(self, text: str) -> None:
        if self.tty:
            print(f"\r  {text}\033[K", end="", file=sys.stderr, flush=True)
            self.pending = True
        elif time.monotonic() - self.last_line >= 10:
            print(f"  {text}", file=sys.stderr, flush=True)
            self.last_line = time.monotonic()

    def _end_line(self) -> None:
        if self.pending:
            print(file=sys.stderr, flush=True)
            self.pending = False
        self.last_line = 0.0

    def _clock(self) -> str:
        elapsed = int(time.monotonic() - self.started)
        return f"{elapsed // 60:d}:{elapsed % 60:02d}"


# ----------------------------------------------------------------------------- the cluster


def external_kubeconfig() -> str | None:
    path = os.environ.get("KUBECONFIG")
    return path if path and os.path.isfile(path) else None


def start_control_plane(controlplane: ModuleType, progress: Progress, attempts: int = 3) -> Any:
    """etcd and kube-apiserver of the e2e tests' control plane, without its controller-manager.

    The benchmark needs no garbage collection (the whole control plane goes at the end), and
    on a busy machine the controller-manager gives up waiting for the API server after 10 s,
    failing the start. A failed start is still tried again."""

    class ApiServerOnly(controlplane.ControlPlane):  # type: ignore[misc,name-defined]
        def _spawn(self, name: str, args: list[str]) -> Any:
            return None if name == "kube-controller-manager" else super()._spawn(name, args)

    for attempt in range(1, attempts + 1):
        try:
            return ApiServerOnly().start()
        except controlplane.ControlPlaneError as error:
            first_line = str(error).splitlines()[0]
            if attempt == attempts:
                raise BenchError(f"the local control plane did not start: {error}") from None
            progress.phase(f"  start {attempt} failed ({first_line}); trying again")
    raise AssertionError("unreachable")


KUBECTL_SAMPLES = 5  # dry runs with and without kubectl's validation, each


def kubectl_runner(kubeconfig: str) -> Callable[..., subprocess.CompletedProcess[str]]:
    binary = "/usr/bin/kubectl" if os.access("/usr/bin/kubectl", os.X_OK) else shutil.which("kubectl")
    if not binary:
        raise BenchError("kubectl not found; install it with: apt-get install -y kubernetes-client")

    def kubectl(*args: str, input: str | None = None, check: bool = True,
                timeout: float = 120) -> subprocess.CompletedProcess[str]:
        result = subprocess.run([binary, f"--kubeconfig={kubeconfig}", *args], input=input,
                                text=True, capture_output=True, timeout=timeout)
        if check and result.returncode != 0:
            raise BenchError(f"kubectl {' '.join(args)} failed ({result.returncode}): "
                             f"{result.stderr.strip()}")
        return result

    return kubectl


def api_client(kubeconfig: str) -> Any:
    import urllib3
    from kubernetes import config

    urllib3.disable_warnings()  # the local control plane's kubeconfig skips TLS verification
    return config.new_client_from_config(config_file=kubeconfig)


# ----------------------------------------------------------------------------- watching statuses


class StatusWatch(threading.Thread):
    """Watches the namespace's agreements: each one's lastEvaluated and when its first status came."""

    def __init__(self, kubeconfig: str, namespace: str) -> None:
        super().__init__(name="status-watch", daemon=True)
        self.kubeconfig, self.namespace = kubeconfig, namespace
        self.lock = threading.Lock()
        self.last_evaluated: dict[str, str | None] = {}
        self.first_status: dict[str, float] = {}  # time.monotonic() when first seen with a status
        self.changes = 0  # lastEvaluated changes seen: status writes that moved it
        self.change_times: list[float] = []  # time.monotonic() of each change
        self.stopping = threading.Event()
        self.errors: list[str] = []
        self.listed = threading.Event()

    def run(self) -> None:
        from kubernetes import client, watch
        from kubernetes.client.exceptions import ApiException

        api = client.CustomObjectsApi(api_client(self.kubeconfig))
        version: str | None = None
        while not self.stopping.is_set():
            try:
                if version is None:
                    listing = api.list_namespaced_custom_object(GROUP, VERSION, self.namespace, PLURAL)
                    for item in listing["items"]:
                        self._see(item)
                    version = listing["metadata"]["resourceVersion"]
                    self.listed.set()
                stream = watch.Watch()
                for event in stream.stream(api.list_namespaced_custom_object, GROUP, VERSION,
                                           self.namespace, PLURAL, resource_version=version,
                                           timeout_seconds=10, allow_watch_bookmarks=True):
                    obj = event["object"]
                    version = obj.get("metadata", {}).get("resourceVersion", version)
                    if event["type"] in ("ADDED", "MODIFIED"):
                        self._see(obj)
                    elif event["type"] == "DELETED":
                        with self.lock:
                            self.last_evaluated.pop(obj["metadata"]["name"], None)
                    if self.stopping.is_set():
                        stream.stop()
            except ApiException as error:
                if error.status == 410:
                    version = None  # too old: list again
                else:
                    self.errors.append(f"watch: {error.status} {error.reason}")
                    time.sleep(1)
            except Exception as error:  # a dropped connection: watch again from where it was
                self.errors.append(f"watch: {error!r}"[:300])
                time.sleep(1)

    def _see(self, obj: dict[str, Any]) -> None:
        name = obj["metadata"]["name"]
        value = (obj.get("status") or {}).get("lastEvaluated")
        with self.lock:
            old = self.last_evaluated.get(name)
            if value and name not in self.first_status:
                self.first_status[name] = time.monotonic()
            if value and old and value != old:
                self.changes += 1
                self.change_times.append(time.monotonic())
            self.last_evaluated[name] = value

    def with_status(self) -> int:
        with self.lock:
            return sum(1 for value in self.last_evaluated.values() if value)

    def fresh(self, since: datetime) -> tuple[int, int]:
        with self.lock:
            return fresh_since(self.last_evaluated, since), len(self.last_evaluated)

    def oldest(self, now: datetime) -> float | None:
        """Age in seconds of the stalest lastEvaluated (None if some agreement has none)."""
        with self.lock:
            values = list(self.last_evaluated.values())
        if not values or not all(values):
            return None
        oldest = min(datetime.fromisoformat(str(v).replace("Z", "+00:00")) for v in values)
        return (now - oldest).total_seconds()


# ----------------------------------------------------------------------------- agreements


def agreement(name: str, urls: list[str], endpoints: int, interval: float, offset: int,
              locations: int = 1) -> dict[str, Any]:
    timeout_ms = int(min(5000.0, interval * 800))
    body: dict[str, Any] = {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "ServiceLevelAgreement",
        "metadata": {"name": name, "labels": {"bench": "cluster"}},
        "spec": {
            "service": f"Bench {name}",
            "objective": "99.9",
            "endpoints": [
                {"name": f"endpoint-{index}", "interval": f"{interval:g}s", "timeout": f"{timeout_ms}ms",
                 "http": {"url": urls[(offset + index) % len(urls)]}}
                for index in range(endpoints)
            ],
            "statusPage": {"public": False},
        },
    }
    if locations > 1:
        body["spec"]["probing"] = {"locations": location_names(locations), "quorum": majority(locations)}
    return body


def create_agreements(kubeconfig: str, namespace: str, bodies: list[dict[str, Any]],
                      progress: Progress) -> float:
    from kubernetes import client

    api = client.CustomObjectsApi(api_client(kubeconfig))
    done = 0
    lock = threading.Lock()
    started = time.monotonic()

    def create(body: dict[str, Any]) -> None:
        nonlocal done
        api.create_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, body)
        with lock:
            done += 1

    with ThreadPoolExecutor(8) as pool:
        futures = [pool.submit(create, body) for body in bodies]
        while not all(f.done() for f in futures):
            progress.update(f"created {done}/{len(bodies)}")
            time.sleep(0.5)
        for future in futures:
            future.result()
    return time.monotonic() - started


# ----------------------------------------------------------------------------- the operator


def vm_field(pid: int, name: str) -> float | None:
    """A /proc/PID/status field in MB (VmHWM: peak RSS; VmRSS: current)."""
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith(name + ":"):
                    return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


@dataclass
class Options:
    agreements: int
    endpoints: int
    interval: float
    duration: float
    settle: float | None
    new_agreements: int
    apply_budget: float
    restart: bool
    operator_args: list[str]
    write: Path | None
    timeout: float
    keep: bool
    before: str | None = None  # a git ref whose operator is measured first, on the same agreements
    idle: float = 20.0  # seconds the control plane's CPU is read with no operator running
    locations: int = 1  # run --location a, and probe --location b, c, … for each one more


@dataclass
class Figures:
    cluster: str = ""
    control_plane_seconds: float | None = None
    create_seconds: float = math.nan
    start_to_all_status: float | None = None
    window_seconds: float = math.nan
    writes: float | None = None
    report_writes: float | None = None  # LocationReports created or written in the window
    lease_writes: float | None = None  # Leases created or renewed in the window
    probe_cpu: dict[str, float] = field(default_factory=dict)  # cores of each probe process
    before_note: str = ""  # why --before was not measured
    reports_by_verb: dict[str, float] = field(default_factory=dict)  # "VERB code" on locationreports
    reports_stored: tuple[int, int] | None = None  # LocationReports at the window's start, end
    probe_log_warnings: int = 0
    probe_log_errors: int = 0
    watch_changes: int = 0
    peak_changes_per_second: int = 0
    settle_seconds: float = 0.0
    log_warnings: int = 0
    log_errors: int = 0
    requests_total: float | None = None
    requests_by_verb: dict[str, float] = field(default_factory=dict)
    sla_by_verb: dict[str, float] = field(default_factory=dict)
    metrics_problem: str = ""
    operator_cpu: float = math.nan
    oldest_at_end: float | None = None
    apply_from_start: list[float] = field(default_factory=list)
    apply_from_return: list[float] = field(default_factory=list)
    # kubectl apply --dry-run=server of one agreement: with kubectl's own (client-side)
    # validation, and with --validate=false as the phase applies them.
    kubectl_validating: list[float] = field(default_factory=list)
    kubectl_plain: list[float] = field(default_factory=list)
    apply_missing: int = 0
    applied: int = 0
    stop_seconds: float | None = None
    restart_to_all_fresh: float | None = None
    restart_fresh: tuple[int, int] = (0, 0)
    restart_cpu: float | None = None
    peak_rss_first: float | None = None
    peak_rss_second: float | None = None
    load_before: tuple[float, float, float] = (0.0, 0.0, 0.0)
    load_during: tuple[float, float, float] = (0.0, 0.0, 0.0)
    load_after: tuple[float, float, float] = (0.0, 0.0, 0.0)
    watch_errors: list[str] = field(default_factory=list)
    cost: list[CostWindow] = field(default_factory=list)  # before (with --before), then this tree


def wait(progress: Progress, what: Callable[[], tuple[bool, str]], timeout: float,
         operator: Any) -> float | None:
    """Seconds until ``what`` says done (its text is the progress line); None after ``timeout``."""
    started = changed = time.monotonic()
    last_text, dumped = "", False
    while time.monotonic() - started < timeout:
        if operator is not None and operator.process is not None and operator.process.poll() is not None:
            raise BenchError(f"the operator exited with {operator.process.returncode}; "
                             f"its log ends:\n{operator.log()[-3000:]}")
        done, text = what()
        if text != last_text:
            last_text, changed = text, time.monotonic()
        elif not dumped and operator is not None and time.monotonic() - changed > STALL:
            dumped = True
            progress.phase(f"  no progress for {STALL:g} s: {dump_stacks(operator)}")
        if done:
            elapsed = time.monotonic() - started
            progress.update(f"{text} after {elapsed:.1f} s")
            return elapsed
        progress.update(f"{text} ({time.monotonic() - started:.0f} s)")
        time.sleep(0.1)
    return None


def run(options: Options, progress: Progress) -> Figures:
    controlplane, support = _load("controlplane"), _load("support")
    figures = Figures(load_before=os.getloadavg())
    plane = None
    target = None
    operator = None
    watcher = None
    probers: list[ProbeProcess] = []
    workdir = Path(tempfile.mkdtemp(prefix="sla-bench-cluster-"))
    kubectl: Callable[..., subprocess.CompletedProcess[str]] | None = None
    namespace = f"bench-{uuid.uuid4().hex[:6]}"
    failed = True
    try:
        kubeconfig = external_kubeconfig()
        if kubeconfig:
            progress.phase(f"cluster: KUBECONFIG={kubeconfig}")
            figures.cluster = f"the cluster of KUBECONFIG ({kubeconfig})"
        else:
            progress.phase("cluster: starting the local control plane (etcd, kube-apiserver)")
            plane = start_control_plane(controlplane, progress)
            kubeconfig = plane.kubeconfig
            figures.control_plane_seconds = plane.startup_seconds
            figures.cluster = ("the local control plane (kube-apiserver 1.20.2 from Debian's sources and "
                               "etcd, on the same machine)")
            progress.phase(f"  ready in {plane.startup_seconds:.1f} s at {plane.server}")
        kubectl = kubectl_runner(kubeconfig)

        progress.phase("target: the HTTP target process on 8 loopback ports")
        target = Target.start(port_count=8)
        urls = [target.url(index) for index in range(len(target.ports))]

        progress.phase(f"namespace {namespace} with the CRDs")
        kubectl("apply", "-f", str(REPO / "crds"))
        crds = ["servicelevelagreements", "maintenancewindows", "incidents"]
        for crd in crds + (["locationreports"] if options.locations > 1 else []):
            kubectl("wait", "--for=condition=Established", f"crd/{crd}.sla.dev", "--timeout=60s")
        kubectl("create", "namespace", namespace)

        total = options.agreements
        names = location_names(options.locations)
        progress.phase(f"creating {total} agreements x {options.endpoints} endpoints every "
                       f"{options.interval:g} s"
                       + (f", probed from {', '.join(names)} (quorum {majority(len(names))})"
                          if options.locations > 1 else ""))
        bodies = [agreement(f"agreement-{index:05d}", urls, options.endpoints, options.interval, index,
                            options.locations)
                  for index in range(total)]
        figures.create_seconds = create_agreements(kubeconfig, namespace, bodies, progress)

        watcher = StatusWatch(kubeconfig, namespace)
        watcher.start()
        if not watcher.listed.wait(60):
            raise BenchError(f"could not list the agreements: {watcher.errors[-3:]}")

        meter = CpuMeter(control_plane_pids(plane._procs) if plane is not None else {})
        if meter.available:
            progress.phase(f"control plane idle for {options.idle:g} s (no operator): its own CPU")
        idle_window = idle(progress, meter, options.idle)
        idle_cores = None if idle_window is None else idle_window.cores("kube-apiserver")
        settle_seconds = options.settle if options.settle is not None else 2 * options.interval + 5

        def list_agreements() -> list[dict[str, Any]]:
            from kubernetes import client
            api = client.CustomObjectsApi(api_client(kubeconfig))
            listing: Any = api.list_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL)
            return list(listing["items"])

        def cost_window(label: str, steady: Steady, operator_cores: float) -> CostWindow:
            plane_cpu = steady.control_plane.cpu if steady.control_plane is not None else {}
            delta = steady.delta

            def writes(count: Callable[[Any], float]) -> float | None:
                return None if delta is None else count(delta)

            return CostWindow(label, steady.window_seconds, writes(status_writes),
                              plane_cpu.get("kube-apiserver"), plane_cpu.get("etcd"), idle_cores,
                              mean_object_bytes(list_agreements), operator_cores,
                              report_writes=writes(lambda d: resource_writes(d, "locationreports")),
                              lease_writes=writes(lambda d: resource_writes(d, "leases")),
                              probe_cores=steady.probe_cores)

        def start_probers(env: dict[str, str], label: str) -> list[ProbeProcess]:
            started = [ProbeProcess(kubeconfig, namespace, name, workdir, env=env, label=label)
                       for name in names[1:]]
            for prober in started:
                prober.start()
            probers.extend(started)
            return started

        def stop_probers() -> None:
            while probers:
                probers.pop().stop()

        # The deciding operator reads the probes' Leases in its own namespace: the agreements'.
        located = ("--location", names[0]) if options.locations > 1 else ()
        args = ("--status-interval", f"{OPERATOR_STATUS_INTERVAL:g}", "--evaluate-interval", "1",
                *located, *options.operator_args)
        before = options.before
        build = extract_build(REPO, before, workdir / "before") if before else None
        if before and build is not None and options.locations > 1 and not has_probe_command(build):
            figures.before_note = (f"the operator of `{before}` has no `probe --location` (or no "
                                   f"`run --location`): measured after only")
            progress.phase(f"before: {figures.before_note}")
            before = None
        if before and build is not None:
            old = support.OperatorProcess(kubeconfig, namespace, workdir, extra_args=args,
                                          name="operator-before",
                                          env={"PYTHONPATH": str(build), "POD_NAMESPACE": namespace})
            progress.phase(f"before: the operator of {before}, sla-operator run {' '.join(args)}"
                           + (f", with probe --location {', '.join(names[1:])}"
                              if options.locations > 1 else ""))
            old.start()
            old_probers = start_probers({"PYTHONPATH": str(build)}, "-before")
            try:
                if wait(progress, lambda: (watcher.with_status() >= total,
                                           f"agreements with a status: {watcher.with_status()}/{total}"),
                        options.timeout, old) is None:
                    raise BenchError(f"the operator of {before} did not give every agreement "
                                     f"a status within {options.timeout:g} s")
                progress.phase(f"  settling for {settle_seconds:g} s")
                settle(progress, watcher, old, settle_seconds, old_probers)
                progress.phase(f"  steady state for {options.duration:g} s")
                steady = steady_state(progress, watcher, old, kubectl, options.duration, meter,
                                      old_probers)
                figures.cost.append(cost_window(f"before ({before})", steady, steady.operator_cpu))
            finally:
                old.stop()
                stop_probers()
            progress.phase(f"  {_cost_line(figures.cost[-1])}")
        operator = support.OperatorProcess(kubeconfig, namespace, workdir, extra_args=args,
                                           env={"POD_NAMESPACE": namespace})
        progress.phase(f"operator: sla-operator run {' '.join(args)}"
                       + (f"; sla-operator probe --location {', '.join(names[1:])}"
                          if options.locations > 1 else ""))
        # After the build before, every agreement has a status already: wait for this one's.
        mark = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=1)
        time.sleep(max(0.0, (mark - datetime.now(UTC)).total_seconds()) if before else 0)
        operator.start()
        start_probers({}, "")
        figures.start_to_all_status = wait(
            progress, lambda: ((watcher.fresh(mark)[0] if before else watcher.with_status())
                               >= total,
                               f"agreements with a status: {watcher.with_status()}/{total}"),
            options.timeout, operator)
        if figures.start_to_all_status is None:
            raise BenchError(f"not every agreement got a status within {options.timeout:g} s "
                             f"({watcher.with_status()}/{total}); operator log: {operator.log_path}")

        pid = operator.process.pid
        progress.phase(f"settling for {settle_seconds:g} s (every endpoint probed twice: Unknown turns Up)")
        settle(progress, watcher, operator, settle_seconds, probers)
        figures.settle_seconds = settle_seconds
        progress.phase(f"steady state for {options.duration:g} s")
        reports_at_start = count_reports(kubeconfig, namespace) if probers else None
        steady = steady_state(progress, watcher, operator, kubectl, options.duration, meter, probers)
        figures.probe_cpu = dict(steady.probe_cpu or {})
        if reports_at_start is not None:
            figures.reports_stored = (reports_at_start, count_reports(kubeconfig, namespace))
        figures.window_seconds = steady.window_seconds
        figures.operator_cpu = steady.operator_cpu
        figures.watch_changes = steady.watch_changes
        figures.peak_changes_per_second = steady.peak_changes_per_second
        figures.load_during = steady.load_during
        figures.oldest_at_end = steady.oldest_at_end
        figures.metrics_problem = steady.metrics_problem
        figures.cost.append(cost_window("after (this tree)" if before else "this tree",
                                        steady, steady.operator_cpu))
        progress.phase(f"  {_cost_line(figures.cost[-1])}")
        if steady.delta is not None:
            delta = steady.delta
            figures.writes = status_writes(delta)
            figures.report_writes = resource_writes(delta, "locationreports")
            figures.lease_writes = resource_writes(delta, "leases")
            figures.reports_by_verb = _by_verb_and_code(delta, "locationreports")
            figures.requests_total = sum(delta.values())
            figures.requests_by_verb = total_by(delta, "verb")
            figures.sla_by_verb = {
                f"{verb} {sub}".strip(): value
                for (verb, sub), value in _by_verb_and_subresource(delta, PLURAL).items()}
        progress.phase(f"  status writes {_rate(figures.writes, figures.window_seconds)}, "
                       f"report writes {_rate(figures.report_writes, figures.window_seconds)}, "
                       f"Lease writes {_rate(figures.lease_writes, figures.window_seconds)}, "
                       f"operator CPU {figures.operator_cpu:.2f} cores"
                       + (f", probe processes {sum(figures.probe_cpu.values()):.2f} cores"
                          if figures.probe_cpu else ""))

        if options.new_agreements:
            # Against an API server older than 1.25 (the local control plane is 1.20), kubectl
            # validates on the client: it fetches and parses the whole OpenAPI v2 document at
            # every invocation. Newer servers validate on the server (kubectl's default there);
            # the API server checks the CRD's schema in both cases. The phase applies with
            # --validate=false, and what kubectl's own validation adds is measured here apart.
            sample = json.dumps(agreement("dry-run", urls, options.endpoints, options.interval, 0,
                                          options.locations))
            for flags, into in (((), figures.kubectl_validating),
                                (("--validate=false",), figures.kubectl_plain)) * KUBECTL_SAMPLES:
                start = time.monotonic()
                kubectl("apply", "--dry-run=server", *flags, "-n", namespace, "-f", "-", input=sample)
                into.append(time.monotonic() - start)
            progress.phase(f"kubectl apply of {options.new_agreements} new agreements, one at a time "
                           f"(at most {options.apply_budget:g} s); kubectl's own validation: "
                           f"{seconds(quantile(figures.kubectl_validating, 0.5))} against "
                           f"{seconds(quantile(figures.kubectl_plain, 0.5))} without (p50)")
            applied: list[tuple[str, float, float]] = []  # name, apply started, apply returned
            phase_started = time.monotonic()
            for index in range(options.new_agreements):
                left = options.apply_budget - (time.monotonic() - phase_started)
                if left <= 0:
                    break
                name = f"new-{index:04d}"
                body = json.dumps(agreement(name, urls, options.endpoints, options.interval, index,
                                            options.locations))
                start = time.monotonic()
                kubectl("apply", "--validate=false", "-n", namespace, "-f", "-", input=body)
                applied.append((name, start, time.monotonic()))
                label = f"new agreement {index + 1}/{options.new_agreements}"
                wait(progress, lambda name=name, label=label: (name in watcher.first_status, label),
                     max(1.0, min(APPLY_WAIT, left)), operator)
            for name, start, returned in applied:
                first = watcher.first_status.get(name)
                if first is None:
                    figures.apply_missing += 1
                else:
                    figures.apply_from_start.append(first - start)
                    figures.apply_from_return.append(first - returned)
            figures.applied = len(applied)
            progress.phase(f"  apply -> first status p50 {seconds(quantile(figures.apply_from_start, 0.5))}, "
                           f"p99 {seconds(quantile(figures.apply_from_start, 0.99))}, "
                           f"{figures.apply_missing} of {len(applied)} without a status")
        figures.peak_rss_first = vm_field(pid, "VmHWM")

        if options.restart:
            everyone = total + figures.applied  # the apply phase's budget may have cut it short
            progress.phase("restart: SIGTERM, then the operator started again")
            stop_started = time.monotonic()
            operator.stop()
            figures.stop_seconds = time.monotonic() - stop_started
            # lastEvaluated has whole seconds: wait for the next second so no write of the old
            # process can carry a time at or after the mark.
            now = datetime.now(UTC)
            since = now.replace(microsecond=0) + timedelta(seconds=1)
            time.sleep(max(0.0, (since - datetime.now(UTC)).total_seconds()))
            operator.start()
            pid = operator.process.pid
            figures.restart_to_all_fresh = wait(
                progress, lambda: (watcher.fresh(since)[0] >= everyone,
                                   f"fresh since the restart: {watcher.fresh(since)[0]}/{everyone}"),
                options.timeout, operator)
            figures.restart_fresh = watcher.fresh(since)
            figures.restart_cpu = process_cpu_seconds(pid)
            figures.peak_rss_second = vm_field(pid, "VmHWM")
            progress.phase(f"  every agreement fresh after {seconds(figures.restart_to_all_fresh, 1)}")
        figures.load_after = os.getloadavg()
        figures.watch_errors = watcher.errors[-5:]
        figures.log_warnings, figures.log_errors = log_levels(operator.log_path, progress)
        for prober in probers:
            warnings, errors = log_levels(prober.log_path, progress)
            figures.probe_log_warnings += warnings
            figures.probe_log_errors += errors
        failed = False
        return figures
    finally:
        progress.phase("cleaning up")
        if watcher is not None:
            watcher.stopping.set()
        for prober in probers:
            prober.stop()
        if operator is not None:
            operator.stop()
        if kubectl is not None and plane is None:
            kubectl("delete", "namespace", namespace, "--wait=false", check=False)
        if target is not None:
            target.stop()
        if plane is not None:
            plane.stop()
        if failed or options.keep:
            progress.phase(f"operator log kept in {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)


def dump_stacks(operator: Any) -> str:
    """The operator's thread stacks by py-spy, when installed, next to its log; says where."""
    spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    if operator.process is None or not os.access(spy, os.X_OK):
        return "py-spy is not installed, no stack dump (pip install py-spy)"
    path = operator.log_path.with_suffix(f".stacks-{int(time.time())}.txt")
    result = subprocess.run([spy, "dump", "--pid", str(operator.process.pid)], capture_output=True,
                            text=True, timeout=60)
    path.write_text(result.stdout + result.stderr)
    return f"stacks in {path}"


def log_levels(path: Path, progress: Progress | None = None, shown: int = 5) -> tuple[int, int]:
    """Warning and error lines in the operator's log (both processes); the first ``shown``
    of them are printed with ``progress`` (the log goes with the temporary folder)."""
    warnings = errors = 0
    try:
        with path.open(errors="replace") as log:
            for line in log:
                if " WARNING " in line or line.startswith("[WARNING"):
                    warnings += 1
                elif " ERROR " in line or line.startswith("[ERROR") or "Traceback" in line:
                    errors += 1
                else:
                    continue
                if progress is not None and warnings + errors <= shown:
                    progress.phase(f"  operator log: {line.rstrip()[:300]}")
    except OSError:
        pass
    return warnings, errors


def count_reports(kubeconfig: str, namespace: str) -> int:
    """The LocationReports stored in the namespace (every location's)."""
    from kubernetes import client

    api = client.CustomObjectsApi(api_client(kubeconfig))
    listing: Any = api.list_namespaced_custom_object(GROUP, VERSION, namespace, "locationreports")
    return len(listing["items"])


def _by_verb_and_code(delta: dict[Any, float], resource: str) -> dict[str, float]:
    """``resource``'s requests in the window by "VERB code" (a PATCH answered 404 apart)."""
    totals: dict[str, float] = {}
    for labels, value in delta.items():
        found = dict(labels)
        if found.get("resource") == resource and value and found.get("verb") != "WATCH":
            key = f"{found.get('verb', '')} {found.get('code', '')}".strip()
            totals[key] = totals.get(key, 0.0) + value
    return totals


def _by_verb_and_subresource(delta: dict[Any, float], resource: str) -> dict[tuple[str, str], float]:
    totals: dict[tuple[str, str], float] = {}
    for labels, value in delta.items():
        found = dict(labels)
        if found.get("resource") != resource or not value:
            continue
        key = (found.get("verb", ""), found.get("subresource", ""))
        totals[key] = totals.get(key, 0.0) + value
    return totals


def _cost_line(window: CostWindow) -> str:
    per_write = window.ms_per_write
    return (f"API server CPU per status write "
            f"{'n/a' if per_write is None else f'{per_write:.1f} ms'}, "
            f"status writes {window.writes_per_second or 0:.1f}/s")


def _rate(count: float | None, window: float) -> str:
    return "n/a" if count is None else f"{count / window:.1f}/s"


# ----------------------------------------------------------------------------- report


def report(options: Options, figures: Figures, command: str) -> str:
    cap = operator_flag(options.operator_args, CAP_FLAG)
    status_interval = float(operator_flag(options.operator_args, "--status-interval")
                            or OPERATOR_STATUS_INTERVAL)
    total = options.agreements
    window = figures.window_seconds
    endpoints = total * options.endpoints
    probes_per_second = endpoints / options.interval
    writes_per_second = None if figures.writes is None else figures.writes / window
    p50 = quantile(figures.apply_from_start, 0.5)
    p99 = quantile(figures.apply_from_start, 0.99)
    load = ", ".join(f"{value:.2f}" for value in figures.load_during)
    lines = [
        "## Cluster benchmark: the operator on a real API server",
        "",
        f"Command: `{command}`",
        f"Date: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC. Cluster: {figures.cluster}. "
        f"Machine: {os.cpu_count()} CPUs (shared), Python {platform.python_version()}, "
        f"{platform.machine()}; load average (1, 5, 15 min) {_load_text(figures.load_before)} "
        f"before, {load} at the end of the steady state, {_load_text(figures.load_after)} at the end. "
        "The API server, etcd, the target, the watching benchmark and the operator share the machine.",
        "",
        f"Load: {total:,} agreements x {options.endpoints} HTTP endpoints = {endpoints:,} endpoints "
        f"every {options.interval:g} s ({probes_per_second:,.0f} probes/s) against a local target; "
        f"operator `sla-operator run --status-interval {status_interval:g} --evaluate-interval 1"
        f"{''.join(' ' + a for a in options.operator_args)}`; "
        f"status write cap ({CAP_FLAG}): {cap if cap is not None else 'not set'}."
        + (_locations_text(options.locations) if options.locations > 1 else ""),
        "",
        "How: statuses are followed by a watch on the namespace (an agreement's first status is the "
        "first event carrying `status.lastEvaluated`); status writes and request rates are deltas of "
        "the API server's `apiserver_request_total` over the steady-state window (all clients: the "
        "benchmark's watch and its two `/metrics` reads included); operator CPU from /proc/PID/stat "
        "over the window, peak RSS = VmHWM; `kubectl apply` → first status is timed from the start "
        "of `kubectl` (its own start-up included), applied with `--validate=false`: against this "
        "API server (older than 1.25) kubectl validates on the client, fetching and parsing the "
        "whole OpenAPI v2 document at every invocation, where newer servers validate on the server "
        "(kubectl's default there); the API server checks the CRD schema either way, and what "
        "kubectl's own validation costs is given apart; restart = SIGTERM, wait for the exit, start "
        "again; fresh = `lastEvaluated` at or after the first whole second after the old process "
        "exited, timed from the new process's start.",
        "",
        "| figure | value |",
        "|---|---|",
    ]
    if figures.control_plane_seconds is not None:
        lines.append(f"| local control plane ready | {seconds(figures.control_plane_seconds, 1)} |")
    lines += [
        f"| {total:,} agreements created (8 clients) | {seconds(figures.create_seconds, 1)} |",
        f"| operator start → every agreement has a status | {seconds(figures.start_to_all_status, 1)} |",
        f"| steady-state window (after {figures.settle_seconds:g} s of settling) | {seconds(window, 1)} |",
        f"| status writes/s (API server: servicelevelagreements/status PATCH+PUT) | "
        f"{_rate(figures.writes, window)} (expected without a cap: {total / status_interval:.1f}/s "
        f"= agreements / status interval) |",
        f"| lastEvaluated changes/s seen by a watch: mean / busiest second | "
        f"{figures.watch_changes / window:.1f}/s / {figures.peak_changes_per_second} |",
        f"| stalest lastEvaluated at the end of the window | {seconds(figures.oldest_at_end, 1)} |",
        f"| API server requests/s, all clients | {_rate(figures.requests_total, window)} |",
    ]
    if figures.requests_by_verb:
        verbs = ", ".join(f"{verb} {value / window:.1f}"
                          for verb, value in sorted(figures.requests_by_verb.items(), key=lambda i: -i[1])
                          if value)
        lines.append(f"| … by verb (/s) | {verbs} |")
    if figures.sla_by_verb:
        sla = ", ".join(f"{key} {value / window:.2f}"
                        for key, value in sorted(figures.sla_by_verb.items(), key=lambda i: -i[1]))
        lines.append(f"| … on servicelevelagreements (/s) | {sla} |")
    if options.locations > 1:
        lines += [
            f"| LocationReport writes/s (API server: locationreports POST+PATCH+PUT) | "
            f"{_rate(figures.report_writes, window)} |",
            f"| Lease writes/s (API server: leases POST+PUT+PATCH) | "
            f"{_rate(figures.lease_writes, window)} (expected: {options.locations - 1} probe "
            f"processes / 2 s renewal = {(options.locations - 1) / 2:g}/s) |",
        ]
    if figures.reports_by_verb:
        reports = ", ".join(f"{key} {value / window:.2f}"
                            for key, value in sorted(figures.reports_by_verb.items(), key=lambda i: -i[1]))
        lines.append(f"| … on locationreports by verb and answer (/s) | {reports} |")
    if figures.reports_stored is not None:
        expected = options.agreements * (options.locations - 1)
        lines.append(f"| LocationReports stored at the start / end of the window (one per agreement "
                     f"and `probe` location: {expected:,}) | {figures.reports_stored[0]:,} / "
                     f"{figures.reports_stored[1]:,} |")
    if figures.metrics_problem:
        lines.append(f"| API server /metrics | unavailable: {figures.metrics_problem} |")
    cpu_per_probe = figures.operator_cpu / probes_per_second * 1000
    lines += [
        f"| operator CPU at steady state | {figures.operator_cpu:.2f} cores "
        f"({cpu_per_probe:.2f} ms per scheduled probe, everything included) |",
        f"| operator peak RSS (VmHWM), first process | {_mb(figures.peak_rss_first)} |",
    ]
    if figures.probe_cpu:
        each = ", ".join(f"{name} {cores:.2f}" for name, cores in sorted(figures.probe_cpu.items()))
        lines.append(f"| `probe` processes' CPU at steady state | {sum(figures.probe_cpu.values()):.2f} "
                     f"cores ({each}) |")
    if options.new_agreements:
        lines += [
            f"| `kubectl apply` → first status, {figures.applied} new agreements one at a time (each "
            f"waited for), of the {len(figures.apply_from_start)} with a status: p50 / p99 / max | "
            f"{seconds(p50)} / {seconds(p99)} / "
            f"{seconds(max(figures.apply_from_start, default=math.nan))} |",
            f"| the same from the moment `kubectl apply` returned: p50 / p99 | "
            f"{seconds(quantile(figures.apply_from_return, 0.5))} / "
            f"{seconds(quantile(figures.apply_from_return, 0.99))} |",
            f"| `kubectl apply --dry-run=server` of one agreement, with kubectl's client-side "
            f"validation / with `--validate=false` (as the new agreements above), p50 of "
            f"{len(figures.kubectl_plain)} | {seconds(quantile(figures.kubectl_validating, 0.5))} / "
            f"{seconds(quantile(figures.kubectl_plain, 0.5))} |",
        ]
        if figures.apply_missing:
            lines.append(f"| new agreements without a status at the end of the phase (left out of "
                         f"the quantiles) | {figures.apply_missing} of {figures.applied} |")
        if figures.applied < options.new_agreements:
            lines.append(f"| new agreements applied within the phase's {options.apply_budget:g} s | "
                         f"{figures.applied} of {options.new_agreements} |")
    if options.restart:
        fresh, known = figures.restart_fresh
        lines += [
            f"| stop (SIGTERM → exit, final status writes included) | {seconds(figures.stop_seconds, 1)} |",
            f"| restart → every agreement's lastEvaluated after the restart | "
            f"{seconds(figures.restart_to_all_fresh, 1)} ({fresh}/{known} fresh) |",
            f"| operator peak RSS (VmHWM), restarted process | {_mb(figures.peak_rss_second)} |",
        ]
    goals = [
        Goal("apply → first status p99 < 2 s",
             f"{seconds(p99)}" + (f", {figures.apply_missing} of {figures.applied} without a status"
                                   if figures.apply_missing else ""),
             None if math.isnan(p99) and not figures.apply_missing
             else not figures.apply_missing and p99 < 2.0),
        Goal("restart → all fresh < 60 s", seconds(figures.restart_to_all_fresh, 1),
             None if figures.restart_to_all_fresh is None else figures.restart_to_all_fresh < 60.0),
        Goal("status writes/s ≤ the cap",
             f"{_rate(figures.writes, window)}, cap {cap if cap is not None else 'not set'}",
             None if cap is None or writes_per_second is None else writes_per_second <= float(cap)),
    ]
    if figures.cost:
        after = figures.cost[-1]
        goals += cost_goals(after, figures.cost[0] if len(figures.cost) > 1 else None,
                            options.agreements, options.endpoints, options.locations)
        lines += ["", "API server cost of the operator (issue 21): the control plane's CPU from "
                  "/proc/PID/stat over each steady-state window; per status write = (the API "
                  "server's CPU less its idle CPU, read for "
                  f"{options.idle:g} s before any operator ran) ÷ the status writes its own "
                  "counter saw in the window."
                  + (f" Before = the operator of `{options.before}` on the same agreements and "
                     "control plane, just before this tree's."
                     if options.before and len(figures.cost) > 1 else "")
                  + (f" --before: {figures.before_note}." if figures.before_note else "")
                  + (" With locations, the API server's CPU is that of every request of the "
                     "operator's processes (`run` and `probe`): statuses, reports, Leases, watches."
                     if options.locations > 1 else ""),
                  "", *cost_rows(figures.cost)]
    lines += ["", "| goal | measured | verdict |", "|---|---|---|", *(goal.row() for goal in goals)]
    lines += ["", f"Operator log: {figures.log_warnings} warning and {figures.log_errors} error lines."
              + (f" `probe` processes' logs: {figures.probe_log_warnings} warning and "
                 f"{figures.probe_log_errors} error lines." if options.locations > 1 else "")]
    if figures.watch_errors:
        lines += ["", "Watch interruptions (resumed): " + "; ".join(figures.watch_errors)]
    return "\n".join(lines) + "\n"


def _locations_text(count: int) -> str:
    names = location_names(count)
    return (f" Locations: {count}, `run --location {names[0]}` and "
            + ", ".join(f"`probe --location {name}`" for name in names[1:])
            + f" (each its own process, Lease renewed every 2 s), the agreements with "
            f"`spec.probing: {{locations: [{', '.join(names)}], quorum: {majority(count)}}}`.")


def _load_text(values: tuple[float, float, float]) -> str:
    return ", ".join(f"{value:.2f}" for value in values)


def _mb(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.0f} MB"


# ----------------------------------------------------------------------------- command line


def parse_arguments(argv: list[str] | None) -> Options:
    parser = argparse.ArgumentParser(prog="python -m bench.cluster",
                                     description=(__doc__ or "").split("\n")[0])

    def positive(kind: type[int] | type[float], minimum: float) -> Callable[[str], Any]:
        def convert(text: str) -> Any:
            try:
                value = kind(text)
            except ValueError:
                raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
            if value < minimum:
                raise argparse.ArgumentTypeError(f"{value} is below the minimum {minimum:g}")
            return value
        return convert

    parser.add_argument("--agreements", type=positive(int, 1), default=1000,
                        help="agreements running throughout (default 1000)")
    parser.add_argument("--endpoints", type=positive(int, 1), default=10,
                        help="HTTP endpoints per agreement (default 10)")
    parser.add_argument("--interval", type=positive(float, 1), default=30.0,
                        help="probe interval of every endpoint in seconds, at least 1 (default 30)")
    parser.add_argument("--duration", type=positive(float, 1), default=90.0,
                        help="seconds of steady state measured (default 90: three status intervals)")
    parser.add_argument("--settle", type=positive(float, 0), default=None,
                        help="seconds between every agreement having a status and the steady "
                             "state (default 2 x interval + 5: endpoints turn Up after two probes)")
    parser.add_argument("--new-agreements", type=positive(int, 0), default=50,
                        help="agreements applied one at a time for apply → first status (0 skips)")
    parser.add_argument("--apply-budget", type=positive(float, 1), default=300.0,
                        help="seconds the apply phase may take; no more agreements are applied "
                             "after it (default 300)")
    parser.add_argument("--no-restart", dest="restart", action="store_false",
                        help="skip the restart phase")
    parser.add_argument("--operator-arg", action="append", default=[], metavar="ARG",
                        help=f"one more argument for `sla-operator run` (repeatable), e.g. "
                             f"--operator-arg={CAP_FLAG}=20")
    parser.add_argument("--timeout", type=positive(float, 10), default=1800.0,
                        help="seconds to wait for every agreement's status in a phase (default 1800)")
    parser.add_argument("--before", metavar="GIT_REF",
                        help="first measure the operator of GIT_REF (e.g. main~3) on the same "
                             "agreements, then this tree's: the API server's cost before and after")
    parser.add_argument("--idle", type=positive(float, 0), default=20.0,
                        help="seconds the control plane's CPU is read before any operator runs, "
                             "subtracted as its idle use (default 20)")
    parser.add_argument("--locations", type=positive(int, 1), default=1,
                        help="locations probing every agreement (default 1): N > 1 runs the operator "
                             "as `run --location a` and N-1 processes `probe --location b`, c, … "
                             "(at most 26), and gives the agreements spec.probing {locations: "
                             "[a, b, …], quorum: a majority}. With --before, a build that has no "
                             "`probe --location` is not measured: the report says so and gives "
                             "this tree's figures only")
    parser.add_argument("--keep-logs", dest="keep", action="store_true",
                        help="keep the operator's log directory")
    parser.add_argument("--write", type=Path, metavar="FILE",
                        help="replace (or append) the cluster benchmark's section of FILE")
    args = parser.parse_args(argv)
    if args.locations > 26:
        parser.error("--locations: at most 26 (a to z)")
    return Options(agreements=args.agreements, endpoints=args.endpoints, interval=args.interval,
                   duration=args.duration, settle=args.settle, new_agreements=args.new_agreements,
                   apply_budget=args.apply_budget,
                   restart=args.restart,
                   operator_args=list(args.operator_arg), write=args.write, timeout=args.timeout,
                   keep=args.keep, before=args.before, idle=args.idle, locations=args.locations)


def main(argv: list[str] | None = None) -> int:
    options = parse_arguments(argv)
    command = " ".join(["python -m bench.cluster", *(sys.argv[1:] if argv is None else argv)])
    progress = Progress()

    def stop(signum: int, _frame: object) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    # SIGTERM (and SIGINT, ignored in background jobs) must still stop the operator, the target
    # and the control plane in run()'s cleanup.
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    try:
        figures = run(options, progress)
    except (BenchError, SteadyStateError) as error:
        progress.phase(f"failed: {error}")
        return 1
    except KeyboardInterrupt as stopped:
        progress.phase(f"stopped ({stopped or 'interrupted'}); everything it started is stopped")
        return 130
    text = report(options, figures, command)
    print(text)
    if options.write is not None:
        existing = options.write.read_text() if options.write.exists() else ""
        options.write.write_text(replace_section(existing, text))
        progress.phase(f"section written to {options.write}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
