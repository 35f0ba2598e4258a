"""Discovery with the chart's ServiceAccount and nothing more: `discovery.enabled` grants just
enough to watch Services and Ingresses (and nothing to change them), and without it the
ServiceAccount cannot read them at all."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from test_chart import Release, helm, unique  # noqa: F401  (helm is a fixture)
from test_service_account import kubectl_as, refusals, refused, service_account_kubeconfig

from support import OperatorProcess, get, wait_for

pytestmark = pytest.mark.e2e
Kubectl = Callable[..., Any]


def install(helm: Any, kubeconfig: str, watched: str, discovery: bool) -> Release:  # noqa: F811
    release = Release(helm, kubeconfig, {})
    release.values = {"rbac": {"scope": "namespaced"}, "watchNamespaces": [watched],
                      "discovery": {"enabled": discovery}, "image": {"tag": "e2e"}}
    release.install()
    return release


def test_the_chart_grants_discovery_its_watches_and_nothing_more(
        helm: Any, kubeconfig: str, kubectl: Kubectl, tmp_path: Path) -> None:  # noqa: F811
    watched = unique("sla-discovery-sa")
    kubectl("create", "namespace", watched)
    release = install(helm, kubeconfig, watched, discovery=True)
    as_chart_config = service_account_kubeconfig(kubectl, kubeconfig, release,
                                                 tmp_path / "sa-kubeconfig")
    process = OperatorProcess(as_chart_config, watched, tmp_path, extra_args=("--discover",))
    try:
        kubectl("apply", "-n", watched, "-f", "-", input=json.dumps({
            "apiVersion": "sla.dev/v1alpha1", "kind": "ServiceLevelAgreement",
            "metadata": {"name": "web"},
            "spec": {"service": "Web", "objective": "99.9", "endpoints": [
                {"name": "own", "interval": "5s", "timeout": "1s",
                 "tcp": {"host": "127.0.0.1", "port": 9}}]}}))
        kubectl("apply", "-n", watched, "-f", "-", input=json.dumps({
            "apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "api", "annotations": {"sla.dev/agreement": "web"}},
            "spec": {"ports": [{"port": 8080}]}}))
        process.start()

        def discovered() -> dict[str, Any] | None:
            status = (get(kubectl, watched, "sla/web") or {}).get("status") or {}
            found = [e for e in status.get("endpoints") or [] if e["name"] == "svc-api"]
            return found[0] if found and found[0].get("lastProbeTime") else None

        entry = wait_for("the Service's endpoint probed with the chart's permissions",
                         discovered, timeout=90)
        assert entry["discovered"] is True
        assert refusals(process.log(), watched) == [], process.log()
        as_chart = kubectl_as(as_chart_config)
        as_chart("get", "-n", watched, "services")
        as_chart("get", "-n", watched, "ingresses.networking.k8s.io")
        refused(as_chart, "annotate", "-n", watched, "service/api", "sla.dev/agreement-")
        refused(as_chart, "delete", "-n", watched, "service/api", "--wait=false")
        refused(as_chart, "get", "services", "--all-namespaces")
        process.assert_running()
    finally:
        process.stop()
        release.uninstall()
        for namespace in (release.namespace, watched):
            kubectl("delete", "namespace", namespace, "--wait=false", check=False)


def test_without_discovery_the_chart_grants_nothing_on_services_or_ingresses(
        helm: Any, kubeconfig: str, kubectl: Kubectl, tmp_path: Path) -> None:  # noqa: F811
    watched = unique("sla-discovery-off")
    kubectl("create", "namespace", watched)
    release = install(helm, kubeconfig, watched, discovery=False)
    try:
        as_chart = kubectl_as(service_account_kubeconfig(kubectl, kubeconfig, release,
                                                         tmp_path / "sa-kubeconfig"))
        refused(as_chart, "get", "-n", watched, "services")
        refused(as_chart, "get", "-n", watched, "ingresses.networking.k8s.io")
    finally:
        release.uninstall()
        for namespace in (release.namespace, watched):
            kubectl("delete", "namespace", namespace, "--wait=false", check=False)
