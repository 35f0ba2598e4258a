"""The runtime: probe results → health → incidents → accounting → status, through one Store."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sla_operator.domain.errors import SecretRefused
from sla_operator.domain.incidents import Change, Open
from sla_operator.domain.model import Agreement, Endpoint, Incident, MaintenanceWindow, ProbeResult
from sla_operator.domain.saved import describe
from sla_operator.domain.shards import Sharding
from sla_operator.domain.views import Snapshot
from sla_operator.engine.collector import PacedCollector
from sla_operator.engine.evaluate import Evaluation, evaluate_agreement, maintenance_status
from sla_operator.engine.restore import restore_status
from sla_operator.engine.runtime import AgreementRuntime
from sla_operator.engine.snapshot import build_snapshot
from sla_operator.engine.windows import Windows
from sla_operator.engine.writes import WHOLE_STATUS_EVERY, WriteBudget, refresh_slot, status_patch
from sla_operator.probes.base import ProbeContext, utc_now
from sla_operator.probes.policy import AddressPolicy, NamespaceRule, policy_for
from sla_operator.probes.scheduler import ProbeScheduler
from sla_operator.store.base import Key, Kind, Store, StoreError, WriteSwitch

log = logging.getLogger("sla_operator.engine")
SHUTDOWN_WRITE_SECONDS = 10.0
SHUTDOWN_WRITES_AT_ONCE = 32
# Agreements evaluated and written at once in a round. One after another, the round trip of
# each write (milliseconds idle, a few hundred on a loaded API server) would bound the writes
# of a round: at 0.1 s, a thousand agreements would take 100 s to get their first status.
WRITES_AT_ONCE = 8
# Routine refreshes take at most this many of them. On an API server that is already busy
# each request in flight makes the others wait longer: with fewer refreshes under way, a new
# agreement's first status, a state change and other clients' requests (kubectl's) are not
# queued behind a full set of them. First statuses and state changes still use all of them.
ROUTINE_WRITES_AT_ONCE = 4
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
SECRET_CACHE_SECONDS = 60.0


@dataclass(frozen=True)
class EngineSettings:
    """How often the engine evaluates and writes; every field has a CLI flag."""

    evaluate_interval: float = 1.0
    """Seconds between evaluation rounds (agreements whose endpoints changed state, or are due)."""
    status_interval: float = 30.0
    """One routine status write per object per this many seconds, each object at its own
    phase of it; state changes go out at once (within max_status_writes_per_second)."""
    probe_concurrency: int = 256
    """Probes allowed in flight at once across all agreements."""
    max_status_writes_per_second: float = 0.0
    """Cap on status writes (state changes first, then routine refreshes); 0: no cap.
    ``run`` sets DEFAULT_MAX_STATUS_WRITES_PER_SECOND unless told otherwise."""
    policy: AddressPolicy = field(default_factory=AddressPolicy)
    """Which addresses probes may connect to, checked after DNS resolution."""
    namespace_rules: tuple[NamespaceRule, ...] = ()
    """The administrators' probe policy: per namespace, ranges added to ``policy``."""
    pace_collector: bool = False
    """Run the garbage collector after rounds instead of by allocation counts (see
    engine/collector.py): the operator's process sets it; an engine inside another program
    (a test) leaves that program's collector alone."""
    sharding: Sharding = field(default_factory=Sharding)
    """This process's shard of the fleet; only its agreements are taken in (see ``Engine.owns``)."""
    write_seconds: float = 1.0
    """Wall time a round may spend starting held-back and routine writes (see _write_queue)."""
    round_seconds: float = 0.5
    """CPU time a round may spend on first evaluations and on agreements due for their status
    interval (those left go to the next round, which then starts at once); state changes are
    always evaluated."""


