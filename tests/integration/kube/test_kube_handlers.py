"""The kopf handlers against kmock: a bad edit of a window or an incident keeps the last valid one."""

from __future__ import annotations

import copy
from typing import Any

import kmock as km
import kopf
import pytest
from kube_support import INCIDENTS, T0, Clock, requests_to

from sla_operator.domain.records import incident_from_manifest, incident_spec
from sla_operator.engine import Engine, EngineSettings
from sla_operator.kube.handlers import incident_event, maintenance_event
from sla_operator.store.base import Kind
from sla_operator.store.kube import KubeStore

WINDOWS = km.resource("sla.dev", "v1alpha1", "maintenancewindows")
EVENTS = km.resource("", "v1", "events")
KEY = ("payments", "db-upgrade")


def window_manifest(**spec: Any) -> dict[str, Any]:
    """A window open around the test clock's time, T0 (2026-11-26T04:12Z)."""
    return {
        "apiVersion": "sla.dev/v1alpha1", "kind": "MaintenanceWindow",
        "metadata": {"name": "db-upgrade", "namespace": "payments", "generation": 1},
        "spec": {"description": "Database upgrade", "slaNames": ["payments-api"],
                 "start": "2026-11-26T04:00:00Z", "end": "2026-11-26T06:00:00Z", **spec},
    }


def bad_edit() -> dict[str, Any]:
    edited = window_manifest(end="2026-11-26T03:00:00Z")  # before its start
    edited["metadata"]["generation"] = 2
    return edited


@pytest.fixture
def engine(apiserver: km.KubernetesEmulator, store: KubeStore) -> Engine:
    apiserver.objects[WINDOWS, "payments", "db-upgrade"] = window_manifest()
    return Engine(store, EngineSettings(status_interval=300), clock=Clock(T0))


HANDLED: dict[Any, Any] = {}  # what the process took in so far (reset per test below)


@pytest.fixture(autouse=True)
def fresh_process() -> None:
    HANDLED.clear()


async def changed(engine: Engine, manifest: dict[str, Any]) -> None:
    """The window's watch event, as kopf delivers it to the handler."""
    await maintenance_event(event={"type": "MODIFIED", "object": copy.deepcopy(manifest)},
                            memo=kopf.Memo(engine=engine, handled=HANDLED))


def status_patches(apiserver: km.KubernetesEmulator) -> list[dict[str, Any]]:
    return [r.data["status"] for r in
            requests_to(apiserver, WINDOWS, method="PATCH", subresource="status")]


def ready(status: dict[str, Any]) -> dict[str, Any]:
    (condition,) = [c for c in status["conditions"] if c["type"] == "Ready"]
    return dict(condition)


async def test_a_bad_edit_keeps_the_window_in_progress_in_effect(
        engine: Engine, apiserver: km.KubernetesEmulator) -> None:
    await changed(engine, window_manifest())
    valid = engine.maintenance[KEY]

    await changed(engine, bad_edit())

    assert engine.maintenance[KEY] is valid  # maintenance in progress stays maintenance
    assert status_patches(apiserver) == []  # the engine's own status says why, not a second one
    (event,) = requests_to(apiserver, EVENTS, method="POST")
    assert event.data["reason"] == "InvalidSpec" and "spec.end" in event.data["message"]

    await engine.evaluate_round()
    (status,) = status_patches(apiserver)
    assert status["active"] is True
    condition = ready(status)
    assert condition["status"] == "False" and condition["reason"] == "InvalidSpec"
    assert "spec.end" in condition["message"]


async def test_fixing_the_window_clears_the_rejection(
        engine: Engine, apiserver: km.KubernetesEmulator) -> None:
    await changed(engine, window_manifest())
    await changed(engine, bad_edit())
    fixed = window_manifest(end="2026-11-26T05:00:00Z")
    fixed["metadata"]["generation"] = 3
    await changed(engine, fixed)
    await engine.evaluate_round()
    (status,) = status_patches(apiserver)
    assert ready(status)["status"] == "True"
    assert status["currentEnd"] == "2026-11-26T05:00:00Z"


async def test_a_window_never_valid_gets_ready_false_written_by_the_handler(
        engine: Engine, apiserver: km.KubernetesEmulator) -> None:
    await changed(engine, bad_edit())
    await changed(engine, bad_edit())  # a status write's echo: reported once per generation

    assert KEY not in engine.maintenance
    (status,) = status_patches(apiserver)
    condition = ready(status)
    assert condition["status"] == "False" and "spec.end" in condition["message"]
    assert status["observedGeneration"] == 2


