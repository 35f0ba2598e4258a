"""Downtime decided by a quorum of locations, on a real API server: ``run --location a`` and
``probe --location b``, ``probe --location c`` (two replicas of b), against a target that fails
the probes of the locations the test names, telling them apart by their User-Agent."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.request import urlopen

import pytest
import yaml

from support import REPO, OperatorProcess, free_port, get, namespace_with_crds, parse_time, wait_for

Kubectl = Callable[..., Any]
LEASE = ("--leader-elect-lease-duration", "4s", "--leader-elect-renew-deadline", "3s",
         "--leader-elect-retry-period", "0.5s")


class LocatedTarget:
    """An HTTP health endpoint that fails the probes of the locations in ``failing``; it logs
    which location it answered what, and when."""

    def __init__(self) -> None:
        self.failing: set[str] = set()
        self.log: list[tuple[datetime, str, int]] = []
        self.lock = threading.Lock()
        target = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                agent = self.headers.get("User-Agent", "")
                location = agent.partition("(location ")[2].rstrip(")")
                with target.lock:
                    status = 503 if location in target.failing else 200
                    target.log.append((datetime.now(UTC), location, status))
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/healthz"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def fail(self, *locations: str) -> datetime:
        with self.lock:
            self.failing = set(locations)
        return datetime.now(UTC)

    def first_failure(self, location: str, after: datetime) -> datetime | None:
        with self.lock:
            return next((t for t, where, status in self.log
                         if where == location and status == 503 and t >= after), None)

    def locations(self) -> set[str]:
        with self.lock:
            return {where for _, where, _ in self.log}


class Prober:
    """``sla-operator probe --location NAME`` as a child process."""

    def __init__(self, kubeconfig: str, namespace: str, location: str, workdir: Path,
                 replica: str, lease_namespace: str | None = None) -> None:
        self.log_path = workdir / f"probe-{location}-{replica}.log"
        self.metrics_port = free_port()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "sla_operator", "probe", "--location", location,
             "--metrics-port", str(self.metrics_port), "--bind-address", "127.0.0.1",
             "--namespace", namespace, "--leader-elect-namespace", lease_namespace or namespace,
             *LEASE],
            stdout=self.log_path.open("ab"), stderr=subprocess.STDOUT, cwd=REPO,
            env={**os.environ, "KUBECONFIG": kubeconfig, "PYTHONUNBUFFERED": "1"})

    def metrics(self) -> str:
        try:
            with urlopen(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=5) as response:
                return str(response.read().decode())
        except OSError:
            return ""

    def writes(self) -> int:
        return self.log_path.read_text(errors="replace").count("written:")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


@pytest.fixture
def namespace(kubectl: Kubectl) -> Iterator[str]:
    kubectl("apply", "-f", str(REPO / "crds" / "locationreports.yaml"))
    kubectl("wait", "--for=condition=Established", "crd/locationreports.sla.dev", "--timeout=60s")
    with namespace_with_crds(kubectl, "e2e-loc") as name:
        yield name


def status(kubectl: Kubectl, namespace: str) -> dict[str, Any]:
    return dict((get(kubectl, namespace, "sla/web") or {}).get("status") or {})


def incidents(kubectl: Kubectl, namespace: str) -> list[dict[str, Any]]:
    return list((get(kubectl, namespace, "incidents") or {}).get("items") or [])


def gauge(process: OperatorProcess, family: str, location: str) -> float | None:
    for line in (process.metrics() or "").splitlines():
        if line.startswith(f'sla_location_{family}{{location="{location}"}} '):
            return float(line.split()[-1])
    return None


def report_states(kubectl: Kubectl, namespace: str) -> dict[str, str]:
    items = (get(kubectl, namespace, "locationreports") or {}).get("items") or []
    return {i["spec"]["location"]: i["spec"]["endpoints"][0]["state"] for i in items
            if i["spec"]["endpoints"]}


def test_a_quorum_of_locations_decides_downtime(
        kubectl: Kubectl, kubeconfig: str, namespace: str, tmp_path: Path) -> None:
    target = LocatedTarget()
    kubectl("apply", "-n", namespace, "-f", "-", input=yaml.safe_dump(
        {"apiVersion": "sla.dev/v1alpha1", "kind": "ServiceLevelAgreement",
         "metadata": {"name": "web"},
         "spec": {"service": "Web", "objective": "99.9", "statusPage": {"public": True},
                  "probing": {"locations": ["a", "b", "c"], "quorum": 2},
                  "endpoints": [{"name": "api", "interval": "1s", "timeout": "500ms",
                                 "failureThreshold": 2, "successThreshold": 1,
                                 "http": {"url": target.url}}]}}))
    home = OperatorProcess(kubeconfig, namespace, tmp_path, env={"POD_NAMESPACE": namespace},
                           status_page=True,
                           extra_args=("--location", "a", "--disagreement-after", "3s"))
    home.start()
    probers = [Prober(kubeconfig, namespace, "b", tmp_path, "1"),
               Prober(kubeconfig, namespace, "b", tmp_path, "2"),
               Prober(kubeconfig, namespace, "c", tmp_path, "1")]
    try:
        wait_for("every location probing, each saying so",
                 lambda: target.locations() >= {"a", "b", "c"}, timeout=90)
        wait_for("the reports of b and c",
                 lambda: report_states(kubectl, namespace) == {"b": "Up", "c": "Up"})
        wait_for("the agreement Up", lambda: status(kubectl, namespace).get("state") == "Up")

        # One location failing: its report says so, the agreement stays Up, no incident.
        target.fail("c")
        wait_for("c's report Down", lambda: report_states(kubectl, namespace).get("c") == "Down")
        wait_for("the Warning Event LocationDisagrees", lambda: [
            e for e in (get(kubectl, namespace, "events") or {}).get("items") or []
            if e["reason"] == "LocationDisagrees" and "location c " in e["message"]])
        wait_for("sla_location_disagreement of c", lambda: gauge(home, "disagreement", "c") == 1)
        assert gauge(home, "disagreement", "b") == 0 and gauge(home, "up", "c") == 1
        assert 'sla_probe_success{agreement="web",endpoint="api",environment="production",' \
            f'location="c",namespace="{namespace}",service="Web"}} 0.0' in (home.metrics() or "")
        assert status(kubectl, namespace)["state"] == "Up"
        assert incidents(kubectl, namespace) == []
        [endpoint] = status(kubectl, namespace)["endpoints"]
        assert {v["name"]: v["state"] for v in endpoint["locations"]} == {
            "a": "Up", "b": "Up", "c": "Down"}
        page = home.status_page("/") or ""
        assert "Down from 1 of 3 locations" in page and "All services operational" in page, page

        # Two of three: one incident, from when the second location began to fail.
        second_failing = target.fail("c", "b")
        opened = wait_for("the outage incident", lambda: incidents(kubectl, namespace))
        assert len(opened) == 1
        began = target.first_failure("b", second_failing)
        assert began is not None
        started = parse_time(opened[0]["spec"]["startedAt"])
        assert abs((started - began).total_seconds()) <= 1.5, (started, began)
        assert status(kubectl, namespace)["state"] == "Down"

        # All healthy again: resolved.
        target.fail()
        wait_for("the incident resolved", lambda: all(
            i["spec"].get("resolvedAt") for i in incidents(kubectl, namespace)))
        wait_for("the agreement Up again", lambda: status(kubectl, namespace).get("state") == "Up")

        # Two replicas of b: one holds the Lease, and only it wrote b's reports.
        assert sorted(p.writes() > 0 for p in probers[:2]) == [False, True], [
            p.log_path.read_text()[-2000:] for p in probers[:2]]
        reporting = next(p for p in probers[:2] if p.writes())
        standing_by = next(p for p in probers[:2] if not p.writes())
        assert "sla_operator_leader 1.0" in reporting.metrics()
        assert "sla_operator_leader 0.0" in standing_by.metrics()
        assert 'endpoint="api",environment="production",location="b"' in reporting.metrics()

        # c stopped: its results turn stale, a and b still decide (Up, and Down would count).
        probers[2].stop()
        wait_for("c no longer up", lambda: gauge(home, "up", "c") == 0)
        time.sleep(3)
        assert status(kubectl, namespace)["state"] == "Up"
        # b stopped as well: a alone is short of the quorum; its failures are not downtime.
        for prober in probers[:2]:
            prober.stop()
        stopped = target.fail("a")
        wait_for("the agreement unmonitored",
                 lambda: status(kubectl, namespace).get("state") == "Unknown")
        time.sleep(4)
        assert len(incidents(kubectl, namespace)) == 1
        gaps = status(kubectl, namespace).get("unmonitored") or []
        assert any(parse_time(g["end"]) > stopped for g in gaps), gaps
        home.assert_running()
    finally:
        for prober in probers:
            prober.stop()
        home.stop()
        target.server.shutdown()
