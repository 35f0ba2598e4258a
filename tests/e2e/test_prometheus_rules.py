"""PrometheusRules in a cluster: one per agreement, kept by `sla-operator run` once
prometheus-operator's CRD (the upstream file) is served, also when it arrives after the
operator started; updated, deleted with alerting off, collected with the agreement, never
written again for an agreement that is gone; and a missing permission is one warning."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from support import REPO, OperatorProcess, namespace_with_crds, wait_for

pytestmark = pytest.mark.e2e

Kubectl = Callable[..., Any]
RULES_CRD = REPO.parent / "shared" / "fixtures" / "monitoring.coreos.com_prometheusrules.yaml"
CRD_NAME = "prometheusrules.monitoring.coreos.com"


def rules_crd() -> Path:
    for candidate in (RULES_CRD, Path("/work/shared/fixtures") / RULES_CRD.name):
        if candidate.is_file():
            return candidate
    raise AssertionError(f"the upstream PrometheusRule CRD is missing: {RULES_CRD}")


def install_rules_crd(kubectl: Kubectl) -> None:
    kubectl("apply", "--server-side", "-f", str(rules_crd()))
    kubectl("wait", "--for=condition=Established", f"crd/{CRD_NAME}", "--timeout=60s")


def remove_rules_crd(kubectl: Kubectl) -> None:
    kubectl("delete", "crd", CRD_NAME, "--ignore-not-found", "--wait=true", timeout=120)


def agreement(name: str, **spec: Any) -> dict[str, Any]:
    return {"apiVersion": "sla.dev/v1alpha1", "kind": "ServiceLevelAgreement",
            "metadata": {"name": name},
            "spec": {"service": f"Service {name}", "objective": "99.9",
                     # Nothing listens there: probing is not what these tests are about.
                     "endpoints": [{"name": "api", "interval": "5s", "timeout": "1s",
                                    "tcp": {"host": "127.0.0.1", "port": 9}}],
                     "alerting": {"labels": {"team": "shop"}}, **spec}}


def apply(kubectl: Kubectl, namespace: str, manifest: dict[str, Any]) -> None:
    kubectl("apply", "-n", namespace, "-f", "-", input=json.dumps(manifest))


def rule(kubectl: Kubectl, namespace: str, name: str) -> dict[str, Any] | None:
    result = kubectl("get", "prometheusrules.monitoring.coreos.com", name, "-n", namespace,
                     "-o", "json", check=False)
    return json.loads(result.stdout) if result.returncode == 0 else None


def uid_of(kubectl: Kubectl, namespace: str, name: str) -> str:
    return str(json.loads(kubectl("get", "sla", name, "-n", namespace, "-o", "json").stdout)
               ["metadata"]["uid"])


@pytest.fixture
def namespace(kubectl: Kubectl) -> Iterator[str]:
    with namespace_with_crds(kubectl, "rules") as name:
        yield name


class LabellingOperator(OperatorProcess):
    """`sla-operator run` with a --rule-label, as for prometheus-operator's ruleSelector."""

    def start(self) -> None:
        env = {**os.environ, "KUBECONFIG": self.kubeconfig, "PYTHONUNBUFFERED": "1"}
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "sla_operator", "run", "--namespace", self.namespace,
                 "--metrics-port", str(self.metrics_port), "--status-port", "0",
                 "--bind-address", "127.0.0.1", "--rule-label", "release=prometheus"],
                stdout=log, stderr=subprocess.STDOUT, env=env, cwd=REPO)


@pytest.fixture
def operator(kubeconfig: str, namespace: str, tmp_path: Path) -> Iterator[OperatorProcess]:
    process = LabellingOperator(kubeconfig, namespace, tmp_path)
    yield process
    if process.process is not None:
        print(process.log())
    process.stop()


