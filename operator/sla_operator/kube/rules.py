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

import copy
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
from sla_operator.store.fence import Fenced, WriteSwitch
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
        # Whether prometheus-operator's CRD is served: None until a list or the CRD's own
        # events say. While it is not, nothing is asked of the API server per agreement.
        self.served: bool | None = None
        # The managed rules as last listed and written since (None: not listed; read each
        # rule as needed): a thousand agreements at start-up cost one list, not a GET each.
        self._rules: dict[tuple[str, str], dict[str, Any]] | None = None
        self._unlisted: set[tuple[str, str]] = set()  # names taken by rules not listed

    def done(self, key: tuple[str, str], version: object) -> bool:
        """Whether this version of the agreement needs nothing more (asked before parsing it:
        every status write comes back as a watch event of an unchanged spec)."""
        return (not self.switch.active or not self.owns(key) or self.served is False
                or self._reconciled.get(key) == version)

    def reconcile_if_changed(self, agreement: Agreement, version: object) -> None:
        """Reconcile a version of the agreement not reconciled yet (status writes are not)."""
        if self.done(agreement.key, version):
            return
        self.reconcile(agreement)
        self._reconciled[agreement.key] = version

    def prime(self, namespaces: Sequence[str]) -> None:
        """List the managed rules once (and learn whether the CRD is served at all)."""
        selector = ",".join(f"{k}={v}" for k, v in MANAGED_BY.items())
        try:
            if namespaces:
                items: list[dict[str, Any]] = []
                for namespace in namespaces:
                    items += self.custom.list_namespaced_custom_object(
                        MONITORING, MONITORING_VERSION, namespace, RULES, label_selector=selector,
                        _request_timeout=TIMEOUT_SECONDS).get("items") or []
            else:
                items = self.custom.list_cluster_custom_object(
                    MONITORING, MONITORING_VERSION, RULES, label_selector=selector,
                    _request_timeout=TIMEOUT_SECONDS).get("items") or []
        except ApiException as error:
            with self._lock:
                self._rules = None
                if error.status == 404:
                    self.served = False
            self._refused(error, "*", "*")
            return
        except Exception as error:  # unreachable for now: each rule is read when needed
            log.warning("PrometheusRules not listed (each is read when needed): %s", error)
            return
        rules = {}
        for item in items:
            meta = item.get("metadata") or {}
            rules[(str(meta.get("namespace")), str(meta.get("name")))] = item
        with self._lock:
            self.served, self._rules = True, rules

    def crd_served(self, served: bool) -> None:
        """The CRD's own events: established (every rule is then brought up to date by
        keep_all) or deleted (nothing more is asked until it comes back)."""
        with self._lock:
            self.served = served
            if not served:
                self._rules, self._reconciled = None, {}

    def reconcile(self, agreement: Agreement) -> None:
        if not self.switch.active or not self.owns(agreement.key):
            return  # the leader keeps them; a promoted standby brings them all up to date
        if self.served is False:
            return  # until the CRD's events say it is served
        name = prometheus_rule_name(agreement.name)
        try:
            with self._lock:
                self._reconcile(agreement, name)
        except Fenced as fenced:
            log.info("PrometheusRule %s/%s: %s", agreement.namespace, name, fenced)
        except ApiException as error:
            if error.status == 404:
                self.served = False  # the kind itself (a missing rule is not an error)
            self._refused(error, agreement.namespace, name)

    def _reconcile(self, agreement: Agreement, name: str) -> None:
        desired = prometheus_rule(agreement, self.labels)
        current = self._get(agreement.namespace, name)
        if current is not None and not _managed(current):
            self._warn_once(f"foreign:{agreement.namespace}/{name}",
                            "PrometheusRule %s/%s exists and is not managed by sla-operator: "
                            "left as it is", agreement.namespace, name)
            return
        key = (agreement.namespace, name)
        if desired is None:
            if current is not None:
                self.switch.check(f"PrometheusRule {name}")
                self.custom.delete_namespaced_custom_object(
                    MONITORING, MONITORING_VERSION, agreement.namespace, RULES, name,
                    _request_timeout=TIMEOUT_SECONDS)
                self._remember(key, None)
                log.info("PrometheusRule %s/%s deleted: alerting is disabled", agreement.namespace,
                         name)
            return
        if current is None:
            try:
                self.switch.check(f"PrometheusRule {name}")
                self.custom.create_namespaced_custom_object(
                    MONITORING, MONITORING_VERSION, agreement.namespace, RULES, desired,
                    _request_timeout=TIMEOUT_SECONDS)
            except ApiException as error:
                if error.status != 409 or self._rules is None:
                    raise
                # Listed as missing, yet there: someone else's rule of that name, or one made
                # since the list. Read it and decide as without the list.
                self._rules.pop(key, None)
                self._rules_unlisted(key)
                self._reconcile(agreement, name)
                return
            self._remember(key, desired)
            log.info("PrometheusRule %s/%s created", agreement.namespace, name)
        elif _differs(current, desired):
            patch = {"metadata": {"labels": desired["metadata"]["labels"],
                                  "ownerReferences": desired["metadata"].get("ownerReferences")},
                     "spec": desired["spec"]}
            self.switch.check(f"PrometheusRule {name}")
            self.custom.patch_namespaced_custom_object(
                MONITORING, MONITORING_VERSION, agreement.namespace, RULES, name, patch,
                _request_timeout=TIMEOUT_SECONDS)
            self._remember(key, {**current, "metadata": {**(current.get("metadata") or {}),
                                                         **patch["metadata"]},
                                 "spec": desired["spec"]})
            log.info("PrometheusRule %s/%s updated", agreement.namespace, name)

    def _remember(self, key: tuple[str, str], rule: dict[str, Any] | None) -> None:
        if self._rules is not None:
            if rule is None:
                self._rules.pop(key, None)
            else:
                self._rules[key] = rule

    def _rules_unlisted(self, key: tuple[str, str]) -> None:
        """From now on this rule is read from the API server, not the list."""
        self._unlisted.add(key)

    def _get(self, namespace: str, name: str) -> dict[str, Any] | None:
        if self._rules is not None and (namespace, name) not in self._unlisted:
            listed = self._rules.get((namespace, name))
            return copy.deepcopy(listed) if listed is not None else None
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
    """Every agreement's rule, from fresh lists: none for an agreement that is gone."""
    try:
        items = list_kind(api, "servicelevelagreements", namespaces)
    except StartupError as error:
        log.warning("PrometheusRules not brought up to date: %s", error)
        return
    keeper.prime(namespaces)
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
    meta = body.get("metadata") or {}
    version = (meta.get("uid"), meta.get("generation"),
               tuple(sorted((meta.get("labels") or {}).items())))
    keeper = _keeper(memo)
    if keeper.done((str(meta.get("namespace")), str(meta.get("name"))), version):
        return  # mostly the echo of a status write: not even parsed
    agreement = _parsed(body)
    if agreement is not None:
        keeper.reconcile_if_changed(agreement, version)


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
    if event["type"] == "DELETED":
        _keeper(memo).crd_served(False)
        return
    if not established:
        return
    _keeper(memo).crd_served(True)
    keep_all(_keeper(memo), memo["api"], memo["settings"].namespaces)
