"""The resync against kmock: what the API server no longer has leaves the engine."""

from __future__ import annotations

from datetime import timedelta

import kmock as km
from kube_support import AGREEMENTS, T0, Clock, agreement_manifest

from sla_operator.domain.parse import agreement_from_manifest
from sla_operator.domain.records import maintenance_from_manifest
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
