"""The operator on a real API server: apply, probe, incident, recovery, restart, metrics."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from support import REPO, OperatorProcess, Target, get, namespace_with_crds, parse_time, wait_for

Kubectl = Callable[..., Any]
INTERVAL = 1.0  # seconds between probes in these tests
# startedAt and resolvedAt are RFC 3339 times truncated to whole seconds, so they may lie up
# to 1 s before the answer they date, on top of the probe's own spread within an interval.
STAMP_TOLERANCE = INTERVAL + 1.0


@pytest.fixture(scope="module")
def namespace(kubectl: Kubectl) -> Iterator[str]:
    with namespace_with_crds(kubectl, "e2e-op") as name:
        yield name


@pytest.fixture
def target() -> Iterator[Target]:
    server = Target()
    yield server
    server.close()


@pytest.fixture
def operator(kubeconfig: str, namespace: str, tmp_path: Path) -> Iterator[OperatorProcess]:
    process = OperatorProcess(kubeconfig, namespace, tmp_path)
    process.start()
    yield process
    if process.process is not None:
        print(process.log())
    process.stop()


def example(kind: str) -> dict[str, Any]:
    documents = yaml.safe_load_all((REPO / "examples" / "payments-api.yaml").read_text())
    return next(d for d in documents if d["kind"] == kind)


def example_agreement(url: str) -> dict[str, Any]:
    """examples/payments-api.yaml, narrowed to its first endpoint, pointed at the test's target."""
    sla = example("ServiceLevelAgreement")
    endpoint = sla["spec"]["endpoints"][0]
    endpoint.update(interval="1s", timeout="900ms", failureThreshold=3, successThreshold=2)
    endpoint["http"]["url"] = url  # headers (one from the Secret probe-auth) and checks as given
    sla["spec"]["endpoints"] = [endpoint]
    sla["spec"].pop("maintenanceSelector", None)
    return sla


def apply(kubectl: Kubectl, namespace: str, manifest: dict[str, Any]) -> None:
    kubectl("apply", "-n", namespace, "-f", "-", input=json.dumps(manifest))


def incidents(kubectl: Kubectl, namespace: str) -> list[dict[str, Any]]:
    listed = get(kubectl, namespace, "incidents")
    return list(listed["items"]) if listed else []


