"""Fencing on a real API server, with its audit log as the witness of who wrote what.

Two replicas run with --leader-elect, each as a user of its own (replica-a, replica-b), so
every write the API server accepted names the replica that sent it. The holder is frozen
(SIGSTOP) past its lease while an outage begins, or its requests are held back by a slow
proxy; what must hold is that it writes nothing once its deadline has passed.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from controlplane import ControlPlane
from slow_proxy import SlowProxy

from support import OperatorProcess, Target, get, namespace_with_crds, wait_for

Kubectl = Callable[..., Any]
LEASE_SECONDS, RENEW_SECONDS, RETRY_SECONDS = 4.0, 3.0, 0.5


@pytest.fixture
def cluster(control_plane: ControlPlane | None) -> ControlPlane:
    if control_plane is None:
        pytest.skip("needs the local control plane: its audit log and one user per replica")
    return control_plane


@pytest.fixture
def namespace(kubectl: Kubectl) -> Iterator[str]:
    with namespace_with_crds(kubectl, "e2e-fence") as name:
        yield name


def replica(kubeconfig: str, namespace: str, tmp_path: Path, name: str) -> OperatorProcess:
    return OperatorProcess(kubeconfig, namespace, tmp_path, name=name, env={"POD_NAME": name},
                           extra_args=(
        "--leader-elect", "--leader-elect-namespace", namespace,
        "--leader-elect-lease-duration", f"{LEASE_SECONDS:g}s",
        "--leader-elect-renew-deadline", f"{RENEW_SECONDS:g}s",
        "--leader-elect-retry-period", f"{RETRY_SECONDS:g}s"))


def leader_metric(process: OperatorProcess) -> float | None:
    for line in (process.metrics() or "").splitlines():
        if line.startswith("sla_operator_leader "):
            return float(line.split()[1])
    return None


def agreement(name: str, url: str) -> str:
    return yaml.safe_dump(
        {"apiVersion": "sla.dev/v1alpha1", "kind": "ServiceLevelAgreement",
         "metadata": {"name": name},
         "spec": {"service": name, "objective": "99.9", "endpoints": [
             {"name": "api", "interval": "1s", "timeout": "500ms", "failureThreshold": 2,
              "successThreshold": 1, "http": {"url": url}}]}})


def accepted_writes(cluster: ControlPlane, user: str, namespace: str,
                    after: datetime | None = None) -> list[dict[str, Any]]:
    """Writes by ``user`` in ``namespace`` that the API server accepted (code < 300)."""
    found = []
    for entry in cluster.audit():
        ref = entry.get("objectRef") or {}
        code = (entry.get("responseStatus") or {}).get("code") or 0
        if ((entry.get("user") or {}).get("username") != user or ref.get("namespace") != namespace
                or entry.get("verb") not in ("create", "update", "patch", "delete")
                or code >= 300):
            continue
        received = datetime.fromisoformat(entry["requestReceivedTimestamp"].replace("Z", "+00:00"))
        if after is None or received > after:
            found.append(entry)
    return found


def describe(entries: list[dict[str, Any]]) -> str:
    return "; ".join(f"{e['requestReceivedTimestamp']} {e['verb']} "
                     f"{e['objectRef'].get('resource')}/{e['objectRef'].get('subresource', '')}"
                     f" {e['objectRef'].get('name')}" for e in entries[:8])


def test_a_leader_frozen_past_its_lease_writes_nothing_when_it_resumes(
        kubectl: Kubectl, cluster: ControlPlane, namespace: str, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    target = Target()
    first = replica(cluster.replica_kubeconfigs["replica-a"], namespace, tmp_path, "replica-a")
    second = replica(cluster.replica_kubeconfigs["replica-b"], namespace, tmp_path, "replica-b")
    first.start()
    try:
        wait_for("replica-a to lead", lambda: leader_metric(first) == 1.0, timeout=60)
        second.start()
        wait_for("replica-b to stand by", lambda: leader_metric(second) == 0.0, timeout=60)
        kubectl("apply", "-n", namespace, "-f", "-", input=agreement("web", target.url))
        wait_for("replica-a's first status", lambda: accepted_writes(cluster, "replica-a", namespace))
        time.sleep(2)

        # The outage begins; the leader is frozen while it sees the first failures.
        target.set_healthy(False)
        time.sleep(1.2)
        assert first.process is not None
        first.process.send_signal(signal.SIGSTOP)
        frozen_at = time.monotonic()
        wait_for("replica-b to lead", lambda: leader_metric(second) == 1.0, timeout=30)
        incidents = wait_for("the outage's incident", lambda: (
            get(kubectl, namespace, "incidents") or {}).get("items"), timeout=30)
        wait_for("replica-b's writes", lambda: accepted_writes(cluster, "replica-b", namespace))
        time.sleep(3)
        resumed_at = datetime.now(UTC)
        first.process.send_signal(signal.SIGCONT)
        frozen = time.monotonic() - frozen_at
        wait_for("replica-a to report it does not lead", lambda: leader_metric(first) == 0.0,
                 timeout=30)
        time.sleep(2 * LEASE_SECONDS)

        late = accepted_writes(cluster, "replica-a", namespace, after=resumed_at)
        assert not late, f"writes accepted from the frozen replica after it resumed: {describe(late)}"
        items = get(kubectl, namespace, "incidents")["items"]
        assert [i["metadata"]["name"] for i in items] == [incidents[0]["metadata"]["name"]], \
            "the outage is more than one incident"
        assert leader_metric(second) == 1.0 and leader_metric(first) == 0.0
        status = get(kubectl, namespace, "sla/web")["status"]
        assert status["state"] == "Down"
        assert "lost" in first.log() or "another" in first.log()
        with capsys.disabled():
            print(f"\n[e2e] fencing: replica-a frozen {frozen:.1f}s; writes accepted from it "
                  f"after it resumed: {len(late)}; replica-b's accepted writes: "
                  f"{len(accepted_writes(cluster, 'replica-b', namespace))}")
    finally:
        if first.process is not None:
            first.process.send_signal(signal.SIGCONT)
        for process in (first, second):
            process.stop()
        target.close()


def test_with_its_writes_held_back_the_holder_renews_and_without_renewals_it_stops_by_its_deadline(
        kubectl: Kubectl, cluster: ControlPlane, namespace: str, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    target = Target()
    proxy = SlowProxy(cluster.server, tmp_path)
    slow = tmp_path / "kubeconfig-slow"
    config = yaml.safe_load(Path(cluster.replica_kubeconfigs["replica-a"]).read_text())
    config["clusters"][0]["cluster"]["server"] = proxy.url
    slow.write_text(yaml.safe_dump(config))
    first = replica(str(slow), namespace, tmp_path, "replica-a")
    second = replica(cluster.replica_kubeconfigs["replica-b"], namespace, tmp_path, "replica-b")
    first.start()
    try:
        wait_for("replica-a to lead", lambda: leader_metric(first) == 1.0, timeout=60)
        second.start()
        wait_for("replica-b to stand by", lambda: leader_metric(second) == 0.0, timeout=60)
        for index in range(12):
            kubectl("apply", "-n", namespace, "-f", "-", input=agreement(f"web-{index}", target.url))
        wait_for("every agreement's first status", lambda: len(
            {e["objectRef"]["name"] for e in accepted_writes(cluster, "replica-a", namespace)
             if e["objectRef"].get("subresource") == "status"}) == 12, timeout=60)

        # 1. Every status write hangs: the store's threads fill up, the Lease is still renewed.
        proxy.hold_from_now(lambda method, path: method in ("PATCH", "POST")
                            and "/leases" not in path)
        target.set_healthy(False)  # state changes: writes the engine wants to make at once
        for index in range(8):  # and as many invalid specs, each reported in its status
            broken = yaml.safe_load(agreement(f"broken-{index}", target.url))
            broken["spec"]["endpoints"][0]["timeout"] = "5s"  # not shorter than the interval
            kubectl("apply", "-n", namespace, "-f", "-", input=yaml.safe_dump(broken))
        time.sleep(4 * LEASE_SECONDS)
        held = [a for a in proxy.arrivals if a.held]
        assert len(held) >= 8, f"only {len(held)} writes held: the pool never filled"
        renewals = [a for a in proxy.arrivals if a.lease and a.write and not a.held
                    and a.at > held[7].at]
        assert len(renewals) >= 3 * LEASE_SECONDS / RETRY_SECONDS / 2, \
            f"{len(renewals)} renewals while the writes were held: renewals waited behind them"
        assert leader_metric(first) == 1.0 and leader_metric(second) == 0.0
        proxy.release()
        time.sleep(2)

        # 2. Everything hangs, the Lease too: writes stop by the deadline, then replica-b leads.
        cut = time.monotonic()
        proxy.hold_from_now(lambda _method, _path: True)
        wait_for("replica-b to lead", lambda: leader_metric(second) == 1.0, timeout=30)
        took_over = time.monotonic()
        last_renewal = max(a.at for a in proxy.arrivals
                           if a.lease and a.write and not a.held and a.at < cut + 1)
        deadline = last_renewal + RENEW_SECONDS
        sent_late = [a for a in proxy.arrivals if a.write and not a.lease and a.at > deadline]
        assert not sent_late, (f"{len(sent_late)} writes sent after the deadline, the first "
                               f"{sent_late[0].at - deadline:.2f}s after it: {sent_late[0].path}")
        assert leader_metric(first) == 0.0
        proxy.release()
        time.sleep(2 * LEASE_SECONDS)
        assert leader_metric(first) == 0.0 and leader_metric(second) == 1.0
        with capsys.disabled():
            print(f"\n[e2e] fencing under held writes: {len(held)} status writes held, "
                  f"{len(renewals)} renewals meanwhile; with everything held, last renewal "
                  f"{cut - last_renewal:.1f}s before the cut, replica-b led "
                  f"{took_over - cut:.1f}s after it, writes sent after the deadline: "
                  f"{len(sent_late)}")
    finally:
        proxy.release()
        for process in (first, second):
            process.stop()
        proxy.close()
        target.close()
