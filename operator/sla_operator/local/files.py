"""YAML files that survive a kill at any instant: write a hidden temporary file, fsync, rename.

A reader sees either the old file or the new one, never half of one; a crash leaves at most a
stray temporary file, which ``remove_stale_temporaries`` clears at the next start. A file
rewritten often (a status) is written into a hidden spare beside it instead, which then takes
its place in one step (see ``write_atomically``); the spare is kept, holding the version before.
"""

from __future__ import annotations

import contextlib
import ctypes
import enum
import errno
import fcntl
import itertools
import json
import math
import operator
import os
import re
import sys
import threading
from collections.abc import Callable, Mapping
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
_STR_TAG = "tag:yaml.org,2002:str"
_RESOLVER = yaml.resolver.Resolver()  # how a reader types a plain scalar (stateless here)


class _Texts(dict[str, str]):
    """What each string already seen is written as: a status repeats most of its strings from
    one write to the next (names, states, messages, dates, percentages), and a lookup here is
    one C call. A new probe time is one new string per endpoint per probe; the table is cleared
    when full. Any thread may use it: a race costs one string's check."""

    def __missing__(self, value: str) -> str:
        if not (value.isascii() and value.isprintable()):
            raise _Unusual
        if (_PLAIN.fullmatch(value) and not value.endswith((" ", ":")) and ": " not in value
                and " #" not in value
                and _RESOLVER.resolve(yaml.ScalarNode, value, (True, False)) == _STR_TAG):
            text = value
        else:
            text = json.dumps(value)  # printable ASCII: only " and \ are escaped, as YAML reads them
        if type(value) is str:  # a subclass may print otherwise: it is checked each time
            if len(self) >= _TEXTS_SIZE:
                self.clear()
            self[value] = text
        return text


_TEXTS = _Texts()
_TEXTS_SIZE = 65536
_text = _TEXTS.__getitem__
"""A string as a YAML scalar that reads back as that same string."""


def _float(value: float) -> str:
    shown = repr(value)
    if "e" in shown or not math.isfinite(value):
        raise _Unusual
    return shown


def _empty(value: dict[Any, Any] | list[Any]) -> str:
    if value:
        raise _Unusual  # not reached: a list entry with a non-empty collection has no plan
    return "{}" if type(value) is dict else "[]"


# How a value of each type is written, exactly by type: 1, True and 1.0 are equal in Python
# but not written alike (and 0.0 and -0.0 neither).
_FORMATS: dict[type, Callable[[Any], str]] = {
    str: _text, int: int.__repr__, bool: {False: "false", True: "true"}.__getitem__,
    type(None): {None: "null"}.__getitem__, float: _float, dict: _empty, list: _empty}


def _scalar(value: object) -> str:
    format_ = _FORMATS.get(type(value))
    if format_ is None or (format_ is _empty and value):
        raise _Unusual
    return format_(value)


def _block(node: Mapping[str, Any] | list[Any], indent: str, lines: list[str]) -> None:
    if isinstance(node, Mapping):
        for key, value in node.items():
            if type(key) is not str:
                raise _Unusual
            _entry(f"{indent}{_text(key)}:", value, indent, lines)
        return
    for item in node:
        if type(item) is dict and item:
            _list_entry(item, indent, lines)
        elif type(item) is list and item:
            raise _Unusual
        else:
            lines.append(f"{indent}- {_scalar(item)}")


