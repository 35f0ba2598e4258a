"""The snapshot the engine publishes: numbers, days, windows; rebuilt cheaply, never half-made."""

from __future__ import annotations

import time
from dataclasses import fields
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from engine_clock import API, SECOND, T0, Clock

import sla_operator.engine as engine_module
from sla_operator.domain.model import (
    Agreement,
    Endpoint,
    HttpProbe,
    Incident,
    IncidentType,
    MaintenanceWindow,
    ProbeResult,
    Severity,
    State,
    StatusPageOptions,
)
from sla_operator.domain.support import SupportRequest
from sla_operator.domain.views import AgreementView, ProbeView
from sla_operator.engine import SNAPSHOT_CPU_SHARE, Engine, EngineSettings
from sla_operator.local.store import LocalStore

WEB = Endpoint("web", HttpProbe("http://127.0.0.1:8099/"), interval=SECOND)


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
    runtime = engine.agreements[("shop", "checkout")]
    runtime.breached["checkout-1"] = "P9"  # no such severity: the view cannot be made
    runtime.changes += 1  # as every change of what a view shows does
    engine.publish()
    assert engine.snapshot.agreements == (before,)
    assert "shop/checkout: view not refreshed" in caplog.text


async def test_an_agreement_whose_first_view_fails_is_still_shown_with_no_figures(
        engine: Engine, caplog: pytest.LogCaptureFixture) -> None:
    runtime = engine.agreements[("shop", "checkout")]
    runtime.breached["checkout-1"] = "P9"  # no view before, and none can be made
    await engine.evaluate_round()
    [shown] = engine.snapshot.agreements
    assert shown.key == ("shop", "checkout") and shown.objective == Decimal("99.9")
    assert shown.state is State.UNKNOWN and shown.period is None
    assert "shop/checkout: view not refreshed" in caplog.text


async def test_a_history_figure_that_is_no_number_costs_only_that_figure(engine: Engine) -> None:
    await engine.evaluate_round()
    runtime = engine.agreements[("shop", "checkout")]
    for text in ("_1", "lots", "NaN", "101"):
        runtime.history["2026-10"] = {"period": "2026-10", "availability": text}
        runtime.changes += 1
        engine.publish()
        [shown] = engine.snapshot.agreements
        assert shown.last_closed is not None and shown.last_closed.label == "2026-10"
        assert shown.last_closed.availability is None


async def test_an_unchanged_agreement_keeps_its_view_object(engine: Engine, clock: Clock) -> None:
    probe(engine, clock, True)
    await engine.evaluate_round()
    view = engine.snapshot.agreements[0]
    engine.publish()
    engine.publish()
    assert engine.snapshot.agreements[0] is view


async def test_a_probe_result_makes_a_new_view_with_that_endpoint_only(
        tmp_path: Path, clock: Clock) -> None:
    two = Agreement(namespace="shop", name="checkout", service="Checkout",
                    objective=Decimal("99.9"), endpoints=(API, WEB),
                    created_at=T0 - timedelta(days=2))
    engine = Engine(LocalStore(tmp_path, clock=clock), EngineSettings(status_interval=5), clock=clock)
    engine.upsert_agreement(two)
    for endpoint in (API, WEB):
        engine.on_probe_result(two.key, endpoint, ProbeResult(clock.now, True, 0.02, "ok"))
    await engine.evaluate_round()
    view = engine.snapshot.agreements[0]
    clock.now += SECOND
    engine.on_probe_result(two.key, WEB, ProbeResult(clock.now, False, 0.02, "refused"))
    engine.publish()
    after = engine.snapshot.agreements[0]
    assert after is not view
    assert after.probes[0] is view.probes[0]  # the API endpoint had no news
    assert after.probes[1].failures == 1 and after.probes[1].last_ok is False
    assert after.probes[1].state is view.probes[1].state  # the state changes at evaluation


async def test_an_evaluation_makes_a_new_view(engine: Engine, clock: Clock) -> None:
    await engine.evaluate_round()
    view = engine.snapshot.agreements[0]
    clock.now += 10 * SECOND  # the status interval passed: evaluated again
    await engine.evaluate_round()
    assert engine.snapshot.agreements[0] is not view
    assert engine.snapshot.agreements[0].evaluated_at == clock.now


async def test_an_opened_incident_makes_a_new_view(engine: Engine, clock: Clock) -> None:
    await engine.evaluate_round()
    view = engine.snapshot.agreements[0]
    engine.upsert_incident(Incident(
        namespace="shop", name="checkout-manual", agreement="checkout", severity=Severity.P2,
        type=IncidentType.DEGRADATION, title="slow", started_at=clock.now))
    engine.publish()  # not evaluated yet: the count of open incidents alone changed
    after = engine.snapshot.agreements[0]
    assert after is not view and after.open_incidents == {Severity.P2: 1}


