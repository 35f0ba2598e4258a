"""Manifest files: read, checked against the CRD schemas, and watched for edits.

A folder holds any number of YAML files, each with any number of documents (``---``) of the
kinds ServiceLevelAgreement, MaintenanceWindow, Incident, SupportRequest (sla.dev/v1alpha1) and Secret (v1,
for probe headers). Every problem is reported as ``file: field.path: what is wrong``.
"""

from __future__ import annotations

import base64
import binascii
import os
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from stat import S_ISDIR
from typing import Any

import yaml

from sla_operator.domain.errors import Problem
from sla_operator.local.files import FileVersion, ManifestLoader, file_version
from sla_operator.local.schema import validate
from sla_operator.store.base import Key

API_VERSIONS = {"ServiceLevelAgreement": "sla.dev/v1alpha1", "MaintenanceWindow": "sla.dev/v1alpha1",
                "Incident": "sla.dev/v1alpha1", "Secret": "v1",
                "NotificationRoute": "sla.dev/v1alpha1", "SupportRequest": "sla.dev/v1alpha1"}
_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")

Ident = tuple[str, str, str]  # (kind, namespace, name)


class FileError(Exception):
    """A file that cannot be read as YAML at all; the message names the file and line."""


@dataclass(frozen=True)
class Manifest:
    kind: str
    key: Key
    body: dict[str, Any]
    source: str
    """The file it came from, as shown in messages."""
    problems: tuple[Problem, ...] = ()
    namespace_defaulted: bool = False
    """The document had no metadata.namespace: it is in ``default``, as kubectl would put it."""

    @property
    def ident(self) -> Ident:
        return (self.kind, *self.key)

    def describe(self) -> str:
        return f"{self.kind} {self.key[0]}/{self.key[1]}"

    def messages(self, problems: Iterable[Problem]) -> list[str]:
        """``file: field.path: message (Kind namespace/name)``, one per problem."""
        return [f"{self.source}: {p} ({self.describe()})" for p in problems]


def manifests_folder_problem(manifests: Path) -> str | None:
    """Why ``--manifests`` cannot be read as a folder of manifests; None when it can."""
    if manifests.is_file():
        return (f"--manifests {manifests}: is a file; give the folder it is in (every YAML "
                "file of the folder is read), or a folder of its own")
    if not manifests.is_dir():
        return f"--manifests {manifests}: no such folder"
    return None


def read_manifests(path: Path, shown: str,
                   foreign: list[str] | None = None) -> tuple[list[Manifest], list[str]]:
    """The documents of one file, and the messages of documents that name no object at all.

    A document with neither ``apiVersion`` nor ``kind`` is no Kubernetes manifest (an
    Alertmanager configuration, a probe policy file beside the manifests): it is no mistake,
    and is said in ``foreign`` instead."""
    try:
        documents = list(yaml.load_all(path.read_text(encoding="utf-8"), Loader=ManifestLoader))
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
        raise FileError(f"{shown}: {where}YAML syntax error: {error.problem or error}") from None
    except (yaml.YAMLError, OSError, UnicodeDecodeError) as error:
        raise FileError(f"{shown}: cannot be read: {error}") from None
    manifests, unnamed = [], []
    for index, document in enumerate(documents):
        if document is None:
            continue
        where = shown if len(documents) == 1 else f"{shown} (document {index + 1})"
        if isinstance(document, Mapping) and "kind" not in document and "apiVersion" not in document:
            if foreign is not None:
                foreign.append(f"{where}: not a Kubernetes manifest (no apiVersion, no kind); "
                               "ignored")
            continue
        problem = _identity_problem(document)
        if problem is not None:
            unnamed.append(f"{where}: {problem}")
            continue
        manifests.append(_checked(document, where))
    return manifests, unnamed


def _identity_problem(document: object) -> Problem | None:
    if not isinstance(document, Mapping):
        return Problem("(document)", f"expected a manifest (a mapping), found {type(document).__name__}")
    kind = document.get("kind")
    if kind not in API_VERSIONS:
        return Problem("kind", f"{kind!r} is not supported here; use one of: {', '.join(API_VERSIONS)}")
    if document.get("apiVersion") != API_VERSIONS[kind]:
        return Problem("apiVersion", f"{document.get('apiVersion')!r} is not served for {kind}; "
                                     f"use {API_VERSIONS[kind]}")
    metadata = document.get("metadata")
    name = metadata.get("name") if isinstance(metadata, Mapping) else None
    if not isinstance(name, str) or not _SUBDOMAIN.match(name) or len(name) > 253:
        return Problem("metadata.name", f"{name!r} must be a DNS subdomain name (lower-case letters, "
                                        "digits, '-' and '.', at most 253 characters)")
    namespace = metadata.get("namespace", "default") if isinstance(metadata, Mapping) else None
    if not isinstance(namespace, str) or not _LABEL.match(namespace) or len(namespace) > 63:
        return Problem("metadata.namespace", f"{namespace!r} must be a DNS label (lower-case "
                                             "letters, digits and '-', at most 63 characters)")
    return None


