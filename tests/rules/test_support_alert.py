"""SLASupportResponseBreached in `promtool test rules`: a ticket when a support request of an
agreement goes late, with the request's severity, for an hour; silent otherwise."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

from promtool_support import Scenario, run_promtool

from sla_operator.domain.model import Agreement, Alerting, Endpoint, Environment, TcpProbe

NAME = "SLASupportResponseBreached"


def agreement(name: str = "payments-api", **fields: object) -> Agreement:
    return Agreement(namespace="payments", name=name, service=f"Service {name}",
                     objective=Decimal("99.9"), endpoints=(Endpoint("api", TcpProbe("h", 1)),),
                     alerting=Alerting(labels={"team": "payments"}), **fields)  # type: ignore[arg-type]


def identity(a: Agreement, **labels: str) -> dict[str, str]:
    return {"namespace": a.namespace, "agreement": a.name, "service": a.service,
            "environment": a.environment.value, "team": "payments", "severity": "ticket",
            **labels}


def assert_passes(tmp_path: Path, agreements: list[Agreement], scenario: Scenario) -> None:
    result = run_promtool(tmp_path, agreements, [scenario], False)
    assert result.returncode == 0, result.stdout[:6000] + result.stderr[-2000:]


def test_a_late_support_response_opens_a_ticket_with_the_requests_severity(tmp_path: Path) -> None:
    a = agreement()
    scenario = Scenario(a).add("sla_support_response_breached_total", "0x29 1x90", severity="P4")
    scenario.add("sla_support_response_breached_total", "0x120", severity="P1")
    scenario.add("sla_objective_ratio", "0.999x120")
    scenario.expect(29, NAME).expect(30, NAME, identity(a, request_severity="P4"))
    scenario.expect(89, NAME, identity(a, request_severity="P4"))
    scenario.expect(91, NAME)  # an hour after the breach the ticket has been filed
    assert_passes(tmp_path, [a], scenario)


def test_no_breach_no_ticket_and_a_restart_of_the_counter_is_no_breach(tmp_path: Path) -> None:
    a = agreement()
    # The process restarts at minute 40: its counter starts again at 0 (breaches before the
    # start are its baseline), and a reset is no increase.
    scenario = Scenario(a).add("sla_support_response_breached_total", "2x39 0x40", severity="P2")
    scenario.add("sla_objective_ratio", "0.999x80")
    for minute in (0, 10, 39, 40, 41, 79):
        scenario.expect(minute, NAME)
    assert_passes(tmp_path, [a], scenario)


def test_a_sandbox_breach_is_a_ticket_too_and_agreements_do_not_share_it(tmp_path: Path) -> None:
    late, quiet = agreement("sandbox", environment=Environment.SANDBOX), agreement("quiet")
    scenario = Scenario(late).add("sla_support_response_breached_total", "0x9 1x20", severity="P3")
    scenario.add("sla_objective_ratio", "0.999x30")
    scenario.series.update(Scenario(quiet).add("sla_support_response_breached_total", "0x30",
                                               severity="P3").series)
    scenario.expect(10, NAME, identity(late, request_severity="P3"))
    assert_passes(tmp_path, [late, quiet], scenario)
