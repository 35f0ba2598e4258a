"""The cluster benchmark's steady state: settle, then one window measured from the API server's
counters, the operator's and the control plane's CPU; and the build measured "before".

Split from bench/cluster.py; the watch, kubectl and the operator process are passed in.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tarfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from io import BytesIO
from pathlib import Path
from typing import Any

from bench.apiserver_cpu import CpuMeter, CpuWindow
from bench.cluster_figures import Labels, counter_delta, parse_counter, peak_per_second
from bench.common import process_cpu_seconds

REPO_ROOT = Path(__file__).resolve().parent.parent


class SteadyStateError(RuntimeError):
    pass


@dataclass
class Steady:
    window_seconds: float
    operator_cpu: float
    watch_changes: int
    peak_changes_per_second: int
    oldest_at_end: float | None
    load_during: tuple[float, float, float]
    metrics_problem: str
    delta: dict[Labels, float] | None
    control_plane: CpuWindow | None
    probe_cpu: dict[str, float] | None = None  # cores of each `probe` process (None: none ran)

    @property
    def probe_cores(self) -> float | None:
        return None if self.probe_cpu is None else sum(self.probe_cpu.values())


def apiserver_requests(kubectl: Callable[..., subprocess.CompletedProcess[str]]) -> \
        tuple[dict[Labels, float] | None, str]:
    """The API server's request counters (None and why when /metrics cannot be read)."""
    result = kubectl("get", "--raw", "/metrics", check=False, timeout=60)
    if result.returncode != 0:
        return None, f"kubectl get --raw /metrics failed: {result.stderr.strip()[:200]}"
    return parse_counter(result.stdout), ""


def settle(progress: Any, watcher: Any, operator: Any, seconds: float,
           probers: Sequence[ProbeProcess] = ()) -> None:
    settled = time.monotonic()
    while (elapsed := time.monotonic() - settled) < seconds:
        _alive(operator)
        for prober in probers:
            prober.alive()
        progress.update(f"{elapsed:4.0f}/{seconds:g} s  status changes seen {watcher.changes}  "
                        f"load {os.getloadavg()[0]:.1f}")
        time.sleep(1)


def steady_state(progress: Any, watcher: Any, operator: Any, kubectl: Any, duration: float,
                 meter: CpuMeter, probers: Sequence[ProbeProcess] = ()) -> Steady:
    """One window of ``duration`` seconds with the operator (and its ``probers``) running."""
    pid = operator.process.pid
    before, problem = apiserver_requests(kubectl)
    probe_before = {prober.location: prober.cpu_seconds() for prober in probers}
    cpu_before, changes_before, t0 = process_cpu_seconds(pid), watcher.changes, time.monotonic()
    meter.start()
    while (elapsed := time.monotonic() - t0) < duration:
        _alive(operator)
        for prober in probers:
            prober.alive()
        cores = (process_cpu_seconds(pid) - cpu_before) / max(elapsed, 1e-9)
        progress.update(f"{elapsed:4.0f}/{duration:g} s  status changes seen "
                        f"{watcher.changes - changes_before}  operator CPU {cores:.2f} cores  "
                        f"load {os.getloadavg()[0]:.1f}")
        time.sleep(1)
    plane = meter.stop() if meter.available else None
    probe_used = {prober.location: prober.cpu_seconds() - probe_before[prober.location]
                  for prober in probers}
    after, later_problem = apiserver_requests(kubectl)
    window = time.monotonic() - t0
    with watcher.lock:
        peak = peak_per_second([t for t in watcher.change_times if t >= t0])
    return Steady(
        window_seconds=window,
        operator_cpu=(process_cpu_seconds(pid) - cpu_before) / window,
        watch_changes=watcher.changes - changes_before,
        peak_changes_per_second=peak,
        oldest_at_end=watcher.oldest(datetime.now(UTC)),
        load_during=os.getloadavg(),
        metrics_problem=problem or later_problem,
        delta=None if before is None or after is None else counter_delta(before, after),
        control_plane=plane,
        probe_cpu={name: used / window for name, used in probe_used.items()} if probers else None)


