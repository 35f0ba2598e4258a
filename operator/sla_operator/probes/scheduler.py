"""The probe scheduler: one timer heap for every endpoint, a global concurrency bound.

Each endpoint has a phase inside its interval taken from a hash of its owner and name, so
start times spread evenly across the interval and stay where they were after a restart.
The loop sleeps until the earliest due endpoint, starts every endpoint that is due (each as a
short-lived task, at most ``concurrency`` at once) and puts it back on the heap for its next
tick. An endpoint whose previous probe is still running is skipped for that tick.
"""

from __future__ import annotations

import asyncio
import hashlib
import heapq
import itertools
import logging
import math
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

from sla_operator.domain.model import Endpoint, ProbeResult
from sla_operator.probes.base import ProbeContext
from sla_operator.probes.run import run_probe

logger = logging.getLogger(__name__)

Owner = tuple[str, str]
ResultCallback = Callable[[Owner, Endpoint, ProbeResult], None]
ProbeRunner = Callable[[Endpoint, ProbeContext], Awaitable[ProbeResult]]

# How late a tick may already be when probing begins and still run at once (see _resume).
# At 100,000 endpoints, one second's ticks are 1,667 probes, about a second of CPU: started
# together, they made the first second of probing up to a second late.
LATE_START_GRACE = 0.1
DEFAULT_LAG_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, math.inf)


@dataclass
class LagHistogram:
    """How late probes started against their schedule (sla_operator_probe_lag_seconds)."""

    buckets: tuple[float, ...] = DEFAULT_LAG_BUCKETS
    """Upper bounds in seconds, ascending, the last one +Inf."""
    sum: float = 0.0
    count: int = 0
    max: float = 0.0
    """The latest start seen so far (not exported: a histogram has no maximum)."""
    _per_bucket: list[int] = field(default_factory=list, repr=False)

    def __post_init__(self) -> None:
        if not self.buckets or self.buckets[-1] != math.inf:
            self.buckets = (*self.buckets, math.inf)
        self._per_bucket = [0] * len(self.buckets)

    def observe(self, seconds: float) -> None:
        lag = max(seconds, 0.0)
        for index, upper in enumerate(self.buckets):
            if lag <= upper:
                self._per_bucket[index] += 1
                break
        self.sum += lag
        self.count += 1
        if lag > self.max:
            self.max = lag

    def quantile(self, fraction: float) -> float:
        """Estimated from the buckets as Prometheus' histogram_quantile does, but never above
        the largest lag seen (0 when empty)."""
        rank, below, lower = fraction * self.count, 0, 0.0
        for upper, count in zip(self.buckets, self.cumulative_counts, strict=True):
            if count >= rank and count > 0:
                if math.isinf(upper):
                    return min(lower, self.max)
                return min(lower + (upper - lower) * (rank - below) / ((count - below) or 1), self.max)
            below, lower = count, upper
        return 0.0

    def above(self, bound: float) -> int:
        """Observations above ``bound``, one of the buckets' upper bounds: exact, unlike a
        quantile read from the buckets."""
        return self.count - self.cumulative_counts[self.buckets.index(bound)]

    @property
    def cumulative_counts(self) -> tuple[int, ...]:
        """Observations at or below each bucket's upper bound, as Prometheus exposes them."""
        return tuple(itertools.accumulate(self._per_bucket))


@dataclass(eq=False)
class _Scheduled:
    owner: Owner
    endpoint: Endpoint
    context: ProbeContext
    due: float
    running: bool = False
    removed: bool = False


