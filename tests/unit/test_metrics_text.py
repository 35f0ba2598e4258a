"""The agreements' families written straight from the snapshot say what their samples say.

/metrics writes them as text without a sample object per series; ``generate_latest`` (and
every test that parses it) reads their samples. Each case renders both ways and holds them
equal, byte for byte."""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from metrics_snapshots import NOW, fleet, probe
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from sla_operator.domain.accounting import PeriodFigures
from sla_operator.domain.intervals import Interval
from sla_operator.domain.model import Environment, Severity, State
from sla_operator.domain.shards import Sharding
from sla_operator.domain.views import AgreementView, ClosedPeriodView, Histogram, Snapshot
from sla_operator.engine import Engine, EngineSettings
from sla_operator.exposition import WrittenFamily, render_text
from sla_operator.local.store import LocalStore
from sla_operator.metrics import FAMILIES, EngineCollector
from sla_operator.metrics import collector as metrics_collector

ODD = 'Zahlungs-API "neu" \\ ü\nß 支付'


def period(**figures: Any) -> PeriodFigures:
    base = PeriodFigures(Interval(datetime(2026, 11, 1, tzinfo=UTC), datetime(2026, 12, 1, tzinfo=UTC)),
                         "2026-11", 2_279_400.0, 0.0, 0.0, 0.0, 30.0, 2_279_400.0, 0.99998,
                         Decimal("99.9"), 2592.0, 2562.0, 0.988, 1, True, ())
    return replace(base, **figures)


def rich() -> Snapshot:
    """Agreements with every kind of figure and label the families carry."""
    plain = fleet(300).agreements
    odd = replace(
        plain[0], namespace="shop\\x", name="odd", service=ODD, environment=Environment.SANDBOX,
        state=State.DEGRADED, maintenance_active=True,
        period=period(availability=float("nan"), budget_remaining_seconds=-12.5,
                      budget_remaining_ratio=float("-inf"), budget_total_seconds=1e22),
        last_closed=ClosedPeriodView('2026-10 "Q4"\n', 0.9991, 10),
        downtime_total_seconds=float("inf"), eligible_total_seconds=12_345_678.0,
        open_incidents={Severity.P1: 2, Severity.P3: 1}, responses_breached={Severity.P2: 12_345_678},
        probes=(replace(probe('é"p\\\n', fast=3, slow=1), last_ok=False, failures=7,
                        certificate_not_after=NOW + timedelta(days=9),
                        failures_by_reason=(1, 3, 0, 0, 2, 0, 0, 0, 1)),
                replace(probe("waiting", fast=0, slow=0), last_ok=None),
                replace(probe("big", fast=9_000_000, slow=1), successes=9_000_001,
                        latency=Histogram(probe("big", 9_000_000, 1).latency.buckets, float("nan"))),
                replace(probe("tls", fast=1, slow=0),
                        certificate_not_after=datetime(2027, 1, 1, 0, 0, 0, 500, tzinfo=UTC))))
    unevaluated = AgreementView(
        namespace="shop", name="new", service="New", environment=Environment.PRODUCTION,
        objective=Decimal("99.95"), public=True, group=None, state=State.UNKNOWN)
    nothing_eligible = replace(plain[1], name="quiet", period=period(),
                               last_closed=ClosedPeriodView("2026-10", None))
    # prometheus_client writes no _count and _sum below a negative first bound.
    below_zero = replace(plain[2], name="below-zero", probes=tuple(
        replace(p, latency=Histogram(((-1.0, 0), (0.0, 1), (float("inf"), 2)), 0.5))
        for p in plain[2].probes[:3]))
    return replace(fleet(300), agreements=(*plain, odd, unevaluated, nothing_eligible, below_zero))


def registry(engine: Engine, endpoint_histograms: bool | None) -> CollectorRegistry:
    made = CollectorRegistry()
    made.register(EngineCollector(engine, endpoint_histograms=endpoint_histograms))
    return made


def both(engine: Engine, endpoint_histograms: bool | None) -> str:
    """The text both ways, held equal."""
    text = render_text(registry(engine, endpoint_histograms))
    assert text == generate_latest(registry(engine, endpoint_histograms))
    return text.decode()


def agreements_in(text: str) -> set[str]:
    return {s.labels["agreement"] for family in text_string_to_metric_families(text)
            for s in family.samples if "agreement" in s.labels}


@pytest.fixture
def engine(tmp_path: Path) -> Engine:
    made = Engine(LocalStore(tmp_path))
    made.snapshot = rich()
    return made


@pytest.mark.parametrize("endpoint_histograms", [False, True])
def test_every_figure_and_odd_label_is_written_as_its_samples_say(
        engine: Engine, endpoint_histograms: bool) -> None:
    text = both(engine, endpoint_histograms)
    families = {f.name: f for f in text_string_to_metric_families(text)}
    odd = [s for s in families["sla_state"].samples if s.labels["agreement"] == "odd"]
    assert {s.labels["service"] for s in odd} == {ODD}  # escaped, and read back whole
    assert [s.labels["state"] for s in odd if s.value == 1] == ["Degraded"]
    assert 'endpoint="é\\"p\\\\\\n"' in text
    assert 'sla_period_availability_ratio{agreement="odd"' in text
    assert 'sla_period_credit_percent{agreement="odd"' in text
    assert 'sla_availability_ratio{agreement="odd"' in text and " NaN\n" in text
    assert " -Inf\n" in text and " +Inf\n" in text and " 1e+22\n" in text
    assert " 1.2345678e+07\n" in text
    assert "sla_probe_certificate_expiry_timestamp_seconds{" in text
    assert {"odd", "new", "quiet", "below-zero", "service-0000"} <= agreements_in(text)
    assert 'sla_agreement_probe_duration_seconds_count{agreement="below-zero"' not in text
    assert ('sla_probe_duration_seconds_bucket{' in text) is endpoint_histograms


