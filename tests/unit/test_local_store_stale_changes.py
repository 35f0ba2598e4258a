"""An incident change decided on a copy a person has edited since is refused, never written."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from pytest_mock import MockerFixture

from sla_operator.domain.incidents import Change
from sla_operator.domain.model import (
    Incident,
    IncidentState,
    IncidentType,
    IncidentUpdate,
    Severity,
)
from sla_operator.domain.records import incident_from_manifest
from sla_operator.local import store as store_module
from sla_operator.local.files import read_yaml, write_yaml
from sla_operator.local.store import LocalStore
from sla_operator.store.base import Kind, StoreError

NOW = datetime(2026, 11, 26, 4, 12, 3, tzinfo=UTC)
RESOLVED_AT = NOW + timedelta(minutes=10)


def outage() -> Incident:
    return Incident(namespace="demo", name="shop-20261126-0412", agreement="shop",
                    type=IncidentType.OUTAGE, severity=Severity.P1, title="Shop is down",
                    started_at=NOW, endpoints=("api",),
                    updates=(IncidentUpdate(NOW, IncidentState.INVESTIGATING, "api failing"),))


def resolution(incident: Incident) -> Change:
    return Change(incident, {"state": IncidentState.RESOLVED, "resolved_at": RESOLVED_AT},
                  (IncidentUpdate(RESOLVED_AT, IncidentState.RESOLVED, "recovered"),))


@pytest.fixture
def store(tmp_path: Path) -> LocalStore:
    return LocalStore(tmp_path, clock=lambda: NOW)


def edit(store: LocalStore, incident: Incident, change: Callable[[dict[str, Any]], None]) -> Path:
    path = store.incident_path(incident.key)
    body = read_yaml(path)
    change(body["spec"])
    write_yaml(path, body)
    return path


PERSONS_EDITS: dict[str, Callable[[dict[str, Any]], None]] = {
    "severity": lambda spec: spec.update(severity="P3"),
    "state": lambda spec: spec.update(state="monitoring"),
    "exclusion": lambda spec: spec.update(exclusion={"reason": "blocked", "note": "firewall"}),
    "acknowledgement": lambda spec: spec.update(acknowledgedAt="2026-11-26T04:20:00Z",
                                                acknowledgedBy="alice"),
    "title": lambda spec: spec.update(title="Checkout down in eu-west"),
    "impact": lambda spec: spec.update(impact="degraded"),
}


@pytest.mark.parametrize("edited", list(PERSONS_EDITS))
async def test_a_change_to_an_incident_a_person_edited_since_is_refused_and_not_written(
        store: LocalStore, edited: str) -> None:
    engine_copy = await store.create_incident(outage(), None)
    path = edit(store, engine_copy, PERSONS_EDITS[edited])
    on_disk = path.read_bytes()

    with pytest.raises(StoreError) as refused:
        await store.change_incident(engine_copy, resolution(engine_copy))

    assert str(refused.value) == ("incident shop-20261126-0412 changed since it was read; "
                                  "retrying with the new version")
    assert path.read_bytes() == on_disk


async def test_the_retry_on_the_reloaded_copy_keeps_the_persons_edit(store: LocalStore) -> None:
    engine_copy = await store.create_incident(outage(), None)
    path = edit(store, engine_copy, PERSONS_EDITS["severity"])
    with pytest.raises(StoreError):
        await store.change_incident(engine_copy, resolution(engine_copy))

    reloaded = incident_from_manifest(read_yaml(path))
    result = await store.change_incident(reloaded, resolution(reloaded))

    assert result.severity is Severity.P3 and result.state is IncidentState.RESOLVED
    assert read_yaml(path)["spec"]["severity"] == "P3"


async def test_an_update_a_person_appended_does_not_hold_up_a_change(store: LocalStore) -> None:
    # Changes append to the timeline too, so an appended entry cannot be overwritten.
    engine_copy = await store.create_incident(outage(), None)
    path = edit(store, engine_copy, lambda spec: spec["updates"].append(
        {"time": "2026-11-26T04:21:00Z", "state": "investigating", "message": "looking at it"}))

    result = await store.change_incident(engine_copy, resolution(engine_copy))

    assert [u.message for u in result.updates] == ["api failing", "looking at it", "recovered"]
    assert read_yaml(path)["spec"]["state"] == "resolved"


async def test_a_status_written_meanwhile_does_not_hold_up_a_change(store: LocalStore) -> None:
    engine_copy = await store.create_incident(outage(), None)
    await store.write_status(Kind.INCIDENT, engine_copy.key, {"durationSeconds": 42})

    result = await store.change_incident(engine_copy, resolution(engine_copy))

    assert result.resolved_at == RESOLVED_AT
    assert read_yaml(store.incident_path(engine_copy.key))["status"]["durationSeconds"] == 42


async def test_a_change_on_the_engines_own_last_write_applies(store: LocalStore) -> None:
    created = await store.create_incident(outage(), None)
    raised = await store.change_incident(created, Change(created, {"severity": Severity.P2}))
    result = await store.change_incident(raised, resolution(raised))
    assert result.severity is Severity.P2 and result.state is IncidentState.RESOLVED


def after_each_look(mocker: MockerFixture, action: Callable[[], None]) -> None:
    """Run ``action`` right after each look the store takes at a file before writing it.

    A file the store wrote last is looked at by its version (not read back and parsed);
    any other file is read.
    """
    def looking(real: Callable[[Path], Any]) -> Callable[[Path], Any]:
        def look_then_act(path: Path) -> Any:
            result = real(path)
            action()
            return result
        return look_then_act

    for name in ("read_yaml_versioned", "file_version"):
        mocker.patch.object(store_module, name, side_effect=looking(getattr(store_module, name)))


def save_right_after_the_next_read(mocker: MockerFixture, store: LocalStore, incident: Incident,
                                   change: Callable[[dict[str, Any]], None]) -> None:
    """A person's save that lands between the store's read of a file and its write of it."""
    saved: list[Path] = []

    def person_saves() -> None:
        if not saved:
            saved.append(edit(store, incident, change))

    after_each_look(mocker, person_saves)


async def test_a_status_write_does_not_undo_a_persons_save_between_its_read_and_write(
        store: LocalStore, mocker: MockerFixture) -> None:
    incident = await store.create_incident(outage(), None)
    save_right_after_the_next_read(mocker, store, incident, PERSONS_EDITS["exclusion"])

    await store.write_status(Kind.INCIDENT, incident.key, {"countedDowntimeSeconds": 120})

    on_disk = read_yaml(store.incident_path(incident.key))
    assert on_disk["spec"]["exclusion"] == {"reason": "blocked", "note": "firewall"}
    assert on_disk["status"]["countedDowntimeSeconds"] == 120


async def test_a_change_whose_file_a_person_saves_meanwhile_is_decided_again(
        store: LocalStore, mocker: MockerFixture) -> None:
    incident = await store.create_incident(outage(), None)
    save_right_after_the_next_read(mocker, store, incident, PERSONS_EDITS["acknowledgement"])

    # The store reads the person's version on its retry: a changed decision basis refuses it.
    with pytest.raises(StoreError, match="changed since it was read"):
        await store.change_incident(incident, resolution(incident))
    on_disk = read_yaml(store.incident_path(incident.key))
    assert on_disk["spec"]["acknowledgedBy"] == "alice" and on_disk["spec"]["state"] != "resolved"


async def test_a_file_changed_on_every_attempt_gives_up_with_a_store_error(
        store: LocalStore, mocker: MockerFixture) -> None:
    incident = await store.create_incident(outage(), None)
    path = store.incident_path(incident.key)

    def touch() -> None:
        path.write_text(path.read_text(encoding="utf-8") + "\n", encoding="utf-8")
        # Dated a minute back, the edit is a finished save, not one in progress: the store
        # reads it at once and only its write finds the file changed again.
        past = time.time() - 60
        os.utime(path, (past, past))

    after_each_look(mocker, touch)
    with pytest.raises(StoreError, match="changed by someone else"):
        await store.write_status(Kind.INCIDENT, incident.key, {"countedDowntimeSeconds": 1})
    assert "countedDowntimeSeconds" not in (read_yaml(path).get("status") or {})
