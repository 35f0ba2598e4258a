"""KubeStore on the Kubernetes API: the exact requests it sends, and how it meets API faults."""

from __future__ import annotations

import asyncio
import base64
import threading
from dataclasses import replace
from datetime import timedelta
from typing import Any

import kmock as km
import pytest
from kube_support import AGREEMENTS, INCIDENTS, SECRETS, T0, requests_to

from sla_operator.domain.errors import SecretRefused
from sla_operator.domain.incidents import Change, apply_change
from sla_operator.domain.model import (
    Incident,
    IncidentState,
    IncidentType,
    IncidentUpdate,
    Severity,
)
from sla_operator.domain.records import incident_spec, update_dict
from sla_operator.store.base import Kind, StoreError
from sla_operator.store.fence import Fenced, WriteSwitch
from sla_operator.store.kube import KubeStore

EVENTS = km.resource("", "v1", "events")
NAME = "payments-api-20261126-0412"
OPENED = IncidentUpdate(T0, IncidentState.INVESTIGATING, "Payments API is down: api failing",
                        Severity.P1)
OUTAGE = Incident(namespace="payments", name=NAME, agreement="payments-api",
                  type=IncidentType.OUTAGE, severity=Severity.P1,
                  title="Payments API is down: api failing", started_at=T0, endpoints=("api",),
                  updates=(OPENED,))


@pytest.fixture(autouse=True)
def owner(apiserver: km.KubernetesEmulator) -> None:
    """The agreement the incidents belong to, as the API server holds it."""
    apiserver.objects[AGREEMENTS, "payments", "payments-api"] = {
        "apiVersion": "sla.dev/v1alpha1", "kind": "ServiceLevelAgreement",
        "metadata": {"name": "payments-api", "namespace": "payments", "uid": "a9d6-sla-uid"},
        "spec": {}}


def stored_incident(apiserver: km.KubernetesEmulator, name: str = NAME) -> dict[str, object]:
    return apiserver.objects[INCIDENTS, "payments", name].raw


# ---------------------------------------------------------------- create


async def test_create_incident_sends_labels_owner_and_spec(
        store: KubeStore, apiserver: km.KubernetesEmulator) -> None:
    stored = await store.create_incident(OUTAGE, owner_uid="a9d6-sla-uid")
    assert stored == replace(OUTAGE, owner_uid="a9d6-sla-uid")
    (post,) = requests_to(apiserver, INCIDENTS, method="POST")
    assert post.namespace == "payments"
    assert post.data == {
        "apiVersion": "sla.dev/v1alpha1",
        "kind": "Incident",
        "metadata": {
            "name": NAME,
            "namespace": "payments",
            "labels": {"sla.dev/agreement": "payments-api", "sla.dev/type": "outage",
                       "sla.dev/severity": "P1"},
            "ownerReferences": [{"apiVersion": "sla.dev/v1alpha1", "kind": "ServiceLevelAgreement",
                                 "name": "payments-api", "uid": "a9d6-sla-uid"}],
        },
        "spec": incident_spec(OUTAGE),
    }


async def test_create_incident_without_an_owner_sends_no_owner_reference(
        store: KubeStore, apiserver: km.KubernetesEmulator) -> None:
    await store.create_incident(OUTAGE, owner_uid=None)
    (post,) = requests_to(apiserver, INCIDENTS, method="POST")
    assert "ownerReferences" not in post.data["metadata"]


async def test_a_conflict_with_the_same_incident_adopts_it(
        store: KubeStore, apiserver: km.KubernetesEmulator) -> None:
    first = await store.create_incident(OUTAGE, owner_uid="a9d6-sla-uid")
    # After a restart the same outage is decided again, with a newer timeline entry.
    again = replace(OUTAGE, updates=(replace(OPENED, time=T0 + timedelta(minutes=5)),))
    adopted = await store.create_incident(again, owner_uid="a9d6-sla-uid")
    assert adopted == first
    assert [r.method.value for r in requests_to(apiserver, INCIDENTS)] == ["POST", "POST", "GET"]
    # Each creation first checks that the owner is still the agreement it was decided for.
    assert [r.method.value for r in requests_to(apiserver, AGREEMENTS)] == ["GET", "GET"]
    assert [key[2] for key in apiserver.objects if key[0] == INCIDENTS] == [NAME]


