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
