"""Update and deletion on a real API server: probes follow the spec, maintenance ends,
nothing is created again.

Agreements and windows carry no finalizer: the operator learns of a deletion from the watch
(and, failing that, from its resync). Each test asserts what the probed target sees, what the
API server holds, and that the operator logs no failed write afterwards.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from support import OperatorProcess, Target, get, namespace_with_crds, wait_for

Kubectl = Callable[..., Any]
# Probes run every second; one may already be in flight when the deletion lands, and the
# watch event takes a moment to arrive: none may start later than this after the deletion.
SETTLE = timedelta(seconds=3)
QUIET = 6.0  # seconds the target is watched for late probes
WRITE_FAILURES = ("status not written", "could not record", "opened:", "creating incident")


@pytest.fixture
def namespace(kubectl: Kubectl) -> Iterator[str]:
    with namespace_with_crds(kubectl, "e2e-del") as name:
        yield name


@pytest.fixture
def target() -> Iterator[Target]:
    server = Target()
    server.set_healthy(False)
    yield server
    server.close()


@pytest.fixture
def operator(kubeconfig: str, namespace: str, tmp_path: Path) -> Iterator[OperatorProcess]:
    process = OperatorProcess(kubeconfig, namespace, tmp_path)
    process.start()
    wait_for("the operator to serve /metrics", process.metrics)
    yield process
    process.stop()


def sla(name: str, url: str) -> dict[str, Any]:
    return {"apiVersion": "sla.dev/v1alpha1", "kind": "ServiceLevelAgreement",
            "metadata": {"name": name, "labels": {"team": "web"}},
            "spec": {"service": name.title(), "objective": "99.9", "endpoints": [
                {"name": "api", "interval": "1s", "timeout": "500ms", "failureThreshold": 2,
                 "successThreshold": 1, "http": {"url": url}}]}}


def stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def window(name: str, minutes: int = 30) -> dict[str, Any]:
    now = datetime.now(UTC)
    return {"apiVersion": "sla.dev/v1alpha1", "kind": "MaintenanceWindow",
            "metadata": {"name": name},
            "spec": {"description": "applied by mistake", "slaSelector": {"matchLabels": {"team": "web"}},
                     "start": stamp(now - timedelta(minutes=1)),
                     "end": stamp(now + timedelta(minutes=minutes))}}


def apply(kubectl: Kubectl, namespace: str, *manifests: dict[str, Any]) -> None:
    kubectl("apply", "-n", namespace, "-f", "-", input=yaml.safe_dump_all(manifests))


def items(kubectl: Kubectl, namespace: str, resource: str) -> list[dict[str, Any]]:
    listed = get(kubectl, namespace, resource)
    return list(listed["items"]) if listed else []


def status(kubectl: Kubectl, namespace: str, name: str) -> dict[str, Any]:
    return dict((get(kubectl, namespace, f"sla/{name}") or {}).get("status") or {})


def late_probes(target: Target, deleted_at: datetime) -> list[datetime]:
    """Wait QUIET seconds, then list the probes that reached the target after the settle time."""
    time.sleep(QUIET)
    with target.lock:
        return [t for t, _ in target.log if t > deleted_at + SETTLE]


def log_after(operator: OperatorProcess, marker: int) -> str:
    return operator.log_path.read_text(errors="replace")[marker:]


def log_size(operator: OperatorProcess) -> int:
    return len(operator.log_path.read_text(errors="replace"))


def assert_no_write_failures(text: str) -> None:
    failures = [line for line in text.splitlines() if any(w in line for w in WRITE_FAILURES)]
    assert not failures, "\n".join(failures)


def test_a_deleted_agreement_is_no_longer_probed_and_its_outage_is_not_recreated(
        kubectl: Kubectl, namespace: str, target: Target, operator: OperatorProcess) -> None:
    apply(kubectl, namespace, sla("web", target.url))
    wait_for("the outage incident", lambda: items(kubectl, namespace, "incidents"))
    marker = log_size(operator)
    kubectl("delete", "sla", "web", "-n", namespace)
    deleted_at = datetime.now(UTC)
    assert late_probes(target, deleted_at) == []
    # The collector removes the owned incident, and nothing creates it again.
    wait_for("the incident collected with its agreement",
             lambda: not items(kubectl, namespace, "incidents"), timeout=60)
    time.sleep(3)
    assert items(kubectl, namespace, "incidents") == []
    operator.assert_running()
    after = log_after(operator, marker)
    assert "agreement " + namespace + "/web: removed, probes stopped" in after
    assert_no_write_failures(after)
    assert 'agreement="web"' not in (operator.metrics() or "")


def test_a_deleted_window_ends_the_maintenance_at_once(
        kubectl: Kubectl, namespace: str, target: Target, operator: OperatorProcess) -> None:
    apply(kubectl, namespace, window("by-mistake"), sla("web", target.url))
    wait_for("state Maintenance", lambda: status(kubectl, namespace, "web").get("state") == "Maintenance")
    marker = log_size(operator)
    kubectl("delete", "mw", "by-mistake", "-n", namespace)
    deleted = time.monotonic()
    wait_for("the state to leave Maintenance",
             lambda: status(kubectl, namespace, "web").get("state") not in (None, "Maintenance"),
             timeout=30)
    took = time.monotonic() - deleted
    wait_for("the failure to count as downtime now",
             lambda: status(kubectl, namespace, "web")["currentPeriod"]["downtimeSeconds"] > 0)
    assert took < 15, f"maintenance ended {took:.1f}s after the deletion"
    print(f"\n[e2e] a deleted window's maintenance ended {took:.1f}s after kubectl delete")
    assert 'sla_maintenance_active{agreement="web"' in (operator.metrics() or "")
    after = log_after(operator, marker)
    assert not [line for line in after.splitlines() if "status not written" in line], after


def test_an_agreement_deleted_and_created_again_starts_afresh(
        kubectl: Kubectl, namespace: str, target: Target, operator: OperatorProcess) -> None:
    apply(kubectl, namespace, sla("web", target.url))
    first = wait_for("the outage incident", lambda: items(kubectl, namespace, "incidents"))
    old_uid = get(kubectl, namespace, "sla/web")["metadata"]["uid"]
    marker = log_size(operator)
    kubectl("delete", "sla", "web", "-n", namespace, "--wait=true")
    target.set_healthy(True)
    apply(kubectl, namespace, sla("web", target.url))
    new = get(kubectl, namespace, "sla/web")
    assert new["metadata"]["uid"] != old_uid
    fresh = wait_for("the new agreement Up",
                     lambda: (s := status(kubectl, namespace, "web")).get("state") == "Up" and s)
    assert first[0]["metadata"]["name"] not in fresh["openIncidents"]
    assert fresh["currentPeriod"]["downtimeSeconds"] == 0
    wait_for("the old incident collected", lambda: not items(kubectl, namespace, "incidents"),
             timeout=60)
    assert_no_write_failures(log_after(operator, marker))


def test_a_deleted_namespace_takes_agreement_window_and_incidents_with_it(
        kubectl: Kubectl, kubeconfig: str, target: Target, tmp_path: Path) -> None:
    with namespace_with_crds(kubectl, "e2e-del-ns") as namespace:
        process = OperatorProcess(kubeconfig, namespace, tmp_path)
        process.start()
        try:
            wait_for("the operator to serve /metrics", process.metrics)
            apply(kubectl, namespace, sla("web", target.url))
            wait_for("the outage incident", lambda: items(kubectl, namespace, "incidents"))
            apply(kubectl, namespace, window("now", minutes=5))
            wait_for("the window's status", lambda: (get(kubectl, namespace, "mw/now") or {})
                     .get("status", {}).get("active"))
            marker = log_size(process)
            kubectl("delete", "namespace", namespace, "--wait=false")
            # The namespace controller deletes what the namespace holds in its own time:
            # the agreement is deleted when it is gone from the API server.
            wait_for("the agreement deleted with its namespace",
                     lambda: get(kubectl, namespace, "sla/web") is None, timeout=120)
            deleted_at = datetime.now(UTC)
            assert late_probes(target, deleted_at) == []
            wait_for("the namespace gone", lambda: kubectl(
                "get", "namespace", namespace, check=False).returncode != 0, timeout=120)
            process.assert_running()
            after = log_after(process, marker)
            assert "removed, probes stopped" in after
            assert_no_write_failures(after)
            assert 'agreement="web"' not in (process.metrics() or "")
        finally:
            process.stop()


def test_an_agreement_deleted_while_the_operator_was_stopped_is_not_probed_after_it_starts(
        kubectl: Kubectl, namespace: str, target: Target, kubeconfig: str, tmp_path: Path) -> None:
    process = OperatorProcess(kubeconfig, namespace, tmp_path)
    other = Target()
    process.start()
    try:
        wait_for("the operator to serve /metrics", process.metrics)
        apply(kubectl, namespace, sla("web", target.url), sla(f"kept-{uuid.uuid4().hex[:4]}", other.url))
        wait_for("the outage incident", lambda: len(items(kubectl, namespace, "incidents")) == 1)
        process.stop()
        kubectl("delete", "sla", "web", "-n", namespace)
        restarted_at = datetime.now(UTC)
        marker = log_size(process)
        process.start()
        wait_for("the operator to serve /metrics again", process.metrics)
        wait_for("probes of the agreement that is still there",
                 lambda: other.first_answer(200, restarted_at))
        time.sleep(QUIET)
        assert target.first_answer(503, restarted_at) is None  # never probed again
        metrics = process.metrics() or ""
        assert 'agreement="web"' not in metrics and 'agreement="kept-' in metrics
        after = log_after(process, marker)
        assert f"agreement {namespace}/web" not in after
        assert_no_write_failures(after)
        wait_for("the deleted agreement's incident collected",
                 lambda: not items(kubectl, namespace, "incidents"), timeout=60)
    finally:
        process.stop()
        other.close()


def test_an_edited_agreement_probes_its_new_target_and_an_edited_window_takes_effect(
        kubectl: Kubectl, namespace: str, target: Target, operator: OperatorProcess) -> None:
    healthy = Target()
    try:
        apply(kubectl, namespace, window("edited"), sla("web", target.url))
        wait_for("state Maintenance",
                 lambda: status(kubectl, namespace, "web").get("state") == "Maintenance")
        moved = sla("web", healthy.url)
        apply(kubectl, namespace, moved)
        edited_at = datetime.now(UTC)
        wait_for("probes of the new URL", lambda: healthy.first_answer(200, edited_at))
        assert late_probes(target, edited_at) == []  # the old URL is left alone
        ended = window("edited")
        ended["spec"]["end"] = stamp(datetime.now(UTC) - timedelta(seconds=10))
        apply(kubectl, namespace, ended)
        wait_for("the shortened window to end the maintenance",
                 lambda: status(kubectl, namespace, "web").get("state") == "Up", timeout=30)
        assert (get(kubectl, namespace, "mw/edited") or {})["status"]["active"] is False
    finally:
        healthy.close()
