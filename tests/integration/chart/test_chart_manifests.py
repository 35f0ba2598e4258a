"""Every manifest the chart installs, for its main value combinations, is valid for the
oldest and the newest Kubernetes version kubernetes-validate knows: Kubernetes' kinds against
its OpenAPI schemas (strict: an unknown field is an error), prometheus-operator's kinds against
their upstream CRD's schema. The chart is rendered by the real Helm library (chart_support)."""

from __future__ import annotations

import copy
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from chart_support import CHART, NAMESPACE, SchemaError, identity, install, schema_errors, validate
from kubernetes_validate import utils as kubernetes_validate_utils

OLDEST = kubernetes_validate_utils.all_versions()[0]
NEWEST = kubernetes_validate_utils.latest_version()

WATCHED = ["payments", "checkout"]
# Values, and the kinds each combination must install: a render that lost them would
# otherwise validate nothing.
COMBINATIONS: dict[str, tuple[dict[str, Any], set[str]]] = {
    "defaults": ({}, {
        "CustomResourceDefinition", "ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Role",
        "RoleBinding", "Service", "Deployment", "PodDisruptionBudget"}),
    "namespaced-rbac": ({"rbac": {"scope": "namespaced"}, "watchNamespaces": WATCHED},
                        {"Role", "RoleBinding", "ClusterRole", "ClusterRoleBinding", "Deployment"}),
    "monitoring": ({"serviceMonitor": {"enabled": True, "labels": {"release": "prometheus"}},
                    "dashboards": {"enabled": True},
                    "operatorAlerts": {"enabled": True, "labels": {"release": "prometheus"}},
                    "alertRules": {"ruleLabels": {"release": "prometheus"}}},
                   {"ServiceMonitor", "PrometheusRule", "ConfigMap", "Deployment"}),
    "ingress-and-network-policy": (
        {"statusPage": {"ingress": {"enabled": True, "className": "nginx", "host": "status.example.com",
                                    "annotations": {"cert-manager.io/cluster-issuer": "letsencrypt"},
                                    "tls": [{"secretName": "status-example-com",
                                             "hosts": ["status.example.com"]}]}},
         "networkPolicy": {"enabled": True,
                           "from": [{"namespaceSelector": {"matchLabels": {"name": "monitoring"}}}]}},
        {"Ingress", "NetworkPolicy", "Service", "Deployment"}),
    "probe-policy": ({"probePolicy": {"rules": [
        {"namespaces": ["*"], "deny": ["10.0.0.0/8", "172.16.0.0/12"]},
        {"namespaces": ["payments"], "allow": ["10.20.0.0/16"]}]}},
        {"ConfigMap", "Deployment"}),
    # What values pass through to the pod and Services as they are (toYaml), all set at once.
    "pod-settings": ({
        "imagePullSecrets": [{"name": "registry"}],
        "priorityClassName": "system-cluster-critical",
        "podAnnotations": {"example.com/scrape": "true"}, "podLabels": {"team": "sre"},
        "env": [{"name": "TZ", "value": "UTC"},
                {"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "probe-auth", "key": "token"}}}],
        "extraArgs": ["--log-level=debug"],
        "probeAddressPolicy": {"allowCIDRs": ["10.0.0.0/8"]},
        "nodeSelector": {"kubernetes.io/os": "linux"},
        "tolerations": [{"key": "dedicated", "operator": "Equal", "value": "ops", "effect": "NoSchedule"}],
        "affinity": {"nodeAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
            {"weight": 1, "preference": {"matchExpressions": [
                {"key": "node-role", "operator": "In", "values": ["ops"]}]}}]}},
        "topologySpread": {"topologyKey": "topology.kubernetes.io/zone",
                           "whenUnsatisfiable": "DoNotSchedule"},
        "resources": {"requests": {"cpu": "200m", "memory": "256Mi"}, "limits": {"cpu": 1, "memory": "1Gi"}},
        "service": {"type": "NodePort", "annotations": {"example.com/owner": "sre"}},
        "statusPage": {"service": {"type": "LoadBalancer", "annotations": {"example.com/lb": "public"}}},
        "serviceAccount": {"annotations": {"example.com/role": "sla-operator"}}},
        {"Deployment", "Service", "ServiceAccount"}),
    # Three shards: a Deployment and a PodDisruptionBudget each.
    "shards": ({"shards": 3}, {"Deployment", "PodDisruptionBudget", "Service", "Role"}),
    # One replica without a Lease, no listeners, RBAC and ServiceAccount made elsewhere.
    "one-replica-no-listeners": ({
        "replicaCount": 1, "leaderElection": {"enabled": False}, "metrics": {"port": 0},
        "statusPage": {"port": 0}, "rbac": {"create": False},
        "serviceAccount": {"create": False, "name": "sla-operator-existing"},
        "topologySpread": {"enabled": False}},
        {"Deployment", "CustomResourceDefinition"}),
}