class Engine:
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
        self._contexts: dict[str, ProbeContext] = {}
        self._secrets: dict[tuple[str, str, str], tuple[str | SecretRefused, datetime]] = {}
        self.last_round = clock()
        self._probe_task: asyncio.Task[None] | None = None
        self.snapshot: Snapshot = Snapshot(taken_at=clock())
        """What every output reads (metrics, status page): replaced, never changed, per round."""
        self.foreign: dict[Key, AgreementRuntime] = {}
        """Other shards' agreements: never probed, evaluated nor written here; the status
        page shows them as their statuses do (see ``mirrored_view``)."""
        self.foreign_incidents: dict[Key, Incident] = {}
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

    # ------------------------------------------------------------ registry

    def owns(self, kind: Kind, key: Key, agreement: str | None = None) -> bool:
        """Whether this shard handles the object: the one place that decides it.

        An agreement by its own namespace/name; an incident by its agreement's (``agreement``,
        so it follows the agreement); a window is kept by every shard (it selects agreements
        of several), but only the shard of its own namespace/name writes its status."""
        namespace, name = key
        if kind is Kind.INCIDENT:
            name = agreement if agreement is not None else name
        return self.settings.sharding.owns(namespace, name)

    def upsert_agreement(self, agreement: Agreement,
                         status: Mapping[str, Any] | None = None) -> None:
        if not self.owns(Kind.AGREEMENT, agreement.key):
            self._upsert_foreign(agreement, status)  # never probed, evaluated nor written here
            return
        runtime = self.agreements.get(agreement.key)
        if runtime is not None and not _same_object(runtime.agreement.uid, agreement.uid):
            # Deleted and created again under the same name: a new agreement, started afresh.
            self.remove_agreement(agreement.key)
            runtime = None
        if runtime is None:
            runtime = self._fresh_runtime(agreement, status)
            log.info("agreement %s/%s: watching %d endpoint(s)", agreement.namespace,
                     agreement.name, len(agreement.endpoints))
        else:
            runtime.replace_agreement(agreement)
        runtime.rejection = None
        if status is not None:
            runtime.seen_status = status
        self._changes += 1
        self._wake.set()
        self.scheduler.set_endpoints(agreement.key, agreement.endpoints,
                                     self._context(agreement.namespace))

    def _upsert_foreign(self, agreement: Agreement, status: Mapping[str, Any] | None) -> None:
        runtime = self.foreign.get(agreement.key)
        if runtime is None or not _same_object(runtime.agreement.uid, agreement.uid):
            runtime = self.foreign[agreement.key] = AgreementRuntime(agreement, self.clock())
        runtime.agreement = agreement
        if status is not None:
            runtime.seen_status = status
        self._changes += 1

    def note_status(self, key: Key, uid: str | None, status: object) -> None:
        """The agreement's status as the watch delivered it: what a standby's outputs show.

        The Lease holder shows its own figures; a standby, which neither probes nor
        evaluates, shows what the holder wrote last."""
        runtime = self.agreements.get(key) or self.foreign.get(key)
        if runtime is not None and _same_object(runtime.agreement.uid, uid) \
                and runtime.seen_status is not status:
            runtime.seen_status = status
            self._changes += 1

    def _fresh_runtime(self, agreement: Agreement,
                       status: Mapping[str, Any] | None) -> AgreementRuntime:
        runtime = AgreementRuntime(agreement, started=self.clock(), seen_status=status)
        if isinstance(status, Mapping) and status:
            # What the object holds: the first write sends only what differs from it.
            runtime.last_written = dict(status)
        problems = restore_status(runtime, status, self.clock())
        if problems:
            runtime.restore_problems = describe(problems)
            log.warning("agreement %s/%s: status read back with errors: %s",
                        agreement.namespace, agreement.name, runtime.restore_problems)
        self.agreements[agreement.key] = runtime
        return runtime

    def take_over(self, agreements: Sequence[tuple[Agreement, Mapping[str, Any] | None]],
                  incidents: Sequence[Incident]) -> None:
        """Before a promoted standby probes: start every agreement again from the status the
        previous leader wrote last (history, gaps, Down streaks) and take the newest records.

        A standby restored each agreement when it first saw it, maybe hours ago; the time
        since the previous leader's last evaluation is unmonitored, never downtime, and an
        outage still failing continues as the same incident."""
        for incident in incidents:
            self.upsert_incident(incident)
        for agreement, status in agreements:
            if not self.owns(Kind.AGREEMENT, agreement.key):
                continue
            self.agreements.pop(agreement.key, None)
            self._fresh_runtime(agreement, status)
            self.scheduler.set_endpoints(agreement.key, agreement.endpoints,
                                         self._context(agreement.namespace))
        self._incident_status.clear()
        self._maintenance_status.clear()

    @property
    def active(self) -> bool:
        return self.switch.active

    def reject_agreement(self, key: Key, message: str) -> bool:
        """A new spec failed to parse: keep probing the last good one, but say it is not Ready.

        Returns whether a previous version is still running."""
        runtime = self.agreements.get(key)
        if runtime is not None:
            runtime.rejection = message
            runtime.dirty = True
        return runtime is not None

    def remove_agreement(self, key: Key, uid: str | None = None) -> None:
        """Stop probing and writing for an agreement; with ``uid``, only for that object
        (a late word about a deleted object must not stop its successor of the same name)."""
        foreign = self.foreign.get(key)
        if foreign is not None and _same_object(foreign.agreement.uid, uid):
            del self.foreign[key]
            self.publish()
        runtime = self.agreements.get(key)
        if runtime is None or not _same_object(runtime.agreement.uid, uid):
            return
        del self.agreements[key]
        self.scheduler.remove(key)
        log.info("agreement %s/%s: removed, probes stopped", *key)
        self.publish()

    def upsert_maintenance(self, window: MaintenanceWindow) -> None:
        self.maintenance[window.key] = window
        self._windows.put(window)
        self._maintenance_rejections.pop(window.key, None)
        self._touch(window.namespace)

    def reject_maintenance(self, key: Key, message: str) -> bool:
        """A new spec failed to parse: the last valid window stays in effect, marked not Ready.

        Returns whether a previous version is still in effect (its status then says why)."""
        if key not in self.maintenance:
            return False
        self._maintenance_rejections[key] = message
        return True

    def remove_maintenance(self, key: Key) -> None:
        self._maintenance_rejections.pop(key, None)
        if self.maintenance.pop(key, None) is not None:
            self._windows.drop(key)
            self._maintenance_status.pop(key, None)
            self._touch(key[0])
        self.publish()

    def upsert_incident(self, incident: Incident) -> None:
        if not self.owns(Kind.INCIDENT, incident.key, incident.agreement):
            if incident.key in self.incidents:  # a person pointed it at another shard's agreement
                self.remove_incident(incident.key)
            if self.foreign_incidents.get(incident.key) != incident:  # for the status page
                self.foreign_incidents[incident.key] = incident
                self._changes += 1
            return
        self.foreign_incidents.pop(incident.key, None)
        if self.incidents.get(incident.key) == incident:
            # Only its status moved, usually by our own write echoed back by the watch:
            # recomputing would write a newer duration, echoed again, once per round.
            return
        self._put_incident(incident)
        self._touch(incident.namespace, incident.agreement)

    def remove_incident(self, key: Key) -> None:
        # A deleted incident applied again is a new object with no status: it must get one.
        self.foreign_incidents.pop(key, None)
        self._incident_status.pop(key, None)
        incident = self._drop_incident(key)
        if incident is not None:
            self._touch(incident.namespace, incident.agreement)
        self.publish()

    def _put_incident(self, incident: Incident) -> None:
        previous = self._drop_incident(incident.key)
        if previous is not None and previous.agreement != incident.agreement:
            self._touch(previous.namespace, previous.agreement)
        self.incidents[incident.key] = incident
        owner = (incident.namespace, incident.agreement)
        self._incidents_by_agreement.setdefault(owner, {})[incident.name] = incident

    def _drop_incident(self, key: Key) -> Incident | None:
        incident = self.incidents.pop(key, None)
        if incident is not None:
            owned = self._incidents_by_agreement.get((incident.namespace, incident.agreement), {})
            owned.pop(incident.name, None)
        return incident

    def on_probe_result(self, owner: Key, endpoint: Endpoint, result: ProbeResult) -> None:
        runtime = self.agreements.get(owner)
        if runtime is not None and runtime.probes(endpoint):
            runtime.observe(endpoint, result)

    def _touch(self, namespace: str, agreement: str | None = None) -> None:
        """Recompute the agreements a maintenance window or incident may affect."""
        self._changes += 1
        if agreement is not None:
            affected = [r for r in [self.agreements.get((namespace, agreement))] if r is not None]
        else:
            affected = [r for (ns, _), r in self.agreements.items() if ns == namespace]
        for runtime in affected:
            runtime.dirty = True
            runtime.daily_key = ()

    def _context(self, namespace: str) -> ProbeContext:
        context = self._contexts.get(namespace)
        if context is None:
            async def resolve(name: str, key: str) -> str:
                return await self._secret(namespace, name, key)
            context = ProbeContext(policy=policy_for(self.settings.policy,
                                                     self.settings.namespace_rules, namespace),
                                   resolve_secret=resolve)
            self._contexts[namespace] = context
        return context

    async def _secret(self, namespace: str, name: str, key: str) -> str:
        """A Secret value, read at most once a minute: probes must not hammer the API.

        A refusal (no such Secret or key, not labelled for probes, forbidden) is remembered
        as long, and says why in words that never include the value."""
        cached = self._secrets.get((namespace, name, key))
        now = self.clock()
        if cached is None or (now - cached[1]).total_seconds() >= SECRET_CACHE_SECONDS:
            try:
                cached = (await self.store.read_secret(namespace, name, key), now)
            except SecretRefused as refusal:
                cached = (refusal, now)
            self._secrets[(namespace, name, key)] = cached
        if isinstance(cached[0], SecretRefused):
            raise cached[0]
        return cached[0]

    # ------------------------------------------------------------ evaluation

    def incidents_of(self, agreement: Agreement) -> list[Incident]:
        """Its incidents: those of an earlier agreement of the same name are not adopted."""
        return [i for i in self._incidents_by_agreement.get(agreement.key, {}).values()
                if _same_object(agreement.uid, i.owner_uid)]

    def holds(self, runtime: AgreementRuntime) -> bool:
        """Whether ``runtime`` is still the engine's: deletion may come during an await."""
        return self.agreements.get(runtime.agreement.key) is runtime

    def _gone(self, runtime: AgreementRuntime) -> None:
        agreement = runtime.agreement
        log.info("agreement %s/%s: no longer on the API server", agreement.namespace, agreement.name)
        self.remove_agreement(agreement.key, agreement.uid)

    def windows_of(self, agreement: Agreement) -> list[MaintenanceWindow]:
        return self._windows.of(agreement)

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

    def _held_back(self, runtime: AgreementRuntime) -> None:
        if not runtime.held_back:
            runtime.held_back = True
            self.writes.deferred += 1

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
            self._windows.intervals)
        runtime.store_error = None
        if runtime.restore_problems:
            problems, runtime.restore_problems = runtime.restore_problems, None
            await self.store.record_event(
                Kind.AGREEMENT, agreement.key, "StatusRecomputed",
                f"status read back with errors, the bad entries recomputed: {problems}", warning=True)
        for action in result.actions:
            if not self.holds(runtime):
                return None  # deleted meanwhile: nothing more is written for it
            if self.writes.paused(now):
                # Decided again, and recorded, once the API server takes writes again.
                runtime.store_error = "the API server asked to wait before the next write"
                break
            try:
                await self._apply(action, agreement, now)
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
                                        self.windows_of(agreement), now, self._windows.intervals)
        self._schedule_retry(runtime, now)
        return result if self.holds(runtime) else None

    async def _write_out(self, runtime: AgreementRuntime, result: Evaluation, now: datetime,
                         force: bool, urgent_only: bool) -> bool:
        """Write the statuses of one evaluation: state changes at once (or marked pending when
        the budget is spent), routine refreshes unless ``urgent_only``. Returns whether
        routine writes were left for later in the round."""
        left = False
        runtime.write_pending = False
        urgent = (force or runtime.last_written is None
                  or result.signature != runtime.last_signature)
        if urgent:
            await self._write_agreement(runtime, result, now, force, urgent=True)
        elif self._refresh_due(runtime, now) and result.status != runtime.last_written:
            if urgent_only:
                left = True
            else:
                await self._write_agreement(runtime, result, now, force, urgent=False)
        for key, status in result.incident_status.items():
            if not self.holds(runtime):
                return False
            previous = self._incident_status.get(key)
            if key not in self.incidents or previous == status:
                continue
            incident_urgent = force or previous is None or any(
                previous.get(f) != status.get(f) for f in ("responseDue", "responseBreached"))
            if not incident_urgent and urgent_only:
                left = True
            else:
                await self._write_incident_status(runtime, key, status, now, force, incident_urgent)
        return left

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

    def _throttled(self, error: StoreError, now: datetime) -> bool:
        """Whether ``error`` asked to wait (the budget then pauses every write)."""
        if error.retry_after is None:
            return False
        self.writes.pause(now, error.retry_after, str(error))
        return True

    async def _write_agreement(self, runtime: AgreementRuntime, result: Evaluation,
                               now: datetime, force: bool, urgent: bool) -> None:
        agreement = runtime.agreement
        interval = self.settings.status_interval
        whole = runtime.last_written is None or runtime.partial_writes + 1 >= WHOLE_STATUS_EVERY
        patch = result.status if whole else status_patch(runtime.last_written, result.status)
        if patch and not self.writes.take(self.clock(), force):
            runtime.write_pending = runtime.write_pending or urgent
            self._held_back(runtime)
            return
        try:
            if patch:  # nothing differs from what the object holds: nothing to send
                await self.store.write_status(Kind.AGREEMENT, agreement.key, patch)
        except StoreError as error:
            if error.gone:
                self._gone(runtime)
            elif self._throttled(error, now):
                runtime.write_pending = runtime.write_pending or urgent
                self._held_back(runtime)
            else:
                log.warning("agreement %s/%s: status not written: %s", agreement.namespace,
                            agreement.name, error)
                # Tried again soon (evaluated afresh), backing off to once per interval.
                runtime.status_failures += 1
                backoff = min(interval, 2.0 ** (runtime.status_failures - 1))
                runtime.refresh_at = now + timedelta(seconds=backoff)
            return
        if patch:
            self.writes.written()
        runtime.partial_writes = 0 if whole else runtime.partial_writes + 1
        runtime.last_written, runtime.last_written_at = result.status, now
        runtime.last_signature = result.signature
        runtime.held_back, runtime.status_failures = False, 0
        runtime.refresh_at = refresh_slot(agreement.key, now + timedelta(seconds=interval / 2),
                                          interval)

    async def _apply(self, action: Open | Change, agreement: Agreement, now: datetime) -> None:
        if isinstance(action, Open):
            stored = await self.store.create_incident(action.incident, agreement.uid)
            self.writes.charge(now)
            log.info("incident %s/%s opened: %s %s %s", stored.namespace, stored.name,
                     stored.severity, stored.type, stored.title)
            await self.store.record_event(Kind.AGREEMENT, agreement.key, "IncidentOpened",
                                          f"{stored.name}: {stored.severity} {stored.title}",
                                          warning=True)
        else:
            stored = await self.store.change_incident(action.incident, action)
            self.writes.charge(now)
            for update in action.updates:
                log.info("incident %s/%s: %s", stored.namespace, stored.name, update.message)
        self._put_incident(stored)

    async def _write_incident_status(self, runtime: AgreementRuntime, key: Key,
                                     status: Mapping[str, Any], now: datetime, force: bool,
                                     urgent: bool) -> None:
        if not self.writes.take(self.clock(), force):
            runtime.write_pending = runtime.write_pending or urgent
            self._held_back(runtime)
            return
        try:
            await self.store.write_status(Kind.INCIDENT, key, status)
            self.writes.written()
            self._incident_status[key] = dict(status)
        except StoreError as error:
            if error.gone:
                self.remove_incident(key)  # deleted, or collected with its agreement
            elif self._throttled(error, now):
                runtime.write_pending = runtime.write_pending or urgent
            else:
                log.warning("incident %s/%s: status not written: %s", *key, error)

    async def _write_maintenance_status(self, now: datetime, force: bool = False) -> None:
        """A window's status is written when it changes; one the budget cannot pay for this
        round still differs in the next, and goes out then."""
        for key, window in list(self.maintenance.items()):
            if not self.owns(Kind.MAINTENANCE, key):
                continue  # its status is another shard's to write
            previous = self._maintenance_status.get(key)
            status = maintenance_status(window, previous, now,
                                        self._maintenance_rejections.get(key))
            if previous == status or not self.writes.take(self.clock(), force):
                continue
            try:
                await self.store.write_status(Kind.MAINTENANCE, key, status)
                self.writes.written()
                self._maintenance_status[key] = status
            except StoreError as error:
                if error.gone:
                    log.info("maintenance window %s/%s: no longer on the API server", *key)
                    self.remove_maintenance(key)
                elif not self._throttled(error, now):
                    log.warning("maintenance window %s/%s: status not written: %s", *key, error)

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
                                       foreign=self.foreign.values())
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
            for context in self._contexts.values():
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


def _same_object(held: str | None, other: str | None) -> bool:
    """Two uids of one object; an unknown uid (local files, old records) matches any."""
    return held is None or other is None or held == other
