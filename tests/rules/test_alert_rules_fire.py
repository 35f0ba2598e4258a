"""The generated rules on synthetic series in `promtool test rules`: what fires, and when.

Series are sampled every minute, as Prometheus would scrape the operator; minute 0 is the
first sample. Each expectation is exact (the full set of alerts of that name), and where a
test names the minute an alert fires, the minute before it says it did not fire yet.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

from promtool_support import Scenario, engine_counters, run_promtool, steps

from sla_operator.domain.alert_tiers import parse_tiers
from sla_operator.domain.model import Agreement, Alerting, Endpoint, Environment, TcpProbe

BURN = "SLAErrorBudgetBurn"
DAY = 1440


def agreement(name: str = "payments-api", objective: str = "99.9",
              tiers: list[dict[str, Any]] | None = None, **fields: Any) -> Agreement:
    """An agreement; ``tiers`` is its spec.alerting.tiers."""
    return Agreement(namespace="payments", name=name, service=f"Service {name}",
                     objective=Decimal(objective), endpoints=(Endpoint("api", TcpProbe("h", 1)),),
                     alerting=Alerting(labels={"team": "payments"}, tiers=parse_tiers(tiers)),
                     **fields)


def identity(a: Agreement, **labels: str) -> dict[str, str]:
    return {"namespace": a.namespace, "agreement": a.name, "service": a.service,
            "environment": a.environment.value, "team": "payments", **labels}


DEFAULT_TIER = {"1h": "fast", "6h": "medium", "1d": "slow", "3d": "long-term"}
"""The default tiers' names, by their long window."""


def burn(a: Agreement, severity: str, long: str, short: str, tier: str = "") -> dict[str, str]:
    return identity(a, severity=severity, long_window=long, short_window=short,
                    tier=tier or DEFAULT_TIER[long])


def every_burn(a: Agreement) -> list[dict[str, str]]:
    return [burn(a, "page", "1h", "5m"), burn(a, "page", "6h", "30m"),
            burn(a, "ticket", "1d", "2h"), burn(a, "ticket", "3d", "6h")]


def healthy_gauges(scenario: Scenario, minutes: int) -> Scenario:
    a = scenario.agreement
    return (scenario.add("sla_objective_ratio", f"{a.objective_ratio}x{minutes}")
            .add("sla_error_budget_remaining_seconds", f"2000x{minutes}")
            .add("sla_error_budget_remaining_ratio", f"0.8x{minutes}")
            .add("sla_incident_response_breached_total", f"0x{minutes}", severity="P1"))


def outage(a: Agreement, healthy: int, down: int) -> Scenario:
    """Healthy for ``healthy`` minutes, then every eligible second Down."""
    total = healthy + down
    scenario = Scenario(a).add("sla_eligible_seconds_total", steps((60, total)))
    scenario.add("sla_downtime_seconds_total", steps((0, healthy), (60, down)))
    return healthy_gauges(scenario, total)


def assert_passes(tmp_path: Path, agreements: list[Agreement], *scenarios: Scenario,
                  annotations: bool = False) -> None:
    result = run_promtool(tmp_path, agreements, list(scenarios), annotations)
    assert result.returncode == 0, result.stdout[:6000] + result.stderr[-2000:]


def test_a_full_outage_pages_within_five_minutes(tmp_path: Path) -> None:
    a = agreement()
    scenario = outage(a, healthy=60, down=60).expect(60, BURN)
    # One minute of outage is a 1h error ratio of 1/60, above 14.4 x 0.001: every tier fires
    # at the first evaluation that sees the outage.
    scenario.expect(61, BURN, *every_burn(a)).expect(65, BURN, *every_burn(a))
    assert_passes(tmp_path, [a], scenario)


def test_the_page_says_how_fast_the_budget_burns_and_how_much_is_left(tmp_path: Path) -> None:
    a = agreement()
    scenario = outage(a, healthy=60, down=10)
    check = {"eval_time": "70m", "alertname": BURN, "exp_alerts": [
        {"exp_labels": labels, "exp_annotations": {
            "summary": f"{a.service} is burning its error budget "
                       + ("fast" if labels["severity"] == "page" else "steadily"),
            "description": f"{a.service} (payments/payments-api) burns its error budget at "
                           f"{value}x the sustainable rate over the last {labels['long_window']} "
                           f"(alert above {factor}x over {labels['long_window']} and "
                           f"{labels['short_window']}); 80% of the period's budget is left."}}
        for labels, value, factor in zip(every_burn(a), ("166.7", "142.9", "142.9", "142.9"),
                                         ("14.4", "6", "3", "1"), strict=True)]}
    scenario.checks.append(check)
    assert_passes(tmp_path, [a], scenario, annotations=True)


