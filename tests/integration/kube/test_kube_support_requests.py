"""The SupportRequest handler and its status writes against kmock: the exact requests sent."""

from __future__ import annotations

import copy
from datetime import timedelta
from typing import Any
from unittest.mock import ANY

import kmock as km
import kopf
import pytest
from kube_support import AGREEMENTS, T0, Clock, agreement_manifest, requests_to

from sla_operator.domain.parse import agreement_from_manifest
from sla_operator.domain.records import maintenance_from_manifest
from sla_operator.engine import Engine, EngineSettings
from sla_operator.kube.handlers import support_request_event
from sla_operator.kube.watch import Resync, WatchTracker
from sla_operator.store.kube import KubeStore

REQUESTS = km.resource("sla.dev", "v1alpha1", "supportrequests")
EVENTS = km.resource("", "v1", "events")
WINDOWS = km.resource("sla.dev", "v1alpha1", "maintenancewindows")
KEY = ("payments", "acme-1042")


def request_manifest(**spec: Any) -> dict[str, Any]:
    return {"apiVersion": "sla.dev/v1alpha1", "kind": "SupportRequest",
            "metadata": {"name": "acme-1042", "namespace": "payments", "uid": "r-1",
                         "creationTimestamp": "2026-11-26T04:00:00Z"},
            "spec": {"agreement": "payments-api", "severity": "P2", "title": "Webhooks delayed",
                     **spec}}


@pytest.fixture
def clock() -> Clock:
    return Clock(T0)


@pytest.fixture
def engine(apiserver: km.KubernetesEmulator, store: KubeStore, clock: Clock) -> Engine:
    manifest = agreement_manifest()
    apiserver.objects[AGREEMENTS, "payments", "payments-api"] = manifest
    apiserver.objects[REQUESTS, "payments", "acme-1042"] = request_manifest()
    engine = Engine(store, EngineSettings(status_interval=300), clock=clock)
    engine.upsert_agreement(agreement_from_manifest(manifest))
    return engine


async def seen(engine: Engine, manifest: dict[str, Any], kind: str = "MODIFIED") -> None:
    await support_request_event(event={"type": kind, "object": copy.deepcopy(manifest)},
                                memo=kopf.Memo(engine=engine))


def ready(status: bool, reason: str, generation: int = 0) -> dict[str, Any]:
    """The Ready condition as written at T0 (the message checked apart)."""
    return {"type": "Ready", "status": str(status), "reason": reason, "message": ANY,
            "lastTransitionTime": "2026-11-26T04:12:00Z", "observedGeneration": generation}


def status_patches(apiserver: km.KubernetesEmulator) -> list[dict[str, Any]]:
    return [r.data["status"] for r in
            requests_to(apiserver, REQUESTS, method="PATCH", subresource="status")]


async def test_a_request_gets_its_due_time_by_a_status_merge_patch(
        engine: Engine, apiserver: km.KubernetesEmulator) -> None:
    await seen(engine, request_manifest(), "ADDED")
    await engine.evaluate_round()
    (patch,) = requests_to(apiserver, REQUESTS, method="PATCH", subresource="status")
    assert patch.headers["Content-Type"].startswith("application/merge-patch+json")
    assert patch.data["status"] == {"responseDue": "2026-11-26T05:00:00Z",
                                    "responseBreached": False, "responseSeconds": None,
                                    "target": "1h", "hours": "always", "message": "",
                                    "conditions": [ready(True, "Measured")]}
    await engine.evaluate_round()
    assert len(status_patches(apiserver)) == 1  # unchanged: not written again


async def test_the_status_is_written_again_when_the_response_goes_late(
        engine: Engine, apiserver: km.KubernetesEmulator, clock: Clock) -> None:
    await seen(engine, request_manifest(), "ADDED")
    await engine.evaluate_round()
    clock.now = T0 + timedelta(hours=1)  # T0 is 04:12; due at 05:00
    await engine.evaluate_round()
    assert [s["responseBreached"] for s in status_patches(apiserver)] == [False, True]


async def test_a_reply_recorded_later_sets_the_response_time(
        engine: Engine, apiserver: km.KubernetesEmulator) -> None:
    await seen(engine, request_manifest(), "ADDED")
    await engine.evaluate_round()
    await seen(engine, request_manifest(respondedAt="2026-11-26T04:30:00Z"))
    await engine.evaluate_round()
    assert status_patches(apiserver)[-1]["responseSeconds"] == 1800


