"""The chart with `shards: 3`, installed by the real Helm library: one Deployment, one
PodDisruptionBudget and one Lease per shard, selectors that never overlap, and Services that
still reach the pods."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from types import ModuleType
from typing import Any

import pytest
from test_chart import Release, get_json, helm  # noqa: F401  (helm is a fixture)

pytestmark = pytest.mark.e2e

Kubectl = Callable[..., Any]
SHARDS = 3


@pytest.fixture(scope="module")
def sharded(helm: ModuleType, kubeconfig: str, kubectl: Kubectl) -> Iterator[Release]:  # noqa: F811
    release = Release(helm, kubeconfig, {})
    release.values = {"watchNamespaces": [release.namespace], "image": {"tag": "e2e"},
                      "shards": SHARDS}
    release.install()
    yield release
    release.uninstall()
    kubectl("delete", "namespace", release.namespace, "--wait=false", check=False)


def matches(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return all(labels.get(key) == value for key, value in selector.items())


def test_each_shard_is_a_deployment_of_its_own_with_its_own_flags_and_lease(
        kubectl: Kubectl, sharded: Release) -> None:
    deployments = get_json(kubectl, "-n", sharded.namespace, "deployments")["items"]
    by_name = {d["metadata"]["name"]: d for d in deployments}
    assert set(by_name) == {f"{sharded.name}-shard-{i}" for i in range(SHARDS)}
    for index in range(SHARDS):
        deployment = by_name[f"{sharded.name}-shard-{index}"]
        assert deployment["spec"]["replicas"] == 2  # each shard fails over within itself
        (container,) = deployment["spec"]["template"]["spec"]["containers"]
        args = container["args"]
        assert {f"--shards={SHARDS}", f"--shard={index}", "--leader-elect",
                f"--leader-elect-lease={sharded.name}"} <= set(args)
        pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
        assert pod_labels["sla.dev/shard"] == str(index)
        # A Deployment selects its own shard's pods, and no other shard's.
        for other in deployments:
            other_pods = other["spec"]["template"]["metadata"]["labels"]
            assert matches(deployment["spec"]["selector"]["matchLabels"], other_pods) == (
                other is deployment)
        (spread,) = deployment["spec"]["template"]["spec"]["topologySpreadConstraints"]
        assert spread["labelSelector"]["matchLabels"]["sla.dev/shard"] == str(index)


def test_a_disruption_budget_per_shard_and_services_that_reach_every_shard(
        kubectl: Kubectl, sharded: Release) -> None:
    ns = sharded.namespace
    pods = [d["spec"]["template"]["metadata"]["labels"]
            for d in get_json(kubectl, "-n", ns, "deployments")["items"]]
    budgets = get_json(kubectl, "-n", ns, "pdb")["items"]
    assert len(budgets) == SHARDS
    for budget in budgets:
        assert budget["spec"]["minAvailable"] == 1
        assert sum(matches(budget["spec"]["selector"]["matchLabels"], p) for p in pods) == 1
    metrics = get_json(kubectl, "-n", ns, "service", sharded.name)
    assert all(matches(metrics["spec"]["selector"], p) for p in pods)
    page = get_json(kubectl, "-n", ns, "service", f"{sharded.name}-status")
    leading = [{**p, "sla.dev/leader": "true"} for p in pods]
    assert all(matches(page["spec"]["selector"], p) for p in leading)
    assert not any(matches(page["spec"]["selector"], p) for p in pods)


def test_fewer_than_one_shard_is_refused_naming_the_value(
        helm: ModuleType, kubeconfig: str, kubectl: Kubectl) -> None:  # noqa: F811
    refused = Release(helm, kubeconfig, {"shards": 0})
    try:
        with pytest.raises(Exception, match="shards"):
            refused.install()
    finally:
        kubectl("delete", "namespace", refused.namespace, "--wait=false", check=False)


def release_pod(release: Release, name: str, shards: int) -> dict[str, Any]:
    """A pod as the release's Deployment of ``shards`` makes it (no kubelet runs it here):
    one that is still stopping, say, after its Deployment was scaled to zero."""
    args = ["run", f"--shards={shards}", "--shard=0"] if shards > 1 else ["run"]
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "labels": {"app.kubernetes.io/name": "sla-operator",
                                                  "app.kubernetes.io/instance": release.name}},
            "spec": {"containers": [{"name": "operator", "image": "sla-operator:e2e",
                                     "args": args}]}}


@pytest.mark.parametrize(("before", "after"), [(1, 2), (2, 3), (3, 1)])
def test_changing_the_shard_count_over_running_operators_is_refused_saying_what_to_do(
        helm: ModuleType, kubeconfig: str, kubectl: Kubectl, before: int,  # noqa: F811
        after: int) -> None:
    """Pods of the old count would lead on their Leases while the new shards lead on theirs,
    and both would write the same agreements. The upgrade goes through once they are gone."""
    release = Release(helm, kubeconfig, {})
    values = {"watchNamespaces": [release.namespace], "image": {"tag": "e2e"}}
    release.values = {**values, "shards": before}
    release.install()
    ns = release.namespace
    try:
        old = {d["metadata"]["name"] for d in get_json(kubectl, "-n", ns, "deployments")["items"]}
        with pytest.raises(Exception) as refused:
            release.upgrade({**values, "shards": after})
        said = str(refused.value)
        assert f"shards: changing from {before} to {after}" in said, said
        assert (f"kubectl -n {ns} scale deployment -l app.kubernetes.io/instance={release.name}"
                " --replicas=0") in said
        assert "then run this upgrade again" in said
        # Nothing changed: the old Deployments run on, no new shard was started.
        deployments = get_json(kubectl, "-n", ns, "deployments")["items"]
        assert {d["metadata"]["name"] for d in deployments} == old
        assert all(d["spec"]["replicas"] == 2 for d in deployments)

        # What the message says: scale to zero ...
        kubectl("-n", ns, "scale", "deployment", "-l",
                f"app.kubernetes.io/instance={release.name}", "--replicas=0")
        # ... and wait for the pods: one still stopping is refused by name.
        kubectl("-n", ns, "create", "-f", "-", input=json.dumps(
            release_pod(release, "still-stopping", before)))
        with pytest.raises(Exception, match="Still running: Pod still-stopping"):
            release.upgrade({**values, "shards": after})
        kubectl("-n", ns, "delete", "pod", "still-stopping", "--grace-period=0", "--force")
        release.upgrade({**values, "shards": after})
        deployments = get_json(kubectl, "-n", ns, "deployments")["items"]
        names = ({release.name} if after == 1 else
                 {f"{release.name}-shard-{i}" for i in range(after)})
        assert {d["metadata"]["name"] for d in deployments} == names
        assert all(d["spec"]["replicas"] == 2 for d in deployments)
        # The same count again (or another value) is an ordinary rolling upgrade.
        release.upgrade({**values, "shards": after, "maxStatusWritesPerSecond": 20})
    finally:
        release.uninstall()
        kubectl("delete", "namespace", ns, "--wait=false", check=False)