def test_half_the_budget_rate_for_three_days_never_alerts(tmp_path: Path) -> None:
    a = agreement()
    minutes = 3 * DAY
    scenario = Scenario(a).add("sla_eligible_seconds_total", steps((60, minutes)))
    scenario.add("sla_downtime_seconds_total", steps((0.03, minutes)))  # ratio 0.0005
    healthy_gauges(scenario, minutes)
    for minute in range(0, minutes + 1, 180):
        scenario.expect(minute, BURN)
    assert_passes(tmp_path, [a], scenario)


def test_four_times_the_budget_rate_for_a_day_tickets_and_never_pages(tmp_path: Path) -> None:
    a = agreement()
    scenario = Scenario(a).add("sla_eligible_seconds_total", steps((60, 2 * DAY)))
    scenario.add("sla_downtime_seconds_total", steps((0, DAY), (0.24, DAY)))  # ratio 0.004
    healthy_gauges(scenario, 2 * DAY)
    slow_ticket = burn(a, "ticket", "3d", "6h")
    # With two days of data, the 3d ratio passes 1x after 8h of 4x (4b > 24 + b); the 1d
    # ratio passes 3x after 18h (4b > 3 x 24). No page: 4x stays under 6x and 14.4x.
    # (At 8h and 18h exactly the ratio equals the threshold: those hours are not asserted.)
    for hour in range(0, 24 + 8):
        scenario.expect(hour * 60, BURN)
    for hour in range(24 + 9, 24 + 18):
        scenario.expect(hour * 60, BURN, slow_ticket)
    for hour in range(24 + 19, 49):
        scenario.expect(hour * 60, BURN, slow_ticket, burn(a, "ticket", "1d", "2h"))
    assert_passes(tmp_path, [a], scenario)


def test_maintenance_alerts_nothing(tmp_path: Path) -> None:
    a = agreement()
    scenario = Scenario(a).add("sla_eligible_seconds_total", steps((60, 60), (0, 240)))
    scenario.add("sla_downtime_seconds_total", steps((0, 60), (0, 240)))
    healthy_gauges(scenario, 300)
    scenario.add("sla_maintenance_active", "0x60 1x240")
    for minute in (59, 61, 65, 90, 180, 300):
        for name in (BURN, "SLAErrorBudgetExhausted", "SLAIncidentResponseBreached",
                     "SLAMetricsAbsent"):
            scenario.expect(minute, name)
    assert_passes(tmp_path, [a], scenario)


def test_an_exhausted_budget_opens_a_ticket_after_a_minute(tmp_path: Path) -> None:
    a = agreement()
    scenario = Scenario(a).add("sla_error_budget_remaining_seconds", "120x29 -5x30")
    scenario.add("sla_objective_ratio", "0.999x60")
    # The budget runs out at minute 30; the alert is pending then, and fires a minute later.
    scenario.expect(29, "SLAErrorBudgetExhausted").expect(30, "SLAErrorBudgetExhausted")
    scenario.expect(31, "SLAErrorBudgetExhausted", identity(a, severity="ticket"))
    assert_passes(tmp_path, [a], scenario)


def test_a_late_response_opens_a_ticket(tmp_path: Path) -> None:
    a = agreement()
    scenario = Scenario(a).add("sla_incident_response_breached_total", "0x29 1x30", severity="P2")
    scenario.add("sla_objective_ratio", "0.999x60")
    name = "SLAIncidentResponseBreached"
    scenario.expect(29, name).expect(30, name, identity(a, severity="ticket", incident_severity="P2"))
    assert_passes(tmp_path, [a], scenario)


def test_absent_metrics_page_after_ten_minutes(tmp_path: Path) -> None:
    a, sandbox = agreement(), agreement("sandbox", environment=Environment.SANDBOX)
    scenario = Scenario(a).add("sla_probes_total", "1+1x30", result="success")
    scenario.expect(9, "SLAMetricsAbsent")
    scenario.expect(10, "SLAMetricsAbsent", identity(a, severity="page"),
                    identity(sandbox, severity="ticket"))
    assert_passes(tmp_path, [a, sandbox], scenario)


def test_a_sandbox_outage_opens_tickets_only(tmp_path: Path) -> None:
    a = agreement("sandbox", environment=Environment.SANDBOX)
    scenario = outage(a, healthy=60, down=60).expect(61, BURN, *every_burn(a)[2:])
    scenario.expect(120, BURN, *every_burn(a)[2:])
    assert_passes(tmp_path, [a], scenario)


