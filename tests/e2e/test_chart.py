"""The Helm chart, linted and installed by the real Helm library into the cluster under test.

helm-sdkpy is installed outside pyproject.toml (its metadata asks for Python 3.12 while it
runs on 3.11), by scripts/install-helm-sdk.sh, which this module calls when it is missing.
There is no kubelet in the local control plane, so the Deployment is stored but never runs;
the RBAC the chart grants is checked for real with the restricted user's own credentials.
"""

from __future__ import annotations

import asyncio
import importlib
import json
import shutil
import subprocess
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from support import wait_for

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
CHART = str(ROOT / "charts" / "sla-operator")
CRD_NAMES = [
    "servicelevelagreements.sla.dev",
    "maintenancewindows.sla.dev",
    "incidents.sla.dev",
]
HELM_WARNING_SEVERITY = 2  # helm's support.WarningSev; InfoSev is 1, ErrorSev 4

Kubectl = Callable[..., Any]


@pytest.fixture(scope="module")
def helm() -> ModuleType:
    try:
        return importlib.import_module("helm_sdkpy")
    except ImportError:
        subprocess.run(["bash", str(ROOT / "scripts" / "install-helm-sdk.sh")], check=True)
        importlib.invalidate_caches()
        return importlib.import_module("helm_sdkpy")


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:6]}"


class Release:
    """One installed release of the chart, in a namespace of its own."""

    def __init__(self, helm: ModuleType, kubeconfig: str, values: dict[str, Any]) -> None:
        self.name = unique("sla-operator")  # holds the chart name, so objects are named after it
        self.namespace = unique("sla-chart-e2e")
        self.values = values
        self.config = helm.Configuration(
            namespace=self.namespace, kubeconfig=kubeconfig, insecure_skip_tls_verify=True
        )
        self._helm = helm

    def install(self) -> dict[str, Any]:
        action = self._helm.Install(self.config)
        result: dict[str, Any] = asyncio.run(
            action.run(self.name, CHART, values=self.values, create_namespace=True, wait=False)
        )
        return result

    def uninstall(self) -> None:
        asyncio.run(self._helm.Uninstall(self.config).run(self.name, wait=False))


@pytest.fixture(scope="module")
def release(helm: ModuleType, kubeconfig: str, kubectl: Kubectl) -> Iterator[Release]:
    installed = Release(helm, kubeconfig, {})
    installed.values = {"watchNamespaces": [installed.namespace], "image": {"tag": "e2e"}}
    installed.install()
    yield installed
    installed.uninstall()
    kubectl("delete", "namespace", installed.namespace, "--wait=false", check=False)


def get_json(kubectl: Kubectl, *args: str) -> dict[str, Any]:
    result: dict[str, Any] = json.loads(kubectl("get", *args, "-o", "json").stdout)
    return result


def test_the_chart_lints_without_warnings(helm: ModuleType) -> None:
    report = asyncio.run(helm.Lint(helm.Configuration()).run(CHART))
    assert report["TotalChartsLinted"] == 1
    assert not report.get("Errors"), report
    serious = [m for m in report.get("Messages") or [] if m["Severity"] >= HELM_WARNING_SEVERITY]
    assert serious == [], serious


def test_the_release_creates_its_crds_and_rbac(kubectl: Kubectl, release: Release) -> None:
    for crd in CRD_NAMES:
        kubectl("wait", "--for=condition=Established", "--timeout=60s", f"crd/{crd}")
    role = get_json(kubectl, "clusterrole", release.name)
    sla_rule = next(r for r in role["rules"] if r["apiGroups"] == ["sla.dev"])
    assert "servicelevelagreements/status" in sla_rule["resources"]
    # Only what the operator uses, PrometheusRules included (one per agreement).
    groups = {group for rule in role["rules"] for group in rule["apiGroups"]}
    assert groups == {"sla.dev", "", "events.k8s.io", "apiextensions.k8s.io",
                      "monitoring.coreos.com"}
    binding = get_json(kubectl, "clusterrolebinding", release.name)
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": release.name, "namespace": release.namespace}
    ]
    kubectl("get", "-n", release.namespace, "serviceaccount", release.name)


def test_the_deployment_runs_the_operator_read_only_with_a_liveness_probe(
    kubectl: Kubectl, release: Release
) -> None:
    deployment = get_json(kubectl, "-n", release.namespace, "deployment", release.name)
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["image"] == "sla-operator:e2e"
    assert container["args"][0] == "run"
    assert f"--namespace={release.namespace}" in container["args"]
    assert {"--metrics-port=9090", "--deny-cidr=169.254.0.0/16"} <= set(container["args"])
    # There is no status page in this version: the chart neither configures nor exposes one.
    assert not [arg for arg in container["args"] if arg.startswith("--status-port")]
    assert [port["name"] for port in container["ports"]] == ["metrics"]
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "metrics", "scheme": "HTTP"}
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["serviceAccountName"] == release.name


