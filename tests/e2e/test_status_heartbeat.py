"""The status heartbeat on a real API server: a healthy agreement's status is not rewritten
at every refresh, and after the writer is killed the replica that takes its Lease counts as
unmonitored only the time from the writer's last renewal, not from its last status write."""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from test_leader_election import Kubectl, leader_metric, lease, replica

from support import OperatorProcess, Target, get, namespace_with_crds, parse_time, wait_for

HEARTBEAT = 20


@pytest.fixture
def namespace(kubectl: Kubectl) -> Iterator[str]:
    with namespace_with_crds(kubectl, "e2e-hb") as name:
        yield name


def with_heartbeat(process: OperatorProcess) -> OperatorProcess:
    process.extra_args = (*process.extra_args, "--status-heartbeat", str(HEARTBEAT))
    return process


def status(kubectl: Kubectl, namespace: str) -> tuple[str, dict[str, Any]]:
    found = get(kubectl, namespace, "sla/web") or {}
    return str((found.get("metadata") or {}).get("resourceVersion")), dict(found.get("status") or {})


def test_a_healthy_status_waits_for_its_heartbeat_and_a_take_over_counts_from_the_last_renewal(
        kubectl: Kubectl, kubeconfig: str, namespace: str, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    target = Target()
    first = with_heartbeat(replica(kubeconfig, namespace, tmp_path, "first"))
    second = with_heartbeat(replica(kubeconfig, namespace, tmp_path, "second"))
    first.start()
    try:
        wait_for("the first replica to lead", lambda: leader_metric(first) == 1.0, timeout=60)
        second.start()
        wait_for("the second replica to stand by", lambda: leader_metric(second) == 0.0, timeout=60)
        kubectl("apply", "-n", namespace, "-f", "-", input=yaml.safe_dump(
            {"apiVersion": "sla.dev/v1alpha1", "kind": "ServiceLevelAgreement",
             "metadata": {"name": "web"},
             "spec": {"service": "Web", "objective": "99.9", "endpoints": [
                 {"name": "api", "interval": "1s", "timeout": "500ms", "failureThreshold": 2,
                  "successThreshold": 1, "http": {"url": target.url}}]}}))
        wait_for("the agreement Up with today's availability", lambda: (
            status(kubectl, namespace)[1].get("state") == "Up"
            and (status(kubectl, namespace)[1].get("currentPeriod") or {}).get("availability")))

        # Up, nothing shown changes: with --status-interval 1 a refresh is due every second,
        # and none is written until the heartbeat (20 s, at the agreement's phase of it).
        def quiet() -> tuple[str, dict[str, Any]] | None:
            version, _ = status(kubectl, namespace)
            time.sleep(3)
            again = status(kubectl, namespace)
            return again if again[0] == version else None

        version, before = wait_for("no write for 3 s", quiet, timeout=2 * HEARTBEAT + 10)
        time.sleep(5)
        later_version, _ = status(kubectl, namespace)
        assert later_version == version, "a routine refresh was written while nothing changed"
        last_written = parse_time(before["lastEvaluated"])
        probed = [e["lastProbeTime"] for e in before.get("endpoints") or []]
        assert datetime.now(UTC) - last_written >= timedelta(seconds=7)

        # Killed in the quiet: its status says nothing for the last 8 s or more, its Lease does.
        assert first.process is not None
        first.process.send_signal(signal.SIGKILL)
        first.process.wait()
        first.process = None
        killed_at = datetime.now(UTC)
        wait_for("the second replica to lead", lambda: leader_metric(second) == 1.0, timeout=30)
        taken = wait_for("the new leader's first write", lambda: (lambda s: s if parse_time(
            s["lastEvaluated"]) > killed_at else None)(status(kubectl, namespace)[1]), timeout=30)
        gaps = [(parse_time(g["start"]), parse_time(g["end"])) for g in taken.get("unmonitored") or []
                if parse_time(g["end"]) > last_written]
        assert len(gaps) == 1, taken.get("unmonitored")
        (start, end), = gaps
        # The gap starts at the killed writer's last renewal (every 0.5 s here), not at its last
        # status write 8 s or more before it: the time in between was monitored.
        assert start >= killed_at - timedelta(seconds=2), (start, killed_at, last_written)
        assert start - last_written >= timedelta(seconds=5)
        assert end >= killed_at
        assert str(lease(kubectl, namespace)["holderIdentity"]).startswith("second")
        with capsys.disabled():
            print(f"\n[e2e] status heartbeat {HEARTBEAT}s: no write in "
                  f"{(killed_at - last_written).total_seconds():.1f}s of refreshes every 1s "
                  f"(probe times {probed}); after SIGKILL the unmonitored gap starts "
                  f"{(start - last_written).total_seconds():.1f}s after the last status write, "
                  f"{(start - killed_at).total_seconds():+.1f}s from the kill, and is "
                  f"{(end - start).total_seconds():.1f}s long")
    finally:
        for process in (first, second):
            process.stop()
        target.close()