def test_the_rule_follows_the_agreement_and_the_crd_may_come_later(
        kubectl: Kubectl, namespace: str, operator: OperatorProcess) -> None:
    remove_rules_crd(kubectl)
    operator.start()
    apply(kubectl, namespace, agreement("checkout"))
    wait_for("the operator to evaluate the agreement", lambda: json.loads(kubectl(
        "get", "sla", "checkout", "-n", namespace, "-o", "json").stdout).get("status", {})
        .get("state"), timeout=60)

    started = time.monotonic()
    install_rules_crd(kubectl)  # after the operator started: no restart
    created = wait_for("the PrometheusRule", lambda: rule(kubectl, namespace, "checkout-sla"), 60)
    print(f"\nPrometheusRule created {time.monotonic() - started:.1f}s after the CRD was applied")
    operator.assert_running()
    labels = created["metadata"]["labels"]
    assert labels == {"app.kubernetes.io/managed-by": "sla-operator", "release": "prometheus"}
    [owner] = created["metadata"]["ownerReferences"]
    assert (owner["kind"], owner["name"]) == ("ServiceLevelAgreement", "checkout")
    assert owner["uid"] == uid_of(kubectl, namespace, "checkout")
    assert created["spec"]["groups"][0]["name"] == f"sla/{namespace}/checkout"

    apply(kubectl, namespace, agreement("checkout", objective="99"))  # 14.4 x 0.01
    wait_for("the rule to follow the new objective", lambda: "> 0.144 and" in json.dumps(
        (rule(kubectl, namespace, "checkout-sla") or {}).get("spec")), 60)

    apply(kubectl, namespace, agreement("checkout", alerting={"enabled": False}))
    wait_for("the rule to go with alerting off",
             lambda: rule(kubectl, namespace, "checkout-sla") is None, 60)
    apply(kubectl, namespace, agreement("checkout"))
    wait_for("the rule to return", lambda: rule(kubectl, namespace, "checkout-sla"), 60)

    kubectl("delete", "sla", "checkout", "-n", namespace)
    wait_for("the garbage collector to take the rule with its agreement",
             lambda: rule(kubectl, namespace, "checkout-sla") is None, 90)
    time.sleep(5)  # no create -> collect -> create loop for an agreement that is gone
    assert rule(kubectl, namespace, "checkout-sla") is None
    operator.assert_running()


def test_a_crd_present_at_startup_gets_every_agreement_its_rule(
        kubectl: Kubectl, namespace: str, operator: OperatorProcess) -> None:
    install_rules_crd(kubectl)
    apply(kubectl, namespace, agreement("orders"))
    apply(kubectl, namespace, agreement("quiet", alerting={"enabled": False}))
    operator.start()
    created = wait_for("the PrometheusRule", lambda: rule(kubectl, namespace, "orders-sla"), 60)
    assert created["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "sla-operator"
    time.sleep(3)
    assert rule(kubectl, namespace, "quiet-sla") is None

    # `sla-operator rules` reads the same agreements from the cluster and prints that object.
    printed = subprocess.run(
        [sys.executable, "-m", "sla_operator", "rules", "--namespace", namespace, "-o",
         "prometheusrule"], env={**os.environ, "KUBECONFIG": operator.kubeconfig}, cwd=REPO,
        capture_output=True, text=True, timeout=60)
    assert printed.returncode == 0, printed.stderr
    [same] = yaml.safe_load_all(printed.stdout)
    assert same["spec"] == created["spec"]
    assert same["metadata"]["ownerReferences"] == created["metadata"]["ownerReferences"]


def test_without_permission_for_rules_the_operator_warns_once_and_carries_on(
        control_plane: Any, kubectl: Kubectl, namespace: str, tmp_path: Path) -> None:
    if control_plane is None:
        pytest.skip("an external cluster has no restricted user to authenticate as")
    install_rules_crd(kubectl)
    role = _chart_rules_without_prometheusrules()
    kubectl("apply", "-f", "-", input=json.dumps({
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
        "metadata": {"name": "sla-e2e-no-rules"}, "rules": role}))
    kubectl("create", "clusterrolebinding", "sla-e2e-no-rules", "--clusterrole=sla-e2e-no-rules",
            f"--user={control_plane.restricted_user}")
    process = OperatorProcess(control_plane.restricted_kubeconfig, namespace, tmp_path)
    try:
        apply(kubectl, namespace, agreement("first"))
        process.start()
        apply(kubectl, namespace, agreement("second"))
        wait_for("the operator to evaluate both agreements", lambda: all(
            json.loads(kubectl("get", "sla", name, "-n", namespace, "-o", "json").stdout)
            .get("status", {}).get("state") for name in ("first", "second")), timeout=90)
        process.assert_running()
        warnings = [line for line in process.log().splitlines()
                    if "not allowed to manage prometheusrules" in line]
        assert len(warnings) == 1, process.log()
        assert "WARNING" in warnings[0]
    finally:
        process.stop()
        kubectl("delete", "clusterrolebinding", "sla-e2e-no-rules", check=False)
        kubectl("delete", "clusterrole", "sla-e2e-no-rules", check=False)


def _chart_rules_without_prometheusrules() -> list[dict[str, Any]]:
    """The chart's cluster-scope rules (the named templates its ClusterRole includes), less
    the prometheusrules grant."""
    text = (REPO / "charts" / "sla-operator" / "templates" / "_helpers.tpl").read_text()
    rules: list[dict[str, Any]] = []
    for name in ("sla-operator.namespaceRules", "sla-operator.clusterReads"):
        body = text.split(f'define "{name}"', 1)[1].split("{{- end }}", 1)[0]
        lines = [line for line in body.splitlines()[1:] if "{{" not in line]
        rules += yaml.safe_load("\n".join(lines))
    rules.append({"apiGroups": [""], "resources": ["namespaces"], "verbs": ["list", "watch"]})
    return [r for r in rules if "prometheusrules" not in r["resources"]]
