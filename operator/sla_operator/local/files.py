"""YAML files that survive a kill at any instant: write a hidden temporary file, fsync, rename.

A reader sees either the old file or the new one, never half of one; a crash leaves at most a
stray temporary file, which ``remove_stale_temporaries`` clears at the next start.
"""

from __future__ import annotations

import enum
import functools
import json
import math
import os
import re
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

TEMPORARY_SUFFIX = ".tmp"


# LibYAML's parser and emitter where PyYAML was built with it (the pure-Python ones are about
# ten times slower, and local mode reads and writes a file per status change).
_SafeLoader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_SafeDumper: type[yaml.SafeDumper] = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


class ManifestLoader(_SafeLoader):  # type: ignore[valid-type,misc]
    """YAML as the API server stores these kinds: an unquoted time stays the string it was typed as.

    The CRDs declare times as strings and kubectl sends them as written; yaml.safe_load would
    turn ``acknowledgedAt: 2026-11-26T04:20:00Z`` into a datetime the schema then rejects, and a
    rewrite of the file would print it back as ``2026-11-26 04:20:00+00:00``.
    """


ManifestLoader.yaml_implicit_resolvers = {
    first: [(tag, pattern) for tag, pattern in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()}


class _Dumper(_SafeDumper):  # type: ignore[valid-type,misc]
    """Block style, keys in the order written, multi-line strings kept readable."""


def _represent_str(dumper: yaml.SafeDumper, text: str) -> yaml.ScalarNode:
    style = "|" if "\n" in text else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", text, style=style)


_Dumper.add_representer(str, _represent_str)


def dump_yaml(document: Mapping[str, Any]) -> str:
    """Block-style YAML; plain data (as statuses are) is written directly, which is several
    times faster than PyYAML's representer; anything else (multi-line or non-ASCII text,
    floats in exponent form, other types) goes through PyYAML."""
    if not document:
        return "{}\n"
    lines: list[str] = []
    try:
        _block(document, "", lines)
    except _Unusual:
        return yaml.dump(dict(document), Dumper=_Dumper, sort_keys=False, default_flow_style=False,
                         allow_unicode=True, width=100)
    lines.append("")
    return "\n".join(lines)


class _Unusual(Exception):
    """A value the direct writer leaves to PyYAML."""


_PLAIN = re.compile(r"[A-Za-z0-9_./][A-Za-z0-9_./:@ ()=,+-]*")
_PRINTABLE_ASCII = re.compile(r"[\x20-\x7e]*")
_STR_TAG = "tag:yaml.org,2002:str"


@functools.lru_cache(maxsize=4096)
def _text(value: str) -> str:
    """A string as a YAML scalar that reads back as that same string."""
    if not _PRINTABLE_ASCII.fullmatch(value):
        raise _Unusual
    if (_PLAIN.fullmatch(value) and not value.endswith((" ", ":")) and ": " not in value
            and " #" not in value
            and yaml.resolver.Resolver().resolve(yaml.ScalarNode, value, (True, False)) == _STR_TAG):
        return value
    return json.dumps(value)  # printable ASCII: only " and \ are escaped, as YAML reads them


def _scalar(value: object) -> str:
    kind = type(value)
    if kind is str:
        return _text(value)  # type: ignore[arg-type]
    if value is None:
        return "null"
    if kind is bool:
        return "true" if value else "false"
    if kind is int:
        return str(value)
    if kind is float:
        shown = repr(value)
        if "e" in shown or not math.isfinite(value):  # type: ignore[arg-type]
            raise _Unusual
        return shown
    if (kind is dict or kind is list) and not value:
        return "{}" if kind is dict else "[]"
    raise _Unusual


def _block(node: Mapping[str, Any] | list[Any], indent: str, lines: list[str]) -> None:
    if isinstance(node, Mapping):
        for key, value in node.items():
            if type(key) is not str:
                raise _Unusual
            _entry(f"{indent}{_text(key)}:", value, indent, lines)
        return
    for item in node:
        if type(item) is dict and item:
            lines.extend(_list_entry(item, indent))
        elif type(item) is list and item:
            raise _Unusual
        else:
            lines.append(f"{indent}- {_scalar(item)}")


# Floats are left out: 0.0 and -0.0 are equal but written differently.
_SCALARS = frozenset({str, int, bool, type(None)})
_ENTRY_MEMO: dict[tuple[object, ...], list[str]] = {}  # any thread: a race costs one render
_ENTRY_MEMO_SIZE = 16384  # about 1 kB each


def _list_entry(item: dict[str, Any], indent: str) -> list[str]:
    """The lines of one mapping in a list. A mapping of scalars is remembered by its keys,
    values and their types (1 and True are equal, but not written alike): a status lists 90
    days of which one changes between writes."""
    types = tuple(map(type, item.values()))
    key: tuple[object, ...] | None = None
    if _SCALARS.issuperset(types):
        key = (indent, tuple(item.items()), types)
        known = _ENTRY_MEMO.get(key)
        if known is not None:
            return known
    lines: list[str] = []
    first = True
    for name, value in item.items():
        if type(name) is not str:
            raise _Unusual
        _entry(f"{indent}{'- ' if first else '  '}{_text(name)}:", value, indent + "  ", lines)
        first = False
    if key is not None:
        if len(_ENTRY_MEMO) >= _ENTRY_MEMO_SIZE:
            _ENTRY_MEMO.clear()
        _ENTRY_MEMO[key] = lines
    return lines


def _entry(head: str, value: Any, indent: str, lines: list[str]) -> None:
    if type(value) is dict and value:
        lines.append(head)
        _block(value, indent + "  ", lines)
    elif type(value) is list and value:
        lines.append(head)
        _block(value, indent, lines)  # a sequence under a key is not indented, as PyYAML writes it
    else:
        lines.append(f"{head} {_scalar(value)}")


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
    # A unique name: two writers of one file never share (and tear) a temporary file.
    temporary = path.with_name(f".{path.name}.{uuid.uuid4().hex[:12]}{TEMPORARY_SUFFIX}")
    try:
        handle = open(temporary, "w", encoding="utf-8")  # noqa: SIM115 (closed below)
    except FileNotFoundError:  # the first file of its folder (the folder made only then)
        path.parent.mkdir(parents=True, exist_ok=True)
        handle = open(temporary, "w", encoding="utf-8")  # noqa: SIM115
    with handle:
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
