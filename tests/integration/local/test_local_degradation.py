"""Slower than degradedLatency: the service is Degraded and a P3 incident opens, no downtime."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
from aiohttp import web
from local_support import LocalProcess, agreement, free_port, read, write_manifests


class SlowTarget:
    def __init__(self) -> None:
        self.port = free_port()
        self.delay = 0.0

    async def answer(self, _: web.Request) -> web.Response:
        await asyncio.sleep(self.delay)
        return web.json_response({"status": "ok"})


@pytest.fixture
async def slow_target() -> AsyncIterator[SlowTarget]:
    target = SlowTarget()
    app = web.Application()
    app.router.add_get("/{tail:.*}", target.answer)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", target.port).start()
    yield target
    await runner.cleanup()


async def test_slow_answers_open_a_p3_degradation_that_costs_no_downtime(
        slow_target: SlowTarget, manifests: Path, local: Callable[[], LocalProcess]) -> None:
    manifest = agreement("slow-shop", slow_target.port)
    manifest["spec"]["endpoints"][0]["degradedLatency"] = "150ms"
    write_manifests(manifests / "slow-shop.yaml", manifest)
    operator = local().start()
    await operator.wait_for("Up", lambda: operator.status("slow-shop").get("state") == "Up")

    slow_target.delay = 0.3
    path = await operator.wait_for("a degradation incident", lambda: operator.incident_files()[0])
    spec = read(path)["spec"]
    assert (spec["type"], spec["severity"], spec["impact"]) == ("degradation", "P3", "degraded")
    await operator.wait_for("state Degraded",
                            lambda: operator.status("slow-shop").get("state") == "Degraded")

    slow_target.delay = 0.0
    await operator.wait_for("the degradation resolved",
                            lambda: read(path)["spec"]["state"] == "resolved")
    status = await operator.wait_for("Up again", lambda: operator.status("slow-shop").get("state")
                                     == "Up" and operator.status("slow-shop"))
    assert status["currentPeriod"]["downtimeSeconds"] == 0
