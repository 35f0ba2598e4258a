"""Phase 5 of `make bench`: the status page from its cache, and one re-render after a change.

100 public agreements with 90 days of figures each and 1,000 incidents of the last 90 days
(three updates each). The server runs in its own process (as the operator would); a
keep-alive client here requests `/` and `/api/v1/status` for a fixed time at a fixed
concurrency and records each request's latency. The re-render is timed in this process: a
new snapshot in which one agreement changed state, then the documents it makes.

    python -m bench.statuspage serve PORT    # the server alone (used by the phase)
"""

from __future__ import annotations

import asyncio
import socket
import statistics
import subprocess
import sys
import time
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import aiohttp
from aiohttp import web

from sla_operator.domain.accounting import DayFigures, PeriodFigures
from sla_operator.domain.intervals import Interval
from sla_operator.domain.model import (
    Environment,
    Incident,
    IncidentState,
    IncidentType,
    IncidentUpdate,
    Severity,
    State,
)
from sla_operator.domain.views import AgreementView, Snapshot
from sla_operator.statuspage import status_app
from sla_operator.statuspage.render import Renderer

NOW = datetime(2026, 11, 27, 3, 30, tzinfo=UTC)
AGREEMENTS, INCIDENTS, DAYS = 100, 1_000, 90


def _days(seed: int) -> tuple[DayFigures, ...]:
    today = NOW.date()
    result = []
    for back in range(DAYS - 1, -1, -1):
        day: date = today - timedelta(days=back)
        down = float((seed * 7 + back * 13) % 97 * 10) if (seed + back) % 11 == 0 else 0.0
        result.append(DayFigures(day, 1 - down / 86400, down, 0.0, 0.0, 0.0))
    return tuple(result)


def _period(seed: int) -> PeriodFigures:
    start = datetime(2026, 11, 1, tzinfo=UTC)
    down = float(seed * 30)
    return PeriodFigures(Interval(start, datetime(2026, 12, 1, tzinfo=UTC)), "2026-11", 2_279_400.0,
                         0.0, 0.0, 0.0, down, 2_279_400.0, 1 - down / 2_279_400, Decimal("99.9"),
                         2592.0, 2592.0 - down, (2592.0 - down) / 2592, 10, down < 2279.4, ())


def world() -> Snapshot:
    agreements = tuple(AgreementView(
        namespace=f"team-{n % 10}", name=f"service-{n}", service=f"Service number {n}",
        environment=Environment.PRODUCTION, objective=Decimal("99.9"), public=True,
        group=f"Group {n % 10}", state=State.UP, period=_period(n), days=_days(n),
        evaluated_at=NOW) for n in range(AGREEMENTS))
    incidents = []
    for n in range(INCIDENTS):
        owner = agreements[n % AGREEMENTS]
        started = NOW - timedelta(minutes=127 * (n + 1))
        updates = tuple(IncidentUpdate(started + timedelta(minutes=k * 3), state, f"update {k} of {n}")
                        for k, state in enumerate((IncidentState.INVESTIGATING,
                                                   IncidentState.IDENTIFIED, IncidentState.RESOLVED)))
        incidents.append(Incident(
            namespace=owner.namespace, name=f"{owner.name}-{n}", agreement=owner.name,
            type=IncidentType.OUTAGE, severity=Severity.P2, title=f"{owner.service} is down",
            started_at=started, resolved_at=started + timedelta(minutes=9),
            state=IncidentState.RESOLVED, updates=updates))
    return Snapshot(taken_at=NOW, agreements=agreements, incidents=tuple(incidents))


def unchanged_milliseconds(rounds: int = 20) -> float:
    """Median time for a request to see that a new snapshot shows nothing new (no render)."""
    current = world()
    renderer = Renderer(lambda: current)
    renderer.current()
    times = []
    for n in range(rounds):
        current = replace(current, taken_at=NOW + timedelta(seconds=n + 1))
        started = time.perf_counter()
        renderer.current()
        times.append((time.perf_counter() - started) * 1000)
    assert renderer.renders == 1
    return statistics.median(times)


def rerender_milliseconds(rounds: int = 20) -> tuple[float, float, int]:
    """Median and worst time of one re-render after a change, and the page's size."""
    current = world()
    renderer = Renderer(lambda: current)
    renderer.current()
    times = []
    for n in range(rounds):
        changed = replace(current.agreements[n], state=State.DOWN if n % 2 == 0 else State.DEGRADED)
        current = replace(current, taken_at=NOW + timedelta(seconds=n + 1),
                          agreements=(*current.agreements[:n], changed, *current.agreements[n + 1:]))
        started = time.perf_counter()
        renderer.current()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times), max(times), len(renderer.documents["/"].body)


async def _drive(url: str, seconds: float, concurrency: int) -> list[float]:
    latencies: list[float] = []
    deadline = time.perf_counter() + seconds
    headers = {"Accept-Encoding": "gzip"}

    async def worker(session: aiohttp.ClientSession) -> None:
        while time.perf_counter() < deadline:
            started = time.perf_counter()
            async with session.get(url, headers=headers) as response:
                await response.read()
                assert response.status == 200
            latencies.append(time.perf_counter() - started)

    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector, auto_decompress=False) as session:
        await asyncio.gather(*(worker(session) for _ in range(concurrency)))
    return latencies


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def measure_requests(seconds: float = 10, concurrency: int = 8) -> dict[str, tuple[float, float, float]]:
    """Per path: requests per second, p50 and p99 latency in ms."""
    port = _free_port()
    server = subprocess.Popen([sys.executable, "-m", "bench.statuspage", "serve", str(port)])
    try:
        base = f"http://127.0.0.1:{port}"
        for _ in range(200):
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.1):
                    break
            except OSError:
                time.sleep(0.1)
        figures = {}
        for path in ("/", "/api/v1/status"):
            asyncio.run(_drive(base + path, 1, concurrency))  # warm: rendered, connections open
            latencies = sorted(asyncio.run(_drive(base + path, seconds, concurrency)))
            p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]
            figures[path] = (len(latencies) / seconds, statistics.median(latencies) * 1000, p99 * 1000)
        return figures
    finally:
        server.terminate()
        server.wait(timeout=10)


def report(seconds: float = 10, concurrency: int = 8) -> str:
    median, worst, size = rerender_milliseconds()
    unchanged = unchanged_milliseconds()
    served = measure_requests(seconds, concurrency)
    lines = [f"### Status page: {AGREEMENTS} public agreements, {DAYS} days each, "
             f"{INCIDENTS:,} incidents", "",
             f"{concurrency} keep-alive clients for {seconds:g} s per path, gzip accepted; "
             "the server in its own process.", "",
             "| path | requests/s | p50 | p99 |", "|---|---|---|---|"]
    lines += [f"| `{path}` | {rps:.0f} | {p50:.2f} ms | {p99:.2f} ms |"
              for path, (rps, p50, p99) in served.items()]
    lines += ["", f"Re-render after one agreement changed: median {median:.0f} ms, worst {worst:.0f} ms "
              f"(model, HTML of {size / 1e6:.2f} MB, JSON, Atom, gzip of each).",
              f"A new snapshot with nothing new to show (every round): {unchanged:.1f} ms, no render."]
    return "\n".join(lines) + "\n"


def serve(port: int) -> None:
    snapshot = world()
    web.run_app(status_app(lambda: snapshot), host="127.0.0.1", port=port, access_log=None,
                print=None)


if __name__ == "__main__":
    if sys.argv[1:2] == ["serve"]:
        serve(int(sys.argv[2]))
    else:
        print(report())
