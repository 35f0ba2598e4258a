"""The operator with the chart's ServiceAccount and nothing more, in both RBAC scopes.

The chart is installed into the real API server; the operator runs as a process with a
token of the release's ServiceAccount (a TokenRequest), so every permission it uses is the
chart's own. With one rule taken out, it says exactly what is missing, once, and goes on.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
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


def refusals(log: str, watched: str) -> list[str]:
    """The log's refusals, but for a Secret of another namespace: an operator that watches
    every namespace also sees agreements other tests left, whose Secrets it may not read."""
    other_secret = re.compile(r'cannot get resource "secrets" in API group "" in the namespace '
                              f'"(?!{re.escape(watched)}")')
    return [line for line in log.splitlines()
            if "forbidden" in line.lower() and not other_secret.search(line)]


def kubectl_as(kubeconfig: str) -> Kubectl:
    binary = shutil.which("kubectl") or "/usr/bin/kubectl"

    def run(*args: str, input: str | None = None,
            check: bool = True) -> subprocess.CompletedProcess[str]:
        result = subprocess.run([binary, f"--kubeconfig={kubeconfig}", *args], input=input,
                                text=True, capture_output=True, timeout=60)
        assert not check or result.returncode == 0, result.stderr
        return result
    return run


def refused(as_chart: Kubectl, *args: str, input: str | None = None) -> None:
    """The request, sent with the chart's token, is refused by RBAC (403), not for any other
    reason: authorization comes before the object is even looked up."""
    result = as_chart(*args, input=input, check=False)
    assert result.returncode != 0, f"allowed: kubectl {' '.join(args)}"
    assert "forbidden" in result.stderr.lower(), (args, result.stderr)


def assert_no_more_than_the_job(as_chart: Kubectl, watched: str, elsewhere: str,
                                incident: str) -> None:
    """What the operator never does, tried for real with the chart's token."""
    sla_json = as_chart("get", "-n", watched, "sla/web", "-o", "json").stdout
    # Agreements and windows: never created, changed or deleted; incidents never deleted.
    refused(as_chart, "delete", "-n", watched, "sla/web", "--wait=false")
    refused(as_chart, "delete", "-n", watched, f"incident/{incident}", "--wait=false")
    refused(as_chart, "delete", "-n", watched, "incidents", "--all", "--wait=false")
    # Support requests: read and their status written, never filed, changed or deleted.
    refused(as_chart, "delete", "-n", watched, "supportrequests", "--all", "--wait=false")
    refused(as_chart, "patch", "-n", watched, "sreq/help-1", "--type=merge",
            "-p", json.dumps({"spec": {"respondedAt": "2026-11-26T09:00:00Z"}}))
    refused(as_chart, "patch", "-n", watched, "sla/web", "--type=merge",
            "-p", json.dumps({"spec": {"objective": "90"}}))
    refused(as_chart, "replace", "-n", watched, "-f", "-", input=sla_json)
    refused(as_chart, "create", "-n", watched, "-f", "-", input=json.dumps(
        {**json.loads(sla_json), "metadata": {"name": "made-by-the-operator"}}))
    refused(as_chart, "delete", "-n", watched, "mw/any-window", "--wait=false")
    refused(as_chart, "patch", "-n", watched, "mw/any-window", "--type=merge",
            "-p", json.dumps({"spec": {"description": "changed"}}))
    # Secrets: read one by name where it is granted; never listed, changed or read elsewhere.
    refused(as_chart, "get", "-n", watched, "secrets")
    refused(as_chart, "delete", "-n", watched, "secret/probe-auth", "--wait=false")
    refused(as_chart, "get", "-n", elsewhere, "secret/probe-auth")
    refused(as_chart, "get", "secrets", "--all-namespaces")
    # Nothing else of the cluster.
    refused(as_chart, "get", "namespaces")
    refused(as_chart, "get", "-n", watched, "pods")
    refused(as_chart, "create", "-n", watched, "deployment", "x", "--image=x")


