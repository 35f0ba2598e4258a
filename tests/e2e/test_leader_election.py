"""Two replicas with --leader-elect on a real API server: one probes and writes, the other
takes over when it dies (SIGKILL) or hands over when it stops (SIGTERM)."""

from __future__ import annotations

import json
import signal
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from support import OperatorProcess, Target, get, namespace_with_crds, wait_for

Kubectl = Callable[..., Any]
LEASE_SECONDS, RENEW_SECONDS, RETRY_SECONDS = 4.0, 3.0, 0.5


@pytest.fixture
def namespace(kubectl: Kubectl) -> Iterator[str]:
    with namespace_with_crds(kubectl, "e2e-le") as name:
        yield name


def replica(kubeconfig: str, namespace: str, tmp_path: Path, name: str) -> OperatorProcess:
    # As in a pod: the downward API names the pod, which the leader labels for the page's Service.
    return OperatorProcess(kubeconfig, namespace, tmp_path, name=name, status_page=True,
                           env={"POD_NAME": name, "POD_NAMESPACE": namespace}, extra_args=(
        "--leader-elect", "--leader-elect-namespace", namespace,
        "--leader-elect-lease-duration", f"{LEASE_SECONDS:g}s",
        "--leader-elect-renew-deadline", f"{RENEW_SECONDS:g}s",
        "--leader-elect-retry-period", f"{RETRY_SECONDS:g}s"))


def lease(kubectl: Kubectl, namespace: str) -> dict[str, Any]:
    found = get(kubectl, namespace, "lease/sla-operator")
    return dict((found or {}).get("spec") or {})


def leader_metric(process: OperatorProcess) -> float | None:
    text = process.metrics() or ""
    for line in text.splitlines():
        if line.startswith("sla_operator_leader "):
            return float(line.split()[1])
    return None


def leaders(kubectl: Kubectl, namespace: str) -> list[str]:
    pods = (get(kubectl, namespace, "pods") or {}).get("items") or []
    return sorted(p["metadata"]["name"] for p in pods
                  if (p["metadata"].get("labels") or {}).get("sla.dev/leader") == "true")


def shown_state(process: OperatorProcess) -> str | None:
    page = json.loads(process.status_page("/api/v1/status") or "{}")
    return next((a["state"] for a in page.get("agreements") or []), None)


def probes_between(target: Target, start: datetime, end: datetime) -> int:
    with target.lock:
        return sum(1 for t, _ in target.log if start <= t < end)


