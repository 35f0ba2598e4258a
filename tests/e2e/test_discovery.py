"""Discovery on a real API server: `run --discover` adds an endpoint for an annotated Service
or Ingress, probes it within one interval, marks it discovered in the status, and drops it
when the annotation goes."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from support import OperatorProcess, namespace_with_crds, wait_for

pytestmark = pytest.mark.e2e

Kubectl = Callable[..., Any]
INTERVAL = 30.0  # a discovered endpoint's probe interval (the default)


@pytest.fixture
def namespace(kubectl: Kubectl) -> Iterator[str]:
    with namespace_with_crds(kubectl, "discovery") as name:
        yield name


@pytest.fixture
def operator(kubeconfig: str, namespace: str, tmp_path: Path) -> Iterator[OperatorProcess]:
    process = OperatorProcess(kubeconfig, namespace, tmp_path, extra_args=("--discover",))
    process.start()
    yield process
    print(process.log())
    process.stop()


def apply(kubectl: Kubectl, namespace: str, manifest: dict[str, Any]) -> None:
    kubectl("apply", "-n", namespace, "-f", "-", input=json.dumps(manifest))


def endpoints(kubectl: Kubectl, namespace: str) -> dict[str, dict[str, Any]]:
    found = json.loads(kubectl("get", "sla", "checkout", "-n", namespace, "-o", "json").stdout)
    return {e["name"]: e for e in (found.get("status") or {}).get("endpoints") or []}


def probed(kubectl: Kubectl, namespace: str, name: str) -> dict[str, Any] | None:
    entry = endpoints(kubectl, namespace).get(name)
    return entry if entry is not None and entry.get("lastProbeTime") else None


def seconds_since(start: float, stamp: str) -> float:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp() - start


AGREEMENT = {"apiVersion": "sla.dev/v1alpha1", "kind": "ServiceLevelAgreement",
             "metadata": {"name": "checkout"},
             "spec": {"service": "Checkout", "objective": "99.9",
                      "endpoints": [{"name": "own", "interval": "5s", "timeout": "1s",
                                     "tcp": {"host": "127.0.0.1", "port": 9}}]}}


def discovered_and_dropped(kubectl: Kubectl, namespace: str, operator: OperatorProcess,
                           manifest: dict[str, Any], endpoint: str, host: str) -> None:
    resource = f"{manifest['kind'].lower()}/{manifest['metadata']['name']}"
    annotated = time.time()
    apply(kubectl, namespace, manifest)
    entry = wait_for(f"{endpoint} to be probed", lambda: probed(kubectl, namespace, endpoint),
                     timeout=INTERVAL + 30)
    delay = seconds_since(annotated, entry["lastProbeTime"])
    print(f"\n{endpoint}: first probe {delay:.1f}s after the annotation; {entry['message']}")
    assert delay <= INTERVAL, "probed within one interval"
    # The status leaves a false `dependency` out (docs/API.md, the status's shape).
    assert entry["discovered"] is True and entry.get("dependency", False) is False
    # Nothing on this machine resolves the cluster's names: the probe names the host it tried.
    assert host in entry["message"] or entry["message"].startswith("timeout"), entry["message"]
    assert "discovered" not in endpoints(kubectl, namespace)["own"]
    kubectl("annotate", "-n", namespace, resource, "sla.dev/agreement-")
    wait_for(f"{endpoint} to be dropped", lambda: endpoint not in endpoints(kubectl, namespace),
             timeout=30)
    assert set(endpoints(kubectl, namespace)) == {"own"}
    operator.assert_running()


def test_an_annotated_service_adds_an_endpoint_until_the_annotation_goes(
        kubectl: Kubectl, namespace: str, operator: OperatorProcess) -> None:
    apply(kubectl, namespace, AGREEMENT)
    wait_for("the agreement's own endpoint", lambda: probed(kubectl, namespace, "own"), 60)
    service = {"apiVersion": "v1", "kind": "Service",
               "metadata": {"name": "web", "annotations": {
                   "sla.dev/agreement": "checkout", "sla.dev/endpoint-path": "/healthz",
                   "sla.dev/expect-status": "200"}},
               "spec": {"ports": [{"name": "http", "port": 8080}]}}
    discovered_and_dropped(kubectl, namespace, operator, service, "svc-web",
                           f"web.{namespace}.svc")


def test_an_annotated_ingress_adds_an_endpoint_at_its_host_until_the_annotation_goes(
        kubectl: Kubectl, namespace: str, operator: OperatorProcess) -> None:
    apply(kubectl, namespace, AGREEMENT)
    wait_for("the agreement's own endpoint", lambda: probed(kubectl, namespace, "own"), 60)
    ingress = {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
               "metadata": {"name": "shop", "annotations": {"sla.dev/agreement": "checkout"}},
               "spec": {"rules": [{"host": "shop.discovery.test", "http": {"paths": [
                   {"path": "/healthz", "pathType": "Prefix", "backend": {
                       "service": {"name": "web", "port": {"number": 8080}}}}]}}]}}
    discovered_and_dropped(kubectl, namespace, operator, ingress, "ing-shop",
                           "shop.discovery.test")