class ProbeProcess:
    """``sla-operator probe --location NAME`` as a child process (a build's, with ``env``),
    reporting into ``namespace`` and renewing its Lease there, as the e2e test starts it; the
    Lease timings are the defaults (renewed every 2 s)."""

    def __init__(self, kubeconfig: str, namespace: str, location: str, workdir: Path,
                 env: dict[str, str] | None = None, label: str = "") -> None:
        self.kubeconfig, self.namespace, self.location = kubeconfig, namespace, location
        self.env = env or {}
        self.log_path = workdir / f"probe-{location}{label}-{namespace}.log"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        env = {**os.environ, "KUBECONFIG": self.kubeconfig, "PYTHONUNBUFFERED": "1", **self.env}
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "sla_operator", "probe", "--location", self.location,
                 "--namespace", self.namespace, "--leader-elect-namespace", self.namespace,
                 "--metrics-port", "0"],
                stdout=log, stderr=subprocess.STDOUT, env=env, cwd=REPO_ROOT)

    def cpu_seconds(self) -> float:
        return 0.0 if self.process is None else process_cpu_seconds(self.process.pid)

    def alive(self) -> None:
        if self.process is not None and self.process.poll() is not None:
            raise SteadyStateError(f"probe --location {self.location} exited with "
                                   f"{self.process.returncode}; its log ends:\n{self.log()[-3000:]}")

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-6000:]
        except OSError:
            return ""

    def stop(self) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None


def has_probe_command(build: Path | None) -> bool:
    """Whether the operator package in ``build`` (None: this tree) has ``probe --location``
    and ``run --location``: a build before the locations work has neither."""
    env = {**os.environ, **({"PYTHONPATH": str(build)} if build is not None else {})}
    for command in ("probe", "run"):
        result = subprocess.run([sys.executable, "-m", "sla_operator", command, "--help"],
                                capture_output=True, text=True, env=env, cwd=REPO_ROOT, timeout=120)
        if result.returncode != 0 or "--location" not in result.stdout:
            return False
    return True


IDLE_PAUSE = 10.0  # seconds let pass first: installing the CRDs and creating the agreements
# leave the API server busy for a while (its OpenAPI document is rebuilt for each new CRD)


def idle(progress: Any, meter: CpuMeter, seconds: float, pause: float = IDLE_PAUSE) -> CpuWindow | None:
    """The control plane's CPU with no operator running (the benchmark's watch open), read
    after ``pause`` seconds."""
    if not meter.available or seconds <= 0:
        return None
    time.sleep(pause)
    meter.start()
    started = time.monotonic()
    while (elapsed := time.monotonic() - started) < seconds:
        progress.update(f"{elapsed:4.0f}/{seconds:g} s")
        time.sleep(1)
    return meter.stop()


def mean_object_bytes(list_objects: Callable[[], list[dict[str, Any]]]) -> float | None:
    """The mean size of the agreements as the API server stores them (compact JSON)."""
    items = list_objects()
    if not items:
        return None
    return sum(len(json.dumps(item, separators=(",", ":"))) for item in items) / len(items)


def extract_build(repo: Path, ref: str, into: Path) -> Path:
    """The operator package of ``ref`` (``git archive``, the repository left as it is), for
    PYTHONPATH; returns the folder that holds ``sla_operator``."""
    resolved = subprocess.run(["git", "-C", str(repo), "rev-parse", "--verify", f"{ref}^{{commit}}"],
                              capture_output=True, text=True)
    if resolved.returncode != 0:
        raise SteadyStateError(f"--before {ref}: not a commit of {repo} ({resolved.stderr.strip()})")
    archive = subprocess.run(["git", "-C", str(repo), "archive", "--format=tar",
                              resolved.stdout.strip(), "operator/sla_operator"],
                             capture_output=True)
    if archive.returncode != 0:
        raise SteadyStateError(f"git archive {ref} failed: {archive.stderr.decode()[:300]}")
    with tarfile.open(fileobj=BytesIO(archive.stdout)) as tar:
        tar.extractall(into, filter="data")
    return into / "operator"


def _alive(operator: Any) -> None:
    if operator.process.poll() is not None:
        raise SteadyStateError(f"the operator exited; its log ends:\n{operator.log()[-3000:]}")
