"""The cluster under test behaves like Kubernetes where the operator depends on it.

The operator's CRDs rely on schema validation (OpenAPI patterns), the status subresource
and generation bookkeeping; its owned objects rely on garbage collection; its chart relies
on RBAC denying what is not granted. An emulator could fake each of these, so they are
checked here against the real API server (the local control plane, or KUBECONFIG's cluster).
"""

from __future__ import annotations

import json
import os
import shutil
import ssl
import subprocess
import time
import urllib.error
import urllib.request
import uuid

import pytest

GROUP = "cp-check.example.com"
CRD_NAME = f"widgets.{GROUP}"
RESTRICTED_USER = "sla-operator-restricted"

pytestmark = pytest.mark.e2e

CRD = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": CRD_NAME},
    "spec": {
        "group": GROUP,
        "scope": "Namespaced",
        "names": {"plural": "widgets", "singular": "widget", "kind": "Widget", "listKind": "WidgetList"},
        "versions": [
            {
                "name": "v1",
                "served": True,
                "storage": True,
                "subresources": {"status": {}},
                "schema": {
                    "openAPIV3Schema": {
                        "type": "object",
                        "properties": {
                            "spec": {
                                "type": "object",
                                "required": ["target"],
                                "properties": {
                                    "target": {
                                        "type": "string",
                                        "pattern": "^https?://[a-z0-9.-]+(:[0-9]+)?(/.*)?$",
                                    },
                                    "objective": {"type": "number", "minimum": 0, "maximum": 100},
                                },
                            },
                            "status": {
                                "type": "object",
                                "properties": {"phase": {"type": "string"}},
                            },
                        },
                    }
                },
            }
        ],
    },
}


def widget(name: str, target: str, objective: float = 99.9) -> str:
    return json.dumps(
        {
            "apiVersion": f"{GROUP}/v1",
            "kind": "Widget",
            "metadata": {"name": name},
            "spec": {"target": target, "objective": objective},
        }
    )


def wait_until(predicate, timeout: float, interval: float = 0.5, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)


@pytest.fixture(scope="module")
def namespace(kubectl):
    name = f"cp-check-{uuid.uuid4().hex[:8]}"
    kubectl("create", "namespace", name)
    yield name
    kubectl("delete", "namespace", name, "--wait=false", "--ignore-not-found", check=False)


@pytest.fixture(scope="module")
def widget_crd(kubectl):
    kubectl("apply", "-f", "-", input=json.dumps(CRD))
    kubectl("wait", "--for=condition=Established", f"crd/{CRD_NAME}", "--timeout=60s")
    # Discovery of a new group can lag Established by a moment; kubectl needs it to map kinds.
    wait_until(
        lambda: kubectl("get", f"widgets.{GROUP}", "-A", check=False).returncode == 0,
        timeout=30,
        what="widgets to appear in discovery",
    )
    yield CRD_NAME
    kubectl("delete", "crd", CRD_NAME, "--ignore-not-found", "--wait=false", check=False)


def test_server_version(kubectl, control_plane):
    info = json.loads(kubectl("version", "-o", "json").stdout)
    server = info["serverVersion"]
    assert int(server["major"]) == 1 and int(server["minor"].rstrip("+")) >= 20
    if control_plane is not None:
        # Helm's kubeVersion constraints read this; the local build must not report v0.0.0.
        assert server["gitVersion"] == "v1.20.2"


def test_crd_schema_validation_and_status_subresource(kubectl, namespace, widget_crd):
    ns = ["-n", namespace]

    applied = kubectl("apply", *ns, "-f", "-", input=widget("good", "https://shop.example.com/health"))
    assert "widget.cp-check.example.com/good created" in applied.stdout

    bad = kubectl("apply", *ns, "-f", "-", input=widget("bad", "not a url"), check=False)
    assert bad.returncode != 0, "the API server accepted a target violating the CRD pattern"
    assert "spec.target" in bad.stderr, bad.stderr
    assert "should match" in bad.stderr or "pattern" in bad.stderr, bad.stderr
    assert kubectl("get", "widget", "bad", *ns, check=False).returncode != 0

    too_high = widget("bad2", "http://a.example", 101)
    out_of_range = kubectl("apply", *ns, "-f", "-", input=too_high, check=False)
    assert out_of_range.returncode != 0, "the API server accepted an objective above the CRD maximum"
    assert "spec.objective" in out_of_range.stderr, out_of_range.stderr

    def get_good() -> dict:
        return json.loads(kubectl("get", "widget", "good", *ns, "-o", "json").stdout)

    before = get_good()
    assert before["metadata"]["generation"] == 1

    kubectl(
        "patch",
        "widget",
        "good",
        *ns,
        "--subresource=status",
        "--type=merge",
        "-p",
        json.dumps({"status": {"phase": "Ready"}}),
    )
    after_status = get_good()
    assert after_status["status"] == {"phase": "Ready"}
    # Status writes must not bump generation, or an operator would react to its own writes.
    assert after_status["metadata"]["generation"] == 1

    # With the subresource enabled, the main endpoint ignores status and the status
    # endpoint ignores spec.
    kubectl(
        "patch",
        "widget",
        "good",
        *ns,
        "--type=merge",
        "-p",
        json.dumps({"spec": {"objective": 99.5}, "status": {"phase": "Overwritten"}}),
    )
    after_spec = get_good()
    assert after_spec["status"] == {"phase": "Ready"}
    assert after_spec["spec"]["objective"] == 99.5
    assert after_spec["metadata"]["generation"] == 2

    kubectl(
        "patch",
        "widget",
        "good",
        *ns,
        "--subresource=status",
        "--type=merge",
        "-p",
        json.dumps({"spec": {"objective": 1}, "status": {"phase": "Degraded"}}),
    )
    after_both = get_good()
    assert after_both["status"] == {"phase": "Degraded"}
    assert after_both["spec"]["objective"] == 99.5
    assert after_both["metadata"]["generation"] == 2


