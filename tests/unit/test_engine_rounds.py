"""Engine rounds over a real local store: one bad agreement, rolling counters, bad windows."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import yaml
from engine_clock import API, SECOND, T0, Clock
from pytest_mock import MockerFixture

from sla_operator.domain.errors import SecretRefused
from sla_operator.domain.model import (
    Agreement,
    Incident,
    IncidentState,
    IncidentType,
    MaintenanceWindow,
    ProbeResult,
    Severity,
    Window,
    WindowType,
)
from sla_operator.engine import Engine, EngineSettings
from sla_operator.engine import evaluate as evaluate_module
from sla_operator.engine.evaluate import evaluate_agreement
from sla_operator.engine.runtime import AgreementRuntime
from sla_operator.local.store import LocalStore

MONTHLY = Window()


def agreement(name: str, window: Window = MONTHLY) -> Agreement:
    return Agreement(namespace="shop", name=name, service=name.title(), objective=Decimal("99.9"),
                     endpoints=(API,), window=window, created_at=T0)


def engine_on(tmp_path: Path, clock: Clock) -> Engine:
    return Engine(LocalStore(tmp_path, clock=clock), EngineSettings(status_interval=5),
                  clock=clock)


def status_file(tmp_path: Path, plural: str, name: str) -> dict[str, Any]:
    loaded = yaml.safe_load((tmp_path / "status" / plural / "shop" / f"{name}.yaml").read_text())
    return dict(loaded.get("status") or {})


def status_written(tmp_path: Path, name: str) -> bool:
    try:
        return "lastEvaluated" in status_file(tmp_path, "servicelevelagreements", name)
    except FileNotFoundError:
        return False


def probe(engine: Engine, name: str, clock: Clock, ok: bool = True) -> None:
    engine.on_probe_result(("shop", name), API, ProbeResult(clock.now, ok, 0.01, "200 OK"))


async def test_one_agreement_that_fails_to_evaluate_does_not_stop_the_others(
        tmp_path: Path, mocker: MockerFixture) -> None:
    clock = Clock()
    engine = engine_on(tmp_path, clock)
    engine.upsert_agreement(agreement("broken"))
    engine.upsert_agreement(agreement("healthy"))
    real = evaluate_module.evaluate_agreement

    def failing_for_broken(runtime: AgreementRuntime, *args: Any, **options: Any) -> Any:
        if runtime.agreement.name == "broken":
            raise OverflowError("date value out of range")
        return real(runtime, *args, **options)

    mocker.patch("sla_operator.engine.rounds.evaluate_agreement", side_effect=failing_for_broken)
    probe(engine, "healthy", clock)
    clock.now += SECOND
    await engine.evaluate_round()
    assert status_file(tmp_path, "servicelevelagreements", "healthy")["state"] == "Up"
    assert engine.last_round == clock.now  # evaluations still succeed: /healthz stays green
    clock.now += SECOND  # the broken one waits before it is tried again, without log floods
    await engine.evaluate_round()
    assert engine.agreements[("shop", "broken")].retry_at == T0 + 6 * SECOND


async def test_when_every_evaluation_fails_the_heartbeat_stops(
        tmp_path: Path, mocker: MockerFixture) -> None:
    clock = Clock()
    engine = engine_on(tmp_path, clock)
    engine.upsert_agreement(agreement("broken"))
    mocker.patch("sla_operator.engine.rounds.evaluate_agreement", side_effect=OverflowError("bad date"))
    clock.now += SECOND
    await engine.evaluate_round()
    assert engine.last_round == T0  # /healthz will report the stall


async def test_counters_grow_for_a_rolling_window_too(tmp_path: Path) -> None:
    clock = Clock()
    engine = engine_on(tmp_path, clock)
    old_rolling = replace(agreement("rolling", Window(type=WindowType.ROLLING,
                                                     duration=timedelta(days=30))),
                          created_at=T0 - timedelta(days=60))  # a full window that slides
    engine.upsert_agreement(old_rolling)
    for _ in range(60):
        probe(engine, "rolling", clock)
        await engine.evaluate_round()
        clock.now += SECOND
    runtime = engine.agreements[("shop", "rolling")]
    assert runtime.eligible_total >= 55


async def test_a_bad_edit_keeps_the_last_valid_window_in_effect_and_says_so(tmp_path: Path) -> None:
    clock = Clock()
    engine = engine_on(tmp_path, clock)
    window = MaintenanceWindow(namespace="shop", name="db", start=T0 - timedelta(hours=1),
                               end=T0 + timedelta(hours=1))
    engine.upsert_maintenance(window)
    engine.upsert_agreement(agreement("checkout"))
    assert engine.reject_maintenance(("shop", "db"), "spec.end: is before spec.start") is True
    assert engine.reject_maintenance(("shop", "unknown"), "whatever") is False
    probe(engine, "checkout", clock, ok=False)
    await engine.evaluate_round()
    status = status_file(tmp_path, "maintenancewindows", "db")
    ready = next(c for c in status["conditions"] if c["type"] == "Ready")
    assert ready["status"] == "False" and "spec.end" in ready["message"]
    assert status["active"] is True
    assert status_file(tmp_path, "servicelevelagreements", "checkout")["state"] == "Maintenance"
    engine.upsert_maintenance(window)  # fixed: Ready again
    await engine.evaluate_round()
    ready = next(c for c in status_file(tmp_path, "maintenancewindows", "db")["conditions"]
                 if c["type"] == "Ready")
    assert ready["status"] == "True"


async def test_an_incident_deleted_and_applied_again_gets_its_status_again(tmp_path: Path) -> None:
    clock = Clock()
    engine = engine_on(tmp_path, clock)
    engine.upsert_agreement(agreement("checkout"))
    resolved = Incident(namespace="shop", name="checkout-outage", agreement="checkout",
                        type=IncidentType.OUTAGE, severity=Severity.P1, title="Checkout is down",
                        started_at=T0, resolved_at=T0 + timedelta(minutes=5),
                        state=IncidentState.RESOLVED, endpoints=("api",))
    clock.now += timedelta(minutes=10)
    engine.upsert_incident(resolved)
    await engine.evaluate_round()
    status_path = tmp_path / "status" / "incidents" / "shop" / "checkout-outage.yaml"
    assert yaml.safe_load(status_path.read_text())["status"]["durationSeconds"] == 300

    # `kubectl delete` + `kubectl apply`: a new object, with no status of its own.
    engine.remove_incident(resolved.key)
    status_path.unlink()
    engine.upsert_incident(resolved)
    await engine.evaluate_round()
    assert yaml.safe_load(status_path.read_text())["status"]["durationSeconds"] == 300


async def resolved_by_a_person_while_failing(tmp_path: Path, clock: Clock) -> tuple[Incident, dict[str, Any]]:
    """An outage a person resolved while the endpoint kept failing; the status last written."""
    engine = engine_on(tmp_path, clock)
    engine.upsert_agreement(agreement("checkout"))
    for _ in range(3):
        probe(engine, "checkout", clock, ok=False)
        clock.now += SECOND
    await engine.evaluate_round()
    (opened,) = engine.incidents.values()
    resolved = replace(opened, state=IncidentState.RESOLVED, resolved_at=clock.now)
    engine.upsert_incident(resolved)
    probe(engine, "checkout", clock, ok=False)
    await engine.evaluate_round(force=True)
    assert list(engine.incidents.values()) == [resolved]  # the person's word stands
    return resolved, status_file(tmp_path, "servicelevelagreements", "checkout")


async def restarted_after(tmp_path: Path, clock: Clock, gap: timedelta, resolved: Incident,
                          status: dict[str, Any]) -> Engine:
    clock.now += gap
    engine = engine_on(tmp_path, clock)
    engine.upsert_incident(resolved)
    engine.upsert_agreement(agreement("checkout"), status)
    probe(engine, "checkout", clock, ok=False)  # still failing
    await engine.evaluate_round()
    return engine


async def test_an_outage_a_person_resolved_stays_resolved_across_a_quick_restart(tmp_path: Path) -> None:
    clock = Clock()
    resolved, status = await resolved_by_a_person_while_failing(tmp_path, clock)
    assert status["endpoints"][0]["since"] == "2026-11-26T04:00:00Z"

    engine = await restarted_after(tmp_path, clock, timedelta(seconds=20), resolved, status)

    assert list(engine.incidents.values()) == [resolved]
    health = engine.agreements[("shop", "checkout")].healths["api"]
    assert (health.since, health.consecutive_failures) == (T0, 5)


async def test_after_a_long_gap_a_failing_endpoint_starts_a_new_streak(tmp_path: Path) -> None:
    clock = Clock()
    resolved, status = await resolved_by_a_person_while_failing(tmp_path, clock)

    engine = await restarted_after(tmp_path, clock, timedelta(minutes=10), resolved, status)

    # Nobody knows whether it recovered meanwhile: a new streak, a new outage once it trips.
    assert len(engine.incidents) == 1
    for _ in range(2):
        clock.now += SECOND
        probe(engine, "checkout", clock, ok=False)
    await engine.evaluate_round()
    assert len(engine.incidents) == 2


def test_daily_bars_follow_the_agreements_own_midnight() -> None:
    auckland = Window(time_zone="Pacific/Auckland")  # UTC+13 in November
    runtime = AgreementRuntime(agreement("kiwi", auckland), started=T0)
    before = datetime(2026, 11, 26, 10, 59, tzinfo=UTC)  # 23:59 on the 26th in Auckland
    evaluate_agreement(runtime, [], [], before)
    after = datetime(2026, 11, 26, 11, 1, tzinfo=UTC)  # 00:01 on the 27th
    result = evaluate_agreement(runtime, [], [], after)
    dates = [day["date"] for day in runtime.daily]
    assert dates[-2:] == ["2026-11-26", "2026-11-27"]
    assert len(dates) == len(set(dates)) == 90
    # Stored as runs of days alike: before it existed (the day summer time began in Auckland
    # is an hour short), then today.
    stored = result.status["daily"]
    assert [(d["date"], d.get("days", 1), d.get("unmonitoredSeconds")) for d in stored] == [
        ("2026-08-30", 28, 86400), ("2026-09-27", 1, 82800), ("2026-09-28", 60, 86400),
        ("2026-11-27", 1, 60)]


async def test_stopping_writes_a_last_status_so_the_stop_time_is_known(tmp_path: Path) -> None:
    clock = Clock()
    engine = Engine(LocalStore(tmp_path, clock=clock),
                    EngineSettings(status_interval=3600, evaluate_interval=0.01), clock=clock)
    engine.upsert_agreement(agreement("checkout"))
    running = asyncio.create_task(engine.run())
    while not status_written(tmp_path, "checkout"):  # the first write done, not merely begun
        await asyncio.sleep(0.01)
    clock.now += timedelta(minutes=10)  # long after the last routine write
    running.cancel()
    await asyncio.gather(running, return_exceptions=True)
    status = status_file(tmp_path, "servicelevelagreements", "checkout")
    assert status["lastEvaluated"] == "2026-11-26T04:10:00Z"


async def test_secrets_and_refusals_are_read_at_most_once_a_minute(
        tmp_path: Path, mocker: MockerFixture) -> None:
    clock = Clock()
    engine = engine_on(tmp_path, clock)
    store = engine.store
    assert isinstance(store, LocalStore)
    store.secrets[("shop", "auth")] = {"token": "Bearer t"}
    reads = mocker.spy(store, "read_secret")
    context = engine._context("shop")
    assert await context.resolve_secret("auth", "token") == "Bearer t"
    assert await context.resolve_secret("auth", "token") == "Bearer t"
    for _ in range(2):
        with pytest.raises(SecretRefused, match="no secret missing in namespace shop"):
            await context.resolve_secret("missing", "token")
    assert reads.call_count == 2
    clock.now += timedelta(seconds=61)
    await context.resolve_secret("auth", "token")
    assert reads.call_count == 3


async def test_an_operator_with_nothing_to_watch_stays_alive(tmp_path: Path) -> None:
    clock = Clock()
    engine = engine_on(tmp_path, clock)
    clock.now += SECOND
    await engine.evaluate_round()
    assert engine.last_round == clock.now


async def test_a_new_agreement_starts_a_round_without_waiting_for_the_interval(
        tmp_path: Path) -> None:
    clock = Clock()
    # An hour between rounds: only the arrival itself can get the second agreement evaluated.
    engine = Engine(LocalStore(tmp_path, clock=clock),
                    EngineSettings(status_interval=3600, evaluate_interval=3600), clock=clock)
    engine.upsert_agreement(agreement("checkout"))
    running = asyncio.create_task(engine.run())
    try:
        while not status_written(tmp_path, "checkout"):
            await asyncio.sleep(0.01)
        engine.upsert_agreement(agreement("basket"))
        await asyncio.wait_for(_written(tmp_path, "basket"), timeout=60)
    finally:
        running.cancel()
        await asyncio.gather(running, return_exceptions=True)


async def _written(tmp_path: Path, name: str) -> None:
    while not status_written(tmp_path, name):
        await asyncio.sleep(0.01)
