"""The chart's roles, as the real Helm library renders them: exactly the API calls the operator
makes (store/kube.py, kube/rules.py, kube/leader.py, kopf's watches and Events), nothing more.

What the operator calls, and so the whole grant:
- its kinds: get, list, watch (an agreement is read again before an incident names it owner;
  NotificationRoutes are listed now and then);
- their status: patch (merge patches);
- Incidents: create, and patch (the updates it appends; a JSON patch);
- core Events: create; PrometheusRules: get, list, create, patch, delete;
- CRDs: list, watch (kopf notices the PrometheusRule CRD appear);
- its Lease: get, create, update; its own pod: get, patch (the leader label);
- Secrets: get, only in the namespaces of rbac.secretNamespaces (default: watchNamespaces).
The e2e tier (tests/e2e/test_service_account.py) runs the operator with these roles alone.
"""

from __future__ import annotations

from typing import Any

import pytest
from chart_support import NAMESPACE, RELEASE, install
from kubernetes_validate import utils as kubernetes_validate_utils

NEWEST = kubernetes_validate_utils.latest_version()
WATCHED = ["payments", "checkout"]
Grant = set[tuple[str, str, str]]  # (apiGroup, resource, verb)

KINDS: Grant = {("sla.dev", kind, verb) for kind in ("servicelevelagreements", "maintenancewindows",
                                                     "incidents", "notificationroutes",
                                                     "supportrequests")
                for verb in ("get", "list", "watch")}
STATUS: Grant = {("sla.dev", f"{kind}/status", "patch") for kind in (
    "servicelevelagreements", "maintenancewindows", "incidents", "notificationroutes",
    "supportrequests")}
NAMESPACE_GRANT: Grant = KINDS | STATUS | {
    ("sla.dev", "incidents", "create"), ("sla.dev", "incidents", "patch"),
    ("", "events", "create"),
    *(("monitoring.coreos.com", "prometheusrules", verb)
      for verb in ("get", "list", "create", "patch", "delete"))}
CLUSTER_READS: Grant = {("apiextensions.k8s.io", "customresourcedefinitions", "list"),
                        ("apiextensions.k8s.io", "customresourcedefinitions", "watch")}
LEADER_GRANT: Grant = {("coordination.k8s.io", "leases", verb) for verb in ("get", "create", "update")
                       } | {("", "pods", "get"), ("", "pods", "patch")}
SECRETS: Grant = {("", "secrets", "get")}


def grants(role: dict[str, Any]) -> Grant:
    found: Grant = set()
    for rule in role["rules"]:
        assert not rule.get("resourceNames") and not rule.get("nonResourceURLs"), rule
        found |= {(group, resource, verb) for group in rule["apiGroups"]
                  for resource in rule["resources"] for verb in rule["verbs"]}
    return found


def roles(values: dict[str, Any]) -> dict[tuple[str, str, str], Grant]:
    """(kind, namespace, name) -> what each Role or ClusterRole grants, checking that every role
    is bound to the release's ServiceAccount by a binding of the same name."""
    created = install(values, NEWEST).created
    found = {(m["kind"], m["metadata"].get("namespace", ""), m["metadata"]["name"]): grants(m)
             for m in created if m["kind"] in ("Role", "ClusterRole")}
    bindings = {(m["kind"].removesuffix("Binding"), m["metadata"].get("namespace", ""),
                 m["metadata"]["name"]): m for m in created
                if m["kind"] in ("RoleBinding", "ClusterRoleBinding")}
    assert set(bindings) == set(found)
    for (kind, _, name), binding in bindings.items():
        assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": kind,
                                      "name": name}
        assert binding["subjects"] == [{"kind": "ServiceAccount", "name": RELEASE,
                                        "namespace": NAMESPACE}]
    return found


def test_by_default_the_cluster_role_grants_the_calls_the_operator_makes_and_no_secret() -> None:
    assert roles({}) == {
        ("ClusterRole", "", RELEASE): CLUSTER_READS | NAMESPACE_GRANT,
        ("Role", NAMESPACE, f"{RELEASE}-leader"): LEADER_GRANT,
    }


