"""YAML files that survive a kill at any instant: write a hidden temporary file, fsync, rename.

A reader sees either the old file or the new one, never half of one; a crash leaves at most a
stray temporary file, which ``remove_stale_temporaries`` clears at the next start.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

TEMPORARY_SUFFIX = ".tmp"


class _Dumper(yaml.SafeDumper):
    """Block style, keys in the order written, multi-line strings kept readable."""


def _represent_str(dumper: yaml.SafeDumper, text: str) -> yaml.ScalarNode:
    style = "|" if "\n" in text else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", text, style=style)


_Dumper.add_representer(str, _represent_str)


def dump_yaml(document: Mapping[str, Any]) -> str:
    return yaml.dump(dict(document), Dumper=_Dumper, sort_keys=False, default_flow_style=False,
                     allow_unicode=True, width=100)


def write_atomically(path: Path, text: str) -> None:
    """Replace ``path`` with ``text`` in one step, durable once this returns."""
    path.parent.mkdir(parents=True, exist_ok=True)
    # A unique name: two writers of one file never share (and tear) a temporary file.
    temporary = path.with_name(f".{path.name}.{uuid.uuid4().hex[:12]}{TEMPORARY_SUFFIX}")
    with open(temporary, "w", encoding="utf-8") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)
    _fsync_directory(path.parent)


def write_yaml(path: Path, document: Mapping[str, Any]) -> None:
    write_atomically(path, dump_yaml(document))


def read_yaml(path: Path) -> dict[str, Any]:
    """One YAML mapping; yaml.YAMLError or ValueError when the file holds something else."""
    loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
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