async def test_a_conflict_with_a_different_incident_retries_with_a_suffix(
        store: KubeStore, apiserver: km.KubernetesEmulator) -> None:
    someone_elses = replace(OUTAGE, type=IncidentType.CERTIFICATE, severity=Severity.P4)
    apiserver.objects[INCIDENTS, "payments", NAME] = {
        "apiVersion": "sla.dev/v1alpha1", "kind": "Incident",
        "metadata": {"name": NAME, "namespace": "payments"}, "spec": incident_spec(someone_elses)}
    stored = await store.create_incident(OUTAGE, owner_uid="a9d6-sla-uid")
    assert stored.name == f"{NAME}-2"
    assert stored == replace(OUTAGE, name=f"{NAME}-2", owner_uid="a9d6-sla-uid")
    posts = requests_to(apiserver, INCIDENTS, method="POST")
    assert [p.data["metadata"]["name"] for p in posts] == [NAME, f"{NAME}-2"]
    assert stored_incident(apiserver)["spec"] == incident_spec(someone_elses)  # left alone
    assert stored_incident(apiserver, f"{NAME}-2")["spec"] == incident_spec(OUTAGE)


async def test_a_server_error_on_create_raises_store_error(
        store: KubeStore, apiserver: km.KubernetesEmulator) -> None:
    apiserver["post", INCIDENTS] << km.KubernetesError(500, "InternalError", "etcdserver: timeout")
    with pytest.raises(StoreError, match=rf"creating incident {NAME}: API 500"):
        await store.create_incident(OUTAGE, owner_uid="a9d6-sla-uid")
    assert len(requests_to(apiserver, INCIDENTS, method="POST")) == 1  # no retry under a new name


# ---------------------------------------------------------------- change


async def test_change_incident_appends_to_the_timeline_with_a_json_patch(
        store: KubeStore, apiserver: km.KubernetesEmulator) -> None:
    await store.create_incident(OUTAGE, owner_uid="a9d6-sla-uid")
    # A person adds to the timeline after the operator last read the incident.
    by_person = {"time": "2026-11-26T04:15:00Z", "state": "identified", "message": "bad deploy"}
    apiserver.objects[INCIDENTS, "payments", NAME].patch(
        {"spec": {"updates": [update_dict(OPENED), by_person]}})
    resolved_at = T0 + timedelta(minutes=7)
    resolution = IncidentUpdate(resolved_at, IncidentState.RESOLVED, "recovered")
    change = Change(OUTAGE, {"state": IncidentState.RESOLVED, "resolved_at": resolved_at},
                    (resolution,))

    changed = await store.change_incident(OUTAGE, change)

    (patch,) = requests_to(apiserver, INCIDENTS, method="PATCH")
    assert patch.name == NAME
    assert patch.headers["Content-Type"] == "application/json-patch+json"
    assert patch.data == [
        {"op": "add", "path": "/spec/state", "value": "resolved"},
        {"op": "add", "path": "/spec/resolvedAt", "value": "2026-11-26T04:19:00Z"},
        {"op": "add", "path": "/spec/updates/-", "value": update_dict(resolution)},
    ]
    spec = stored_incident(apiserver)["spec"]
    assert spec["updates"] == [update_dict(OPENED), by_person, update_dict(resolution)]
    assert (changed.state, changed.resolved_at) == (IncidentState.RESOLVED, resolved_at)
    assert len(changed.updates) == 3


async def test_a_raised_severity_is_patched_into_the_spec_and_the_label(
        store: KubeStore, apiserver: km.KubernetesEmulator) -> None:
    p2 = replace(OUTAGE, severity=Severity.P2)
    await store.create_incident(p2, owner_uid=None)
    raised = IncidentUpdate(T0 + timedelta(minutes=2), IncidentState.INVESTIGATING, "raised",
                            Severity.P1)
    changed = await store.change_incident(
        p2, Change(p2, {"severity": Severity.P1, "endpoints": ("api", "webhooks")}, (raised,)))
    (patch,) = requests_to(apiserver, INCIDENTS, method="PATCH")
    assert {"op": "add", "path": "/spec/severity", "value": "P1"} in patch.data
    assert {"op": "add", "path": "/spec/endpoints", "value": ["api", "webhooks"]} in patch.data
    assert {"op": "add", "path": "/metadata/labels/sla.dev~1severity", "value": "P1"} in patch.data
    assert stored_incident(apiserver)["metadata"]["labels"]["sla.dev/severity"] == "P1"
    assert (changed.severity, changed.endpoints) == (Severity.P1, ("api", "webhooks"))