class _Plan:
    """How the entries of one list with given keys and value types are written: a template of
    their lines ("- a: {}\\n  b: {}") filled in with C calls only, and a memory of entries
    already written, used only while it pays. Daily bars repeat from one write to the next
    (only today's changes) and across agreements (a day without downtime reads alike); an
    endpoint's entry changes with each probe, and remembering those would only cost."""

    __slots__ = ("formats", "hits", "looked_up", "memo", "paused", "template")

    def __init__(self, template: str, formats: tuple[Callable[[Any], str], ...],
                 remember: bool) -> None:
        self.template, self.formats = template, formats
        self.memo: dict[tuple[object, ...], str] | None = {} if remember else None
        self.looked_up = self.hits = self.paused = 0

    def written(self, values: tuple[object, ...]) -> str:
        return self.template.format(*map(operator.call, self.formats, values))

    def missed(self, values: tuple[object, ...], text: str) -> None:
        """Remember ``text``; every MEMO_WINDOW lookups, keep remembering only if at least a
        quarter of them hit (else pause for MEMO_PAUSE entries, then try again)."""
        memo = self.memo
        assert memo is not None
        if len(memo) >= MEMO_SIZE:
            memo.clear()
        memo[values] = text
        self.looked_up += 1
        if self.looked_up >= MEMO_WINDOW:
            if self.hits * 4 < self.looked_up:
                self.memo, self.paused = None, MEMO_PAUSE
            self.looked_up = self.hits = 0

    def resumed(self) -> None:
        self.paused -= 1
        if self.paused <= 0:
            self.memo = {}


MEMO_SIZE = 8192  # entries per plan, about 300 bytes each
MEMO_WINDOW = 1024
MEMO_PAUSE = 16384
_PLANS: dict[tuple[str, tuple[object, ...], tuple[type, ...]], _Plan | None] = {}
_PLANS_SIZE = 1024
_NO_PLAN = _Plan("", (), False)  # not made yet


def _list_entry(item: dict[str, Any], indent: str, lines: list[str]) -> None:
    """One mapping in a list: by its plan when its values are scalars (as in a status)."""
    keys = tuple(item)
    values = tuple(item.values())
    types = tuple(map(type, values))
    plan = _PLANS.get((indent, keys, types), _NO_PLAN)
    if plan is _NO_PLAN:
        plan = _plan(indent, keys, types)
    if plan is not None:
        memo = plan.memo
        if memo is None:
            lines.append(plan.written(values))
            if plan.paused:
                plan.resumed()
            return
        text = memo.get(values)
        if text is None:
            text = plan.written(values)
            plan.missed(values, text)
        else:
            plan.hits += 1
            plan.looked_up += 1
        lines.append(text)
        return
    first = True
    for name, value in item.items():
        if type(name) is not str:
            raise _Unusual
        _entry(f"{indent}{'- ' if first else '  '}{_text(name)}:", value, indent + "  ", lines)
        first = False


def _plan(indent: str, keys: tuple[object, ...], types: tuple[type, ...]) -> _Plan | None:
    """None when some value is not a scalar (a mapping or list may not be empty next time)."""
    plan: _Plan | None = None
    if all(kind in _FORMATS and kind is not dict and kind is not list for kind in types):
        parts = []
        for position, name in enumerate(keys):
            if type(name) is not str:
                raise _Unusual
            head = f"{indent}{'- ' if position == 0 else '  '}{_text(name)}: "
            parts.append(head.replace("{", "{{").replace("}", "}}") + "{}")
        # Equal values of equal types are written alike, except floats (0.0 and -0.0).
        plan = _Plan("\n".join(parts), tuple(_FORMATS[kind] for kind in types),
                     remember=float not in types)
    if len(_PLANS) >= _PLANS_SIZE:
        _PLANS.clear()
    _PLANS[(indent, keys, types)] = plan
    return plan


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
                     unless_changed_from: FileVersion | Unchecked | None = Unchecked.ANY_VERSION,
                     spare: bool = False) -> FileVersion:
    """Replace ``path`` with ``text`` in one step, durable once this returns (with ``spare``:
    see below); the version written.

    With ``unless_changed_from`` (a version from ``read_yaml_versioned``, or None for "the file
    must not exist"), FileChanged is raised instead when the file changed since, checked just
    before the rename: the window a person's edit could still fall into is microseconds, not
    the whole read-modify-write.

    With ``spare``, for a file rewritten often (a status), the new text is written into a
    hidden spare file kept beside it (``.NAME.spare``, the previous version), which is then
    exchanged with the file in one step: creating and deleting a file each time costs far more
    CPU than overwriting one (about 0.4 ms to create a file on ext4). Where the exchange is not
    available (not Linux, another file system, the file's first write), the spare is renamed
    over the file instead. An exchange is atomic at once but durable only once its folder is
    synced, which is deferred (see ``_write_through_spare``): a crash of the machine (not of
    the process) may bring back the previous version, whole.
    """
    data = text.encode("utf-8")
    if spare:
        written = _write_through_spare(path, data, unless_changed_from)
        if written is not None:
            return written
    # A unique name: two writers of one file never share (and tear) a temporary file.
    temporary = path.with_name(f".{path.name}.{os.urandom(6).hex()}{TEMPORARY_SUFFIX}")
    try:
        descriptor = os.open(temporary, _CREATE, 0o666)
    except FileNotFoundError:  # the first file of its folder (the folder made only then)
        path.parent.mkdir(parents=True, exist_ok=True)
        descriptor = os.open(temporary, _CREATE, 0o666)
    try:
        try:
            written = _write_whole(descriptor, data)
        finally:
            os.close(descriptor)
        _check_unchanged(path, unless_changed_from)
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    _sync_folder(path.parent)
    return written


