"""The operator's start: cluster, engine and metrics first, then kopf with its settings.

Everything that can fail for a reason a person must fix (credentials, CRDs, permissions, a
port in use) is done before kopf runs: kopf retries a failing startup handler forever.
"""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from functools import partial
from typing import Any

import kopf
from kubernetes import client
from prometheus_client import CollectorRegistry

from sla_operator import __version__
from sla_operator.domain.errors import SpecError
from sla_operator.domain.model import Agreement
from sla_operator.domain.parse import agreement_from_manifest
from sla_operator.domain.records import incident_from_manifest, maintenance_from_manifest
from sla_operator.domain.schedule import validate_maintenance
from sla_operator.engine import Engine
from sla_operator.kube.connect import FirstLists, StartupError, api_client, first_lists
from sla_operator.kube.discovery import DISCOVERIES
from sla_operator.kube.leader import LeaderElector
from sla_operator.kube.lease import LeaseClient
from sla_operator.kube.location_watch import HEARTBEAT_READ_SECONDS, watch_heartbeats
from sla_operator.kube.notify_routes import KubeRoutes
from sla_operator.kube.primed import PrimedLists, primed
from sla_operator.kube.rules import RuleKeeper, keep_all
from sla_operator.kube.watch import Resync, WatchTracker
from sla_operator.metrics import EngineCollector, metrics_app, serve
from sla_operator.notify.notifier import engine_notifier
from sla_operator.settings import Settings
from sla_operator.statuspage import status_app
from sla_operator.store.base import Key, Kind
from sla_operator.store.fence import WriteSwitch
from sla_operator.store.kube import KubeStore

log = logging.getLogger("sla_operator.kube")


@kopf.on.startup()
async def configure(settings: kopf.OperatorSettings, memo: kopf.Memo, **_: Any) -> None:
    options: Settings | None = memo.get("settings")
    if options is not None and options.namespaces:
        # Named namespaces need no listing of all namespaces (which a namespaced install may
        # not do): kopf watches them as given.
        settings.scanning.disabled = True
    settings.persistence.finalizer = "sla.dev/finalizer"
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix="sla.dev")
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix="sla.dev", key="last-handled-configuration")
    settings.posting.level = logging.WARNING
    settings.watching.server_timeout = 300
    settings.watching.client_timeout = 330
    settings.networking.request_timeout = 30
    settings.execution.max_workers = 4


@kopf.on.cleanup()
async def stop_before_kopf_waits(memo: kopf.Memo, **_: Any) -> None:
    stop_working = memo.get("stop_working")
    if stop_working is not None:
        await stop_working()


def preload(engine: Engine, listed: dict[str, list[dict[str, Any]]],
            handled: dict[tuple[Kind, Key], object]) -> None:
    """Hand every listed Incident and MaintenanceWindow to the engine before any decision,
    so none is opened twice; one that cannot be read is logged and skipped. Then every valid
    agreement, all at once: kopf's watch hands them over one by one, and a thousand took a
    minute to arrive. Their events then find them taken in (``handled``); an invalid one is
    left to its event, which reports it."""
    from sla_operator.kube.handlers import take_in_agreement  # registers the handlers

    for plural, load in (("incidents", _load_incident), ("maintenancewindows", _load_window)):
        for item in listed.get(plural, []):
            try:
                load(engine, item)
            except Exception as error:  # one bad object must not keep the operator from starting
                meta = item.get("metadata") if isinstance(item, dict) else None
                meta = meta if isinstance(meta, dict) else {}
                log.warning("%s %s/%s ignored: %s", plural, meta.get("namespace"),
                            meta.get("name"), error)
    for item in listed.get("servicelevelagreements", []):
        meta = item.get("metadata") or {}
        key = (str(meta.get("namespace", "default")), str(meta.get("name", "")))
        if meta.get("deletionTimestamp"):
            continue  # going away: its event says so
        try:
            invalid = take_in_agreement(engine, handled, item)
        except Exception as failure:  # as above: logged, and its event tries again
            handled.pop((Kind.AGREEMENT, key), None)
            log.warning("servicelevelagreements %s/%s not taken in at start: %s", *key, failure)
            continue
        if invalid is not None:
            handled.pop((Kind.AGREEMENT, key), None)  # its event reports it


