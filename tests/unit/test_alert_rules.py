"""Rule generation: the SRE workbook's burn-rate tiers, labels and annotations per agreement,
sandbox and disabled agreements, and user text that must not reach PromQL or templates raw."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from sla_operator.domain.alerts import (
    TIERS,
    label_name,
    prometheus_rule,
    promql_string,
    rule_file,
    rule_groups,
    template_literal,
    tier_threshold,
)
from sla_operator.domain.model import Agreement, Alerting, Endpoint, Environment, TcpProbe


def make(objective: str = "99.9", **fields: Any) -> Agreement:
    defaults: dict[str, Any] = {
        "namespace": "payments", "name": "payments-api", "service": "Payments API",
        "objective": Decimal(objective),
        "endpoints": (Endpoint("api", TcpProbe("127.0.0.1", 80)),),
        "alerting": Alerting(labels={"team": "payments"},
                             runbook_url="https://runbooks.example.com/payments"),
    }
    return Agreement(**{**defaults, **fields})


def rules_of(agreement: Agreement) -> list[dict[str, Any]]:
    [group] = rule_groups(agreement)
    rules: list[dict[str, Any]] = group["rules"]
    return rules


def alerts(agreement: Agreement, name: str) -> list[dict[str, Any]]:
    return [r for r in rules_of(agreement) if r.get("alert") == name]


def test_error_ratio_is_recorded_over_each_window_of_its_own() -> None:
    records = {r["record"]: r["expr"] for r in rules_of(make()) if "record" in r}
    assert list(records) == [f"sla:error_ratio:rate{w}"
                             for w in ("5m", "30m", "1h", "2h", "6h", "1d", "3d")]
    for name, expression in records.items():
        window = name.removeprefix("sla:error_ratio:rate")
        scope = '{namespace="payments",agreement="payments-api"}'
        assert f"rate(sla_downtime_seconds_total{scope}[{window}])" in expression
        assert f"rate(sla_eligible_seconds_total{scope}[{window}])" in expression
        assert expression.count(f"[{window}]") == 2


@pytest.mark.parametrize(("severity", "long", "short", "threshold"), [
    ("page", "1h", "5m", "0.0144"),   # 14.4 x 0.001
    ("page", "6h", "30m", "0.006"),   # 6 x 0.001
    ("ticket", "1d", "2h", "0.003"),  # 3 x 0.001
    ("ticket", "3d", "6h", "0.001"),  # 1 x 0.001
])
def test_burn_tiers_of_a_99_9_objective(severity: str, long: str, short: str,
                                        threshold: str) -> None:
    [alert] = [a for a in alerts(make("99.9"), "SLAErrorBudgetBurn")
               if a["labels"]["long_window"] == long]
    assert alert["labels"]["severity"] == severity
    assert alert["labels"]["short_window"] == short
    scope = '{namespace="payments",agreement="payments-api"}'
    assert alert["expr"] == (f"(sla:error_ratio:rate{long}{scope} > {threshold} and "
                             f"sla:error_ratio:rate{short}{scope} > {threshold}) / 0.001")


def test_a_tier_out_of_reach_fires_on_a_total_outage_instead() -> None:
    # 90%: 14.4 x 0.1 = 1.44 is more than any error ratio can be; 6 x 0.1 = 0.6 is not.
    agreement = make("90")
    fast, slow = TIERS[0], TIERS[1]
    assert tier_threshold(agreement, fast) == (Decimal(1), True)
    assert tier_threshold(agreement, slow) == (Decimal("0.6"), False)
    [page] = [a for a in alerts(agreement, "SLAErrorBudgetBurn")
              if a["labels"]["long_window"] == "1h"]
    assert "rate1h{" in page["expr"] and ">= 0.999999 and" in page["expr"]


def test_every_alert_carries_the_agreement_and_the_users_labels() -> None:
    agreement = make(alerting=Alerting(labels={"team": "payments", "app.kubernetes.io/part-of": "shop",
                                               "severity": "low", "namespace": "elsewhere"}))
    for rule in rules_of(agreement):
        assert rule["labels"]["namespace"] == "payments"
        assert rule["labels"]["agreement"] == "payments-api"
        if "alert" in rule:
            assert rule["labels"]["team"] == "payments"
            assert rule["labels"]["app_kubernetes_io_part_of"] == "shop"
            assert rule["labels"]["severity"] in ("page", "ticket")  # the user's cannot route


def test_every_alert_has_a_summary_a_description_and_the_runbook() -> None:
    for rule in rules_of(make()):
        if "alert" in rule:
            assert set(rule["annotations"]) == {"summary", "description", "runbook_url"}
            assert rule["annotations"]["runbook_url"] == "https://runbooks.example.com/payments"
    [no_runbook] = alerts(make(alerting=Alerting()), "SLAMetricsAbsent")
    assert "runbook_url" not in no_runbook["annotations"]


def test_the_burn_description_gives_the_burn_rate_and_the_budget_left() -> None:
    [fast, *_] = alerts(make(), "SLAErrorBudgetBurn")
    description = fast["annotations"]["description"]
    assert '{{ $value | printf "%.1f" }}x' in description
    assert "sla_error_budget_remaining_ratio" in description and "humanizePercentage" in description


def test_a_production_agreement_has_every_alert() -> None:
    names = [(a["alert"], a["labels"]["severity"]) for a in rules_of(make()) if "alert" in a]
    assert names == [("SLAErrorBudgetBurn", "page"), ("SLAErrorBudgetBurn", "page"),
                     ("SLAErrorBudgetBurn", "ticket"), ("SLAErrorBudgetBurn", "ticket"),
                     ("SLAErrorBudgetExhausted", "ticket"), ("SLAIncidentResponseBreached", "ticket"),
                     ("SLASupportResponseBreached", "ticket"), ("SLAMetricsAbsent", "page")]
    [exhausted] = alerts(make(), "SLAErrorBudgetExhausted")
    assert exhausted["for"] == "1m" and "<= 0" in exhausted["expr"]
    [absent] = alerts(make(), "SLAMetricsAbsent")
    assert absent["for"] == "10m" and absent["expr"].startswith("absent(sla_objective_ratio{")


def test_a_sandbox_never_pages() -> None:
    sandbox = make(environment=Environment.SANDBOX)
    severities = {a["labels"]["severity"] for a in rules_of(sandbox) if "alert" in a}
    assert severities == {"ticket"}
    assert len(alerts(sandbox, "SLAErrorBudgetBurn")) == 2
    assert alerts(sandbox, "SLAMetricsAbsent")[0]["labels"]["severity"] == "ticket"


def test_alerting_disabled_emits_nothing() -> None:
    disabled = make(alerting=Alerting(enabled=False))
    assert rule_groups(disabled) == []
    assert prometheus_rule(disabled) is None
    assert rule_file([disabled, make(name="other")])["groups"][0]["name"] == "sla/payments/other"


def test_user_text_cannot_inject_promql_or_templates() -> None:
    service = 'Pay"}) or vector(1) #{{ printf "x" }}'
    agreement = make(service=service, alerting=Alerting(
        labels={"team": "{{ .Value }}"}, runbook_url="https://x/{{ $value }}"))
    [absent] = alerts(agreement, "SLAMetricsAbsent")
    assert f"service={promql_string(service)}" in absent["expr"]
    assert 'service="Pay\\"}) or vector(1) #' in absent["expr"]
    assert absent["labels"]["team"] == '{{ "{{" }} .Value }}'
    assert absent["annotations"]["runbook_url"] == 'https://x/{{ "{{" }} $value }}'
    # The service name reaches annotations only as data: $labels.service.
    assert all(service not in text for text in absent["annotations"].values())
    assert template_literal("a {{{ b") == 'a {{ "{{" }}{ b'


def test_kubernetes_label_keys_become_prometheus_label_names() -> None:
    assert label_name("app.kubernetes.io/part-of") == "app_kubernetes_io_part_of"
    assert label_name("9lives") == "_9lives"


def test_the_prometheusrule_is_owned_and_labelled() -> None:
    agreement = make(uid="1234")
    rule = prometheus_rule(agreement, {"release": "prometheus"})
    assert rule is not None
    assert rule["metadata"]["name"] == "payments-api-sla"
    assert rule["metadata"]["namespace"] == "payments"
    assert rule["metadata"]["labels"] == {"release": "prometheus",
                                          "app.kubernetes.io/managed-by": "sla-operator"}
    [owner] = rule["metadata"]["ownerReferences"]
    assert owner["uid"] == "1234" and owner["kind"] == "ServiceLevelAgreement"
    assert rule["spec"]["groups"] == rule_groups(agreement)
    assert "ownerReferences" not in (prometheus_rule(make()) or {})["metadata"]