CASES = {  # name: (chart values besides the image, whether the operator is told the namespace)
    "cluster": ({"rbac": {"scope": "cluster"}}, True),
    "namespaced": ({"rbac": {"scope": "namespaced"}}, True),
    # Every namespace watched; Secrets readable only in the one that rbac.secretNamespaces names.
    "every-namespace": ({"rbac": {"scope": "cluster", "secretNamespaces": ["WATCHED"]}}, False),
}


@pytest.mark.parametrize("scope", list(CASES))
def test_the_chart_service_account_does_the_whole_job_and_names_what_is_missing(
        helm: Any, kubeconfig: str, kubectl: Kubectl, tmp_path: Path, scope: str,  # noqa: F811
        capsys: pytest.CaptureFixture[str]) -> None:
    watched = unique("sla-sa")
    kubectl("create", "namespace", watched)
    elsewhere = unique("sla-sa-other")  # a namespace with the same Secret, never granted
    kubectl("create", "namespace", elsewhere)
    release = Release(helm, kubeconfig, {})
    values, told = CASES[scope]
    values = json.loads(json.dumps(values).replace("WATCHED", watched))
    release.values = {**values, "watchNamespaces": [watched] if told else [],
                      "image": {"tag": "e2e"}}
    release.install()
    target = Target()
    target.set_healthy(False)
    chart_kubeconfig = service_account_kubeconfig(kubectl, kubeconfig, release,
                                                  tmp_path / "sa-kubeconfig")
    process = OperatorProcess(
        chart_kubeconfig, watched if told else "", tmp_path, extra_args=(
            "--leader-elect", f"--leader-elect-namespace={release.namespace}",
            f"--leader-elect-lease={release.name}", "--leader-elect-lease-duration=4s",
            "--leader-elect-renew-deadline=3s", "--leader-elect-retry-period=0.5s"))
    try:
        secret = {"apiVersion": "v1", "kind": "Secret", "metadata": {
            "name": "probe-auth", "labels": {"sla.dev/probe-credential": "true"}},
            "stringData": {"token": "Bearer chart-sa"}}
        kubectl("apply", "-n", elsewhere, "-f", "-", input=yaml.safe_dump(secret))
        window = {"apiVersion": "sla.dev/v1alpha1", "kind": "MaintenanceWindow",
                  "metadata": {"name": "any-window"},
                  "spec": {"description": "Long past", "slaNames": ["elsewhere"],
                           "start": "2020-01-01T02:00:00Z", "end": "2020-01-01T04:00:00Z"}}
        kubectl("apply", "-n", watched, "-f", "-",
                input=yaml.safe_dump_all([secret, window, sla(target.url)]))
        process.start()
        incidents = wait_for("the outage recorded with the chart's permissions", lambda: (
            get(kubectl, watched, "incidents") or {}).get("items"))
        assert len(incidents) == 1
        wait_for("the status written", lambda: (get(kubectl, watched, "sla/web") or {})
                 .get("status", {}).get("state") == "Down")
        assert "Bearer chart-sa" in target.authorization  # the Secret was read
        kubectl("apply", "-n", watched, "-f", "-", input=json.dumps(
            {"apiVersion": "sla.dev/v1alpha1", "kind": "SupportRequest",
             "metadata": {"name": "help-1"},
             "spec": {"agreement": "web", "severity": "P2", "title": "Help"}}))
        wait_for("the support request's status written with the chart's permissions", lambda: (
            get(kubectl, watched, "sreq/help-1") or {}).get("status", {}).get("responseDue"))
        holder = (get(kubectl, release.namespace, f"lease/{release.name}") or {})["spec"]
        assert holder["holderIdentity"]
        assert refusals(process.log(), watched) == [], process.log()
        assert_no_more_than_the_job(kubectl_as(chart_kubeconfig), watched, elsewhere,
                                    incidents[0]["metadata"]["name"])
        assert len((get(kubectl, watched, "incidents") or {})["items"]) == 1

        # Take the Events rule out of the role: the operator says so once and carries on.
        role = (["role", release.name, "-n", watched] if scope == "namespaced"
                else ["clusterrole", release.name])
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
        for namespace in (release.namespace, watched, elsewhere):
            kubectl("delete", "namespace", namespace, "--wait=false", check=False)
