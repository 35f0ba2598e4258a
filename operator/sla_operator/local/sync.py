"""Keeps the engine in step with the files: the manifests folder and the incidents in the state folder.

This plays the part kopf plays in a cluster: every object found becomes an upsert, every object
gone a removal, every bad manifest a clear message and a Ready=False status, while the rest run on.
A file is taken in only once it has settled (see FolderWatch), never half-written.
A manifest whose applying fails unexpectedly counts as applied only once it succeeds: it is
logged, marked Ready=False and tried again at every scan.
"""

from __future__ import annotations

import asyncio
import copy
import logging
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from sla_operator.domain.errors import Problem, SpecError
from sla_operator.domain.parse import agreement_from_manifest
from sla_operator.domain.records import format_time, incident_from_manifest, maintenance_from_manifest
from sla_operator.domain.render import Condition, conditions, invalid_spec_condition
from sla_operator.domain.schedule import validate_maintenance
from sla_operator.domain.support import support_request_from_manifest
from sla_operator.engine import Engine
from sla_operator.local.manifests import FileError, FolderWatch, Ident, Manifest, read_manifests, secret_data
from sla_operator.local.store import LocalStore
from sla_operator.store.base import Kind, StoreError

log = logging.getLogger("sla_operator.local")

# Records before the agreements that read them, as in a cluster's startup (no incident twice).
APPLY_ORDER = {"Secret": 0, "Incident": 1, "SupportRequest": 1, "MaintenanceWindow": 2,
               "ServiceLevelAgreement": 3, "NotificationRoute": 4}


def _content(body: Mapping[str, Any]) -> dict[str, Any]:
    """What a person declares; the status is the operator's own output."""
    return {k: v for k, v in body.items() if k != "status"}


