"""A manifest whose applying fails is reported and retried; it never holds up the others."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
from local_folders import WINDOW, Folders, agreement

from sla_operator.domain.model import Agreement, MaintenanceWindow
from sla_operator.engine import Engine
from sla_operator.local.store import LocalStore
from sla_operator.store.base import Key, Kind

SHOP, BAD, WEEKLY = ("demo", "shop"), ("demo", "bad"), ("demo", "weekly")


class FaultyEngine(Engine):
    """An engine that fails to take the objects named in ``refused``, as a bug or full disk would."""

    def __init__(self, store: LocalStore) -> None:
        super().__init__(store)
        self.refused: set[Key] = set()

    def upsert_agreement(self, agreement: Agreement, status: Mapping[str, Any] | None = None) -> None:
        if agreement.key in self.refused:
            raise RuntimeError(f"cannot take {agreement.name} now")
        super().upsert_agreement(agreement, status)

    def upsert_maintenance(self, window: MaintenanceWindow) -> None:
        if window.key in self.refused:
            raise RuntimeError(f"cannot take {window.name} now")
        super().upsert_maintenance(window)


class Faulty(Folders):
    engine: FaultyEngine

    def ready(self, kind: Kind, key: Key) -> dict[str, Any]:
        status = self.store.read_status(kind, key)
        return next(c for c in status["conditions"] if c["type"] == "Ready")


@pytest.fixture
def folders(tmp_path: Path) -> Faulty:
    return Faulty(tmp_path, engine=FaultyEngine)


def errors_about(caplog: pytest.LogCaptureFixture, text: str) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR and text in r.getMessage()]


async def test_a_failing_manifest_is_marked_not_ready_and_the_ones_after_it_still_run(
        folders: Faulty, caplog: pytest.LogCaptureFixture) -> None:
    # Windows are applied before agreements: a failing window comes first.
    folders.engine.refused |= {WEEKLY, BAD}
    source = folders.put("all.yaml", WINDOW, agreement("bad"), agreement("shop"))
    await folders.settle()

    assert set(folders.engine.agreements) == {SHOP}
    assert folders.engine.maintenance == {}
    for kind, key, name in ((Kind.MAINTENANCE, WEEKLY, "weekly"), (Kind.AGREEMENT, BAD, "bad")):
        ready = folders.ready(kind, key)
        assert ready["status"] == "False" and ready["reason"] == "ApplyFailed"
        assert f"RuntimeError: cannot take {name} now" in ready["message"]
    assert folders.store.read_status(Kind.AGREEMENT, BAD)["state"] == "Unknown"
    logged = errors_about(caplog, "could not be applied")
    assert any(m.startswith(f"{source} (document 2): ServiceLevelAgreement demo/bad") for m in logged)


async def test_a_failed_manifest_is_retried_at_the_next_scan_without_any_file_change(
        folders: Faulty) -> None:
    folders.engine.refused |= {WEEKLY, BAD}
    folders.put("all.yaml", WINDOW, agreement("bad"), agreement("shop"))
    await folders.settle()
    await folders.settle()
    assert set(folders.engine.agreements) == {SHOP}

    folders.engine.refused.clear()
    await folders.settle()
    assert set(folders.engine.agreements) == {SHOP, BAD}
    assert set(folders.engine.maintenance) == {WEEKLY}
    assert folders.sync.failed == {}


async def test_a_lasting_failure_is_logged_once_not_at_every_scan(
        folders: Faulty, caplog: pytest.LogCaptureFixture) -> None:
    folders.engine.refused.add(BAD)
    folders.put("bad.yaml", agreement("bad"))
    for _ in range(3):
        await folders.settle()
    assert len(errors_about(caplog, "could not be applied")) == 1


async def fail_an_edit(folders: Faulty) -> None:
    """shop runs at 99.5; its edit to 99.9 is refused by the engine."""
    folders.put("shop.yaml", agreement("shop"))
    await folders.settle()
    edited = agreement("shop")
    edited["spec"]["objective"] = "99.9"
    folders.put("shop.yaml", edited)
    folders.engine.refused.add(SHOP)
    await folders.settle()


async def test_a_failing_edit_leaves_the_previous_version_running_and_says_why(
        folders: Faulty) -> None:
    await fail_an_edit(folders)

    runtime = folders.engine.agreements[SHOP]
    assert str(runtime.agreement.objective) == "99.5"
    assert runtime.rejection is not None and "cannot take shop now" in runtime.rejection

    folders.engine.refused.clear()
    await folders.settle()
    assert str(folders.engine.agreements[SHOP].agreement.objective) == "99.9"


async def test_a_failing_manifest_that_is_removed_is_no_longer_retried(folders: Faulty) -> None:
    folders.engine.refused.add(BAD)
    path = folders.put("bad.yaml", agreement("bad"))
    await folders.settle()
    assert set(folders.sync.failed) == {("ServiceLevelAgreement", *BAD)}
    path.unlink()
    await folders.settle()
    assert folders.sync.failed == {}


async def test_reverting_a_failed_edit_clears_the_failure(folders: Faulty) -> None:
    await fail_an_edit(folders)
    folders.engine.refused.clear()
    folders.put("shop.yaml", agreement("shop"))  # back to the version that is running
    await folders.settle()
    assert folders.engine.agreements[SHOP].rejection is None
    assert folders.sync.failed == {}