def test_two_agreements_never_share_a_ratio_or_an_alert(tmp_path: Path) -> None:
    down, up = agreement("down"), agreement("up")
    scenario = outage(down, healthy=60, down=10)
    scenario.series.update(outage(up, healthy=70, down=0).series)
    scenario.expect(70, BURN, *every_burn(down))
    assert_passes(tmp_path, [down, up], scenario)


def test_an_objective_of_90_pages_once_a_whole_hour_is_down(tmp_path: Path) -> None:
    # 14.4 x 0.1 exceeds any error ratio; the tier fires when both its windows are all Down.
    a = agreement(objective="90")
    scenario = outage(a, healthy=120, down=120)
    tickets = [burn(a, "ticket", "1d", "2h"), burn(a, "ticket", "3d", "6h")]
    # At 179 minutes the 1h window still holds the last healthy sample; at 180 it is all Down.
    scenario.expect(179, BURN, *tickets)
    scenario.expect(180, BURN, burn(a, "page", "1h", "5m"), *tickets)
    assert_passes(tmp_path, [a], scenario)


def test_every_capped_tier_fires_through_a_full_outage_counted_as_the_engine_counts(
        tmp_path: Path) -> None:
    # Tiers out of reach are capped at a ratio of 1: at 90% the 1h page, at 80% both pages, at
    # 60% the 1d ticket as well. The engine adds the same float to both counters each round,
    # and the two sums round apart: a fully Down window's ratio can come out a hair below 1.
    # Each minute after the longest capped window is all Down, every tier fires.
    healthy, checked = 5, 180
    scenarios, agreements = [], []
    for seed, (objective, longest) in enumerate((("90", 60), ("80", 360), ("60", DAY))):
        a = agreement(f"objective-{objective}", objective=objective)
        downtime, eligible = engine_counters(healthy, longest + checked + 1, seed=seed)
        scenario = Scenario(a).add("sla_downtime_seconds_total", downtime)
        scenario.add("sla_eligible_seconds_total", eligible)
        for minute in range(healthy + longest + 1, healthy + longest + checked + 1):
            scenario.expect(minute, BURN, *every_burn(a))
        scenarios.append(scenario)
        agreements.append(a)
    assert_passes(tmp_path, agreements, *scenarios)


def test_a_disabled_tier_stays_silent_through_an_outage_the_others_alert_on(
        tmp_path: Path) -> None:
    a = agreement(tiers=[{"name": "fast", "enabled": False},
                         {"name": "long-term", "enabled": False}])
    scenario = outage(a, healthy=60, down=60)
    # By default every tier fires at the first minute of a full outage (see above).
    for minute in (61, 65, 120):
        scenario.expect(minute, BURN, burn(a, "page", "6h", "30m"), burn(a, "ticket", "1d", "2h"))
    assert_passes(tmp_path, [a], scenario)


def test_a_changed_tier_fires_at_its_own_factor_over_its_own_windows_as_its_severity(
        tmp_path: Path) -> None:
    # fast: 20x (an error ratio above 0.02) over 2h and 10m, as a ticket. Three hours healthy,
    # then Down: k minutes into the outage the 2h ratio is k/120, above 0.02 from k = 3 (the
    # default fast tier, 14.4x over 1h, would have paged at k = 1).
    a = agreement(tiers=[{"name": "fast", "factor": 20, "longWindow": "2h",
                          "shortWindow": "10m", "severity": "ticket"}])
    scenario = outage(a, healthy=180, down=10)
    others = (burn(a, "page", "6h", "30m"), burn(a, "ticket", "1d", "2h"),
              burn(a, "ticket", "3d", "6h"))
    scenario.expect(182, BURN, *others)
    scenario.expect(183, BURN, burn(a, "ticket", "2h", "10m", tier="fast"), *others)
    scenario.expect(190, BURN, burn(a, "ticket", "2h", "10m", tier="fast"), *others)
    assert_passes(tmp_path, [a], scenario)


def test_an_added_tier_alerts_with_its_own_name(tmp_path: Path) -> None:
    a = agreement(tiers=[{"name": "weekly", "factor": "0.5", "longWindow": "7d",
                          "shortWindow": "12h", "severity": "ticket"}])
    scenario = outage(a, healthy=60, down=60)
    scenario.expect(61, BURN, *every_burn(a), burn(a, "ticket", "7d", "12h", tier="weekly"))
    assert_passes(tmp_path, [a], scenario)
