"""The probe scheduler, run on fake event-loop time (looptime) with a fake probe function."""

from __future__ import annotations

import asyncio
import itertools
import math
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta

import pytest

from sla_operator.domain.model import Endpoint, ProbeResult, TcpProbe
from sla_operator.probes.base import ProbeContext
from sla_operator.probes.policy import AddressPolicy
from sla_operator.probes.scheduler import LATE_START_GRACE, LagHistogram, ProbeScheduler

pytestmark = pytest.mark.looptime

OWNER = ("payments", "payments-api")


async def no_secrets(name: str, key: str) -> str:
    raise LookupError(name)


CONTEXT = ProbeContext(policy=AddressPolicy(), resolve_secret=no_secrets)


def endpoint(name: str, interval: float = 10, port: int = 1) -> Endpoint:
    return Endpoint(
        name=name,
        probe=TcpProbe(host="127.0.0.1", port=port),
        interval=timedelta(seconds=interval),
        timeout=timedelta(seconds=min(interval / 2, 5)),
    )


@dataclass
class FakeProbes:
    """Records when each endpoint's probe started; each probe takes ``duration`` seconds."""

    duration: float = 0.0
    starts: list[tuple[str, float, Endpoint]] = field(default_factory=list)
    results: list[tuple[tuple[str, str], str]] = field(default_factory=list)
    in_flight: int = 0
    most_in_flight: int = 0
    in_flight_by_name: dict[str, int] = field(default_factory=dict)
    overlapped: bool = False

    async def run(self, probed: Endpoint, context: ProbeContext) -> ProbeResult:
        loop = asyncio.get_running_loop()
        self.starts.append((probed.name, loop.time(), probed))
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        running = self.in_flight_by_name.get(probed.name, 0) + 1
        self.in_flight_by_name[probed.name] = running
        self.overlapped = self.overlapped or running > 1
        try:
            await asyncio.sleep(self.duration)
        finally:
            self.in_flight -= 1
            self.in_flight_by_name[probed.name] -= 1
        return ProbeResult(datetime.now(UTC), True, self.duration, "ok")

    def record(self, owner: tuple[str, str], probed: Endpoint, result: ProbeResult) -> None:
        self.results.append((owner, probed.name))

    def start_times(self, name: str) -> list[float]:
        return [at for started, at, _ in self.starts if started == name]


@asynccontextmanager
async def running(scheduler: ProbeScheduler) -> AsyncIterator[asyncio.Task[None]]:
    task = asyncio.create_task(scheduler.run())
    try:
        yield task
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


def make_scheduler(
    probes: FakeProbes,
    *,
    run: Callable[[Endpoint, ProbeContext], Awaitable[ProbeResult]] | None = None,
    concurrency: int = 256,
    seed: int | None = None,
) -> ProbeScheduler:
    return ProbeScheduler(
        probes.record,
        run=run or probes.run,
        concurrency=concurrency,
        monotonic=lambda: asyncio.get_running_loop().time(),
        seed=seed,
    )


async def test_start_times_spread_across_the_interval() -> None:
    probes = FakeProbes()
    scheduler = make_scheduler(probes)
    scheduler.set_endpoints(OWNER, [endpoint(f"e{i}") for i in range(200)], CONTEXT)
    async with running(scheduler):
        await asyncio.sleep(9.999)
    first_starts = [at for _, at, _ in probes.starts]
    assert len(first_starts) == 200
    per_second = [sum(1 for at in first_starts if int(at) == second) for second in range(10)]
    assert min(per_second) >= 8, per_second
    assert max(per_second) <= 40, per_second


async def test_the_spread_is_the_same_after_a_restart_and_changes_with_the_seed() -> None:
    def phases(seed: int | None) -> list[float]:
        scheduler = make_scheduler(FakeProbes(), seed=seed)
        return [scheduler._phase(OWNER, f"e{i}") for i in range(20)]

    assert phases(None) == phases(None)
    assert phases(None) != phases(7)
    assert all(0 <= phase < 1 for phase in phases(None))


async def test_every_endpoint_runs_once_per_interval() -> None:
    probes = FakeProbes(duration=1)
    scheduler = make_scheduler(probes)
    scheduler.set_endpoints(OWNER, [endpoint("api", 10), endpoint("web", 5)], CONTEXT)
    async with running(scheduler):
        await asyncio.sleep(30)
    api, web = probes.start_times("api"), probes.start_times("web")
    assert len(api) == 3 and len(web) == 6
    assert all(math.isclose(b - a, 10) for a, b in itertools.pairwise(api))
    assert all(math.isclose(b - a, 5) for a, b in itertools.pairwise(web))
    assert len(probes.results) == 9


