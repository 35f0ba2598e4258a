"""The local store neither reads back what it wrote itself nor writes a file's text again."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from pytest_mock import MockerFixture

from sla_operator.local import store as store_module
from sla_operator.local.files import file_version, read_yaml, write_yaml
from sla_operator.local.store import LocalStore
from sla_operator.store.base import Kind

NOW = datetime(2026, 11, 26, 4, 12, 3, tzinfo=UTC)
KEY = ("demo", "shop")


@pytest.fixture
def store(tmp_path: Path) -> LocalStore:
    return LocalStore(tmp_path, clock=lambda: NOW)


async def test_a_status_file_it_wrote_last_is_not_read_back(store: LocalStore,
                                                             mocker: MockerFixture) -> None:
    await store.write_status(Kind.AGREEMENT, KEY, {"state": "Up", "lastEvaluated": "t1"})
    reads = mocker.spy(store_module, "read_yaml_versioned")

    await store.write_status(Kind.AGREEMENT, KEY, {"state": "Down", "lastEvaluated": "t2"})

    assert reads.call_count == 0
    assert read_yaml(store.status_path(Kind.AGREEMENT, KEY))["status"] == {
        "state": "Down", "lastEvaluated": "t2"}


async def test_a_persons_edit_is_read_and_kept(store: LocalStore) -> None:
    await store.write_status(Kind.AGREEMENT, KEY, {"state": "Up"})
    path = store.status_path(Kind.AGREEMENT, KEY)
    edited = read_yaml(path)
    edited["metadata"]["annotations"] = {"note": "checked by alice"}
    write_yaml(path, edited)

    await store.write_status(Kind.AGREEMENT, KEY, {"state": "Down"})

    on_disk = read_yaml(path)
    assert on_disk["metadata"]["annotations"] == {"note": "checked by alice"}
    assert on_disk["status"] == {"state": "Down"}


async def test_the_same_status_again_leaves_the_file_untouched(store: LocalStore) -> None:
    await store.write_status(Kind.MAINTENANCE, KEY, {"active": False, "nextStart": "t"})
    path = store.status_path(Kind.MAINTENANCE, KEY)
    written = file_version(path)

    await store.write_status(Kind.MAINTENANCE, KEY, {"active": False, "nextStart": "t"})

    assert file_version(path) == written


def test_new_agreements_are_recorded_without_reading_the_registry_back(
        store: LocalStore, mocker: MockerFixture) -> None:
    store.first_seen(("demo", "a"))
    reads = mocker.spy(store_module, "read_yaml")
    for name in ("b", "c"):
        store.first_seen(("demo", name))
    assert reads.call_count == 0
    registry = read_yaml(store.root / "agreements.yaml")["agreements"]
    assert sorted(registry) == ["demo/a", "demo/b", "demo/c"]


def test_agreements_first_seen_while_recording_are_written_once_at_the_end(
        store: LocalStore, mocker: MockerFixture) -> None:
    writes = mocker.spy(store_module, "write_atomically")
    with store.recording_agreements():
        seen = {name: store.first_seen(("demo", name)) for name in ("a", "b", "c")}
        assert writes.call_count == 0
        assert store.first_seen(("demo", "a")) == seen["a"]  # known before it is written
    assert writes.call_count == 1
    again = LocalStore(store.root)
    assert {name: again.first_seen(("demo", name)) for name in seen} == seen


def test_a_registry_a_person_edited_is_read_again_before_a_new_agreement_is_added(
        store: LocalStore) -> None:
    store.first_seen(("demo", "a"))
    path = store.root / "agreements.yaml"
    edited = read_yaml(path)
    edited["agreements"]["demo/kept"] = {"firstSeen": "2026-01-01T00:00:00Z", "uid": "u-kept"}
    write_yaml(path, edited)
    store.first_seen(("demo", "b"))
    assert sorted(read_yaml(path)["agreements"]) == ["demo/a", "demo/b", "demo/kept"]
    assert store.first_seen(("demo", "kept"))[1] == "u-kept"


def test_a_registry_write_that_fails_is_made_with_the_next_agreement(
        store: LocalStore, mocker: MockerFixture) -> None:
    mocker.patch.object(store_module, "write_atomically", side_effect=OSError("disk full"))
    with pytest.raises(OSError), store.recording_agreements():
        first = store.first_seen(("demo", "a"))
    mocker.stopall()
    store.first_seen(("demo", "b"))
    registry = read_yaml(store.root / "agreements.yaml")["agreements"]
    assert sorted(registry) == ["demo/a", "demo/b"]
    assert registry["demo/a"]["uid"] == first[1]


async def test_status_files_are_rewritten_through_a_spare_and_incident_files_are_not(
        store: LocalStore) -> None:
    for state in ("Up", "Down", "Up"):
        await store.write_status(Kind.AGREEMENT, KEY, {"state": state})
    status_folder = store.status_path(Kind.AGREEMENT, KEY).parent
    assert sorted(p.name for p in status_folder.iterdir()) == [".shop.yaml.spare", "shop.yaml"]
    assert read_yaml(status_folder / "shop.yaml")["status"] == {"state": "Up"}

    incident = store.incident_path(("demo", "shop-1"))
    write_yaml(incident, {"kind": "SLAIncident", "spec": {"title": "Shop is down"}})
    for seconds in (1, 2, 3):
        await store.write_status(Kind.INCIDENT, ("demo", "shop-1"), {"durationSeconds": seconds})
    assert sorted(p.name for p in incident.parent.iterdir()) == ["shop-1.yaml"]
    assert read_yaml(incident)["status"] == {"durationSeconds": 3}


async def test_a_status_write_after_a_persons_edit_of_metadata_keeps_the_edit_once(
        store: LocalStore) -> None:
    # Status writes take a shallow copy of what the store wrote last: the copy it keeps must
    # not change when a later document is built from it.
    await store.write_status(Kind.AGREEMENT, KEY, {"state": "Up", "endpoints": [{"name": "a"}]})
    await store.write_status(Kind.AGREEMENT, KEY, {"state": "Down"})
    remembered = store._contents[store.status_path(Kind.AGREEMENT, KEY)][1]
    assert remembered["status"] == {"state": "Down", "endpoints": [{"name": "a"}]}
    assert remembered["metadata"] == {"name": "shop", "namespace": "demo"}
    await store.write_status(Kind.AGREEMENT, KEY, {"endpoints": None})
    assert remembered["status"] == {"state": "Down", "endpoints": [{"name": "a"}]}
    assert read_yaml(store.status_path(Kind.AGREEMENT, KEY))["status"] == {"state": "Down"}
