"""``sla-operator demo-target``: a small HTTP service whose endpoints fail and slow down on a schedule.

The schedule runs from the moment the target starts, so a demo shows incidents opening and
resolving within a couple of minutes: healthy, then /api failing, /checkout slow, the payments
provider failing, /api failing again, and round again.
"""

from __future__ import annotations

import asyncio
import json
import signal
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum

from aiohttp import web

SLOW_SECONDS = 0.6


class Mode(StrEnum):
    HEALTHY = "healthy"
    FAILING = "failing"
    SLOW = "slow"


@dataclass(frozen=True)
class Behaviour:
    """An endpoint's repeating schedule: ``mode`` during [start, end) of every ``cycle`` seconds."""

    paths: tuple[str, ...]
    cycle: float
    phases: tuple[tuple[float, float, Mode], ...] = ()

    def mode_at(self, elapsed: float) -> Mode:
        offset = elapsed % self.cycle
        return next((mode for start, end, mode in self.phases if start <= offset < end), Mode.HEALTHY)

    def describe(self) -> str:
        if not self.phases:
            return "always healthy"
        spans = ", ".join(f"{mode.value} at {_clock(start)}-{_clock(end)}"
                          for start, end, mode in self.phases)
        return f"{spans} of every {_clock(self.cycle)}"


SCHEDULE: tuple[Behaviour, ...] = (
    Behaviour(("/api", "/healthz"), 90, ((20, 40, Mode.FAILING),)),
    Behaviour(("/checkout",), 120, ((45, 75, Mode.SLOW),)),
    Behaviour(("/payments-provider", "/dependency/healthz"), 150, ((60, 80, Mode.FAILING),)),
    Behaviour(("/webhooks/healthz", "/sandbox"), 60),
)


def _clock(seconds: float) -> str:
    return f"{int(seconds) // 60}:{int(seconds) % 60:02d}"


def demo_app(schedule: Sequence[Behaviour] = SCHEDULE,
             elapsed: Callable[[], float] | None = None) -> web.Application:
    """The target's routes; ``elapsed`` (seconds since start) is injectable for tests."""
    started = time.monotonic()
    since_start = elapsed or (lambda: time.monotonic() - started)

    def handler(behaviour: Behaviour, path: str) -> Callable[[web.Request], Awaitable[web.Response]]:
        async def respond(_: web.Request) -> web.Response:
            mode = behaviour.mode_at(since_start())
            if mode is Mode.FAILING:
                return web.json_response({"status": "failing", "path": path}, status=503)
            if mode is Mode.SLOW:
                await asyncio.sleep(SLOW_SECONDS)
            return web.json_response({"status": "ok", "path": path})
        return respond

    async def index(_: web.Request) -> web.Response:
        now = since_start()
        return web.json_response({
            "elapsedSeconds": round(now, 1),
            "endpoints": [{"paths": list(b.paths), "mode": b.mode_at(now).value,
                           "schedule": b.describe()} for b in schedule],
        })

    app = web.Application()
    app.router.add_get("/", index)
    app.router.add_post("/notifications", print_notification)
    for behaviour in schedule:
        for path in behaviour.paths:
            app.router.add_route("*", path, handler(behaviour, path))
    return app


async def print_notification(request: web.Request) -> web.Response:
    """The receiver of examples/demo/notifications.yaml: prints each notification it gets, so
    a newcomer sees one arrive (the document is described by docs/notification.schema.json)."""
    try:
        body = await request.json()
    except ValueError:
        return web.json_response({"error": "expected a JSON body"}, status=400)
    document = body if isinstance(body, dict) else {}
    print(f"notification received: {document.get('summary')} (X-SLA-Delivery-Id "
          f"{request.headers.get('X-SLA-Delivery-Id', '-')})\n"
          f"  {json.dumps(document, ensure_ascii=False)}", flush=True)
    return web.json_response({"received": document.get("deliveryId")})


def schedule_text(host: str, port: int, started: datetime,
                  schedule: Sequence[Behaviour] = SCHEDULE) -> str:
    lines = [f"demo target on http://{host}:{port}/ started {started:%H:%M:%S} UTC; "
             "times below are minutes:seconds after that"]
    width = max(len(", ".join(b.paths)) for b in schedule)
    lines += [f"  {', '.join(b.paths):<{width}}  {b.describe()}" for b in schedule]
    return "\n".join(lines)


def run_demo_target(host: str, port: int) -> int:
    """Serve until SIGINT or SIGTERM; 0 after a clean stop."""
    return asyncio.run(_serve(host, port))


async def _serve(host: str, port: int) -> int:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    runner = web.AppRunner(demo_app(), access_log=None)
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port).start()
        print(schedule_text(host, port, datetime.now(UTC)), flush=True)
        await stop.wait()
    finally:
        await runner.cleanup()
    print("demo target stopped", file=sys.stderr, flush=True)
    return 0