class ProbeScheduler:
    """Runs every endpoint's probe at its interval and hands results to ``on_result``."""

    def __init__(
        self,
        on_result: ResultCallback,
        *,
        run: ProbeRunner = run_probe,
        concurrency: int = 256,
        monotonic: Callable[[], float] = time.monotonic,
        seed: int | None = None,
    ) -> None:
        if concurrency < 1:
            raise ValueError(f"concurrency must be at least 1, got {concurrency}")
        self._on_result = on_result
        self._run = run
        self._concurrency = concurrency
        self._monotonic = monotonic
        self._salt = b"" if seed is None else str(seed).encode()
        self._scheduled: dict[tuple[Owner, str], _Scheduled] = {}
        self._names_by_owner: dict[Owner, set[str]] = {}
        self._heap: list[tuple[float, int, _Scheduled]] = []
        self._sequence = itertools.count()
        self._wakeup = asyncio.Event()
        self._tasks: set[asyncio.Task[None]] = set()
        self._lag = LagHistogram()
        self.started = 0
        """Probes started."""
        self.failed = 0
        """Probes whose result was a failure."""
        self.skipped = 0
        """Ticks skipped because the endpoint's previous probe was still running."""
        self.errors = 0
        """Probe runs or result callbacks that raised."""

    @property
    def lag(self) -> LagHistogram:
        return self._lag

    @property
    def endpoint_count(self) -> int:
        return len(self._scheduled)

    # ------------------------------------------------------------ the set of endpoints

    def set_endpoints(self, owner: Owner, endpoints: Sequence[Endpoint], context: ProbeContext) -> None:
        """Replace ``owner``'s endpoints; unchanged ones keep their schedule."""
        now = self._monotonic()
        names = {endpoint.name for endpoint in endpoints}
        for name in self._names_by_owner.get(owner, set()) - names:
            self._scheduled.pop((owner, name)).removed = True
        for endpoint in endpoints:
            scheduled = self._scheduled.get((owner, endpoint.name))
            if scheduled is None:
                due = self._first_due(owner, endpoint, now)
                scheduled = _Scheduled(owner, endpoint, context, due)
                self._scheduled[(owner, endpoint.name)] = scheduled
                self._push(scheduled)
                continue
            interval_changed = scheduled.endpoint.interval != endpoint.interval
            scheduled.endpoint, scheduled.context = endpoint, context
            if interval_changed:
                scheduled.due = min(scheduled.due, self._first_due(owner, endpoint, now))
                self._push(scheduled)
        if names:
            self._names_by_owner[owner] = names
        else:
            self._names_by_owner.pop(owner, None)
        self._wakeup.set()

    def remove(self, owner: Owner) -> None:
        """Stop probing every endpoint of ``owner``; results of probes in flight are dropped."""
        for name in self._names_by_owner.pop(owner, set()):
            self._scheduled.pop((owner, name)).removed = True

    def _phase(self, owner: Owner, name: str) -> float:
        """A fraction in [0, 1) fixed by the owner and endpoint name."""
        key = "\0".join((*owner, name)).encode()
        digest = hashlib.blake2b(key, digest_size=8, key=self._salt[:64]).digest()
        return int.from_bytes(digest, "big") / 2**64

    def _first_due(self, owner: Owner, endpoint: Endpoint, now: float) -> float:
        interval = endpoint.interval.total_seconds()
        offset = self._phase(owner, endpoint.name) * interval
        return now + (offset - now) % interval

    def _push(self, scheduled: _Scheduled) -> None:
        heapq.heappush(self._heap, (scheduled.due, next(self._sequence), scheduled))

    # ------------------------------------------------------------ the loop

    async def run(self) -> None:
        """Probe until cancelled; cancelling stops every probe in flight and returns cleanly."""
        semaphore = asyncio.Semaphore(self._concurrency)
        began = self._monotonic()
        self._resume(began)
        try:
            while True:
                await self._sleep_until_due()
                await self._start_due(semaphore)
        finally:
            await self._stop()
            self._log_summary(self._monotonic() - began)

    def _resume(self, now: float) -> None:
        """Ticks that fell due more than LATE_START_GRACE before probing began (while a
        thousand agreements were read in, or while this replica stood by) are not all made
        up at once: each such endpoint starts at its phase's next tick, as if added now.
        At 100,000 endpoints, 20 s of start-up left a third of them due at the first tick
        and every probe late by seconds for the half-minute it took to catch up."""
        for scheduled in self._scheduled.values():
            if scheduled.due < now - LATE_START_GRACE:
                scheduled.due = self._first_due(scheduled.owner, scheduled.endpoint, now)
                self._push(scheduled)

    def _log_summary(self, seconds: float) -> None:
        """One line on the way out: how much was probed and how late (read by `make bench`)."""
        lag = self._lag
        logger.info("probe scheduler stopped after %.1fs: %d probes started, %d failed, %d ticks "
                    "skipped (previous probe still running), %d errors, %d endpoints; schedule "
                    "lag p50 %.4fs, p99 %.4fs, mean %.4fs, max %.4fs; %d started more than 1s "
                    "late", seconds, self.started,
                    self.failed, self.skipped, self.errors, len(self._scheduled),
                    lag.quantile(0.5), lag.quantile(0.99),
                    lag.sum / lag.count if lag.count else 0.0, lag.max,
                    lag.above(1.0) if 1.0 in lag.buckets else 0)

    async def _sleep_until_due(self) -> None:
        while True:
            self._wakeup.clear()
            if not self._heap:
                await self._wakeup.wait()
                continue
            delay = self._heap[0][0] - self._monotonic()
            if delay <= 0:
                return
            try:
                async with asyncio.timeout(delay):
                    await self._wakeup.wait()
            except TimeoutError:
                continue

    async def _start_due(self, semaphore: asyncio.Semaphore) -> None:
        while self._heap and self._heap[0][0] <= self._monotonic():
            due, _sequence, scheduled = heapq.heappop(self._heap)
            if scheduled.removed or scheduled.due != due:
                continue  # a stale heap entry: removed, or rescheduled to another time
            self._reschedule(scheduled)
            if scheduled.running:
                self.skipped += 1
                continue
            await semaphore.acquire()
            if scheduled.removed:
                semaphore.release()
                continue
            self._lag.observe(self._monotonic() - due)
            self.started += 1
            scheduled.running = True
            task = asyncio.create_task(
                self._probe(scheduled, scheduled.endpoint, scheduled.context, semaphore)
            )
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    def _reschedule(self, scheduled: _Scheduled) -> None:
        """The next tick after this one; ticks already missed are not made up."""
        interval = scheduled.endpoint.interval.total_seconds()
        now = self._monotonic()
        due = scheduled.due + interval
        if due <= now:
            due += math.ceil((now - due) / interval) * interval
        scheduled.due = due
        self._push(scheduled)

    async def _probe(
        self,
        scheduled: _Scheduled,
        endpoint: Endpoint,
        context: ProbeContext,
        semaphore: asyncio.Semaphore,
    ) -> None:
        try:
            result = await self._run(endpoint, context)
            if not result.ok:
                self.failed += 1
            if not scheduled.removed:
                self._on_result(scheduled.owner, endpoint, result)
        except Exception:
            self.errors += 1
            logger.exception("probing %s/%s endpoint %s failed", *scheduled.owner, endpoint.name)
        finally:
            scheduled.running = False
            semaphore.release()

    async def _stop(self) -> None:
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        contexts = {id(s.context): s.context for s in self._scheduled.values()}
        for context in contexts.values():
            await context.aclose()
