"""The PrometheusRule keeper's decisions, against a stand-in for the custom objects API: what
it writes, what it leaves alone, and how it takes refusals. (tests/e2e/test_prometheus_rules.py
runs it against a real API server.)"""

from __future__ import annotations

import copy
import json
import logging
from decimal import Decimal
from typing import Any

import pytest
from kubernetes.client.exceptions import ApiException

from sla_operator.domain.alerts import prometheus_rule
from sla_operator.domain.model import Agreement, Alerting, Endpoint, TcpProbe
from sla_operator.domain.shards import Sharding
from sla_operator.kube.rules import RuleKeeper


def agreement(**fields: Any) -> Agreement:
    defaults: dict[str, Any] = {"namespace": "shop", "name": "cart", "service": "Cart",
                                "objective": Decimal("99.9"), "uid": "uid-1",
                                "endpoints": (Endpoint("api", TcpProbe("h", 1)),)}
    return Agreement(**{**defaults, **fields})


def not_found(name: str | None) -> ApiException:
    error = ApiException(status=404, reason="Not Found")
    error.body = json.dumps({"details": {"name": name}} if name else {})
    return error


class FakeCustomObjects:
    """Stores PrometheusRules by (namespace, name); ``refusal`` answers every call instead."""

    def __init__(self) -> None:
        self.objects: dict[tuple[str, str], dict[str, Any]] = {}
        self.calls: list[str] = []
        self.refusal: ApiException | None = None

    def _check(self, call: str) -> None:
        self.calls.append(call)
        if self.refusal is not None:
            raise self.refusal

    def get_namespaced_custom_object(self, group: str, version: str, namespace: str,
                                     plural: str, name: str, **_: Any) -> dict[str, Any]:
        self._check("get")
        if (namespace, name) not in self.objects:
            raise not_found(name)
        return copy.deepcopy(self.objects[(namespace, name)])

    def create_namespaced_custom_object(self, group: str, version: str, namespace: str,
                                        plural: str, body: dict[str, Any], **_: Any) -> None:
        self._check("create")
        if (namespace, body["metadata"]["name"]) in self.objects:
            raise ApiException(status=409, reason="Conflict")
        self.objects[(namespace, body["metadata"]["name"])] = copy.deepcopy(body)

    def _listed(self, selector: str, namespace: str | None = None) -> dict[str, Any]:
        wanted = dict(pair.split("=") for pair in selector.split(","))
        items = []
        for (ns, _), rule in self.objects.items():
            labels = rule["metadata"].get("labels") or {}
            if (namespace is None or ns == namespace) and all(
                    labels.get(k) == v for k, v in wanted.items()):
                item = copy.deepcopy(rule)
                item["metadata"]["namespace"] = ns
                items.append(item)
        return {"items": items}

    def list_cluster_custom_object(self, group: str, version: str, plural: str,
                                   label_selector: str, **_: Any) -> dict[str, Any]:
        self._check("list")
        return self._listed(label_selector)

    def list_namespaced_custom_object(self, group: str, version: str, namespace: str,
                                      plural: str, label_selector: str, **_: Any) -> dict[str, Any]:
        self._check("list")
        return self._listed(label_selector, namespace)

    def patch_namespaced_custom_object(self, group: str, version: str, namespace: str,
                                       plural: str, name: str, body: dict[str, Any],
                                       **_: Any) -> None:
        self._check("patch")
        current = self.objects[(namespace, name)]
        current["spec"] = body["spec"]
        current["metadata"]["labels"].update(body["metadata"]["labels"])

    def delete_namespaced_custom_object(self, group: str, version: str, namespace: str,
                                        plural: str, name: str, **_: Any) -> None:
        self._check("delete")
        del self.objects[(namespace, name)]


@pytest.fixture
def api() -> FakeCustomObjects:
    return FakeCustomObjects()


@pytest.fixture
def keeper(api: FakeCustomObjects) -> RuleKeeper:
    return RuleKeeper(api, {"release": "prometheus"})  # type: ignore[arg-type]


def test_a_rule_is_created_then_left_alone_until_the_spec_changes(
        keeper: RuleKeeper, api: FakeCustomObjects) -> None:
    keeper.reconcile(agreement())
    assert api.calls == ["get", "create"]
    assert api.objects[("shop", "cart-sla")] == prometheus_rule(agreement(), {"release": "prometheus"})
    keeper.reconcile(agreement())
    assert api.calls[2:] == ["get"]  # nothing to write
    keeper.reconcile(agreement(objective=Decimal("99")))
    assert api.calls[3:] == ["get", "patch"]
    assert "> 0.144 and" in json.dumps(api.objects[("shop", "cart-sla")]["spec"])


def test_alerting_off_deletes_the_rule_and_writes_nothing_after(
        keeper: RuleKeeper, api: FakeCustomObjects) -> None:
    keeper.reconcile(agreement())
    keeper.reconcile(agreement(alerting=Alerting(enabled=False)))
    assert api.objects == {}
    keeper.reconcile(agreement(alerting=Alerting(enabled=False)))
    assert api.calls == ["get", "create", "get", "delete", "get"]


