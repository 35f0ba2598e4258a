"""A location's reports on the Kubernetes API: one request per report written, as a rule."""

from __future__ import annotations

from typing import Any

import kmock as km
import pytest
from kube_support import requests_to

from sla_operator.store.base import StoreError
from sla_operator.store.kube import KubeStore

REPORTS = km.resource("sla.dev", "v1alpha1", "locationreports")
NAME = "payments-api.eu-west"


def report(state: str) -> dict[str, Any]:
    return {"apiVersion": "sla.dev/v1alpha1", "kind": "LocationReport",
            "metadata": {"name": NAME, "namespace": "payments",
                         "labels": {"sla.dev/agreement": "payments-api",
                                    "sla.dev/location": "eu-west"}},
            "spec": {"agreement": "payments-api", "location": "eu-west",
                     "endpoints": [{"name": "api", "state": state,
                                    "since": "2026-11-26T04:12:00Z",
                                    "lastProbeTime": "2026-11-26T04:12:00Z", "message": "200 OK"}]}}


def methods(apiserver: km.KubernetesEmulator) -> list[str]:
    return [r.method.value for r in requests_to(apiserver, REPORTS)]


def stored(apiserver: km.KubernetesEmulator) -> dict[str, Any]:
    raw: dict[str, Any] = apiserver.objects[REPORTS, "payments", NAME].raw
    return raw


async def test_a_report_the_reporter_never_saw_is_created_in_one_request(
        store: KubeStore, apiserver: km.KubernetesEmulator) -> None:
    await store.write_location_report(report("Up"), exists=False)
    assert methods(apiserver) == ["POST"]
    assert stored(apiserver)["spec"]["endpoints"][0]["state"] == "Up"


async def test_a_report_it_saw_is_patched_in_one_request(
        store: KubeStore, apiserver: km.KubernetesEmulator) -> None:
    await store.write_location_report(report("Up"), exists=False)
    await store.write_location_report(report("Down"), exists=True)
    assert methods(apiserver) == ["POST", "PATCH"]
    assert stored(apiserver)["spec"]["endpoints"][0]["state"] == "Down"


async def test_one_created_meanwhile_by_another_replica_is_patched(
        store: KubeStore, apiserver: km.KubernetesEmulator) -> None:
    apiserver.objects[REPORTS, "payments", NAME] = report("Up")
    await store.write_location_report(report("Down"), exists=False)
    assert methods(apiserver) == ["POST", "PATCH"]  # 409, then the patch
    assert stored(apiserver)["spec"]["endpoints"][0]["state"] == "Down"


async def test_one_deleted_since_it_was_seen_is_created_again(
        store: KubeStore, apiserver: km.KubernetesEmulator) -> None:
    await store.write_location_report(report("Down"), exists=True)
    assert methods(apiserver) == ["PATCH", "POST"]  # 404, then the creation
    assert stored(apiserver)["spec"]["endpoints"][0]["state"] == "Down"


async def test_a_refused_creation_is_an_error_and_no_patch_follows(
        store: KubeStore, apiserver: km.KubernetesEmulator) -> None:
    apiserver["post", REPORTS] << km.KubernetesError(403, "Forbidden", "no")
    with pytest.raises(StoreError, match="forbidden"):
        await store.write_location_report(report("Up"), exists=False)
    assert methods(apiserver) == ["POST"]
