"""YAML files that survive a kill at any instant: write a hidden temporary file, fsync, rename.

A reader sees either the old file or the new one, never half of one; a crash leaves at most a
stray temporary file, which ``remove_stale_temporaries`` clears at the next start.
"""

from __future__ import annotations

import enum
import os
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

TEMPORARY_SUFFIX = ".tmp"


class ManifestLoader(yaml.SafeLoader):
    """YAML as the API server stores these kinds: an unquoted time stays the string it was typed as.

    The CRDs declare times as strings and kubectl sends them as written; yaml.safe_load would
    turn ``acknowledgedAt: 2026-11-26T04:20:00Z`` into a datetime the schema then rejects, and a
    rewrite of the file would print it back as ``2026-11-26 04:20:00+00:00``.
    """


ManifestLoader.yaml_implicit_resolvers = {
    first: [(tag, pattern) for tag, pattern in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()}


class _Dumper(yaml.SafeDumper):
    """Block style, keys in the order written, multi-line strings kept readable."""


def _represent_str(dumper: yaml.SafeDumper, text: str) -> yaml.ScalarNode:
    style = "|" if "\n" in text else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", text, style=style)


_Dumper.add_representer(str, _represent_str)


def dump_yaml(document: Mapping[str, Any]) -> str:
    return yaml.dump(dict(document), Dumper=_Dumper, sort_keys=False, default_flow_style=False,
                     allow_unicode=True, width=100)


FileVersion = tuple[int, int, int]
"""(inode, mtime in ns, size): an editor that renames changes the inode, one that writes in
place changes the modification time."""


class Unchecked(enum.Enum):
    """Write whatever version the file is at (the default)."""

    ANY_VERSION = "any"


class FileChanged(Exception):
    """The file is no longer the version it was read as: somebody wrote it in between."""


def write_atomically(path: Path, text: str,
                     unless_changed_from: FileVersion | Unchecked | None = Unchecked.ANY_VERSION
                     ) -> FileVersion:
    """Replace ``path`` with ``text`` in one step, durable once this returns; the version written.

    With ``unless_changed_from`` (a version from ``read_yaml_versioned``, or None for "the file
    must not exist"), FileChanged is raised instead when the file changed since, checked just
    before the rename: the window a person's edit could still fall into is microseconds, not
    the whole read-modify-write.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    # A unique name: two writers of one file never share (and tear) a temporary file.
    temporary = path.with_name(f".{path.name}.{uuid.uuid4().hex[:12]}{TEMPORARY_SUFFIX}")
    with open(temporary, "w", encoding="utf-8") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
        # A rename keeps inode and modification time: this is the version ``path`` will have.
        written = _version_of(os.fstat(handle.fileno()))
    if unless_changed_from is not Unchecked.ANY_VERSION and file_version(path) != unless_changed_from:
        temporary.unlink(missing_ok=True)
        raise FileChanged(f"{path} changed while it was being updated")
    os.replace(temporary, path)
    _fsync_directory(path.parent)
    return written


def write_yaml(path: Path, document: Mapping[str, Any],
               unless_changed_from: FileVersion | Unchecked | None = Unchecked.ANY_VERSION) -> FileVersion:
    return write_atomically(path, dump_yaml(document), unless_changed_from)


def read_yaml(path: Path) -> dict[str, Any]:
    """One YAML mapping; yaml.YAMLError or ValueError when the file holds something else."""
    return _mapping(path, path.read_text(encoding="utf-8"))


def read_yaml_versioned(path: Path) -> tuple[dict[str, Any] | None, FileVersion | None]:
    """The mapping in ``path`` and the version it was read from; (None, None) when absent.

    The version is taken from the open file before reading it: a write that lands during the
    read makes the version look older than the text, which costs a retry, never an update.
    """
    try:
        with open(path, encoding="utf-8") as handle:
            version = _version_of(os.fstat(handle.fileno()))
            text = handle.read()
    except FileNotFoundError:
        return None, None
    return _mapping(path, text), version


def file_version(path: Path) -> FileVersion | None:
    try:
        return _version_of(os.stat(path))
    except FileNotFoundError:
        return None


def _version_of(stat: os.stat_result) -> FileVersion:
    return stat.st_ino, stat.st_mtime_ns, stat.st_size


def _mapping(path: Path, text: str) -> dict[str, Any]:
    loaded = yaml.load(text, Loader=ManifestLoader)  # a SafeLoader: no arbitrary objects
    if loaded is None:
        return {}
    if not isinstance(loaded, dict):
        raise ValueError(f"{path}: expected a mapping at the top level, found {type(loaded).__name__}")
    return loaded


def merge_patch(target: Mapping[str, Any], patch: Mapping[str, Any]) -> dict[str, Any]:
    """RFC 7386 JSON merge patch, as the API server applies a status patch: null deletes a key."""
    merged = dict(target)
    for key, value in patch.items():
        if value is None:
            merged.pop(key, None)
        elif isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = merge_patch(merged[key], value)
        elif isinstance(value, Mapping):
            merged[key] = merge_patch({}, value)
        else:
            merged[key] = value
    return merged


def is_visible_yaml(path: Path) -> bool:
    return path.suffix in (".yaml", ".yml") and not path.name.startswith(".")


def remove_stale_temporaries(folder: Path) -> list[Path]:
    """Temporary files left by a process killed mid-write; their target is still intact."""
    removed = []
    if folder.is_dir():
        for stale in folder.rglob(f".*{TEMPORARY_SUFFIX}"):
            stale.unlink(missing_ok=True)
            removed.append(stale)
    return removed


def _fsync_directory(folder: Path) -> None:
    """Make the rename itself durable (a power cut after it must not bring the old file back)."""
    descriptor = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
