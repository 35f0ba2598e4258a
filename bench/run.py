"""`make bench`: the probe engine against prometheus-blackbox-exporter, then the whole operator.

    python -m bench.run [--rate 300] [--duration 30] [--scale-endpoints 10000]
                        [--operator-agreements 1000 --operator-endpoints 100] [--write FILE] ...

Phase 1 runs our engine (ProbeScheduler + run_probe) in this process at a fixed total rate
against a separate target process and counts probes per CPU second of this process. Phase 2
drives Debian's blackbox exporter at the same rate through /probe and counts probes per CPU
second of the exporter process (the driver's CPU is reported apart). Phase 3 searches the
highest rate each of the two sustains on one core with the probe's own p99 latency under
100 ms (bench/saturation.py). Phase 4 runs the engine alone, pinned to one core, with 10,000
endpoints for at least two intervals: schedule lag and peak RSS. Phase 5 runs the whole
operator, `sla-operator local` on 1,000 agreements x 100 endpoints every 60 s, pinned to one
core, with /metrics scraped (bench/operator.py). Phase 6 times one agreement's evaluation with
a year of incidents on record. Phase 7 serves the status page (100 agreements, 1,000
incidents) from its cache and times one re-render after a change.
Nothing here is a test; each phase says when it starts, a progress line follows every few
seconds, and the figures are printed at the end (and written with --write).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from bench import blackbox, evaluation, metrics, saturation, statuspage
from bench import operator as whole_operator
from bench.common import Target
from bench.engine import RateFigures, measure_engine
from sla_operator.cli import use_event_loop

INSTALL_SCRIPT = Path(__file__).resolve().parent.parent / "scripts/install-blackbox-exporter.sh"


def parse_arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.split("\n")[0])
    parser.add_argument("--rate", type=float, default=300, help="probes per second (phases 1, 2)")
    parser.add_argument("--duration", type=float, default=30, help="seconds measured per phase")
    parser.add_argument("--endpoints", type=int, default=600, help="endpoints in phase 1")
    parser.add_argument("--scale-endpoints", type=int, default=10_000)
    parser.add_argument("--scale-interval", type=float, default=30, help="seconds")
    parser.add_argument("--scale-intervals", type=int, default=2, help="intervals to run (>= 2)")
    parser.add_argument("--saturation-start", type=float, default=500, help="probes/s of the first step")
    parser.add_argument("--saturation-limit", type=float, default=16000, help="probes/s not tried beyond")
    parser.add_argument("--saturation-duration", type=float, default=10, help="seconds per step")
    parser.add_argument("--saturation-refinements", type=int, default=2,
                        help="halvings between the last rate sustained and the first not")
    whole_operator.add_options(parser, prefix="operator-")
    parser.add_argument("--no-uvloop", action="store_true",
                        help="run our engine on the plain asyncio loop (phases 1, 3, 4, 5)")
    parser.add_argument("--skip-blackbox", action="store_true")
    parser.add_argument("--skip-saturation", action="store_true")
    parser.add_argument("--skip-scale", action="store_true")
    parser.add_argument("--skip-operator", action="store_true")
    parser.add_argument("--skip-evaluation", action="store_true")
    parser.add_argument("--skip-statuspage", action="store_true")
    parser.add_argument("--metrics", action="store_true",
                        help="also time /metrics scrapes at 10k and 100k endpoints (bench.metrics)")
    parser.add_argument("--write", type=Path, help="also write the figures as Markdown here")
    return parser.parse_args(argv)


def ensure_exporter() -> str | None:
    """None when the exporter can run, else why not."""
    if not blackbox.installed():
        subprocess.run(["bash", str(INSTALL_SCRIPT)], check=False)
    if not blackbox.installed():
        return f"{blackbox.EXECUTABLE} is not installed (run {INSTALL_SCRIPT} as root)"
    return None


def run_scale(target: Target, options: argparse.Namespace) -> dict[str, Any]:
    cpus = sorted(os.sched_getaffinity(0))
    engine_cpu = cpus[0]
    if len(cpus) > 1:
        os.sched_setaffinity(target.process.pid, {cpus[-1]})
    settings = {
        "urls": [target.url(index) for index in range(len(target.ports))],
        "endpoints": options.scale_endpoints,
        "interval": options.scale_interval,
        "intervals": max(2, options.scale_intervals),
        "cpu": engine_cpu,
    }
    output = subprocess.run(
        [sys.executable, "-m", "bench.scale", json.dumps(settings)],
        check=True,
        capture_output=True,
        text=True,
    )
    figures: dict[str, Any] = json.loads(output.stdout.strip().splitlines()[-1])
    return figures


def phase(name: str) -> None:
    print(f"== {name} (load average {os.getloadavg()[0]:.1f})", file=sys.stderr, flush=True)


@contextmanager
def progress(label: str, expected_seconds: float, every: float = 10.0) -> Iterator[None]:
    """A line every ``every`` seconds while a phase that prints nothing itself runs."""
    stop = threading.Event()
    started = time.monotonic()

    def tick() -> None:
        while not stop.wait(every):
            print(f"  {label}: {time.monotonic() - started:.0f} s of about {expected_seconds:.0f} s",
                  file=sys.stderr, flush=True)

    ticker = threading.Thread(target=tick, daemon=True)
    ticker.start()
    try:
        yield
    finally:
        stop.set()
        ticker.join()


def machine(options: argparse.Namespace, loop: str, load_before: tuple[float, float, float]) -> str:
    load = os.getloadavg()
    return "\n".join([
        "## Figures",
        "",
        f"Command: `{' '.join(['python -m bench.run', *sys.argv[1:]])}`",
        f"Machine: {os.cpu_count()} CPUs ({_cpu_model()}), Python {platform.python_version()}, "
        f"{platform.machine()}, event loop of our engine: {loop}",
        f"Load average (1, 5, 15 min): {_load(load_before)} at the start, {_load(load)} at the end "
        "(the machine is shared: figures move with it)",
        "", ""])


def _load(load: tuple[float, float, float]) -> str:
    return ", ".join(f"{value:.1f}" for value in load)


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as info:
            for line in info:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def saturation_report(figures: dict[str, Any]) -> str:
    lines = [
        f"### Highest rate sustained on one core (CPU {figures['cpu']}), p99 of the probe < 100 ms",
        "",
        f"Steps of {figures['duration']:g} s; sustained = at least 97% of the probes due done, none "
        "skipped or failed, p99 of the probe's own latency under 100 ms.",
        "",
        "| prober | rate | done / due | skipped | failures | p99 | sustained |",
        "|---|---|---|---|---|---|---|",
    ]
    best: dict[str, float] = {}
    for name, key in (("sla-operator engine", "engine"), ("blackbox_exporter", "exporter")):
        found = figures[key]
        if isinstance(found, str):
            lines.append(f"| {name} | skipped ({found}) | | | | | |")
            continue
        best[key], steps = found
        for step in steps:
            lines.append(f"| {name} | {step['rate']:.0f}/s | {step['done']} / {step['due']} | "
                         f"{step['skipped']} | {step['failures']} | {step['p99'] * 1000:.1f} ms | "
                         f"{'yes' if step['sustained'] else 'no'} |")
    lines.append("")
    lines += [f"**Highest rate sustained: {name} {best[key]:.0f}/s**" for name, key in
              (("engine", "engine"), ("blackbox_exporter", "exporter")) if key in best]
    if best.get("exporter"):
        lines.append(f"**Ratio at saturation: {best['engine'] / best['exporter']:.2f}**")
    return "\n".join(lines) + "\n"


def operator_report(figures: dict[str, Any]) -> str:
    f = figures
    return "\n".join([
        f"### The whole operator: `sla-operator local`, {f['agreements']} agreements x "
        f"{f['endpoints_per_agreement']} endpoints every {f['interval_seconds']:g} s, one core "
        f"(CPU {f['cpu_affinity'][0]})",
        "",
        "| endpoints | start-up | probing | probes done / expected | skipped | failures | "
        "lag p50 | lag p99 | lag max | started > 1 s late | CPU per probe | CPU (cores) | "
        "peak RSS | /metrics scrape (max) | shutdown | statuses written at shutdown |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
        f"| {f['endpoints']} | {f['startup_seconds']} s | {f['probing_seconds']:.0f} s | "
        f"{f['probes']} / {f['expected_probes']} ({f['probes_done_ratio'] * 100:.1f}%) | "
        f"{f['skipped']} | {f['failures']:.0f} | {f['lag_p50_seconds'] * 1000:.0f} ms | "
        f"{f['lag_p99_seconds'] * 1000:.0f} ms | {f['lag_max_seconds'] * 1000:.0f} ms | "
        f"{f['late_over_1s']} ({f['late_over_1s_ratio'] * 100:.2f}%) | "
        f"{f['cpu_ms_per_probe']:.2f} ms | "
        f"{f['cpu_cores']:.2f} | {f['peak_rss_mb']:.0f} MB | {f['scrape_max_seconds']:.2f} s, "
        f"{f['scrape_mb']} MB | {f['shutdown_seconds']} s | "
        f"{f['statuses_written_at_shutdown']} of {f['agreements']} |",
        "",
        f"Event loop: {f['event_loop']}; load average at the end "
        f"{_load(tuple(f['load_average']))}; errors / warnings logged: {f['errors_logged']} / "
        f"{f['warnings_logged']}.",
    ]) + "\n"


def describe_rate(name: str, figures: RateFigures) -> str:
    return (
        f"| {name} | {figures.probes} | {figures.failures} | {figures.rate:.0f} | "
        f"{figures.cpu_seconds:.2f} | {figures.probes_per_cpu_second:.0f} |"
    )


def report(
    options: argparse.Namespace,
    engine: RateFigures,
    exporter: tuple[RateFigures, float] | str,
    scale: dict[str, Any] | None,
) -> str:
    lines = [
        f"### Probes per CPU second at {options.rate:.0f} probes/s for {options.duration:.0f} s",
        "",
        "| prober | probes | failures | probes/s | CPU s | probes per CPU second |",
        "|---|---|---|---|---|---|",
        describe_rate(f"sla-operator engine ({options.endpoints} endpoints)", engine),
    ]
    if isinstance(exporter, str):
        lines += ["", f"blackbox exporter: skipped ({exporter})"]
    else:
        figures, driver_cpu = exporter
        ratio = engine.probes_per_cpu_second / figures.probes_per_cpu_second
        lines += [
            describe_rate("blackbox_exporter (exporter process only)", figures),
            "",
            f"Driver CPU (calling /probe, not counted above): {driver_cpu:.2f} s",
            f"**Ratio engine / exporter: {ratio:.2f}**",
        ]
    if scale is not None:
        lines += [
            "",
            f"### {scale['endpoints']} HTTP endpoints every {scale['interval_seconds']:g} s, "
            f"one core (CPU {scale['cpu_affinity']})",
            "",
            "| wall s | probes | failures | skipped | CPU s | lag p50 | lag p99 | lag max | peak RSS |",
            "|---|---|---|---|---|---|---|---|---|",
            f"| {scale['wall_seconds']} | {scale['probes']} | {scale['failures']} | "
            f"{scale['skipped']} | {scale['cpu_seconds']} | "
            f"{scale['lag_p50_seconds'] * 1000:.1f} ms | {scale['lag_p99_seconds'] * 1000:.1f} ms | "
            f"{scale['lag_max_seconds'] * 1000:.1f} ms | {scale['peak_rss_mb']:.0f} MB |",
        ]
        if scale["first_failure"]:
            lines.append(f"First failure message: {scale['first_failure']}")
    return "\n".join(lines) + "\n"


async def compare(target: Target, options: argparse.Namespace) -> tuple[Any, Any]:
    urls = [target.url(index) for index in range(len(target.ports))]
    phase(f"1 our engine at {options.rate:g} probes/s")
    with progress("engine", options.duration + options.endpoints / options.rate + 1):
        engine, first_failure = await measure_engine(urls, options.endpoints, options.rate,
                                                     options.duration)
    if first_failure:
        print(f"engine: first failure: {first_failure}", file=sys.stderr)
    exporter: tuple[RateFigures, float] | str
    missing = "--skip-blackbox" if options.skip_blackbox else ensure_exporter()
    if missing is None:
        phase(f"2 blackbox_exporter at {options.rate:g} probes/s")
        with progress("blackbox_exporter", options.duration + 3):
            exporter = await blackbox.measure_exporter(urls, options.rate, options.duration, None)
    else:
        exporter = missing
    return engine, exporter


def main(argv: list[str] | None = None) -> int:
    options = parse_arguments(argv)
    loop = use_event_loop(options.no_uvloop)
    if options.no_uvloop:
        os.environ["SLA_OPERATOR_UVLOOP"] = "0"  # the phases run in their own processes too
    load_before = os.getloadavg()
    target = Target.start()
    saturated = scale = operator_figures = None
    try:
        engine, exporter = asyncio.run(compare(target, options))
        urls = [target.url(index) for index in range(len(target.ports))]
        if not options.skip_saturation:
            phase("3 saturation search, one core each")
            saturated = saturation.measure(
                urls, options, exporter if isinstance(exporter, str) else None)
        if not options.skip_scale:
            phase(f"4 our engine alone: {options.scale_endpoints} endpoints every "
                  f"{options.scale_interval:g} s")
            with progress("scale", options.scale_interval * max(2, options.scale_intervals) + 1):
                scale = run_scale(target, options)
        if not options.skip_operator:
            operating = whole_operator.options_from(options, "operator-")
            operating.no_uvloop = operating.no_uvloop or options.no_uvloop
            phase(f"5 the whole operator: {operating.agreements} agreements x "
                  f"{operating.endpoints} endpoints every {operating.interval:g} s")
            operator_figures = whole_operator.measure(operating, target)
    finally:
        target.stop()
    text = machine(options, loop, load_before) + report(options, engine, exporter, scale)
    if saturated is not None:
        text += "\n" + saturation_report(saturated)
    if operator_figures is not None:
        text += "\n" + operator_report(operator_figures)
    if not options.skip_evaluation:
        phase("6 one agreement's evaluation")
        text += "\n" + evaluation.report()
    if not options.skip_statuspage:
        phase("7 the status page")
        text += "\n" + statuspage.report()
    if options.metrics:
        text += "\n" + metrics.report(asyncio.run(metrics.run([10_000, 100_000], [False, True])))
    print(text)
    if options.write is not None:
        options.write.parent.mkdir(parents=True, exist_ok=True)
        options.write.write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
