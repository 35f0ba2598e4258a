"""``sla-operator probe --location NAME``: probe every agreement as one location and report.

The reporter never writes statuses or incidents: it writes one LocationReport per agreement,
and only when this location's view of an endpoint changes (its state or since). That the
views still hold is said by the location's Lease (``sla-location-NAME``), which its elected
reporter renews every retry period: several replicas of one location report once, and the
API server's load does not grow with the probe rate.
"""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import Any

from kubernetes import client
from prometheus_client import CollectorRegistry

from sla_operator.domain.errors import SpecError
from sla_operator.domain.health import UNPROBED, EndpointHealth, observe
from sla_operator.domain.location_reports import (
    LOCATION_LABEL,
    changed,
    report_manifest,
    view_entries,
)
from sla_operator.domain.model import Agreement, Endpoint, ProbeResult
from sla_operator.domain.parse import agreement_from_manifest
from sla_operator.engine.settings import EngineSettings
from sla_operator.kube.agreement_feed import follow
from sla_operator.kube.connect import StartupError, api_client
from sla_operator.kube.leader import LeaderElector
from sla_operator.kube.lease import LeaseClient
from sla_operator.kube.reporter_metrics import ReporterCollector, reporter_app
from sla_operator.metrics import serve
from sla_operator.probes.base import utc_now
from sla_operator.probes.contexts import ProbeContexts
from sla_operator.probes.scheduler import ProbeScheduler
from sla_operator.settings import LeaseSettings
from sla_operator.store.base import Key, StoreError
from sla_operator.store.fence import Fenced, WriteSwitch
from sla_operator.store.kube import GROUP, VERSION, KubeStore

log = logging.getLogger("sla_operator.reporter")
WRITE_EVERY_SECONDS = 1.0


class Reporter:
    """This location's view of every agreement's endpoints, and the reports that say it."""

    def __init__(self, store: KubeStore, location: str, settings: EngineSettings,
                 namespaces: tuple[str, ...] = (),
                 clock: Callable[[], datetime] = utc_now) -> None:
        self.store, self.location, self.settings, self.clock = store, location, settings, clock
        self.namespaces = namespaces  # empty: every namespace
        self.scheduler = ProbeScheduler(self.on_probe_result,
                                        concurrency=settings.probe_concurrency)
        self.agreements: dict[Key, Agreement] = {}
        self.healths: dict[Key, dict[str, EndpointHealth]] = {}
        self.written: dict[Key, list[dict[str, Any]]] = {}
        """What each report holds (as listed when the Lease was taken, then as written)."""
        self.changed: set[Key] = set()  # agreements whose view may differ from their report
        self.contexts = ProbeContexts(store, settings.policy,
                                      settings.namespace_rules, location, clock)

    def on_probe_result(self, owner: Key, endpoint: Endpoint, result: ProbeResult) -> None:
        agreement = self.agreements.get(owner)
        if agreement is None or agreement.endpoint(endpoint.name) != endpoint:
            return  # a result of a version of the agreement that is gone
        healths = self.healths.setdefault(owner, {})
        before = healths.get(endpoint.name) or UNPROBED
        after = observe(before, endpoint, result)
        healths[endpoint.name] = after
        if before.last is None or (after.state, after.since) != (before.state, before.since):
            self.changed.add(owner)

    def listed(self, namespace: str | None, items: list[Mapping[str, Any]]) -> None:
        """The agreements of ``namespace`` (None: of every one) as just listed: probe these,
        forget the others there."""
        current = {}
        for item in items:
            agreement = _agreement(item)
            if agreement is not None:
                current[agreement.key] = agreement
        for key in [k for k in self.agreements if k not in current
                    and (namespace is None or k[0] == namespace)]:
            self.remove(key)
        for agreement in current.values():
            self.upsert(agreement)

    def changed_agreement(self, kind: str, item: Mapping[str, Any]) -> None:
        """One change the watch delivered (a status write alone changes nothing here)."""
        meta = item.get("metadata") or {}
        agreement = _agreement(item) if kind != "DELETED" else None
        if agreement is None:
            self.remove((str(meta.get("namespace")), str(meta.get("name"))))
        else:
            self.upsert(agreement)

    def upsert(self, agreement: Agreement) -> None:
        key = agreement.key
        held = self.agreements.get(key)
        if held == agreement:
            return
        self.agreements[key] = agreement
        kept = {e.name for e in agreement.endpoints
                if held is not None and held.endpoint(e.name) == e}
        self.healths[key] = {n: h for n, h in self.healths.get(key, {}).items() if n in kept}
        self.changed.add(key)
        self.scheduler.set_endpoints(key, agreement.endpoints,
                                     self.contexts.of(agreement.namespace))

    def remove(self, key: Key) -> None:
        """No longer probed: deleted (its reports go with it, owned by it), or invalid (the
        home operator says what is wrong)."""
        if self.agreements.pop(key, None) is not None:
            self.healths.pop(key, None)
            self.written.pop(key, None)
            self.changed.discard(key)
            self.scheduler.remove(key)

    async def take_over(self) -> None:
        """On taking the Lease: what this location's reports hold now (another replica may
        have written them), so that only what differs is written."""
        items = await list_all(self.store, self.namespaces, "locationreports",
                               label_selector=f"{LOCATION_LABEL}={self.location}")
        self.written = {}
        for item in items:
            meta, spec = item.get("metadata") or {}, item.get("spec") or {}
            key = (str(meta.get("namespace")), str(spec.get("agreement")))
            self.written[key] = list(spec.get("endpoints") or [])
        self.changed = set(self.agreements)

    async def write_changed(self) -> None:
        """Write each report whose view changed; a failed one is tried again next time."""
        for key in list(self.changed):
            agreement = self.agreements.get(key)
            self.changed.discard(key)
            if agreement is None:
                continue
            entries = view_entries(agreement, self.healths.get(key, {}))
            if not entries or not changed(entries, self.written.get(key)):
                continue
            try:
                await self.store.write_location_report(
                    report_manifest(agreement, self.location, entries),
                    exists=key in self.written)
            except Fenced:
                self.changed.add(key)
                return
            except StoreError as error:
                log.warning("report on %s/%s not written: %s", *key, error)
                self.changed.add(key)
                continue
            self.written[key] = entries
            log.info("report on %s/%s written: %s", *key,
                     ", ".join(f"{e['name']} {e['state']}" for e in entries))