async def test_a_new_spec_makes_every_probe_view_again(engine: Engine, clock: Clock) -> None:
    probe(engine, clock, True)
    await engine.evaluate_round()
    renamed = Agreement(namespace="shop", name="checkout", service="Checkout",
                        objective=Decimal("99.9"), endpoints=(WEB,),
                        created_at=T0 - timedelta(days=2))
    engine.upsert_agreement(renamed)
    engine.publish()
    view = engine.snapshot.agreements[0]
    assert [p.name for p in view.probes] == [WEB.name] and view.probes[0].last_ok is None
    assert view.service == "Checkout"


async def test_a_view_made_for_probes_alone_keeps_the_last_figures_and_shows_the_counts(
        engine: Engine, clock: Clock) -> None:
    probe(engine, clock, True)
    await engine.evaluate_round()
    view = engine.snapshot.agreements[0]
    probe(engine, clock, True)
    engine.publish()  # a probe since, no evaluation
    after = engine.snapshot.agreements[0]
    assert after is not view and after.probes[0].successes == 2
    assert after.period is view.period and after.evaluated_at == view.evaluated_at
    assert view.probes[0].successes == 1  # the published view is never changed
    probe(engine, clock, False)
    clock.now += 10 * SECOND  # a probe, then an evaluation: both show
    await engine.evaluate_round()
    latest = engine.snapshot.agreements[0]
    assert latest.probes[0].failures == 1 and latest.evaluated_at == clock.now
    assert latest.period is not view.period


async def test_a_probe_view_shows_a_new_state_dependency_and_certificate(
        engine: Engine, clock: Clock) -> None:
    probe(engine, clock, True)
    await engine.evaluate_round()
    first = engine.snapshot.agreements[0].probes[0]
    assert first.state is State.UP and first.certificate_not_after is None
    for _ in range(3):  # the third failure in a row: Down
        probe(engine, clock, False)
    engine.publish()
    down = engine.snapshot.agreements[0].probes[0]
    assert down.state is State.DOWN and down.failures == 3 and down.last_ok is False
    expiry = T0 + timedelta(days=40)
    clock.now += SECOND
    engine.on_probe_result(("shop", "checkout"), API,
                           ProbeResult(clock.now, True, 0.02, "ok", certificate_not_after=expiry))
    engine.publish()
    assert engine.snapshot.agreements[0].probes[0].certificate_not_after == expiry
    third_party = Agreement(namespace="shop", name="checkout", service="Checkout",
                            objective=Decimal("99.9"),
                            endpoints=(Endpoint(API.name, API.probe, interval=API.interval,
                                                timeout=API.timeout, dependency=True),),
                            created_at=T0 - timedelta(days=2))
    engine.upsert_agreement(third_party)
    engine.publish()
    assert engine.snapshot.agreements[0].probes[0].dependency is True


async def test_the_last_closed_period_follows_the_history(engine: Engine, clock: Clock) -> None:
    await engine.evaluate_round()
    runtime = engine.agreements[("shop", "checkout")]
    assert engine.snapshot.agreements[0].last_closed is None  # created two days ago
    runtime.history["2026-10"] = {"period": "2026-10", "availability": "99.9500"}
    runtime.changes += 1  # as every change of what a view shows does
    engine.publish()
    closed = engine.snapshot.agreements[0].last_closed
    assert closed is not None and closed.availability == pytest.approx(0.9995)
    runtime.history["2026-10"] = {"period": "2026-10", "availability": "99.5000"}
    runtime.changes += 1
    engine.publish()
    again = engine.snapshot.agreements[0].last_closed
    assert again is not None and again.availability == pytest.approx(0.995)
    runtime.history["2026-11"] = {"period": "2026-11", "availability": None}
    runtime.changes += 1
    engine.publish()
    newest = engine.snapshot.agreements[0].last_closed
    assert newest is not None and newest.label == "2026-11" and newest.availability is None


