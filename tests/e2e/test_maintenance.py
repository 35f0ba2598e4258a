"""Scheduled maintenance on a real API server: failures inside a window are not downtime."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from support import REPO, OperatorProcess, Target, get, namespace_with_crds, parse_time, wait_for

Kubectl = Callable[..., Any]


@pytest.fixture(scope="module")
def namespace(kubectl: Kubectl) -> Iterator[str]:
    with namespace_with_crds(kubectl, "e2e-mw") as name:
        yield name


def stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def test_failures_inside_a_window_open_nothing_and_downtime_counts_once_it_ends(
        kubectl: Kubectl, kubeconfig: str, namespace: str, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    target = Target()
    target.set_healthy(False)
    operator = OperatorProcess(kubeconfig, namespace, tmp_path)
    operator.start()
    try:
        wait_for("the operator to serve /metrics", operator.metrics)
        # Long enough for a loaded machine to apply both objects and see Maintenance first.
        window_end = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=45)
        manifests = [
            {"apiVersion": "sla.dev/v1alpha1", "kind": "MaintenanceWindow",
             "metadata": {"name": "db-upgrade", "labels": {"team": "payments"}},
             "spec": {"description": "Database upgrade", "slaNames": ["checkout"],
                      "start": stamp(window_end - timedelta(minutes=10)), "end": stamp(window_end)}},
            {"apiVersion": "sla.dev/v1alpha1", "kind": "ServiceLevelAgreement",
             "metadata": {"name": "checkout"},
             "spec": {"service": "Checkout", "objective": "99.9", "endpoints": [
                 {"name": "api", "interval": "1s", "timeout": "500ms", "failureThreshold": 2,
                  "successThreshold": 1, "http": {"url": target.url}}]}},
        ]
        kubectl("apply", "-n", namespace, "-f", "-",
                input=yaml.safe_dump_all(manifests))

        def status() -> dict[str, Any]:
            return dict((get(kubectl, namespace, "sla/checkout") or {}).get("status") or {})

        wait_for("state Maintenance", lambda: status().get("state") == "Maintenance")
        window = wait_for("the window's status", lambda: (get(kubectl, namespace, "mw/db-upgrade")
                                                         or {}).get("status", {}).get("active"))
        assert window is True
        during = wait_for("the failing endpoint seen as Down",
                          lambda: (s := status()) and s["endpoints"][0]["state"] == "Down" and s)
        assert during["state"] == "Maintenance"
        assert during["currentPeriod"]["downtimeSeconds"] == 0
        assert not get(kubectl, namespace, "incidents")["items"]

        # The window ends with the endpoint still failing: now it is an outage.
        opened = wait_for("an outage once the window ended",
                          lambda: get(kubectl, namespace, "incidents")["items"], timeout=90)
        assert len(opened) == 1 and opened[0]["spec"]["type"] == "outage"
        assert datetime.now(UTC) >= window_end
        wait_for("downtime counting after the window",
                 lambda: status().get("state") == "Down"
                 and status()["currentPeriod"]["downtimeSeconds"] >= 2)
        after = status()["currentPeriod"]
        # The SLA was created inside the window: nothing before window_end is downtime.
        elapsed_since_end = (parse_time(status()["lastEvaluated"]) - window_end).total_seconds()
        assert after["downtimeSeconds"] <= elapsed_since_end + 1
        assert after["maintenanceSeconds"] >= 15

        env = {**os.environ, "KUBECONFIG": kubeconfig}
        report = subprocess.run([sys.executable, "-m", "sla_operator", "report", "--namespace",
                                 namespace, "-o", "json"], capture_output=True, text=True,
                                env=env, cwd=REPO, timeout=60, check=True)
        line = json.loads(report.stdout)["agreements"][0]
        assert line["agreement"] == "checkout" and line["objective"] == "99.9"
        assert line["maintenance_seconds"] >= 15 and line["downtime_seconds"] >= 2
        assert line["incidents"] == 1 and line["met"] is False
        table = subprocess.run([sys.executable, "-m", "sla_operator", "report", "--namespace",
                                namespace], capture_output=True, text=True, env=env, cwd=REPO,
                               timeout=60, check=True).stdout
        assert "checkout" in table.splitlines()[1] and "AVAILABILITY" in table.splitlines()[0]
        with capsys.disabled():
            print(f"\n[e2e] maintenance: {after['maintenanceSeconds']}s excluded, "
                  f"downtime after the window {after['downtimeSeconds']}s\n{table}")
    finally:
        operator.stop()
        target.close()


@pytest.mark.parametrize(("spec", "field"), [
    ({"schedule": "0 0 30 2 *", "duration": "1h"}, "spec.schedule"),  # 30 February never comes
    ({"schedule": "0 2 * * *", "duration": "25h"}, "spec.duration"),  # longer than the recurrence
    ({"start": "2026-12-01T04:00:00Z", "end": "2026-12-01T02:00:00Z"}, "spec.end"),
    ({"schedule": "0 2 * * SUN", "duration": "2h", "timeZone": "Europe/Atlantis"}, "spec.timeZone"),
])
def test_a_window_only_the_operator_can_reject_gets_ready_false_and_an_event(
        kubectl: Kubectl, kubeconfig: str, namespace: str, tmp_path: Path,
        spec: dict[str, Any], field: str) -> None:
    operator = OperatorProcess(kubeconfig, namespace, tmp_path)
    operator.start()
    name = f"bad-{uuid.uuid4().hex[:6]}"
    try:
        kubectl("apply", "-n", namespace, "-f", "-", input=yaml.safe_dump(
            {"apiVersion": "sla.dev/v1alpha1", "kind": "MaintenanceWindow",
             "metadata": {"name": name}, "spec": {"description": "bad", **spec}}))

        def ready() -> dict[str, Any] | None:
            status = (get(kubectl, namespace, f"mw/{name}") or {}).get("status") or {}
            found = [c for c in status.get("conditions") or [] if c["type"] == "Ready"]
            return found[0] if found else None

        condition = wait_for("Ready=False on the window", ready)
        assert condition["status"] == "False" and field in condition["message"]
        wait_for("an InvalidSpec event", lambda: [
            e for e in (get(kubectl, namespace, "events") or {}).get("items", [])
            if e.get("reason") == "InvalidSpec" and e["involvedObject"]["name"] == name
            and field in e["message"]])
        operator.assert_running()

        # The report skips such a window with one line, as the operator ignores it.
        report = subprocess.run([sys.executable, "-m", "sla_operator", "report", "--namespace",
                                 namespace, "-o", "json"], capture_output=True, text=True,
                                env={**os.environ, "KUBECONFIG": kubeconfig}, cwd=REPO,
                                timeout=60, check=False)
        assert report.returncode == 0, report.stderr
        assert "agreements" in json.loads(report.stdout)
        (skipped,) = [line for line in report.stderr.splitlines()
                      if line.startswith(f"maintenance window {namespace}/{name} skipped: ")]
        assert field in skipped
    finally:
        operator.stop()
