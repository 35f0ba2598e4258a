"""On the way out every agreement's status is written once more, several at once."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

import pytest
from engine_clock import Clock
from test_engine_deletion import RecordingStore, agreement

from sla_operator.domain.model import IncidentState, ProbeResult
from sla_operator.engine import (
    ROUTINE_WRITES_AT_ONCE,
    SHUTDOWN_WRITE_SECONDS,
    SHUTDOWN_WRITES_AT_ONCE,
    WRITES_AT_ONCE,
    Engine,
    EngineSettings,
)
from sla_operator.store.base import Key, Kind

pytestmark = pytest.mark.looptime  # the writes take event-loop time, not real time

AGREEMENTS = 320
WRITE_SECONDS = 0.5  # one after another, 320 writes would take 160 s: far beyond the cap


class SlowStore(RecordingStore):
    """Each status write takes WRITE_SECONDS; counts how many are under way at once."""

    def __init__(self) -> None:
        super().__init__()
        self.under_way = 0
        self.most_under_way = 0

    async def write_status(self, kind: Kind, key: Key, status: Mapping[str, Any]) -> None:
        self.under_way += 1
        self.most_under_way = max(self.most_under_way, self.under_way)
        try:
            await asyncio.sleep(WRITE_SECONDS)
        finally:
            self.under_way -= 1
        await super().write_status(kind, key, status)


def engine_with_agreements(store: SlowStore, settings: EngineSettings) -> tuple[Engine, set[Key]]:
    engine = Engine(store, settings, clock=Clock())  # type: ignore[arg-type]
    keys = set()
    for index in range(AGREEMENTS):
        web = agreement(f"web-{index}", uid=f"uid-{index}")
        engine.upsert_agreement(web)
        keys.add(web.key)
    return engine, keys


async def test_every_status_is_written_within_the_cap_when_each_write_takes_a_while() -> None:
    assert AGREEMENTS * WRITE_SECONDS / SHUTDOWN_WRITES_AT_ONCE < SHUTDOWN_WRITE_SECONDS
    store = SlowStore()
    engine, keys = engine_with_agreements(store, EngineSettings())

    await engine._last_words()

    assert {key for kind, key, _ in store.statuses if kind is Kind.AGREEMENT} == keys
    assert 1 < store.most_under_way <= SHUTDOWN_WRITES_AT_ONCE


async def test_a_round_writes_several_first_statuses_at_once_and_no_more_than_its_share() -> None:
    # New agreements need their first status at once; one write after another, 320 of them
    # would wait 160 s for the last. The cap (50/s) still bounds what one round sends.
    store = SlowStore()
    engine, keys = engine_with_agreements(
        store, EngineSettings(max_status_writes_per_second=0, round_seconds=3600))

    await engine.evaluate_round()

    assert {key for kind, key, _ in store.statuses if kind is Kind.AGREEMENT} == keys
    assert 1 < store.most_under_way <= WRITES_AT_ONCE


async def test_first_evaluations_beyond_a_rounds_time_wait_for_the_next_rounds() -> None:
    # No time at all: each round still evaluates one batch, and leaves the rest for the next
    # rounds (which then start at once), so a thousand at start-up never hold the loop.
    store = SlowStore()
    engine, keys = engine_with_agreements(
        store, EngineSettings(max_status_writes_per_second=0, round_seconds=0))
    rounds = 0
    while len({key for kind, key, _ in store.statuses if kind is Kind.AGREEMENT}) < len(keys):
        written = len(store.statuses)
        await engine.evaluate_round()
        rounds += 1
        assert 0 < len(store.statuses) - written <= WRITES_AT_ONCE
        assert engine._left_over == (rounds < AGREEMENTS / WRITES_AT_ONCE)
    assert rounds == AGREEMENTS / WRITES_AT_ONCE


async def test_first_statuses_wait_for_the_budget_instead_of_being_evaluated_twice() -> None:
    store = SlowStore()
    engine, _ = engine_with_agreements(
        store, EngineSettings(max_status_writes_per_second=50, round_seconds=3600))
    await engine.evaluate_round()
    evaluated = [r for r in engine.agreements.values() if r.last_evaluated is not None]
    assert len(evaluated) <= 50 + WRITES_AT_ONCE  # the burst, and those already in flight
    assert not any(r.write_pending for r in engine.agreements.values()
                   if r.last_evaluated is None)


async def test_the_last_writes_begin_with_the_statuses_written_longest_ago() -> None:
    store = RecordingStore()
    clock = Clock()
    engine = Engine(store, EngineSettings(), clock=clock)  # type: ignore[arg-type]
    names = ["web-0", "web-1", "web-2"]
    for index, name in enumerate(names):
        engine.upsert_agreement(agreement(name, uid=f"uid-{index}"))
    await engine.evaluate_round()
    # Written again at different times: web-1 long ago, web-0 lately, web-2 in between.
    for name, minutes in (("web-1", 1), ("web-2", 5), ("web-0", 9)):
        engine.agreements[("shop", name)].last_written_at = clock.now + timedelta(minutes=minutes)
    store.statuses.clear()
    clock.now += timedelta(seconds=10)  # shutdown comes later: every status has news
    await engine.evaluate_round(force=True, concurrency=1)
    assert [key[1] for kind, key, _ in store.statuses if kind is Kind.AGREEMENT] == [
        "web-1", "web-2", "web-0"]


class ClockedStore(RecordingStore):
    """Each status write moves the engine's clock on by a tenth of a second."""

    def __init__(self, clock: Clock) -> None:
        super().__init__()
        self.clock = clock

    async def write_status(self, kind: Kind, key: Key, status: Mapping[str, Any]) -> None:
        self.clock.now += timedelta(seconds=0.1)
        await super().write_status(kind, key, status)


