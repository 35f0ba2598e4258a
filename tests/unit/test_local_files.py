"""State files are written whole or not at all, and status patches merge like the API server's."""

from __future__ import annotations

import ctypes
import errno
from pathlib import Path
from typing import Any

import pytest
import yaml

from sla_operator.local import files
from sla_operator.local.files import (
    FileChanged,
    dump_yaml,
    merge_patch,
    read_yaml,
    read_yaml_versioned,
    remove_stale_temporaries,
    write_atomically,
    write_yaml,
)


def test_a_written_file_reads_back_as_the_same_document(tmp_path: Path) -> None:
    document = {"spec": {"title": "API is down", "updates": [{"message": "line one\nline two"}]}}
    write_yaml(tmp_path / "a" / "b.yaml", document)
    assert read_yaml(tmp_path / "a" / "b.yaml") == document


def test_a_write_leaves_no_temporary_file_behind(tmp_path: Path) -> None:
    write_yaml(tmp_path / "x.yaml", {"a": 1})
    write_yaml(tmp_path / "x.yaml", {"a": 2})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.yaml"]


def test_a_write_that_fails_midway_leaves_the_old_file_intact(tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "x.yaml"
    write_yaml(target, {"version": 1})

    def crash(*_: Any) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(files.os, "replace", crash)
    with pytest.raises(OSError):
        write_atomically(target, dump_yaml({"version": 2}))
    assert read_yaml(target) == {"version": 1}


def test_temporaries_of_an_interrupted_write_are_cleared_at_start(tmp_path: Path) -> None:
    (tmp_path / "incidents" / "demo").mkdir(parents=True)
    stale = tmp_path / "incidents" / "demo" / ".inc.yaml.0123abcd.tmp"
    stale.write_text("half a docu")
    kept = tmp_path / "incidents" / "demo" / "inc.yaml"
    kept.write_text("a: 1\n")
    assert remove_stale_temporaries(tmp_path) == [stale]
    assert not stale.exists() and kept.exists()


def test_multi_line_strings_stay_readable_in_the_file() -> None:
    text = dump_yaml({"message": "first\nsecond"})
    assert "message: |" in text
    assert yaml.safe_load(text) == {"message": "first\nsecond"}


def test_a_file_that_is_not_a_mapping_is_refused(tmp_path: Path) -> None:
    (tmp_path / "list.yaml").write_text("- a\n- b\n")
    with pytest.raises(ValueError, match="mapping"):
        read_yaml(tmp_path / "list.yaml")


@pytest.mark.parametrize(("target", "patch", "merged"), [
    ({"a": 1, "b": 2}, {"b": 3}, {"a": 1, "b": 3}),
    ({"a": 1, "b": 2}, {"b": None}, {"a": 1}),
    ({"p": {"x": 1, "y": 2}}, {"p": {"y": None, "z": 3}}, {"p": {"x": 1, "z": 3}}),
    ({"list": [1, 2, 3]}, {"list": [4]}, {"list": [4]}),
    ({"p": 5}, {"p": {"x": 1, "gone": None}}, {"p": {"x": 1}}),
    ({}, {"new": {"n": None}}, {"new": {}}),
])
def test_status_patches_merge_as_rfc_7386_says(target: dict[str, Any], patch: dict[str, Any],
                                               merged: dict[str, Any]) -> None:
    assert merge_patch(target, patch) == merged


def test_merging_leaves_the_original_untouched() -> None:
    original = {"p": {"x": 1}}
    merge_patch(original, {"p": {"x": 2}})
    assert original == {"p": {"x": 1}}


def test_a_guarded_write_goes_through_when_nobody_wrote_since(tmp_path: Path) -> None:
    path = tmp_path / "shop.yaml"
    write_yaml(path, {"status": {"state": "Up"}})
    _, version = read_yaml_versioned(path)
    write_yaml(path, {"status": {"state": "Down"}}, unless_changed_from=version)
    assert read_yaml(path) == {"status": {"state": "Down"}}


@pytest.mark.parametrize("edit", ["rename", "in place"])
def test_a_guarded_write_refuses_a_file_a_person_saved_since(tmp_path: Path, edit: str) -> None:
    path = tmp_path / "shop.yaml"
    write_yaml(path, {"spec": {"title": "Shop is down"}})
    _, version = read_yaml_versioned(path)
    if edit == "rename":  # how editors and write_yaml save
        write_yaml(path, {"spec": {"title": "Checkout is down"}})
    else:  # `cat > file`: same inode, a different size
        path.write_text("spec: {title: Checkout and search are down}\n", encoding="utf-8")
    with pytest.raises(FileChanged):
        write_yaml(path, {"spec": {"title": "Shop is down"}, "status": {}}, unless_changed_from=version)
    assert read_yaml(path)["spec"]["title"].startswith("Checkout")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["shop.yaml"]  # no temporary left


def test_a_guarded_write_of_a_new_file_refuses_one_created_meanwhile(tmp_path: Path) -> None:
    path = tmp_path / "shop.yaml"
    assert read_yaml_versioned(path) == (None, None)
    write_yaml(path, {"spec": {"title": "filed by a person"}})
    with pytest.raises(FileChanged):
        write_yaml(path, {"spec": {"title": "opened by the engine"}}, unless_changed_from=None)
    assert read_yaml(path)["spec"]["title"] == "filed by a person"


def test_an_atomic_write_makes_its_folders_the_first_time(tmp_path: Path) -> None:
    path = tmp_path / "status" / "servicelevelagreements" / "demo" / "shop.yaml"
    write_atomically(path, "a: 1\n")
    write_atomically(path, "a: 2\n")
    assert path.read_text() == "a: 2\n"
    assert [p.name for p in path.parent.iterdir()] == ["shop.yaml"]  # no temporary left


# ------------------------------------------------------------ writing through a spare


def names_in(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def test_a_file_written_through_its_spare_keeps_the_previous_version_beside_it(
        tmp_path: Path) -> None:
    path = tmp_path / "status" / "demo" / "shop.yaml"
    for version in range(1, 5):
        written = write_atomically(path, f"version: {version}\n" + "x: y\n" * version, spare=True)
        assert read_yaml(path) == {"version": version, "x": "y"}
        assert written == files.file_version(path)
    assert names_in(path.parent) == [".shop.yaml.spare", "shop.yaml"]
    assert (path.parent / ".shop.yaml.spare").read_text().startswith("version: 3\n")
    assert not files.is_visible_yaml(path.parent / ".shop.yaml.spare")


@pytest.mark.skipif(files._RENAMEAT2 is None, reason="no renameat2 on this system")
def test_the_spare_and_the_file_change_places_instead_of_a_new_file_each_time(
        tmp_path: Path) -> None:
    path = tmp_path / "shop.yaml"
    inodes = set()
    for version in range(6):
        write_atomically(path, f"version: {version}\n", spare=True)
        inodes.add(path.stat().st_ino)
    assert len(inodes) == 2  # the first write's file and one spare, swapped from then on


def test_a_shorter_text_through_a_spare_leaves_nothing_of_the_longer_one(tmp_path: Path) -> None:
    path = tmp_path / "shop.yaml"
    write_atomically(path, "long: " + "x" * 5000 + "\n", spare=True)
    write_atomically(path, "long: " + "y" * 5000 + "\n", spare=True)
    write_atomically(path, "short: 1\n", spare=True)
    assert path.read_text() == "short: 1\n"


def test_a_guarded_write_through_a_spare_refuses_a_file_saved_since(tmp_path: Path) -> None:
    path = tmp_path / "shop.yaml"
    write_atomically(path, "a: 1\n", spare=True)
    _, version = read_yaml_versioned(path)
    path.write_text("a: person\n", encoding="utf-8")
    with pytest.raises(FileChanged):
        write_atomically(path, "a: 2\n", version, spare=True)
    assert read_yaml(path) == {"a": "person"}
    write_atomically(path, "a: 3\n", files.file_version(path), spare=True)
    assert read_yaml(path) == {"a": 3}


def test_a_spare_another_writer_holds_is_left_to_it(tmp_path: Path) -> None:
    path = tmp_path / "shop.yaml"
    write_atomically(path, "a: 1\n", spare=True)
    write_atomically(path, "a: 2\n", spare=True)
    spare = tmp_path / ".shop.yaml.spare"
    with open(spare, "r+b") as other:  # another process writing it now
        files.fcntl.flock(other.fileno(), files.fcntl.LOCK_EX)
        before = spare.read_bytes()
        write_atomically(path, "a: 3\n", spare=True)
        assert spare.read_bytes() == before  # untouched: written through a new temporary
        assert read_yaml(path) == {"a": 3}
    assert names_in(tmp_path) == [".shop.yaml.spare", "shop.yaml"]


def test_a_spare_exchanged_by_another_writer_before_it_was_locked_is_not_written(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "shop.yaml"
    write_atomically(path, "a: 1\n", spare=True)
    write_atomically(path, "a: 2\n", spare=True)
    spare = tmp_path / ".shop.yaml.spare"
    real_flock = files.fcntl.flock

    def another_writer_first(descriptor: int, operation: int) -> None:
        # Between this writer's open and its lock, another one wrote the spare and exchanged
        # it: the inode this writer holds is now the live file.
        monkeypatch.setattr(files.fcntl, "flock", real_flock)
        write_atomically(path, "a: other\n", spare=True)
        real_flock(descriptor, operation)

    monkeypatch.setattr(files.fcntl, "flock", another_writer_first)
    write_atomically(path, "a: 3\n", spare=True)
    assert read_yaml(path) == {"a": 3}
    assert spare.exists()


def test_a_spare_deleted_meanwhile_costs_nothing_but_a_new_one(tmp_path: Path) -> None:
    path = tmp_path / "shop.yaml"
    write_atomically(path, "a: 1\n", spare=True)
    write_atomically(path, "a: 2\n", spare=True)
    (tmp_path / ".shop.yaml.spare").unlink()
    write_atomically(path, "a: 3\n", spare=True)
    write_atomically(path, "a: 4\n", spare=True)
    assert read_yaml(path) == {"a": 4}
    assert names_in(tmp_path) == [".shop.yaml.spare", "shop.yaml"]


def test_without_an_exchange_the_spare_is_renamed_over_the_file(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(files, "_RENAMEAT2", None)  # as on a system without renameat2
    path = tmp_path / "shop.yaml"
    for version in range(3):
        write_atomically(path, f"a: {version}\n", spare=True)
        assert read_yaml(path) == {"a": version}
        assert names_in(tmp_path) == ["shop.yaml"]



@pytest.mark.parametrize("refusal", [errno.ENOSYS, errno.EPERM])
def test_an_exchange_the_system_refuses_falls_back_to_a_rename(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, refusal: int) -> None:
    def refused(*_: Any) -> int:  # as a kernel without it, or a seccomp profile, answers
        ctypes.set_errno(refusal)
        return -1

    monkeypatch.setattr(files, "_RENAMEAT2", refused)
    path = tmp_path / "shop.yaml"
    for version in range(3):
        write_atomically(path, f"a: {version}\n", spare=True)
        assert read_yaml(path) == {"a": version}
        assert names_in(tmp_path) == ["shop.yaml"]

def test_spares_are_not_taken_for_temporaries_of_interrupted_writes(tmp_path: Path) -> None:
    path = tmp_path / "shop.yaml"
    write_atomically(path, "a: 1\n", spare=True)
    write_atomically(path, "a: 2\n", spare=True)
    assert remove_stale_temporaries(tmp_path) == []
    assert names_in(tmp_path) == [".shop.yaml.spare", "shop.yaml"]


@pytest.fixture
def events(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str]]:
    """What reaches the disk, in order: folder syncs, exchanges, spares overwritten."""
    log: list[tuple[str, str]] = []
    writing: list[str] = []
    real_sync, real_exchange = files._fsync_directory, files._exchange
    real_spare, real_whole = files._write_through_spare, files._write_whole

    def sync(folder: Path) -> None:
        real_sync(folder)
        log.append(("sync", folder.name))

    def exchange(first: Path, second: Path) -> bool:
        done = real_exchange(first, second)
        if done:
            log.append(("exchange", second.name))
        return done

    def through_spare(path: Path, *args: Any) -> Any:
        writing.append(path.name)
        return real_spare(path, *args)

    def whole(descriptor: int, data: bytes) -> Any:
        log.append(("overwrite", writing[-1]))
        return real_whole(descriptor, data)

    monkeypatch.setattr(files, "_fsync_directory", sync)
    monkeypatch.setattr(files, "_exchange", exchange)
    monkeypatch.setattr(files, "_write_through_spare", through_spare)
    monkeypatch.setattr(files, "_write_whole", whole)
    return log


@pytest.mark.skipif(files._RENAMEAT2 is None, reason="no renameat2 on this system")
def test_a_folder_is_synced_once_per_round_of_its_files_not_once_per_write(
        tmp_path: Path, events: list[tuple[str, str]]) -> None:
    folder = tmp_path / "demo"
    syncs = []
    for round_ in range(4):
        before = len(events)
        for index in range(10):
            write_atomically(folder / f"s{index}.yaml", f"round: {round_}\n", spare=True)
        syncs.append(sum(1 for kind, _ in events[before:] if kind == "sync"))
    assert syncs == [10, 0, 1, 1]  # new files at once; exchanges by the next round's first
    assert all(read_yaml(folder / f"s{index}.yaml") == {"round": 3} for index in range(10))


@pytest.mark.skipif(files._RENAMEAT2 is None, reason="no renameat2 on this system")
def test_a_spare_is_overwritten_only_once_the_exchange_that_made_it_one_is_synced(
        tmp_path: Path, events: list[tuple[str, str]]) -> None:
    chance = __import__("random").Random(5)
    names = [f"s{index}.yaml" for index in range(4)]
    for step in range(60):
        write_atomically(tmp_path / chance.choice(names), f"step: {step}\n", spare=True)
    unsynced: set[str] = set()
    checked = 0
    for kind, name in events:
        if kind == "exchange":
            unsynced.add(name)
        elif kind == "sync":
            unsynced.clear()
        elif name in unsynced:
            pytest.fail(f"the spare of {name} was overwritten before its exchange was synced")
        else:
            checked += 1
    assert checked > 40 and sum(kind == "sync" for kind, _ in events) < 60


@pytest.mark.skipif(files._RENAMEAT2 is None, reason="no renameat2 on this system")
def test_exchanges_left_unsynced_are_synced_at_shutdown(
        tmp_path: Path, events: list[tuple[str, str]]) -> None:
    for round_ in range(2):
        for index in range(3):
            write_atomically(tmp_path / "a" / f"s{index}.yaml", f"r: {round_}\n", spare=True)
            write_atomically(tmp_path / "b" / f"s{index}.yaml", f"r: {round_}\n", spare=True)
    ours = {("sync", "a"), ("sync", "b")}
    before = len(events)
    files.sync_deferred()  # other tests' folders too, if any are left
    assert sorted(e for e in events[before:] if e in ours) == sorted(ours)
    before = len(events)
    files.sync_deferred()
    assert events[before:] == []  # nothing left to sync


def test_a_write_that_fails_before_the_rename_leaves_no_temporary(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "x.yaml"
    write_yaml(target, {"version": 1})

    def full(*_: Any) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(files.os, "fsync", full)
    with pytest.raises(OSError, match="space"):
        write_atomically(target, dump_yaml({"version": 2}))
    assert names_in(tmp_path) == ["x.yaml"] and read_yaml(target) == {"version": 1}


def test_mappings_other_than_dicts_merge_as_dicts_do() -> None:
    from types import MappingProxyType
    target = {"p": MappingProxyType({"x": 1, "y": 2}), "s": "text"}
    patch = {"p": MappingProxyType({"y": None, "z": 3}), "s": MappingProxyType({"a": None})}
    assert merge_patch(target, patch) == {"p": {"x": 1, "z": 3}, "s": {}}
