"""The demo target follows its schedule: healthy, failing, slow, failing again."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime

import pytest
from aiohttp.test_utils import TestClient, TestServer

from sla_operator.local.demo import SCHEDULE, Behaviour, Mode, demo_app, schedule_text

API = Behaviour(("/api",), 90, ((20, 40, Mode.FAILING),))


@pytest.mark.parametrize(("elapsed", "mode"), [
    (0, Mode.HEALTHY), (19.9, Mode.HEALTHY), (20, Mode.FAILING), (39.9, Mode.FAILING),
    (40, Mode.HEALTHY), (110, Mode.FAILING), (130, Mode.HEALTHY),
])
def test_an_endpoint_fails_in_its_phase_of_every_cycle(elapsed: float, mode: Mode) -> None:
    assert API.mode_at(elapsed) is mode


def test_the_demo_schedule_shows_every_kind_of_trouble_within_two_minutes() -> None:
    seen = {b.mode_at(t) for b in SCHEDULE for t in range(120)}
    assert seen == {Mode.HEALTHY, Mode.FAILING, Mode.SLOW}
    first_trouble = min(t for t in range(120) if any(b.mode_at(t) is not Mode.HEALTHY for b in SCHEDULE))
    assert first_trouble > 10, "probes need a healthy start to show a state change"


def test_the_printed_schedule_lists_each_path_with_its_times() -> None:
    text = schedule_text("127.0.0.1", 8099, datetime(2026, 11, 26, 12, 0, tzinfo=UTC))
    assert "started 12:00:00 UTC" in text
    assert "/api, /healthz" in text and "failing at 0:20-0:40 of every 1:30" in text
    assert "always healthy" in text


@pytest.fixture
async def target() -> AsyncIterator[tuple[TestClient, list[float]]]:
    clock = [0.0]
    elapsed: Callable[[], float] = lambda: clock[0]  # noqa: E731
    client = TestClient(TestServer(demo_app(elapsed=elapsed)))
    await client.start_server()
    yield client, clock
    await client.close()


async def test_a_failing_endpoint_answers_503_and_recovers(target: tuple[TestClient, list[float]]) -> None:
    client, clock = target
    assert (await client.get("/api")).status == 200
    clock[0] = 25
    response = await client.get("/api")
    assert response.status == 503 and (await response.json())["status"] == "failing"
    clock[0] = 45
    assert (await (await client.get("/api")).json())["status"] == "ok"


async def test_the_index_tells_what_each_endpoint_does_now(target: tuple[TestClient, list[float]]) -> None:
    client, clock = target
    clock[0] = 50
    body = await (await client.get("/")).json()
    modes = {tuple(e["paths"]): e["mode"] for e in body["endpoints"]}
    assert modes[("/checkout",)] == "slow" and modes[("/api", "/healthz")] == "healthy"


async def test_a_slow_endpoint_still_answers_ok(target: tuple[TestClient, list[float]]) -> None:
    client, clock = target
    clock[0] = 50
    response = await client.get("/checkout")
    assert response.status == 200 and (await response.json())["status"] == "ok"
