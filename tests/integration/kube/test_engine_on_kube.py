"""The engine end to end on the Kubernetes API: probes → health → one incident → statuses."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import kmock as km
from kube_support import AGREEMENTS, INCIDENTS, T0, World, requests_to

from sla_operator.domain.model import IncidentState, Severity
from sla_operator.domain.records import format_time, incident_from_manifest

STEP = timedelta(seconds=30)


def agreement_states(apiserver: km.KubernetesEmulator) -> list[str]:
    """The state the SLA's status held after each status patch, in order (a patch carries
    the fields that changed; the first, the whole status)."""
    states: list[str] = []
    for r in requests_to(apiserver, AGREEMENTS, method="PATCH", subresource="status"):
        states.append(r.data["status"]["state"] if "state" in r.data["status"] else states[-1])
    return states


def requests_count(apiserver: km.KubernetesEmulator) -> int:
    return len(list(apiserver))


async def test_an_outage_opens_one_incident_resolves_it_and_the_status_follows(world: World) -> None:
    apiserver = world.apiserver
    await world.probe(True)                                      # T0+30s: Up
    assert agreement_states(apiserver) == ["Up"]
    await world.probe(False)                                     # T0+60s: first failure
    await world.probe(False)
    assert agreement_states(apiserver) == ["Up"]  # nothing changed: nothing written
    assert requests_to(apiserver, INCIDENTS) == []
    await world.probe(False)                                     # T0+120s: Down

    (post,) = requests_to(apiserver, INCIDENTS, method="POST")
    spec: dict[str, Any] = post.data["spec"]
    assert (spec["type"], spec["severity"], spec["impact"], spec["origin"]) == (
        "outage", "P1", "downtime", "automatic")
    assert spec["startedAt"] == format_time(T0 + 2 * STEP)  # the first failure, not the third
    assert post.data["metadata"]["ownerReferences"][0]["uid"] == "a9d6-sla-uid"
    name = post.data["metadata"]["name"]
    assert agreement_states(apiserver) == ["Up", "Down"]
    down_status = requests_to(apiserver, AGREEMENTS, method="PATCH", subresource="status")[-1]
    assert down_status.data["status"]["openIncidents"] == [name]
    assert down_status.headers["Content-Type"] == "application/merge-patch+json"

    await world.probe(True)                                      # T0+150s: recovery begins
    await world.probe(True)                                      # T0+180s: Up again
    (patch,) = requests_to(apiserver, INCIDENTS, method="PATCH")
    assert patch.name == name
    assert patch.headers["Content-Type"] == "application/json-patch+json"
    assert {"op": "add", "path": "/spec/state", "value": "resolved"} in patch.data
    assert {"op": "add", "path": "/spec/resolvedAt",
            "value": format_time(T0 + 5 * STEP)} in patch.data
    assert [op["path"] for op in patch.data if op["path"].startswith("/spec/updates")] == [
        "/spec/updates/-"]
    assert agreement_states(apiserver) == ["Up", "Down", "Up"]

    stored = incident_from_manifest(apiserver.objects[INCIDENTS, "payments", name].raw)
    assert (stored.state, stored.severity) == (IncidentState.RESOLVED, Severity.P1)
    assert (stored.started_at, stored.resolved_at) == (T0 + 2 * STEP, T0 + 5 * STEP)
    assert [u.state for u in stored.updates] == [IncidentState.INVESTIGATING, IncidentState.RESOLVED]
    assert len(requests_to(apiserver, INCIDENTS, method="POST")) == 1
    assert world.engine.incidents[("payments", name)] == stored


async def test_rounds_without_change_send_nothing_until_the_routine_write(world: World) -> None:
    apiserver = world.apiserver
    await world.probe(True)
    await world.probe(True)
    before = requests_count(apiserver)
    for _ in range(3):
        await world.engine.evaluate_round()
    world.clock.advance(timedelta(seconds=100))
    await world.engine.evaluate_round()
    assert requests_count(apiserver) == before

    # The refresh comes at the agreement's own phase of the status interval (300 s), between
    # half an interval and one and a half after the last write (T0+30s): by now it is due.
    world.clock.advance(timedelta(seconds=320))
    await world.engine.evaluate_round()
    await world.engine.evaluate_round()
    assert requests_count(apiserver) == before + 1
    assert agreement_states(apiserver) == ["Up", "Up"]


async def test_an_incident_read_back_unchanged_does_not_trigger_writes(world: World) -> None:
    apiserver = world.apiserver
    await world.probe(True)
    for _ in range(3):
        await world.probe(False)
    (post,) = requests_to(apiserver, INCIDENTS, method="POST")
    before = requests_count(apiserver)
    # The watch echoes the operator's own writes (the incident's status patch among them).
    world.clock.advance(timedelta(seconds=5))
    echoed = apiserver.objects[INCIDENTS, "payments", post.data["metadata"]["name"]].raw
    world.engine.upsert_incident(incident_from_manifest(echoed))
    await world.engine.evaluate_round()
    assert requests_count(apiserver) == before


async def test_a_create_that_failed_after_storing_is_adopted_next_round(world: World) -> None:
    apiserver = world.apiserver
    # An API server can store an object and still answer 500 (an etcd timeout, say);
    # kmock stores every create it receives, so this is that case.
    refusing = apiserver["post", INCIDENTS][:1] << km.KubernetesError(500, "InternalError", "etcd")
    await world.probe(True)
    for _ in range(3):
        await world.probe(False)
    assert len(refusing) == 1
    assert world.engine.incidents == {}
    world.clock.advance(timedelta(seconds=1))
    await world.engine.evaluate_round()  # still due: the failed round left it marked
    assert [r.method.value for r in requests_to(apiserver, INCIDENTS)] == ["POST", "POST", "GET"]
    assert [key[2] for key in apiserver.objects if key[0] == INCIDENTS] == [
        "payments-api-20261126-0413"]
    assert list(world.engine.incidents) == [("payments", "payments-api-20261126-0413")]
    assert agreement_states(apiserver)[-1] == "Down"