def incident_manifest(**spec: Any) -> dict[str, Any]:
    """A resolved outage of payments-api, as the engine filed it."""
    return {
        "apiVersion": "sla.dev/v1alpha1", "kind": "Incident",
        "metadata": {"name": "payments-api-20261126-0400", "namespace": "payments",
                     "labels": {"sla.dev/agreement": "payments-api"}},
        "spec": {"agreement": "payments-api", "type": "outage", "severity": "P1", "impact": "downtime",
                 "title": "Payments API is down", "state": "resolved", "endpoints": ["api"],
                 "startedAt": "2026-11-26T04:00:00Z", "resolvedAt": "2026-11-26T04:10:00Z",
                 "updates": [], **spec},
    }


async def incident_seen(engine: Engine, manifest: dict[str, Any], kind: str = "MODIFIED") -> None:
    await incident_event(event={"type": kind, "object": copy.deepcopy(manifest)},
                         memo=kopf.Memo(engine=engine))


async def test_an_incident_edit_the_engine_cannot_read_keeps_the_last_valid_version_counted(
        engine: Engine, apiserver: km.KubernetesEmulator) -> None:
    await incident_seen(engine, incident_manifest(), "ADDED")
    valid = engine.incidents[("payments", "payments-api-20261126-0400")]

    # The CRD cannot compare two fields: a resolution before the start gets past the API server.
    await incident_seen(engine, incident_manifest(resolvedAt="2026-11-26T03:00:00Z"))

    assert engine.incidents[valid.key] == valid
    assert incident_spec(valid)["resolvedAt"] == "2026-11-26T04:10:00Z"
    (event,) = requests_to(apiserver, EVENTS, method="POST")
    assert event.data["reason"] == "InvalidSpec" and event.data["type"] == "Warning"
    assert "spec.resolvedAt" in event.data["message"]
    assert "the previous version stays in effect" in event.data["message"]


async def test_an_incident_never_valid_is_not_counted_and_says_so(
        engine: Engine, apiserver: km.KubernetesEmulator) -> None:
    await incident_seen(engine, incident_manifest(resolvedAt="2026-11-26T03:00:00Z"), "ADDED")

    assert engine.incidents == {}
    (event,) = requests_to(apiserver, EVENTS, method="POST")
    assert event.data["message"].endswith("not counted")


async def test_a_deleted_incident_leaves_the_engine(engine: Engine) -> None:
    await incident_seen(engine, incident_manifest(), "ADDED")
    await incident_seen(engine, incident_manifest(), "DELETED")
    assert engine.incidents == {}


def versioned(manifest: dict[str, Any], version: str) -> dict[str, Any]:
    manifest["metadata"]["resourceVersion"] = version
    return manifest


async def test_a_late_echo_of_an_earlier_write_does_not_replace_the_engines_newer_copy(
        engine: Engine, store: KubeStore, apiserver: km.KubernetesEmulator) -> None:
    still_open = incident_manifest(state="investigating", resolvedAt=None)
    await incident_seen(engine, versioned(still_open, "10"), "ADDED")
    key = ("payments", "payments-api-20261126-0400")

    # The engine resolves it; the API server answers with the resolved object, version 20.
    resolved = versioned(incident_manifest(), "20")
    apiserver.objects[INCIDENTS, "payments", key[1]] = resolved
    await store.write_status(Kind.INCIDENT, key, {"durationSeconds": 600})
    engine.upsert_incident(incident_from_manifest(resolved))

    # The watch delivers the echo of an earlier status write (still open) only now.
    await incident_seen(engine, versioned(copy.deepcopy(still_open), "15"))
    assert engine.incidents[key].resolved_at is not None

    # A person's later edit is news.
    acknowledged = versioned(incident_manifest(acknowledgedAt="2026-11-26T04:05:00Z",
                                               acknowledgedBy="alice"), "21")
    await incident_seen(engine, acknowledged)
    assert engine.incidents[key].acknowledged_by == "alice"


async def test_an_incident_deleted_and_created_again_is_news_whatever_its_version(
        engine: Engine) -> None:
    await incident_seen(engine, versioned(incident_manifest(), "30"), "ADDED")
    await incident_seen(engine, versioned(incident_manifest(), "31"), "DELETED")
    await incident_seen(engine, versioned(incident_manifest(title="Filed again"), "5"), "ADDED")
    assert engine.incidents[("payments", "payments-api-20261126-0400")].title == "Filed again"