async def test_a_resolution_is_patched_over_a_persons_unreadable_edit(
        store: KubeStore, apiserver: km.KubernetesEmulator) -> None:
    await store.create_incident(OUTAGE, owner_uid=None)
    # Resolved by hand with a typo the CRD cannot catch: resolvedAt before startedAt.
    apiserver.objects[INCIDENTS, "payments", NAME].patch(
        {"spec": {"state": "resolved", "resolvedAt": "2026-11-26T03:00:00Z"}})
    resolved_at = T0 + timedelta(minutes=7)
    change = Change(OUTAGE, {"state": IncidentState.RESOLVED, "resolved_at": resolved_at},
                    (IncidentUpdate(resolved_at, IncidentState.RESOLVED, "recovered"),))

    changed = await store.change_incident(OUTAGE, change)

    assert (changed.state, changed.resolved_at) == (IncidentState.RESOLVED, resolved_at)
    spec = stored_incident(apiserver)["spec"]
    assert (spec["state"], spec["resolvedAt"]) == ("resolved", "2026-11-26T04:19:00Z")


async def test_a_change_beside_an_unreadable_field_goes_on_with_the_operators_version(
        store: KubeStore, apiserver: km.KubernetesEmulator) -> None:
    await store.create_incident(OUTAGE, owner_uid=None)
    apiserver.objects[INCIDENTS, "payments", NAME].patch(
        {"spec": {"startedAt": "2026-11-26T05:00:00Z", "state": "resolved",
                  "resolvedAt": "2026-11-26T04:30:00Z"}})  # a person's two typos
    change = Change(OUTAGE, {"endpoints": ("api", "webhooks")})

    changed = await store.change_incident(OUTAGE, change)
    await store.change_incident(OUTAGE, change)  # again, as after a lost answer

    assert changed == apply_change(OUTAGE, change)
    assert stored_incident(apiserver)["spec"]["endpoints"] == ["api", "webhooks"]


async def test_over_an_unreadable_edit_a_persons_severity_stands_and_entries_are_not_doubled(
        store: KubeStore, apiserver: km.KubernetesEmulator) -> None:
    await store.create_incident(OUTAGE, owner_uid=None)
    apiserver.objects[INCIDENTS, "payments", NAME].patch(
        {"spec": {"severity": "P3", "startedAt": "2026-11-26T05:00:00Z", "state": "resolved",
                  "resolvedAt": "2026-11-26T04:30:00Z"}})
    raised = IncidentUpdate(T0 + timedelta(minutes=2), IncidentState.INVESTIGATING, "raised",
                            Severity.P1)
    escalation = Change(OUTAGE, {"severity": Severity.P2}, (raised,))

    await store.change_incident(OUTAGE, escalation)
    await store.change_incident(OUTAGE, escalation)

    spec = stored_incident(apiserver)["spec"]
    assert spec["severity"] == "P3"
    assert spec["updates"] == [update_dict(OPENED), update_dict(raised)]


async def test_a_change_decided_on_a_copy_a_person_changed_since_is_refused(
        store: KubeStore, apiserver: km.KubernetesEmulator) -> None:
    await store.create_incident(OUTAGE, owner_uid=None)
    apiserver.objects[INCIDENTS, "payments", NAME].patch({"spec": {"severity": "P3"}})
    with pytest.raises(StoreError, match="changed since it was read"):
        await store.change_incident(OUTAGE, Change(OUTAGE, {"state": IncidentState.RESOLVED}))
    assert requests_to(apiserver, INCIDENTS, method="PATCH") == []


async def test_a_failed_change_raises_store_error(
        store: KubeStore, apiserver: km.KubernetesEmulator) -> None:
    await store.create_incident(OUTAGE, owner_uid=None)
    apiserver["patch", INCIDENTS] << km.KubernetesError(503, "ServiceUnavailable", "try later")
    with pytest.raises(StoreError, match="API 503"):
        await store.change_incident(OUTAGE, Change(OUTAGE, {"state": IncidentState.MONITORING}))