async def test_the_budget_refills_while_a_long_round_writes() -> None:
    # 10 writes a second, each write taking a tenth of a second: the budget earns a token per
    # write and every first status goes out in this one round. A budget read at the round's
    # start would stop after the 10 it began with, however long the round.
    clock = Clock()
    store = ClockedStore(clock)
    engine = Engine(store, EngineSettings(max_status_writes_per_second=10, round_seconds=3600),  # type: ignore[arg-type]
                    clock=clock)
    for index in range(50):
        engine.upsert_agreement(agreement(f"web-{index}", uid=f"uid-{index}"))
    await engine.evaluate_round(concurrency=1)
    written = [key for kind, key, _ in store.statuses if kind is Kind.AGREEMENT]
    assert len(written) == 50
    assert engine.writes.sent == 50


HELD_STATUS = {"state": "Up"}  # what web's status said when the previous process stopped


def restarted(clock: Clock) -> tuple[Engine, RecordingStore]:
    """An engine started again a minute after the last status of ``web`` (which said Up)."""
    store = RecordingStore()
    engine = Engine(store, EngineSettings(), clock=clock)  # type: ignore[arg-type]
    last = (clock.now - timedelta(minutes=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    engine.upsert_agreement(agreement("web"), {**HELD_STATUS, "lastEvaluated": last})
    return engine, store


def agreement_states(store: RecordingStore) -> list[str]:
    """The state web's status holds after each write (a write is a merge patch)."""
    held, states = dict(HELD_STATUS), []
    for kind, _, status in store.statuses:
        if kind is Kind.AGREEMENT:
            held.update(status)
            states.append(held["state"])
    return states


async def test_after_a_restart_the_first_status_waits_for_the_endpoints_first_probe() -> None:
    clock = Clock()
    engine, store = restarted(clock)
    await engine.evaluate_round()
    assert agreement_states(store) == []  # not "Unknown" for the moment before the probe
    (endpoint,) = engine.agreements[("shop", "web")].agreement.endpoints
    engine.on_probe_result(("shop", "web"), endpoint, ProbeResult(clock.now, True, 0.01, "200 OK"))
    await engine.evaluate_round()
    assert agreement_states(store) == ["Up"]


async def test_after_a_restart_an_endpoint_not_answering_holds_the_status_one_interval_at_most(
        ) -> None:
    clock = Clock()
    engine, store = restarted(clock)
    (endpoint,) = engine.agreements[("shop", "web")].agreement.endpoints
    clock.now += endpoint.interval + endpoint.timeout - timedelta(milliseconds=1)
    await engine.evaluate_round()
    assert agreement_states(store) == []
    clock.now += timedelta(milliseconds=1)
    await engine.evaluate_round()
    assert agreement_states(store) == ["Unknown"]



def restarted_at_once(clock: Clock, endpoints: list[dict[str, Any]]) -> tuple[Engine, RecordingStore]:
    """An engine started again the moment after the last status of ``web`` (which said Up)."""
    store = RecordingStore()
    engine = Engine(store, EngineSettings(), clock=clock)  # type: ignore[arg-type]
    engine.upsert_agreement(agreement("web"), {**HELD_STATUS, "endpoints": endpoints,
                                               "lastEvaluated": clock.now.strftime("%Y-%m-%dT%H:%M:%SZ")})
    return engine, store


UP_SINCE = "2026-11-26T03:00:00Z"


async def test_a_restart_moments_later_carries_the_endpoints_over_and_writes_at_once() -> None:
    clock = Clock()
    engine, store = restarted_at_once(clock, [
        {"name": "api", "state": "Up", "since": UP_SINCE, "consecutiveSuccesses": 40}])
    await engine.evaluate_round()  # no probe yet: the state carried over stands
    assert agreement_states(store) == ["Up"]
    (written,) = store.written_for(("shop", "web"))
    assert written["endpoints"][0]["since"] == UP_SINCE
    # The next probes decide as usual: one failure is an outage for this endpoint.
    (endpoint,) = engine.agreements[("shop", "web")].agreement.endpoints
    clock.now += endpoint.interval
    engine.on_probe_result(("shop", "web"), endpoint, ProbeResult(clock.now, False, 0.01, "503"))
    await engine.evaluate_round()
    assert agreement_states(store) == ["Up", "Down"]


async def test_a_crash_right_after_an_incident_opened_does_not_resolve_it_on_the_older_status(
        ) -> None:
    # The incident was recorded, then the process died before the status saying Down went
    # out: the status read back still says Up. That Up predates the incident; it carries the
    # endpoint over for the figures, but only a probe can say the outage is over.
    clock = Clock()
    first = RecordingStore()
    engine = Engine(first, EngineSettings(), clock=clock)  # type: ignore[arg-type]
    engine.upsert_agreement(agreement("web"))
    (endpoint,) = engine.agreements[("shop", "web")].agreement.endpoints
    engine.on_probe_result(("shop", "web"), endpoint, ProbeResult(clock.now, False, 0.01, "503"))
    await engine.evaluate_round()
    (opened,) = first.created
    clock.now += timedelta(seconds=1)
    engine, store = restarted_at_once(clock, [
        {"name": "api", "state": "Up", "since": UP_SINCE, "consecutiveSuccesses": 40}])
    engine.upsert_incident(opened)
    await engine.evaluate_round()
    assert store.changes == [] and store.created == []
    assert [s["openIncidents"] for s in store.written_for(("shop", "web"))] == [[opened.name]]
    clock.now += endpoint.interval  # still failing: the same incident, nothing opened again
    engine.on_probe_result(("shop", "web"), endpoint, ProbeResult(clock.now, False, 0.01, "503"))
    await engine.evaluate_round()
    assert store.changes == [] and store.created == []
    clock.now += endpoint.interval  # answering again: now it is resolved, dated by the probe
    engine.on_probe_result(("shop", "web"), endpoint, ProbeResult(clock.now, True, 0.01, "200"))
    await engine.evaluate_round()
    ((resolved, change),) = store.changes
    assert resolved.name == opened.name and change.fields["resolved_at"] == clock.now
    assert change.fields["state"] is IncidentState.RESOLVED


async def test_an_endpoint_an_open_outage_is_about_is_not_carried_over_as_up() -> None:
    # The records come before the statuses (local mode's order, a take-over's): an Up from
    # a status older than the open outage is not carried over, and the service is not
    # shown Up beside its open outage; the endpoint waits for its first probe.
    clock = Clock()
    first = RecordingStore()
    engine = Engine(first, EngineSettings(), clock=clock)  # type: ignore[arg-type]
    engine.upsert_agreement(agreement("web"))
    (endpoint,) = engine.agreements[("shop", "web")].agreement.endpoints
    engine.on_probe_result(("shop", "web"), endpoint, ProbeResult(clock.now, False, 0.01, "503"))
    await engine.evaluate_round()
    (opened,) = first.created
    clock.now += timedelta(seconds=1)
    store = RecordingStore()
    engine = Engine(store, EngineSettings(), clock=clock)  # type: ignore[arg-type]
    engine.upsert_incident(opened)
    engine.upsert_agreement(agreement("web"), {
        **HELD_STATUS, "lastEvaluated": clock.now.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "endpoints": [{"name": "api", "state": "Up", "since": UP_SINCE, "consecutiveSuccesses": 40}]})
    assert "api" not in engine.agreements[("shop", "web")].healths
    await engine.evaluate_round()
    assert agreement_states(store) == []  # not "Up" beside the open outage
    engine.on_probe_result(("shop", "web"), endpoint, ProbeResult(clock.now, False, 0.01, "503"))
    await engine.evaluate_round()
    assert agreement_states(store) == ["Down"] and store.created == [] and store.changes == []


@pytest.mark.parametrize("entry", [
    {"name": "api", "state": "Up", "since": "yesterday", "consecutiveSuccesses": 40},
    {"name": "api", "state": "Up", "since": UP_SINCE, "consecutiveSuccesses": True},
    {"name": "api", "state": "Degraded", "since": UP_SINCE, "consecutiveSuccesses": 3},
    {"name": "api", "state": "Down", "since": UP_SINCE, "consecutiveFailures": 3},
    {"name": "gone", "state": "Up", "since": UP_SINCE, "consecutiveSuccesses": 3},
])
async def test_an_endpoint_not_carried_over_is_waited_for_as_before(entry: dict[str, Any]) -> None:
    clock = Clock()
    engine, store = restarted_at_once(clock, [entry])
    await engine.evaluate_round()
    assert agreement_states(store) == []
    (endpoint,) = engine.agreements[("shop", "web")].agreement.endpoints
    engine.on_probe_result(("shop", "web"), endpoint, ProbeResult(clock.now, True, 0.01, "200 OK"))
    await engine.evaluate_round()
    assert agreement_states(store) == ["Up"]


async def test_a_round_starts_no_write_after_its_write_time_and_the_next_round_goes_on() -> None:
    # Writes that take half a second each (a slow API server), a second to start them: each
    # round writes a few and leaves the rest to the next one, instead of keeping new
    # agreements and state changes waiting for all 320.
    store = SlowStore()
    engine, _ = engine_with_agreements(
        store, EngineSettings(max_status_writes_per_second=0, round_seconds=3600,
                              write_seconds=0))
    for runtime in engine.agreements.values():
        runtime.last_written = {}  # written before: what is due now are routine refreshes
        runtime.last_evaluated = engine.clock()
        runtime.refresh_at = engine.clock()
        runtime.dirty = False
    await engine.evaluate_round()
    assert engine._left_over and len(store.statuses) <= WRITES_AT_ONCE


async def test_routine_refreshes_take_half_the_writes_in_flight_and_first_statuses_all() -> None:
    # A busy API server makes every request wait longer for each one in flight: routine
    # refreshes leave room for a new agreement's first status and for other clients.
    store = SlowStore()
    engine, keys = engine_with_agreements(
        store, EngineSettings(max_status_writes_per_second=0, round_seconds=3600,
                              write_seconds=3600))
    await engine.evaluate_round()
    assert store.most_under_way == WRITES_AT_ONCE  # first statuses
    engine.clock.now += timedelta(seconds=10)  # type: ignore[attr-defined]
    for runtime in engine.agreements.values():
        runtime.refresh_at = engine.clock()
    store.statuses.clear()
    store.most_under_way = 0
    await engine.evaluate_round()
    assert {key for kind, key, _ in store.statuses if kind is Kind.AGREEMENT} == keys
    assert store.most_under_way == ROUTINE_WRITES_AT_ONCE < WRITES_AT_ONCE


class ArrivingStore(RecordingStore):
    """While the ``arrive_at``-th status write goes out, a new agreement is applied."""

    def __init__(self) -> None:
        super().__init__()
        self.engine: Engine | None = None
        self.arrive_at: int | None = None

    async def write_status(self, kind: Kind, key: Key, status: Mapping[str, Any]) -> None:
        await super().write_status(kind, key, status)
        if self.engine is not None and len(self.statuses) == self.arrive_at:
            self.arrive_at = None
            self.engine.upsert_agreement(agreement("new", uid="uid-new"))


async def test_an_agreement_applied_while_refreshes_go_out_is_written_before_the_rest() -> None:
    clock, store = Clock(), ArrivingStore()
    engine = Engine(store, EngineSettings(status_interval=5), clock=clock)  # type: ignore[arg-type]
    store.engine = engine
    names = [f"web-{index}" for index in range(20)]
    for index, name in enumerate(names):
        engine.upsert_agreement(agreement(name, uid=f"uid-{index}"))
    await engine.evaluate_round(concurrency=1)
    store.statuses.clear()
    clock.now += timedelta(seconds=10)  # every status is due for its refresh
    store.arrive_at = 3
    await engine.evaluate_round(concurrency=1)
    refreshed = [key[1] for kind, key, _ in store.statuses if kind is Kind.AGREEMENT]
    assert len(refreshed) == 3  # no refresh was started after the arrival
    store.statuses.clear()
    await engine.evaluate_round(concurrency=1)
    written = [key[1] for kind, key, _ in store.statuses if kind is Kind.AGREEMENT]
    assert written[0] == "new"
    assert sorted(written[1:]) == sorted(set(names) - set(refreshed))  # the rest follow


@pytest.mark.parametrize(("cpu", "pause"), [(0.0, 0.05), (0.3, 0.3), (5.0, 1.0)])
async def test_after_a_round_that_left_work_over_the_pause_is_as_long_as_its_evaluations(
        cpu: float, pause: float) -> None:
    # A thousand first statuses due together take at most about half the loop: the probes
    # keep their schedule in between. Never longer than the evaluation interval.
    engine = Engine(RecordingStore(), EngineSettings(evaluate_interval=1.0),  # type: ignore[arg-type]
                    clock=Clock())
    engine._left_over, engine._round_cpu = True, cpu
    loop = asyncio.get_running_loop()
    began = loop.time()
    await engine._pause()
    assert loop.time() - began == pytest.approx(pause, abs=1e-3)