_CREATE = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_CLOEXEC", 0)
SPARE_SUFFIX = ".spare"


def _write_whole(descriptor: int, data: bytes) -> FileVersion:
    """All of ``data`` at the start of the open file, its end there too, on the disk; the
    version the file will have where it is renamed (a rename keeps inode and mtime)."""
    view, offset = memoryview(data), 0
    while offset < len(data):
        offset += os.write(descriptor, view[offset:])
    os.ftruncate(descriptor, len(data))  # a spare may have held a longer text
    # The data on the disk before the file takes the place of the old one: else a crash
    # could leave the new name pointing at an empty or partly written file.
    os.fsync(descriptor)
    return _version_of(os.fstat(descriptor))


def _check_unchanged(path: Path, unless_changed_from: FileVersion | Unchecked | None) -> None:
    if unless_changed_from is not Unchecked.ANY_VERSION and file_version(path) != unless_changed_from:
        raise FileChanged(f"{path} changed while it was being updated")


def _write_through_spare(path: Path, data: bytes,
                         unless_changed_from: FileVersion | Unchecked | None) -> FileVersion | None:
    """Write ``path`` by way of its spare; None when the spare cannot be used this time (in use
    by another writer, gone meanwhile): then the caller writes through a new temporary file.

    The folder is not synced after the exchange, only before the spare is next overwritten
    (unless a write of another file in that folder synced it since): one sync of a folder of
    fifty statuses then covers all their exchanges of a status interval, instead of one sync
    per write. Until then, a crash of the machine may bring back the file's previous version,
    whole (both were on the disk before the exchange). For statuses that is acceptable: a
    status is a view the engine computes again from the records (incident files, written
    durably through new temporaries, and the probes); what it takes back from a status after
    a restart (when it last evaluated, the endpoints' last states) is then what a crash one
    status interval earlier would have left, a case it handles anyway. The sync before the
    overwrite is what keeps a crash from tearing: until the exchange is on the disk, the
    spare may still be the file's name there.
    """
    folder = path.parent
    spare = path.with_name(f".{path.name}{SPARE_SUFFIX}")
    _sync_before_overwrite(path)
    try:
        descriptor = os.open(spare, os.O_WRONLY | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o666)
    except FileNotFoundError:
        return None  # no folder yet: the caller makes it
    try:
        # Overwritten in place, the spare must be this writer's alone: a second writer (another
        # process on the same folder) would tear it. The lock is released when it is closed;
        # a writer that locks a spare another one has just exchanged finds it renamed away.
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            return None
        if os.stat(spare).st_ino != os.fstat(descriptor).st_ino:
            return None
        written = _write_whole(descriptor, data)
        _check_unchanged(path, unless_changed_from)
        exchanged = _exchange(spare, path)
        if exchanged:
            _EXCHANGED[path] = next(_TICKS)
        else:
            os.replace(spare, path)  # the first write, or no exchange here: the spare is used up
    except FileNotFoundError:
        return None  # the spare was deleted meanwhile
    finally:
        os.close(descriptor)
    if not exchanged:
        _sync_folder(folder)  # a new file, or a rename: durable at once, as without a spare
    return written


