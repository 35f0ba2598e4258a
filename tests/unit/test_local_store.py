"""The local Store keeps the Store contract in files, and never loses what a person wrote."""

from __future__ import annotations

import asyncio
import os
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from pytest_mock import MockerFixture

from sla_operator.domain.errors import SecretRefused
from sla_operator.domain.incidents import Change
from sla_operator.domain.model import (
    ExclusionReason,
    Incident,
    IncidentState,
    IncidentType,
    IncidentUpdate,
    Severity,
)
from sla_operator.domain.records import incident_from_manifest
from sla_operator.local import store as store_module
from sla_operator.local.files import dump_yaml, read_yaml, write_yaml
from sla_operator.local.store import LocalStore
from sla_operator.store.base import Kind, StoreError

NOW = datetime(2026, 11, 26, 4, 12, 3, tzinfo=UTC)


def outage(name: str = "shop-20261126-0412", started: datetime = NOW) -> Incident:
    return Incident(namespace="demo", name=name, agreement="shop", type=IncidentType.OUTAGE,
                    severity=Severity.P2, title="Shop is down: api failing", started_at=started,
                    endpoints=("api",),
                    updates=(IncidentUpdate(started, IncidentState.INVESTIGATING, "api failing",
                                            Severity.P2),))


@pytest.fixture
def store(tmp_path: Path) -> LocalStore:
    return LocalStore(tmp_path, clock=lambda: NOW)


async def test_a_new_incident_is_a_full_manifest_in_its_namespace_folder(store: LocalStore) -> None:
    stored = await store.create_incident(outage(), owner_uid="uid-of-shop")
    body = read_yaml(store.root / "incidents" / "demo" / "shop-20261126-0412.yaml")
    assert body["apiVersion"] == "sla.dev/v1alpha1" and body["kind"] == "Incident"
    assert body["metadata"]["labels"]["sla.dev/agreement"] == "shop"
    assert body["metadata"]["ownerReferences"][0]["uid"] == "uid-of-shop"
    assert body["spec"]["startedAt"] == "2026-11-26T04:12:03Z"
    assert stored.name == "shop-20261126-0412" and stored.uid == body["metadata"]["uid"]


async def test_creating_the_same_incident_twice_returns_the_one_on_disk(store: LocalStore) -> None:
    first = await store.create_incident(outage(), None)
    again = await store.create_incident(outage(), None)
    assert again == first
    assert len(list((store.root / "incidents" / "demo").iterdir())) == 1


async def test_a_different_incident_with_a_clashing_name_gets_a_suffix(store: LocalStore) -> None:
    await store.create_incident(outage(), None)
    other = await store.create_incident(outage(started=NOW + timedelta(seconds=20)), None)
    assert other.name == "shop-20261126-0412-2"


async def test_a_change_keeps_what_a_person_wrote_meanwhile(store: LocalStore) -> None:
    engine_copy = await store.create_incident(outage(), None)
    path = store.incident_path(engine_copy.key)
    body = read_yaml(path)
    body["spec"]["acknowledgedAt"] = "2026-11-26T04:20:00Z"
    body["spec"]["acknowledgedBy"] = "alice"
    body["spec"]["exclusion"] = {"reason": "blocked", "note": "firewall change"}
    body["spec"]["updates"].append({"time": "2026-11-26T04:21:00Z", "state": "identified",
                                    "message": "a firewall rule blocks the API"})
    body["spec"]["runbook"] = "kept even though the operator does not know it"
    write_yaml(path, body)

    # The engine decides again on the copy its folder watch reloads.
    reloaded = incident_from_manifest(read_yaml(path))
    resolved_at = NOW + timedelta(minutes=10)
    change = Change(reloaded, {"state": IncidentState.RESOLVED, "resolved_at": resolved_at},
                    (IncidentUpdate(resolved_at, IncidentState.RESOLVED, "recovered"),))
    result = await store.change_incident(reloaded, change)

    assert result.acknowledged_by == "alice"
    assert result.exclusion is not None and result.exclusion.reason is ExclusionReason.BLOCKED
    assert [u.message for u in result.updates] == ["api failing", "a firewall rule blocks the API",
                                                   "recovered"]
    assert result.resolved_at == resolved_at and result.state is IncidentState.RESOLVED
    assert read_yaml(path)["spec"]["runbook"] == "kept even though the operator does not know it"


