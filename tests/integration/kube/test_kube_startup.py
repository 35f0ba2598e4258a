"""Before kopf starts: the first lists say what is missing, and bad objects never stop a start."""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import kmock as km
import pytest
from kube_support import AGREEMENTS, INCIDENTS, T0, Clock, agreement_manifest
from kubernetes import client

from sla_operator.domain.model import Incident
from sla_operator.engine import Engine
from sla_operator.kube.connect import StartupError, first_lists, list_kind
from sla_operator.kube.handlers import take_in_agreement
from sla_operator.kube.startup import preload
from sla_operator.store.base import Kind
from sla_operator.store.kube import KubeStore

WINDOWS = km.resource("sla.dev", "v1alpha1", "maintenancewindows")


def closed_port() -> int:
    """A loopback port nothing listens on (bound and released again)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def incident(name: str, **spec: Any) -> dict[str, Any]:
    return {"apiVersion": "sla.dev/v1alpha1", "kind": "Incident",
            "metadata": {"name": name, "namespace": "payments"},
            "spec": {"agreement": "payments-api", "type": "outage", "severity": "P2",
                     "title": "Card payments failing", "startedAt": "2026-11-20T09:12:00Z",
                     "state": "investigating", "impact": "downtime", **spec}}


def window(name: str, **spec: Any) -> dict[str, Any]:
    return {"apiVersion": "sla.dev/v1alpha1", "kind": "MaintenanceWindow",
            "metadata": {"name": name, "namespace": "payments"},
            "spec": {"description": "Database upgrade", "slaNames": ["payments-api"],
                     "start": "2026-12-01T02:00:00Z", "end": "2026-12-01T04:00:00Z", **spec}}


async def test_the_first_lists_read_incidents_and_windows_of_the_watched_namespaces(
        apiserver: km.KubernetesEmulator, api_client: client.ApiClient) -> None:
    apiserver.objects[INCIDENTS, "payments", "a"] = incident("a")
    apiserver.objects[INCIDENTS, "other", "b"] = incident("b")
    apiserver.objects[WINDOWS, "payments", "w"] = window("w")
    apiserver.objects[AGREEMENTS, "payments", "payments-api"] = {
        "apiVersion": "sla.dev/v1alpha1", "kind": "ServiceLevelAgreement",
        "metadata": {"name": "payments-api", "namespace": "payments"}, "spec": {}}
    listed = await asyncio.to_thread(first_lists, api_client, ["payments"])
    assert [i["metadata"]["name"] for i in listed["incidents"]] == ["a"]
    assert [w["metadata"]["name"] for w in listed["maintenancewindows"]] == ["w"]


async def test_a_missing_crd_is_named(api_client: client.ApiClient) -> None:
    with pytest.raises(StartupError, match=r"CustomResourceDefinition incidents\.sla\.dev is not "
                                           r"installed \(kubectl apply -f crds/"):
        await asyncio.to_thread(list_kind, api_client, "incidents", [])


async def test_a_missing_permission_is_named_with_the_servers_words(
        apiserver: km.KubernetesEmulator, api_client: client.ApiClient) -> None:
    apiserver.objects[INCIDENTS, "payments", "a"] = incident("a")
    apiserver["list", INCIDENTS] << km.KubernetesError(
        403, "Forbidden", 'incidents.sla.dev is forbidden: User "ci" cannot list resource')
    with pytest.raises(StartupError) as refused:
        await asyncio.to_thread(list_kind, api_client, "incidents", ["payments"])
    assert str(refused.value) == (
        "not allowed to list incidents.sla.dev in namespace(s) payments (403 Forbidden: "
        'incidents.sla.dev is forbidden: User "ci" cannot list resource); '
        "grant the chart's ClusterRole")


async def test_an_unreachable_api_server_is_named_by_its_address() -> None:
    port = closed_port()
    api = client.ApiClient(client.Configuration(host=f"http://127.0.0.1:{port}"))
    api.configuration.retries = 0
    try:
        with pytest.raises(StartupError, match=f"cannot reach the API server at "
                                               f"http://127.0.0.1:{port}: .*refused"):
            await asyncio.to_thread(list_kind, api, "incidents", [])
    finally:
        api.close()


def test_one_bad_object_of_any_kind_is_skipped_and_the_rest_preloaded(
        store: KubeStore, caplog: pytest.LogCaptureFixture,
        monkeypatch: pytest.MonkeyPatch) -> None:
    engine = Engine(store, clock=Clock(T0))
    upsert = engine.upsert_incident

    def upsert_failing_on_one(parsed: Incident) -> None:
        if parsed.name == "unexpected":
            raise RuntimeError("a failure no parser foresaw")
        upsert(parsed)

    monkeypatch.setattr(engine, "upsert_incident", upsert_failing_on_one)
    listed = {
        "incidents": [incident("good"), incident("unexpected"),
                      incident("invalid", severity="P9"),
                      {"metadata": "not a mapping", "spec": []}],
        "maintenancewindows": [window("bad-order", end="2026-12-01T01:00:00Z"), window("good")],
    }
    preload(engine, listed, {})
    assert list(engine.incidents) == [("payments", "good")]
    assert list(engine.maintenance) == [("payments", "good")]
    skipped = [r.getMessage() for r in caplog.records if "ignored" in r.getMessage()]
    assert [m.split(" ignored")[0] for m in skipped] == [
        "incidents payments/unexpected", "incidents payments/invalid", "incidents None/None",
        "maintenancewindows payments/bad-order"]


async def test_the_first_lists_prove_the_agreement_kind_too(
        apiserver: km.KubernetesEmulator, api_client: client.ApiClient) -> None:
    apiserver["list", AGREEMENTS] << km.KubernetesError(
        403, "Forbidden", "servicelevelagreements.sla.dev is forbidden")
    with pytest.raises(StartupError, match=r"not allowed to list servicelevelagreements\.sla\.dev"):
        await asyncio.to_thread(first_lists, api_client, ["payments"])


def named(manifest: dict[str, Any], name: str, **meta: Any) -> dict[str, Any]:
    manifest["metadata"].update(name=name, uid=f"uid-{name}", **meta)
    return manifest


def test_listed_agreements_are_taken_in_at_once_and_their_events_find_them_known(
        store: KubeStore) -> None:
    engine = Engine(store, clock=Clock(T0))
    handled: dict[Any, object] = {}
    good = named(agreement_manifest(), "payments-api")
    invalid = named(agreement_manifest(objective="150"), "broken")
    leaving = named(agreement_manifest(), "leaving", deletionTimestamp="2026-11-20T00:00:00Z")
    preload(engine, {"servicelevelagreements": [good, invalid, leaving]}, handled)
    assert list(engine.agreements) == [("payments", "payments-api")]
    # The watch's event of the same version changes nothing; the invalid one is still new to
    # it, so its event reports the error; a new generation is taken in.
    assert take_in_agreement(engine, handled, good) is None
    assert engine.agreements[("payments", "payments-api")].agreement.uid == "uid-payments-api"
    assert (Kind.AGREEMENT, ("payments", "broken")) not in handled
    assert "objective" in str(take_in_agreement(engine, handled, invalid))
    changed = named(agreement_manifest(service="Payments"), "payments-api", generation=2)
    assert take_in_agreement(engine, handled, changed) is None
    assert engine.agreements[("payments", "payments-api")].agreement.service == "Payments"


async def test_the_first_lists_come_from_the_watch_cache_and_other_lists_read_through(
        apiserver: km.KubernetesEmulator, api_client: client.ApiClient) -> None:
    apiserver.objects[INCIDENTS, "payments", "a"] = incident("a")
    apiserver.objects[WINDOWS, "payments", "w"] = window("w")
    apiserver.objects[AGREEMENTS, "payments", "payments-api"] = {
        "apiVersion": "sla.dev/v1alpha1", "kind": "ServiceLevelAgreement",
        "metadata": {"name": "payments-api", "namespace": "payments"}, "spec": {}}
    await asyncio.to_thread(first_lists, api_client, ["payments"])
    await asyncio.to_thread(first_lists, api_client, [])  # every namespace
    first = [request.params.get("resourceVersion") for request in apiserver]
    assert first == ["0"] * 6  # three kinds, twice
    before = len(list(apiserver))
    await asyncio.to_thread(list_kind, api_client, "incidents", ["payments"])  # a report's list
    assert [request.params.get("resourceVersion") for request in list(apiserver)[before:]] == [None]