async def test_an_unreadable_edit_keeps_the_last_valid_request_and_says_so(
        engine: Engine, apiserver: km.KubernetesEmulator) -> None:
    await seen(engine, request_manifest(), "ADDED")
    valid = engine.support_requests[KEY]
    # The CRD cannot compare two fields: a reply before the opening gets past the API server.
    await seen(engine, request_manifest(respondedAt="2026-11-26T03:00:00Z"))
    assert engine.support_requests[KEY] == valid
    (event,) = requests_to(apiserver, EVENTS, method="POST")
    assert event.data["reason"] == "InvalidSpec" and "spec.respondedAt" in event.data["message"]
    assert event.data["involvedObject"]["kind"] == "SupportRequest"


async def test_a_deleted_request_leaves_the_engine_and_the_agreements_figures(
        engine: Engine) -> None:
    await seen(engine, request_manifest(), "ADDED")
    await seen(engine, request_manifest(), "DELETED")
    assert engine.support_requests == {}
    assert engine.support_requests_of(engine.agreements[("payments", "payments-api")].agreement) == []


async def test_a_request_deleted_without_a_watch_event_leaves_at_the_resync(
        engine: Engine, apiserver: km.KubernetesEmulator, store: KubeStore, clock: Clock) -> None:
    for plural, kind in (("servicelevelagreements", "ServiceLevelAgreement"),
                         ("maintenancewindows", "MaintenanceWindow"), ("incidents", "Incident"),
                         ("supportrequests", "SupportRequest")):
        apiserver.resources[f"sla.dev/v1alpha1/{plural}"] = {
            "namespaced": True, "kind": kind, "verbs": {"get", "list", "watch"}}
    await seen(engine, request_manifest(), "ADDED")
    gone = request_manifest()
    gone["metadata"]["name"] = "deleted-meanwhile"
    await seen(engine, gone, "ADDED")
    await Resync(engine, store, ["payments"], WatchTracker(clock, timedelta(minutes=2)),
                 interval=60).once()
    assert list(engine.support_requests) == [KEY]


async def test_a_request_naming_no_agreement_says_so_warns_once_and_recovers_when_it_appears(
        engine: Engine, apiserver: km.KubernetesEmulator, clock: Clock) -> None:
    await seen(engine, request_manifest(agreement="payments-apx"), "ADDED")
    await engine.evaluate_round()
    (unmeasured,) = status_patches(apiserver)
    assert unmeasured == {"responseDue": None, "responseBreached": None, "responseSeconds": None,
                          "target": None, "hours": None, "message": ANY,
                          "conditions": [ready(False, "AgreementNotFound")]}
    assert unmeasured["message"].startswith(
        "spec.agreement: no ServiceLevelAgreement 'payments-apx' in namespace payments")
    assert unmeasured["conditions"][0]["message"] == unmeasured["message"]
    (event,) = requests_to(apiserver, EVENTS, method="POST")
    assert (event.data["type"], event.data["reason"]) == ("Warning", "AgreementNotFound")
    assert event.data["involvedObject"]["kind"] == "SupportRequest"
    assert event.data["message"] == unmeasured["message"]
    clock.now = T0 + timedelta(minutes=5)
    await engine.evaluate_round()
    assert len(status_patches(apiserver)) == 1  # said once, not every round
    assert len(requests_to(apiserver, EVENTS, method="POST")) == 1

    arrived = agreement_manifest()
    arrived["metadata"].update(name="payments-apx", uid="apx-uid")
    apiserver.objects[AGREEMENTS, "payments", "payments-apx"] = arrived
    engine.upsert_agreement(agreement_from_manifest(arrived))
    await engine.evaluate_round()
    recovered = status_patches(apiserver)[-1]
    assert recovered["responseDue"] == "2026-11-26T05:00:00Z" and recovered["message"] == ""
    assert recovered["conditions"][0]["status"] == "True"
    assert recovered["conditions"][0]["lastTransitionTime"] == "2026-11-26T04:17:00Z"
    assert len(requests_to(apiserver, EVENTS, method="POST")) == 1  # no warning about a recovery


async def test_a_request_naming_a_maintenance_window_says_which_kind_it_named(
        engine: Engine, apiserver: km.KubernetesEmulator) -> None:
    window = {"apiVersion": "sla.dev/v1alpha1", "kind": "MaintenanceWindow",
              "metadata": {"name": "payments-upgrade", "namespace": "payments", "generation": 1},
              "spec": {"start": "2026-12-01T02:00:00Z", "end": "2026-12-01T04:00:00Z"}}
    apiserver.objects[WINDOWS, "payments", "payments-upgrade"] = window
    engine.upsert_maintenance(maintenance_from_manifest(window))
    await seen(engine, request_manifest(agreement="payments-upgrade"), "ADDED")
    await engine.evaluate_round()
    (status,) = [s for s in status_patches(apiserver) if "message" in s]
    assert "'payments-upgrade' is a MaintenanceWindow" in status["message"]
    assert status["conditions"][0]["reason"] == "AgreementNotFound"
