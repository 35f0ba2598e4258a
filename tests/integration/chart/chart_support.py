"""The chart installed by the real Helm library into kmock, and schemas to check what it sent.

helm-sdkpy has no ``template`` action: the Helm library renders a chart only in an install.
The install goes to kmock, which answers ``/version`` with the Kubernetes version chosen for
the render (Helm takes ``.Capabilities.KubeVersion`` from it) and serves the discovery Helm
maps kinds to resources with. The local e2e API server is 1.20, older than the oldest
schemas kubernetes-validate ships (1.25), so it cannot stand in for a newer cluster.
"""

from __future__ import annotations

import asyncio
import copy
import importlib.util
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import kmock as km
import kubernetes_validate
import yaml

ROOT = Path(__file__).resolve().parents[3]
CHART = ROOT / "charts" / "sla-operator"
HELM_INSTALL = Path(__file__).with_name("helm_install.py")
# prometheus-operator's CRDs, the upstream files (as in tests/e2e/test_prometheus_rules.py).
UPSTREAM_CRDS = ("monitoring.coreos.com_servicemonitors.yaml", "monitoring.coreos.com_prometheusrules.yaml")
FIXTURE_DIRS = (ROOT.parent / "shared" / "fixtures", Path("/work/shared/fixtures"))
RELEASE = "sla-operator"
NAMESPACE = "sla-system"

VERBS = ["get", "list", "watch", "create", "update", "patch", "delete"]
# Every kind the chart can install: (group/version, plural, kind, namespaced).
RESOURCES = [
    ("v1", "serviceaccounts", "ServiceAccount", True),
    ("v1", "services", "Service", True),
    ("v1", "configmaps", "ConfigMap", True),
    ("apps/v1", "deployments", "Deployment", True),
    ("rbac.authorization.k8s.io/v1", "clusterroles", "ClusterRole", False),
    ("rbac.authorization.k8s.io/v1", "clusterrolebindings", "ClusterRoleBinding", False),
    ("rbac.authorization.k8s.io/v1", "roles", "Role", True),
    ("rbac.authorization.k8s.io/v1", "rolebindings", "RoleBinding", True),
    ("policy/v1", "poddisruptionbudgets", "PodDisruptionBudget", True),
    ("policy/v1beta1", "poddisruptionbudgets", "PodDisruptionBudget", True),  # below 1.21
    ("networking.k8s.io/v1", "ingresses", "Ingress", True),
    ("networking.k8s.io/v1", "networkpolicies", "NetworkPolicy", True),
    ("apiextensions.k8s.io/v1", "customresourcedefinitions", "CustomResourceDefinition", False),
    ("monitoring.coreos.com/v1", "servicemonitors", "ServiceMonitor", True),
    ("monitoring.coreos.com/v1", "prometheusrules", "PrometheusRule", True),
]


def helm_python() -> str:
    """The interpreter that runs helm_install.py, with helm-sdkpy installed into it if missing."""
    if importlib.util.find_spec("helm_sdkpy") is None:
        subprocess.run(["bash", str(ROOT / "scripts" / "install-helm-sdk.sh")], check=True,
                       env={**os.environ, "SLA_VENV_PYTHON": sys.executable})
    return sys.executable


def serve_kubernetes(kmock: km.KubernetesEmulator, version: str) -> None:
    """Make kmock a Kubernetes API server of ``version`` ("1.37.0") serving RESOURCES."""
    major, minor, *_ = version.split(".")
    kmock["get /version"] << {"major": major, "minor": minor, "gitVersion": f"v{version}",
                              "platform": "linux/amd64"}
    for group_version, plural, kind, namespaced in RESOURCES:
        kmock.resources[f"{group_version}/{plural}"] = km.ResourceInfo(
            kind=kind, singular=kind.lower(), namespaced=namespaced, verbs=VERBS)
    # The chart's shards check (Helm's lookup) lists the release namespace's Deployments and
    # Pods, and Helm decodes a list by its kind, which kmock's lists leave out: none there yet.
    for path, api_version, kind in ((f"/apis/apps/v1/namespaces/{NAMESPACE}/deployments",
                                     "apps/v1", "DeploymentList"),
                                    (f"/api/v1/namespaces/{NAMESPACE}/pods", "v1", "PodList")):
        kmock[f"get {path}"] << {"apiVersion": api_version, "kind": kind,
                                 "metadata": {"resourceVersion": "1"}, "items": []}
    # kmock names the core group's version "/v1"; Helm's REST mapper looks for "v1".
    kmock["get /api/v1"] << {
        "apiVersion": "v1", "kind": "APIResourceList", "groupVersion": "v1",
        "resources": [{"name": plural, "kind": kind, "singularName": kind.lower(),
                       "namespaced": namespaced, "verbs": VERBS}
                      for group_version, plural, kind, namespaced in RESOURCES
                      if group_version == "v1"]}


def kubeconfig(kmock: km.KubernetesEmulator) -> str:
    server = str(kmock.url).rstrip("/")
    return yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "kmock",
        "clusters": [{"name": "kmock", "cluster": {"server": server}}],
        "users": [{"name": "kmock", "user": {"token": "kmock"}}],
        "contexts": [{"name": "kmock", "context": {"cluster": "kmock", "user": "kmock"}}]})


