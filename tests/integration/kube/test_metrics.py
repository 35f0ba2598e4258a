"""The Prometheus collector: the families and labels of API.md, carrying the engine's numbers."""

from __future__ import annotations

from datetime import timedelta

import pytest
from kube_support import T0, World
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.metrics_core import Metric
from prometheus_client.parser import text_string_to_metric_families

from sla_operator.exposition import render_text
from sla_operator.metrics import EngineCollector
from sla_operator.metrics import collector as metrics_collector

AGREEMENT = {"namespace": "payments", "agreement": "payments-api", "service": "Payments API",
             "environment": "production"}
PROBE = {**AGREEMENT, "endpoint": "api"}
NOT_AFTER = T0 + timedelta(days=40)


def scrape(world: World, endpoint_histograms: bool | None = False) -> dict[str, Metric]:
    """As /metrics writes it, which is what prometheus_client makes of the same families."""
    registry = CollectorRegistry()
    registry.register(EngineCollector(world.engine, endpoint_histograms=endpoint_histograms))
    text = render_text(registry)
    assert text == generate_latest(registry)
    return {family.name: family for family in text_string_to_metric_families(text.decode())}


def value(families: dict[str, Metric], sample_name: str, **labels: str) -> float:
    """The one sample of that name with exactly these labels."""
    matching = [s.value for family in families.values() for s in family.samples
                if s.name == sample_name and s.labels == labels]
    assert len(matching) == 1, (sample_name, labels, matching)
    return matching[0]


@pytest.fixture
async def outage(world: World) -> World:
    """One success, then three failures: the service is Down with a P1 incident open."""
    world.probes.certificate_not_after = NOT_AFTER
    await world.probe(True)
    for _ in range(3):
        await world.probe(False)
    return world


async def test_every_family_of_the_contract_is_exposed_with_its_type(outage: World) -> None:
    families = scrape(outage)
    assert {name: family.type for name, family in families.items()} == {
        "sla_objective_ratio": "gauge",
        "sla_availability_ratio": "gauge",
        "sla_error_budget_total_seconds": "gauge",
        "sla_error_budget_remaining_seconds": "gauge",
        "sla_error_budget_remaining_ratio": "gauge",
        "sla_downtime_seconds": "counter",
        "sla_eligible_seconds": "counter",
        "sla_state": "gauge",
        "sla_maintenance_active": "gauge",
        "sla_incidents_open": "gauge",
        "sla_incident_response_breached": "counter",
        "sla_support_requests": "counter",
        "sla_support_response_breached": "counter",
        "sla_period_availability_ratio": "gauge",
        "sla_period_credit_percent": "gauge",
        "sla_probe_success": "gauge",
        "sla_probe_duration_seconds": "histogram",
        "sla_agreement_probe_duration_seconds": "histogram",
        "sla_probes": "counter",
        "sla_probe_failures": "counter",
        "sla_probe_certificate_expiry_timestamp_seconds": "gauge",
        "sla_operator_probe_lag_seconds": "histogram",
        "sla_operator_leader": "gauge",
        "sla_operator_shard": "gauge",
        "sla_operator_status_writes": "counter",
        "sla_operator_status_writes_deferred": "counter",
        "sla_operator_api_throttled": "counter",
    }
    # Not sharded: the one shard of one.
    assert value(families, "sla_operator_shard", shard="0", shards="1") == 1


async def test_agreement_series_carry_the_engine_figures(outage: World) -> None:
    families = scrape(outage)
    runtime = outage.engine.agreements[("payments", "payments-api")]
    total, remaining, ratio = runtime.budget
    assert value(families, "sla_objective_ratio", **AGREEMENT) == pytest.approx(0.999)
    assert value(families, "sla_availability_ratio", **AGREEMENT) == runtime.availability < 1.0
    assert value(families, "sla_error_budget_total_seconds", **AGREEMENT) == total > 0
    assert value(families, "sla_error_budget_remaining_seconds", **AGREEMENT) == remaining < total
    assert value(families, "sla_error_budget_remaining_ratio", **AGREEMENT) == pytest.approx(ratio)
    assert value(families, "sla_downtime_seconds_total", **AGREEMENT) == runtime.downtime_total > 0
    assert value(families, "sla_eligible_seconds_total", **AGREEMENT) == runtime.eligible_total
    assert runtime.eligible_total >= runtime.downtime_total
    assert value(families, "sla_maintenance_active", **AGREEMENT) == 0
    assert value(families, "sla_period_availability_ratio", **AGREEMENT, period="2026-10") == 1.0


async def test_state_is_one_on_the_current_state_only(outage: World) -> None:
    families = scrape(outage)
    states = {state: value(families, "sla_state", **AGREEMENT, state=state)
              for state in ("Up", "Degraded", "Down", "Maintenance", "Unknown")}
    assert states == {"Up": 0, "Degraded": 0, "Down": 1, "Maintenance": 0, "Unknown": 0}