class LocalSync:
    def __init__(self, engine: Engine, store: LocalStore, manifests_dir: Path) -> None:
        self.engine = engine
        self.store = store
        # The state folder first: an incident recorded there wins a name clash with a manifest.
        self.watches = [FolderWatch(store.incidents_dir, store.written.get), FolderWatch(manifests_dir)]
        self.by_file: dict[Path, list[Manifest]] = {}
        self.applied: dict[Ident, Manifest] = {}
        self.generations: dict[Ident, tuple[object, int]] = {}
        self.failed: dict[Ident, tuple[int, str]] = {}
        """Manifests whose applying failed, retried at every scan: (generation, error) last reported."""
        self._reported_clashes: set[tuple[Ident, str]] = set()

    async def rescan(self) -> None:
        """Read what changed on disk and apply the difference to the engine."""
        touched = False
        for watch in self.watches:
            changed, removed = watch.poll()
            for path in removed:
                self.by_file.pop(path, None)
                touched = True
            for path in changed:
                touched |= self._read(path, watch)
        if touched or self.failed:
            await self._reconcile(self._desired())

    async def watch(self, interval: float = 1.0) -> None:
        """Poll the folders until cancelled; a failed round is logged and the next one tries again."""
        while True:
            await asyncio.sleep(interval)
            try:
                await self.rescan()
            except Exception:  # a surprise in one file must not stop monitoring the others
                log.exception("reading the folders failed")

    # ------------------------------------------------------------ files

    def _read(self, path: Path, watch: FolderWatch) -> bool:
        """Take in a settled file; a read the file moved under is dropped, its old content kept."""
        try:
            foreign: list[str] = []
            manifests, unnamed = read_manifests(path, str(path), foreign)
        except FileError as error:
            if not watch.still_as_reported(path):
                return False
            # Keep what the file held before: a half-typed edit must not stop monitoring.
            kept = "; its previous content stays in effect" if path in self.by_file else ""
            log.error("%s%s", error, kept)
            return False
        if not watch.still_as_reported(path):
            log.debug("%s: changed while being read; read again once it settles", path)
            return False
        for message in unnamed:
            log.error("%s (document ignored)", message)
        for message in foreign:
            log.info("%s", message)
        defaulted = sorted({m.describe() for m in manifests if m.namespace_defaulted})
        if defaulted and path not in self.by_file:
            # As kubectl apply without -n would: said once, so nobody looks for them elsewhere.
            log.info("%s: no metadata.namespace, so in namespace default: %s", path,
                     ", ".join(defaulted))
        self.by_file[path] = manifests
        return True

    def _desired(self) -> dict[Ident, Manifest]:
        """One manifest per object; of two files defining it, the one in effect keeps it."""
        candidates: dict[Ident, list[Manifest]] = {}
        for path in sorted(self.by_file, key=self._file_order):
            for manifest in self.by_file[path]:
                candidates.setdefault(manifest.ident, []).append(manifest)
        desired = {}
        for ident, found in candidates.items():
            in_effect = self.applied.get(ident)
            chosen = next((m for m in found if in_effect and m.source == in_effect.source), found[0])
            desired[ident] = chosen
            for other in found:
                if other is not chosen and (ident, other.source) not in self._reported_clashes:
                    self._reported_clashes.add((ident, other.source))
                    log.error("%s: %s is already defined in %s; this copy is ignored",
                              other.source, other.describe(), chosen.source)
        return desired

    def _file_order(self, path: Path) -> tuple[int, str]:
        """The state folder's incidents first, then the manifests, each alphabetically."""
        index = next((i for i, w in enumerate(self.watches) if path.is_relative_to(w.root)),
                     len(self.watches))
        return index, str(path)

    # ------------------------------------------------------------ applying

    async def _reconcile(self, desired: dict[Ident, Manifest]) -> None:
        for ident in [i for i in self.applied if i not in desired]:
            self._remove(self.applied.pop(ident))
        for ident in [i for i in self.failed if i not in desired]:
            del self.failed[ident]
        with self.store.recording_agreements():
            await self._apply_all(desired)

    async def _apply_all(self, desired: dict[Ident, Manifest]) -> None:
        for manifest in sorted(desired.values(), key=lambda m: APPLY_ORDER[m.kind]):
            previous = self.applied.get(manifest.ident)
            unchanged = previous is not None and _content(previous.body) == _content(manifest.body)
            if unchanged and manifest.ident not in self.failed:
                continue  # a revert to the applied version after a failed edit is applied again
            try:
                await self._apply(manifest)
            except Exception as error:  # one manifest's failure must not stop the others
                await self._apply_failed(manifest, error)
                continue
            self.applied[manifest.ident] = manifest
            self.failed.pop(manifest.ident, None)

    def _remove(self, manifest: Manifest) -> None:
        key = manifest.key
        if manifest.kind == "ServiceLevelAgreement":
            self.engine.remove_agreement(key)
        elif manifest.kind == "MaintenanceWindow":
            self.engine.remove_maintenance(key)
            log.info("maintenance %s/%s: removed", *key)
        elif manifest.kind == "Incident":
            if key in self.engine.incidents:
                log.info("incident %s/%s: removed from %s", *key, manifest.source)
            self.engine.remove_incident(key)
        elif manifest.kind == "SupportRequest":
            self.engine.remove_support_request(key)
        elif manifest.kind == "Secret":
            self.store.secrets.pop(key, None)

    async def _apply(self, manifest: Manifest) -> None:
        if manifest.kind == "NotificationRoute":  # read from ``applied`` by the notifier
            if manifest.problems:
                self._log_problems(manifest, manifest.problems, "not loaded")
            return
        if manifest.kind == "Secret":
            if manifest.problems:
                self._log_problems(manifest, manifest.problems, "not loaded")
                self.store.secrets.pop(manifest.key, None)
            else:
                self.store.secrets[manifest.key] = secret_data(manifest.body)
            return
        # Only metadata gets fields here; the rest is read, never changed (a deep copy of a
        # thousand manifests was a good part of reading the folder at start-up).
        metadata = dict(manifest.body["metadata"])
        body = {**manifest.body, "metadata": metadata}
        metadata["generation"] = self._generation(manifest)
        if manifest.kind == "ServiceLevelAgreement" and "creationTimestamp" not in metadata:
            first_seen, uid = self.store.first_seen(manifest.key)
            metadata["creationTimestamp"] = format_time(first_seen)
            metadata.setdefault("uid", uid)
        if manifest.kind == "SupportRequest" and "creationTimestamp" not in metadata:
            # Opened, unless spec.openedAt says otherwise, when first seen (kept across restarts).
            first_seen, _ = self.store.first_seen(manifest.key, "supportRequests")
            metadata["creationTimestamp"] = format_time(first_seen)
        problems = manifest.problems
        if not problems:
            try:
                self._upsert(manifest.kind, body)
                return
            except SpecError as error:
                problems = error.problems
        await self._invalid(manifest, body, problems)

    def _upsert(self, kind: str, body: dict[str, Any]) -> None:
        if kind == "ServiceLevelAgreement":
            agreement = agreement_from_manifest(body)
            status = None
            if agreement.key not in self.engine.agreements:
                status = self.store.read_status(Kind.AGREEMENT, agreement.key)
            self.engine.upsert_agreement(agreement, status)
        elif kind == "MaintenanceWindow":
            window = maintenance_from_manifest(body)
            validate_maintenance(window)
            self.engine.upsert_maintenance(window)
        elif kind == "SupportRequest":
            self.engine.upsert_support_request(support_request_from_manifest(body))
        else:
            incident = incident_from_manifest(body)
            # The engine's own writes come back through the watch: only news is applied.
            if self.engine.incidents.get(incident.key) != incident:
                self.engine.upsert_incident(incident)

    async def _invalid(self, manifest: Manifest, body: Mapping[str, Any],
                       problems: tuple[Problem, ...]) -> None:
        """Log every problem with file and field; record Ready=False like the cluster mode does."""
        key, message = manifest.key, "; ".join(str(p) for p in problems)
        if manifest.kind == "ServiceLevelAgreement" and self.engine.reject_agreement(key, message):
            self._log_problems(manifest, problems, "the previous version keeps running")
            return
        if manifest.kind == "MaintenanceWindow" and self.engine.reject_maintenance(key, message):
            # As in cluster mode: maintenance in progress must not turn into eligible time.
            self._log_problems(manifest, problems, "the previous version stays in effect")
            return
        if manifest.kind == "SupportRequest":  # as an incident: the last valid version counts
            kept = key in self.engine.support_requests
            self._log_problems(manifest, problems,
                               "the previous version stays in effect" if kept else "not counted")
            return
        if manifest.kind == "Incident":
            # Dropping it would take a resolved outage out of the figures, or open an ongoing
            # one again under a new name: the last valid version is what the engine counts.
            kept = key in self.engine.incidents
            self._log_problems(manifest, problems,
                               "the previous version stays in effect" if kept else "not counted")
            return
        self._log_problems(manifest, problems, "not loaded")
        await self._not_ready(manifest, body["metadata"]["generation"],
                              invalid_spec_condition(message), f"invalid spec: {message}")

    async def _apply_failed(self, manifest: Manifest, error: Exception) -> None:
        """Log and report an unexpected failure once per generation and error; the next scan retries."""
        message = f"could not be applied ({type(error).__name__}: {error}); retrying at every scan"
        generation = self._generation(manifest)
        if self.failed.get(manifest.ident) == (generation, message):
            log.debug("%s: %s still %s", manifest.source, manifest.describe(), message)
            return
        self.failed[manifest.ident] = (generation, message)
        log.error("%s: %s %s", manifest.source, manifest.describe(), message, exc_info=error)
        key = manifest.key
        if manifest.kind == "ServiceLevelAgreement" and self.engine.reject_agreement(key, message):
            return
        if manifest.kind == "MaintenanceWindow" and self.engine.reject_maintenance(key, message):
            return
        if manifest.kind in ("ServiceLevelAgreement", "MaintenanceWindow"):
            await self._not_ready(manifest, generation, Condition("Ready", False, "ApplyFailed", message),
                                  message)

    async def _not_ready(self, manifest: Manifest, generation: int, ready: Condition,
                         message: str) -> None:
        """Record Ready=False (and for an agreement, state Unknown) in the object's status file."""
        kind, key = Kind(manifest.kind), manifest.key
        previous = self.store.read_status(kind, key).get("conditions") or []
        status: dict[str, Any] = {
            "observedGeneration": generation,
            "conditions": conditions(previous, [ready], generation, self.engine.clock())}
        if kind is Kind.AGREEMENT:
            status.update(state="Unknown", message=message)
        try:
            await self.store.write_status(kind, key, status)
        except StoreError as error:
            log.warning("%s: could not record Ready=False: %s", manifest.describe(), error)

    def _log_problems(self, manifest: Manifest, problems: Iterable[Problem], outcome: str) -> None:
        for line in manifest.messages(problems):
            log.error("%s", line)
        log.error("%s: %s is invalid, %s", manifest.source, manifest.describe(), outcome)

    def _generation(self, manifest: Manifest) -> int:
        """Counts spec changes, as metadata.generation does in a cluster."""
        spec = manifest.body.get("spec")
        seen, generation = self.generations.get(manifest.ident, (None, 0))
        if seen != spec or generation == 0:
            generation += 1
            self.generations[manifest.ident] = (copy.deepcopy(spec), generation)
        return generation