@dataclass(frozen=True)
class Installed:
    rendered: list[dict[str, Any]]  # the release's manifest: the chart's templates, rendered
    created: list[dict[str, Any]]  # every object Helm created, the chart's crds/ included


def install(values: dict[str, Any], kube_version: str, chart: Path = CHART) -> Installed:
    """``chart`` installed with ``values`` into kmock reporting Kubernetes ``kube_version``.

    Each combination is installed once per test session: a Helm process takes seconds.
    """
    installed = _install_once(json.dumps(values, sort_keys=True), kube_version, chart)
    return copy.deepcopy(installed)


@cache
def _install_once(values: str, kube_version: str, chart: Path) -> Installed:
    return asyncio.run(_install(helm_python(), json.loads(values), kube_version, chart))


async def _install(python: str, values: dict[str, Any], kube_version: str, chart: Path) -> Installed:
    async with km.KubernetesEmulator() as kmock, km.Server(kmock):
        serve_kubernetes(kmock, kube_version)
        request = {"kubeconfig": kubeconfig(kmock), "namespace": NAMESPACE, "release": RELEASE,
                   "chart": str(chart), "values": values}
        process = await asyncio.create_subprocess_exec(
            python, str(HELM_INSTALL), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, env={**os.environ, "HELM_DRIVER": "memory"})
        out, err = await process.communicate(json.dumps(request).encode())
        assert process.returncode == 0, err.decode()
        created = [sent.data for sent in kmock
                   if sent.method == km.method.POST and sent.resource is not None]
    release = json.loads(out)
    rendered = [doc for doc in yaml.safe_load_all(release["manifest"]) if doc]
    return Installed(rendered, created)


def identity(manifest: dict[str, Any]) -> str:
    metadata = manifest.get("metadata", {})
    where = f"{metadata['namespace']}/" if metadata.get("namespace") else ""
    return f"{manifest.get('kind')} {where}{metadata.get('name')}"


class SchemaError(AssertionError):
    """A manifest its schema refuses."""


def closed(schema: Any) -> Any:
    """``schema`` refusing fields it does not name, as strict field validation does.

    A structural CRD schema lets unknown fields through, and the API server prunes them
    without a word: a misspelt field in a chart would be dropped silently. Objects that
    keep unknown fields on purpose (x-kubernetes-preserve-unknown-fields) stay open.
    """
    if isinstance(schema, list):
        return [closed(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    result = {key: closed(value) if key in ("items", "additionalProperties", "allOf", "anyOf",
                                             "oneOf", "not") else value
              for key, value in schema.items()}
    if "properties" in schema:
        result["properties"] = {name: closed(sub) for name, sub in schema["properties"].items()}
        if "additionalProperties" not in schema and not schema.get("x-kubernetes-preserve-unknown-fields"):
            result["additionalProperties"] = False
    return result


@cache
def custom_resource_schemas() -> dict[tuple[str, str], dict[str, Any]]:
    """(apiVersion, kind) -> the closed openAPIV3Schema of prometheus-operator's upstream CRDs."""
    schemas: dict[tuple[str, str], dict[str, Any]] = {}
    for name in UPSTREAM_CRDS:
        path = next((folder / name for folder in FIXTURE_DIRS if (folder / name).is_file()), None)
        assert path is not None, f"the upstream CRD {name} is missing from {FIXTURE_DIRS[0]}"
        for crd in yaml.safe_load_all(path.read_text()):
            if not crd:
                continue
            spec = crd["spec"]
            for served in spec["versions"]:
                api_version = f"{spec['group']}/{served['name']}"
                schemas[api_version, spec["names"]["kind"]] = closed(served["schema"]["openAPIV3Schema"])
    return schemas


def validate(manifest: dict[str, Any], kube_version: str) -> None:
    """Raise SchemaError unless ``manifest`` is valid for Kubernetes ``kube_version``.

    Kubernetes' own kinds: kubernetes-validate, strict (unknown fields refused).
    prometheus-operator's kinds: their upstream CRD's schema. A kind neither knows is an
    error too (kubernetes-validate's SchemaNotFoundError), never a silent pass.
    """
    custom = custom_resource_schemas().get((manifest.get("apiVersion", ""), manifest.get("kind", "")))
    if custom is not None:
        error = jsonschema.exceptions.best_match(jsonschema.Draft4Validator(custom).iter_errors(manifest))
        if error is not None:
            path = ".".join(str(part) for part in error.absolute_path)
            raise SchemaError(f"{identity(manifest)}: {path}: {error.message}")
        return
    try:
        kubernetes_validate.validate(copy.deepcopy(manifest), kube_version, strict=True)
    except kubernetes_validate.ValidationError as error:
        path = ".".join(str(part) for part in error.absolute_path)
        raise SchemaError(f"{identity(manifest)}: {path}: {error.message}") from None
    except kubernetes_validate.SchemaNotFoundError as error:
        raise SchemaError(f"{identity(manifest)}: {error.message}") from None


def schema_errors(manifests: list[dict[str, Any]], kube_version: str) -> Iterator[str]:
    for manifest in manifests:
        try:
            validate(manifest, kube_version)
        except SchemaError as error:
            yield str(error)