async def test_the_concurrency_bound_is_respected() -> None:
    probes = FakeProbes(duration=4)
    scheduler = make_scheduler(probes, concurrency=3)
    scheduler.set_endpoints(OWNER, [endpoint(f"e{i}", 10) for i in range(20)], CONTEXT)
    async with running(scheduler):
        await asyncio.sleep(25)
    assert probes.most_in_flight == 3
    assert scheduler.lag.count == len(probes.starts)
    assert scheduler.lag.sum > 0  # probes waited for a free slot


async def test_an_endpoint_never_runs_twice_at_once_and_skipped_ticks_are_counted() -> None:
    probes = FakeProbes(duration=3.5)
    scheduler = make_scheduler(probes)
    scheduler.set_endpoints(OWNER, [endpoint("slow", 1)], CONTEXT)
    async with running(scheduler):
        await asyncio.sleep(10)
    assert not probes.overlapped
    assert len(probes.start_times("slow")) == 3
    assert scheduler.skipped >= 6


async def test_a_changed_spec_is_picked_up_on_the_next_tick_without_moving_it() -> None:
    probes = FakeProbes()
    scheduler = make_scheduler(probes)
    scheduler.set_endpoints(OWNER, [endpoint("api", 10, port=1)], CONTEXT)
    async with running(scheduler):
        await asyncio.sleep(10)
        scheduler.set_endpoints(OWNER, [endpoint("api", 10, port=2)], CONTEXT)
        await asyncio.sleep(10)
    (_, first, old), (_, second, new) = probes.starts
    assert (old.probe.port, new.probe.port) == (1, 2)  # type: ignore[union-attr]
    assert math.isclose(second - first, 10)


async def test_a_shorter_interval_takes_effect_without_waiting_for_the_old_one() -> None:
    probes = FakeProbes()
    scheduler = make_scheduler(probes)
    scheduler.set_endpoints(OWNER, [endpoint("api", 3600)], CONTEXT)
    async with running(scheduler):
        await asyncio.sleep(3600)
        scheduler.set_endpoints(OWNER, [endpoint("api", 10)], CONTEXT)
        await asyncio.sleep(30)
    assert len(probes.start_times("api")) >= 3


async def test_removed_endpoints_stop_and_their_late_results_are_dropped() -> None:
    probes = FakeProbes(duration=2)
    scheduler = make_scheduler(probes)
    other = ("payments", "other")
    scheduler.set_endpoints(OWNER, [endpoint("api", 10), endpoint("web", 10)], CONTEXT)
    scheduler.set_endpoints(other, [endpoint("api", 10)], CONTEXT)
    async with running(scheduler):
        await asyncio.sleep(10)
        scheduler.set_endpoints(OWNER, [endpoint("api", 10)], CONTEXT)
        scheduler.remove(other)
        await asyncio.sleep(30)
    assert scheduler.endpoint_count == 1
    assert len(probes.start_times("web")) == 1
    assert len(probes.start_times("api")) == 1 + 4  # both owners once, then OWNER's three more
    assert (other, "api") in probes.results
    assert all(owner == OWNER for owner, _ in probes.results[3:])


async def test_failing_probes_and_failing_callbacks_do_not_stop_the_loop() -> None:
    probes = FakeProbes()

    async def run(probed: Endpoint, context: ProbeContext) -> ProbeResult:
        if probed.name == "broken":
            raise RuntimeError("probe bug")
        return await probes.run(probed, context)

    def on_result(owner: tuple[str, str], probed: Endpoint, result: ProbeResult) -> None:
        probes.record(owner, probed, result)
        if probed.name == "cursed":
            raise ValueError("callback bug")

    scheduler = ProbeScheduler(on_result, run=run, monotonic=lambda: asyncio.get_running_loop().time())
    names = ["broken", "cursed", "healthy"]
    scheduler.set_endpoints(OWNER, [endpoint(name, 10) for name in names], CONTEXT)
    async with running(scheduler) as task:
        await asyncio.sleep(30)
        assert not task.done()
    assert len(probes.start_times("healthy")) == 3
    assert len(probes.start_times("cursed")) == 3
    assert scheduler.errors == 6


async def test_cancelling_the_loop_cancels_probes_in_flight() -> None:
    probes = FakeProbes(duration=100)
    scheduler = make_scheduler(probes)
    scheduler.set_endpoints(OWNER, [endpoint("api", 10)], CONTEXT)
    async with running(scheduler) as task:
        await asyncio.sleep(10)
        assert probes.in_flight == 1
    assert task.cancelled()
    assert probes.in_flight == 0
    assert probes.results == []


