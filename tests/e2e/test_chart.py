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
from kubernetes import client, config

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

    def upgrade(self, values: dict[str, Any]) -> dict[str, Any]:
        """``helm upgrade`` to ``values`` (the whole set, as --reset-values does)."""
        action = self._helm.Upgrade(self.config)
        result: dict[str, Any] = asyncio.run(action.run(self.name, CHART, values=values, wait=False))
        self.values = values
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
    sla_rules = [r for r in role["rules"] if r["apiGroups"] == ["sla.dev"]]
    assert any("servicelevelagreements/status" in r["resources"] and r["verbs"] == ["patch"]
               for r in sla_rules)
    # Only what the operator uses, PrometheusRules included (one per agreement).
    groups = {group for rule in role["rules"] for group in rule["apiGroups"]}
    assert groups == {"sla.dev", "", "apiextensions.k8s.io", "monitoring.coreos.com"}
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
    assert {"--metrics-port=9090", "--deny-cidr=169.254.0.0/16", "--status-port=8080",
            "--leader-elect", f"--leader-elect-namespace={release.namespace}",
            "--max-status-writes-per-second=50"} <= set(container["args"])
    assert "--endpoint-histograms=auto" in container["args"]  # bounded for a large fleet
    assert [port["name"] for port in container["ports"]] == ["metrics", "status"]
    env = {e["name"]: e["valueFrom"]["fieldRef"]["fieldPath"] for e in container["env"]}
    assert env == {"POD_NAME": "metadata.name", "POD_NAMESPACE": "metadata.namespace"}
    # Two replicas, one Lease: a rolling update never stops the last running one first.
    assert deployment["spec"]["replicas"] == 2
    assert deployment["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
    (spread,) = pod["topologySpreadConstraints"]
    assert spread["topologyKey"] == "kubernetes.io/hostname"
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "metrics", "scheme": "HTTP"}
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["serviceAccountName"] == release.name


def test_metrics_reach_every_replica_and_the_status_page_only_the_leader(
        kubectl: Kubectl, release: Release) -> None:
    metrics = get_json(kubectl, "-n", release.namespace, "service", release.name)
    assert {p["name"]: p["port"] for p in metrics["spec"]["ports"]} == {"metrics": 9090}
    assert "sla.dev/leader" not in metrics["spec"]["selector"]
    page = get_json(kubectl, "-n", release.namespace, "service", f"{release.name}-status")
    assert [(p["port"], p["targetPort"]) for p in page["spec"]["ports"]] == [(80, "status")]
    assert page["spec"]["selector"]["sla.dev/leader"] == "true"


def test_a_disruption_budget_and_the_lease_role_come_with_two_replicas(
        kubectl: Kubectl, release: Release) -> None:
    budget = get_json(kubectl, "-n", release.namespace, "pdb", release.name)
    assert budget["spec"]["minAvailable"] == 1
    role = get_json(kubectl, "-n", release.namespace, "role", f"{release.name}-leader")
    assert {(tuple(r["apiGroups"]), tuple(r["resources"])) for r in role["rules"]} == {
        (("coordination.k8s.io",), ("leases",)), (("",), ("pods",))}
    account = f"system:serviceaccount:{release.namespace}:{release.name}"
    for verb, resource, answer in (("update", "leases.coordination.k8s.io", "yes"),
                                   ("patch", "pods", "yes"), ("delete", "pods", "no")):
        result = kubectl("auth", "can-i", verb, resource, "-n", release.namespace,
                         f"--as={account}", check=False)
        assert result.stdout.strip() == answer, (verb, resource, result.stderr)


def test_endpoint_histograms_are_a_value_of_the_chart(
    helm: ModuleType, kubeconfig: str, kubectl: Kubectl
) -> None:
    detailed = Release(helm, kubeconfig, {"metrics": {"endpointHistograms": True}})
    detailed.install()
    try:
        deployment = get_json(kubectl, "-n", detailed.namespace, "deployment", detailed.name)
        (container,) = deployment["spec"]["template"]["spec"]["containers"]
        assert "--endpoint-histograms=on" in container["args"]
    finally:
        detailed.uninstall()
        kubectl("delete", "namespace", detailed.namespace, "--wait=false", check=False)


