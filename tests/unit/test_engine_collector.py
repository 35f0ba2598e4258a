"""The operator's garbage collector runs after rounds: the young every second, all once an
hour (less often while that finds little), and never on its own meanwhile. A recorder
stands in for the gc module (the test process's own collector is left alone); the engine
test runs the real one."""

from __future__ import annotations

import asyncio
import gc
from dataclasses import dataclass, field

import pytest
from test_engine_deletion import RecordingStore

from sla_operator.engine import Engine, EngineSettings
from sla_operator.engine.collector import (
    FEW_FOUND,
    FULL_EVERY_MAX_SECONDS,
    FULL_EVERY_SECONDS,
    YOUNG_EVERY_SECONDS,
    PacedCollector,
)


@dataclass
class Recorder:
    calls: list[str] = field(default_factory=list)
    enabled: bool = True
    found: int = 0
    """What each full collection reports it found."""

    def collect(self, generation: int = 2) -> int:
        self.calls.append(f"collect({generation})")
        return self.found if generation == 2 else 0

    def freeze(self) -> None:
        self.calls.append("freeze")

    def disable(self) -> None:
        self.calls.append("disable")
        self.enabled = False

    def enable(self) -> None:
        self.calls.append("enable")
        self.enabled = True

    def isenabled(self) -> bool:
        return self.enabled


@dataclass
class Clock:
    now: float = 1000.0

    def __call__(self) -> float:
        return self.now


def test_start_up_is_collected_once_and_frozen_before_the_collector_is_taken_over() -> None:
    recorder = Recorder()
    collector = PacedCollector(collector=recorder, monotonic=Clock())
    collector.after_round()  # not started: nothing
    collector.start()
    collector.start()  # once
    assert recorder.calls == ["collect(2)", "freeze", "disable"]
    assert not recorder.enabled


def test_a_round_collects_the_young_once_their_time_came_and_all_once_an_hour() -> None:
    recorder, clock = Recorder(), Clock()
    collector = PacedCollector(collector=recorder, monotonic=clock, young_every=5.0)
    collector.start()
    recorder.calls.clear()
    collected_after = []
    for round_number in range(1, 13):  # rounds 1 s apart
        clock.now += 1.0
        before = len(recorder.calls)
        collector.after_round()
        if len(recorder.calls) > before:
            collected_after.append(round_number)
    assert collected_after == [5, 10]
    assert recorder.calls == ["collect(0)", "collect(0)"]
    recorder.calls.clear()
    clock.now += FULL_EVERY_SECONDS
    collector.after_round()  # the hour is up: all generations, and the young with them
    clock.now += 1.0
    collector.after_round()
    assert recorder.calls == ["collect(2)"]
    clock.now += 4.0
    collector.after_round()
    assert recorder.calls == ["collect(2)", "collect(0)"]


def test_by_default_the_young_are_collected_after_every_round_a_second_apart() -> None:
    recorder, clock = Recorder(), Clock()
    collector = PacedCollector(collector=recorder, monotonic=clock)
    collector.start()
    recorder.calls.clear()
    for _ in range(3):
        clock.now += YOUNG_EVERY_SECONDS
        collector.after_round()
    clock.now += YOUNG_EVERY_SECONDS / 2
    collector.after_round()  # too soon after the last one
    assert recorder.calls == ["collect(0)"] * 3


def full_collections_at(collector: PacedCollector, recorder: Recorder, clock: Clock,
                        hours: int) -> list[int]:
    """The hours (since start) after which a full collection ran, one round per minute."""
    start, at = clock.now, []
    for minute in range(1, hours * 60 + 1):
        clock.now = start + minute * 60
        before = recorder.calls.count("collect(2)")
        collector.after_round()
        if recorder.calls.count("collect(2)") > before:
            at.append(minute // 60)
    return at


def test_full_collections_come_less_often_while_they_find_little() -> None:
    recorder, clock = Recorder(found=FEW_FOUND - 1), Clock()
    collector = PacedCollector(collector=recorder, monotonic=clock, young_every=1e9)
    collector.start()
    # After an hour, then 2, 4, 8 and 16 hours later, then once a day.
    assert full_collections_at(collector, recorder, clock, 24 * 4) == [1, 3, 7, 15, 31, 55, 79]
    assert FULL_EVERY_MAX_SECONDS == 24 * 3600


def test_a_full_collection_that_finds_garbage_brings_the_hour_back() -> None:
    recorder, clock = Recorder(), Clock()
    collector = PacedCollector(collector=recorder, monotonic=clock, young_every=1e9)
    collector.start()
    assert full_collections_at(collector, recorder, clock, 7) == [1, 3, 7]
    recorder.found = FEW_FOUND  # something makes cyclic garbage now: hourly after the next
    assert full_collections_at(collector, recorder, clock, 12) == [8, 9, 10, 11, 12]
    recorder.found = 0
    assert full_collections_at(collector, recorder, clock, 8) == [1, 3, 7]


def test_stop_hands_collections_back_only_if_they_were_automatic_before() -> None:
    recorder = Recorder()
    collector = PacedCollector(collector=recorder, monotonic=Clock())
    collector.start()
    collector.stop()
    assert recorder.enabled and recorder.calls[-1] == "enable"
    collector.after_round()  # stopped: nothing more
    assert recorder.calls[-1] == "enable"

    manual = Recorder(enabled=False)  # a program that runs its collections itself
    collector = PacedCollector(collector=manual, monotonic=Clock())
    collector.start()
    collector.stop()
    assert not manual.enabled and "enable" not in manual.calls


async def test_an_engine_set_to_pace_the_collector_takes_it_over_while_it_runs_and_gives_it_back(
        monkeypatch: pytest.MonkeyPatch) -> None:
    recorder = Recorder()
    monkeypatch.setattr("sla_operator.engine.collector.gc", recorder)
    monkeypatch.setattr("sla_operator.engine.collector.YOUNG_EVERY_SECONDS", 0.0)
    engine = Engine(RecordingStore(), EngineSettings(pace_collector=True, evaluate_interval=0.01))
    task = asyncio.create_task(engine.run())
    async with asyncio.timeout(30):
        while recorder.calls.count("collect(0)") < 1:
            await asyncio.sleep(0.01)
    assert recorder.calls[:3] == ["collect(2)", "freeze", "disable"]
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    assert recorder.calls[-1] == "enable" and recorder.enabled


async def test_an_engine_in_another_program_leaves_its_collector_alone() -> None:
    engine = Engine(RecordingStore(), EngineSettings(evaluate_interval=0.01))
    assert engine.settings.pace_collector is False
    task = asyncio.create_task(engine.run())
    await asyncio.sleep(0.05)
    assert gc.isenabled()
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    assert gc.isenabled()
