"""The operator with the chart's ServiceAccount and nothing more, in both RBAC scopes.

The chart is installed into the real API server; the operator runs as a process with a
token of the release's ServiceAccount (a TokenRequest), so every permission it uses is the
chart's own. With one rule taken out, it says exactly what is missing, once, and goes on.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from test_chart import Release, helm, unique  # noqa: F401  (helm is a fixture)

from support import OperatorProcess, Target, get, wait_for

pytestmark = pytest.mark.e2e
Kubectl = Callable[..., Any]


def service_account_kubeconfig(kubectl: Kubectl, kubeconfig: str, release: Release,
                               path: Path) -> str:
    body = path.parent / "token-request.json"
    body.write_text(json.dumps({"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
                                "spec": {"expirationSeconds": 3600}}))
    answer = kubectl("create", "--raw", f"/api/v1/namespaces/{release.namespace}/serviceaccounts/"
                     f"{release.name}/token", "-f", str(body))
    token = json.loads(answer.stdout)["status"]["token"]
    admin = yaml.safe_load(Path(kubeconfig).read_text())
    admin["users"] = [{"name": "chart", "user": {"token": token}}]
    for context in admin["contexts"]:
        context["context"]["user"] = "chart"
    path.write_text(yaml.safe_dump(admin))
    return str(path)


def sla(url: str) -> dict[str, Any]:
    return {"apiVersion": "sla.dev/v1alpha1", "kind": "ServiceLevelAgreement",
            "metadata": {"name": "web"},
            "spec": {"service": "Web", "objective": "99.9", "endpoints": [
                {"name": "api", "interval": "1s", "timeout": "500ms", "failureThreshold": 2,
                 "successThreshold": 1, "http": {"url": url, "headers": [
                     {"name": "Authorization",
                      "valueFrom": {"secretKeyRef": {"name": "probe-auth", "key": "token"}}}]}}]}}


@pytest.mark.parametrize("scope", ["cluster", "namespaced"])
def test_the_chart_service_account_does_the_whole_job_and_names_what_is_missing(
        helm: Any, kubeconfig: str, kubectl: Kubectl, tmp_path: Path, scope: str,  # noqa: F811
        capsys: pytest.CaptureFixture[str]) -> None:
    watched = unique("sla-sa")
    kubectl("create", "namespace", watched)
    release = Release(helm, kubeconfig, {})
    release.values = {"rbac": {"scope": scope}, "watchNamespaces": [watched],
                      "image": {"tag": "e2e"}}
    release.install()
    target = Target()
    target.set_healthy(False)
    process = OperatorProcess(
        service_account_kubeconfig(kubectl, kubeconfig, release, tmp_path / "sa-kubeconfig"),
        watched, tmp_path, extra_args=(
            "--leader-elect", f"--leader-elect-namespace={release.namespace}",
            f"--leader-elect-lease={release.name}", "--leader-elect-lease-duration=4s",
            "--leader-elect-renew-deadline=3s", "--leader-elect-retry-period=0.5s"))
    try:
        kubectl("apply", "-n", watched, "-f", "-", input=yaml.safe_dump_all([
            {"apiVersion": "v1", "kind": "Secret", "metadata": {
                "name": "probe-auth", "labels": {"sla.dev/probe-credential": "true"}},
             "stringData": {"token": "Bearer chart-sa"}},
            sla(target.url)]))
        process.start()
        incidents = wait_for("the outage recorded with the chart's permissions", lambda: (
            get(kubectl, watched, "incidents") or {}).get("items"))
        assert len(incidents) == 1
        wait_for("the status written", lambda: (get(kubectl, watched, "sla/web") or {})
                 .get("status", {}).get("state") == "Down")
        assert "Bearer chart-sa" in target.authorization  # the Secret was read
        holder = (get(kubectl, release.namespace, f"lease/{release.name}") or {})["spec"]
        assert holder["holderIdentity"]
        assert "forbidden" not in process.log().lower(), process.log()

        # Take the Events rule out of the role: the operator says so once and carries on.
        role = (["clusterrole", release.name] if scope == "cluster"
                else ["role", release.name, "-n", watched])
        rules = json.loads(kubectl("get", *role, "-o", "json").stdout)["rules"]
        index = next(i for i, r in enumerate(rules) if r["resources"] == ["events"]
                     and r["apiGroups"] == [""])
        kubectl("patch", *role, "--type=json", "-p",
                json.dumps([{"op": "remove", "path": f"/rules/{index}"}]))
        for name in ("bad-1", "bad-2"):  # two invalid specs: two events it may not write
            kubectl("apply", "-n", watched, "-f", "-", input=json.dumps(
                {"apiVersion": "sla.dev/v1alpha1", "kind": "ServiceLevelAgreement",
                 "metadata": {"name": name},
                 "spec": {"service": "Bad", "objective": "99.9", "endpoints": [
                     {"name": "api", "interval": "1s", "timeout": "2s",
                      "http": {"url": target.url}}]}}))
        said = wait_for("the missing permission named", lambda: [
            line for line in process.log().splitlines()
            if "forbidden:" in line and 'cannot create resource "events"' in line
            and "WARNING" in line])
        wait_for("both invalid specs reported", lambda: all(
            (get(kubectl, watched, f"sla/{n}") or {}).get("status", {}).get("state") == "Unknown"
            for n in ("bad-1", "bad-2")))
        said = [line for line in process.log().splitlines()
                if "WARNING" in line and 'cannot create resource "events"' in line]
        assert len(said) == 1, said
        assert f"system:serviceaccount:{release.namespace}:{release.name}" in said[0]
        process.assert_running()
        with capsys.disabled():
            print(f"\n[e2e] {scope} RBAC, the chart's ServiceAccount: {said[0].split(': ', 1)[1]}")
    finally:
        process.stop()
        target.close()
        release.uninstall()
        for namespace in (release.namespace, watched):
            kubectl("delete", "namespace", namespace, "--wait=false", check=False)