def test_with_metrics_off_there_is_no_service_and_no_liveness_probe(
    helm: ModuleType, kubeconfig: str, kubectl: Kubectl
) -> None:
    quiet = Release(helm, kubeconfig, {"metrics": {"port": 0}, "statusPage": {"port": 0},
                                       "rbac": {"create": False}})
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
        ("patch", "incidents.sla.dev", "yes"),
        ("watch", "maintenancewindows.sla.dev", "yes"),
        ("create", "events", "yes"),
        # Never a person's object: no spec change, no creation, no deletion.
        ("patch", "servicelevelagreements.sla.dev", "no"),
        ("update", "servicelevelagreements.sla.dev", "no"),
        ("delete", "servicelevelagreements.sla.dev", "no"),
        ("create", "servicelevelagreements.sla.dev", "no"),
        ("update", "servicelevelagreements.sla.dev/status", "no"),
        ("patch", "maintenancewindows.sla.dev", "no"),
        ("delete", "maintenancewindows.sla.dev", "no"),
        ("delete", "incidents.sla.dev", "no"),
        ("update", "incidents.sla.dev", "no"),
        ("deletecollection", "incidents.sla.dev", "no"),
        ("patch", "events", "no"),
        ("watch", "prometheusrules.monitoring.coreos.com", "no"),
        # Secrets: granted by a Role per namespace (rbac.secretNamespaces), never here.
        ("get", "secrets", "no"),
        ("delete", "secrets", "no"),
        ("list", "secrets", "no"),
        ("list", "namespaces", "no"),
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


def test_the_restricted_user_can_write_status_but_not_delete_or_read_secrets(
    restricted_kubectl: Kubectl, kubectl: Kubectl, release: Release, control_plane: Any
) -> None:
    for crd in CRD_NAMES:
        kubectl("wait", "--for=condition=Established", "--timeout=60s", f"crd/{crd}")
    ns = release.namespace
    kubectl("apply", "-n", ns, "-f", str(ROOT / "examples" / "payments-api.yaml"))
    # A merge patch of the status, as the operator sends it (kubectl would read the status
    # subresource first, which the operator never does and the role does not grant).
    restricted = client.CustomObjectsApi(config.new_client_from_config(
        control_plane.restricted_kubeconfig))
    restricted.patch_namespaced_custom_object_status(
        "sla.dev", "v1alpha1", ns, "servicelevelagreements", "payments-api",
        {"status": {"state": "Up"}})
    assert get_json(kubectl, "-n", ns, "sla/payments-api")["status"]["state"] == "Up"
    for denied in (restricted_kubectl("delete", "-n", ns, "secret/probe-auth", check=False),
                   restricted_kubectl("get", "-n", ns, "secret/probe-auth", check=False),
                   restricted_kubectl("delete", "-n", ns, "sla/payments-api", check=False),
                   restricted_kubectl("patch", "-n", ns, "sla/payments-api", "--type=merge", "-p",
                                      json.dumps({"spec": {"objective": "90"}}), check=False)):
        assert denied.returncode != 0
        assert "forbidden" in denied.stderr.lower(), denied.stderr
    # The ServiceAccount reads Secrets of the watched namespace (its Role there) only.
    account = f"system:serviceaccount:{ns}:{release.name}"
    for namespace, answer in ((ns, "yes"), ("default", "no")):
        result = kubectl("auth", "can-i", "get", "secrets", "-n", namespace, f"--as={account}",
                         check=False)
        assert result.stdout.strip() == answer, (namespace, result.stderr)


