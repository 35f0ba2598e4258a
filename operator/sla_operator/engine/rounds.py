"""The engine's evaluation rounds: what is due, in which order, within which budget of CPU.

Each round evaluates the agreements whose endpoints changed state, then first statuses, then
those due for their status interval, and hands each evaluation to the write path
(engine/write_path.py), which decides what goes out.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Coroutine, Sequence
from datetime import datetime, timedelta
from typing import Any

from sla_operator.domain.records import format_time
from sla_operator.engine.evaluate import Evaluation, evaluate_agreement
from sla_operator.engine.runtime import AgreementRuntime
from sla_operator.engine.settings import EngineSettings
from sla_operator.engine.windows import Windows
from sla_operator.engine.writes import WriteBudget
from sla_operator.store.base import Kind, Store, StoreError
from sla_operator.store.fence import Fenced

log = logging.getLogger("sla_operator.engine")
# Agreements evaluated and written at once in a round. One after another, the round trip of
# each write (milliseconds idle, a few hundred on a loaded API server) would bound the writes
# of a round: at 0.1 s, a thousand agreements would take 100 s to get their first status.
WRITES_AT_ONCE = 8
# Routine refreshes take at most this many of them. On an API server that is already busy
# each request in flight makes the others wait longer: with fewer refreshes under way, a new
# agreement's first status, a state change and other clients' requests (kubectl's) are not
# queued behind a full set of them. First statuses and state changes still use all of them.
ROUTINE_WRITES_AT_ONCE = 4


class Rounds:
    """Evaluation rounds; part of Engine (see engine/__init__.py)."""

    settings: EngineSettings
    store: Store
    clock: Any
    writes: WriteBudget
    agreements: dict[Any, AgreementRuntime]
    last_round: datetime
    _windows: Windows
    _wake: asyncio.Event
    _left_over: bool
    _round_cpu: float

    async def evaluate_round(self, force: bool = False, concurrency: int = WRITES_AT_ONCE) -> None:
        """Evaluate what is due and write what changed, within the write budget, in order:

        1. agreements whose endpoints changed state: all evaluated, their state changes
           written at once (held back as pending when the budget is spent);
        2. state changes held back earlier;
        3. agreements never evaluated, as many as the budget can give a first status;
        4. agreements not evaluated for a status interval (time alone can open an incident or
           start maintenance), stalest first;
        5. routine refreshes, most overdue first, as far as the budget goes.

        Steps 3 and 4 stop after ``round_seconds`` of CPU; what is left waits for the next
        round, which then starts at once: a thousand agreements at start-up never hold the
        loop, a new agreement or the writes for the length of their evaluations.
        ``force`` (shutdown): evaluate and write everything, the cap and the time aside.
        ``concurrency`` agreements are evaluated and written at once; the budget's tokens are
        taken in order, so state changes still go first."""
        self._wake.clear()  # what arrives from here on ends the round's refreshes early
        now = self.clock()
        # CPU time of the evaluations, not wall time: a slow API server makes writes wait,
        # and waiting is not what the limit is for.
        spent = 0.0  # CPU of the limited evaluations themselves (probes run in between)
        self._left_over = False
        # Windows first: once an agreement's status says a window has ended, so does the
        # window's own status (both follow from the same instant).
        await self._write_maintenance_status(now, force)
        await self._write_unmeasured_requests(now, force)
        pending: list[tuple[AgreementRuntime, Evaluation | None]] = []
        routine: list[tuple[AgreementRuntime, Evaluation | None]] = []
        changed: list[AgreementRuntime] = []
        first: list[AgreementRuntime] = []
        due: list[AgreementRuntime] = []
        for runtime in list(self.agreements.values()):
            if not force and runtime.retry_at is not None and now < runtime.retry_at:
                continue
            if force:
                changed.append(runtime)
            elif self._must_evaluate(runtime, now):
                if runtime.last_evaluated is None:
                    if not runtime.warming(now):
                        first.append(runtime)
                elif runtime.dirty:
                    changed.append(runtime)
                else:
                    due.append(runtime)
            elif runtime.write_pending:
                pending.append((runtime, None))
            elif self._refresh_due(runtime, now):
                routine.append((runtime, None))
        due.sort(key=lambda r: r.last_evaluated or now)
        if force:
            # On the way out the cap on time may leave some unwritten: the stalest go first,
            # so what is left unwritten is what was written last (the shortest gaps).
            changed.sort(key=lambda r: r.last_written_at or datetime.min.replace(tzinfo=now.tzinfo))
        slots = asyncio.Semaphore(max(1, concurrency))
        started = 0

        async def evaluate(runtime: AgreementRuntime, limited: bool, first_status: bool) -> None:
            nonlocal started, spent
            async with slots:
                if limited and first_status and not self.writes.can_write(self.clock()):
                    self._left_over = True
                    self._held_back(runtime)  # its first status waits for the cap
                    return
                if limited and spent > self.settings.round_seconds and started >= concurrency:
                    self._left_over = True
                    return  # still due: the next round takes it, soon
                started += 1
                before = time.thread_time()
                result = await self._evaluate_safely(runtime, now, force)
                if limited:
                    spent += time.thread_time() - before
                if result is not None and await self._write_out(runtime, result, now, force,
                                                                urgent_only=True):
                    routine.append((runtime, result))

        await self._each(concurrency, [evaluate(r, False, False) for r in changed])
        await self._write_queue(pending, now, concurrency)  # held back earlier: before new ones
        await self._each(concurrency, [evaluate(r, not force, True) for r in first])
        await self._each(concurrency, [evaluate(r, not force, False) for r in due])
        self._round_cpu = spent
        routine.sort(key=lambda item: item[0].refresh_at or now)
        await self._write_queue(routine, now,
                                concurrency if force else min(concurrency, ROUTINE_WRITES_AT_ONCE))
        if self._publish_due():
            self.publish()
        # /healthz: the loop turns and evaluation works for at least one agreement (or there
        # is none); when every agreement fails to evaluate, a restart is worth trying.
        if not self.agreements or not all(r.evaluation_failed for r in self.agreements.values()):
            self.last_round = self.clock()

    @staticmethod
    async def _each(concurrency: int, evaluations: list[Coroutine[Any, Any, None]]) -> None:
        if concurrency > 1:
            await asyncio.gather(*evaluations)
        else:
            for evaluation in evaluations:
                await evaluation

    def _must_evaluate(self, runtime: AgreementRuntime, now: datetime) -> bool:
        return (runtime.last_evaluated is None or runtime.dirty
                or (now - runtime.last_evaluated).total_seconds() >= self.settings.status_interval)

    @staticmethod
    def _refresh_due(runtime: AgreementRuntime, now: datetime) -> bool:
        return runtime.refresh_at is not None and now >= runtime.refresh_at

    async def _write_queue(self, queue: Sequence[tuple[AgreementRuntime, Evaluation | None]],
                           now: datetime, concurrency: int) -> None:
        """Writes left for after the round's state changes, in order, while the budget lasts
        (``concurrency`` at once); an agreement is evaluated again only when its write can go
        out. The rest wait for the next round, each counted once as deferred.

        None is started after ``write_seconds``, or once an agreement arrived or changed
        (its first status should not wait behind refreshes): when the API server answers slowly, the
        writes due can outnumber what it takes in a second, and a round that waited for all
        of them would keep new agreements and state changes waiting as long (half a minute
        was seen). The rest go in the next round, which then starts at once."""
        slots = asyncio.Semaphore(max(1, concurrency))
        spent = False
        deadline = time.monotonic() + self.settings.write_seconds

        async def write(runtime: AgreementRuntime, result: Evaluation | None) -> None:
            nonlocal spent
            async with slots:  # taken in queue order
                if time.monotonic() > deadline or self._wake.is_set():
                    # Out of time, or an agreement arrived or changed: it goes first, in
                    # the next round, which starts at once.
                    self._left_over = True
                    return
                if spent or not self.writes.can_write(self.clock()):
                    spent = True
                    self._held_back(runtime)
                    return
                if not self.holds(runtime):
                    return
                if result is None:
                    result = await self._evaluate_safely(runtime, now)
                    if result is None:
                        return
                await self._write_out(runtime, result, now, force=False, urgent_only=False)

        await asyncio.gather(*(write(runtime, result) for runtime, result in queue))

    async def _evaluate_safely(self, runtime: AgreementRuntime, now: datetime,
                               force: bool = False) -> Evaluation | None:
        """The evaluation, or None: gone meanwhile, or failed (logged, retried later)."""
        if not self.holds(runtime):
            return None
        try:
            result = await self._evaluate(runtime, now, force)
            runtime.evaluation_failed = False
            return result
        except Exception:  # one agreement's bad data must not stop the others
            log.exception("agreement %s/%s: evaluation failed; retrying in %.0fs",
                          *runtime.agreement.key, self.settings.status_interval)
            runtime.retry_at = now + timedelta(seconds=self.settings.status_interval)
            runtime.evaluation_failed = True
            return None

    async def _evaluate(self, runtime: AgreementRuntime, now: datetime,
                        force: bool = False) -> Evaluation | None:
        """Decide and record incidents (never held back by the write budget); the status to
        write is the caller's. None: the agreement went away meanwhile."""
        agreement = runtime.agreement
        result: Evaluation = evaluate_agreement(
            runtime, self.incidents_of(agreement), self.windows_of(agreement), now,
            self._windows.intervals, requests=self.support_requests_of(agreement))
        runtime.store_error = None
        if runtime.restore_problems:
            problems, runtime.restore_problems = runtime.restore_problems, None
            await self.store.record_event(
                Kind.AGREEMENT, agreement.key, "StatusRecomputed",
                f"status read back with errors, the bad entries recomputed: {problems}", warning=True)
        after = timedelta(seconds=self.settings.disagreement_after)
        for endpoint, location, since in runtime.disagreements.news(now, after):
            await self.store.record_event(
                Kind.AGREEMENT, agreement.key, "LocationDisagrees",
                f"location {location} has seen endpoint {endpoint} otherwise than the quorum "
                f"since {format_time(since)} (now {runtime.healths[endpoint].state.value}); "
                "not counted: check that location's network", warning=True)
        for action in result.actions:
            if not self.holds(runtime):
                return None  # deleted meanwhile: nothing more is written for it
            if self.writes.paused(now):
                # Decided again, and recorded, once the API server takes writes again.
                runtime.store_error = "the API server asked to wait before the next write"
                break
            try:
                await self._apply(action, agreement, now)
            except Fenced as fenced:
                runtime.store_error = str(fenced)  # decided again by whoever holds the Lease
                break
            except StoreError as error:
                if error.gone:
                    self._gone(runtime)
                    return None
                if not self._throttled(error, now):
                    # Status still goes out (the figures stand); the incident is retried soon.
                    log.warning("agreement %s/%s: %s (retrying next round)", agreement.namespace,
                                agreement.name, error)
                runtime.store_error = str(error)
        if result.actions:
            # Incident changes alter the figures: evaluate again with them in place.
            result = evaluate_agreement(runtime, self.incidents_of(agreement),
                                        self.windows_of(agreement), now, self._windows.intervals,
                                        requests=self.support_requests_of(agreement))
        self._schedule_retry(runtime, now)
        return result if self.holds(runtime) else None

    def _schedule_retry(self, runtime: AgreementRuntime, now: datetime) -> None:
        """A failed incident write is retried soon, backing off to once per status interval;
        not before the end of a pause the API server asked for."""
        if runtime.store_error is None:
            runtime.dirty, runtime.write_failures, runtime.retry_at = False, 0, None
            return
        runtime.write_failures += 1
        pause = min(self.settings.status_interval, 2.0 ** (runtime.write_failures - 1))
        retry_at = now + timedelta(seconds=pause)
        if self.writes.paused_until is not None and self.writes.paused_until > retry_at:
            retry_at = self.writes.paused_until
        runtime.dirty, runtime.retry_at = True, retry_at