def test_the_service_exposes_metrics_only(kubectl: Kubectl, release: Release) -> None:
    service = get_json(kubectl, "-n", release.namespace, "service", release.name)
    ports = {p["name"]: p["port"] for p in service["spec"]["ports"]}
    assert ports == {"metrics": 9090}


def test_with_metrics_off_there_is_no_service_and_no_liveness_probe(
    helm: ModuleType, kubeconfig: str, kubectl: Kubectl
) -> None:
    quiet = Release(helm, kubeconfig, {"metrics": {"port": 0}, "rbac": {"create": False}})
    quiet.install()
    try:
        deployment = get_json(kubectl, "-n", quiet.namespace, "deployment", quiet.name)
        (container,) = deployment["spec"]["template"]["spec"]["containers"]
        assert "livenessProbe" not in container
        assert "ports" not in container
        services = get_json(kubectl, "-n", quiet.namespace, "services")["items"]
        assert services == []
        assert kubectl("get", "clusterrole", quiet.name, check=False).returncode != 0
    finally:
        quiet.uninstall()
        kubectl("delete", "namespace", quiet.namespace, "--wait=false", check=False)


@pytest.fixture()
def restricted_kubectl(control_plane: Any, kubectl: Kubectl, release: Release) -> Iterator[Kubectl]:
    """kubectl as ``sla-operator-restricted``, bound to the chart's ClusterRole and nothing else."""
    if control_plane is None:
        pytest.skip("an external cluster has no restricted user to authenticate as")
    binding = f"{release.name}-restricted"
    kubectl(
        "create",
        "clusterrolebinding",
        binding,
        f"--clusterrole={release.name}",
        f"--user={control_plane.restricted_user}",
    )
    binary = shutil.which("kubectl") or "/usr/bin/kubectl"

    def as_restricted(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        cmd = [binary, f"--kubeconfig={control_plane.restricted_kubeconfig}", *args]
        result = subprocess.run(cmd, text=True, capture_output=True, timeout=60)
        if check:
            assert result.returncode == 0, result.stderr
        return result

    # The API server learns of a new binding through its informer: wait until it does.
    wait_for("the binding in force", lambda: as_restricted(
        "auth", "can-i", "create", "incidents.sla.dev", "-n", release.namespace,
        check=False).stdout.strip() == "yes")
    yield as_restricted
    kubectl("delete", "clusterrolebinding", binding, check=False)


@pytest.mark.parametrize(
    ("verb", "resource", "answer"),
    [
        ("patch", "servicelevelagreements.sla.dev/status", "yes"),
        ("create", "incidents.sla.dev", "yes"),
        ("watch", "maintenancewindows.sla.dev", "yes"),
        ("create", "events", "yes"),
        ("get", "secrets", "yes"),
        ("delete", "secrets", "no"),
        ("list", "secrets", "no"),
        ("create", "deployments.apps", "no"),
    ],
)
def test_the_cluster_role_grants_what_the_operator_needs_and_no_more(
    restricted_kubectl: Kubectl, release: Release, verb: str, resource: str, answer: str
) -> None:
    resource_name, _, subresource = resource.partition("/")
    args = ["auth", "can-i", verb, resource_name, "-n", release.namespace]
    if subresource:
        args.append(f"--subresource={subresource}")
    result = restricted_kubectl(*args, check=False)
    assert result.stdout.strip() == answer, result.stderr


def test_the_restricted_user_can_write_status_but_not_delete_secrets(
    restricted_kubectl: Kubectl, kubectl: Kubectl, release: Release
) -> None:
    for crd in CRD_NAMES:
        kubectl("wait", "--for=condition=Established", "--timeout=60s", f"crd/{crd}")
    ns = release.namespace
    kubectl("apply", "-n", ns, "-f", str(ROOT / "examples" / "payments-api.yaml"))
    restricted_kubectl(
        "patch",
        "-n",
        ns,
        "sla/payments-api",
        "--subresource=status",
        "--type=merge",
        "-p",
        json.dumps({"status": {"state": "Up"}}),
    )
    assert get_json(kubectl, "-n", ns, "sla/payments-api")["status"]["state"] == "Up"
    assert restricted_kubectl("get", "-n", ns, "secret/probe-auth", "-o", "name").stdout.strip()
    denied = restricted_kubectl("delete", "-n", ns, "secret/probe-auth", check=False)
    assert denied.returncode != 0
    assert "forbidden" in denied.stderr.lower(), denied.stderr
