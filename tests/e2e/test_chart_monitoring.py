"""The chart's monitoring extras, installed by the real Helm library: the dashboards as
ConfigMaps for Grafana's sidecar (the generated JSON, unchanged), the operator's own
PrometheusRule, --rule-label from values, and RBAC for the agreements' PrometheusRules."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from test_chart import Release, get_json, helm  # noqa: F401  (helm is a fixture)
from test_prometheus_rules import install_rules_crd

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
Kubectl = Callable[..., Any]


@pytest.fixture(scope="module")
def monitored(helm: ModuleType, kubeconfig: str, kubectl: Kubectl) -> Iterator[Release]:  # noqa: F811
    install_rules_crd(kubectl)
    release = Release(helm, kubeconfig, {})
    release.values = {"watchNamespaces": [release.namespace], "image": {"tag": "e2e"},
                      "dashboards": {"enabled": True},
                      "operatorAlerts": {"enabled": True, "labels": {"release": "prometheus"}},
                      "alertRules": {"ruleLabels": {"release": "prometheus"}}}
    release.install()
    yield release
    release.uninstall()
    kubectl("delete", "namespace", release.namespace, "--wait=false", check=False)


def test_the_dashboards_ship_as_configmaps_for_the_grafana_sidecar(
        kubectl: Kubectl, monitored: Release) -> None:
    maps = get_json(kubectl, "-n", monitored.namespace, "configmaps", "-l", "grafana_dashboard=1")
    shipped = {key: value for item in maps["items"] for key, value in item["data"].items()}
    assert sorted(shipped) == ["sla-agreement.json", "sla-overview.json"]
    for name, text in shipped.items():
        assert json.loads(text) == json.loads((ROOT / "dashboards" / name).read_text())


def test_the_operator_alerts_on_itself(kubectl: Kubectl, monitored: Release) -> None:
    rule = get_json(kubectl, "-n", monitored.namespace, "prometheusrules.monitoring.coreos.com",
                    monitored.name)
    assert rule["metadata"]["labels"]["release"] == "prometheus"
    alerts = [r["alert"] for g in rule["spec"]["groups"] for r in g["rules"]]
    assert alerts == ["SLAOperatorDown", "SLAOperatorProbeLagHigh"]


def test_rule_labels_reach_the_operator(kubectl: Kubectl, monitored: Release) -> None:
    deployment = get_json(kubectl, "-n", monitored.namespace, "deployment", monitored.name)
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    assert "--rule-label=release=prometheus" in container["args"]


@pytest.mark.parametrize(("verb", "granted"), [
    ("get", "yes"), ("list", "yes"), ("create", "yes"), ("patch", "yes"), ("delete", "yes"),
    ("watch", "no"), ("update", "no")])  # kube/rules.py lists once, never watches or puts
def test_the_cluster_role_allows_keeping_prometheusrules(
        kubectl: Kubectl, monitored: Release, verb: str, granted: str) -> None:
    account = f"system:serviceaccount:{monitored.namespace}:{monitored.name}"
    answer = kubectl("auth", "can-i", verb, "prometheusrules.monitoring.coreos.com",
                     "-n", "elsewhere", f"--as={account}", check=False)
    assert answer.stdout.strip() == granted, answer.stderr