def _checked(document: Mapping[str, Any], source: str) -> Manifest:
    body = dict(document)
    metadata = dict(body["metadata"])
    defaulted = "namespace" not in metadata
    metadata.setdefault("namespace", "default")
    body["metadata"] = metadata
    kind = str(body["kind"])
    problems = _secret_problems(body) if kind == "Secret" else validate(kind, body)
    return Manifest(kind, (metadata["namespace"], metadata["name"]), body, source, tuple(problems),
                    defaulted)


def _secret_problems(body: Mapping[str, Any]) -> list[Problem]:
    problems = []
    for field in ("data", "stringData"):
        values = body.get(field)
        if values is None:
            continue
        if not isinstance(values, Mapping):
            problems.append(Problem(field, "must map keys to string values"))
            continue
        for key, value in values.items():
            if not isinstance(value, str):
                problems.append(Problem(f"{field}.{key}", "must be a string"))
            elif field == "data" and _base64(value) is None:
                problems.append(Problem(f"{field}.{key}", "is not base64; put plain text in stringData"))
    return problems


def secret_data(body: Mapping[str, Any]) -> dict[str, str]:
    """data (base64) and stringData merged, stringData winning, as the API server stores it."""
    values = {str(k): _base64(str(v)) or "" for k, v in (body.get("data") or {}).items()}
    values.update({str(k): str(v) for k, v in (body.get("stringData") or {}).items()})
    return values


def _base64(text: str) -> str | None:
    try:
        return base64.b64decode(text, validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return None


_UNREAD: FileVersion = (-1, -1, -1)
"""Matches no file: a file read while it moved is reported again once it settles."""


class FolderWatch:
    """Which YAML files below a folder appeared, changed or vanished, once they have settled.

    A file written in place (``>``, ``cp``, an editor saving over it) is empty or half-written
    for a moment; reading it then would remove every object it holds and add them back a poll
    later (an outage counted in planned maintenance, an agreement's runtime state lost). So a
    new, changed or removed file is reported only when two consecutive polls saw the same
    version (inode, modification time, size), or saw it absent both times: it has been quiet
    for one poll interval. A file really emptied or deleted is reported one poll later.

    The first poll reports the files as they are. At startup nothing is in effect that a torn
    read could undo, and the engine must not start evaluating without the incidents and windows
    on disk (it would open an outage again or count planned maintenance as downtime); a file
    caught mid-write at that instant changes again, and is read again once it settles.
    """

    def __init__(self, root: Path,
                 own_write: Callable[[Path], FileVersion | None] = lambda path: None) -> None:
        self.root = root
        # A version the operator itself wrote (atomically) is complete: it needs no quiet poll.
        # Without this an open incident's file, rewritten at every evaluation, might never
        # settle when evaluations are as frequent as polls, and a person's edit never apply.
        self._own_write = own_write
        self._last_poll: dict[str, FileVersion] | None = None
        self._reported: dict[str, FileVersion] = {}

    def files(self) -> dict[Path, FileVersion]:
        """Every visible YAML file under the root (hidden folders and files left out)."""
        return {Path(path): version for path, version in sorted(self._scan().items())}

    def _scan(self) -> dict[str, FileVersion]:
        """The same, by path text: polled every second, a folder of thousands of files costs
        one ``os.scandir`` per folder and one ``stat`` per file, no pathlib objects."""
        found: dict[str, FileVersion] = {}
        folders = [str(self.root)]
        while folders:
            try:
                with os.scandir(folders.pop()) as entries:
                    listed = list(entries)
            except (FileNotFoundError, NotADirectoryError):
                continue  # no folder (yet), or removed while listing
            for entry in listed:
                name = entry.name
                if name.startswith("."):
                    continue
                if name.endswith((".yaml", ".yml")):
                    try:
                        stat = os.stat(entry.path)
                    except FileNotFoundError:
                        continue  # replaced or removed while listing
                    if not S_ISDIR(stat.st_mode):
                        found[entry.path] = (stat.st_ino, stat.st_mtime_ns, stat.st_size)
                        continue
                # A folder as pathlib's rglob walks them: followed unless it is a symbolic link.
                try:
                    if entry.is_dir() and not entry.is_symlink():
                        folders.append(entry.path)
                except OSError:
                    continue
        return found

    def poll(self) -> tuple[list[Path], list[Path]]:
        """(new or changed files, removed files), each reported once it has settled."""
        current = self._scan()
        previous = current if self._last_poll is None else self._last_poll
        self._last_poll = current
        if current == self._reported:
            return [], []  # the usual poll: every file as last reported
        changed, removed = [], []
        for path in current.keys() | self._reported.keys():
            version = current.get(path)
            settled = version == previous.get(path) or (
                version is not None and version == self._own_write(Path(path)))
            if not settled or version == self._reported.get(path):
                continue  # still being written, or nothing new
            if version is None:
                del self._reported[path]
                removed.append(Path(path))
            else:
                self._reported[path] = version
                changed.append(Path(path))
        return sorted(changed), sorted(removed)

    def still_as_reported(self, path: Path) -> bool:
        """Whether ``path`` is still the version the last poll reported; asked after reading it.

        When it is not, it moved while being read: the read is to be discarded, and the file
        is reported again once it settles (as removed, if it is gone by then).
        """
        if file_version(path) == self._reported.get(str(path)):
            return True
        self._reported[str(path)] = _UNREAD
        return False
