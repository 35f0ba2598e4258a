"""The runtime: probe results → health → incidents → accounting → status, through one Store.

The Engine is put together from three parts, each in a module of its own:

- ``registry``: the objects held (agreements, windows, incidents), which ones this shard owns;
- ``rounds``: what is evaluated when, within a budget of CPU;
- ``write_path``: what is written, within the write budget, through the fenced Store.

Whether this process may write at all is decided in one place, ``store/fence.py``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime
from typing import Any

from sla_operator.domain.location_reports import Heartbeat, LocationReport
from sla_operator.domain.model import Incident, MaintenanceWindow
from sla_operator.domain.support import SupportRequest
from sla_operator.domain.views import Snapshot
from sla_operator.engine.collector import PacedCollector
from sla_operator.engine.registry import Registry
from sla_operator.engine.reports import Reports
from sla_operator.engine.rounds import ROUTINE_WRITES_AT_ONCE, WRITES_AT_ONCE, Rounds
from sla_operator.engine.runtime import AgreementRuntime
from sla_operator.engine.settings import EngineSettings
from sla_operator.engine.snapshot import build_snapshot
from sla_operator.engine.windows import Windows
from sla_operator.engine.write_path import WritePath
from sla_operator.engine.writes import WriteBudget
from sla_operator.probes.base import utc_now
from sla_operator.probes.contexts import ProbeContexts
from sla_operator.probes.scheduler import ProbeScheduler
from sla_operator.store.base import Key, Store
from sla_operator.store.fence import WriteSwitch

__all__ = ["ROUTINE_WRITES_AT_ONCE", "SNAPSHOT_CPU_SHARE", "WRITES_AT_ONCE", "Engine",
           "EngineSettings"]

log = logging.getLogger("sla_operator.engine")
SHUTDOWN_WRITE_SECONDS = 10.0
SHUTDOWN_WRITES_AT_ONCE = 32
# The snapshot behind /metrics and the status page is made again after every round while that
# is cheap. Where every agreement had a probe since the last round, the largest fleets make
# it costly (100,000 endpoints: 40-80 ms of CPU): it is then made no more often than its own
# cost allows within this share of the time (every 2-3 s there), and rounds in between only
# evaluate and write.
SNAPSHOT_CPU_SHARE = 0.025
# After an agreement arrives, the round waits this long for others of the same burst.
WAKE_GATHER_SECONDS = 0.05
# Between rounds when the last one left evaluations due (see EngineSettings.round_seconds).
LEFT_OVER_PAUSE_SECONDS = 0.05


class Engine(Registry, Rounds, WritePath, Reports):
    """Coordinates the parts: the registry of objects (engine/registry.py), the evaluation
    rounds (engine/rounds.py) and the write path (engine/write_path.py), all behind the one
    write switch (store/fence.py); publishes the snapshot every output reads, and runs the
    loop."""

    def __init__(self, store: Store, settings: EngineSettings | None = None,
                 clock: Callable[[], datetime] = utc_now,
                 scheduler: ProbeScheduler | None = None,
                 switch: WriteSwitch | None = None) -> None:
        self.store = store
        self.switch = switch or WriteSwitch()
        """Active: probe, evaluate and write. Standby (not the Lease holder): keep the
        watched objects in memory, and nothing else."""
        self.settings = settings or EngineSettings()
        self.clock = clock
        rate = self.settings.max_status_writes_per_second
        self.writes = WriteBudget(rate, burst=rate * max(1.0, self.settings.evaluate_interval))
        """What the status writes may spend: shared by agreements, windows and incidents."""
        self.scheduler = scheduler or ProbeScheduler(
            self.on_probe_result, concurrency=self.settings.probe_concurrency)
        self.agreements: dict[Key, AgreementRuntime] = {}
        self.maintenance: dict[Key, MaintenanceWindow] = {}
        self._windows = Windows()  # the same windows, by namespace, with their occurrences
        self.incidents: dict[Key, Incident] = {}
        self._incidents_by_agreement: dict[Key, dict[str, Incident]] = {}
        self._maintenance_status: dict[Key, dict[str, Any]] = {}
        self._maintenance_rejections: dict[Key, str] = {}
        self._incident_status: dict[Key, dict[str, Any]] = {}
        self._probe_contexts = ProbeContexts(
            store, self.settings.policy, self.settings.namespace_rules,
            self.settings.location, clock)
        self.last_round = clock()
        self._probe_task: asyncio.Task[None] | None = None
        self.snapshot: Snapshot = Snapshot(taken_at=clock())
        """What every output reads (metrics, status page): replaced, never changed, per round."""
        self.foreign: dict[Key, AgreementRuntime] = {}
        """Other shards' agreements: never probed, evaluated nor written here; the status
        page shows them as their statuses do (see ``mirrored_view``)."""
        self.foreign_incidents: dict[Key, Incident] = {}
        self.heartbeats: dict[str, Heartbeat] = {}
        """Other locations' Leases as last read (run --location): whether their reports hold."""
        self.held_locations: set[str] = set()  # those whose Lease was held at the last read
        self.location_reports: dict[tuple[str, str, str], LocationReport] = {}
        """Other locations' reports by (namespace, agreement, location), as last watched."""
        self.support_requests: dict[Key, SupportRequest] = {}  # records, like incidents
        self._requests_by_agreement: dict[Key, dict[str, SupportRequest]] = {}
        self._support_status: dict[Key, dict[str, Any]] = {}
        self._changes = 0  # counts what a standby's snapshot shows: statuses, records, windows
        self._published: tuple[bool, int] | None = None  # (active, changes) last published
        self._snapshot_cpu = 0.0  # what the last snapshot took to make (CPU seconds)
        self._published_at = 0.0  # time.monotonic() of the last one
        # Set when an agreement arrives or its spec changes: the next round starts then, not
        # at the end of the evaluation interval, so a new agreement's first status is not
        # held back by the interval.
        self._wake = asyncio.Event()
        self._left_over = False  # the last round left evaluations due: the next one soon
        self._round_cpu = 0.0  # CPU the last round's limited evaluations took

    @property
    def active(self) -> bool:
        return self.switch.active

    def _publish_due(self) -> bool:
        """Whether the round's end publishes a snapshot: once per evaluation interval when
        rounds follow each other quickly, and no more than SNAPSHOT_CPU_SHARE of the time
        where a snapshot is costly (the largest fleets)."""
        since = (self.clock() - self.snapshot.taken_at).total_seconds()
        if self._left_over and since < self.settings.evaluate_interval:
            return False
        spacing = self._snapshot_cpu / SNAPSHOT_CPU_SHARE
        return (spacing <= self.settings.evaluate_interval
                or time.monotonic() - self._published_at >= spacing)

    def publish(self) -> None:
        """Replace the snapshot: the outputs see each round whole, never half-way through.

        On a standby the agreements show the figures their statuses hold (the holder's)."""
        started = time.thread_time()
        self.snapshot = build_snapshot(self.agreements.values(),
                                       [*self.incidents.values(), *self.foreign_incidents.values()],
                                       self.maintenance.values(), self.scheduler.lag,
                                       self.clock(), self.snapshot, mirror=not self.active,
                                       foreign=self.foreign.values(),
                                       requests=self.support_requests.values())
        if self.settings.location is not None:
            self.snapshot = replace(self.snapshot, locations=self.location_standings())
        self._published = (self.active, self._changes)
        self._snapshot_cpu = time.thread_time() - started
        self._published_at = time.monotonic()

    # ------------------------------------------------------------ running

    def health_problems(self, stale_after: float) -> list[str]:
        """Why the engine no longer does its work (for /healthz); empty while it does."""
        problems = []
        age = (self.clock() - self.last_round).total_seconds()
        if age > stale_after:
            problems.append(f"evaluation stalled for {age:.0f}s")
        task = self._probe_task
        if task is not None and task.done():
            error = None if task.cancelled() else task.exception()
            problems.append("probe scheduler stopped" + (f": {error!r}" if error else ""))
        return problems

    async def run(self) -> None:
        """Probe and evaluate until cancelled; while on standby, only wait."""
        collector = PacedCollector() if self.settings.pace_collector else None
        try:
            while True:
                self._wake.clear()  # what arrives from here on is seen by this round or wakes the next
                if self.active:
                    if collector is not None:
                        # Before the first probe: the full collection it starts with (about
                        # a second at 100,000 endpoints) then delays no probe.
                        collector.start()
                    self._start_probing()
                    try:
                        await self.evaluate_round()
                    except Exception:  # a bug in one round must not stop monitoring
                        log.exception("evaluation round failed")
                else:
                    await self._stop_probing()
                    self.last_round = self.clock()  # waiting is what a standby is for
                    if self._published != (False, self._changes):
                        self.publish()  # the statuses the holder wrote, as they come in
                if collector is not None:
                    collector.after_round()
                await self._pause()
        finally:
            await self._stop_probing()
            if self.active:
                await self._last_words()
            for context in self._probe_contexts.contexts.values():
                await context.aclose()
            if collector is not None:
                collector.stop()

    async def _pause(self) -> None:
        """Until the next round: the evaluation interval, or less when an agreement arrives
        or changes (then a moment more, so that a burst of them makes one round)."""
        pause = self.settings.evaluate_interval
        if self._left_over:
            # As long as the evaluations it spent: a backlog (a thousand first statuses
            # coming due together at the end of the first interval) takes at most about half
            # the loop, and probes keep their schedule meanwhile.
            pause = min(pause, max(LEFT_OVER_PAUSE_SECONDS, self._round_cpu))
        try:
            await asyncio.wait_for(self._wake.wait(), pause)
        except TimeoutError:
            return
        await asyncio.sleep(min(WAKE_GATHER_SECONDS, self.settings.evaluate_interval))

    def _start_probing(self) -> None:
        if self._probe_task is None:
            self._probe_task = asyncio.create_task(self.scheduler.run(), name="probe-scheduler")

    async def _stop_probing(self) -> None:
        probes, self._probe_task = self._probe_task, None
        if probes is not None:
            probes.cancel()
            await asyncio.gather(probes, return_exceptions=True)

    async def _last_words(self) -> None:
        """Write every status once more on the way out, so lastEvaluated marks the real stop.

        Otherwise the time since the last routine write (up to status_interval) would count
        as unmonitored after the restart, even though the probes were watching."""
        try:
            # Concurrently, bounded: one after another, a thousand agreements would not all be
            # written within the cap, and those left out would count their last seconds as
            # unmonitored.
            await asyncio.wait_for(self.evaluate_round(force=True, concurrency=SHUTDOWN_WRITES_AT_ONCE),
                                   timeout=SHUTDOWN_WRITE_SECONDS)
        except (TimeoutError, asyncio.CancelledError):
            log.warning("final status writes did not finish within %ss", SHUTDOWN_WRITE_SECONDS)
