"""The Store on a state folder: the same contract as the Kubernetes store, kept in YAML files.

Every write re-reads the file it changes and writes it back atomically, unless the file changed
after it was read (then it starts again from the new version), so what a person edited in the
meantime (an acknowledgement, an exclusion, an appended update) is kept. An
incident change decided on a copy a person has changed since (anything but appended updates)
is refused, so the engine decides again on the new version, as the Kubernetes store does.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import logging
import operator
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

import yaml

from sla_operator.domain.errors import SecretRefused, SpecError
from sla_operator.domain.fields import parse_time
from sla_operator.domain.incidents import Change, apply_change
from sla_operator.domain.model import Incident
from sla_operator.domain.records import (
    AGREEMENT_LABEL,
    API_VERSION,
    change_entries,
    format_time,
    incident_from_manifest,
    incident_spec,
    same_decision_basis,
    same_incident,
)
from sla_operator.local.files import (
    FileChanged,
    FileVersion,
    dump_yaml,
    file_version,
    merge_patch,
    read_yaml,
    read_yaml_versioned,
    write_atomically,
)
from sla_operator.probes.base import utc_now
from sla_operator.store.base import Key, Kind, StoreError

REGISTRY_FILE = "agreements.yaml"
NAME_ATTEMPTS = 20
REWRITE_ATTEMPTS = 5
QUIET_SECONDS = 0.1  # a file written by someone else this recently may be a save in progress
QUIET_WAIT_LIMIT = 2.0

log = logging.getLogger("sla_operator.local")
T = TypeVar("T")


class LocalStore:
    """Incidents, statuses and the agreement registry under ``root`` (layout: sla_operator.local)."""

    def __init__(self, root: Path, clock: Callable[[], datetime] = utc_now) -> None:
        self.root = root
        self.clock = clock
        self.secrets: dict[Key, dict[str, str]] = {}
        """Secret data by (namespace, name), from Secret manifests in the manifests folder."""
        # One read-modify-write of a file at a time (no lost updates); different files are
        # written concurrently.
        self._locks: dict[Path, asyncio.Lock] = {}
        self.written: dict[Path, FileVersion] = {}
        """The version of each file this store last wrote: complete by construction (atomic)."""
        self._contents: dict[Path, tuple[FileVersion, dict[str, Any], str]] = {}
        """What this store last wrote to each file (version, document, text): while the file is
        still at that version, it is not read back and parsed, and the same text is not written
        again."""
        self._recording = 0  # inside recording_agreements (nested)
        self._unrecorded: dict[str, Any] | None = None  # the registry with entries not written

    # ------------------------------------------------------------ paths

    def incident_path(self, key: Key) -> Path:
        return self.root / "incidents" / key[0] / f"{key[1]}.yaml"

    def status_path(self, kind: Kind, key: Key) -> Path:
        return self.root / "status" / kind.plural / key[0] / f"{key[1]}.yaml"

    @property
    def incidents_dir(self) -> Path:
        return self.root / "incidents"

    # ------------------------------------------------------------ Store protocol

    async def create_incident(self, incident: Incident, owner_uid: str | None) -> Incident:
        spec = incident_spec(incident)
        for attempt in range(1, NAME_ATTEMPTS):
            name = incident.name if attempt == 1 else f"{incident.name}-{attempt}"
            path = self.incident_path((incident.namespace, name))

            def new_file(existing: dict[str, Any] | None, name: str = name) -> dict[str, Any] | None:
                # None leaves an existing file as it is: the same incident, or another one.
                return None if existing is not None else self._incident_manifest(
                    incident, name, spec, owner_uid)

            async with self._lock(path):
                body, written = await self._rewrite(path, new_file)
            if written or same_incident(body, spec):
                return _parsed(body, path)
        raise StoreError(f"no free name for incident {incident.name}")

    async def change_incident(self, incident: Incident, change: Change) -> Incident:
        path = self.incident_path(incident.key)

        def changed_file(body: dict[str, Any] | None) -> dict[str, Any]:
            spec = _incident_spec_of(body, path)
            try:
                current = incident_from_manifest(body or {})
            except SpecError:
                # A person's edit the operator cannot read is not in effect (the folder sync
                # kept the last valid version): the change's own fields are written over it.
                values, entries = change_entries(spec, incident, change.fields, change.updates,
                                                 readable=False)
                spec.update(values)
                updates = spec["updates"] if isinstance(spec.get("updates"), list) else []
                spec["updates"] = [*updates, *entries]
                return _with_severity_label(body or {}, values.get("severity"))
            if not same_decision_basis(current, incident):
                # A person changed severity, state, an exclusion...: applying the engine's
                # fields could overwrite that. The watch reloads the file; then it decides again.
                raise StoreError(f"incident {incident.name} changed since it was read; "
                                 "retrying with the new version")
            # Apply the change to the file as it is now: updates appended meanwhile are kept.
            changed = apply_change(current, change)
            spec.update(incident_spec(changed))
            return _with_severity_label(body or {}, changed.severity.value
                                        if "severity" in change.fields else None)

        async with self._lock(path):
            body, _ = await self._rewrite(path, changed_file)
        try:
            return incident_from_manifest(body)
        except SpecError:  # still unreadable elsewhere: the operator goes on with its version
            return apply_change(incident, change)

    async def write_status(self, kind: Kind, key: Key, status: Mapping[str, Any]) -> None:
        path = self.incident_path(key) if kind is Kind.INCIDENT else self.status_path(kind, key)
        if kind is Kind.INCIDENT and not path.exists():
            # An incident from the manifests folder: its status lives beside the others.
            path = self.status_path(kind, key)
        incident_file = path == self.incident_path(key)
        before: dict[str, Any] = {}

        def with_status(body: dict[str, Any] | None) -> dict[str, Any]:
            nonlocal before
            if incident_file:
                _incident_spec_of(body, path)  # never a status-only file where a record was
            body = body if body is not None else _skeleton(kind, key)
            before = body.get("status") or {}
            body["status"] = merge_patch(before, status)
            return body

        async with self._lock(path):
            # A status file is rewritten every status interval: through a spare (see
            # write_atomically). Incident files, which people edit too, are written as new files.
            body, _ = await self._rewrite(path, with_status, spare=not incident_file,
                                          in_place=False)
        _log_transitions(kind, key, before, body["status"])

    async def read_secret(self, namespace: str, name: str, key: str) -> str:
        data = self.secrets.get((namespace, name))
        if data is None:
            raise SecretRefused(f"no secret {name} in namespace {namespace}: no Secret manifest "
                                 f"{namespace}/{name} in the manifests folder")
        if key not in data:
            raise SecretRefused(f"secret {name} has no key {key!r}")
        return data[key]

    async def record_event(self, kind: Kind, key: Key, reason: str, message: str,
                           warning: bool = False) -> None:
        # The engine and the folder loader already log every event worth a line; an event
        # here would only repeat it, so it is kept for debugging.
        log.debug("%s %s/%s %s: %s", kind.value, *key, reason, message)

    # ------------------------------------------------------------ reading back

    def read_status(self, kind: Kind, key: Key) -> dict[str, Any]:
        """The status last written for an object, or {} (a missing or unreadable file)."""
        path = self.status_path(kind, key)
        try:
            status = read_yaml(path).get("status") if path.exists() else None
        except (OSError, ValueError, yaml.YAMLError) as error:
            log.warning("%s: unreadable status file, starting afresh: %s", path, error)
            return {}
        return dict(status) if isinstance(status, Mapping) else {}

    def first_seen(self, key: Key, section: str = "agreements") -> tuple[datetime, str]:
        """When an agreement (or, with ``section`` supportRequests, a support request) was
        first seen and its uid, recorded on first sight.

        Local manifests carry no creationTimestamp; without this record every restart would
        look like a brand-new agreement and the time before it would not count as unmonitored
        (and a support request without openedAt would have no time to count its response from).
        Written at once, or inside ``recording_agreements`` once at its end.
        """
        path = self.root / REGISTRY_FILE
        registry = self._registry(path)
        agreements = registry.setdefault(section, {})
        entry = agreements.get(f"{key[0]}/{key[1]}")
        if isinstance(entry, Mapping):
            try:
                return parse_time(entry.get("firstSeen"), "firstSeen"), str(entry.get("uid") or "")
            except SpecError:
                log.warning("%s: bad firstSeen for %s/%s, recording it again", path, *key)
        seen, uid = self.clock(), str(uuid.uuid4())
        agreements[f"{key[0]}/{key[1]}"] = {"firstSeen": format_time(seen), "uid": uid}
        self._unrecorded = registry
        if not self._recording:
            self._record_registry(path)
        return seen, uid

    @contextlib.contextmanager
    def recording_agreements(self) -> Iterator[None]:
        """Agreements first seen meanwhile are written to the registry once, at the end: a
        folder of a thousand new agreements is one write, not a thousand growing ones."""
        self._recording += 1
        try:
            yield
        finally:
            self._recording -= 1
            if not self._recording and self._unrecorded is not None:
                self._record_registry(self.root / REGISTRY_FILE)

    def _registry(self, path: Path) -> dict[str, Any]:
        """The registry: not written yet, as this store last wrote it, or from the disk."""
        if self._unrecorded is not None:
            return self._unrecorded
        own = self._contents.get(path)
        if own is not None and file_version(path) == own[0]:
            return own[1]  # only this method changes it, and it writes what it changed
        return read_yaml(path) if path.exists() else {}

    def _record_registry(self, path: Path) -> None:
        registry, self._unrecorded = self._unrecorded, None
        if registry is None:
            return
        self._contents.pop(path, None)  # changed in place: no longer what the file says
        text = dump_yaml(registry)
        try:
            written = write_atomically(path, text)
        except OSError:
            self._unrecorded = registry  # written with the next agreement, or the next batch
            raise
        self._remember(path, written, registry, text)

    # ------------------------------------------------------------ helpers

    def _incident_manifest(self, incident: Incident, name: str, spec: dict[str, Any],
                           owner_uid: str | None) -> dict[str, Any]:
        metadata: dict[str, Any] = {
            "name": name, "namespace": incident.namespace,
            "labels": {AGREEMENT_LABEL: incident.agreement, "sla.dev/type": incident.type.value,
                       "sla.dev/severity": incident.severity.value},
            "creationTimestamp": format_time(self.clock()), "uid": str(uuid.uuid4()),
        }
        if owner_uid:
            metadata["ownerReferences"] = [{"apiVersion": API_VERSION, "kind": Kind.AGREEMENT.value,
                                            "name": incident.agreement, "uid": owner_uid}]
        return {"apiVersion": API_VERSION, "kind": Kind.INCIDENT.value, "metadata": metadata,
                "spec": spec, "status": {}}

    async def _rewrite(self, path: Path, edit: Callable[[dict[str, Any] | None], dict[str, Any] | None],
                       spare: bool = False, in_place: bool = True) -> tuple[dict[str, Any], bool]:
        """Read ``path`` (None when absent), let ``edit`` make the new content, write it back.

        A person may save the file between the read and the write: then the write is dropped
        and the whole edit starts again from their version, so their change is never lost.
        ``edit`` returns None to leave the file alone. Returns the content and whether it
        was written. ``in_place``: ``edit`` may change what it is given below the top level
        (else it only replaces top-level keys, and the copy this store keeps is not copied).
        """
        for _ in range(REWRITE_ATTEMPTS):
            body, version = await self._quiet_read(path, in_place)
            new = edit(body)
            if new is None:
                if body is None:
                    raise StoreError(f"{path}: nothing to write for a file that does not exist")
                return body, False
            text = dump_yaml(new)
            own = self._contents.get(path)
            if own is not None and own[0] == version and own[2] == text:
                return new, False  # the file already says exactly this
            try:
                written = await self._io(write_atomically, path, text, version, spare)
            except FileChanged:
                log.debug("%s: changed while being updated, updating the new version", path)
                continue
            self._remember(path, written, new, text)
            return new, True
        raise StoreError(f"{path}: changed by someone else on each of {REWRITE_ATTEMPTS} attempts "
                         "to update it; trying again later")

    async def _quiet_read(self, path: Path, in_place: bool = True
                          ) -> tuple[dict[str, Any] | None, FileVersion | None]:
        """Read ``path`` once nobody else has written it for QUIET_SECONDS.

        An editor saving in place truncates the file, then writes it: a read in between sees an
        empty or half file, and a rename over it would send the rest of the save to an orphaned
        inode. Files this store wrote last are complete and read at once.
        """
        try:
            own = self._own_copy(path, in_place)
        except OSError as error:
            raise StoreError(f"{path}: {error}") from error
        if own is not None:
            return own, self.written[path]
        deadline = time.monotonic() + QUIET_WAIT_LIMIT
        while True:
            body, version, read_at = await self._io(_read_timed, path)
            if version is None or version == self.written.get(path):
                return body, version
            age = (read_at - version[1]) / 1e9  # at the read: a busy loop must not age it
            if age >= QUIET_SECONDS or age < 0:  # a time ahead of the clock (copied): no save
                return body, version
            if time.monotonic() > deadline:
                raise StoreError(f"{path} keeps changing; updating it later")
            await asyncio.sleep(QUIET_SECONDS - max(0.0, age))

    def _lock(self, path: Path) -> asyncio.Lock:
        return self._locks.setdefault(path, asyncio.Lock())

    def _own_copy(self, path: Path, in_place: bool = True) -> dict[str, Any] | None:
        """What this store last wrote to ``path``, when the file is still that version; else None.

        The copy may be edited: with ``in_place``, spec and metadata are copied (incident edits
        change them in place); the status is shared, as every edit replaces it with a new
        mapping. Without, only the top level is copied (a status write replaces the status).
        """
        own = self._contents.get(path)
        if own is None or file_version(path) != own[0]:
            self._contents.pop(path, None)
            return None
        if not in_place:
            return dict(own[1])
        return {key: value if key == "status" else copy.deepcopy(value)
                for key, value in own[1].items()}

    def _remember(self, path: Path, version: FileVersion, document: dict[str, Any],
                  text: str) -> None:
        self.written[path] = version
        self._contents[path] = (version, document, text)

    async def _io(self, fn: Callable[..., T], *args: Any) -> T:
        try:
            return await asyncio.to_thread(fn, *args)
        except (OSError, ValueError, yaml.YAMLError) as error:
            raise StoreError(f"{args[0]}: {error}") from error


def _parsed(body: Mapping[str, Any], path: Path) -> Incident:
    try:
        return incident_from_manifest(body)
    except SpecError as error:
        raise StoreError(f"{path}: {error}") from error


def _read_timed(path: Path) -> tuple[dict[str, Any] | None, FileVersion | None, int]:
    body, version = read_yaml_versioned(path)
    return body, version, time.time_ns()


def _incident_spec_of(body: dict[str, Any] | None, path: Path) -> dict[str, Any]:
    """The spec of an incident file, to update in place; a file without one is left alone."""
    if body is None:
        raise StoreError(f"{path}: incident file is gone (deleted while open?)")
    spec = body.get("spec")
    if not isinstance(spec, dict):
        raise StoreError(f"{path}: no incident spec in the file (emptied, or being saved); "
                         "left as it is")
    return spec


def _with_severity_label(body: dict[str, Any], severity: str | None) -> dict[str, Any]:
    if severity is not None:
        labels = body.setdefault("metadata", {}).setdefault("labels", {})
        labels["sla.dev/severity"] = severity
    return body


def _skeleton(kind: Kind, key: Key) -> dict[str, Any]:
    return {"apiVersion": API_VERSION, "kind": kind.value,
            "metadata": {"name": key[1], "namespace": key[0]}, "status": {}}


def _log_transitions(kind: Kind, key: Key, before: Mapping[str, Any],
                     after: Mapping[str, Any]) -> None:
    """One readable line per state change, as `kubectl get -w` would show it."""
    if kind is Kind.AGREEMENT:
        if before.get("state") != after.get("state"):
            log.info("agreement %s/%s: %s -> %s%s", *key, before.get("state") or "new",
                     after.get("state"), _because(after))
        olds, news = before.get("endpoints") or (), after.get("endpoints") or ()
        try:  # the common case, at C speed: the same endpoints in the same states
            if list(map(_NAME_AND_STATE, olds)) == list(map(_NAME_AND_STATE, news)):
                return
        except (KeyError, TypeError):  # a hand-edited file: compared entry by entry below
            pass
        old = {e.get("name"): e.get("state") for e in olds}
        for entry in news:
            if entry.get("name") in old and old[entry.get("name")] != entry.get("state"):
                # An endpoint found Up by its first probe is no news: at start-up, one line
                # per endpoint of the fleet. Every other change is a line.
                level = (logging.DEBUG if (old[entry.get("name")], entry.get("state")) == FIRST_UP
                         else logging.INFO)
                log.log(level, "endpoint %s/%s %s: %s -> %s%s", *key, entry.get("name"),
                        old[entry.get("name")], entry.get("state"), _because(entry))
    elif kind is Kind.MAINTENANCE and before.get("active") != after.get("active"):
        if after.get("active"):
            log.info("maintenance %s/%s: active until %s", *key, after.get("currentEnd"))
        else:
            upcoming = after.get("nextStart")
            log.info("maintenance %s/%s: not active, %s", *key,
                     f"next at {upcoming}" if upcoming else "no occurrence ahead (it is over)")


_NAME_AND_STATE = operator.itemgetter("name", "state")
FIRST_UP = ("Unknown", "Up")  # (before, after) of an endpoint's first probe finding it Up


def _because(entry: Mapping[str, Any]) -> str:
    return f" ({entry['message']})" if entry.get("message") else ""
