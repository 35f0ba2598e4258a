"""Routine status writes for what people read; the rest at the heartbeat (--status-heartbeat),
and a take-over that knows from the Lease until when the previous writer was alive."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

from engine_clock import API, SECOND, T0, Clock
from test_status_patches import KEY, MergingStore

from sla_operator.domain.model import Agreement, ProbeResult
from sla_operator.engine import Engine, EngineSettings
from sla_operator.engine.writes import heartbeat_due, shown_part

HEARTBEAT = 300.0


def agreement() -> Agreement:
    return Agreement(namespace="shop", name="web", service="Web", objective=Decimal("99.9"),
                     endpoints=(API,), created_at=T0, uid="uid-1")


def engine_with(store: MergingStore, clock: Clock, heartbeat: float = HEARTBEAT) -> Engine:
    return Engine(store, EngineSettings(status_interval=10, status_heartbeat=heartbeat),  # type: ignore[arg-type]
                  clock=clock)


async def run_for(engine: Engine, clock: Clock, seconds: int, ok: bool = True) -> None:
    """A probe result and an evaluation round every second for ``seconds``."""
    for _ in range(seconds):
        clock.now += SECOND
        engine.on_probe_result(KEY, API, ProbeResult(clock.now, ok, 0.01 + (clock.now.second % 7) / 1000,
                                                     "200 OK" if ok else "connection refused"))
        await engine.evaluate_round()


def written_at(store: MergingStore) -> list[str]:
    return [sent["lastEvaluated"] for sent in store.sent if "lastEvaluated" in sent]


async def test_a_healthy_agreement_is_written_at_its_heartbeat_not_at_every_refresh() -> None:
    clock, store = Clock(), MergingStore()
    engine = engine_with(store, clock)
    engine.upsert_agreement(agreement())
    await run_for(engine, clock, 60)  # first status, then the day's bar gets its figures
    settled = len(store.sent)
    await run_for(engine, clock, 900)
    # 90 routine refreshes (every 10 s) changed only probe times, latencies and seconds:
    # written three times, once per heartbeat, each one whole-status-worth of news.
    assert len(store.sent) - settled == 3
    times = written_at(store)[-3:]
    assert all(
        timedelta(seconds=HEARTBEAT) <= b - a <= timedelta(seconds=HEARTBEAT + 10)
        for a, b in zip(*(map(_parse, times[:-1]), map(_parse, times[1:])), strict=True))
    # What the object holds is what the engine computed, probe times at the last heartbeat.
    assert shown_part(store.held[KEY]) == shown_part(engine.agreements[KEY].last_written or {})


async def test_a_change_people_read_is_written_at_once_and_downtime_at_every_refresh() -> None:
    clock, store = Clock(), MergingStore()
    engine = engine_with(store, clock)
    engine.upsert_agreement(agreement())
    await run_for(engine, clock, 60)
    before = len(store.sent)
    await run_for(engine, clock, 3, ok=False)  # the third failure: Down, written at once
    down = store.sent[before:]
    assert [s.get("state") for s in down if "state" in s][-1] == "Down"
    during = len(store.sent)
    await run_for(engine, clock, 60, ok=False)
    # Downtime grows while Down, and the figures people read with it: every refresh (10 s).
    assert 5 <= len(store.sent) - during <= 7
    assert store.held[KEY]["currentPeriod"]["downtimeSeconds"] >= 50


async def test_without_a_heartbeat_every_refresh_writes_as_before() -> None:
    clock, store = Clock(), MergingStore()
    engine = engine_with(store, clock, heartbeat=0)
    engine.upsert_agreement(agreement())
    await run_for(engine, clock, 60)
    settled = len(store.sent)
    await run_for(engine, clock, 300)
    assert 29 <= len(store.sent) - settled <= 31


def test_the_shown_part_leaves_out_only_what_moves_with_time_alone() -> None:
    status: dict[str, Any] = {
        "state": "Up", "lastEvaluated": "2026-11-26T04:00:00Z",
        "currentPeriod": {"availability": "99.9000", "elapsedSeconds": 5, "eligibleSeconds": 4,
                          "downtimeSeconds": 1},
        "endpoints": [{"name": "api", "state": "Up", "lastProbeTime": "t", "latencyMs": 3,
                       "consecutiveSuccesses": 9, "consecutiveFailures": 0, "message": "200 OK",
                       "locations": [{"name": "a", "state": "Up", "lastProbeTime": "t",
                                      "message": "200 OK"}]}]}
    assert shown_part(status) == {
        "state": "Up",
        "currentPeriod": {"availability": "99.9000", "downtimeSeconds": 1},
        "endpoints": [{"name": "api", "state": "Up", "consecutiveFailures": 0, "message": "200 OK",
                       "locations": [{"name": "a", "state": "Up", "message": "200 OK"}]}]}
    # A hostile status read back (lists of strings, no objects) is compared as it is.
    assert shown_part({"endpoints": ["x", {"locations": "y"}]}) == {
        "endpoints": ["x", {"locations": "y"}]}


async def _restart(alive_until_after_write: timedelta | None, gap: timedelta,
                   heartbeat: float = HEARTBEAT) -> Engine:
    """An engine wrote a status, then stopped writing (nothing to say); it stopped being alive
    ``alive_until_after_write`` later; another takes over ``gap`` after the write."""
    clock, store = Clock(), MergingStore()
    first = engine_with(store, clock, heartbeat)
    first.upsert_agreement(agreement())
    await run_for(first, clock, 60)
    status = dict(store.held[KEY])
    written = _parse(status["lastEvaluated"])
    clock.now = written + gap
    second = engine_with(store, clock, heartbeat)
    alive = None if alive_until_after_write is None else written + alive_until_after_write
    second.take_over([(agreement(), status)], [], alive)
    return second


async def test_a_take_over_counts_the_time_until_the_previous_writers_last_renewal_as_monitored() -> None:
    # Written 200 s before its last renewal (within a heartbeat: it had nothing to say), taken
    # over 15 s after that renewal: only those 15 s are unmonitored (from the second after it).
    second = await _restart(timedelta(seconds=200), timedelta(seconds=215))
    (gap,) = gaps_after_start(second)
    assert gap.seconds == 14
    # Without the Lease's word the same status is 215 s old: all of it unmonitored.
    alone = await _restart(None, timedelta(seconds=215))
    (gap,) = gaps_after_start(alone)
    assert gap.seconds == 214
    # Taken over the moment the Lease ran out: nothing unmonitored, and the Up it wrote stood
    # until then, so it is carried over as after a restart moments after a write.
    prompt = await _restart(timedelta(seconds=200), timedelta(seconds=201))
    assert gaps_after_start(prompt) == []
    assert "api" in prompt.agreements[KEY].carried
    assert "api" not in (await _restart(None, timedelta(seconds=201))).agreements[KEY].carried


async def test_a_status_older_than_a_heartbeat_before_the_renewal_keeps_its_own_time() -> None:
    # A writer alive for 20 minutes after its last write of this status was not writing it:
    # its renewals say nothing about this agreement.
    second = await _restart(timedelta(minutes=20), timedelta(minutes=20, seconds=15))
    (gap,) = gaps_after_start(second)
    assert gap.seconds == 20 * 60 + 14
    # A renewal from a clock ahead of this one (after now) is no evidence either.
    ahead = await _restart(timedelta(seconds=30), timedelta(seconds=20))
    (gap,) = gaps_after_start(ahead)
    assert gap.seconds == 19  # the status's own time stands
    late = await _restart(timedelta(seconds=400), timedelta(seconds=200))
    (gap,) = gaps_after_start(late)
    assert gap.seconds == 199


def gaps_after_start(engine: Engine) -> list[Any]:
    """Unmonitored gaps but the first (the second before the first probe result)."""
    return [g for g in engine.agreements[KEY].unmonitored if g.start > T0 + SECOND]


def _parse(text: str) -> Any:
    from sla_operator.domain.fields import parse_time
    return parse_time(text, "lastEvaluated")


def test_heartbeats_of_statuses_written_together_spread_over_the_heartbeat() -> None:
    written = T0
    due = sorted(heartbeat_due(("shop", f"web-{i}"), written, HEARTBEAT) for i in range(1000))
    assert written + timedelta(seconds=HEARTBEAT / 2) <= due[0]
    assert due[-1] < written + timedelta(seconds=1.5 * HEARTBEAT)
    per_minute = [sum(1 for d in due if d < written + timedelta(seconds=150 + 60 * (m + 1))
                      and d >= written + timedelta(seconds=150 + 60 * m)) for m in range(5)]
    assert all(120 <= n <= 280 for n in per_minute), per_minute  # about 200 a minute each
    # In phase, the next is one heartbeat later.
    key = ("shop", "web-1")
    first = heartbeat_due(key, written, HEARTBEAT)
    assert heartbeat_due(key, first, HEARTBEAT) == first + timedelta(seconds=HEARTBEAT)