async def test_a_raised_severity_also_moves_the_label(store: LocalStore) -> None:
    incident = await store.create_incident(outage(), None)
    await store.change_incident(incident, Change(incident, {"severity": Severity.P1}))
    body = read_yaml(store.incident_path(incident.key))
    assert body["spec"]["severity"] == "P1"
    assert body["metadata"]["labels"]["sla.dev/severity"] == "P1"


async def test_changing_an_incident_whose_file_was_deleted_fails_for_a_retry(store: LocalStore) -> None:
    incident = await store.create_incident(outage(), None)
    store.incident_path(incident.key).unlink()
    with pytest.raises(StoreError, match="incident file is gone"):
        await store.change_incident(incident, Change(incident, {"severity": Severity.P1}))


async def test_a_resolution_is_written_over_a_persons_unreadable_edit(store: LocalStore) -> None:
    incident = await store.create_incident(outage(), None)
    path = store.incident_path(incident.key)
    body = read_yaml(path)
    body["spec"].update(state="resolved", resolvedAt="2026-11-26T03:00:00Z")  # before the start
    write_yaml(path, body)
    recovered = NOW + timedelta(minutes=7)
    resolution = Change(incident, {"state": IncidentState.RESOLVED, "resolved_at": recovered},
                        (IncidentUpdate(recovered, IncidentState.RESOLVED, "recovered"),))

    result = await store.change_incident(incident, resolution)

    assert (result.state, result.resolved_at) == (IncidentState.RESOLVED, recovered)
    on_disk = read_yaml(path)["spec"]
    assert (on_disk["state"], on_disk["resolvedAt"]) == ("resolved", "2026-11-26T04:19:03Z")
    assert [u["message"] for u in on_disk["updates"]] == ["api failing", "recovered"]
    assert incident_from_manifest(read_yaml(path)) == result  # readable again


async def test_over_an_unreadable_edit_a_persons_severity_stands_and_nothing_is_added_twice(
        store: LocalStore) -> None:
    incident = await store.create_incident(outage(), None)
    path = store.incident_path(incident.key)
    body = read_yaml(path)
    body["spec"].update(severity="P3", state="resolved", startedAt="2026-11-26T05:00:00Z",
                        resolvedAt="2026-11-26T04:30:00Z")  # resolved, with a typo
    write_yaml(path, body)
    raised = IncidentUpdate(NOW + timedelta(minutes=2), IncidentState.INVESTIGATING, "raised",
                            Severity.P1)
    escalation = Change(incident, {"severity": Severity.P1, "endpoints": ("api", "web")}, (raised,))

    await store.change_incident(incident, escalation)
    await store.change_incident(incident, escalation)  # again: the first answer was lost

    on_disk = read_yaml(path)
    assert on_disk["spec"]["severity"] == "P3" and on_disk["spec"]["endpoints"] == ["api", "web"]
    assert on_disk["metadata"]["labels"]["sla.dev/severity"] == "P2"
    assert [u["message"] for u in on_disk["spec"]["updates"]] == ["api failing", "raised"]


async def test_a_change_beside_an_unreadable_field_keeps_it_and_goes_on_with_its_version(
        store: LocalStore) -> None:
    incident = await store.create_incident(outage(), None)
    path = store.incident_path(incident.key)
    body = read_yaml(path)
    body["spec"]["severity"] = "P9"
    write_yaml(path, body)

    result = await store.change_incident(incident, Change(incident, {"endpoints": ("api", "web")}))

    assert result.endpoints == ("api", "web") and result.severity is Severity.P2
    on_disk = read_yaml(path)["spec"]
    assert (on_disk["severity"], on_disk["endpoints"]) == ("P9", ["api", "web"])


async def test_a_status_never_recreates_an_incident_file_a_person_deletes_meanwhile(
        store: LocalStore, mocker: MockerFixture) -> None:
    incident = await store.create_incident(outage(), None)
    path = store.incident_path(incident.key)
    real_version = store_module.file_version

    def deleted_just_before(target: Path) -> Any:
        # After write_status chose the file, before it looks at it (the store wrote it last,
        # so it checks the version instead of reading it back).
        target.unlink(missing_ok=True)
        return real_version(target)

    mocker.patch.object(store_module, "file_version", side_effect=deleted_just_before)
    with pytest.raises(StoreError, match="incident file is gone"):
        await store.write_status(Kind.INCIDENT, incident.key, {"durationSeconds": 5})
    assert not path.exists()