def test_namespaced_rbac_grants_roles_in_the_watched_namespaces_only(
        helm: ModuleType, kubeconfig: str, kubectl: Kubectl) -> None:
    narrow = Release(helm, kubeconfig, {})
    watched = unique("sla-watched")
    kubectl("create", "namespace", watched)
    narrow.values = {"rbac": {"scope": "namespaced"}, "watchNamespaces": [watched],
                     "image": {"tag": "e2e"}}
    narrow.install()
    try:
        account = f"system:serviceaccount:{narrow.namespace}:{narrow.name}"

        def can(verb: str, resource: str, namespace: str, *more: str) -> str:
            result = kubectl("auth", "can-i", verb, resource, "-n", namespace,
                             f"--as={account}", *more, check=False)
            return str(result.stdout.strip())

        wait_for("the Role in force", lambda: can("create", "incidents.sla.dev", watched) == "yes")
        assert can("patch", "servicelevelagreements.sla.dev", watched,
                   "--subresource=status") == "yes"
        assert can("patch", "servicelevelagreements.sla.dev", watched) == "no"
        assert can("delete", "incidents.sla.dev", watched) == "no"
        assert can("get", "secrets", watched) == "yes"
        assert can("create", "incidents.sla.dev", "default") == "no"  # not watched: nothing
        assert can("get", "secrets", "default") == "no"
        assert can("watch", "customresourcedefinitions.apiextensions.k8s.io", "") == "yes"
        assert can("list", "namespaces", "") == "no"
    finally:
        narrow.uninstall()
        for namespace in (narrow.namespace, watched):
            kubectl("delete", "namespace", namespace, "--wait=false", check=False)


@pytest.mark.parametrize(("values", "named"), [
    ({"replicaCount": 0}, "replicaCount"),
    ({"rbac": {"scope": "everywhere"}}, "rbac.scope"),
    ({"leaderElection": {"leaseDuration": "15 seconds"}}, "leaderElection.leaseDuration"),
    ({"probeAddressPolicy": {"denyCIDRs": ["not a range"]}}, "probeAddressPolicy.denyCIDRs"),
    ({"replicaCount": 2, "leaderElection": {"enabled": False}}, "leaderElection.enabled"),
    ({"metrics": {"endpointHistograms": "yes"}}, "metrics.endpointHistograms"),
])
def test_values_the_chart_cannot_honour_are_refused_naming_the_value(
        helm: ModuleType, kubeconfig: str, kubectl: Kubectl, values: dict[str, Any],
        named: str) -> None:
    refused = Release(helm, kubeconfig, values)
    try:
        with pytest.raises(Exception) as caught:
            refused.install()
        assert named.split(".")[-1] in str(caught.value), caught.value
    finally:
        kubectl("delete", "namespace", refused.namespace, "--wait=false", check=False)


def test_policy_ingress_and_network_policy_are_rendered_when_asked(
        helm: ModuleType, kubeconfig: str, kubectl: Kubectl) -> None:
    full = Release(helm, kubeconfig, {
        "image": {"tag": "e2e"}, "rbac": {"create": False},
        "probePolicy": {"rules": [{"namespaces": ["*"], "deny": ["10.0.0.0/8"]}]},
        "statusPage": {"ingress": {"enabled": True, "host": "status.example.com"}},
        "networkPolicy": {"enabled": True}})
    full.install()
    try:
        ns = full.namespace
        policy = get_json(kubectl, "-n", ns, "configmap", f"{full.name}-probe-policy")
        assert "10.0.0.0/8" in policy["data"]["probe-policy.yaml"]
        deployment = get_json(kubectl, "-n", ns, "deployment", full.name)
        (container,) = deployment["spec"]["template"]["spec"]["containers"]
        assert "--probe-policy=/etc/sla-operator/probe-policy.yaml" in container["args"]
        ingress = get_json(kubectl, "-n", ns, "ingress", f"{full.name}-status")
        assert ingress["spec"]["rules"][0]["host"] == "status.example.com"
        network = get_json(kubectl, "-n", ns, "networkpolicy", full.name)
        assert network["spec"]["policyTypes"] == ["Ingress"]
        assert {p["port"] for p in network["spec"]["ingress"][0]["ports"]} == {9090, 8080}
    finally:
        full.uninstall()
        kubectl("delete", "namespace", full.namespace, "--wait=false", check=False)