@pytest.mark.parametrize("kube_version", [OLDEST, NEWEST])
@pytest.mark.parametrize("combination", list(COMBINATIONS))
def test_every_manifest_the_chart_installs_is_valid(combination: str, kube_version: str) -> None:
    values, kinds = COMBINATIONS[combination]
    installed = install(values, kube_version)
    assert kinds <= {manifest["kind"] for manifest in installed.created}
    # What Helm rendered is what it created (plus the CRDs of crds/, which it does not render).
    assert {identity(m) for m in installed.rendered} == {
        identity(m) for m in installed.created if m["kind"] != "CustomResourceDefinition"}
    assert list(schema_errors(installed.created, kube_version)) == []


def test_namespaced_rbac_puts_a_role_and_binding_in_each_watched_namespace() -> None:
    values, _ = COMBINATIONS["namespaced-rbac"]
    installed = install(values, NEWEST)
    for kind in ("Role", "RoleBinding"):
        namespaces = {m["metadata"]["namespace"] for m in installed.created if m["kind"] == kind}
        assert namespaces == {*WATCHED, NAMESPACE}, kind  # the watched ones, and the leader's own


@pytest.mark.parametrize(("kube_version", "api_version"), [
    ("1.20.2", "policy/v1beta1"),  # the local e2e API server: no schema for it to check against
    (OLDEST, "policy/v1"),
])
def test_the_render_follows_the_kubernetes_version_the_server_reports(
        kube_version: str, api_version: str) -> None:
    installed = install(COMBINATIONS["defaults"][0], kube_version)
    (budget,) = [m for m in installed.created if m["kind"] == "PodDisruptionBudget"]
    assert budget["apiVersion"] == api_version


def field(manifest: dict[str, Any], path: str, value: Any) -> None:
    """Set the field at a dotted ``path`` (list indexes as numbers)."""
    *parents, last = [int(part) if part.isdigit() else part for part in path.split(".")]
    node: Any = manifest
    for part in parents:
        node = node[part]
    node[last] = value


def renamed(manifest: dict[str, Any], path: str, new_name: str) -> None:
    """Rename the field at ``path``: a misspelling."""
    *parents, last = path.split(".")
    node: Any = manifest
    for part in parents:
        node = node[int(part) if part.isdigit() else part]
    node[new_name] = node.pop(last)


Change = Callable[[dict[str, Any]], None]


@pytest.mark.parametrize(("combination", "kind", "change", "refused_at"), [
    ("defaults", "Deployment", lambda m: field(m, "spec.replicas", "2"), "spec.replicas"),
    ("defaults", "Deployment",
     lambda m: renamed(m, "spec.template.spec.containers.0.imagePullPolicy", "imagePullPolicyy"),
     "spec.template.spec.containers.0"),
    ("defaults", "Service", lambda m: field(m, "spec.ports.0.port", "9090"), "spec.ports.0.port"),
    ("defaults", "ClusterRole", lambda m: field(m, "rules.0.verbs", "get"), "rules.0.verbs"),
    ("defaults", "PodDisruptionBudget", lambda m: field(m, "spec.minAvailable", [1]), "spec.minAvailable"),
    ("ingress-and-network-policy", "NetworkPolicy", lambda m: field(m, "spec.policyTypes", "Ingress"),
     "spec.policyTypes"),
    ("monitoring", "ServiceMonitor", lambda m: field(m, "spec.endpoints.0.path", 9090),
     "spec.endpoints.0.path"),
    ("monitoring", "ServiceMonitor", lambda m: renamed(m, "spec.endpoints.0.interval", "intervall"),
     "spec.endpoints.0"),
    ("monitoring", "PrometheusRule", lambda m: field(m, "spec.groups.0.rules", {"alert": "SLAOperatorDown"}),
     "spec.groups.0.rules"),
], ids=lambda value: value if isinstance(value, str) else "")
def test_a_manifest_with_a_wrong_field_is_refused(
        combination: str, kind: str, change: Change, refused_at: str) -> None:
    installed = install(COMBINATIONS[combination][0], NEWEST)
    manifest = next(m for m in installed.created if m["kind"] == kind)
    validate(manifest, NEWEST)  # as rendered: valid
    broken = copy.deepcopy(manifest)
    change(broken)
    with pytest.raises(SchemaError) as refused:
        validate(broken, NEWEST)
    assert f": {refused_at}: " in str(refused.value)


def test_a_chart_that_renders_a_wrong_field_type_fails_the_check(tmp_path: Path) -> None:
    broken = tmp_path / "sla-operator"
    shutil.copytree(CHART, broken)
    template = broken / "templates" / "deployment.yaml"
    text = template.read_text()
    assert "replicas: {{ .Values.replicaCount }}" in text
    template.write_text(text.replace("replicas: {{ .Values.replicaCount }}",
                                     "replicas: {{ .Values.replicaCount | quote }}"))
    installed = install({}, NEWEST, chart=broken)
    (error,) = schema_errors(installed.created, NEWEST)
    assert error.startswith(f"Deployment {NAMESPACE}/sla-operator: spec.replicas: '2' is not of type")


def test_a_kind_without_a_schema_is_an_error_not_a_pass() -> None:
    unknown = {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}}
    with pytest.raises(SchemaError, match="Couldn't find schema for kind Widget"):
        validate(unknown, NEWEST)