async def test_open_incidents_and_late_responses_are_counted_by_severity(outage: World) -> None:
    families = scrape(outage)
    opened = {s: value(families, "sla_incidents_open", **AGREEMENT, severity=s)
              for s in ("P1", "P2", "P3", "P4")}
    assert opened == {"P1": 1, "P2": 0, "P3": 0, "P4": 0}
    assert value(families, "sla_incident_response_breached_total", **AGREEMENT, severity="P1") == 0
    outage.clock.advance(timedelta(minutes=16))  # past the 15 minutes of a P1, unacknowledged
    await outage.engine.evaluate_round(force=True)
    later = scrape(outage)
    assert value(later, "sla_incident_response_breached_total", **AGREEMENT, severity="P1") == 1
    # A counter: deleting the incident (or garbage collection) does not take the count back.
    for key in list(outage.engine.incidents):
        outage.engine.remove_incident(key)
    await outage.engine.evaluate_round(force=True)
    assert value(scrape(outage), "sla_incident_response_breached_total", **AGREEMENT,
                 severity="P1") == 1


async def test_probe_series_count_results_and_latency_per_agreement(outage: World) -> None:
    families = scrape(outage)
    assert value(families, "sla_probe_success", **PROBE, location="default") == 0
    assert value(families, "sla_probes_total", **PROBE, result="success") == 1
    assert value(families, "sla_probes_total", **PROBE, result="failure") == 3
    assert value(families, "sla_agreement_probe_duration_seconds_count", **AGREEMENT) == 4
    assert value(families, "sla_agreement_probe_duration_seconds_sum",
                 **AGREEMENT) == pytest.approx(4 * 0.042)
    assert value(families, "sla_agreement_probe_duration_seconds_bucket", **AGREEMENT,
                 le="0.05") == 4
    assert value(families, "sla_probe_certificate_expiry_timestamp_seconds",
                 **PROBE) == NOT_AFTER.timestamp()


async def test_series_per_endpoint_are_bounded_without_endpoint_histograms(
        outage: World) -> None:
    families = scrape(outage)
    per_endpoint = [s.name for family in families.values() for s in family.samples
                    if s.labels.get("endpoint") == "api"]
    assert sorted(per_endpoint) == ["sla_probe_certificate_expiry_timestamp_seconds",
                                    "sla_probe_success", "sla_probes_total", "sla_probes_total"]
    assert families["sla_probe_duration_seconds"].samples == []


async def test_endpoint_histograms_add_the_latency_histogram_per_endpoint(outage: World) -> None:
    families = scrape(outage, endpoint_histograms=True)
    assert value(families, "sla_probe_duration_seconds_count", **PROBE) == 4
    assert value(families, "sla_probe_duration_seconds_sum", **PROBE) == pytest.approx(4 * 0.042)
    assert value(families, "sla_probe_duration_seconds_bucket", **PROBE, le="0.025") == 0
    assert value(families, "sla_probe_duration_seconds_bucket", **PROBE, le="0.05") == 4
    assert value(families, "sla_probe_duration_seconds_bucket", **PROBE, le="+Inf") == 4
    # The per-agreement histogram stays: it is what the dashboards read either way.
    assert value(families, "sla_agreement_probe_duration_seconds_count", **AGREEMENT) == 4


async def test_probe_lag_is_a_histogram_of_every_probe_start(outage: World) -> None:
    families = scrape(outage)
    started = value(families, "sla_operator_probe_lag_seconds_count")
    assert started >= 4  # the four answered, plus one that may be waiting for its answer
    assert value(families, "sla_operator_probe_lag_seconds_bucket", le="+Inf") == started


async def test_an_agreement_without_probe_results_has_no_probe_series(world: World) -> None:
    await world.engine.evaluate_round()  # the collector reads what the round published
    families = scrape(world)
    assert families["sla_probe_success"].samples == []
    assert value(families, "sla_state", **AGREEMENT, state="Unknown") == 1


async def test_metrics_come_from_the_snapshot_not_the_runtime(outage: World) -> None:
    runtime = outage.engine.agreements[("payments", "payments-api")]
    published = runtime.availability
    runtime.availability, runtime.figures = 0.5, None  # a round half-way through
    assert value(scrape(outage), "sla_availability_ratio", **AGREEMENT) == published


async def test_one_agreements_bad_data_leaves_the_others_in_the_scrape(
        outage: World, caplog: pytest.LogCaptureFixture) -> None:
    from dataclasses import replace

    snapshot = outage.engine.snapshot
    good = snapshot.agreements[0]
    broken = replace(good, name="broken", objective=None)  # type: ignore[arg-type]
    outage.engine.snapshot = replace(snapshot, agreements=(broken, good))
    families = scrape(outage)
    assert value(families, "sla_objective_ratio", **AGREEMENT) == pytest.approx(0.999)
    assert not [s for s in families["sla_state"].samples if s.labels["agreement"] == "broken"]
    assert "broken: left out of this scrape" in caplog.text


async def test_by_default_endpoint_histograms_follow_the_number_of_endpoints(
        outage: World, monkeypatch: pytest.MonkeyPatch) -> None:
    families = scrape(outage, endpoint_histograms=None)  # auto: one endpoint is few
    assert value(families, "sla_probe_duration_seconds_count", **PROBE) == 4
    monkeypatch.setattr(metrics_collector, "ENDPOINT_HISTOGRAMS_UP_TO", 0)  # a fleet beyond the limit
    families = scrape(outage, endpoint_histograms=None)
    assert families["sla_probe_duration_seconds"].samples == []
    assert value(families, "sla_agreement_probe_duration_seconds_count", **AGREEMENT) == 4
