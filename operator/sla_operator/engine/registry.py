"""The engine's registry: the objects it holds (agreements, windows, incidents, other
shards' agreements), which of them this shard owns, and the probes' Secrets and contexts.

What the watches and the promotion hand over enters here; nothing here writes.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from sla_operator.domain.incidents import slot_of
from sla_operator.domain.location_reports import Heartbeat
from sla_operator.domain.model import Agreement, Endpoint, Incident, MaintenanceWindow, ProbeResult
from sla_operator.domain.quorum import DEFAULT_LOCATION
from sla_operator.domain.saved import describe
from sla_operator.domain.support import SupportRequest
from sla_operator.engine.restore import restore_status
from sla_operator.engine.runtime import AgreementRuntime
from sla_operator.engine.settings import EngineSettings
from sla_operator.engine.windows import Windows
from sla_operator.probes.base import ProbeContext
from sla_operator.probes.contexts import ProbeContexts
from sla_operator.probes.scheduler import ProbeScheduler
from sla_operator.store.base import Key, Kind, Store

log = logging.getLogger("sla_operator.engine")


class Registry:
    """The objects the engine holds, by key; part of Engine (see engine/__init__.py)."""

    settings: EngineSettings
    store: Store
    clock: Any
    scheduler: ProbeScheduler
    agreements: dict[Key, AgreementRuntime]
    maintenance: dict[Key, MaintenanceWindow]
    incidents: dict[Key, Incident]
    foreign: dict[Key, AgreementRuntime]
    foreign_incidents: dict[Key, Incident]
    heartbeats: dict[str, Heartbeat]
    support_requests: dict[Key, SupportRequest]
    _requests_by_agreement: dict[Key, dict[str, SupportRequest]]
    _support_status: dict[Key, dict[str, Any]]
    _windows: Windows
    _incidents_by_agreement: dict[Key, dict[str, Incident]]
    _maintenance_status: dict[Key, dict[str, Any]]
    _maintenance_rejections: dict[Key, str]
    _incident_status: dict[Key, dict[str, Any]]
    _probe_contexts: ProbeContexts
    _changes: int
    _wake: asyncio.Event
    publish: Any  # Engine.publish: a removal shows at once
    apply_reports: Any  # Engine.apply_reports (engine/reports.py): other locations' views


    def owns(self, kind: Kind, key: Key, agreement: str | None = None) -> bool:
        """Whether this shard handles the object: the one place that decides it.

        An agreement by its own namespace/name; an incident by its agreement's (``agreement``,
        so it follows the agreement); a window is kept by every shard (it selects agreements
        of several), but only the shard of its own namespace/name writes its status."""
        namespace, name = key
        if kind is Kind.INCIDENT or kind is Kind.SUPPORT_REQUEST:
            name = agreement if agreement is not None else name
        return self.settings.sharding.owns(namespace, name)

    def upsert_agreement(self, agreement: Agreement,
                         status: Mapping[str, Any] | None = None) -> None:
        if not self.owns(Kind.AGREEMENT, agreement.key):
            self._upsert_foreign(agreement, status)  # never probed, evaluated nor written here
            return
        runtime = self.agreements.get(agreement.key)
        if runtime is not None and not _same_object(runtime.agreement.uid, agreement.uid):
            # Deleted and created again under the same name: a new agreement, started afresh.
            self.remove_agreement(agreement.key)
            runtime = None
        if runtime is None:
            runtime = self._fresh_runtime(agreement, status)
            log.info("agreement %s/%s: watching %d endpoint(s)", agreement.namespace,
                     agreement.name, len(agreement.endpoints))
        else:
            runtime.replace_agreement(agreement)
        runtime.rejection = None
        if status is not None:
            runtime.seen_status = status
        self._changes += 1
        self._wake.set()
        self.scheduler.set_endpoints(agreement.key, agreement.endpoints,
                                     self._context(agreement.namespace))

    def _upsert_foreign(self, agreement: Agreement, status: Mapping[str, Any] | None) -> None:
        runtime = self.foreign.get(agreement.key)
        if runtime is None or not _same_object(runtime.agreement.uid, agreement.uid):
            runtime = self.foreign[agreement.key] = AgreementRuntime(agreement, self.clock())
        runtime.agreement = agreement
        if status is not None:
            runtime.seen_status = status
        self._changes += 1

    def note_status(self, key: Key, uid: str | None, status: object) -> None:
        """The agreement's status as the watch delivered it: what a standby's outputs show.

        The Lease holder shows its own figures; a standby, which neither probes nor
        evaluates, shows what the holder wrote last."""
        runtime = self.agreements.get(key) or self.foreign.get(key)
        if runtime is not None and _same_object(runtime.agreement.uid, uid) \
                and runtime.seen_status is not status:
            runtime.seen_status = status
            self._changes += 1

    def _fresh_runtime(self, agreement: Agreement, status: Mapping[str, Any] | None,
                       alive_until: datetime | None = None) -> AgreementRuntime:
        runtime = AgreementRuntime(agreement, started=self.clock(), seen_status=status,
                                   location=self.settings.location or DEFAULT_LOCATION,
                                   located=self.settings.location is not None,
                                   heartbeats=self.heartbeats)
        if isinstance(status, Mapping) and status:
            # What the object holds: the first write sends only what differs from it.
            runtime.last_written = dict(status)
        in_open_outage = frozenset(name for incident in self.incidents_of(agreement)
                                   if incident.is_open and slot_of(incident) == ("outage", "")
                                   for name in incident.endpoints)
        # The writer's heartbeat may be the Lease rather than the status: a status unchanged
        # for up to a heartbeat (and a refresh) still stood until the writer's last renewal.
        heartbeat = self.settings.status_heartbeat
        problems = restore_status(
            runtime, status, self.clock(), in_open_outage, alive_until=alive_until,
            alive_within=timedelta(seconds=1.5 * heartbeat + 2 * self.settings.status_interval)
            if heartbeat > 0 else timedelta(0))
        if problems:
            runtime.restore_problems = describe(problems)
            log.warning("agreement %s/%s: status read back with errors: %s",
                        agreement.namespace, agreement.name, runtime.restore_problems)
        self.agreements[agreement.key] = runtime
        self.apply_reports(runtime)
        return runtime

    def take_over(self, agreements: Sequence[tuple[Agreement, Mapping[str, Any] | None]],
                  incidents: Sequence[Incident], alive_until: datetime | None = None) -> None:
        """Before a promoted standby probes: start every agreement again from the status the
        previous leader wrote last (history, gaps, Down streaks) and take the newest records.

        A standby restored each agreement when it first saw it, maybe hours ago; the time
        since the previous leader's last evaluation is unmonitored, never downtime, and an
        outage still failing continues as the same incident. ``alive_until``: the Lease's last
        renewal by the previous holder (see restore_status)."""
        for incident in incidents:
            self.upsert_incident(incident)
        for agreement, status in agreements:
            if not self.owns(Kind.AGREEMENT, agreement.key):
                continue
            self.agreements.pop(agreement.key, None)
            self._fresh_runtime(agreement, status, alive_until)
            self.scheduler.set_endpoints(agreement.key, agreement.endpoints,
                                         self._context(agreement.namespace))
        self._incident_status.clear()
        self._support_status.clear()
        self._maintenance_status.clear()

    def reject_agreement(self, key: Key, message: str) -> bool:
        """A new spec failed to parse: keep probing the last good one, but say it is not Ready.

        Returns whether a previous version is still running."""
        runtime = self.agreements.get(key)
        if runtime is not None:
            runtime.rejection = message
            runtime.dirty = True
        return runtime is not None

    def remove_agreement(self, key: Key, uid: str | None = None) -> None:
        """Stop probing and writing for an agreement; with ``uid``, only for that object
        (a late word about a deleted object must not stop its successor of the same name)."""
        foreign = self.foreign.get(key)
        if foreign is not None and _same_object(foreign.agreement.uid, uid):
            del self.foreign[key]
            self.publish()
        runtime = self.agreements.get(key)
        if runtime is None or not _same_object(runtime.agreement.uid, uid):
            return
        del self.agreements[key]
        self.scheduler.remove(key)
        log.info("agreement %s/%s: removed, probes stopped", *key)
        self.publish()

    def upsert_maintenance(self, window: MaintenanceWindow) -> None:
        self.maintenance[window.key] = window
        self._windows.put(window)
        self._maintenance_rejections.pop(window.key, None)
        self._touch(window.namespace)

    def reject_maintenance(self, key: Key, message: str) -> bool:
        """A new spec failed to parse: the last valid window stays in effect, marked not Ready.

        Returns whether a previous version is still in effect (its status then says why)."""
        if key not in self.maintenance:
            return False
        self._maintenance_rejections[key] = message
        return True

    def remove_maintenance(self, key: Key) -> None:
        self._maintenance_rejections.pop(key, None)
        if self.maintenance.pop(key, None) is not None:
            self._windows.drop(key)
            self._maintenance_status.pop(key, None)
            self._touch(key[0])
        self.publish()

    def upsert_incident(self, incident: Incident) -> None:
        if not self.owns(Kind.INCIDENT, incident.key, incident.agreement):
            if incident.key in self.incidents:  # a person pointed it at another shard's agreement
                self.remove_incident(incident.key)
            if self.foreign_incidents.get(incident.key) != incident:  # for the status page
                self.foreign_incidents[incident.key] = incident
                self._changes += 1
            return
        self.foreign_incidents.pop(incident.key, None)
        if self.incidents.get(incident.key) == incident:
            # Only its status moved, usually by our own write echoed back by the watch:
            # recomputing would write a newer duration, echoed again, once per round.
            return
        self._put_incident(incident)
        self._touch(incident.namespace, incident.agreement)

    def remove_incident(self, key: Key) -> None:
        # A deleted incident applied again is a new object with no status: it must get one.
        self.foreign_incidents.pop(key, None)
        self._incident_status.pop(key, None)
        incident = self._drop_incident(key)
        if incident is not None:
            self._touch(incident.namespace, incident.agreement)
        self.publish()

    def _put_incident(self, incident: Incident) -> None:
        previous = self._drop_incident(incident.key)
        if previous is not None and previous.agreement != incident.agreement:
            self._touch(previous.namespace, previous.agreement)
        self.incidents[incident.key] = incident
        owner = (incident.namespace, incident.agreement)
        self._incidents_by_agreement.setdefault(owner, {})[incident.name] = incident

    def _drop_incident(self, key: Key) -> Incident | None:
        incident = self.incidents.pop(key, None)
        if incident is not None:
            owned = self._incidents_by_agreement.get((incident.namespace, incident.agreement), {})
            owned.pop(incident.name, None)
        return incident

    def upsert_support_request(self, request: SupportRequest) -> None:
        """A support request, kept like an incident: a record, by its agreement's shard."""
        if not self.owns(Kind.SUPPORT_REQUEST, request.key, request.agreement):
            self.remove_support_request(request.key)
            return
        if self.support_requests.get(request.key) == request:
            return  # only its status moved (our own write, echoed back by the watch)
        self.remove_support_request(request.key, keep_status=True)
        self.support_requests[request.key] = request
        owner = (request.namespace, request.agreement)
        self._requests_by_agreement.setdefault(owner, {})[request.name] = request
        self._touch(request.namespace, request.agreement)

    def remove_support_request(self, key: Key, keep_status: bool = False) -> None:
        if not keep_status:  # a deleted request applied again is a new object: it needs one
            self._support_status.pop(key, None)
        request = self.support_requests.pop(key, None)
        if request is not None:
            owner = (request.namespace, request.agreement)
            self._requests_by_agreement.get(owner, {}).pop(request.name, None)
            self._touch(request.namespace, request.agreement)

    def support_requests_of(self, agreement: Agreement) -> list[SupportRequest]:
        return list(self._requests_by_agreement.get(agreement.key, {}).values())

    def kind_named(self, namespace: str, name: str) -> str | None:
        """The kind of an object held under ``namespace/name`` other than an agreement: what a
        support request naming it as its agreement most likely meant."""
        key = (namespace, name)
        for kind, held in (("MaintenanceWindow", self.maintenance),
                           ("Incident", self.incidents), ("Incident", self.foreign_incidents),
                           ("SupportRequest", self.support_requests)):
            if key in held:
                return kind
        return None

    def on_probe_result(self, owner: Key, endpoint: Endpoint, result: ProbeResult) -> None:
        runtime = self.agreements.get(owner)
        if runtime is not None and runtime.probes(endpoint):
            runtime.observe(endpoint, result)

    def _touch(self, namespace: str, agreement: str | None = None) -> None:
        """Recompute the agreements a maintenance window or incident may affect."""
        self._changes += 1
        if agreement is not None:
            affected = [r for r in [self.agreements.get((namespace, agreement))] if r is not None]
        else:
            affected = [r for (ns, _), r in self.agreements.items() if ns == namespace]
        for runtime in affected:
            runtime.dirty = True
            runtime.daily_key = ()

    def _context(self, namespace: str) -> ProbeContext:
        return self._probe_contexts.of(namespace)

    def incidents_of(self, agreement: Agreement) -> list[Incident]:
        """Its incidents: those of an earlier agreement of the same name are not adopted."""
        return [i for i in self._incidents_by_agreement.get(agreement.key, {}).values()
                if _same_object(agreement.uid, i.owner_uid)]

    def holds(self, runtime: AgreementRuntime) -> bool:
        """Whether ``runtime`` is still the engine's: deletion may come during an await."""
        return self.agreements.get(runtime.agreement.key) is runtime

    def _gone(self, runtime: AgreementRuntime) -> None:
        agreement = runtime.agreement
        log.info("agreement %s/%s: no longer on the API server", agreement.namespace, agreement.name)
        self.remove_agreement(agreement.key, agreement.uid)

    def windows_of(self, agreement: Agreement) -> list[MaintenanceWindow]:
        return self._windows.of(agreement)


def _same_object(held: str | None, other: str | None) -> bool:
    """Two uids of one object; an unknown uid (local files, old records) matches any."""
    return held is None or other is None or held == other