async def test_a_window_view_follows_time_agreements_and_the_window(
        engine: Engine, clock: Clock) -> None:
    weekly = MaintenanceWindow(namespace="shop", name="weekly", schedule="0 3 * * *",
                               duration=timedelta(hours=1))
    engine.upsert_maintenance(weekly)
    engine.publish()
    [view] = engine.snapshot.windows
    assert view.active is None and view.upcoming is not None
    start = view.upcoming.start
    engine.publish()
    assert engine.snapshot.windows[0] is view  # nothing changed: the same view
    clock.now = start
    engine.publish()
    [during] = engine.snapshot.windows
    assert during.active is not None and during.active.start == start
    assert during.upcoming is not None and during.upcoming.start == start + timedelta(days=1)
    clock.now = start + timedelta(hours=1)
    engine.publish()
    [after] = engine.snapshot.windows
    assert after.active is None and after.upcoming == during.upcoming
    engine.upsert_agreement(agreement("basket"))
    engine.publish()
    assert engine.snapshot.windows[0].agreements == ("basket", "checkout")
    engine.upsert_maintenance(MaintenanceWindow(namespace="shop", name="weekly",
                                                schedule="0 3 * * *", duration=timedelta(hours=1),
                                                sla_names=("basket",)))
    engine.publish()
    assert engine.snapshot.windows[0].agreements == ("basket",)


async def test_probe_and_agreement_views_hold_every_field_as_their_constructors_would(
        engine: Engine, clock: Clock) -> None:
    """Views made by copying or filling fields in directly (the per-round fast paths) are
    the views the dataclass constructors would make: every field set, equal, hashable."""
    probe(engine, clock, True)
    await engine.evaluate_round()
    probe(engine, clock, False)
    engine.publish()  # probe news alone: the agreement view is a copy with new probe views
    view = engine.snapshot.agreements[0]
    for made, kind in ((view.probes[0], ProbeView), (view, AgreementView)):
        values = {f.name: getattr(made, f.name) for f in fields(kind)}
        assert made == kind(**values) and repr(made) == repr(kind(**values))
    assert set(vars(view)) == {f.name for f in fields(AgreementView)}
    probe_view = view.probes[0]  # slotted: every field set, nothing else held
    assert hash(probe_view) == hash(ProbeView(**{f.name: getattr(probe_view, f.name)
                                                 for f in fields(ProbeView)}))
    assert not hasattr(probe_view, "__dict__")
    assert view.probes[0].failures == 1


async def test_a_costly_snapshot_is_made_again_only_once_its_share_of_time_has_passed(
        engine: Engine, clock: Clock, monkeypatch: pytest.MonkeyPatch) -> None:
    # At 100,000 endpoints a snapshot takes tens of milliseconds of CPU: made after every
    # round, it would take a core's tenth for outputs scraped every 15-30 s.
    cpu = [0.0]
    monkeypatch.setattr(engine_module.time, "thread_time", lambda: cpu[0])
    real_build = engine_module.build_snapshot

    def costly(*args: object, **kwargs: object) -> object:
        cpu[0] += 5.0  # CPU seconds: at a 2.5% share, the next one in 200 s
        return real_build(*args, **kwargs)

    monkeypatch.setattr(engine_module, "build_snapshot", costly)
    probe(engine, clock, True)
    await engine.evaluate_round()
    first = engine.snapshot
    probe(engine, clock, False)
    await engine.evaluate_round()
    assert engine.snapshot is first  # the last snapshot stays, without the failed probe
    monkeypatch.setattr(engine, "_published_at", time.monotonic() - 5.0 / SNAPSHOT_CPU_SHARE)
    await engine.evaluate_round()
    assert engine.snapshot is not first and engine.snapshot.taken_at == clock.now
    assert engine.snapshot.agreements[0].probes[0].failures == 1


async def test_a_cheap_snapshot_follows_every_round(engine: Engine, clock: Clock) -> None:
    taken = []
    for ok in (True, False, True):
        probe(engine, clock, ok)
        await engine.evaluate_round()
        taken.append(engine.snapshot.taken_at)
    assert taken == sorted(set(taken)) and taken[-1] == clock.now


async def test_the_snapshot_carries_each_support_request_and_where_its_response_stands(
        engine: Engine, clock: Clock) -> None:
    opened = clock.now
    target = engine.agreements[("shop", "checkout")].agreement.support_response[Severity.P2]
    for name, under in (("acme-1", "checkout"), ("acme-2", "no-such-agreement")):
        engine.upsert_support_request(SupportRequest("shop", name, under, Severity.P2, "Help",
                                                     opened, customer="acme", uid=f"u-{name}"))
    await engine.evaluate_round()
    engine.publish()
    measured, unmeasured = engine.snapshot.support_requests
    assert (measured.name, measured.response_due, measured.breached) == (
        "acme-1", opened + target, False)
    assert (unmeasured.name, unmeasured.response_due, unmeasured.breached) == ("acme-2", None, False)
    clock.now = opened + target + SECOND
    engine.publish()
    assert [r.breached for r in engine.snapshot.support_requests] == [True, False]