def test_one_replica_probes_and_the_other_takes_over_without_a_second_incident(
        kubectl: Kubectl, kubeconfig: str, namespace: str, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    target = Target()
    for name in ("first", "second", "third"):  # stored only: there is no kubelet to run them
        kubectl("apply", "-n", namespace, "-f", "-", input=json.dumps(
            {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
             "spec": {"containers": [{"name": "operator", "image": "sla-operator:e2e"}]}}))
    first, second = (replica(kubeconfig, namespace, tmp_path, n) for n in ("first", "second"))
    first.start()
    try:
        wait_for("the first replica to lead", lambda: leader_metric(first) == 1.0, timeout=60)
        second.start()
        wait_for("the second replica to stand by", lambda: leader_metric(second) == 0.0, timeout=60)
        wait_for("the leader's pod labelled", lambda: leaders(kubectl, namespace) == ["first"])
        kubectl("apply", "-n", namespace, "-f", "-", input=yaml.safe_dump(
            {"apiVersion": "sla.dev/v1alpha1", "kind": "ServiceLevelAgreement",
             "metadata": {"name": "web"},
             "spec": {"service": "Web", "objective": "99.9", "statusPage": {"public": True},
                      "endpoints": [
                 {"name": "api", "interval": "1s", "timeout": "500ms", "failureThreshold": 2,
                  "successThreshold": 1, "http": {"url": target.url}}]}}))
        wait_for("probes", lambda: target.log)
        time.sleep(2)
        window_start = datetime.now(UTC)
        time.sleep(6)
        counted = probes_between(target, window_start, window_start + timedelta(seconds=6))
        assert 4 <= counted <= 8, f"{counted} probes in 6 s at 1/s: both replicas probing?"
        held = lease(kubectl, namespace)
        assert held["holderIdentity"] and held["leaseDurationSeconds"] == LEASE_SECONDS
        assert f"taken by {held['holderIdentity']}" in first.log()

        # An outage, then the leader is killed: the other takes over, the outage stays one incident.
        target.set_healthy(False)
        opened = wait_for("the outage incident", lambda: (get(kubectl, namespace, "incidents")
                                                           or {}).get("items"))
        assert len(opened) == 1
        # The standby's page shows what the leader wrote: the state, the period, the incident.
        wait_for("the standby's page to show the outage", lambda: shown_state(second) == "Down")
        page = json.loads(second.status_page("/api/v1/status") or "{}")
        written = get(kubectl, namespace, "sla/web")["status"]
        assert page["agreements"][0]["period"]["label"] == written["currentPeriod"]["label"]
        assert len(page["agreements"][0]["daily"]) == 90
        assert [i["name"] for i in page["incidents"]] == [opened[0]["metadata"]["name"]]
        standby_metrics = second.metrics() or ""
        assert "sla_availability_ratio{" not in standby_metrics  # left to the leader
        assert "sla_availability_ratio{" in (first.metrics() or "")
        assert first.process is not None
        first.process.send_signal(signal.SIGKILL)
        first.process.wait()
        first.process = None
        killed_at = datetime.now(UTC)
        wait_for("the second replica to lead", lambda: leader_metric(second) == 1.0, timeout=30)
        resumed = wait_for("probes again", lambda: next(
            (t for t, _ in list(target.log) if t > killed_at + timedelta(seconds=0.5)), None))
        took_over = (resumed - killed_at).total_seconds()
        assert took_over <= LEASE_SECONDS + RENEW_SECONDS + 2, took_over
        time.sleep(4)
        items = get(kubectl, namespace, "incidents")["items"]
        assert [i["metadata"]["name"] for i in items] == [opened[0]["metadata"]["name"]]
        assert items[0]["spec"]["resolvedAt"] is None
        status = get(kubectl, namespace, "sla/web")["status"]
        assert status["state"] == "Down" and status["openIncidents"] == [items[0]["metadata"]["name"]]
        gap = sum(g and 1 for g in status.get("unmonitored") or [])
        transitions = lease(kubectl, namespace)["leaseTransitions"]
        assert transitions >= 1

        # A clean stop hands the Lease over at once.
        first = replica(kubeconfig, namespace, tmp_path, "third")
        first.start()
        wait_for("the new replica to stand by", lambda: leader_metric(first) == 0.0, timeout=60)
        stopping = time.monotonic()
        second.stop()
        wait_for("the standby to lead", lambda: leader_metric(first) == 1.0, timeout=30, every=0.1)
        handover = time.monotonic() - stopping
        # The killed replica's pod keeps its label until its container restarts (there is no
        # kubelet here); the one that stopped cleanly took its own off.
        wait_for("the new leader's pod labelled, the stopped one's not",
                 lambda: leaders(kubectl, namespace) == ["first", "third"])
        assert handover < 3 + 1, handover  # the stop itself writes last statuses first
        with capsys.disabled():
            print(f"\n[e2e] leader election: takeover after SIGKILL {took_over:.1f}s, "
                  f"handover after SIGTERM {handover:.1f}s, lease transitions {transitions}, "
                  f"unmonitored gaps {gap}, {counted} probes in 6 s with two replicas\n"
                  f"{json.dumps(lease(kubectl, namespace))}")
    finally:
        for process in (first, second):
            process.stop()
        target.close()