def test_failures_are_written_per_reason_that_occurred_and_add_up_to_the_failures(
        engine: Engine) -> None:
    text = both(engine, False)
    families = {f.name: f for f in text_string_to_metric_families(text)}
    by_reason = {s.labels["reason"]: s.value for s in families["sla_probe_failures"].samples
                 if s.name == "sla_probe_failures_total"}
    assert by_reason == {"dns": 1, "connect": 3, "certificate": 2, "protocol": 1}
    failed = [s.value for s in families["sla_probes"].samples
              if s.labels.get("result") == "failure" and s.labels["agreement"] == "odd"
              and s.labels["endpoint"].startswith("é")]
    assert failed == [sum(by_reason.values())]
    assert 'sla_probe_failures_total{agreement="odd",endpoint="é\\"p\\\\\\n",' in text


def test_endpoint_histograms_follow_the_number_of_endpoints_in_both_renders(
        engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    endpoints = sum(len(view.probes) for view in engine.snapshot.agreements)
    monkeypatch.setattr(metrics_collector, "ENDPOINT_HISTOGRAMS_UP_TO", endpoints)
    assert "sla_probe_duration_seconds_bucket{" in both(engine, None)
    monkeypatch.setattr(metrics_collector, "ENDPOINT_HISTOGRAMS_UP_TO", endpoints - 1)
    text = both(engine, None)
    assert "sla_probe_duration_seconds_bucket{" not in text
    assert "# TYPE sla_probe_duration_seconds histogram\n" in text  # announced, empty


def test_a_standby_writes_no_agreement_in_either_render(engine: Engine) -> None:
    engine.switch.active = False
    text = both(engine, True)
    assert agreements_in(text) == set()
    for spec in FAMILIES:  # each family is announced all the same
        assert f"# HELP {spec.name}{'_total' if spec.kind == 'counter' else ''} " in text
    assert "\nsla_operator_leader 0.0\n" in text


def test_a_shard_writes_its_own_agreements_only_in_either_render(tmp_path: Path) -> None:
    snapshot = rich()
    for index in (0, 1):
        sharding = Sharding(count=2, index=index)
        engine = Engine(LocalStore(tmp_path / str(index)), EngineSettings(sharding=sharding))
        engine.snapshot = snapshot
        owned = {view.name for view in snapshot.agreements if sharding.owns(*view.key)}
        assert 0 < len(owned) < len(snapshot.agreements)  # both shards hold some
        assert agreements_in(both(engine, True)) == owned


def test_an_agreement_that_cannot_be_written_is_left_out_of_the_text_and_logged(
        engine: Engine, caplog: pytest.LogCaptureFixture) -> None:
    snapshot = engine.snapshot
    broken = replace(snapshot.agreements[0], name="broken", objective=None)  # type: ignore[arg-type]
    mixed = replace(snapshot.agreements[1], name="mixed",  # bounds unlike the others'
                    probes=(*snapshot.agreements[1].probes[:-1],
                            replace(snapshot.agreements[1].probes[-1], latency=Histogram())))
    engine.snapshot = replace(snapshot, agreements=(broken, mixed, *snapshot.agreements[2:]))
    with caplog.at_level(logging.ERROR, logger="sla_operator.metrics"):
        text = render_text(registry(engine, False)).decode()
    left_out = [r.getMessage() for r in caplog.records]
    assert left_out == ["agreement team-00/broken: left out of this scrape",
                        "agreement team-01/mixed: left out of this scrape"]
    assert agreements_in(text) == {view.name for view in snapshot.agreements[2:]}
    assert text.encode() == generate_latest(registry(engine, False))


def test_the_render_writes_text_without_making_samples(
        engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    expected = generate_latest(registry(engine, True))

    def no_samples(*_: object) -> None:
        raise AssertionError("samples were made for the text")

    monkeypatch.setattr(metrics_collector, "families", no_samples)
    assert render_text(registry(engine, True)) == expected


def test_a_written_family_makes_its_samples_once_and_only_when_read() -> None:
    made: list[int] = []
    sample = Sample("test_written", {"a": "b"}, 1.0)

    def make() -> list[Sample]:
        made.append(1)
        return [sample]

    family = WrittenFamily("test_written", "Written.", "gauge", make, lambda: [b"x 1.0\n"])
    assert made == []
    assert family.samples == [sample] and family.samples == [sample]
    assert made == [1]
    family.samples = []
    assert family.samples == [] and made == [1]


def test_label_text_is_kept_for_the_last_renders_agreements_only(tmp_path: Path) -> None:
    engine = Engine(LocalStore(tmp_path))
    first, second, third = fleet(300).agreements
    engine.snapshot = replace(fleet(300), agreements=(first, second, third))
    collector = EngineCollector(engine, endpoint_histograms=True)
    made = CollectorRegistry()
    made.register(collector)
    render_text(made)
    kept = dict(collector.labels)
    assert len(kept) == 3
    renamed = replace(first, service='Renamed "one"')
    engine.snapshot = replace(engine.snapshot, agreements=(renamed, second))  # third removed
    text = render_text(made)
    assert text == generate_latest(made)
    assert 'service="Renamed \\"one\\""' in text.decode()
    assert 'service="Service 0"' not in text.decode()
    key = ("team-01", "service-0001", "Service 1", "production")
    assert set(collector.labels) == {("team-00", "service-0000", 'Renamed "one"', "production"),
                                     key}
    assert collector.labels[key] is kept[key]  # reused, not made again
