"""PrometheusRules kept per agreement where prometheus-operator's CRD exists (docs/API.md,
"Alert rules"): `<agreement>-sla`, owned by the agreement, labelled as managed by the operator
plus `--rule-label`, updated with the spec and deleted when alerting is turned off.

The CRD may come before or after the operator: its appearance is watched, and every agreement
then listed afresh from the API, so a rule is only ever written for an agreement that exists
(an agreement deleted in between leaves a rule that the garbage collector removes through its
owner reference; nothing here writes it again). Without the permission the operator says so
once and carries on: alert rules are an extra, probing is not.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import kopf
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from sla_operator.domain.alerts import MANAGED_BY, prometheus_rule, prometheus_rule_name
from sla_operator.domain.errors import SpecError
from sla_operator.domain.model import Agreement
from sla_operator.domain.parse import agreement_from_manifest
from sla_operator.kube.connect import StartupError, list_kind
from sla_operator.store.base import WriteSwitch
from sla_operator.store.kube import GROUP, VERSION

log = logging.getLogger("sla_operator.kube.rules")

MONITORING, MONITORING_VERSION, RULES = "monitoring.coreos.com", "v1", "prometheusrules"
RULES_CRD = f"{RULES}.{MONITORING}"
TIMEOUT_SECONDS = 30


class RuleKeeper:
    """Brings one agreement's PrometheusRule to what its spec asks for."""

    def __init__(self, custom: client.CustomObjectsApi, labels: Mapping[str, str],
                 switch: WriteSwitch | None = None,
                 owns: Callable[[tuple[str, str]], bool] | None = None) -> None:
        self.custom = custom
        self.labels = dict(labels)
        self.switch = switch or WriteSwitch()  # a standby leaves the rules to the leader
        # With shards, only the shard that owns an agreement keeps its rule (Engine.owns).
        self.owns = owns or (lambda _key: True)
        self._warned: set[str] = set()
        self._reconciled: dict[tuple[str, str], object] = {}
        self._lock = threading.Lock()  # kopf runs sync handlers on several threads

    def reconcile_if_changed(self, agreement: Agreement, version: object) -> None:
        """Reconcile a version of the agreement not reconciled yet (status writes are not)."""
        if (not self.switch.active or not self.owns(agreement.key)
                or self._reconciled.get(agreement.key) == version):
            return
        self.reconcile(agreement)
        self._reconciled[agreement.key] = version

    def reconcile(self, agreement: Agreement) -> None:
        if not self.switch.active or not self.owns(agreement.key):
            return  # the leader keeps them; a promoted standby brings them all up to date
        name = prometheus_rule_name(agreement.name)
        try:
            with self._lock:
                self._reconcile(agreement, name)
        except ApiException as error:
            self._refused(error, agreement.namespace, name)

    def _reconcile(self, agreement: Agreement, name: str) -> None:
        desired = prometheus_rule(agreement, self.labels)
        current = self._get(agreement.namespace, name)
        if current is not None and not _managed(current):
            self._warn_once(f"foreign:{agreement.namespace}/{name}",
                            "PrometheusRule %s/%s exists and is not managed by sla-operator: "
                            "left as it is", agreement.namespace, name)
            return
        if desired is None:
            if current is not None:
                self.custom.delete_namespaced_custom_object(
                    MONITORING, MONITORING_VERSION, agreement.namespace, RULES, name,
                    _request_timeout=TIMEOUT_SECONDS)
                log.info("PrometheusRule %s/%s deleted: alerting is disabled", agreement.namespace,
                         name)
            return
        if current is None:
            self.custom.create_namespaced_custom_object(
                MONITORING, MONITORING_VERSION, agreement.namespace, RULES, desired,
                _request_timeout=TIMEOUT_SECONDS)
            log.info("PrometheusRule %s/%s created", agreement.namespace, name)
        elif _differs(current, desired):
            patch = {"metadata": {"labels": desired["metadata"]["labels"],
                                  "ownerReferences": desired["metadata"].get("ownerReferences")},
                     "spec": desired["spec"]}
            self.custom.patch_namespaced_custom_object(
                MONITORING, MONITORING_VERSION, agreement.namespace, RULES, name, patch,
                _request_timeout=TIMEOUT_SECONDS)
            log.info("PrometheusRule %s/%s updated", agreement.namespace, name)

    def _get(self, namespace: str, name: str) -> dict[str, Any] | None:
        try:
            found = self.custom.get_namespaced_custom_object(
                MONITORING, MONITORING_VERSION, namespace, RULES, name,
                _request_timeout=TIMEOUT_SECONDS)
        except ApiException as error:
            if error.status == 404 and _names(error, name):
                return None
            raise
        return found if isinstance(found, dict) else None

    def _refused(self, error: ApiException, namespace: str, name: str) -> None:
        if error.status == 404:
            # The CRD is not (or no longer) served; its appearance is watched.
            log.debug("PrometheusRule %s/%s not kept: %s is not installed", namespace, name,
                      RULES_CRD)
        elif error.status == 403:
            self._warn_once("forbidden", "not allowed to manage %s (403 Forbidden); alert rules "
                            "are not kept in the cluster, everything else carries on. Grant "
                            "get/list/watch/create/patch/delete on prometheusrules (the chart's "
                            "ClusterRole does)", RULES_CRD)
        else:
            log.warning("PrometheusRule %s/%s: API %s %s", namespace, name, error.status,
                        error.reason)

    def _warn_once(self, key: str, message: str, *args: object) -> None:
        if key not in self._warned:
            self._warned.add(key)
            log.warning(message, *args)