async def test_an_idle_scheduler_wakes_up_for_new_endpoints() -> None:
    probes = FakeProbes()
    scheduler = make_scheduler(probes)
    async with running(scheduler):
        await asyncio.sleep(100)
        scheduler.set_endpoints(OWNER, [endpoint("api", 10)], CONTEXT)
        await asyncio.sleep(10)
    assert len(probes.starts) == 1
    assert probes.starts[0][1] >= 100


def test_the_lag_histogram_counts_cumulatively() -> None:
    histogram = LagHistogram(buckets=(0.1, 1.0))
    for lag in (0.05, 0.5, 0.7, 3.0, -0.01):
        histogram.observe(lag)
    assert histogram.buckets == (0.1, 1.0, math.inf)
    assert histogram.cumulative_counts == (2, 4, 5)
    assert histogram.count == 5
    assert math.isclose(histogram.sum, 4.25)


def test_a_concurrency_below_one_is_refused() -> None:
    with pytest.raises(ValueError, match="concurrency must be at least 1, got 0"):
        make_scheduler(FakeProbes(), concurrency=0)


async def test_an_endpoint_keeps_its_schedule_when_its_context_is_replaced() -> None:
    probes = FakeProbes()
    scheduler = make_scheduler(probes)
    scheduler.set_endpoints(OWNER, [endpoint("api", 10)], CONTEXT)
    async with running(scheduler):
        await asyncio.sleep(10)
        scheduler.set_endpoints(OWNER, [endpoint("api", 10)], replace(CONTEXT))
        await asyncio.sleep(10)
    first, second = probes.start_times("api")
    assert math.isclose(second - first, 10)


def test_the_lag_quantiles_are_read_from_the_buckets_as_prometheus_reads_them() -> None:
    lag = LagHistogram(buckets=(0.1, 1.0))
    assert lag.quantile(0.99) == 0.0  # nothing observed yet
    for seconds in (0.05,) * 90 + (0.5,) * 9 + (3.0,):
        lag.observe(seconds)
    assert lag.quantile(0.5) == pytest.approx(0.1 * 50 / 90)
    assert lag.quantile(0.99) == pytest.approx(1.0)
    assert lag.quantile(1.0) == 1.0  # in the +Inf bucket: the highest finite bound
    assert lag.max == 3.0
    lag.observe(0.2)  # one more in the second bucket, far below its upper bound
    assert LagHistogram(buckets=(1.0,)).quantile(0.5) == 0.0
    alone = LagHistogram(buckets=(1.0,))
    alone.observe(0.2)
    assert alone.quantile(0.99) == 0.2  # never above the largest lag seen


def test_the_starts_later_than_a_bound_are_counted_exactly() -> None:
    lag = LagHistogram(buckets=(0.5, 1.0))
    for seconds in (0.1, 0.5, 0.9, 1.0, 1.01, 7.0):
        lag.observe(seconds)
    assert lag.above(1.0) == 2  # 1.0 itself is in the bucket up to 1 s
    assert lag.above(0.5) == 4
    assert lag.above(math.inf) == 0
    with pytest.raises(ValueError):
        lag.above(0.75)  # not a bucket bound: not known exactly


async def test_ticks_missed_before_probing_began_start_at_their_next_phase_not_all_at_once() -> None:
    # Endpoints added while a long start-up held the loop (here 6 s of a 10 s interval): the
    # ticks that fell in it are not all started at once, late, when probing begins.
    probes = FakeProbes()
    scheduler = make_scheduler(probes)
    start = asyncio.get_running_loop().time()
    names = [f"e{i}" for i in range(200)]
    scheduler.set_endpoints(OWNER, [endpoint(name) for name in names], CONTEXT)
    phase = {name: (scheduler._phase(OWNER, name) * 10 - start) % 10 for name in names}
    await asyncio.sleep(6)
    async with running(scheduler):
        await asyncio.sleep(9.999)
    began = start + 6
    first = {name: at - start for name, at, _ in probes.starts}
    assert sorted(first) == sorted(names)  # every endpoint once in the interval after the start
    for name in names:
        if phase[name] < 6 - LATE_START_GRACE:  # fell due in the start-up: its next tick
            assert math.isclose(first[name], phase[name] + 10, abs_tol=1e-3), name
        elif phase[name] >= 6:  # not due yet: its own tick
            assert math.isclose(first[name], phase[name], abs_tol=1e-3), name
    assert all(at >= began for _, at, _ in probes.starts)
    assert scheduler.lag.quantile(1.0) <= LATE_START_GRACE
