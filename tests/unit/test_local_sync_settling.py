"""A file caught while it is being written is never applied: only settled files reach the engine."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml
from local_folders import SHOP, WINDOW, Folders

from sla_operator.domain.model import ProbeResult
from sla_operator.local import sync as sync_module
from sla_operator.local.manifests import Manifest, read_manifests

SHOP_KEY, WEEKLY = ("demo", "shop"), ("demo", "weekly")
DURING_MAINTENANCE = datetime(2026, 11, 29, 3, 30, tzinfo=UTC)  # a Sunday


class Clock:
    def __init__(self) -> None:
        self.now = DURING_MAINTENANCE

    def __call__(self) -> datetime:
        return self.now


class Recording(Folders):
    """Folders whose engine records every removal the sync asks of it."""

    def __init__(self, root: Path) -> None:
        super().__init__(root, clock=Clock())
        self.removed: list[tuple[str, object]] = []
        for remove in ("remove_agreement", "remove_maintenance", "remove_incident"):
            self._record(remove)

    def _record(self, name: str) -> None:
        original = getattr(self.engine, name)

        def recorded(key: object) -> None:
            self.removed.append((name, key))
            original(key)

        setattr(self.engine, name, recorded)


@pytest.fixture
def folders(tmp_path: Path) -> Recording:
    return Recording(tmp_path)


def errors(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]


async def test_the_files_found_at_startup_are_applied_at_the_first_poll(folders: Recording) -> None:
    folders.put("shop.yaml", SHOP, WINDOW)
    await folders.sync.rescan()
    assert set(folders.engine.agreements) == {SHOP_KEY}
    assert set(folders.engine.maintenance) == {WEEKLY}


async def test_an_agreement_file_emptied_for_one_poll_and_written_again_removes_nothing(
        folders: Recording) -> None:
    path = folders.put("shop.yaml", SHOP)
    await folders.sync.rescan()
    runtime = folders.engine.agreements[SHOP_KEY]
    path.write_text("")  # `helm template ... > shop.yaml` truncates first
    await folders.sync.rescan()
    folders.put("shop.yaml", SHOP)
    for _ in range(3):
        await folders.sync.rescan()
    assert folders.engine.agreements[SHOP_KEY] is runtime
    assert folders.removed == []


async def test_a_window_file_emptied_for_one_poll_during_maintenance_opens_no_outage(
        folders: Recording) -> None:
    folders.put("shop.yaml", SHOP)
    window = folders.put("window.yaml", WINDOW)
    await folders.sync.rescan()
    endpoint = folders.engine.agreements[SHOP_KEY].agreement.endpoints[0]
    for _ in range(5):  # the service is down, as planned
        folders.clock.now += timedelta(seconds=2)
        folders.engine.on_probe_result(SHOP_KEY, endpoint,
                                       ProbeResult(folders.clock.now, False, 0.01, "connection refused"))
    await folders.engine.evaluate_round()
    window.write_text("")
    await folders.sync.rescan()
    await folders.engine.evaluate_round(force=True)
    folders.put("window.yaml", WINDOW)
    for _ in range(2):
        await folders.sync.rescan()
        await folders.engine.evaluate_round(force=True)
    assert set(folders.engine.maintenance) == {WEEKLY}
    assert folders.removed == []
    assert [i for i in folders.engine.incidents.values() if i.type.value == "outage"] == []


async def test_a_file_that_stays_empty_removes_its_objects_one_poll_later(folders: Recording) -> None:
    path = folders.put("shop.yaml", SHOP, WINDOW)
    await folders.sync.rescan()
    path.write_text("")
    await folders.sync.rescan()
    assert set(folders.engine.agreements) == {SHOP_KEY} and folders.removed == []
    await folders.sync.rescan()
    assert folders.engine.agreements == {} and folders.engine.maintenance == {}
    assert sorted(folders.removed) == [("remove_agreement", SHOP_KEY), ("remove_maintenance", WEEKLY)]


async def test_a_deleted_file_removes_its_objects_once_it_stays_deleted(folders: Recording) -> None:
    path = folders.put("shop.yaml", SHOP)
    await folders.sync.rescan()
    path.unlink()
    await folders.sync.rescan()
    assert set(folders.engine.agreements) == {SHOP_KEY}
    await folders.sync.rescan()
    assert folders.engine.agreements == {}


async def test_a_half_written_file_seen_once_is_neither_reported_nor_applied(
        folders: Recording, caplog: pytest.LogCaptureFixture) -> None:
    path = folders.put("shop.yaml", SHOP)
    await folders.sync.rescan()
    edited = {**SHOP, "spec": {**SHOP["spec"], "objective": "99.9"}}
    whole = yaml.safe_dump(edited, sort_keys=False)
    path.write_text(whole[:whole.index("endpoints:") + len("endpoints:\n- name: api\n  interv")])
    await folders.sync.rescan()
    assert errors(caplog) == []
    assert str(folders.engine.agreements[SHOP_KEY].agreement.objective) == "99.5"
    path.write_text(whole)
    await folders.sync.rescan()
    await folders.sync.rescan()
    assert errors(caplog) == []
    assert str(folders.engine.agreements[SHOP_KEY].agreement.objective) == "99.9"


async def test_a_truncated_file_that_stays_so_is_reported_with_its_previous_content_kept(
        folders: Recording, caplog: pytest.LogCaptureFixture) -> None:
    path = folders.put("shop.yaml", SHOP)
    await folders.sync.rescan()
    path.write_text(path.read_text() + "  oops: [\n")
    await folders.sync.rescan()
    assert errors(caplog) == []
    await folders.sync.rescan()
    assert any(m.startswith(f"{path}: line") and m.endswith("its previous content stays in effect")
               for m in errors(caplog))
    assert set(folders.engine.agreements) == {SHOP_KEY}


async def test_a_read_the_file_moved_under_is_dropped_and_the_settled_version_applied(
        folders: Recording, monkeypatch: pytest.MonkeyPatch) -> None:
    folders.put("shop.yaml", SHOP)
    await folders.sync.rescan()
    runtime = folders.engine.agreements[SHOP_KEY]
    edited = {**SHOP, "spec": {**SHOP["spec"], "objective": "99.9"}}
    folders.put("shop.yaml", edited)
    await folders.sync.rescan()

    def read_then_emptied(read: Path, shown: str,
                          *foreign: list[str]) -> tuple[list[Manifest], list[str]]:
        result = read_manifests(read, shown, *foreign)
        read.write_text("")  # the next `>` began while this read was under way
        return result

    monkeypatch.setattr(sync_module, "read_manifests", read_then_emptied)
    await folders.sync.rescan()
    monkeypatch.setattr(sync_module, "read_manifests", read_manifests)
    assert str(folders.engine.agreements[SHOP_KEY].agreement.objective) == "99.5"
    folders.put("shop.yaml", {**SHOP, "spec": {**SHOP["spec"], "objective": "99.8"}})
    await folders.sync.rescan()
    await folders.sync.rescan()
    assert folders.engine.agreements[SHOP_KEY] is runtime
    assert str(runtime.agreement.objective) == "99.8"
    assert folders.removed == []
