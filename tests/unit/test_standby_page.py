"""A standby shows on its page what the Lease holder wrote in the statuses, read as untrusted."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from engine_clock import T0, Clock
from prometheus_client import CollectorRegistry, generate_latest
from test_engine_deletion import API, RecordingStore, agreement, fail

from sla_operator.domain.model import ProbeResult, State, Window, WindowType
from sla_operator.domain.published import read_published
from sla_operator.domain.statuspage import build_status_page
from sla_operator.engine import Engine, EngineSettings
from sla_operator.metrics import EngineCollector
from sla_operator.store.base import Kind
from sla_operator.store.fence import WriteSwitch


async def leader_status(hours: int = 30) -> tuple[dict[str, Any], Engine]:
    """What a leader writes after ``hours`` of probing, ending in an outage."""
    clock, store = Clock(), RecordingStore()
    engine = Engine(store, EngineSettings(status_interval=5), clock=clock)  # type: ignore[arg-type]
    public = replace(agreement(), status_page=replace(agreement().status_page, public=True))
    engine.upsert_agreement(public, {})
    for _ in range(hours * 6):  # a probe every 10 minutes keeps it monitored
        engine.on_probe_result(public.key, API, ProbeResult(clock.now, True, 0.01, "200 OK"))
        await engine.evaluate_round()
        clock.now += timedelta(minutes=10)
    fail(engine, clock)
    await engine.evaluate_round()
    written = [s for kind, _, s in store.statuses if kind is Kind.AGREEMENT]
    return written[-1], engine


async def test_a_standby_shows_the_figures_the_leader_wrote() -> None:
    status, leader = await leader_status()
    assert status["state"] == "Down"
    standby = Engine(RecordingStore(), EngineSettings(evaluate_interval=0.01),  # type: ignore[arg-type]
                     clock=leader.clock, switch=WriteSwitch(active=False))
    standby.upsert_agreement(leader.agreements[("shop", "web")].agreement, status)
    running = asyncio.create_task(standby.run())
    try:
        await asyncio.sleep(0.05)
        shown = standby.snapshot.agreement("shop", "web")
        truth = leader.snapshot.agreement("shop", "web")
        assert shown is not None and truth is not None
        assert shown.state is State.DOWN
        assert shown.period is not None and truth.period is not None
        assert shown.period.label == truth.period.label
        assert shown.period.availability == pytest.approx(truth.period.availability, abs=1e-6)
        assert shown.period.downtime_seconds == round(truth.period.downtime_seconds)
        assert shown.days == tuple(replace(d, availability=None if d.availability is None else
                                           float(Decimal(repr(d.availability)).quantize(
                                               Decimal("0.000001"), rounding="ROUND_FLOOR")),
                                           downtime_seconds=round(d.downtime_seconds),
                                           maintenance_seconds=round(d.maintenance_seconds),
                                           excluded_seconds=round(d.excluded_seconds),
                                           unmonitored_seconds=round(d.unmonitored_seconds))
                                   for d in truth.days)
        page = build_status_page(standby.snapshot)
        leaders_page = build_status_page(leader.snapshot)
        assert [a.state for a in page.agreements] == [State.DOWN]
        assert [a.availability for a in page.agreements] == \
            [a.availability for a in leaders_page.agreements]
        assert [a.bars for a in page.agreements] == [a.bars for a in leaders_page.agreements]

        # A newer status arrives through the watch: the page follows it.
        recovered = {**status, "state": "Up"}
        standby.note_status(("shop", "web"), "uid-1", recovered)
        await asyncio.sleep(0.05)
        view = standby.snapshot.agreement("shop", "web")
        assert view is not None and view.state is State.UP
        # ... but not a status of an earlier object of that name.
        standby.note_status(("shop", "web"), "uid-0", status)
        await asyncio.sleep(0.05)
        view = standby.snapshot.agreement("shop", "web")
        assert view is not None and view.state is State.UP
    finally:
        running.cancel()
        await asyncio.gather(running, return_exceptions=True)


async def test_a_standby_exports_no_agreement_series_the_leader_exports_them() -> None:
    status, leader = await leader_status(hours=1)
    standby = Engine(RecordingStore(), clock=leader.clock,  # type: ignore[arg-type]
                     switch=WriteSwitch(active=False))
    standby.upsert_agreement(leader.agreements[("shop", "web")].agreement, status)
    standby.publish()

    def scrape(engine: Engine) -> str:
        registry = CollectorRegistry()
        registry.register(EngineCollector(engine))
        return generate_latest(registry).decode()

    assert "sla_availability_ratio{" not in scrape(standby)
    assert "sla_operator_leader 0.0" in scrape(standby)
    assert "sla_availability_ratio{" in scrape(leader)


@pytest.mark.parametrize(("status", "path"), [
    ({"state": "Sideways"}, "status.state"),
    ({"currentPeriod": {"label": "2026-11", "start": "2026-11-01T00:00:00Z",
                        "end": "2026-12-01T00:00:00Z", "availability": "n/a"}},
     "status.currentPeriod.availability"),
    ({"currentPeriod": "everything fine"}, "status.currentPeriod"),
    ({"daily": [{"date": "yesterday", "availability": "100.0000"}]}, "status.daily[0].date"),
    ({"daily": [{"date": "2026-11-26", "availability": "250"}]}, "status.daily[0].availability"),
    ({"daily": "all green"}, "status.daily"),
    ({"daily": [{"date": "2026-11-26", "days": 10**9, "availability": None}]}, "status.daily[0].days"),
    ({"daily": [{"date": "2026-11-26", "days": 0, "availability": None}]}, "status.daily[0].days"),
    ({"history": [{"period": "2026-10", "availability": "<b>100</b>"}]},
     "status.history[0].availability"),
])
def test_a_status_part_that_is_not_what_the_operator_writes_is_left_out(
        status: dict[str, Any], path: str) -> None:
    published = read_published(status, Decimal("99.9"))
    assert [p.path for p in published.problems] == [path]
    assert published.period is None and published.days == () and published.last_closed is None


def test_a_good_status_is_read_whole_and_bad_days_do_not_drop_good_ones() -> None:
    status = {
        "state": "Degraded", "lastEvaluated": "2026-11-26T04:00:00Z",
        "currentPeriod": {"label": "2026-11", "start": "2026-11-01T00:00:00Z",
                          "end": "2026-12-01T00:00:00Z", "availability": "99.5000",
                          "elapsedSeconds": 100, "eligibleSeconds": 100, "downtimeSeconds": 0.5,
                          "maintenanceSeconds": 0, "excludedSeconds": 0, "unmonitoredSeconds": 0,
                          "incidents": 1, "errorBudget": {"totalSeconds": 1, "remainingSeconds": -2,
                                                          "remainingRatio": "-2.0000"}},
        "daily": [{"date": "2026-11-25", "availability": None}, {"date": "bad"},
                  {"date": "2026-11-26", "availability": "100.0000", "downtimeSeconds": 0}],
        "endpoints": [{"name": "api", "state": "Degraded"}],
        "history": [{"period": "2026-10", "availability": "99.9500"}],
    }
    published = read_published(status, Decimal("99.9"))
    assert published.state is State.DEGRADED and published.endpoints == {"api": State.DEGRADED}
    assert published.period is not None and published.period.availability == pytest.approx(0.995)
    assert not published.period.met and published.period.budget_remaining_ratio == -2.0
    assert [d.date.isoformat() for d in published.days] == ["2026-11-25", "2026-11-26"]
    assert published.last_closed is not None and published.last_closed.label == "2026-10"
    assert published.last_evaluated == T0
    assert [p.path for p in published.problems] == ["status.daily[1].date"]


async def test_a_standby_shows_the_figures_of_a_rolling_window_agreement() -> None:
    clock, store = Clock(), RecordingStore()
    leader = Engine(store, EngineSettings(status_interval=5), clock=clock)  # type: ignore[arg-type]
    rolling = replace(agreement(), window=Window(WindowType.ROLLING, duration=timedelta(days=7)),
                      status_page=replace(agreement().status_page, public=True))
    leader.upsert_agreement(rolling, {})
    for _ in range(12):
        leader.on_probe_result(rolling.key, API, ProbeResult(clock.now, True, 0.01, "200 OK"))
        await leader.evaluate_round()
        clock.now += timedelta(minutes=10)
    fail(leader, clock)
    await leader.evaluate_round()
    status = [s for kind, _, s in store.statuses if kind is Kind.AGREEMENT and "state" in s][-1]
    assert status["currentPeriod"]["label"] == "rolling-7d"

    standby = Engine(RecordingStore(), EngineSettings(), clock=clock,  # type: ignore[arg-type]
                     switch=WriteSwitch(active=False))
    standby.upsert_agreement(rolling, status)
    standby.publish()
    shown, truth = standby.snapshot.agreement(*rolling.key), leader.snapshot.agreement(*rolling.key)
    assert shown is not None and truth is not None and truth.period is not None
    assert shown.period is not None and shown.period.label == "rolling-7d"
    assert shown.period.availability == pytest.approx(truth.period.availability, abs=1e-6)
    [row] = build_status_page(standby.snapshot).agreements
    [leaders_row] = build_status_page(leader.snapshot).agreements
    assert row.availability == leaders_row.availability is not None
    assert row.period_label == "rolling-7d"


@pytest.mark.parametrize("label", ["rolling-30d", "rolling-36h", "rolling-1h30m"])
def test_a_rolling_window_label_is_a_period_label(label: str) -> None:
    period = {"label": label, "start": "2026-10-27T04:00:00Z", "end": "2026-11-26T04:00:00Z",
              "availability": "99.5000", "elapsedSeconds": 100, "eligibleSeconds": 100,
              "downtimeSeconds": 0.5, "maintenanceSeconds": 0, "excludedSeconds": 0,
              "unmonitoredSeconds": 0, "incidents": 1,
              "errorBudget": {"totalSeconds": 1, "remainingSeconds": 0, "remainingRatio": "0.5"}}
    published = read_published({"currentPeriod": period}, Decimal("99.9"))
    assert published.problems == () and published.period is not None
    assert published.period.label == label
    for bad in ("rolling-", "rolling-0s", "rolling-24h", "rolling-30d<b>", "rolling-2w"):
        refused = read_published({"currentPeriod": {**period, "label": bad}}, Decimal("99.9"))
        assert refused.period is None
        assert [p.path for p in refused.problems] == ["status.currentPeriod.label"]
