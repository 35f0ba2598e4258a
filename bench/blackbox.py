"""Phase two: Debian's prometheus-blackbox-exporter driven at the same probe rate.

The driver keeps its connections to the exporter alive, so the exporter spends its CPU on
probing and on answering /probe, as it does under a Prometheus scrape.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import quote

import aiohttp

from bench.common import process_cpu_seconds
from bench.engine import RateFigures

EXECUTABLE = "prometheus-blackbox-exporter"
CONFIG = """\
modules:
  http_2xx:
    prober: http
    timeout: 5s
    http:
      preferred_ip_protocol: ip4
"""
DRIVER_CONCURRENCY = 256


def installed() -> bool:
    return shutil.which(EXECUTABLE) is not None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def running_exporter(cpu: int | None) -> Iterator[tuple[int, int]]:
    """(pid, port) of an exporter on a loopback port with the http_2xx module."""
    with tempfile.TemporaryDirectory(prefix="bench-blackbox-") as directory:
        config = Path(directory) / "blackbox.yml"
        config.write_text(CONFIG)
        port = _free_port()
        process = subprocess.Popen(
            [
                EXECUTABLE,
                f"--config.file={config}",
                f"--web.listen-address=127.0.0.1:{port}",
                "--log.level=warn",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            if cpu is not None:
                os.sched_setaffinity(process.pid, {cpu})
            _wait_listening(port, process)
            yield process.pid, port
        finally:
            process.terminate()
            process.wait(timeout=10)


def _wait_listening(port: int, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{EXECUTABLE} exited with {process.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"{EXECUTABLE} did not listen on 127.0.0.1:{port}")


async def _drive(
    session: aiohttp.ClientSession, probe_urls: list[str], rate: float, duration: float
) -> tuple[int, int]:
    """Calls /probe at ``rate`` per second for ``duration``; returns (probes, failures)."""
    slots = asyncio.Semaphore(DRIVER_CONCURRENCY)
    done = failures = 0
    tasks: set[asyncio.Task[None]] = set()

    async def one(url: str) -> None:
        nonlocal done, failures
        try:
            async with session.get(url) as response:
                text = await response.text()
            if "probe_success 1" not in text:
                failures += 1
        except aiohttp.ClientError:
            failures += 1
        finally:
            done += 1
            slots.release()

    start = time.monotonic()
    index = 0
    while (due := start + index / rate) < start + duration:
        await asyncio.sleep(max(0.0, due - time.monotonic()))
        await slots.acquire()
        task = asyncio.create_task(one(probe_urls[index % len(probe_urls)]))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
        index += 1
    await asyncio.gather(*tasks)
    return done, failures


async def measure_exporter(
    target_urls: list[str], rate: float, duration: float, cpu: int | None
) -> tuple[RateFigures, float]:
    """The exporter's probes per CPU second, and the driver's own CPU seconds."""
    with running_exporter(cpu) as (pid, port):
        probe_urls = [
            f"http://127.0.0.1:{port}/probe?module=http_2xx&target={quote(url, safe='')}"
            for url in target_urls
        ]
        connector = aiohttp.TCPConnector(limit=DRIVER_CONCURRENCY)
        async with aiohttp.ClientSession(connector=connector) as session:
            await _drive(session, probe_urls, rate, min(duration, 3.0))  # warm-up
            exporter_start, driver_start = process_cpu_seconds(pid), time.process_time()
            wall_start = time.monotonic()
            probes, failures = await _drive(session, probe_urls, rate, duration)
            wall = time.monotonic() - wall_start
            exporter_cpu = process_cpu_seconds(pid) - exporter_start
            driver_cpu = time.process_time() - driver_start
    return RateFigures(probes, failures, exporter_cpu, wall), driver_cpu