async def test_an_emptied_incident_file_is_left_as_it_is(store: LocalStore) -> None:
    incident = await store.create_incident(outage(), None)
    path = store.incident_path(incident.key)
    path.write_text("")
    with pytest.raises(StoreError, match="no incident spec"):
        await store.write_status(Kind.INCIDENT, incident.key, {"durationSeconds": 5})
    assert path.read_text() == ""


async def test_a_save_in_progress_is_waited_for_not_written_over(
        store: LocalStore, monkeypatch: pytest.MonkeyPatch) -> None:
    # A generous quiet time: a stalled test process must not pass for a finished save.
    monkeypatch.setattr(store_module, "QUIET_SECONDS", 1.0)
    monkeypatch.setattr(store_module, "QUIET_WAIT_LIMIT", 30.0)
    incident = await store.create_incident(outage(), None)
    path = store.incident_path(incident.key)
    saved = read_yaml(path)
    saved["spec"]["acknowledgedBy"] = "alice"
    with open(path, "w", encoding="utf-8") as editor:  # an editor saving in place: truncate...
        writing = asyncio.create_task(store.write_status(Kind.INCIDENT, incident.key,
                                                         {"durationSeconds": 5}))
        await asyncio.sleep(0.03)
        editor.write(dump_yaml(saved))  # ...then the new content, a moment later
    await writing
    on_disk = read_yaml(path)
    assert on_disk["spec"]["acknowledgedBy"] == "alice"
    assert on_disk["status"]["durationSeconds"] == 5


async def test_status_writes_merge_into_the_status_file(store: LocalStore) -> None:
    key = ("demo", "shop")
    await store.write_status(Kind.AGREEMENT, key, {"state": "Up", "currentPeriod": {"a": 1, "b": 2}})
    await store.write_status(Kind.AGREEMENT, key, {"state": "Down", "currentPeriod": {"b": None}})
    body = read_yaml(store.root / "status" / "servicelevelagreements" / "demo" / "shop.yaml")
    assert body["kind"] == "ServiceLevelAgreement" and body["metadata"] == {"name": "shop",
                                                                           "namespace": "demo"}
    assert body["status"] == {"state": "Down", "currentPeriod": {"a": 1}}
    assert store.read_status(Kind.AGREEMENT, key) == body["status"]


async def test_an_incident_status_goes_into_its_own_file(store: LocalStore) -> None:
    incident = await store.create_incident(outage(), None)
    await store.write_status(Kind.INCIDENT, incident.key, {"durationSeconds": 42})
    body = read_yaml(store.incident_path(incident.key))
    assert body["status"] == {"durationSeconds": 42} and body["spec"]["agreement"] == "shop"


async def test_the_status_of_an_incident_filed_as_a_manifest_goes_to_the_status_folder(
        store: LocalStore) -> None:
    await store.write_status(Kind.INCIDENT, ("demo", "filed-by-hand"), {"durationSeconds": 7})
    assert not store.incident_path(("demo", "filed-by-hand")).exists()
    assert store.read_status(Kind.INCIDENT, ("demo", "filed-by-hand")) == {"durationSeconds": 7}


async def test_state_changes_are_logged_one_line_each(store: LocalStore,
                                                      caplog: pytest.LogCaptureFixture) -> None:
    key = ("demo", "shop")
    endpoint = {"name": "api", "state": "Up", "message": "200 OK"}
    caplog.set_level("INFO", "sla_operator.local")
    await store.write_status(Kind.AGREEMENT, key, {"state": "Up", "endpoints": [endpoint]})
    await store.write_status(Kind.AGREEMENT, key, {"state": "Up", "endpoints": [endpoint]})
    await store.write_status(Kind.AGREEMENT, key, {"state": "Down", "message": "Down: api: 503",
                                                   "endpoints": [{**endpoint, "state": "Down",
                                                                  "message": "status 503"}]})
    assert [r.getMessage() for r in caplog.records] == [
        "agreement demo/shop: new -> Up",
        "agreement demo/shop: Up -> Down (Down: api: 503)",
        "endpoint demo/shop api: Up -> Down (status 503)",
    ]


