"""`make bench`: the probe engine against prometheus-blackbox-exporter, then at 10k endpoints.

    python -m bench.run [--rate 300] [--duration 30] [--scale-endpoints 10000] ...

Phase 1 runs our engine (ProbeScheduler + run_probe) in this process at a fixed total rate
against a separate target process and counts probes per CPU second of this process. Phase 2
drives Debian's blackbox exporter at the same rate through /probe and counts probes per CPU
second of the exporter process (the driver's CPU is reported apart). Phase 3 runs the engine
alone, pinned to one core, with 10,000 endpoints for at least two intervals: schedule lag
and peak RSS. Phase 4 times one agreement's evaluation with a year of incidents on record.
Phase 5 serves the status page (100 agreements, 1,000 incidents) from its cache and times
one re-render after a change.
Nothing here is a test; the figures are printed (and written with --write).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import subprocess
import sys
from pathlib import Path
from typing import Any

from bench import blackbox, evaluation, metrics, statuspage
from bench.common import Target
from bench.engine import RateFigures, measure_engine

INSTALL_SCRIPT = Path(__file__).resolve().parent.parent / "scripts/install-blackbox-exporter.sh"


def parse_arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.split("\n")[0])
    parser.add_argument("--rate", type=float, default=300, help="probes per second (phases 1, 2)")
    parser.add_argument("--duration", type=float, default=30, help="seconds measured per phase")
    parser.add_argument("--endpoints", type=int, default=600, help="endpoints in phase 1")
    parser.add_argument("--scale-endpoints", type=int, default=10_000)
    parser.add_argument("--scale-interval", type=float, default=30, help="seconds")
    parser.add_argument("--scale-intervals", type=int, default=2, help="intervals to run (>= 2)")
    parser.add_argument("--skip-blackbox", action="store_true")
    parser.add_argument("--skip-scale", action="store_true")
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
        "## Figures",
        "",
        f"Command: `{' '.join(['python -m bench.run', *sys.argv[1:]])}`",
        f"Machine: {os.cpu_count()} CPUs, Python {platform.python_version()}, {platform.machine()}",
        "",
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
    engine, first_failure = await measure_engine(urls, options.endpoints, options.rate, options.duration)
    if first_failure:
        print(f"engine: first failure: {first_failure}", file=sys.stderr)
    exporter: tuple[RateFigures, float] | str
    missing = "--skip-blackbox" if options.skip_blackbox else ensure_exporter()
    if missing is None:
        exporter = await blackbox.measure_exporter(urls, options.rate, options.duration, None)
    else:
        exporter = missing
    return engine, exporter


def main(argv: list[str] | None = None) -> int:
    options = parse_arguments(argv)
    target = Target.start()
    try:
        engine, exporter = asyncio.run(compare(target, options))
        scale = None if options.skip_scale else run_scale(target, options)
    finally:
        target.stop()
    text = report(options, engine, exporter, scale)
    if not options.skip_evaluation:
        text += "\n" + evaluation.report()
    if not options.skip_statuspage:
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
