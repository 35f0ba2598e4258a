"""State files are written whole or not at all, and status patches merge like the API server's."""

from __future__ import annotations

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
