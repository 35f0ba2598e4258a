"""Two shards side by side: each agreement, its incidents and each window's status are taken
in and written by exactly one of them."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from typing import Any

import kopf
from engine_clock import T0, Clock
from prometheus_client import CollectorRegistry, generate_latest
from test_engine_deletion import RecordingStore, agreement, fail

from sla_operator.domain.model import Incident, IncidentType, MaintenanceWindow, Severity
from sla_operator.domain.shards import Sharding, shard_of
from sla_operator.engine import Engine, EngineSettings
from sla_operator.kube.handlers import agreement_event, incident_event, maintenance_event
from sla_operator.metrics import EngineCollector
from sla_operator.store.base import Kind

NAMES = [f"web-{n}" for n in range(12)]
WINDOWS = [f"upgrade-{n}" for n in range(6)]


def shard_engines(clock: Clock) -> list[tuple[Engine, RecordingStore]]:
    pairs = []
    for index in range(2):
        store = RecordingStore()
        settings = EngineSettings(status_interval=5, sharding=Sharding(2, index))
        pairs.append((Engine(store, settings, clock=clock), store))  # type: ignore[arg-type]
    return pairs


def owner(name: str) -> int:
    return shard_of("shop", name, 2)


def test_the_names_used_here_fall_in_both_shards() -> None:
    assert {owner(name) for name in NAMES} == {0, 1}
    assert {owner(name) for name in WINDOWS} == {0, 1}


async def test_each_agreement_is_taken_in_probed_and_written_by_exactly_one_shard() -> None:
    clock = Clock()
    shards = shard_engines(clock)
    for engine, _ in shards:
        for name in NAMES:
            engine.upsert_agreement(agreement(name, uid=f"uid-{name}"), {})
            fail(engine, clock, name)  # a probe result for another shard's agreement goes nowhere
    clock.now += timedelta(seconds=1)
    for engine, _ in shards:
        await engine.evaluate_round()
    for index, (engine, store) in enumerate(shards):
        mine = {("shop", name) for name in NAMES if owner(name) == index}
        assert set(engine.agreements) == mine
        assert engine.scheduler.endpoint_count == len(mine)
        assert {key for kind, key, _ in store.statuses if kind is Kind.AGREEMENT} == mine
        # One failure is an outage here: every agreement opened its incident, in its shard.
        assert {(i.namespace, i.agreement) for i in store.created} == mine
        assert {key for key, _, _ in store.events} <= mine
        # The page shows every agreement; another shard's as its status says (none yet).
        assert {view.name for view in engine.snapshot.agreements} == set(NAMES)
        assert set(engine.foreign) == {("shop", n) for n in NAMES} - mine


def incident_of(name: str) -> Incident:
    return Incident(namespace="shop", name=f"{name}-outage", agreement=name,
                    type=IncidentType.OUTAGE, severity=Severity.P1, title="down",
                    started_at=T0 - timedelta(hours=1), owner_uid=f"uid-{name}")


async def test_incidents_follow_their_agreement_and_leave_a_shard_when_pointed_elsewhere() -> None:
    clock = Clock()
    shards = shard_engines(clock)
    for engine, _ in shards:
        for name in NAMES:
            engine.upsert_agreement(agreement(name, uid=f"uid-{name}"), {})
            engine.upsert_incident(incident_of(name))
    for index, (engine, store) in enumerate(shards):
        assert {i.agreement for i in engine.incidents.values()} == {
            n for n in NAMES if owner(n) == index}
        await engine.evaluate_round()
        incident_writes = {key for kind, key, _ in store.statuses if kind is Kind.INCIDENT}
        assert incident_writes == {("shop", f"{n}-outage") for n in NAMES if owner(n) == index}
    # A person points an incident at an agreement of the other shard: it moves over.
    first = next(n for n in NAMES if owner(n) == 0)
    other = next(n for n in NAMES if owner(n) == 1)
    moved = replace(incident_of(first), agreement=other, owner_uid=f"uid-{other}")
    for engine, _ in shards:
        engine.upsert_incident(moved)
    assert moved.key not in shards[0][0].incidents
    assert shards[1][0].incidents[moved.key].agreement == other


async def test_every_shard_applies_a_window_but_only_one_writes_its_status() -> None:
    clock = Clock()
    shards = shard_engines(clock)
    for engine, _ in shards:
        for name in NAMES:
            engine.upsert_agreement(agreement(name, uid=f"uid-{name}"), {})
        for window in WINDOWS:
            engine.upsert_maintenance(MaintenanceWindow(
                namespace="shop", name=window, description=window, sla_names=tuple(NAMES),
                start=T0 - timedelta(hours=1), end=T0 + timedelta(hours=1)))
        await engine.evaluate_round()
    for index, (_, store) in enumerate(shards):
        states = {key[1]: status["state"] for kind, key, status in store.statuses
                  if kind is Kind.AGREEMENT}
        assert states and set(states.values()) == {"Maintenance"}
        window_writes = {key[1] for kind, key, _ in store.statuses if kind is Kind.MAINTENANCE}
        assert window_writes == {w for w in WINDOWS if owner(w) == index}


def invalid(kind: str, name: str, spec: dict[str, Any]) -> kopf.RawEvent:
    return {"type": "ADDED", "object": {  # type: ignore[typeddict-item]
        "apiVersion": "sla.dev/v1alpha1", "kind": kind,
        "metadata": {"namespace": "shop", "name": name, "uid": f"uid-{name}", "generation": 1,
                     "resourceVersion": "7"},
        "spec": spec}}


async def test_a_bad_spec_is_reported_by_the_shard_that_owns_the_object_only() -> None:
    clock = Clock()
    for index, (engine, store) in enumerate(shard_engines(clock)):
        memo = kopf.Memo(engine=engine, handled={})
        for name in NAMES[:4]:
            await agreement_event(invalid("ServiceLevelAgreement", name, {"objective": "200"}),
                                  memo=memo)
        for window in WINDOWS:
            await maintenance_event(invalid("MaintenanceWindow", window, {"duration": "soon"}),
                                    memo=memo)
        for name in NAMES[:4]:
            await incident_event(invalid("Incident", f"{name}-manual", {"agreement": name}),
                                 memo=memo)
        reported = {key[1] for key, reason, _ in store.events if reason == "InvalidSpec"}
        assert reported == ({n for n in NAMES[:4] if owner(n) == index}
                            | {w for w in WINDOWS if owner(w) == index}
                            | {f"{n}-manual" for n in NAMES[:4] if owner(n) == index})
        assert {key[1] for _, key, _ in store.statuses} <= reported


def test_metrics_say_which_shard_a_process_is() -> None:
    engine = Engine(RecordingStore(), EngineSettings(sharding=Sharding(3, 2)))  # type: ignore[arg-type]
    registry = CollectorRegistry()
    registry.register(EngineCollector(engine))
    text = generate_latest(registry).decode()
    assert 'sla_operator_shard{shard="2",shards="3"} 1.0' in text


async def test_every_shards_page_shows_every_agreement_and_its_metrics_only_its_own() -> None:
    clock = Clock()
    shards = shard_engines(clock)
    for engine, _ in shards:
        for name in NAMES:
            engine.upsert_agreement(agreement(name, uid=f"uid-{name}"), {})
            fail(engine, clock, name)
    clock.now += timedelta(seconds=1)
    for engine, _ in shards:
        await engine.evaluate_round()
    # Each shard's statuses reach the other through the watch, with its incidents.
    for index, (_, store) in enumerate(shards):
        other = shards[1 - index][0]
        for kind, key, status in store.statuses:
            if kind is Kind.AGREEMENT:
                other.note_status(key, f"uid-{key[1]}", status)
        for incident in store.created:
            other.upsert_incident(incident)
    for engine, _ in shards:
        engine.publish()
    for index, (engine, _) in enumerate(shards):
        views = {view.name: view for view in engine.snapshot.agreements}
        assert set(views) == set(NAMES)
        assert {view.state.value for view in views.values()} == {"Down"}
        assert all(view.period is not None for view in views.values())
        assert {i.agreement for i in engine.snapshot.incidents} == set(NAMES)
        assert {i.agreement for i in engine.incidents.values()} == {
            n for n in NAMES if owner(n) == index}  # only its own are counted or written
        registry = CollectorRegistry()
        registry.register(EngineCollector(engine))
        text = generate_latest(registry).decode()
        exported = {n for n in NAMES if f'agreement="{n}"' in text}
        assert exported == {n for n in NAMES if owner(n) == index}
    # A deleted agreement leaves the other shard's page too.
    gone = next(n for n in NAMES if owner(n) == 1)
    shards[0][0].remove_agreement(("shop", gone), f"uid-{gone}")
    assert gone not in {view.name for view in shards[0][0].snapshot.agreements}
