"""Before and at an agreement's first probe results: no figures out of nothing, no false Up,
and messages that say what the state rests on."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from engine_clock import Clock
from prometheus_client import CollectorRegistry

from sla_operator.domain.health import observe, service_health
from sla_operator.domain.model import (
    Agreement,
    DowntimeWhen,
    Endpoint,
    HttpProbe,
    Incident,
    IncidentType,
    Origin,
    ProbeResult,
    Severity,
    State,
    StatusPageOptions,
    TcpProbe,
)
from sla_operator.domain.statuspage import build_status_page
from sla_operator.engine import Engine, EngineSettings
from sla_operator.engine.evaluate import evaluate_agreement
from sla_operator.engine.runtime import NEW_HEALTH, AgreementRuntime
from sla_operator.exposition import render_text
from sla_operator.local.store import LocalStore
from sla_operator.metrics import EngineCollector
from sla_operator.statuspage.badge import badge_svg

T0 = datetime(2026, 12, 7, 8, 0, tzinfo=UTC)
CREATED = T0  # a new agreement: the operator starts it as it is created
SECOND = timedelta(seconds=1)
DB = Endpoint("db", TcpProbe("127.0.0.1", 5432), interval=timedelta(seconds=60))
API = Endpoint("api", HttpProbe("http://127.0.0.1:8099/api"), interval=2 * SECOND,
               timeout=SECOND, failure_threshold=2, success_threshold=2)
CHECKOUT = replace(API, name="checkout", degraded_latency=timedelta(milliseconds=300))
PROVIDER = replace(API, name="provider", dependency=True)


def agreement(*endpoints: Endpoint) -> Agreement:
    return Agreement(namespace="shop", name="db", service="DB", objective=Decimal("99.9"),
                     endpoints=endpoints, created_at=CREATED)


def test_an_agreement_not_probed_yet_has_no_eligible_time_and_no_availability() -> None:
    runtime = AgreementRuntime(agreement(DB), started=T0)
    first = evaluate_agreement(runtime, [], [], T0)
    status = evaluate_agreement(runtime, [], [], T0 + 11 * SECOND).status
    assert first.status["state"] == "Unknown"
    assert status["currentPeriod"]["eligibleSeconds"] == 0
    assert status["currentPeriod"]["unmonitoredSeconds"] > 0
    assert status["daily"][-1]["availability"] is None  # today's bar: no data, not green
    assert runtime.figures is not None and runtime.figures.eligible_seconds == 0
    assert runtime.eligible_total == 0  # the burn-rate counter has nothing to count


def test_the_time_before_the_first_result_stays_unmonitored_once_it_comes() -> None:
    runtime = AgreementRuntime(agreement(DB), started=T0)
    evaluate_agreement(runtime, [], [], T0 + 10 * SECOND)
    runtime.observe(DB, ProbeResult(T0 + 30 * SECOND, True, 0.002, "connected"))
    status = evaluate_agreement(runtime, [], [], T0 + 40 * SECOND).status
    assert [(g.start, g.end) for g in runtime.unmonitored][-1] == (T0, T0 + 30 * SECOND)
    assert status["unmonitored"][-1] == {"start": "2026-12-07T08:00:00Z",
                                         "end": "2026-12-07T08:00:30Z"}
    assert status["daily"][-1]["availability"] == "100.0000"
    assert runtime.figures is not None and runtime.figures.eligible_seconds == 10
    later = evaluate_agreement(runtime, [], [], T0 + 50 * SECOND).status
    assert later["currentPeriod"]["eligibleSeconds"] == 20
    assert runtime.eligible_total == 20  # counted from the first result on, as the figures


def test_a_failure_before_the_threshold_counts_as_monitored_time() -> None:
    runtime = AgreementRuntime(agreement(DB), started=T0)
    runtime.observe(DB, ProbeResult(T0 + 5 * SECOND, False, 0.002, "connection refused"))
    evaluate_agreement(runtime, [], [], T0 + 6 * SECOND)
    assert [(g.start, g.end) for g in runtime.unmonitored] == [(T0, T0 + 5 * SECOND)]


def test_a_restart_that_carried_the_states_over_adds_no_unmonitored_time() -> None:
    runtime = AgreementRuntime(agreement(DB), started=T0)
    runtime.healths["db"] = replace(NEW_HEALTH, state=State.UP, since=T0 - 60 * SECOND)
    evaluate_agreement(runtime, [], [], T0 + 2 * SECOND)
    runtime.observe(DB, ProbeResult(T0 + 20 * SECOND, True, 0.002, "connected"))
    evaluate_agreement(runtime, [], [], T0 + 21 * SECOND)
    assert runtime.unmonitored == []


def test_new_probes_for_every_endpoint_are_unmonitored_until_their_first_result() -> None:
    runtime = AgreementRuntime(agreement(DB), started=T0)
    runtime.observe(DB, ProbeResult(T0, True, 0.002, "connected"))
    evaluate_agreement(runtime, [], [], T0 + SECOND)
    runtime.replace_agreement(agreement(replace(DB, probe=TcpProbe("127.0.0.1", 5433))))
    evaluate_agreement(runtime, [], [], T0 + 3 * SECOND)
    runtime.observe(DB, ProbeResult(T0 + 9 * SECOND, True, 0.002, "connected"))
    evaluate_agreement(runtime, [], [], T0 + 10 * SECOND)
    assert [(g.start, g.end) for g in runtime.unmonitored] == [(T0 + SECOND, T0 + 9 * SECOND)]


def test_a_first_failure_keeps_a_service_with_downtime_when_any_from_being_up() -> None:
    shop = agreement(API, CHECKOUT)
    failing = observe(NEW_HEALTH, API, ProbeResult(T0, False, 0.01, "503"))
    answering = observe(NEW_HEALTH, CHECKOUT, ProbeResult(T0, True, 0.01, "200 OK"))
    healths = {"api": failing, "checkout": answering}
    assert failing.state is State.UNKNOWN
    assert service_health(shop, healths).state is State.UNKNOWN
    # With downtimeWhen all one answering endpoint is enough to say the service is not Down.
    either = replace(shop, downtime_when=DowntimeWhen.ALL)
    assert service_health(either, healths).state is State.UP
    down = observe(failing, API, ProbeResult(T0 + 2 * SECOND, False, 0.01, "503"))
    assert service_health(shop, {**healths, "api": down}).state is State.DOWN


def test_the_first_status_after_a_failed_first_probe_is_not_up() -> None:
    runtime = AgreementRuntime(agreement(API, CHECKOUT, PROVIDER), started=T0)
    runtime.observe(CHECKOUT, ProbeResult(T0, True, 0.01, "200 OK"))
    runtime.observe(PROVIDER, ProbeResult(T0, True, 0.01, "200 OK"))
    runtime.observe(API, ProbeResult(T0, False, 0.01, "connection refused"))
    status = evaluate_agreement(runtime, [], [], T0 + SECOND).status
    assert status["state"] == "Unknown"
    assert status["message"] == "Unknown: api: connection refused (1 of 2 failures before Down)"


def test_a_first_failure_of_an_endpoint_of_a_service_up_calls_for_an_evaluation() -> None:
    runtime = AgreementRuntime(agreement(API, CHECKOUT), started=T0)
    runtime.observe(CHECKOUT, ProbeResult(T0, True, 0.01, "200 OK"))
    evaluate_agreement(runtime, [], [], T0 + SECOND)
    assert runtime.state is State.UP
    runtime.dirty = False
    runtime.observe(API, ProbeResult(T0 + SECOND, False, 0.01, "503"))
    assert runtime.dirty


def test_a_degraded_message_names_the_latency_target() -> None:
    runtime = AgreementRuntime(agreement(API, CHECKOUT), started=T0)
    runtime.observe(API, ProbeResult(T0, True, 0.01, "200 OK"))
    runtime.observe(CHECKOUT, ProbeResult(T0, True, 0.412, "200 OK"))
    status = evaluate_agreement(runtime, [], [], T0 + SECOND).status
    assert status["state"] == "Degraded"
    assert status["message"] == ("Degraded: checkout: 412ms, slower than degradedLatency 300ms "
                                 "(200 OK)")


def test_an_up_message_counts_answering_endpoints_and_sets_a_failing_dependency_apart() -> None:
    runtime = AgreementRuntime(agreement(API, CHECKOUT, PROVIDER), started=T0)
    runtime.observe(API, ProbeResult(T0, True, 0.01, "200 OK"))
    for n in range(2):
        runtime.observe(PROVIDER, ProbeResult(T0 + n * SECOND, False, 0.01, "503"))
    status = evaluate_agreement(runtime, [], [], T0 + 2 * SECOND).status
    assert status["state"] == "Up"
    assert status["message"] == ("Up: 1 endpoint(s) answering, 1 not probed yet; third party "
                                 "(not counted against the agreement): provider: 503")


async def test_the_page_badge_and_metrics_of_an_agreement_not_probed_yet_say_no_data(
        tmp_path: Path) -> None:
    clock = Clock()
    engine = Engine(LocalStore(tmp_path, clock=clock), EngineSettings(status_interval=5),
                    clock=clock)
    engine.upsert_agreement(replace(agreement(DB), created_at=clock.now,
                                    status_page=StatusPageOptions(public=True)))
    await engine.evaluate_round()
    clock.now += 11 * SECOND
    await engine.evaluate_round(force=True)
    engine.publish()
    [shown] = [a for g in build_status_page(engine.snapshot).groups for a in g.agreements]
    assert shown.availability is None and shown.bars[-1].availability is None
    assert b"no data" in badge_svg(shown)
    registry = CollectorRegistry()
    registry.register(EngineCollector(engine, endpoint_histograms=False))
    text = render_text(registry).decode()
    assert "sla_availability_ratio{" not in text
    assert 'sla_eligible_seconds_total{agreement="db"' in text
    clock.now += 20 * SECOND
    engine.on_probe_result(("shop", "db"), DB, ProbeResult(clock.now, True, 0.002, "connected"))
    clock.now += 10 * SECOND
    await engine.evaluate_round(force=True)
    engine.publish()
    registry = CollectorRegistry()
    registry.register(EngineCollector(engine, endpoint_histograms=False))
    assert 'sla_availability_ratio{agreement="db"' in render_text(registry).decode()


def test_the_moment_between_creation_and_the_engine_is_unmonitored_too() -> None:
    runtime = AgreementRuntime(replace(agreement(DB), created_at=T0 - SECOND / 2), started=T0)
    status = evaluate_agreement(runtime, [], [], T0 + 11 * SECOND).status
    assert status["currentPeriod"]["eligibleSeconds"] == 0
    restarted = AgreementRuntime(agreement(DB), started=T0 + 5 * SECOND,
                                 seen_status={"lastEvaluated": "2026-12-07T08:00:04Z"})
    assert restarted.no_data_since == T0 + 5 * SECOND  # before that: the last process' record


def test_an_incident_filed_already_late_while_the_process_runs_is_counted_as_a_breach() -> None:
    runtime = AgreementRuntime(agreement(DB), started=T0)
    evaluate_agreement(runtime, [], [], T0)  # the counter's baseline: nothing late
    filed = Incident(namespace="shop", name="db-by-hand", agreement="db",
                     type=IncidentType.OUTAGE, severity=Severity.P2, title="db was down",
                     started_at=T0 - timedelta(days=7), resolved_at=T0 - timedelta(days=6),
                     origin=Origin.MANUAL)
    evaluate_agreement(runtime, [filed], [], T0 + SECOND)
    assert runtime.breached == {"db-by-hand": "P2"}


def test_the_current_period_of_an_agreement_not_probed_yet_has_no_availability_figure() -> None:
    """`kubectl get sla` shows no Availability rather than 100% for what nobody measured, and
    a standby reads that status back as no data."""
    from sla_operator.domain.published import read_published

    runtime = AgreementRuntime(agreement(DB), started=T0)
    evaluate_agreement(runtime, [], [], T0)
    status = evaluate_agreement(runtime, [], [], T0 + 11 * SECOND).status
    assert status["currentPeriod"]["availability"] is None
    published = read_published(status, Decimal("99.9"))
    assert published.problems == ()
    assert published.period is not None and published.period.eligible_seconds == 0