def _load_incident(engine: Engine, item: dict[str, Any]) -> None:
    engine.upsert_incident(incident_from_manifest(item))


def _load_window(engine: Engine, item: dict[str, Any]) -> None:
    window = maintenance_from_manifest(item)
    validate_maintenance(window)
    engine.upsert_maintenance(window)


def _election_problems(elector: LeaderElector | None,
                       task: asyncio.Task[None] | None) -> list[str]:
    """/healthz: a standby that cannot lead is not healthy (a failed take-over, a Lease it
    cannot reach), nor is one whose election stopped (it can never lead again)."""
    if elector is None:
        return []
    problems = elector.problems()
    if task is not None and task.done() and not task.cancelled():
        problems.append(f"leader election stopped: {task.exception()!r}")
    return problems


async def take_over(engine: Engine, resync: Resync,
                    alive_until: Callable[[], datetime | None] = lambda: None) -> None:
    """A promoted standby reads every agreement's status and every incident again before it
    probes: the previous leader wrote them until moments ago, and was alive until the Lease's
    last renewal (``alive_until``)."""
    agreements: list[tuple[Agreement, Mapping[str, Any] | None]] = []
    for item in await resync.list(Kind.AGREEMENT):
        meta = item.get("metadata") or {}
        if not engine.owns(Kind.AGREEMENT, (str(meta.get("namespace")), str(meta.get("name")))):
            continue  # another shard's: not even parsed
        try:
            # With what Services and Ingresses added (``--discover``), as the handlers do.
            agreements.append((DISCOVERIES.agreement(agreement_from_manifest(item)),
                               item.get("status")))
        except SpecError:
            continue  # the handlers report it; the last valid version stays as it is
    incidents = []
    for item in await resync.list(Kind.INCIDENT):
        try:
            incidents.append(incident_from_manifest(item))
        except SpecError:
            continue
    engine.take_over(agreements, incidents, alive_until())


def run(options: Settings) -> int:
    """Run the operator until interrupted (``sla-operator run``); 1 when it cannot start."""
    from sla_operator.kube import handlers  # registers the resource handlers

    assert handlers
    if logging.getLogger().level > logging.DEBUG:
        # kopf logs every handled watch event at INFO; incidents alone would flood the log.
        logging.getLogger("kopf.objects").setLevel(logging.WARNING)
    try:
        api = api_client()
        if options.sharding.sharded:
            # The API server names the writer of each field after the user agent
            # (managedFields, audit logs): each shard's writes say which shard made them.
            api.user_agent = f"sla-operator-shard-{options.sharding.index}/{__version__}"
        listed = first_lists(api, options.namespaces)
        asyncio.run(_operate(options, api, listed))
    except StartupError as error:
        print(f"sla-operator run: {error}", file=sys.stderr)
        return 1
    return 0


