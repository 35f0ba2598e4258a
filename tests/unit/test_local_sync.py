"""The folders feed the engine as a cluster's watch would: upserts, removals, clear rejections."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
from local_folders import SHOP, WINDOW, Folders

from sla_operator.domain.fields import parse_time
from sla_operator.domain.incidents import Change
from sla_operator.domain.model import Severity
from sla_operator.local.files import read_yaml, write_yaml
from sla_operator.store.base import Kind

INCIDENT: dict[str, Any] = {
    "apiVersion": "sla.dev/v1alpha1", "kind": "Incident",
    "metadata": {"name": "shop-20261126-0412", "namespace": "demo",
                 "labels": {"sla.dev/agreement": "shop"}},
    "spec": {"agreement": "shop", "origin": "automatic", "type": "outage", "severity": "P2",
             "title": "Shop is down", "startedAt": "2026-11-26T04:12:03Z", "state": "investigating",
             "impact": "downtime", "endpoints": ["api"], "updates": []},
    "status": {"durationSeconds": 5},
}
SHOP_KEY = ("demo", "shop")




@pytest.fixture
def folders(tmp_path: Path) -> Folders:
    return Folders(tmp_path)


def changed(document: dict[str, Any], **spec: Any) -> dict[str, Any]:
    result = copy.deepcopy(document)
    result["spec"].update(spec)
    return result


async def test_manifests_and_state_incidents_all_reach_the_engine(folders: Folders) -> None:
    folders.put("shop.yaml", SHOP, WINDOW)
    write_yaml(folders.store.incident_path(("demo", "shop-20261126-0412")), INCIDENT)
    await folders.settle()
    assert set(folders.engine.agreements) == {SHOP_KEY}
    assert set(folders.engine.maintenance) == {("demo", "weekly")}
    assert set(folders.engine.incidents) == {("demo", "shop-20261126-0412")}


async def test_an_agreement_keeps_its_creation_time_across_restarts(folders: Folders) -> None:
    folders.put("shop.yaml", SHOP)
    await folders.settle()
    created = folders.engine.agreements[SHOP_KEY].agreement.created_at
    registry = read_yaml(folders.state / "agreements.yaml")
    assert created == parse_time(registry["agreements"]["demo/shop"]["firstSeen"], "firstSeen")

    again = folders.restart()
    await again.settle()
    assert again.engine.agreements[SHOP_KEY].agreement.created_at == created


async def test_a_restart_takes_back_the_frozen_history_from_the_status_file(folders: Folders) -> None:
    folders.put("shop.yaml", SHOP)
    entry = {"period": "2026-10", "availability": "99.9000", "objective": "99.5", "met": True}
    await folders.store.write_status(Kind.AGREEMENT, SHOP_KEY, {"history": [entry]})
    await folders.settle()
    assert folders.engine.agreements[SHOP_KEY].history == {"2026-10": entry}


async def test_a_bad_agreement_is_reported_with_file_and_field_and_the_others_run(
        folders: Folders, caplog: pytest.LogCaptureFixture) -> None:
    bad = changed(SHOP, endpoints=[{"name": "api", "interval": "2s", "timeout": "3s",
                                    "http": {"url": "http://127.0.0.1:9/"}}])
    bad["metadata"]["name"] = "bad"
    bad_file = folders.put("bad.yaml", bad)
    folders.put("shop.yaml", SHOP)
    await folders.settle()

    assert set(folders.engine.agreements) == {SHOP_KEY}
    messages = [r.getMessage() for r in caplog.records]
    assert any(m.startswith(f"{bad_file}: spec.endpoints[0].timeout: must be longer than 0 and "
                            "shorter than the interval") for m in messages), messages
    status = folders.store.read_status(Kind.AGREEMENT, ("demo", "bad"))
    assert status["state"] == "Unknown"
    ready = next(c for c in status["conditions"] if c["type"] == "Ready")
    assert ready["status"] == "False" and ready["reason"] == "InvalidSpec"
    assert "spec.endpoints[0].timeout" in ready["message"]


async def test_a_bad_edit_keeps_the_last_good_version_probing(folders: Folders) -> None:
    folders.put("shop.yaml", SHOP)
    await folders.settle()
    folders.put("shop.yaml", changed(SHOP, objective="100"))
    await folders.settle()
    runtime = folders.engine.agreements[SHOP_KEY]
    assert runtime.rejection is not None and "spec.objective" in runtime.rejection
    assert str(runtime.agreement.objective) == "99.5"


async def test_a_yaml_syntax_error_keeps_what_the_file_held_before(
        folders: Folders, caplog: pytest.LogCaptureFixture) -> None:
    path = folders.put("shop.yaml", SHOP)
    await folders.settle()
    path.write_text(path.read_text() + "  oops: [\n")
    await folders.settle()
    assert set(folders.engine.agreements) == {SHOP_KEY}
    assert any(f"{path}: line" in r.getMessage() and "previous content stays in effect" in r.getMessage()
               for r in caplog.records)


async def test_a_removed_file_removes_its_objects(folders: Folders) -> None:
    path = folders.put("shop.yaml", SHOP, WINDOW)
    await folders.settle()
    path.unlink()
    await folders.settle()
    assert folders.engine.agreements == {} and folders.engine.maintenance == {}


async def test_an_object_moved_to_another_file_stays(folders: Folders) -> None:
    first = folders.put("a.yaml", SHOP)
    await folders.settle()
    runtime = folders.engine.agreements[SHOP_KEY]
    first.unlink()
    folders.put("b.yaml", SHOP)
    await folders.settle()
    assert folders.engine.agreements[SHOP_KEY] is runtime


async def test_a_second_definition_of_an_object_is_ignored_with_one_message(
        folders: Folders, caplog: pytest.LogCaptureFixture) -> None:
    folders.put("a.yaml", SHOP)
    await folders.settle()
    copy_file = folders.put("b.yaml", changed(SHOP, objective="90"))
    await folders.settle()
    folders.put("c.yaml", WINDOW)
    await folders.settle()
    assert str(folders.engine.agreements[SHOP_KEY].agreement.objective) == "99.5"
    clashes = [r for r in caplog.records if "already defined" in r.getMessage()]
    assert len(clashes) == 1 and clashes[0].getMessage().startswith(str(copy_file))


async def test_a_persons_edit_of_an_incident_file_reaches_the_engine(folders: Folders) -> None:
    path = folders.store.incident_path(("demo", "shop-20261126-0412"))
    write_yaml(path, INCIDENT)
    await folders.settle()
    edited = changed(INCIDENT, acknowledgedAt="2026-11-26T04:20:00Z", acknowledgedBy="bob")
    write_yaml(path, edited)
    await folders.settle()
    assert folders.engine.incidents[("demo", "shop-20261126-0412")].acknowledged_by == "bob"


async def test_the_engines_own_writes_are_not_applied_again(folders: Folders,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    key = ("demo", "shop-20261126-0412")
    write_yaml(folders.store.incident_path(key), INCIDENT)
    await folders.settle()
    upserts: list[object] = []
    monkeypatch.setattr(folders.engine, "upsert_incident", upserts.append)
    incident = folders.engine.incidents[key]
    # What the engine does: change the incident, keep what the store returns, write its status.
    folders.engine.incidents[key] = await folders.store.change_incident(
        incident, Change(incident, {"severity": Severity.P1}))
    await folders.store.write_status(Kind.INCIDENT, key, {"durationSeconds": 99})
    await folders.settle()
    assert upserts == []


async def test_a_rejected_edit_of_an_incident_keeps_the_last_valid_version_counted(
        folders: Folders, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch) -> None:
    key = ("demo", "shop-20261126-0412")
    path = folders.store.incident_path(key)
    write_yaml(path, changed(INCIDENT, state="resolved", resolvedAt="2026-11-26T04:30:00Z"))
    await folders.settle()
    valid = folders.engine.incidents[key]
    removals: list[object] = []
    monkeypatch.setattr(folders.engine, "remove_incident", removals.append)
    write_yaml(path, changed(INCIDENT, state="resolved", resolvedAt="2026-11-26T04:30:00Z",
                             startedAt="yesterday"))
    await folders.settle()
    assert folders.engine.incidents == {key: valid} and removals == []
    messages = [r.getMessage() for r in caplog.records]
    assert any(m.startswith(f"{path}: spec.startedAt:") for m in messages), messages
    assert f"{path}: Incident demo/{key[1]} is invalid, the previous version stays in effect" in messages


async def test_an_incident_never_valid_is_not_counted(folders: Folders,
                                                      caplog: pytest.LogCaptureFixture) -> None:
    path = folders.store.incident_path(("demo", "shop-20261126-0412"))
    write_yaml(path, changed(INCIDENT, startedAt="yesterday"))
    await folders.settle()
    assert folders.engine.incidents == {}
    assert f"{path}: Incident demo/shop-20261126-0412 is invalid, not counted" in [
        r.getMessage() for r in caplog.records]


async def test_an_unquoted_acknowledgement_time_is_taken_as_the_cluster_takes_it(
        folders: Folders, caplog: pytest.LogCaptureFixture) -> None:
    key = ("demo", "shop-20261126-0412")
    path = folders.store.incident_path(key)
    write_yaml(path, INCIDENT)
    await folders.settle()
    typed = "  acknowledgedAt: 2026-11-26T04:20:00Z\n"
    text = path.read_text().replace("  updates: []\n", "  updates: []\n" + typed)
    assert "acknowledgedAt: 2026-11-26T04:20:00Z\n" in text
    path.write_text(text)
    await folders.settle()
    assert folders.engine.incidents[key].acknowledged_at == parse_time("2026-11-26T04:20:00Z", "t")
    assert [r.getMessage() for r in caplog.records if r.levelname == "ERROR"] == []


async def test_a_bad_edit_of_a_window_keeps_the_last_valid_one_and_marks_it_not_ready(
        folders: Folders) -> None:
    folders.put("w.yaml", WINDOW)
    await folders.settle()
    valid = folders.engine.maintenance[("demo", "weekly")]
    folders.put("w.yaml", changed(WINDOW, timeZone="Mars/Olympus"))
    await folders.settle()
    assert folders.engine.maintenance == {("demo", "weekly"): valid}
    await folders.engine.evaluate_round()
    status = folders.store.read_status(Kind.MAINTENANCE, ("demo", "weekly"))
    ready = next(c for c in status["conditions"] if c["type"] == "Ready")
    assert ready["reason"] == "InvalidSpec" and "spec.timeZone" in ready["message"]


async def test_a_window_never_valid_is_not_loaded_and_marked_not_ready(folders: Folders) -> None:
    folders.put("w.yaml", changed(WINDOW, timeZone="Mars/Olympus"))
    await folders.settle()
    assert folders.engine.maintenance == {}
    status = folders.store.read_status(Kind.MAINTENANCE, ("demo", "weekly"))
    assert status["conditions"][0]["reason"] == "InvalidSpec"


async def test_secret_manifests_feed_probe_headers(folders: Folders) -> None:
    folders.put("secret.yaml", {"apiVersion": "v1", "kind": "Secret",
                                "metadata": {"name": "auth", "namespace": "demo"},
                                "stringData": {"token": "Bearer t"}})
    await folders.settle()
    assert await folders.store.read_secret("demo", "auth", "token") == "Bearer t"


async def test_each_spec_change_raises_the_generation(folders: Folders) -> None:
    folders.put("shop.yaml", SHOP)
    await folders.settle()
    folders.put("shop.yaml", changed(SHOP, objective="99.9"))
    await folders.settle()
    labelled = copy.deepcopy(changed(SHOP, objective="99.9"))
    labelled["metadata"]["labels"]["tier"] = "gold"
    folders.put("shop.yaml", labelled)
    await folders.settle()
    assert folders.engine.agreements[SHOP_KEY].agreement.generation == 2