def test_owner_reference_garbage_collection(kubectl, namespace):
    ns = ["-n", namespace]
    kubectl("create", "configmap", "gc-parent", *ns, "--from-literal=role=parent")
    uid = kubectl("get", "configmap", "gc-parent", *ns, "-o", "jsonpath={.metadata.uid}")
    parent_uid = uid.stdout.strip()
    assert parent_uid

    child = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": "gc-child",
            "namespace": namespace,
            "ownerReferences": [
                {"apiVersion": "v1", "kind": "ConfigMap", "name": "gc-parent", "uid": parent_uid}
            ],
        },
        "data": {"role": "child"},
    }
    kubectl("apply", "-f", "-", input=json.dumps(child))
    kubectl("delete", "configmap", "gc-parent", *ns)

    # Only kube-controller-manager's garbage collector removes the child.
    def child_gone() -> bool:
        r = kubectl("get", "configmap", "gc-child", *ns, "--ignore-not-found", "-o", "name")
        return r.stdout.strip() == ""

    wait_until(child_gone, timeout=60, what="the garbage collector to delete the owned ConfigMap")


def test_namespace_deletion_completes(kubectl):
    # Stuck Terminating namespaces would make every e2e teardown hang; the namespace
    # controller must empty and finalize them.
    name = f"cp-check-ns-{uuid.uuid4().hex[:8]}"
    kubectl("create", "namespace", name)
    kubectl("create", "configmap", "leftover", "-n", name, "--from-literal=a=b")
    kubectl("delete", "namespace", name, "--wait=false")
    wait_until(
        lambda: kubectl("get", "namespace", name, "--ignore-not-found", "-o", "name").stdout.strip() == "",
        timeout=60,
        what=f"namespace {name} to be deleted",
    )


def test_restricted_user_is_denied_secrets(kubectl, control_plane, namespace):
    # Impersonation works the same on the local control plane and on any external cluster.
    can = kubectl("auth", "can-i", "list", "secrets", "-n", namespace, f"--as={RESTRICTED_USER}", check=False)
    assert can.stdout.strip() == "no", (can.stdout, can.stderr)
    assert kubectl("auth", "can-i", "list", "secrets", "-n", namespace).stdout.strip() == "yes"

    denied = kubectl("get", "secrets", "-n", namespace, f"--as={RESTRICTED_USER}", check=False)
    assert denied.returncode != 0 and "forbidden" in denied.stderr.lower(), denied.stderr

    if control_plane is None:
        return
    expected = f'User "{RESTRICTED_USER}" cannot list resource "secrets"'
    # A real request authenticated by the restricted user's own token (no impersonation).
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    req = urllib.request.Request(
        f"{control_plane.server}/api/v1/namespaces/{namespace}/secrets",
        headers={"Authorization": f"Bearer {control_plane.restricted_token}"},
    )
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(req, timeout=10, context=ctx)
    assert err.value.code == 403
    body = json.loads(err.value.read())
    assert body["reason"] == "Forbidden"
    assert expected in body["message"]

    # The restricted kubeconfig file authenticates as that user too.
    kubectl_bin = "/usr/bin/kubectl" if os.access("/usr/bin/kubectl", os.X_OK) else shutil.which("kubectl")
    assert kubectl_bin, "kubectl not found; install it with: apt-get install -y kubernetes-client"
    restricted_cmd = [kubectl_bin, f"--kubeconfig={control_plane.restricted_kubeconfig}"]
    as_restricted = subprocess.run(
        [*restricted_cmd, "get", "secrets", "-n", namespace], text=True, capture_output=True, timeout=60
    )
    assert as_restricted.returncode != 0, as_restricted.stdout
    assert expected in as_restricted.stderr, as_restricted.stderr
