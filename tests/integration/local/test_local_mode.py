"""`sla-operator local` as a real process: incidents as files, edits picked up, bad manifests named."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import aiohttp
import pytest
from local_support import LocalProcess, Target, agreement, read, write_manifests

from sla_operator.local.files import write_yaml


def no_open_incident_and(state: str, operator: LocalProcess, name: str = "shop") -> bool:
    status = operator.status(name)
    return status.get("state") == state and status.get("openIncidents") == []


@pytest.mark.parametrize("event_loop", ["uvloop", "asyncio"])
async def test_an_outage_opens_an_incident_and_recovery_resolves_it(
        target: Target, manifests: Path, state: Path, local: Callable[[], LocalProcess],
        event_loop: str) -> None:
    write_manifests(manifests / "shop.yaml", agreement("shop", target.port))
    operator = local().start(*(["--no-uvloop"] if event_loop == "asyncio" else []))
    await operator.wait_for("shop Up", lambda: no_open_incident_and("Up", operator))

    target.failing.add("/api")
    incident_file = await operator.wait_for("an incident file", lambda: operator.incident_files()[0])
    opened = read(incident_file)
    assert opened["apiVersion"] == "sla.dev/v1alpha1" and opened["kind"] == "Incident"
    assert opened["metadata"]["labels"]["sla.dev/agreement"] == "shop"
    assert opened["spec"]["severity"] == "P1" and opened["spec"]["impact"] == "downtime"
    assert opened["spec"]["state"] == "investigating" and opened["spec"]["resolvedAt"] is None
    down = await operator.wait_for("shop Down", lambda: operator.status("shop").get("state") == "Down"
                                   and operator.status("shop"))
    assert down["openIncidents"] == [incident_file.stem]

    target.failing.clear()
    await operator.wait_for("the incident resolved",
                            lambda: read(incident_file)["spec"]["state"] == "resolved")
    await operator.wait_for("shop Up again", lambda: no_open_incident_and("Up", operator))
    resolved = read(incident_file)
    assert resolved["spec"]["resolvedAt"] > resolved["spec"]["startedAt"]
    assert resolved["spec"]["updates"][-1]["message"].startswith("recovered")
    assert resolved["status"]["durationSeconds"] >= 1
    period = operator.status("shop")["currentPeriod"]
    assert period["downtimeSeconds"] >= 1 and period["incidents"] == 1

    assert sorted(str(p.relative_to(state)) for p in operator.state_files()) == [
        "agreements.yaml", f"incidents/demo/{incident_file.name}",
        "status/servicelevelagreements/demo/shop.yaml"]
    async with aiohttp.ClientSession() as session, session.get(
            f"http://127.0.0.1:{operator.metrics_port}/metrics") as response:
        metrics = await response.text()
    assert 'sla_incidents_open{agreement="shop",environment="production",namespace="demo",' \
           'service="Shop",severity="P1"} 0.0' in metrics
    # The line follows the status write the test may have seen a moment before.
    log = await operator.wait_for("the transitions logged", lambda: text if (
        "agreement demo/shop: Down -> Up" in (text := operator.log())) else None)
    assert f"event loop: {event_loop}" in log
    assert f"incident demo/{incident_file.stem} opened: P1 outage" in log
    assert "agreement demo/shop: Up -> Down" in log
    assert operator.stop() == 0


async def test_a_malformed_manifest_is_named_with_file_and_field_and_the_rest_keep_running(
        target: Target, manifests: Path, local: Callable[[], LocalProcess]) -> None:
    write_manifests(manifests / "shop.yaml", agreement("shop", target.port))
    too_long = agreement("late", target.port)
    too_long["spec"]["endpoints"][0]["timeout"] = "3s"
    bad = write_manifests(manifests / "bad.yaml", too_long)
    unreadable = agreement("vague", target.port)
    unreadable["spec"]["endpoints"][0]["timeout"] = "soon"
    schema_bad = write_manifests(manifests / "schema-bad.yaml", unreadable)
    broken = manifests / "broken.yaml"
    broken.write_text("kind: ServiceLevelAgreement\nmetadata:\n  name: shop: again\n")
    operator = local().start()

    await operator.wait_for("shop Up", lambda: no_open_incident_and("Up", operator))
    log = await operator.wait_for("all three problems logged", lambda: (
        text := operator.log()).count("is invalid, not loaded") == 2 and "broken.yaml" in text and text)
    assert f"{bad}: spec.endpoints[0].timeout: must be longer than 0 and shorter than the interval" in log
    assert f"{schema_bad}: spec.endpoints[0].timeout: 'soon' is not valid" in log
    # LibYAML says "...not allowed in this context", the pure-Python parser "...not allowed here".
    assert f"{broken}: line 3, column 13: YAML syntax error: mapping values are not allowed" in log
    ready = next(c for c in operator.status("late")["conditions"] if c["type"] == "Ready")
    assert ready["status"] == "False" and "spec.endpoints[0].timeout" in ready["message"]

    fixed = agreement("late", target.port)
    write_manifests(bad, fixed)
    await operator.wait_for("the fixed agreement Up", lambda: no_open_incident_and("Up", operator, "late"))
    assert operator.status("shop")["state"] == "Up"


async def test_a_persons_edits_to_an_incident_are_used_and_kept(
        target: Target, manifests: Path, local: Callable[[], LocalProcess]) -> None:
    write_manifests(manifests / "shop.yaml", agreement("shop", target.port))
    operator = local().start()
    await operator.wait_for("shop Up", lambda: no_open_incident_and("Up", operator))
    target.failing.add("/api")
    incident_file = await operator.wait_for("an incident file", lambda: operator.incident_files()[0])
    await operator.wait_for("downtime counted",
                            lambda: read(incident_file)["status"]["countedDowntimeSeconds"] > 0)

    edited = read(incident_file)
    edited["spec"].update(acknowledgedAt=edited["spec"]["startedAt"], acknowledgedBy="alice",
                          exclusion={"reason": "blocked", "note": "a firewall change"})
    edited["spec"]["updates"].append({"time": edited["spec"]["startedAt"], "state": "identified",
                                      "message": "a firewall rule blocks the API"})
    write_yaml(incident_file, edited)
    await operator.wait_for("the exclusion applied",
                            lambda: read(incident_file)["status"]["countedDowntimeSeconds"] == 0)

    write_manifests(manifests / "more.yaml", agreement("more", target.port, paths=("/more",)))
    await operator.wait_for("an agreement added while running",
                            lambda: operator.status("more").get("state") == "Up")

    target.failing.clear()
    await operator.wait_for("the incident resolved",
                            lambda: read(incident_file)["spec"]["state"] == "resolved")
    spec = read(incident_file)["spec"]
    assert spec["acknowledgedBy"] == "alice" and spec["exclusion"]["reason"] == "blocked"
    messages = [u["message"] for u in spec["updates"]]
    assert messages[1] == "a firewall rule blocks the API" and messages[-1].startswith("recovered")
    assert read(incident_file)["status"]["responseBreached"] is False
