"""A catastrophically backtracking bodyRegex fails its own probe and holds up nothing else."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import pytest
from aiohttp import web
from probe_targets import HttpTarget, Probe

from sla_operator.domain.model import HttpProbe
from sla_operator.probes import http
from sla_operator.probes.base import ProbeContext
from sla_operator.probes.policy import AddressPolicy

EVIL_BODY = "a" * 30000 + "b"
BACKTRACKING = "(a+)+$"  # tries every split of the a's before failing at the b: 2**30000 ways


@pytest.fixture
async def evil_target(free_port: int) -> AsyncIterator[str]:
    async def evil(request: web.Request) -> web.Response:
        return web.Response(text=EVIL_BODY)

    app = web.Application()
    app.router.add_get("/evil", evil)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", free_port).start()
    yield f"http://127.0.0.1:{free_port}/evil"
    await runner.cleanup()


class WatchedThreads(ThreadPoolExecutor):
    """The probe's search threads, telling the test when a search has begun."""

    def __init__(self, threads: int = 2) -> None:
        super().__init__(max_workers=threads, thread_name_prefix="test-body-regex")
        self.searching = threading.Event()

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        def run() -> Any:
            self.searching.set()
            return fn(*args, **kwargs)

        return super().submit(run)


async def until(condition: Callable[[], bool]) -> None:
    async with asyncio.timeout(60):
        while not condition():
            await asyncio.sleep(0.01)


async def test_a_backtracking_body_regex_fails_the_probe_with_a_clear_message(
        probe: Probe, evil_target: str) -> None:
    # The probe's own timeout is far away: only the regex time limit can end this probe.
    result = await probe(HttpProbe(url=evil_target, body_regex=BACKTRACKING), timeout=30)
    assert not result.ok
    assert result.message == "body regex took longer than 1s"


async def test_another_probe_completes_while_a_backtracking_search_runs(
        probe: Probe, evil_target: str, http_target: HttpTarget,
        monkeypatch: pytest.MonkeyPatch) -> None:
    threads = WatchedThreads()
    monkeypatch.setattr(http, "_BODY_SEARCH_THREADS", threads)
    # A longer limit leaves the other probe a wide margin to finish during the search.
    monkeypatch.setattr(http, "BODY_REGEX_TIME_LIMIT", 5.0)
    quiet = ProbeContext(policy=AddressPolicy(), resolve_secret=no_secrets)  # another namespace
    try:
        stuck = asyncio.create_task(
            probe(HttpProbe(url=evil_target, body_regex=BACKTRACKING), timeout=30))
        await until(threads.searching.is_set)

        other = await probe(HttpProbe(url=http_target.url("/ok"), body_regex='"status"'),
                            probe_context=quiet)
        assert other.ok, other.message
        assert not stuck.done(), "the search ended before the other probe could show it was not blocked"

        result = await stuck
        assert result.message == "body regex took longer than 5s"
    finally:
        await quiet.aclose()
        threads.shutdown(wait=True)


async def test_one_namespaces_slow_patterns_never_hold_every_search_thread(
        probe: Probe, evil_target: str, http_target: HttpTarget,
        monkeypatch: pytest.MonkeyPatch) -> None:
    # Three search threads; one namespace probes three backtracking endpoints at once. If its
    # searches could take every thread, the other namespace's probe would wait for them.
    threads = WatchedThreads(threads=3)
    monkeypatch.setattr(http, "_BODY_SEARCH_THREADS", threads)
    monkeypatch.setattr(http, "BODY_REGEX_TIME_LIMIT", 3.0)
    noisy = ProbeContext(policy=AddressPolicy(), resolve_secret=no_secrets)
    quiet = ProbeContext(policy=AddressPolicy(), resolve_secret=no_secrets)
    try:
        stuck = [asyncio.create_task(probe(HttpProbe(url=evil_target, body_regex=BACKTRACKING),
                                           timeout=120, probe_context=noisy)) for _ in range(3)]
        await until(threads.searching.is_set)

        other = await probe(HttpProbe(url=http_target.url("/ok"), body_regex='"status"'),
                            timeout=4, probe_context=quiet)
        assert other.ok, other.message
        assert not any(task.done() for task in stuck)

        results = await asyncio.gather(*stuck)
        assert {r.message for r in results} == {"body regex took longer than 3s"}
    finally:
        for context in (noisy, quiet):
            await context.aclose()
        threads.shutdown(wait=True)


async def no_secrets(name: str, key: str) -> str:
    raise AssertionError("no secrets here")