def test_an_unreadable_status_file_starts_afresh(store: LocalStore) -> None:
    path = store.status_path(Kind.AGREEMENT, ("demo", "shop"))
    path.parent.mkdir(parents=True)
    path.write_text("status: [unclosed\n")
    assert store.read_status(Kind.AGREEMENT, ("demo", "shop")) == {}


def test_an_agreement_keeps_its_first_seen_time_across_restarts(tmp_path: Path) -> None:
    first, uid = LocalStore(tmp_path, clock=lambda: NOW).first_seen(("demo", "shop"))
    later = LocalStore(tmp_path, clock=lambda: NOW + timedelta(days=3))
    assert later.first_seen(("demo", "shop")) == (first, uid)
    assert later.first_seen(("demo", "other"))[0] == NOW + timedelta(days=3)
    assert first == NOW and uid


async def test_secrets_come_from_secret_manifests_and_missing_ones_say_so(store: LocalStore) -> None:
    store.secrets[("demo", "auth")] = {"token": "Bearer x"}
    assert await store.read_secret("demo", "auth", "token") == "Bearer x"
    with pytest.raises(SecretRefused, match="has no key 'user'"):
        await store.read_secret("demo", "auth", "user")
    with pytest.raises(SecretRefused, match="no Secret manifest demo/other"):
        await store.read_secret("demo", "other", "token")


async def test_a_file_dated_in_the_future_is_not_taken_for_a_save_in_progress(store: LocalStore) -> None:
    incident = await store.create_incident(outage(), None)
    path = store.incident_path(incident.key)
    write_yaml(path, read_yaml(path))  # someone else's write...
    ahead = time.time() + 3600
    os.utime(path, (ahead, ahead))  # ...dated an hour ahead (copied from a machine whose clock runs fast)
    await store.write_status(Kind.INCIDENT, incident.key, {"durationSeconds": 5})
    assert read_yaml(path)["status"]["durationSeconds"] == 5


async def test_endpoint_changes_are_logged_when_endpoints_come_and_go_or_are_hand_edited(
        store: LocalStore, caplog: pytest.LogCaptureFixture) -> None:
    key = ("demo", "shop")
    api, web = {"name": "api", "state": "Up"}, {"name": "web", "state": "Up"}
    caplog.set_level("INFO", "sla_operator.local")
    await store.write_status(Kind.AGREEMENT, key, {"state": "Up", "endpoints": [api, web]})
    await store.write_status(Kind.AGREEMENT, key, {"state": "Up", "endpoints": [
        {"name": "new", "state": "Down"}, {**web, "state": "Down"}]})
    await store.write_status(Kind.AGREEMENT, key, {"state": "Up", "endpoints": [
        {"state": "Up"}, {"name": "web", "state": "Up"}]})  # an entry without a name
    assert [r.getMessage() for r in caplog.records] == [
        "agreement demo/shop: new -> Up",
        "endpoint demo/shop web: Up -> Down",
        "endpoint demo/shop web: Down -> Up",
    ]


async def test_an_endpoint_found_up_by_its_first_probe_is_logged_only_at_debug_level(
        store: LocalStore, caplog: pytest.LogCaptureFixture) -> None:
    key = ("demo", "shop")
    caplog.set_level("DEBUG", "sla_operator.local")
    await store.write_status(Kind.AGREEMENT, key, {"state": "Unknown", "endpoints": [
        {"name": "api", "state": "Unknown"}, {"name": "web", "state": "Unknown"}]})
    await store.write_status(Kind.AGREEMENT, key, {"state": "Down", "endpoints": [
        {"name": "api", "state": "Up"}, {"name": "web", "state": "Down"}]})
    assert [(r.levelname, r.getMessage()) for r in caplog.records][1:] == [
        ("INFO", "agreement demo/shop: Unknown -> Down"),
        ("DEBUG", "endpoint demo/shop api: Unknown -> Up"),
        ("INFO", "endpoint demo/shop web: Unknown -> Down"),
    ]