def test_secrets_are_readable_in_the_watched_namespaces_only() -> None:
    assert roles({"watchNamespaces": WATCHED}) == {
        ("ClusterRole", "", RELEASE): CLUSTER_READS | NAMESPACE_GRANT,
        ("Role", NAMESPACE, f"{RELEASE}-leader"): LEADER_GRANT,
        **{("Role", ns, f"{RELEASE}-secrets"): SECRETS for ns in WATCHED},
    }


def test_namespaced_rbac_grants_the_same_in_each_watched_namespace() -> None:
    assert roles({"rbac": {"scope": "namespaced"}, "watchNamespaces": WATCHED}) == {
        ("ClusterRole", "", RELEASE): CLUSTER_READS,
        ("Role", NAMESPACE, f"{RELEASE}-leader"): LEADER_GRANT,
        **{("Role", ns, RELEASE): NAMESPACE_GRANT for ns in WATCHED},
        **{("Role", ns, f"{RELEASE}-secrets"): SECRETS for ns in WATCHED},
    }


@pytest.mark.parametrize(("secret_namespaces", "expected"), [
    (["payments"], {("Role", "payments", f"{RELEASE}-secrets"): SECRETS}),
    (["*"], {("ClusterRole", "", f"{RELEASE}-secrets"): SECRETS}),
])
def test_secret_namespaces_is_where_secrets_may_be_read(
        secret_namespaces: list[str], expected: dict[tuple[str, str, str], Grant]) -> None:
    found = roles({"watchNamespaces": WATCHED, "rbac": {"secretNamespaces": secret_namespaces}})
    assert {key: grant for key, grant in found.items() if key[2].endswith("-secrets")} == expected


def test_no_role_grants_writes_to_agreements_or_windows_or_deleting_incidents() -> None:
    for values in ({}, {"rbac": {"scope": "namespaced"}, "watchNamespaces": WATCHED},
                   {"rbac": {"secretNamespaces": ["*"]}}):
        for grant in roles(values).values():
            assert not {(g, r, v) for g, r, v in grant
                        if (g == "sla.dev" and v in ("update", "delete", "deletecollection"))
                        or (r in ("servicelevelagreements", "maintenancewindows")
                            and v in ("create", "patch"))}
            assert not {(g, r, v) for g, r, v in grant if r == "secrets" and v != "get"}
            assert ("", "namespaces", "list") not in grant


DISCOVERY: Grant = {("", "services", verb) for verb in ("get", "list", "watch")} | {
    ("networking.k8s.io", "ingresses", verb) for verb in ("get", "list", "watch")}


def test_discovery_adds_reads_of_services_and_ingresses_and_nothing_else() -> None:
    assert roles({"discovery": {"enabled": True}}) == {
        ("ClusterRole", "", RELEASE): CLUSTER_READS | NAMESPACE_GRANT | DISCOVERY,
        ("Role", NAMESPACE, f"{RELEASE}-leader"): LEADER_GRANT,
    }
    namespaced = roles({"discovery": {"enabled": True}, "rbac": {"scope": "namespaced"},
                        "watchNamespaces": WATCHED})
    assert {key: grant for key, grant in namespaced.items() if key[2] == RELEASE} == {
        ("ClusterRole", "", RELEASE): CLUSTER_READS,
        **{("Role", ns, RELEASE): NAMESPACE_GRANT | DISCOVERY for ns in WATCHED}}


def test_discovery_enabled_runs_the_operator_with_discover() -> None:
    def args(values: dict[str, Any]) -> list[str]:
        [deployment] = [m for m in install(values, NEWEST).created if m["kind"] == "Deployment"]
        found: list[str] = deployment["spec"]["template"]["spec"]["containers"][0]["args"]
        return found

    assert "--discover" in args({"discovery": {"enabled": True}})
    assert "--discover" not in args({})
