"""The chart's location mode on a real API server: a home release (`location.name: a`) and a
`location.mode: probe` release for b, each process running with its release's ServiceAccount
token alone, so every permission they use is the chart's own, and nothing more."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from test_chart import Release, helm, unique  # noqa: F401  (helm is a fixture)
from test_locations import LocatedTarget, Prober, incidents, report_states, status
from test_service_account import kubectl_as, refused, service_account_kubeconfig

from support import OperatorProcess, wait_for

pytestmark = pytest.mark.e2e
Kubectl = Callable[..., Any]


def test_a_probe_location_reports_to_its_home_with_least_privilege(
        helm: Any, kubeconfig: str, kubectl: Kubectl, tmp_path: Path) -> None:  # noqa: F811
    watched = unique("sla-loc")
    kubectl("create", "namespace", watched)
    home = Release(helm, kubeconfig, {})
    home.values = {"watchNamespaces": [watched], "image": {"tag": "e2e"},
                   "location": {"name": "a", "disagreementAfter": "3s"}}
    home.install()
    remote = Release(helm, kubeconfig, {})
    remote.values = {"watchNamespaces": [watched], "image": {"tag": "e2e"},
                     "rbac": {"scope": "namespaced"},
                     "location": {"mode": "probe", "name": "b", "homeNamespace": home.namespace}}
    remote.install()
    target = LocatedTarget()
    processes: list[Any] = []
    try:
        deployed = json.loads(kubectl("get", "-n", remote.namespace, "deployments", "-o",
                                      "json").stdout)["items"]
        assert [d["metadata"]["name"] for d in deployed] == [f"{remote.name}-location"]
        args = deployed[0]["spec"]["template"]["spec"]["containers"][0]["args"]
        assert args[:3] == ["probe", "--location=b", f"--namespace={watched}"]
        assert f"--leader-elect-namespace={home.namespace}" in args
        container = deployed[0]["spec"]["template"]["spec"]["containers"][0]
        assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
        kubectl("apply", "-n", watched, "-f", "-", input=yaml.safe_dump(
            {"apiVersion": "sla.dev/v1alpha1", "kind": "ServiceLevelAgreement",
             "metadata": {"name": "web"},
             "spec": {"service": "Web", "objective": "99.9",
                      "probing": {"locations": ["a", "b"], "quorum": 2},
                      "endpoints": [{"name": "api", "interval": "1s", "timeout": "500ms",
                                     "failureThreshold": 2, "successThreshold": 1,
                                     "http": {"url": target.url}}]}}))
        home_config = service_account_kubeconfig(kubectl, kubeconfig, home,
                                                 tmp_path / "home-kubeconfig")
        remote_config = service_account_kubeconfig(kubectl, kubeconfig, remote,
                                                   tmp_path / "remote-kubeconfig")
        operator = OperatorProcess(home_config, watched, tmp_path,
                                   env={"POD_NAMESPACE": home.namespace},
                                   extra_args=("--location", "a"))
        operator.start()
        processes.append(operator)
        processes.append(Prober(remote_config, watched, "b", tmp_path, "sa",
                                lease_namespace=home.namespace))
        wait_for("b's report", lambda: report_states(kubectl, watched) == {"b": "Up"})
        wait_for("the agreement Up", lambda: status(kubectl, watched).get("state") == "Up")
        target.fail("a", "b")
        opened = wait_for("the outage incident", lambda: incidents(kubectl, watched))
        assert len(opened) == 1
        logs = operator.log() + processes[1].log_path.read_text(errors="replace")
        assert [line for line in logs.splitlines() if "forbidden" in line.lower()] == []
        # The location writes its reports and its Lease, and nothing else.
        as_location = kubectl_as(remote_config)
        refused(as_location, "patch", "-n", watched, "sla/web", "--type=merge",
                "-p", json.dumps({"spec": {"objective": "90"}}))
        refused(as_location, "create", "-n", watched, "-f", "-", input=json.dumps(
            {**opened[0], "metadata": {"name": "made-by-a-location"}}))
        refused(as_location, "delete", "-n", watched, "lrep", "--all", "--wait=false")
        refused(as_location, "get", "-n", watched, "secrets")
        refused(as_location, "get", "-n", home.namespace, "leases")
    finally:
        for process in processes:
            process.stop()
        target.server.shutdown()
        for release in (remote, home):
            release.uninstall()
            kubectl("delete", "namespace", release.namespace, "--wait=false", check=False)
        kubectl("delete", "namespace", watched, "--wait=false", check=False)
