"""Deleted agreements and windows leave the engine for good; read-back status is untrusted."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import replace
from datetime import timedelta
from decimal import Decimal
from typing import Any

from aiohttp.test_utils import TestClient, TestServer
from engine_clock import API as SHARED_API
from engine_clock import SECOND, T0, Clock
from prometheus_client import CollectorRegistry, generate_latest

from sla_operator.domain.incidents import Change, apply_change
from sla_operator.domain.model import (
    Agreement,
    Incident,
    MaintenanceWindow,
    ProbeResult,
    State,
)
from sla_operator.engine import Engine, EngineSettings
from sla_operator.metrics import EngineCollector, metrics_app
from sla_operator.probes.scheduler import ProbeScheduler
from sla_operator.store.base import Key, Kind, StoreError

API = replace(SHARED_API, failure_threshold=1, success_threshold=1)  # one failure is an outage



class RecordingStore:
    """Keeps what is written; objects named in ``gone`` answer as deleted; ``hold`` pauses
    incident creation until released, so a deletion can land in the middle of it."""

    def __init__(self) -> None:
        self.statuses: list[tuple[Kind, Key, dict[str, Any]]] = []
        self.created: list[Incident] = []
        self.changes: list[tuple[Incident, Change]] = []
        self.events: list[tuple[Key, str, str]] = []
        self.gone: set[Key] = set()
        self.hold: asyncio.Event | None = None
        self.creating = asyncio.Event()

    async def create_incident(self, incident: Incident, owner_uid: str | None) -> Incident:
        self.creating.set()
        if self.hold is not None:
            await self.hold.wait()
        if (incident.namespace, incident.agreement) in self.gone:
            raise StoreError("agreement deleted", gone=True)
        stored = replace(incident, owner_uid=owner_uid)
        self.created.append(stored)
        return stored

    async def change_incident(self, incident: Incident, change: Change) -> Incident:
        self.changes.append((incident, change))
        return apply_change(incident, change)

    async def write_status(self, kind: Kind, key: Key, status: Mapping[str, Any]) -> None:
        if key in self.gone:
            raise StoreError("API 404: Not Found", gone=True)
        self.statuses.append((kind, key, dict(status)))

    async def read_secret(self, namespace: str, name: str, key: str) -> str:
        raise AssertionError("no secrets here")

    async def record_event(self, kind: Kind, key: Key, reason: str, message: str,
                           warning: bool = False) -> None:
        self.events.append((key, reason, message))

    def written_for(self, key: Key) -> list[dict[str, Any]]:
        return [s for _, k, s in self.statuses if k == key]


def agreement(name: str = "web", uid: str = "uid-1") -> Agreement:
    return Agreement(namespace="shop", name=name, service=name.title(), objective=Decimal("99.9"),
                     endpoints=(API,), created_at=T0, uid=uid, labels={"team": "shop"})


def engine_with(store: RecordingStore, clock: Clock) -> Engine:
    return Engine(store, EngineSettings(status_interval=5), clock=clock)  # type: ignore[arg-type]


def fail(engine: Engine, clock: Clock, name: str = "web") -> None:
    engine.on_probe_result(("shop", name), API, ProbeResult(clock.now, False, 0.01, "503"))


async def test_an_agreement_deleted_during_its_evaluation_gets_no_more_writes() -> None:
    clock, store = Clock(), RecordingStore()
    engine = engine_with(store, clock)
    engine.upsert_agreement(agreement())
    fail(engine, clock)
    store.hold = asyncio.Event()
    evaluating = asyncio.create_task(engine.evaluate_round())
    await store.creating.wait()  # the outage is being recorded ...
    engine.remove_agreement(("shop", "web"), "uid-1")  # ... when the deletion arrives
    store.hold.set()
    await evaluating
    assert store.written_for(("shop", "web")) == []
    assert engine.scheduler.endpoint_count == 0
    clock.now += 10 * SECOND
    fail(engine, clock)
    await engine.evaluate_round()
    assert store.written_for(("shop", "web")) == [] and len(store.created) == 1


async def test_an_agreement_found_deleted_on_write_is_dropped_and_its_probes_stop() -> None:
    clock, store = Clock(), RecordingStore()
    engine = engine_with(store, clock)
    engine.upsert_agreement(agreement())
    engine.upsert_agreement(agreement("api"))
    store.gone.add(("shop", "web"))  # deleted, and the watch event was missed
    fail(engine, clock)
    await engine.evaluate_round()
    assert ("shop", "web") not in engine.agreements and ("shop", "api") in engine.agreements
    assert engine.scheduler.endpoint_count == 1
    assert store.created == []  # the creation was refused: the owner is gone
    for _ in range(3):  # and no create / collect / create loop follows
        clock.now += SECOND
        fail(engine, clock)
        await engine.evaluate_round()
    assert store.created == [] and store.written_for(("shop", "web")) == []


async def test_a_late_deletion_of_an_earlier_object_leaves_its_successor_running() -> None:
    engine = engine_with(RecordingStore(), Clock())
    engine.upsert_agreement(agreement(uid="uid-2"))
    engine.remove_agreement(("shop", "web"), "uid-1")
    assert ("shop", "web") in engine.agreements
    engine.remove_agreement(("shop", "web"), "uid-2")
    assert ("shop", "web") not in engine.agreements


async def test_an_agreement_created_again_under_its_name_starts_afresh_without_old_incidents(
) -> None:
    clock, store = Clock(), RecordingStore()
    engine = engine_with(store, clock)
    engine.upsert_agreement(agreement(uid="uid-1"))
    fail(engine, clock)
    await engine.evaluate_round()
    (old,) = store.created
    assert old.owner_uid == "uid-1" and engine.agreements[("shop", "web")].state is State.DOWN
    # Deleted and applied again while the operator missed the deletion (the collector has
    # not removed the old incident yet either).
    engine.upsert_agreement(agreement(uid="uid-2"), {})
    fresh = engine.agreements[("shop", "web")]
    assert fresh.healths == {} and fresh.state is State.UNKNOWN
    assert engine.incidents_of(fresh.agreement) == []
    clock.now += SECOND
    engine.on_probe_result(("shop", "web"), API, ProbeResult(clock.now, True, 0.01, "200 OK"))
    await engine.evaluate_round()
    status = store.written_for(("shop", "web"))[-1]
    assert status["openIncidents"] == [] and status["state"] == "Up"


async def test_a_deleted_window_ends_its_maintenance_at_once() -> None:
    clock, store = Clock(), RecordingStore()
    engine = engine_with(store, clock)
    engine.upsert_agreement(agreement())
    engine.upsert_maintenance(MaintenanceWindow(
        namespace="shop", name="upgrade", description="upgrade", sla_names=("web",),
        start=T0 - timedelta(hours=1), end=T0 + timedelta(hours=1)))
    await engine.evaluate_round()
    assert store.written_for(("shop", "web"))[-1]["state"] == "Maintenance"
    engine.remove_maintenance(("shop", "upgrade"))
    clock.now += SECOND
    await engine.evaluate_round()
    assert store.written_for(("shop", "web"))[-1]["state"] != "Maintenance"


async def test_a_poisoned_status_is_recomputed_with_one_warning_and_spares_the_others() -> None:
    clock, store = Clock(), RecordingStore()
    clock.now = T0 + timedelta(days=40)
    engine = engine_with(store, clock)
    poisoned = {"history": [{"period": "2026-10", "availability": "n/a"},
                            {"period": 2026, "availability": 1e308, "downtimeSeconds": "lots"}],
                "conditions": [{"type": "Ready"}], "unmonitored": "always",
                "lastEvaluated": {"when": "yesterday"},
                "endpoints": [{"name": "api", "state": "Down", "since": [], "consecutiveFailures": -4}]}
    engine.upsert_agreement(agreement("web"), poisoned)
    engine.upsert_agreement(agreement("api", uid="uid-9"), {})
    for name in ("web", "api"):
        engine.on_probe_result(("shop", name), API, ProbeResult(clock.now, True, 0.01, "200 OK"))
    await engine.evaluate_round()
    web, api = store.written_for(("shop", "web"))[-1], store.written_for(("shop", "api"))[-1]
    assert web["state"] == api["state"] == "Up"
    assert [h["period"] for h in web["history"]] == [h["period"] for h in api["history"]]
    assert all(h["availability"] != "n/a" for h in web["history"])
    warnings = [e for e in store.events if e[1] == "StatusRecomputed"]
    assert len(warnings) == 1 and "status.history[0].availability" in warnings[0][2]
    clock.now += SECOND  # a second probed: figures to show
    await engine.evaluate_round(force=True)
    assert len([e for e in store.events if e[1] == "StatusRecomputed"]) == 1
    registry = CollectorRegistry()
    registry.register(EngineCollector(engine))
    text = generate_latest(registry).decode()
    assert 'sla_availability_ratio{agreement="web"' in text
    assert 'sla_availability_ratio{agreement="api"' in text


async def test_healthz_fails_naming_the_probe_scheduler_when_its_task_dies() -> None:
    class Crashing(ProbeScheduler):
        async def run(self) -> None:
            raise RuntimeError("scheduler bug")

    clock, store = Clock(), RecordingStore()
    engine = Engine(store, EngineSettings(evaluate_interval=0.01), clock=clock,  # type: ignore[arg-type]
                    scheduler=Crashing(lambda *_: None))
    client = TestClient(TestServer(metrics_app(engine, CollectorRegistry())))
    await client.start_server()
    running = asyncio.create_task(engine.run())
    try:
        for _ in range(100):
            await asyncio.sleep(0.01)
            answer = await client.get("/healthz")
            if answer.status == 503:
                break
        assert answer.status == 503
        assert "probe scheduler stopped: RuntimeError('scheduler bug')" in await answer.text()
    finally:
        running.cancel()
        await asyncio.gather(running, return_exceptions=True)
        await client.close()


async def test_healthz_reports_every_failing_check_and_ok_when_none_fails() -> None:
    engine = engine_with(RecordingStore(), Clock())
    failing: list[str] = []
    client = TestClient(TestServer(metrics_app(engine, CollectorRegistry(),
                                               checks=[lambda: list(failing)])))
    await client.start_server()
    try:
        assert (await client.get("/healthz")).status == 200
        failing.append("watches stopped: no event for ServiceLevelAgreement shop/web")
        engine.clock = lambda: T0 + timedelta(minutes=5)  # and evaluation stalled
        answer = await client.get("/healthz")
        assert answer.status == 503
        assert (await answer.text()).splitlines() == [
            "evaluation stalled for 300s",
            "watches stopped: no event for ServiceLevelAgreement shop/web"]
    finally:
        await client.close()


def test_metrics_are_served_before_the_first_round() -> None:
    registry = CollectorRegistry()
    registry.register(EngineCollector(engine_with(RecordingStore(), Clock())))
    text = generate_latest(registry).decode()
    assert 'sla_operator_probe_lag_seconds_bucket{le="+Inf"} 0.0' in text


async def test_an_unmonitored_gap_read_back_from_the_future_hides_no_outage_and_is_not_kept() -> None:
    clock, store = Clock(), RecordingStore()
    clock.now = T0 + timedelta(hours=1)
    engine = engine_with(store, clock)
    future = {"start": "2026-11-26T05:01:00Z", "end": "2026-12-26T00:00:00Z"}
    engine.upsert_agreement(agreement(), {"lastEvaluated": "2026-11-26T04:59:59Z",
                                          "unmonitored": [future]})
    clock.now += 2 * timedelta(minutes=1)  # the outage begins inside the gap's dates
    for _ in range(60):
        clock.now += SECOND
        fail(engine, clock)
        await engine.evaluate_round()
    written = store.written_for(("shop", "web"))
    assert written[-1]["currentPeriod"]["downtimeSeconds"] >= 59
    assert written[-1]["currentPeriod"]["availability"] != "100"
    assert all(future not in w.get("unmonitored", []) for w in written)
    [warning] = [e for e in store.events if e[1] == "StatusRecomputed"]
    assert "status.unmonitored[0].start" in warning[2]


async def test_a_history_entry_of_the_current_period_is_not_taken_back() -> None:
    clock, store = Clock(), RecordingStore()
    clock.now = T0 + timedelta(days=40)  # 2027-01-05: December 2026 has closed, January not
    engine = engine_with(store, clock)
    entry = {"period": "2027-01", "availability": "12.5"}
    engine.upsert_agreement(agreement(), {"history": [entry, {"period": "2026-12",
                                                              "availability": "99.95"}]})
    engine.on_probe_result(("shop", "web"), API, ProbeResult(clock.now, True, 0.01, "200 OK"))
    await engine.evaluate_round()
    history = store.written_for(("shop", "web"))[-1]["history"]
    assert "2027-01" not in [h["period"] for h in history]
    assert {"period": "2026-12", "availability": "99.95", "creditPercent": 0} in history
    [warning] = [e for e in store.events if e[1] == "StatusRecomputed"]
    assert "2027-01 has not ended yet" in warning[2]


async def test_a_history_availability_float_cannot_read_leaves_the_agreement_on_metrics() -> None:
    clock, store = Clock(), RecordingStore()
    clock.now = T0 + timedelta(days=40)
    engine = engine_with(store, clock)
    engine.upsert_agreement(agreement("web"), {"history": [{"period": "2026-12",
                                                             "availability": "_1"}]})
    for _ in range(3):
        clock.now += SECOND
        engine.on_probe_result(("shop", "web"), API, ProbeResult(clock.now, True, 0.01, "200 OK"))
        await engine.evaluate_round()
    registry = CollectorRegistry()
    registry.register(EngineCollector(engine))
    text = generate_latest(registry).decode()
    assert 'sla_objective_ratio{agreement="web"' in text
    assert 'sla_period_availability_ratio{agreement="web"' in text
    assert [a.name for a in engine.snapshot.agreements] == ["web"]
    assert all(h["availability"] != "_1" for h in store.written_for(("shop", "web"))[-1]["history"])
    [warning] = [e for e in store.events if e[1] == "StatusRecomputed"]
    assert "status.history[0].availability" in warning[2]
