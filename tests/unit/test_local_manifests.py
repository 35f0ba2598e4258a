"""Reading a manifests folder: every message names the file, and edits are noticed."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from sla_operator.domain.errors import Problem
from sla_operator.local.files import FileVersion, read_yaml, write_yaml
from sla_operator.local.manifests import FileError, FolderWatch, read_manifests, secret_data

WINDOW = """\
apiVersion: sla.dev/v1alpha1
kind: MaintenanceWindow
metadata: {name: weekly}
spec: {schedule: "0 3 * * SUN", duration: 2h}
"""


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_a_yaml_syntax_error_names_the_file_and_line(tmp_path: Path) -> None:
    path = write(tmp_path / "broken.yaml", "kind: Incident\nmetadata:\n  name: [unclosed\n")
    with pytest.raises(FileError, match=r"^broken\.yaml: line \d+, column \d+: YAML syntax error"):
        read_manifests(path, "broken.yaml")


def test_each_document_of_a_file_is_read_with_its_namespace_defaulted(tmp_path: Path) -> None:
    text = WINDOW + "---\n" + WINDOW.replace("weekly", "monthly").replace(
        "{name: monthly}", "{name: monthly, namespace: shop}")
    manifests, unnamed = read_manifests(write(tmp_path / "w.yaml", text), "w.yaml")
    assert unnamed == []
    assert [(m.kind, m.key, m.problems) for m in manifests] == [
        ("MaintenanceWindow", ("default", "weekly"), ()),
        ("MaintenanceWindow", ("shop", "monthly"), ())]
    assert manifests[0].source == "w.yaml (document 1)"


def test_schema_problems_are_kept_with_the_manifest_and_worded_with_file_and_field(tmp_path: Path) -> None:
    path = write(tmp_path / "w.yaml", WINDOW.replace("duration: 2h", "duration: two hours"))
    (manifest,), _ = read_manifests(path, "w.yaml")
    (line,) = manifest.messages(manifest.problems)
    assert line.startswith("w.yaml: spec.duration: 'two hours' is not valid")
    assert line.endswith("(MaintenanceWindow default/weekly)")


@pytest.mark.parametrize(("text", "message"), [
    ("kind: Deployment\napiVersion: apps/v1\nmetadata: {name: x}\n", "kind: 'Deployment' is not supported"),
    ("kind: Incident\napiVersion: sla.dev/v1\nmetadata: {name: x}\n",
     "apiVersion: 'sla.dev/v1' is not served"),
    ("kind: Incident\napiVersion: sla.dev/v1alpha1\nmetadata: {name: Bad_Name}\n",
     "metadata.name: 'Bad_Name'"),
    ("kind: Incident\napiVersion: sla.dev/v1alpha1\nmetadata: {name: x, namespace: A}\n",
     "metadata.namespace: 'A'"),
    ("just a string\n", "(document): expected a manifest"),
])
def test_documents_that_name_no_object_are_reported_and_skipped(tmp_path: Path, text: str,
                                                                message: str) -> None:
    manifests, unnamed = read_manifests(write(tmp_path / "x.yaml", text), "x.yaml")
    assert manifests == []
    assert len(unnamed) == 1 and unnamed[0].startswith(f"x.yaml: {message}")


def test_secrets_merge_base64_data_and_string_data(tmp_path: Path) -> None:
    text = ("apiVersion: v1\nkind: Secret\nmetadata: {name: auth}\n"
            "data: {user: YWxpY2U=, token: b2xk}\nstringData: {token: new}\n")
    (manifest,), _ = read_manifests(write(tmp_path / "s.yaml", text), "s.yaml")
    assert manifest.problems == ()
    assert secret_data(manifest.body) == {"user": "alice", "token": "new"}


def test_secret_data_that_is_not_base64_is_a_problem(tmp_path: Path) -> None:
    text = "apiVersion: v1\nkind: Secret\nmetadata: {name: auth}\ndata: {token: not base64!}\n"
    (manifest,), _ = read_manifests(write(tmp_path / "s.yaml", text), "s.yaml")
    assert manifest.problems == (Problem("data.token", "is not base64; put plain text in stringData"),)


def test_the_watch_reports_new_changed_and_removed_files(tmp_path: Path) -> None:
    watch = FolderWatch(tmp_path)
    first = write(tmp_path / "a.yaml", WINDOW)
    second = write(tmp_path / "sub" / "b.yml", WINDOW)
    assert watch.poll() == ([first, second], [])
    assert watch.poll() == ([], [])
    write(first, WINDOW + "# edited\n")
    second.unlink()
    assert watch.poll() == ([], [])  # possibly still being written: wait for one quiet poll
    assert watch.poll() == ([first], [second])
    assert watch.poll() == ([], [])


def test_a_change_of_the_same_size_within_the_same_instant_is_noticed(tmp_path: Path) -> None:
    """Editors save by writing a new file and renaming it over the old one."""
    watch = FolderWatch(tmp_path)
    path = write(tmp_path / "a.yaml", WINDOW)
    watch.poll()
    stat = path.stat()
    replacement = write(tmp_path / ".a.yaml.swp", WINDOW.replace("2h", "3h"))
    os.utime(replacement, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    os.replace(replacement, path)
    watch.poll()
    assert watch.poll() == ([path], [])


def test_a_file_that_keeps_changing_is_reported_only_once_it_stays_the_same(tmp_path: Path) -> None:
    watch = FolderWatch(tmp_path)
    path = write(tmp_path / "a.yaml", WINDOW)
    watch.poll()
    for size in range(1, 4):
        write(path, WINDOW[:size * 20])
        assert watch.poll() == ([], [])
    assert watch.poll() == ([path], [])


def test_a_file_back_to_the_reported_version_before_it_settled_is_not_reported(tmp_path: Path) -> None:
    watch = FolderWatch(tmp_path)
    path = write(tmp_path / "a.yaml", WINDOW)
    moved_aside = tmp_path / "a.yaml.orig"
    watch.poll()
    os.replace(path, moved_aside)  # gone for one poll, then back as it was
    assert watch.poll() == ([], [])
    os.replace(moved_aside, path)
    assert watch.poll() == ([], [])
    assert watch.poll() == ([], [])


def test_a_file_that_moved_while_being_read_is_reported_again_once_settled(tmp_path: Path) -> None:
    watch = FolderWatch(tmp_path)
    path = write(tmp_path / "a.yaml", WINDOW)
    assert watch.poll() == ([path], [])
    assert watch.still_as_reported(path)
    write(path, WINDOW + "# the rest\n")
    assert not watch.still_as_reported(path)
    assert watch.poll() == ([], [])
    assert watch.poll() == ([path], [])
    assert watch.still_as_reported(path)


def test_a_file_that_vanished_while_being_read_is_reported_removed_once_it_stays_away(
        tmp_path: Path) -> None:
    watch = FolderWatch(tmp_path)
    path = write(tmp_path / "a.yaml", WINDOW)
    watch.poll()
    path.unlink()
    assert not watch.still_as_reported(path)
    assert watch.poll() == ([], [])
    assert watch.poll() == ([], [path])


def test_unquoted_times_are_read_as_the_strings_they_were_typed_as(tmp_path: Path) -> None:
    text = WINDOW.replace('schedule: "0 3 * * SUN", duration: 2h',
                          "start: 2026-12-01T02:00:00Z, end: 2026-12-01")
    (manifest,), _ = read_manifests(write(tmp_path / "w.yaml", text), "w.yaml")
    assert (manifest.body["spec"]["start"], manifest.body["spec"]["end"]) == (
        "2026-12-01T02:00:00Z", "2026-12-01")


def test_hidden_files_and_folders_and_other_files_are_not_manifests(tmp_path: Path) -> None:
    write(tmp_path / ".git" / "x.yaml", WINDOW)
    write(tmp_path / ".draft.yaml", WINDOW)
    write(tmp_path / "notes.txt", WINDOW)
    assert FolderWatch(tmp_path).poll() == ([], [])


def test_a_file_the_operator_wrote_itself_needs_no_quiet_poll(tmp_path: Path) -> None:
    written: dict[Path, FileVersion] = {}
    watch = FolderWatch(tmp_path, written.get)
    path = write_yaml_file(tmp_path / "a.yaml", {"spec": {"title": "down"}}, written)
    watch.poll()
    # A person saves, and before the next poll the operator rewrites the file (new status)
    # from the person's version: complete by construction, so it is reported at once.
    write(path, WINDOW)
    write_yaml_file(path, {"spec": {"title": "edited"}, "status": {"durationSeconds": 3}}, written)
    assert watch.poll() == ([path], [])
    # The same again at every poll (an open incident evaluated every second): still reported.
    write(path, WINDOW + "# again\n")
    write_yaml_file(path, {"spec": {"title": "edited again"}, "status": {"durationSeconds": 4}}, written)
    assert watch.poll() == ([path], [])


def test_a_persons_write_is_still_awaited_even_if_the_operator_wrote_the_file_before(
        tmp_path: Path) -> None:
    written: dict[Path, FileVersion] = {}
    watch = FolderWatch(tmp_path, written.get)
    path = write_yaml_file(tmp_path / "a.yaml", {"spec": {"title": "down"}}, written)
    watch.poll()
    write(path, "spec: {tit")  # half-way through a person's save
    assert watch.poll() == ([], [])


def write_yaml_file(path: Path, document: dict[str, object], written: dict[Path, FileVersion]) -> Path:
    written[path] = write_yaml(path, document)
    return path


def test_unquoted_times_stay_strings_through_a_rewrite(tmp_path: Path) -> None:
    path = write(tmp_path / "incident.yaml", "spec:\n  acknowledgedAt: 2026-11-26T04:20:00Z\n")
    document = read_yaml(path)
    assert document["spec"]["acknowledgedAt"] == "2026-11-26T04:20:00Z"
    write_yaml(path, {**document, "status": {"durationSeconds": 1}})
    assert read_yaml(path)["spec"]["acknowledgedAt"] == "2026-11-26T04:20:00Z"
    assert "2026-11-26 04:20:00" not in path.read_text()


def test_files_in_subfolders_are_found_and_reported_in_path_order(tmp_path: Path) -> None:
    (tmp_path / "team-b").mkdir()
    (tmp_path / "team-a" / "deep").mkdir(parents=True)
    for name in ("team-b/x.yaml", "team-a/deep/y.yml", "z.yaml", "team-a-notes.yaml"):
        (tmp_path / name).write_text("{}\n")
    changed, removed = FolderWatch(tmp_path).poll()
    assert changed == sorted([tmp_path / "team-b/x.yaml", tmp_path / "team-a/deep/y.yml",
                              tmp_path / "z.yaml", tmp_path / "team-a-notes.yaml"])
    assert removed == []


def test_a_file_replaced_by_a_rename_is_reported_once_settled(tmp_path: Path) -> None:
    target = tmp_path / "a.yaml"
    target.write_text("a: 1\n")
    watch = FolderWatch(tmp_path)
    watch.poll()
    replacement = tmp_path / ".a.yaml.swp"
    replacement.write_text("a: 2\n")  # the same size, maybe the same instant: a new inode
    replacement.replace(target)
    assert watch.poll() == ([], [])  # not settled yet
    assert watch.poll() == ([target], [])
    assert watch.poll() == ([], [])


def test_a_linked_folder_is_not_walked_and_a_missing_root_has_no_files(tmp_path: Path) -> None:
    (tmp_path / "real").mkdir()
    (tmp_path / "real" / "a.yaml").write_text("{}\n")
    (tmp_path / "link").symlink_to(tmp_path / "real", target_is_directory=True)
    assert list(FolderWatch(tmp_path).files()) == [tmp_path / "real" / "a.yaml"]
    assert FolderWatch(tmp_path / "absent").poll() == ([], [])
