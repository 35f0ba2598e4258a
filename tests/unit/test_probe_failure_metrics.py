"""sla_probe_failures_total{reason}: counted per endpoint as results arrive, exposed per reason."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from engine_clock import API, SECOND, T0, Clock
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from sla_operator.domain.failure_reasons import FAILURE_REASONS, FailureReason
from sla_operator.domain.model import Agreement, ProbeResult
from sla_operator.engine import Engine, EngineSettings
from sla_operator.local.store import LocalStore
from sla_operator.metrics import EngineCollector

KEY = ("shop", "checkout")


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def engine(tmp_path: Path, clock: Clock) -> Engine:
    made = Engine(LocalStore(tmp_path, clock=clock), EngineSettings(status_interval=5), clock=clock)
    made.upsert_agreement(Agreement(namespace="shop", name="checkout", service="Checkout",
                                    objective=Decimal("99.9"), endpoints=(API,),
                                    created_at=T0 - timedelta(days=2)))
    return made


def result(engine: Engine, clock: Clock, reason: FailureReason | None) -> None:
    clock.now += SECOND
    engine.on_probe_result(KEY, API, ProbeResult(clock.now, reason is None, 0.02,
                                                 "detail", reason=reason))


def exposed(engine: Engine) -> dict[str, float]:
    registry = CollectorRegistry()
    registry.register(EngineCollector(engine))
    text = generate_latest(registry).decode()
    return {sample.labels["reason"]: sample.value
            for family in text_string_to_metric_families(text)
            if family.name == "sla_probe_failures"
            for sample in family.samples if sample.name == "sla_probe_failures_total"}


async def test_failures_are_counted_by_reason_and_only_reasons_that_occurred_are_exposed(
        engine: Engine, clock: Clock) -> None:
    result(engine, clock, None)
    await engine.evaluate_round()
    assert exposed(engine) == {}  # a healthy endpoint has no failure series
    for reason in (FailureReason.CONNECT, FailureReason.CONNECT, FailureReason.TIMEOUT, None,
                   FailureReason.STATUS):
        result(engine, clock, reason)
    await engine.evaluate_round()
    assert exposed(engine) == {"connect": 2, "timeout": 1, "status": 1}
    [view] = engine.snapshot.agreements
    [probe] = view.probes
    assert probe.failures == sum(probe.failures_by_reason) == 4
    assert len(probe.failures_by_reason) == len(FAILURE_REASONS)


async def test_a_success_keeps_the_counts_by_reason_of_the_view_before(
        engine: Engine, clock: Clock) -> None:
    result(engine, clock, FailureReason.DNS)
    await engine.evaluate_round()
    before = engine.snapshot.agreements[0].probes[0]
    result(engine, clock, None)
    await engine.evaluate_round()
    after = engine.snapshot.agreements[0].probes[0]
    assert after.successes == before.successes + 1
    assert after.failures_by_reason is before.failures_by_reason  # shared, not made again


def test_the_reasons_are_the_fixed_set_of_the_contract() -> None:
    assert [reason.value for reason in FAILURE_REASONS] == [
        "dns", "connect", "timeout", "tls", "certificate", "status", "body", "policy",
        "protocol"]