# ---------------------------------------------------------------- status


async def test_write_status_sends_a_merge_patch_to_the_status_subresource(
        store: KubeStore, apiserver: km.KubernetesEmulator) -> None:
    await store.create_incident(OUTAGE, owner_uid=None)
    status = {"durationSeconds": 412, "responseDue": "2026-11-26T04:27:00Z",
              "responseBreached": False}
    await store.write_status(Kind.INCIDENT, ("payments", NAME), status)
    (patch,) = requests_to(apiserver, INCIDENTS, method="PATCH", subresource="status")
    assert patch.name == NAME
    assert patch.headers["Content-Type"] == "application/merge-patch+json"
    assert patch.data == {"status": status}
    assert stored_incident(apiserver)["status"] == status
    assert requests_to(apiserver, INCIDENTS, method="PATCH") == []  # nothing sent to the main resource


async def test_a_status_for_a_missing_object_raises_store_error(store: KubeStore) -> None:
    with pytest.raises(StoreError, match="API 404"):
        await store.write_status(Kind.AGREEMENT, ("payments", "gone"), {"state": "Up"})


async def test_no_incident_is_created_for_a_deleted_agreement(
        store: KubeStore, apiserver: km.KubernetesEmulator) -> None:
    del apiserver.objects[AGREEMENTS, "payments", "payments-api"]
    with pytest.raises(StoreError) as caught:
        await store.create_incident(OUTAGE, owner_uid="a9d6-sla-uid")
    assert caught.value.gone
    assert not requests_to(apiserver, INCIDENTS, method="POST")


async def test_no_incident_is_created_for_an_agreement_created_again_under_its_name(
        store: KubeStore, apiserver: km.KubernetesEmulator) -> None:
    with pytest.raises(StoreError, match="payments-api was deleted") as caught:
        await store.create_incident(OUTAGE, owner_uid="uid-of-the-deleted-one")
    assert caught.value.gone
    assert not requests_to(apiserver, INCIDENTS, method="POST")


async def test_a_status_write_to_a_deleted_object_says_it_is_gone(store: KubeStore) -> None:
    with pytest.raises(StoreError) as caught:
        await store.write_status(Kind.AGREEMENT, ("payments", "deleted"), {"state": "Up"})
    assert caught.value.gone


# ---------------------------------------------------------------- secrets


@pytest.fixture
def probe_auth(apiserver: km.KubernetesEmulator) -> None:
    apiserver.objects[SECRETS, "payments", "probe-auth"] = {
        "apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": "probe-auth", "namespace": "payments",
                     "labels": {"sla.dev/probe-credential": "true"}},
        "data": {"token": base64.b64encode(b"Bearer s3cr3t-t0ken").decode(),
                 "other": base64.b64encode(b"hunter2").decode()}}


@pytest.mark.usefixtures("probe_auth")
async def test_read_secret_decodes_the_value(store: KubeStore) -> None:
    assert await store.read_secret("payments", "probe-auth", "token") == "Bearer s3cr3t-t0ken"


@pytest.mark.usefixtures("probe_auth")
async def test_a_missing_key_is_refused_by_name_without_any_secret_value(store: KubeStore) -> None:
    with pytest.raises(SecretRefused) as caught:
        await store.read_secret("payments", "probe-auth", "password")
    message = str(caught.value)
    assert "probe-auth" in message and "password" in message
    for leaked in ("s3cr3t", "hunter2", "QmVhcmVy", "aHVudGVyMg"):
        assert leaked not in message


async def test_a_missing_secret_is_refused_as_missing(store: KubeStore) -> None:
    with pytest.raises(SecretRefused, match=r"^no secret probe-auth in namespace payments$"):
        await store.read_secret("payments", "probe-auth", "token")


async def test_a_forbidden_secret_is_refused_naming_the_missing_permission(
        store: KubeStore, apiserver: km.KubernetesEmulator) -> None:
    apiserver["get", SECRETS] << km.KubernetesError(
        403, "Forbidden", 'secrets "probe-auth" is forbidden: User "sla" cannot get resource')
    with pytest.raises(SecretRefused, match="forbidden: the operator may not read secret "
                                            "probe-auth in namespace payments"):
        await store.read_secret("payments", "probe-auth", "token")