# Deferred folder syncs. A tick is taken after each exchange, and before each folder sync; an
# exchange is on the disk once its folder has completed a sync whose tick is later. A file
# this process has not exchanged yet may have been exchanged by an earlier one: it needs a
# sync of its folder made by this process (ticks start at 1).
_TICKS = itertools.count(1)
_EXCHANGED: dict[Path, int] = {}  # file -> tick after its last exchange
_SYNCED: dict[Path, int] = {}  # folder -> tick before its last completed sync
_SYNCED_LOCK = threading.Lock()


def _sync_before_overwrite(path: Path) -> None:
    if _SYNCED.get(path.parent, 0) <= _EXCHANGED.get(path, 0):
        with contextlib.suppress(FileNotFoundError):  # no folder yet: nothing to overwrite
            _sync_folder(path.parent)


def _sync_folder(folder: Path) -> None:
    tick = next(_TICKS)
    _fsync_directory(folder)
    with _SYNCED_LOCK:  # worker threads: a later tick is never replaced by an earlier one
        if _SYNCED.get(folder, 0) < tick:
            _SYNCED[folder] = tick


def sync_deferred() -> None:
    """Sync every folder with an exchange not yet on the disk (at shutdown)."""
    for folder in {path.parent for path, tick in list(_EXCHANGED.items())
                   if _SYNCED.get(path.parent, 0) <= tick}:
        with contextlib.suppress(FileNotFoundError):
            _sync_folder(folder)


def _renameat2() -> Callable[..., int] | None:
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        function: Any = libc.renameat2
    except (OSError, AttributeError):  # not Linux, or a C library without it (glibc < 2.28)
        return None
    function.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p,
                         ctypes.c_uint]
    function.restype = ctypes.c_int
    return function  # type: ignore[no-any-return]


_RENAMEAT2 = _renameat2() if sys.platform.startswith("linux") else None
_AT_FDCWD = -100
_RENAME_EXCHANGE = 2


def _exchange(first: Path, second: Path) -> bool:
    """Swap two existing names in one step (Linux renameat2 RENAME_EXCHANGE); False when the
    second does not exist or the system cannot, leaving both as they were."""
    if _RENAMEAT2 is None:
        return False
    if _RENAMEAT2(_AT_FDCWD, os.fsencode(first), _AT_FDCWD, os.fsencode(second),
                  _RENAME_EXCHANGE) == 0:
        return True
    error = ctypes.get_errno()
    # EPERM too: a container's seccomp profile may refuse the call itself; a rename the
    # folder's permissions refuse is refused again, and reported, by the fallback.
    if error in (errno.ENOENT, errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP, errno.EXDEV,
                 errno.EPERM):
        if error == errno.ENOENT and not first.exists():
            raise FileNotFoundError(error, os.strerror(error), str(first))
        return False
    raise OSError(error, os.strerror(error), str(second))


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
        elif _is_mapping(value):
            old = merged.get(key)
            merged[key] = merge_patch(old if _is_mapping(old) else {}, value)
        else:
            merged[key] = value
    return merged


def _is_mapping(value: object) -> bool:
    # A status is mostly lists and strings: those are told apart without the ABC's check.
    kind = type(value)
    return kind is dict or (kind is not list and kind is not str and isinstance(value, Mapping))


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