def test_an_outage_is_probed_recorded_resolved_and_survives_a_restart(
        kubectl: Kubectl, namespace: str, target: Target, operator: OperatorProcess,
        capsys: pytest.CaptureFixture[str]) -> None:
    sla = example_agreement(target.url)
    secret = example("Secret")
    apply(kubectl, namespace, secret)
    wait_for("the operator to serve /metrics", operator.metrics)
    applied_at = time.monotonic()
    apply(kubectl, namespace, sla)

    def status() -> dict[str, Any]:
        obj = get(kubectl, namespace, "sla/payments-api")
        return dict((obj or {}).get("status") or {})

    wait_for("a first status on the SLA", lambda: status().get("state"), every=0.1)
    first_status_seconds = time.monotonic() - applied_at
    wait_for("state Up", lambda: status().get("state") == "Up")
    up = status()
    assert up["conditions"][0]["type"] == "Ready" and up["conditions"][0]["status"] == "True"
    assert up["endpoints"][0]["name"] == "api" and up["endpoints"][0]["state"] == "Up"
    token = secret["stringData"]["token"]
    assert target.authorization == {token}  # read from the Secret, sent with every probe

    # The service breaks: three failed probes make it Down, dated at the first failure.
    broke_at = datetime.now(UTC)
    target.set_healthy(False)
    opened = wait_for("an outage incident", lambda: incidents(kubectl, namespace))
    assert len(opened) == 1
    incident = opened[0]
    first_failure = target.first_answer(503, broke_at)
    assert first_failure is not None
    started = parse_time(incident["spec"]["startedAt"])
    assert abs((started - first_failure).total_seconds()) <= STAMP_TOLERANCE
    assert incident["spec"]["severity"] == "P1"  # the only own endpoint is down
    assert incident["spec"]["type"] == "outage" and incident["spec"]["impact"] == "downtime"
    assert incident["metadata"]["labels"]["sla.dev/agreement"] == "payments-api"
    owner = incident["metadata"]["ownerReferences"][0]
    sla_object = get(kubectl, namespace, "sla/payments-api")
    assert (owner["kind"], owner["name"], owner["uid"]) == (
        "ServiceLevelAgreement", "payments-api", sla_object["metadata"]["uid"])
    wait_for("state Down with the incident listed", lambda: status().get("state") == "Down"
             and status().get("openIncidents") == [incident["metadata"]["name"]])

    # It recovers: two good probes resolve the incident, dated at the first success.
    time.sleep(3 * INTERVAL)
    healed_at = datetime.now(UTC)
    target.set_healthy(True)

    def resolved() -> dict[str, Any] | None:
        items = incidents(kubectl, namespace)
        return items[0] if items and items[0]["spec"].get("resolvedAt") else None

    closed = wait_for("the incident resolved", resolved)
    assert closed["spec"]["state"] == "resolved"
    first_success = target.first_answer(200, healed_at)
    assert first_success is not None
    resolved_at = parse_time(closed["spec"]["resolvedAt"])
    assert abs((resolved_at - first_success).total_seconds()) <= STAMP_TOLERANCE
    outage_seconds = (resolved_at - started).total_seconds()

    def settled() -> dict[str, Any] | None:
        current = status()
        period = current.get("currentPeriod") or {}
        return current if current.get("state") == "Up" and not current.get("openIncidents") \
            and abs(period.get("downtimeSeconds", -100) - outage_seconds) <= 1 else None

    final = wait_for("availability accounting the outage", settled)
    period = final["currentPeriod"]
    eligible, downtime = period["eligibleSeconds"], period["downtimeSeconds"]
    # Both figures are whole seconds in the status: allow for their rounding.
    expected = (eligible - downtime) / eligible * 100
    assert float(period["availability"]) == pytest.approx(expected, abs=100 * 1.5 / eligible)
    assert float(period["availability"]) < 100
    total = period["errorBudget"]["totalSeconds"]
    assert period["errorBudget"]["remainingSeconds"] == pytest.approx(total - outage_seconds, abs=1)

    # A restart loses nothing and opens nothing.
    before = dict(period)
    operator.stop()
    restarted_at = datetime.now(UTC)
    operator.start()
    # The stopped process wrote statuses until its last second: only a later one is the new one's.
    wait_for("a status written after the restart",
             lambda: parse_time(status().get("lastEvaluated", "1970-01-01T00:00:00Z"))
             > restarted_at and status().get("state") == "Up")
    after = status()["currentPeriod"]
    assert after["downtimeSeconds"] == pytest.approx(before["downtimeSeconds"], abs=1)
    assert len(incidents(kubectl, namespace)) == 1

    labels = {"namespace": namespace, "agreement": "payments-api", "service": "Payments API",
              "environment": "production"}
    key = tuple(sorted(labels.items()))

    def scrape() -> tuple[str, dict[tuple[str, tuple[tuple[str, str], ...]], float]] | None:
        text = operator.metrics()
        if not text:
            return None
        found = {(sample.name, tuple(sorted(sample.labels.items()))): sample.value
                 for family in text_string_to_metric_families(text) for sample in family.samples}
        # /metrics answers before the watch has delivered the agreement, and the burn-rate
        # counters start with the process: they grow from its second evaluation on. The
        # restored Up state is evaluated before the endpoint's first probe (at its phase in
        # the interval) has answered, and a probe's series appear with its first result.
        probed = (("sla_probe_success", tuple(sorted({**labels, "endpoint": "api",
                                                      "location": "default"}.items())))
                  in found)
        return (text, found) if found.get(("sla_eligible_seconds_total", key), 0) > 0 \
            and probed else None

    metrics, samples = wait_for("the agreement's metrics", scrape)
    scraped = datetime.now(UTC)
    later = wait_for("a status evaluated after the scrape", lambda: (s := status()) and parse_time(
        s.get("lastEvaluated", "1970-01-01T00:00:00Z")) > scraped and s)["currentPeriod"]

    def value(name: str, **extra: str) -> float:
        return samples[(name, tuple(sorted({**labels, **extra}.items())))]

    assert value("sla_objective_ratio") == pytest.approx(0.999)
    # While the service is Up availability only grows, and fast this early in the agreement's
    # life: the scrape falls between the statuses written before and after it.
    assert float(after["availability"]) / 100 - 1e-4 <= value("sla_availability_ratio") \
        <= float(later["availability"]) / 100 + 1e-4
    assert value("sla_error_budget_remaining_seconds") == pytest.approx(
        after["errorBudget"]["remainingSeconds"], abs=2)
    assert 0 < value("sla_error_budget_remaining_ratio") < 1
    assert value("sla_state", state="Up") == 1 and value("sla_state", state="Down") == 0
    assert value("sla_probe_success", endpoint="api", location="default") == 1
    assert value("sla_probes_total", endpoint="api", result="success") >= 1
    assert value("sla_agreement_probe_duration_seconds_count") >= 1
    # The restarted process saw the service Up only: its downtime counter has not moved.
    assert value("sla_downtime_seconds_total") == 0
    # A person rules the outage was deliberate blocking and acknowledges it: it stops counting.
    name = incident["metadata"]["name"]
    kubectl("patch", "incident", name, "-n", namespace, "--type=merge", "-p", json.dumps(
        {"spec": {"exclusion": {"reason": "blocked", "note": "customer over quota"},
                  "acknowledgedAt": closed["spec"]["startedAt"], "acknowledgedBy": "oncall"}}))
    excluded = wait_for("the exclusion accounted", lambda: (p := status()["currentPeriod"])[
        "downtimeSeconds"] == 0 and p["excludedSeconds"] > 0 and p)
    assert excluded["excludedSeconds"] == pytest.approx(outage_seconds, abs=1)
    assert excluded["availability"] == "100.0000"
    acknowledged = wait_for("the incident's response status", lambda: (
        (i := get(kubectl, namespace, f"incident/{name}")).get("status", {}).get("responseDue")
        and i["status"]["countedDowntimeSeconds"] == 0 and i))
    assert acknowledged["status"]["responseBreached"] is False
    assert len(incidents(kubectl, namespace)) == 1

    recorded = json.dumps([get(kubectl, namespace, "sla/payments-api"), incidents(kubectl, namespace),
                           get(kubectl, namespace, "events")])
    assert token.split()[-1] not in recorded + operator.log() + metrics
    with capsys.disabled():
        print(f"\n[e2e] kubectl apply -> first SLA status: {first_status_seconds:.2f}s; "
              f"outage {outage_seconds:.1f}s accounted as {after['downtimeSeconds']}s")


def test_a_spec_the_schema_cannot_catch_gets_ready_false_and_an_event(
        kubectl: Kubectl, namespace: str, target: Target, operator: OperatorProcess) -> None:
    sla = example_agreement(target.url)
    sla["metadata"]["name"] = "slow-timeout"
    sla["spec"]["endpoints"][0].update(interval="2s", timeout="5s")  # timeout must be < interval
    apply(kubectl, namespace, sla)

    def ready_condition() -> dict[str, Any] | None:
        obj = get(kubectl, namespace, "sla/slow-timeout") or {}
        found = [c for c in (obj.get("status") or {}).get("conditions") or []
                 if c["type"] == "Ready"]
        return found[0] if found else None

    condition = wait_for("Ready=False", ready_condition)
    assert condition["status"] == "False" and condition["reason"] == "InvalidSpec"
    assert "spec.endpoints[0].timeout" in condition["message"]
    events = wait_for("an InvalidSpec event", lambda: [
        e for e in (get(kubectl, namespace, "events") or {}).get("items", [])
        if e.get("reason") == "InvalidSpec" and e["involvedObject"]["name"] == "slow-timeout"])
    assert "spec.endpoints[0].timeout" in events[0]["message"]
    operator.assert_running()
