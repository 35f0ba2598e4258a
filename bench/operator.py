"""The whole operator as users run it: `sla-operator local` on generated manifests, one core.

    python -m bench.operator [--agreements 1000] [--endpoints 100] [--interval 60] [--intervals 2]

A agreements x E HTTP endpoints against the benchmark target (its own process, on another
core), one manifest file per agreement, spread over namespaces of 50 agreements with one
weekly maintenance window each. The operator runs as its own process pinned to one core, with
evaluation, status files, the status page and `/metrics` scraped every --scrape-interval
seconds. After --intervals probe intervals it is stopped with SIGTERM, as a rolling update
would, and the figures are read from its own outputs:

- probes started and failed, ticks skipped, schedule lag p50 / p99 (from the buckets of
  `sla_operator_probe_lag_seconds`, interpolated as histogram_quantile does), mean and max,
  and how many probes started more than 1 s late (exact: 1 s is a bucket's bound; the p99 is
  under 1 s exactly when these are under 1%):
  the line the probe scheduler logs when it stops; expected probes = endpoints x seconds
  probing / interval;
- CPU (utime + stime) and peak RSS of the operator process; statuses written at shutdown.

Prints a progress line while it runs and the figures as one JSON line at the end.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import resource
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

from bench.common import Target, process_cpu_seconds

AGREEMENTS_PER_NAMESPACE = 50
SUMMARY = re.compile(
    r"probe scheduler stopped after (?P<seconds>[\d.]+)s: (?P<started>\d+) probes started, "
    r"(?P<failed>\d+) failed, (?P<skipped>\d+) ticks skipped .*?, (?P<errors>\d+) errors, "
    r"(?P<endpoints>\d+) endpoints; schedule lag p50 (?P<p50>[\d.]+)s, p99 (?P<p99>[\d.]+)s, "
    r"mean (?P<mean>[\d.]+)s, max (?P<max>[\d.]+)s(?:; (?P<late>\d+) started more than 1s late)?")


def agreement_manifest(namespace: str, name: str, urls: list[str], endpoints: int,
                       interval: float, offset: int) -> str:
    lines = [
        "apiVersion: sla.dev/v1alpha1",
        "kind: ServiceLevelAgreement",
        f"metadata: {{name: {name}, namespace: {namespace}, labels: {{team: {namespace}}}}}",
        "spec:",
        f"  service: Bench {name}",
        '  objective: "99.9"',
        "  endpoints:",
    ]
    timeout = min(5.0, interval * 0.8)
    for index in range(endpoints):
        url = urls[(offset + index) % len(urls)]
        lines += [f"  - name: e{index}", f"    interval: {interval:g}s", f"    timeout: {timeout:g}s",
                  f"    http: {{url: '{url}e{index}'}}"]
    return "\n".join(lines) + "\n"


def window_manifest(namespace: str) -> str:
    return (
        "apiVersion: sla.dev/v1alpha1\nkind: MaintenanceWindow\n"
        f"metadata: {{name: weekly, namespace: {namespace}}}\n"
        "spec:\n  description: Weekly upgrade\n"
        f"  slaSelector: {{matchLabels: {{team: {namespace}}}}}\n"
        '  schedule: "0 3 * * SUN"\n  duration: 1h\n  timeZone: UTC\n')


def write_manifests(folder: Path, urls: list[str], agreements: int, endpoints: int,
                    interval: float) -> None:
    for index in range(agreements):
        namespace = f"team-{index // AGREEMENTS_PER_NAMESPACE:03d}"
        if index % AGREEMENTS_PER_NAMESPACE == 0:
            (folder / f"{namespace}-window.yaml").write_text(window_manifest(namespace))
        (folder / f"{namespace}-sla-{index:05d}.yaml").write_text(
            agreement_manifest(namespace, f"sla-{index:05d}", urls, endpoints, interval, index))


def scrape(port: int, timeout: float) -> tuple[str, float]:
    started = time.monotonic()
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=timeout) as response:
        text = response.read().decode()
    return text, time.monotonic() - started


def wait_healthy(port: int, process: subprocess.Popen[bytes], limit: float) -> float:
    started = time.monotonic()
    while time.monotonic() - started < limit:
        if process.poll() is not None:
            raise RuntimeError(f"sla-operator local exited with {process.returncode} during start-up")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5):
                return time.monotonic() - started
        except OSError:
            time.sleep(0.5)
    raise RuntimeError(f"sla-operator local was not healthy within {limit:.0f}s")


def rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return math.nan


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def progress(text: str) -> None:
    print(f"  operator: {text}", file=sys.stderr, flush=True)


def run_operator(options: argparse.Namespace, urls: list[str], cpu: int | None,
                 target_pid: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="bench-operator-") as directory:
        manifests, state, log_path = Path(directory, "manifests"), Path(directory, "state"), Path(
            directory, "operator.log")
        manifests.mkdir()
        write_manifests(manifests, urls, options.agreements, options.endpoints, options.interval)
        metrics_port, status_port = free_port(), free_port()
        command = [sys.executable, "-m", "sla_operator", "local", "--manifests", str(manifests),
                   "--state", str(state), "--metrics-port", str(metrics_port), "--status-port",
                   str(status_port), "--bind-address", "127.0.0.1"]
        if options.no_uvloop:
            command.append("--no-uvloop")
        with open(log_path, "wb") as log:
            process = subprocess.Popen(
                command, stdout=subprocess.DEVNULL, stderr=log,
                preexec_fn=(lambda: os.sched_setaffinity(0, {cpu})) if cpu is not None else None)
        try:
            figures = _measure(options, process, metrics_port, target_pid)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
        stopped_at = figures.pop("_stopped_at")
        figures["statuses_written_at_shutdown"] = sum(
            1 for path in (state / "status" / "servicelevelagreements").rglob("*.yaml")
            if path.stat().st_mtime >= stopped_at)
        log_text = log_path.read_text(errors="replace")
    summary = SUMMARY.search(log_text)
    if summary is None:
        raise RuntimeError("the operator did not log its probe summary; its log ends with:\n"
                           + log_text[-2000:])
    seconds, started = float(summary["seconds"]), int(summary["started"])
    endpoints = int(summary["endpoints"])
    expected = endpoints * seconds / options.interval
    figures.update(
        probing_seconds=seconds, probes=started, expected_probes=round(expected),
        probes_done_ratio=round(started / expected, 4) if expected else math.nan,
        skipped=int(summary["skipped"]), errors=int(summary["errors"]), endpoints=endpoints,
        lag_mean_seconds=float(summary["mean"]), lag_max_seconds=float(summary["max"]),
        lag_p50_seconds=float(summary["p50"]), lag_p99_seconds=float(summary["p99"]),
        late_over_1s=int(summary["late"] or 0),
        late_over_1s_ratio=round(int(summary["late"] or 0) / started, 5) if started else math.nan,
        failures=int(summary["failed"]),
        cpu_ms_per_probe=round(figures["cpu_seconds"] * 1000 / started, 3) if started else math.nan,
        errors_logged=log_text.count(" ERROR "), warnings_logged=log_text.count(" WARNING "))
    return figures


def _measure(options: argparse.Namespace, process: subprocess.Popen[bytes],
             metrics_port: int, target_pid: int) -> dict[str, Any]:
    total = options.agreements * options.endpoints
    progress(f"{options.agreements} agreements x {options.endpoints} endpoints = {total} endpoints "
             f"every {options.interval:g} s; starting")
    start_seconds = wait_healthy(metrics_port, process, options.startup_limit)
    progress(f"healthy after {start_seconds:.1f} s; probing for {options.intervals} interval(s)")
    began = time.monotonic()
    target_cpu = process_cpu_seconds(target_pid)
    end = began + options.interval * options.intervals
    scrape_times: list[float] = []
    scrape_sizes: list[int] = []
    every = options.scrape_interval if options.scrape_interval > 0 else 10.0
    next_tick = began + every
    while (now := time.monotonic()) < end:
        time.sleep(max(0.0, min(next_tick, end) - now))
        if time.monotonic() < next_tick:
            continue
        next_tick += every
        shown = ""
        if options.scrape_interval > 0:  # 0: no scrapes, progress lines only
            text, seconds = scrape(metrics_port, 300)
            scrape_times.append(seconds)
            scrape_sizes.append(len(text))
            shown = f", /metrics {seconds:.2f} s ({len(text) / 1e6:.1f} MB)"
        progress(f"{time.monotonic() - began:.0f}/{end - began:.0f} s, "
                 f"CPU {process_cpu_seconds(process.pid):.1f} s, RSS {rss_mb(process.pid):.0f} MB, "
                 f"target CPU {process_cpu_seconds(target_pid) - target_cpu:.1f} s" + shown)
    cpu_seconds = process_cpu_seconds(process.pid)
    target_cpu = process_cpu_seconds(target_pid) - target_cpu
    wall = time.monotonic() - began
    stopped_at = time.time()
    stopping = time.monotonic()
    process.send_signal(signal.SIGTERM)
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    shutdown = time.monotonic() - stopping
    progress(f"stopped in {shutdown:.1f} s (exit {process.returncode})")
    return {
        "agreements": options.agreements,
        "endpoints_per_agreement": options.endpoints,
        "interval_seconds": options.interval,
        "event_loop": "asyncio" if options.no_uvloop else "default (uvloop where installed)",
        "startup_seconds": round(start_seconds, 1),
        "wall_seconds": round(wall, 1),
        "cpu_seconds": round(cpu_seconds, 2),
        "cpu_cores": round(cpu_seconds / (wall + start_seconds), 3),
        "cpu_seconds_with_shutdown": round(usage.ru_utime + usage.ru_stime, 2),
        "target_cpu_seconds_while_probing": round(target_cpu, 2),
        "peak_rss_mb": round(usage.ru_maxrss / 1024, 1),
        "scrapes": len(scrape_times),
        "scrape_max_seconds": round(max(scrape_times, default=0.0), 3),
        "scrape_mb": round(max(scrape_sizes, default=0) / 1e6, 1),
        "shutdown_seconds": round(shutdown, 1),
        "exit_code": process.returncode,
        "load_average": os.getloadavg(),
        "_stopped_at": stopped_at,
    }


def parse_arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.operator", description=__doc__.split("\n")[0])
    add_options(parser, prefix="")
    return parser.parse_args(argv)


OPTIONS = ("agreements", "endpoints", "interval", "intervals", "scrape_interval", "startup_limit",
           "no_uvloop")


def add_options(parser: argparse.ArgumentParser, prefix: str) -> None:
    """The phase's flags; `bench.run` adds them with the prefix ``operator-``."""
    def dest(name: str) -> str:
        return prefix.replace("-", "_") + name

    parser.add_argument(f"--{prefix}agreements", dest=dest("agreements"), type=int, default=1000)
    parser.add_argument(f"--{prefix}endpoints", dest=dest("endpoints"), type=int, default=100,
                        help="endpoints per agreement")
    parser.add_argument(f"--{prefix}interval", dest=dest("interval"), type=float, default=60,
                        help="probe interval, seconds")
    parser.add_argument(f"--{prefix}intervals", dest=dest("intervals"), type=int, default=2,
                        help="probe intervals measured")
    parser.add_argument(f"--{prefix}scrape-interval", dest=dest("scrape_interval"), type=float,
                        default=30, help="seconds between /metrics scrapes")
    parser.add_argument(f"--{prefix}startup-limit", dest=dest("startup_limit"), type=float,
                        default=900, help="seconds the operator may take to become healthy")
    parser.add_argument(f"--{prefix}no-uvloop", dest=dest("no_uvloop"), action="store_true",
                        help="run the operator on the plain asyncio loop")


def options_from(namespace: argparse.Namespace, prefix: str) -> argparse.Namespace:
    """The phase's own options out of a parser that added them with ``prefix``."""
    return argparse.Namespace(**{name: getattr(namespace, prefix.replace("-", "_") + name)
                                 for name in OPTIONS})


def measure(options: argparse.Namespace, target: Target) -> dict[str, Any]:
    """Run the phase against ``target``: the operator on the first CPU, the target on the last."""
    cpus = sorted(os.sched_getaffinity(0))
    operator_cpu = cpus[0]
    if len(cpus) > 1:
        os.sched_setaffinity(target.process.pid, {cpus[-1]})
    # Each probe is a new connection: allow enough descriptors for the bench's own sockets.
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    urls = [target.url(index) for index in range(len(target.ports))]
    figures = run_operator(options, urls, operator_cpu, target.process.pid)
    figures["cpu_affinity"] = [operator_cpu]
    return figures


def main(argv: list[str] | None = None) -> int:
    options = parse_arguments(argv)
    target = Target.start()
    try:
        figures = measure(options, target)
    finally:
        target.stop()
    print(json.dumps(figures), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
