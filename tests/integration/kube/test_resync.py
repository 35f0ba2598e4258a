"""The resync against kmock: what the API server no longer has leaves the engine."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import kmock as km
from kube_support import AGREEMENTS, INCIDENTS, T0, Clock, agreement_manifest

from sla_operator.domain.parse import agreement_from_manifest
from sla_operator.domain.records import incident_from_manifest, maintenance_from_manifest
from sla_operator.domain.shards import Sharding
from sla_operator.engine import Engine, EngineSettings
from sla_operator.kube.watch import Resync, WatchTracker
from sla_operator.store.base import Kind
from sla_operator.store.kube import KubeStore

WINDOWS = km.resource("sla.dev", "v1alpha1", "maintenancewindows")


def window(name: str) -> dict[str, object]:
    return {"apiVersion": "sla.dev/v1alpha1", "kind": "MaintenanceWindow",
            "metadata": {"name": name, "namespace": "payments", "resourceVersion": "7"},
            "spec": {"description": "upgrade", "slaNames": ["payments-api"],
                     "start": "2026-11-26T04:00:00Z", "end": "2026-11-26T06:00:00Z"}}


async def test_objects_deleted_without_a_watch_event_leave_the_engine(
        apiserver: km.KubernetesEmulator, store: KubeStore) -> None:
    clock = Clock(T0)
    declare(apiserver)
    engine = Engine(store, EngineSettings(), clock=clock)
    kept = agreement_manifest()
    kept["metadata"]["resourceVersion"] = "5"
    gone = agreement_manifest()
    gone["metadata"].update(name="checkout", uid="checkout-uid", resourceVersion="6")
    apiserver.objects[AGREEMENTS, "payments", "payments-api"] = kept
    apiserver.objects[WINDOWS, "payments", "db-upgrade"] = window("db-upgrade")
    for manifest in (kept, gone):
        engine.upsert_agreement(agreement_from_manifest(manifest))
    for name in ("db-upgrade", "applied-by-mistake"):
        engine.upsert_maintenance(maintenance_from_manifest(window(name)))
    tracker = WatchTracker(clock, timedelta(minutes=2))
    tracker.delivered(Kind.AGREEMENT, ("payments", "payments-api"), kept["metadata"])
    await Resync(engine, store, ["payments"], tracker, interval=60).once()
    assert list(engine.agreements) == [("payments", "payments-api")]
    assert list(engine.maintenance) == [("payments", "db-upgrade")]
    assert engine.scheduler.endpoint_count == 1
    # The window's version was listed but never came through a watch: once grace is over,
    # /healthz says the watches stopped.
    assert tracker.problems() == []
    clock.advance(timedelta(minutes=3))
    (problem,) = tracker.problems()
    assert "MaintenanceWindow payments/db-upgrade" in problem


def declare(apiserver: km.KubernetesEmulator) -> None:
    """The three kinds the resync lists, none of them holding any object yet."""
    for plural, kind in (("servicelevelagreements", "ServiceLevelAgreement"),
                         ("maintenancewindows", "MaintenanceWindow"), ("incidents", "Incident")):
        apiserver.resources[f"sla.dev/v1alpha1/{plural}"] = {
            "namespaced": True, "kind": kind, "verbs": {"get", "list", "watch"}}


def named(name: str, version: str) -> dict[str, Any]:
    manifest = agreement_manifest()
    manifest["metadata"].update(name=name, uid=f"{name}-uid", resourceVersion=version)
    return manifest


def incident(name: str, agreement: str, version: str = "9") -> dict[str, Any]:
    return {"apiVersion": "sla.dev/v1alpha1", "kind": "Incident",
            "metadata": {"name": name, "namespace": "payments", "resourceVersion": version,
                         "uid": f"{name}-uid", "labels": {"sla.dev/agreement": agreement}},
            "spec": {"agreement": agreement, "type": "outage", "severity": "P1",
                     "impact": "downtime", "title": f"{agreement} is down", "state": "resolved",
                     "startedAt": "2026-11-26T04:00:00Z", "resolvedAt": "2026-11-26T04:10:00Z",
                     "updates": []}}


def shard_zero(apiserver: km.KubernetesEmulator, store: KubeStore, clock: Clock) -> Engine:
    declare(apiserver)
    # Of two shards, shard 0 owns agreements "a" and "c"; "b" and "d" are shard 1's.
    return Engine(store, EngineSettings(sharding=Sharding(count=2, index=0)), clock=clock)


async def test_another_shards_agreement_deleted_without_a_watch_event_leaves_this_shard(
        apiserver: km.KubernetesEmulator, store: KubeStore) -> None:
    clock = Clock(T0)
    engine = shard_zero(apiserver, store, clock)
    for name, version in (("a", "5"), ("b", "6"), ("d", "7")):
        manifest = named(name, version)
        if name != "d":  # d was deleted, and this shard's watch missed the event
            apiserver.objects[AGREEMENTS, "payments", name] = manifest
        engine.upsert_agreement(agreement_from_manifest(manifest))
    assert set(engine.foreign) == {("payments", "b"), ("payments", "d")}
    engine.publish()
    await Resync(engine, store, ["payments"], WatchTracker(clock, timedelta(minutes=2)),
                 interval=60).once()
    assert list(engine.agreements) == [("payments", "a")]
    assert list(engine.foreign) == [("payments", "b")]
    assert sorted(a.name for a in engine.snapshot.agreements) == ["a", "b"]


async def test_incidents_deleted_without_a_watch_event_leave_the_engine_of_every_shard(
        apiserver: km.KubernetesEmulator, store: KubeStore) -> None:
    clock = Clock(T0)
    engine = shard_zero(apiserver, store, clock)
    for name in ("a", "b"):
        engine.upsert_agreement(agreement_from_manifest(named(name, "5")))
    kept = {"a-kept": "a", "b-kept": "b"}  # own and another shard's, still there
    for name, agreement in {**kept, "a-gone": "a", "b-gone": "b"}.items():
        manifest = incident(name, agreement)
        if name in kept:
            apiserver.objects[INCIDENTS, "payments", name] = manifest
        engine.upsert_incident(incident_from_manifest(manifest))
    assert set(engine.incidents) == {("payments", "a-kept"), ("payments", "a-gone")}
    assert set(engine.foreign_incidents) == {("payments", "b-kept"), ("payments", "b-gone")}

    # Incidents filed while the list is under way are not in it, and must stay: a new one,
    # and one of a deleted incident's name, applied again.
    listing = store.call

    async def call_while_filing(fn: Callable[[], Any]) -> Any:
        listed = await listing(fn)
        if "incidents" in getattr(fn, "args", ()):
            engine.upsert_incident(incident_from_manifest(incident("a-new", "a", version="99")))
            again = incident("b-gone", "b", version="99")
            again["metadata"]["uid"] = "b-gone-again-uid"
            engine.upsert_incident(incident_from_manifest(again))
        return listed

    store.call = call_while_filing  # type: ignore[method-assign]
    await Resync(engine, store, ["payments"], WatchTracker(clock, timedelta(minutes=2)),
                 interval=60).once()
    assert set(engine.incidents) == {("payments", "a-kept"), ("payments", "a-new")}
    assert set(engine.foreign_incidents) == {("payments", "b-kept"), ("payments", "b-gone")}
    assert engine.foreign_incidents[("payments", "b-gone")].uid == "b-gone-again-uid"