async def _operate(options: Settings, api: client.ApiClient, listed: FirstLists) -> None:
    # Without leader election this process is the only writer; with it, it starts on standby.
    switch = WriteSwitch(active=options.lease is None)
    store = KubeStore(api, switch=switch)
    engine = Engine(store, options.engine_settings(), switch=switch)
    handled: dict[tuple[Kind, Key], object] = {}
    preload(engine, listed.items, handled)
    # From here only kopf's first lists hold the objects listed, until kopf has taken them.
    first = PrimedLists(listed)
    listed.items.clear()
    registry = CollectorRegistry()
    registry.register(EngineCollector(engine, endpoint_histograms=options.endpoint_histograms))
    # Watches owe an event for a change within two resyncs (plus the time a list takes).
    tracker = WatchTracker(engine.clock, timedelta(seconds=2 * options.resync_interval + 30))
    resync = Resync(engine, store, options.namespaces, tracker, options.resync_interval)
    elector: LeaderElector | None = None
    elector_task: asyncio.Task[None] | None = None
    try:
        runner = await serve(metrics_app(engine, registry, checks=[
                                 tracker.problems, lambda: _election_problems(elector, elector_task)]),
                             options.bind_address, options.metrics_port)
    except OSError as error:
        raise StartupError(f"cannot listen on {options.bind_address}:{options.metrics_port} "
                           f"for metrics: {error.strerror or error}") from None
    try:
        # Served from the engine's snapshot only: a page request never calls the API server.
        status = await serve(status_app(lambda: engine.snapshot), options.bind_address,
                             options.status_port)
    except OSError as error:
        if runner is not None:
            await runner.cleanup()
        raise StartupError(f"cannot listen on {options.bind_address}:{options.status_port} "
                           f"for the status page: {error.strerror or error}") from None
    if status is not None:
        log.info("status page on port %d", options.status_port)
    engine_task = asyncio.create_task(engine.run(), name="sla-engine")
    # Notifications: only while the engine is active (the Lease holder), from its snapshots.
    notify_task = asyncio.create_task(
        engine_notifier(engine, KubeRoutes(store, options.namespaces)).run(), name="sla-notify")
    resync_task = asyncio.create_task(resync.run(), name="resync")
    heartbeats_task = (asyncio.create_task(watch_heartbeats(
        engine, api, options.locations_namespace, HEARTBEAT_READ_SECONDS), name="heartbeats")
        if options.location is not None else None)
    rule_keeper = RuleKeeper(client.CustomObjectsApi(api), dict(options.rule_labels), switch,
                             owns=partial(engine.owns, Kind.AGREEMENT))
    if options.lease is None:
        # One list of the managed rules (or the news that their CRD is not served) before the
        # watch hands over every agreement.
        await asyncio.to_thread(rule_keeper.prime, options.namespaces)
    if options.sharding.sharded:
        log.info("shard %d of %d: agreements whose hash of namespace/name falls in it",
                 options.sharding.index, options.sharding.count)
    if options.lease is not None:

        async def leading() -> None:
            # Spec changes of the handover's gap: every rule brought up to date.
            await asyncio.to_thread(keep_all, rule_keeper, api, options.namespaces)

        # The Lease on a connection and thread of its own: renewals never wait behind writes.
        def previous_renewal() -> datetime | None:
            return elector.previous_renewal if elector is not None else None

        elector = LeaderElector(LeaseClient(api, options.lease), options.lease, switch,
                                partial(take_over, engine, resync, previous_renewal),
                                then=leading)
        elector_task = asyncio.create_task(elector.run(), name="leader-election")

    async def stop_working() -> None:
        """The last status writes, then the Lease handed back, so the next replica takes over
        within a retry period. Called first thing when kopf stops (on.cleanup), since kopf
        then waits up to 5 s for tasks it did not start (scrapes, page requests)."""
        resync_task.cancel()
        engine_task.cancel()
        notify_task.cancel()
        if heartbeats_task is not None:
            heartbeats_task.cancel()
        await asyncio.gather(engine_task, resync_task, notify_task, *filter(None, [heartbeats_task]),
                             return_exceptions=True)
        if elector_task is not None:
            elector_task.cancel()
            await asyncio.gather(elector_task, return_exceptions=True)

    try:
        # kopf's watches start from the first lists rather than listing everything again.
        with primed(first):
            await kopf.operator(
                clusterwide=not options.namespaces,
                namespaces=list(options.namespaces),
                memo=kopf.Memo(settings=options, engine=engine, watches=tracker,
                               stop_working=stop_working, api=api,
                               rule_keeper=rule_keeper, handled=handled),
                standalone=True,
            )
    finally:
        await stop_working()
        for listener in (runner, status):
            if listener is not None:
                await listener.cleanup()