def _names(error: ApiException, name: str) -> bool:
    """Whether a 404 is about the object itself (the CRD is there) rather than its kind."""
    try:
        details = json.loads(error.body or "{}").get("details") or {}
    except (ValueError, AttributeError):
        return False
    return bool(details.get("name") == name)


def _managed(rule: Mapping[str, Any]) -> bool:
    labels = (rule.get("metadata") or {}).get("labels") or {}
    return all(labels.get(k) == v for k, v in MANAGED_BY.items())


def _differs(current: Mapping[str, Any], desired: Mapping[str, Any]) -> bool:
    meta, wanted = current.get("metadata") or {}, desired["metadata"]
    labels = meta.get("labels") or {}
    return (current.get("spec") != desired["spec"]
            or any(labels.get(k) != v for k, v in wanted["labels"].items())
            or meta.get("ownerReferences") != wanted.get("ownerReferences"))


def _parsed(body: Mapping[str, Any]) -> Agreement | None:
    """The agreement, or None when it is invalid or going away (the main handlers report it)."""
    if (body.get("metadata") or {}).get("deletionTimestamp"):
        return None
    try:
        return agreement_from_manifest(body)
    except SpecError:
        return None


def _keeper(memo: kopf.Memo) -> RuleKeeper:
    # Made once at startup: kopf gives every object a shallow copy of the memo, so a keeper
    # made here would be one per agreement, each saying a missing permission once.
    keeper: RuleKeeper = memo["rule_keeper"]
    return keeper


def keep_all(keeper: RuleKeeper, api: client.ApiClient, namespaces: Sequence[str]) -> None:
    """Every agreement's rule, from a fresh list: none for an agreement that is gone."""
    try:
        items = list_kind(api, "servicelevelagreements", namespaces)
    except StartupError as error:
        log.warning("PrometheusRules not brought up to date: %s", error)
        return
    for item in items:
        agreement = _parsed(item)
        if agreement is not None:
            keeper.reconcile(agreement)


@kopf.on.event(GROUP, VERSION, "servicelevelagreements")
def keep_prometheus_rule(event: kopf.RawEvent, memo: kopf.Memo, **_: Any) -> None:
    """On every version of an agreement's spec or labels (plain events: kopf's change
    handlers would share their progress with other replicas through annotations)."""
    if event["type"] == "DELETED":
        return  # its rule is owned by it: the garbage collector removes it
    body = event["object"]
    agreement = _parsed(body)
    if agreement is not None:
        meta = body.get("metadata") or {}
        version = (meta.get("uid"), meta.get("generation"),
                   tuple(sorted((meta.get("labels") or {}).items())))
        _keeper(memo).reconcile_if_changed(agreement, version)


def _is_rules_crd(name: str | None, **_: Any) -> bool:
    return name == RULES_CRD


@kopf.on.event("apiextensions.k8s.io", "v1", "customresourcedefinitions", when=_is_rules_crd)
def prometheus_rules_served(event: kopf.RawEvent, memo: kopf.Memo, **_: Any) -> None:
    """The CRD listed at startup, created later, or changed: once it is Established, every
    agreement gets its rule (a restart is not needed)."""
    body = event["object"]
    conditions = (body.get("status") or {}).get("conditions") or []
    established = any(c.get("type") == "Established" and c.get("status") == "True"
                      for c in conditions)
    if event["type"] == "DELETED" or not established:
        return
    keep_all(_keeper(memo), memo["api"], memo["settings"].namespaces)