async def list_all(store: KubeStore, namespaces: tuple[str, ...], plural: str,
                   label_selector: str | None = None) -> list[dict[str, Any]]:
    """The objects of one of our kinds in ``namespaces`` (empty: every namespace), listed as
    the least privilege allows: per namespace when they are named."""
    custom = store.custom
    lists: list[Any] = []
    for namespace in namespaces or (None,):
        if namespace is None:
            call = partial(custom.list_cluster_custom_object, GROUP, VERSION, plural,
                           label_selector=label_selector)
        else:
            call = partial(custom.list_namespaced_custom_object, GROUP, VERSION, namespace,
                           plural, label_selector=label_selector)
        lists.append(await store.call(call))
    return [item for listed in lists for item in listed.get("items") or []]


def _agreement(item: Mapping[str, Any]) -> Agreement | None:
    """An agreement to probe; None for an invalid one (the home operator's to report)."""
    try:
        return agreement_from_manifest(item)
    except SpecError:
        return None


async def report(reporter: Reporter, switch: WriteSwitch) -> None:
    """While this replica holds the location's Lease: probe, and write what changed."""
    probing: asyncio.Task[None] | None = None
    try:
        while True:
            if switch.active:
                if probing is None:
                    probing = asyncio.create_task(reporter.scheduler.run(), name="probes")
                await reporter.write_changed()
            elif probing is not None:
                probing.cancel()
                await asyncio.gather(probing, return_exceptions=True)
                probing = None
                reporter.healths.clear()  # the next term starts from fresh probes
            await asyncio.sleep(WRITE_EVERY_SECONDS)
    finally:
        if probing is not None:
            probing.cancel()
            await asyncio.gather(probing, return_exceptions=True)


@dataclass(frozen=True)
class ProbeOptions:
    """``sla-operator probe``'s command line."""

    location: str
    namespaces: tuple[str, ...]
    """Namespaces whose agreements to probe; empty: every namespace."""
    settings: EngineSettings
    """The probes' policy and concurrency, as ``run`` has them."""
    lease: LeaseSettings
    """The location's Lease: its election and heartbeat."""
    metrics_port: int
    """Port of /metrics and /healthz; 0 disables the listener."""
    bind_address: str
    """Address the listener binds to."""


def run_probe(options: ProbeOptions) -> int:
    """``sla-operator probe``: until interrupted; 1 when it cannot start."""
    try:
        api = api_client()
        asyncio.run(_probe(api, options))
    except StartupError as error:
        print(f"sla-operator probe: {error}", file=sys.stderr)
        return 1
    return 0


async def _probe(api: client.ApiClient, options: ProbeOptions) -> None:
    location, lease = options.location, options.lease
    switch = WriteSwitch(active=False)
    store = KubeStore(api, component=f"sla-operator-probe-{location}", switch=switch)
    reporter = Reporter(store, location, options.settings, options.namespaces)
    elector = LeaderElector(LeaseClient(api, lease), lease, switch, reporter.take_over)
    registry = CollectorRegistry()
    registry.register(ReporterCollector(reporter, switch))
    try:
        listener = await serve(reporter_app(registry, elector.problems), options.bind_address,
                               options.metrics_port)
    except OSError as error:
        raise StartupError(f"cannot listen on {options.bind_address}:{options.metrics_port} "
                           f"for metrics: {error.strerror or error}") from None
    log.info("probing as location %s (Lease %s/%s)", location, lease.namespace, lease.name)
    election = asyncio.create_task(elector.run(), name="leader-election")
    stop = follow(store.custom, options.namespaces, reporter.listed, reporter.changed_agreement,
                  asyncio.get_running_loop())
    try:
        await report(reporter, switch)
    finally:
        stop.set()
        election.cancel()
        await asyncio.gather(election, return_exceptions=True)
        if listener is not None:
            await listener.cleanup()
