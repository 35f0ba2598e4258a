"""The snapshot the engine publishes: numbers, days, windows; rebuilt cheaply, never half-made."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from engine_clock import API, SECOND, T0, Clock

from sla_operator.domain.model import (
    Agreement,
    Incident,
    IncidentType,
    MaintenanceWindow,
    ProbeResult,
    Severity,
    State,
    StatusPageOptions,
)
from sla_operator.engine import Engine, EngineSettings
from sla_operator.local.store import LocalStore


def agreement(name: str, public: bool = True) -> Agreement:
    return Agreement(namespace="shop", name=name, service=name.title(), objective=Decimal("99.9"),
                     endpoints=(API,), created_at=T0 - timedelta(days=2),
                     status_page=StatusPageOptions(public=public, group="Shop"))


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def engine(tmp_path: Path, clock: Clock) -> Engine:
    made = Engine(LocalStore(tmp_path, clock=clock), EngineSettings(status_interval=5), clock=clock)
    made.upsert_agreement(agreement("checkout"))
    return made


def probe(engine: Engine, clock: Clock, ok: bool) -> None:
    clock.now += SECOND
    engine.on_probe_result(("shop", "checkout"), API, ProbeResult(clock.now, ok, 0.02, "msg"))


async def test_a_round_publishes_figures_as_numbers_and_ninety_days(engine: Engine, clock: Clock) -> None:
    assert engine.snapshot.agreements == ()  # nothing published before the first round
    probe(engine, clock, True)
    await engine.evaluate_round()
    [view] = engine.snapshot.agreements
    assert view.key == ("shop", "checkout") and view.public and view.group == "Shop"
    assert view.state is State.UP and view.period is not None
    assert isinstance(view.period.availability, float) and len(view.days) == 90
    assert view.days[0].availability is None  # before the agreement existed: no data
    assert view.probes[0].last_ok is True and view.probes[0].successes == 1
    assert engine.snapshot.taken_at == clock.now


async def test_an_open_incident_and_a_window_are_in_the_snapshot(engine: Engine, clock: Clock) -> None:
    engine.upsert_incident(Incident(namespace="shop", name="by-hand", agreement="checkout",
                                    type=IncidentType.OUTAGE, severity=Severity.P2,
                                    title="checkout is down", started_at=T0 - timedelta(hours=1)))
    engine.upsert_maintenance(MaintenanceWindow(namespace="shop", name="upgrade",
                                                start=T0 + timedelta(days=1),
                                                end=T0 + timedelta(days=1, hours=2)))
    await engine.evaluate_round()
    snapshot = engine.snapshot
    assert [i.name for i in snapshot.incidents] == ["by-hand"]
    assert snapshot.agreements[0].open_incidents == {Severity.P2: 1}
    [window] = snapshot.windows
    assert window.agreements == ("checkout",) and window.active is None
    assert window.upcoming is not None and window.upcoming.start == T0 + timedelta(days=1)


async def test_probe_views_are_made_again_only_after_a_probe(engine: Engine, clock: Clock) -> None:
    probe(engine, clock, True)
    await engine.evaluate_round()
    first = engine.snapshot.agreements[0].probes[0]
    await engine.evaluate_round(force=True)
    assert engine.snapshot.agreements[0].probes[0] is first
    probe(engine, clock, False)
    await engine.evaluate_round()
    assert engine.snapshot.agreements[0].probes[0].failures == 1


async def test_a_removed_agreement_leaves_the_snapshot_at_once(engine: Engine) -> None:
    await engine.evaluate_round()
    engine.remove_agreement(("shop", "checkout"))
    assert engine.snapshot.agreements == ()


async def test_an_agreement_whose_view_fails_keeps_its_previous_one(
        engine: Engine, caplog: pytest.LogCaptureFixture) -> None:
    await engine.evaluate_round()
    before = engine.snapshot.agreements[0]
    engine.agreements[("shop", "checkout")].history["2026-10"] = {"period": "2026-10",
                                                                   "availability": "lots"}
    engine.publish()
    assert engine.snapshot.agreements == (before,)
    assert "shop/checkout: view not refreshed" in caplog.text