def test_a_rule_of_that_name_made_by_someone_else_is_left_alone(
        keeper: RuleKeeper, api: FakeCustomObjects, caplog: pytest.LogCaptureFixture) -> None:
    theirs = {"metadata": {"name": "cart-sla", "labels": {"team": "shop"}}, "spec": {"groups": []}}
    api.objects[("shop", "cart-sla")] = theirs
    keeper.reconcile(agreement())
    keeper.reconcile(agreement(alerting=Alerting(enabled=False)))
    assert api.objects[("shop", "cart-sla")] == theirs
    assert api.calls == ["get", "get"]
    assert len([r for r in caplog.records if "not managed by sla-operator" in r.message]) == 1


def test_without_the_crd_nothing_is_written_and_nothing_is_said(
        keeper: RuleKeeper, api: FakeCustomObjects, caplog: pytest.LogCaptureFixture) -> None:
    api.refusal = not_found(None)  # the kind itself is not served
    with caplog.at_level(logging.WARNING):
        keeper.reconcile(agreement())
    assert api.calls == ["get"] and caplog.records == []


def test_a_missing_permission_is_one_warning_however_many_agreements(
        keeper: RuleKeeper, api: FakeCustomObjects, caplog: pytest.LogCaptureFixture) -> None:
    api.refusal = ApiException(status=403, reason="Forbidden")
    for name in ("cart", "orders", "search"):
        keeper.reconcile(agreement(name=name))
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "403 Forbidden" in warnings[0].getMessage()


def test_a_standby_leaves_the_rules_to_the_leader(keeper: RuleKeeper, api: FakeCustomObjects) -> None:
    keeper.switch.active = False
    keeper.reconcile(agreement())
    assert api.calls == []
    keeper.switch.active = True  # promoted: the next reconcile writes
    keeper.reconcile(agreement())
    assert api.calls == ["get", "create"]


def test_with_shards_only_the_owning_shard_keeps_an_agreements_rule(api: FakeCustomObjects) -> None:
    shards = [Sharding(2, index) for index in range(2)]
    keepers = [RuleKeeper(api, {}, owns=lambda key, s=shard: s.owns(*key))  # type: ignore[arg-type,misc]
               for shard in shards]
    names = [f"cart-{n}" for n in range(8)]
    for keeper in keepers:
        for name in names:
            keeper.reconcile(agreement(name=name))
            keeper.reconcile_if_changed(agreement(name=name), "v2")
    # Each agreement: get and create, then get (nothing to change), from its own shard only.
    assert sorted(api.calls) == ["create"] * len(names) + ["get"] * 2 * len(names)
    assert set(api.objects) == {("shop", f"{name}-sla") for name in names}


def test_after_one_list_the_rules_are_kept_without_reading_each(
        keeper: RuleKeeper, api: FakeCustomObjects) -> None:
    keeper.reconcile(agreement(name="orders"))  # made before the list: found by it
    api.calls.clear()
    keeper.prime([])
    for name in ("cart", "orders", "search"):
        keeper.reconcile(agreement(name=name))
    assert api.calls == ["list", "create", "create"]  # orders' rule was listed as it should be
    keeper.reconcile(agreement(name="cart", objective=Decimal("99")))
    keeper.reconcile(agreement(name="cart", alerting=Alerting(enabled=False)))
    keeper.reconcile(agreement(name="cart", alerting=Alerting(enabled=False)))
    assert api.calls[3:] == ["patch", "delete"]  # what was written is remembered
    assert set(api.objects) == {("shop", "orders-sla"), ("shop", "search-sla")}


def test_a_rule_not_listed_yet_there_is_read_before_anything_is_written(
        keeper: RuleKeeper, api: FakeCustomObjects, caplog: pytest.LogCaptureFixture) -> None:
    keeper.prime(["shop"])
    theirs = {"metadata": {"name": "cart-sla", "labels": {"team": "shop"}}, "spec": {"groups": []}}
    api.objects[("shop", "cart-sla")] = theirs  # someone else's, unlabelled: not in the list
    keeper.reconcile(agreement())
    keeper.reconcile(agreement())
    assert api.objects[("shop", "cart-sla")] == theirs
    assert api.calls == ["list", "create", "get", "get"]
    assert len([r for r in caplog.records if "not managed by sla-operator" in r.message]) == 1


def test_without_the_crd_no_agreement_costs_a_request_until_it_is_served(
        keeper: RuleKeeper, api: FakeCustomObjects) -> None:
    api.refusal = not_found(None)
    keeper.prime([])
    assert keeper.served is False
    for name in ("cart", "orders"):
        keeper.reconcile(agreement(name=name))
        assert keeper.done(("shop", name), "v1")
    assert api.calls == ["list"]
    api.refusal = None
    keeper.crd_served(True)  # its CRD became Established: keep_all reconciles every agreement
    assert not keeper.done(("shop", "cart"), "v1")
    keeper.prime([])
    keeper.reconcile(agreement())
    assert api.calls[1:] == ["list", "create"] and keeper.served is True
    keeper.crd_served(False)  # deleted again
    keeper.reconcile(agreement(name="orders"))
    assert api.calls[3:] == []


def test_a_kind_not_served_found_by_a_read_stops_further_reads(
        keeper: RuleKeeper, api: FakeCustomObjects) -> None:
    api.refusal = not_found(None)
    keeper.reconcile(agreement(name="cart"))
    keeper.reconcile(agreement(name="orders"))
    assert api.calls == ["get"]
