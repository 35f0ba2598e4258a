"""spec.alerting.tiers: the SRE workbook's tiers by default, each of which an agreement may
disable or change, or add to; every problem named by its field path."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from sla_operator.domain.alert_tiers import DEFAULT_TIERS, BurnTier, parse_tiers
from sla_operator.domain.alerts import rule_groups
from sla_operator.domain.errors import SpecError
from sla_operator.domain.parse import agreement_from_manifest


def manifest(tiers: object = None, environment: str = "production") -> dict[str, Any]:
    alerting: dict[str, Any] = {"labels": {"team": "payments"}}
    if tiers is not None:
        alerting["tiers"] = tiers
    return {"metadata": {"name": "payments-api", "namespace": "payments"},
            "spec": {"service": "Payments API", "objective": "99.9", "environment": environment,
                     "endpoints": [{"name": "api", "tcp": {"host": "db", "port": 5432}}],
                     "alerting": alerting}}


def burn_alerts(tiers: object = None, environment: str = "production") -> list[dict[str, Any]]:
    [group] = rule_groups(agreement_from_manifest(manifest(tiers, environment)))
    return [r for r in group["rules"] if r.get("alert") == "SLAErrorBudgetBurn"]


def problems(tiers: object) -> list[str]:
    with pytest.raises(SpecError) as raised:
        agreement_from_manifest(manifest(tiers))
    return [str(problem) for problem in raised.value.problems]


def test_the_defaults_are_the_sre_workbooks_four_tiers() -> None:
    assert [(t.name, t.severity, t.factor, t.long_window, t.short_window)
            for t in parse_tiers(None)] == [
        ("fast", "page", Decimal("14.4"), "1h", "5m"),
        ("medium", "page", Decimal("6"), "6h", "30m"),
        ("slow", "ticket", Decimal("3"), "1d", "2h"),
        ("long-term", "ticket", Decimal("1"), "3d", "6h")]
    assert agreement_from_manifest(manifest()).alerting.tiers == DEFAULT_TIERS
    assert parse_tiers([]) == DEFAULT_TIERS


def test_every_burn_alert_carries_its_tier_label() -> None:
    assert [(a["labels"]["tier"], a["labels"]["severity"]) for a in burn_alerts()] == [
        ("fast", "page"), ("medium", "page"), ("slow", "ticket"), ("long-term", "ticket")]


def test_a_tier_can_be_disabled() -> None:
    alerts = burn_alerts([{"name": "medium", "enabled": False}])
    assert [a["labels"]["tier"] for a in alerts] == ["fast", "slow", "long-term"]
    everything_off = [{"name": t.name, "enabled": False} for t in DEFAULT_TIERS]
    assert burn_alerts(everything_off) == []


def test_only_the_fields_given_change() -> None:
    [fast, *_] = parse_tiers([{"name": "fast", "factor": 10}])
    assert fast == BurnTier("fast", "page", Decimal("10"), "1h", "5m")
    [_, medium, *_] = parse_tiers([{"name": "medium", "severity": "ticket",
                                    "longWindow": "12h", "shortWindow": "1h"}])
    assert medium == BurnTier("medium", "ticket", Decimal("6"), "12h", "1h")


def test_a_changed_window_gets_its_recording_rule_and_the_contracts_seven_stay() -> None:
    agreement = agreement_from_manifest(manifest([
        {"name": "fast", "factor": 20, "longWindow": "2h", "shortWindow": "10m"}]))
    [group] = rule_groups(agreement)
    records = [r["record"] for r in group["rules"] if "record" in r]
    assert records == [f"sla:error_ratio:rate{w}"
                       for w in ("5m", "30m", "1h", "2h", "6h", "1d", "3d", "10m")]
    [fast] = [r for r in group["rules"] if r.get("labels", {}).get("tier") == "fast"]
    assert fast["expr"] == ('(sla:error_ratio:rate2h{namespace="payments",agreement='
                            '"payments-api"} > 0.02 and sla:error_ratio:rate10m{namespace='
                            '"payments",agreement="payments-api"} > 0.02) / 0.001')
    assert (fast["labels"]["long_window"], fast["labels"]["short_window"]) == ("2h", "10m")


def test_a_new_tier_is_added_after_the_defaults() -> None:
    alerts = burn_alerts([{"name": "weekly", "factor": "0.5", "longWindow": "7d",
                           "shortWindow": "12h", "severity": "ticket"}])
    assert [a["labels"]["tier"] for a in alerts][-1] == "weekly"


def test_a_sandbox_drops_page_tiers_even_changed_ones() -> None:
    alerts = burn_alerts([{"name": "slow", "severity": "page"}], environment="sandbox")
    assert [a["labels"]["tier"] for a in alerts] == ["long-term"]


def test_the_users_labels_cannot_override_the_tier() -> None:
    agreement = agreement_from_manifest({**manifest(), "spec": {
        **manifest()["spec"], "alerting": {"labels": {"tier": "mine"}}}})
    [group] = rule_groups(agreement)
    assert {r["labels"]["tier"] for r in group["rules"] if r.get("alert") ==
            "SLAErrorBudgetBurn"} == {"fast", "medium", "slow", "long-term"}


@pytest.mark.parametrize(("tiers", "expected"), [
    ({"fast": {}}, "spec.alerting.tiers: must be a list of tiers"),
    (["fast"], "spec.alerting.tiers[0]: must be an object with a name"),
    ([{"factor": 2}], "spec.alerting.tiers[0].name: None is not a tier name"),
    ([{"name": "Fast!"}], "spec.alerting.tiers[0].name: 'Fast!' is not a tier name"),
    ([{"name": "fast"}, {"name": "fast", "enabled": False}],
     "spec.alerting.tiers[1].name: tier 'fast' is already given at spec.alerting.tiers[0]"),
    ([{"name": "fast", "factor": 0}], "spec.alerting.tiers[0].factor: 0 is not a burn-rate "
                                      "factor: a number from 0.01 to 1000"),
    ([{"name": "fast", "factor": "lots"}], "spec.alerting.tiers[0].factor: 'lots' is not"),
    ([{"name": "fast", "severity": "critical"}],
     "spec.alerting.tiers[0].severity: 'critical' is not one of page, ticket"),
    ([{"name": "fast", "longWindow": "1.5h"}],
     "spec.alerting.tiers[0].longWindow: '1.5h' is not a Prometheus duration"),
    ([{"name": "fast", "shortWindow": "30s"}],
     "spec.alerting.tiers[0].shortWindow: '30s' must be at least 1m and at most 366d"),
    ([{"name": "fast", "shortWindow": "2h"}], "spec.alerting.tiers[0].shortWindow: the short "
                                              "window (2h) must be shorter than the long window (1h)"),
    ([{"name": "slow", "longWindow": "1h"}], "spec.alerting.tiers[0].longWindow: the short "
                                             "window (2h) must be shorter than the long window (1h)"),
    ([{"name": "fast", "enabled": "no"}], "spec.alerting.tiers[0].enabled: 'no' is not true or false"),
    ([{"name": "fast", "window": "1h"}], "spec.alerting.tiers[0].window: unknown field"),
    ([{"name": "weekly", "factor": 1}], "spec.alerting.tiers[0]: tier 'weekly' is not one of "
                                        "the defaults (fast, medium, slow, long-term), so it must "
                                        "give longWindow, shortWindow, severity"),
])
def test_a_bad_tier_is_refused_with_its_field_path(tiers: object, expected: str) -> None:
    assert any(problem.startswith(expected) for problem in problems(tiers)), problems(tiers)


def test_every_problem_of_every_tier_is_reported_at_once() -> None:
    found = problems([{"name": "fast", "factor": -1, "severity": "urgent"},
                      {"name": "medium", "shortWindow": "7h"}])
    assert [p.split(":")[0] for p in found] == [
        "spec.alerting.tiers[0].factor", "spec.alerting.tiers[0].severity",
        "spec.alerting.tiers[1].shortWindow"]
