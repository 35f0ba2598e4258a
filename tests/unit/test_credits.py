"""Service credits: tiers parsed with field paths, the credit of a period at and around each
threshold, and the figure in the history, the report and /metrics."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

from sla_operator.domain.accounting import AccountingInput, compute_history
from sla_operator.domain.credits import credit_for_text, credit_percent, parse_credits
from sla_operator.domain.errors import SpecError
from sla_operator.domain.intervals import Interval
from sla_operator.domain.model import (
    Agreement,
    CreditTier,
    Endpoint,
    HttpProbe,
    Incident,
    IncidentType,
    Severity,
    Window,
)
from sla_operator.domain.parse import agreement_from_manifest
from sla_operator.domain.render import history_entry
from sla_operator.domain.statement import format_statement, statement_line
from sla_operator.domain.views import Snapshot
from sla_operator.engine import Engine
from sla_operator.engine.evaluate import evaluate_agreement
from sla_operator.engine.runtime import AgreementRuntime
from sla_operator.engine.snapshot import agreement_view
from sla_operator.exposition import render_text
from sla_operator.local.store import LocalStore
from sla_operator.metrics import EngineCollector

TIERS = (CreditTier(Decimal("99.9"), 10), CreditTier(Decimal("99.0"), 25),
         CreditTier(Decimal("95.0"), 100))
NOVEMBER = datetime(2026, 11, 1, tzinfo=UTC)
DECEMBER = datetime(2026, 12, 1, tzinfo=UTC)
NOVEMBER_SECONDS = 30 * 86_400  # 99.9% of it is met with 2,592 s down, exactly at the threshold


@pytest.mark.parametrize(("availability", "tiers", "expected"), [
    ("100", TIERS, 0),
    ("99.9", TIERS, 0),  # exactly at a threshold: not below it
    ("99.9000", TIERS, 0),
    ("99.8999", TIERS, 10),
    ("99.0", TIERS, 10),
    ("98.9999", TIERS, 25),
    ("95", TIERS, 25),
    ("94.9999", TIERS, 100),
    ("0", TIERS, 100),
    (None, TIERS, 0),  # no eligible time: nothing measured, nothing owed
    ("50", (), 0),  # no tiers
])
def test_the_highest_tier_whose_threshold_the_availability_is_below_wins(
        availability: str | None, tiers: tuple[CreditTier, ...], expected: int) -> None:
    assert credit_percent(tiers, None if availability is None else Decimal(availability)) == expected


def test_tiers_given_in_any_order_earn_the_same_credit() -> None:
    assert credit_percent(TIERS[::-1], Decimal("96")) == 25


@pytest.mark.parametrize(("text", "expected"), [
    ("99.8999", 10), ("99.9000", 0), (None, 0), ("not a number", 0), ("NaN", 0)])
def test_a_history_entrys_text_earns_the_credit_of_its_figure(text: object, expected: int) -> None:
    assert credit_for_text(TIERS, text) == expected


def test_tiers_are_kept_highest_threshold_first() -> None:
    raw = [{"below": "95.0", "percent": 100}, {"below": "99.9", "percent": 10},
           {"below": "99.0", "percent": 25}]
    assert parse_credits(raw, Decimal("99.9")) == TIERS
    assert parse_credits(None, Decimal("99.9")) == ()
    assert parse_credits([], Decimal("99.9")) == ()


def tier(below: object = "99.9", percent: object = 10) -> dict[str, object]:
    return {"below": below, "percent": percent}


@pytest.mark.parametrize(("case", "raw", "path", "words"), [
    ("not a list", {"below": "99"}, "spec.credits", "list of tiers"),
    ("entry not a mapping", ["99.9"], "spec.credits[0]", "tier such as"),
    ("below as a number", [tier(below=99.9)], "spec.credits[0].below", "decimal string"),
    ("below 100", [tier(below="100")], "spec.credits[0].below", "strictly between 0 and 100"),
    ("below 0", [tier(below="0")], "spec.credits[0].below", "strictly between 0 and 100"),
    ("five decimals", [tier(below="99.99999")], "spec.credits[0].below", "at most 4 decimals"),
    ("above the objective", [tier(below="99.95")], "spec.credits[0].below",
     "above the objective (99.9)"),
    ("percent 0", [tier(percent=0)], "spec.credits[0].percent", "from 1 to 100"),
    ("percent 101", [tier(percent=101)], "spec.credits[0].percent", "from 1 to 100"),
    ("percent as text", [tier(percent="10")], "spec.credits[0].percent", "whole percent"),
    ("percent true", [tier(percent=True)], "spec.credits[0].percent", "whole percent"),
    ("missing percent", [{"below": "99.9"}], "spec.credits[0].percent", "whole percent"),
    ("same threshold twice", [tier(), tier(below="99.90", percent=20)],
     "spec.credits[1].below", "also the threshold of spec.credits[0]"),
    ("lower threshold, smaller credit", [tier(percent=25), tier(below="99.0", percent=10)],
     "spec.credits[1].percent", "must be larger than 25"),
])
def test_bad_tiers_are_refused_naming_the_field(case: str, raw: object, path: str,
                                                words: str) -> None:
    with pytest.raises(SpecError) as caught:
        parse_credits(raw, Decimal("99.9"))
    messages = {p.path: p.message for p in caught.value.problems}
    assert path in messages, caught.value
    assert words in messages[path]


def manifest(**spec: Any) -> dict[str, Any]:
    return {"metadata": {"name": "checkout", "namespace": "shop"},
            "spec": {"service": "Checkout", "objective": "99.9",
                     "endpoints": [{"name": "api", "http": {"url": "http://127.0.0.1:1/"}}],
                     **spec}}


def test_the_agreement_carries_its_tiers_and_reports_every_problem_at_once() -> None:
    parsed = agreement_from_manifest(manifest(credits=[tier(), tier("99.0", 25)]))
    assert parsed.credits == TIERS[:2]
    assert agreement_from_manifest(manifest()).credits == ()
    with pytest.raises(SpecError) as caught:
        agreement_from_manifest(manifest(objective="abc", credits=[tier(percent=0)],
                                         endpoints=[]))
    assert {p.path for p in caught.value.problems} == {
        "spec.objective", "spec.credits[0].percent", "spec.endpoints"}


API = Endpoint("api", HttpProbe("http://127.0.0.1:8099/healthz"))


def checkout(credits: tuple[CreditTier, ...] = TIERS) -> Agreement:
    return Agreement(namespace="shop", name="checkout", service="Checkout",
                     objective=Decimal("99.9"), endpoints=(API,), created_at=NOVEMBER,
                     credits=credits)


def outage(seconds: int) -> Incident:
    started = datetime(2026, 11, 30, 23, 0, tzinfo=UTC) - timedelta(seconds=seconds)
    return Incident(namespace="shop", name="checkout-outage", agreement="checkout",
                    type=IncidentType.OUTAGE, severity=Severity.P1, title="down",
                    started_at=started, resolved_at=started + timedelta(seconds=seconds))


def november_entry(runtime: AgreementRuntime, incidents: list[Incident]) -> dict[str, Any]:
    result = evaluate_agreement(runtime, incidents, [], DECEMBER + timedelta(seconds=1))
    (entry,) = [e for e in result.status["history"] if e["period"] == "2026-11"]
    return dict(entry)


@pytest.mark.parametrize(("down_seconds", "availability", "met", "credit"), [
    (0, "100.0000", True, 0),
    (NOVEMBER_SECONDS // 1000, "99.9000", True, 0),  # exactly 99.9: met, no credit
    (NOVEMBER_SECONDS // 1000 + 1, "99.8999", False, 10),  # one second more: the first tier
    (NOVEMBER_SECONDS // 100 + 1, "98.9999", False, 25),
    (NOVEMBER_SECONDS // 10, "90.0000", False, 100),
])
def test_a_closed_month_carries_the_credit_its_availability_earns(
        down_seconds: int, availability: str, met: bool, credit: int) -> None:
    incidents = [outage(down_seconds)] if down_seconds else []
    inputs = AccountingInput(Decimal("99.9"), NOVEMBER, [], incidents)
    (figures,) = compute_history(inputs, Window(), DECEMBER + timedelta(seconds=1), 1)
    entry = history_entry(figures, TIERS)
    assert (entry["availability"], entry["met"], entry["creditPercent"]) == (availability, met, credit)


def test_a_month_that_is_all_unmonitored_earns_no_credit() -> None:
    inputs = AccountingInput(Decimal("99.9"), NOVEMBER, [], [outage(NOVEMBER_SECONDS // 10)],
                             [Interval(NOVEMBER, DECEMBER)])
    (figures,) = compute_history(inputs, Window(), DECEMBER + timedelta(seconds=1), 1)
    assert history_entry(figures, TIERS)["creditPercent"] == 0


def test_a_month_with_no_eligible_time_earns_no_credit() -> None:
    runtime = AgreementRuntime(checkout(), started=NOVEMBER)
    runtime.history["2026-11"] = {"period": "2026-11", "availability": None, "met": True}
    assert november_entry(runtime, [])["creditPercent"] == 0


def test_an_entry_taken_back_without_a_credit_gets_the_one_its_tiers_give() -> None:
    runtime = AgreementRuntime(checkout(), started=NOVEMBER)
    restored = {"period": "2026-11", "availability": "99.5000", "met": False}
    runtime.history["2026-11"] = restored
    entry = november_entry(runtime, [])
    assert entry == {**restored, "creditPercent": 10}  # the frozen figures themselves unchanged
    assert "creditPercent" not in restored  # replaced, not changed in place


def test_without_tiers_every_period_earns_nothing() -> None:
    runtime = AgreementRuntime(checkout(credits=()), started=NOVEMBER)
    runtime.history["2026-11"] = {"period": "2026-11", "availability": "90.0000",
                                  "creditPercent": 100}  # tiers since removed
    assert november_entry(runtime, [])["creditPercent"] == 0


def test_metrics_show_the_last_closed_periods_credit(tmp_path: Path) -> None:
    runtime = AgreementRuntime(checkout(), started=NOVEMBER)
    runtime.history["2026-11"] = {"period": "2026-11", "availability": "99.8999", "met": False}
    november_entry(runtime, [])
    engine = Engine(LocalStore(tmp_path))
    engine.snapshot = Snapshot(DECEMBER, (agreement_view(runtime, {}),))
    registry = CollectorRegistry()
    registry.register(EngineCollector(engine, endpoint_histograms=False))
    text = render_text(registry).decode()
    (family,) = [f for f in text_string_to_metric_families(text)
                 if f.name == "sla_period_credit_percent"]
    assert [(s.labels["agreement"], s.labels["period"], s.value) for s in family.samples] == [
        ("checkout", "2026-11", 10.0)]


def test_the_report_shows_the_credit_in_every_format() -> None:
    line = statement_line(checkout(), [], [outage(NOVEMBER_SECONDS // 100 + 1)], [], "2026-11",
                          DECEMBER + timedelta(days=3))
    assert line.credit_percent == 25
    table = format_statement([line], "table").splitlines()
    assert "CREDIT" in table[0].split()
    assert table[1].split()[table[0].split().index("CREDIT")] == "25%"
    assert json.loads(format_statement([line], "json"))["agreements"][0]["credit_percent"] == 25
    (row,) = csv.DictReader(io.StringIO(format_statement([line], "csv")))
    assert row["credit_percent"] == "25"