async def test_a_secret_not_labelled_for_probes_is_refused_without_its_value(
        store: KubeStore, apiserver: km.KubernetesEmulator) -> None:
    apiserver.objects[SECRETS, "payments", "db-password"] = {
        "apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": "db-password", "namespace": "payments"},
        "data": {"password": base64.b64encode(b"hunter2").decode()}}
    with pytest.raises(SecretRefused) as caught:
        await store.read_secret("payments", "db-password", "password")
    message = str(caught.value)
    assert "sla.dev/probe-credential=true" in message and "hunter2" not in message


async def test_a_standby_store_writes_nothing_and_says_why(
        api_client: Any, apiserver: km.KubernetesEmulator) -> None:
    standby = KubeStore(api_client, switch=WriteSwitch(active=False))
    with pytest.raises(StoreError, match=r"not the Lease holder now: incident .* is left"):
        await standby.create_incident(OUTAGE, owner_uid="a9d6-sla-uid")
    with pytest.raises(StoreError, match="not the Lease holder now: the status of ServiceLevelAgreement"):
        await standby.write_status(Kind.AGREEMENT, ("payments", "payments-api"), {"state": "Up"})
    await standby.record_event(Kind.AGREEMENT, ("payments", "payments-api"), "X", "y")
    assert not [r for r in requests_to(apiserver, INCIDENTS) if r.method.value != "GET"]
    assert not requests_to(apiserver, EVENTS)


async def test_a_write_queued_behind_slow_ones_is_not_sent_once_the_deadline_has_passed(
        api_client: Any, apiserver: km.KubernetesEmulator) -> None:
    """The fence is checked when the request leaves, not when it was queued: with every worker
    thread held by slow writes, a status write waits; the Lease's deadline passes meanwhile."""
    now = [100.0]
    switch = WriteSwitch(active=False, monotonic=lambda: now[0])
    switch.renewed(started=100.0, renew_deadline=10.0)
    switch.lead()
    store = KubeStore(api_client, switch=switch)
    release = threading.Event()
    slow = [asyncio.create_task(store.call(release.wait)) for _ in range(8)]  # the whole pool
    await asyncio.sleep(0.05)
    queued = asyncio.create_task(
        store.write_status(Kind.AGREEMENT, ("payments", "payments-api"), {"state": "Down"}))
    await asyncio.sleep(0.05)
    now[0] = 110.0  # the renew deadline passes while the write waits for a thread
    release.set()
    await asyncio.gather(*slow)
    with pytest.raises(Fenced):
        await queued
    assert not requests_to(apiserver, AGREEMENTS, method="PATCH", subresource="status")
    now[0] = 109.0  # before the deadline the same write goes out
    await store.write_status(Kind.AGREEMENT, ("payments", "payments-api"), {"state": "Down"})
    assert requests_to(apiserver, AGREEMENTS, method="PATCH", subresource="status")


@pytest.mark.parametrize("with_cause", [True, False])
async def test_a_create_refused_in_a_terminating_namespace_says_it_is_gone_not_forbidden(
        store: KubeStore, apiserver: km.KubernetesEmulator, caplog: pytest.LogCaptureFixture,
        with_cause: bool) -> None:
    """While a namespace is deleted, the agreement it holds may still be evaluated; the API
    server's 403 then is no missing permission (no advice to change the role, no warning):
    the agreement is as good as gone."""
    cause = {"causes": [{"reason": "NamespaceTerminating", "field": "metadata.namespace",
                         "message": "namespace payments is being terminated"}]}
    apiserver["post", INCIDENTS] << km.KubernetesError(
        403, "Forbidden", f'incidents.sla.dev "{NAME}" is forbidden: unable to create new content '
        "in namespace payments because it is being terminated", cause if with_cause else None)
    with pytest.raises(StoreError, match=rf"creating incident {NAME}: namespace payments is "
                                         "being deleted") as caught:
        await store.create_incident(OUTAGE, owner_uid="a9d6-sla-uid")
    assert caught.value.gone
    assert "role" not in str(caught.value)
    assert not [r for r in caplog.records if r.levelname == "WARNING"]
