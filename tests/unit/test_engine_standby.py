"""A standby engine probes and writes nothing; a promoted one starts from the last statuses."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from engine_clock import T0, Clock
from test_engine_deletion import API, RecordingStore, agreement

from sla_operator.domain.model import ProbeResult, State
from sla_operator.engine import Engine, EngineSettings
from sla_operator.probes.scheduler import ProbeScheduler
from sla_operator.store.fence import WriteSwitch


class CountingScheduler(ProbeScheduler):
    def __init__(self) -> None:
        super().__init__(lambda *_: None)
        self.runs = 0

    async def run(self) -> None:
        self.runs += 1
        await asyncio.Event().wait()


async def test_a_standby_neither_probes_nor_writes_until_it_is_made_active() -> None:
    clock, store, switch = Clock(), RecordingStore(), WriteSwitch(active=False)
    scheduler = CountingScheduler()
    engine = Engine(store, EngineSettings(evaluate_interval=0.01), clock=clock,  # type: ignore[arg-type]
                    scheduler=scheduler, switch=switch)
    engine.upsert_agreement(agreement())
    running = asyncio.create_task(engine.run())
    try:
        await asyncio.sleep(0.1)
        assert scheduler.runs == 0 and store.statuses == []
        assert engine.health_problems(stale_after=60) == []  # waiting is healthy
        switch.active = True
        await asyncio.sleep(0.1)
        assert scheduler.runs == 1 and store.statuses
        switch.active = False  # the Lease is lost: probing stops at the next turn
        await asyncio.sleep(0.1)
        assert engine._probe_task is None
    finally:
        running.cancel()
        await asyncio.gather(running, return_exceptions=True)


async def test_taking_over_starts_each_agreement_from_the_status_the_leader_wrote_last() -> None:
    clock, store = Clock(), RecordingStore()
    engine = Engine(store, EngineSettings(), clock=clock)  # type: ignore[arg-type]
    web = agreement()
    engine.upsert_agreement(web, {})  # first seen hours ago, with the status of then
    engine.on_probe_result(web.key, API, ProbeResult(clock.now, True, 0.01, "200 OK"))
    clock.now = T0 + timedelta(hours=3)
    written_last = {
        "lastEvaluated": (clock.now - timedelta(seconds=6)).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "history": [{"period": "2026-10", "availability": "99.9500", "met": True}],
        "endpoints": [{"name": "api", "state": "Down", "since": "2026-11-26T06:59:00Z",
                       "consecutiveFailures": 4}]}
    engine.take_over([(web, written_last)], [])
    runtime = engine.agreements[web.key]
    assert runtime.history["2026-10"]["availability"] == "99.9500"
    assert runtime.healths["api"].state is State.DOWN  # the outage goes on, not opened again
    gap = runtime.unmonitored[-1]
    assert gap.end == clock.now and (gap.end - gap.start) <= timedelta(seconds=6)
    assert engine.scheduler.endpoint_count == 1
