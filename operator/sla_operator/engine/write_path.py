"""The engine's write path: every status, incident and Event the engine writes goes out here,
through the Store, whose every request passes the fencing rule (store/fence.py).

State changes go out at once, routine refreshes as the write budget (engine/writes.py)
allows. A write refused by the fence (``Fenced``: the Lease is no longer held by this
process's clock) is dropped quietly: the next holder decides afresh from what it reads.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from sla_operator.domain.incidents import Change, Open
from sla_operator.domain.model import Agreement, Incident, MaintenanceWindow
from sla_operator.domain.support import (
    SupportRequest,
    agreement_missing,
    unmeasured_status,
    with_ready,
)
from sla_operator.engine.evaluate import Evaluation, maintenance_status
from sla_operator.engine.runtime import AgreementRuntime
from sla_operator.engine.settings import EngineSettings
from sla_operator.engine.writes import (
    WHOLE_STATUS_EVERY,
    WriteBudget,
    heartbeat_due,
    refresh_slot,
    shown_part,
    status_patch,
)
from sla_operator.store.base import Key, Kind, Store, StoreError
from sla_operator.store.fence import Fenced

log = logging.getLogger("sla_operator.engine")


class WritePath:
    """Writes of the engine; part of Engine (see engine/__init__.py)."""

    settings: EngineSettings
    store: Store
    clock: Any
    writes: WriteBudget
    incidents: dict[Key, Incident]
    maintenance: dict[Key, MaintenanceWindow]
    _incident_status: dict[Key, dict[str, Any]]
    agreements: dict[Key, AgreementRuntime]
    support_requests: dict[Key, SupportRequest]
    _requests_by_agreement: dict[Key, dict[str, SupportRequest]]
    _support_status: dict[Key, dict[str, Any]]
    _maintenance_status: dict[Key, dict[str, Any]]
    _maintenance_rejections: dict[Key, str]

    async def _write_out(self, runtime: AgreementRuntime, result: Evaluation, now: datetime,
                         force: bool, urgent_only: bool) -> bool:
        """Write the statuses of one evaluation: state changes at once (or marked pending when
        the budget is spent), routine refreshes unless ``urgent_only``. Returns whether
        routine writes were left for later in the round."""
        left = False
        runtime.write_pending = False
        urgent = (force or runtime.last_written is None
                  or result.signature != runtime.last_signature)
        if urgent:
            await self._write_agreement(runtime, result, now, force, urgent=True)
        elif self._refresh_due(runtime, now) and result.status != runtime.last_written:
            if not self._worth_a_refresh(runtime, result, now):
                # Nothing people read changed: looked at again at the next refresh.
                interval = self.settings.status_interval
                runtime.refresh_at = refresh_slot(
                    runtime.agreement.key, now + timedelta(seconds=interval / 2), interval)
            elif urgent_only:
                left = True
            else:
                await self._write_agreement(runtime, result, now, force, urgent=False)
        for key, status in result.incident_status.items():
            if not self.holds(runtime):
                return False
            previous = self._incident_status.get(key)
            if key not in self.incidents or previous == status:
                continue
            incident_urgent = force or previous is None or any(
                previous.get(f) != status.get(f) for f in ("responseDue", "responseBreached"))
            if not incident_urgent and urgent_only:
                left = True
            else:
                await self._write_incident_status(runtime, key, status, now, force, incident_urgent)
        for key, status in result.support_status.items():
            if not self.holds(runtime):
                return False
            previous = self._support_status.get(key)
            request = self.support_requests.get(key)
            if request is None:
                continue
            status = with_ready(status, request, (previous or {}).get("conditions") or [], now)
            if previous == status:
                continue
            # A request's status changes only when its spec does or its response goes late.
            await self._write_support_status(runtime, key, status, now, force, urgent=True)
        return left

    def _worth_a_refresh(self, runtime: AgreementRuntime, result: Evaluation,
                         now: datetime) -> bool:
        """A routine refresh is written when something people read changed, or when the
        status's heartbeat (``status_heartbeat``) is due; every refresh without one."""
        heartbeat = self.settings.status_heartbeat
        if heartbeat <= 0 or runtime.last_written is None or runtime.last_written_at is None:
            return True
        if now >= heartbeat_due(runtime.agreement.key, runtime.last_written_at, heartbeat):
            return True
        return shown_part(result.status) != shown_part(runtime.last_written)

    def _held_back(self, runtime: AgreementRuntime) -> None:
        if not runtime.held_back:
            runtime.held_back = True
            self.writes.deferred += 1

    def _throttled(self, error: StoreError, now: datetime) -> bool:
        """Whether ``error`` asked to wait (the budget then pauses every write)."""
        if error.retry_after is None:
            return False
        self.writes.pause(now, error.retry_after, str(error))
        return True

    async def _write_agreement(self, runtime: AgreementRuntime, result: Evaluation,
                               now: datetime, force: bool, urgent: bool) -> None:
        agreement = runtime.agreement
        interval = self.settings.status_interval
        whole = runtime.last_written is None or runtime.partial_writes + 1 >= WHOLE_STATUS_EVERY
        patch = result.status if whole else status_patch(runtime.last_written, result.status)
        if patch and not self.writes.take(self.clock(), force):
            runtime.write_pending = runtime.write_pending or urgent
            self._held_back(runtime)
            return
        try:
            if patch:  # nothing differs from what the object holds: nothing to send
                await self.store.write_status(Kind.AGREEMENT, agreement.key, patch)
        except Fenced:
            return  # not the writer now: nothing was sent, nothing is remembered as written
        except StoreError as error:
            if error.gone:
                self._gone(runtime)
            elif self._throttled(error, now):
                runtime.write_pending = runtime.write_pending or urgent
                self._held_back(runtime)
            else:
                log.warning("agreement %s/%s: status not written: %s", agreement.namespace,
                            agreement.name, error)
                # Tried again soon (evaluated afresh), backing off to once per interval.
                runtime.status_failures += 1
                backoff = min(interval, 2.0 ** (runtime.status_failures - 1))
                runtime.refresh_at = now + timedelta(seconds=backoff)
            return
        if patch:
            self.writes.written()
        runtime.partial_writes = 0 if whole else runtime.partial_writes + 1
        runtime.last_written, runtime.last_written_at = result.status, now
        runtime.last_signature = result.signature
        runtime.held_back, runtime.status_failures = False, 0
        runtime.refresh_at = refresh_slot(agreement.key, now + timedelta(seconds=interval / 2),
                                          interval)

    async def _apply(self, action: Open | Change, agreement: Agreement, now: datetime) -> None:
        if isinstance(action, Open):
            stored = await self.store.create_incident(action.incident, agreement.uid)
            self.writes.charge(now)
            log.info("incident %s/%s opened: %s %s %s", stored.namespace, stored.name,
                     stored.severity, stored.type, stored.title)
            await self.store.record_event(Kind.AGREEMENT, agreement.key, "IncidentOpened",
                                          f"{stored.name}: {stored.severity} {stored.title}",
                                          warning=True)
        else:
            stored = await self.store.change_incident(action.incident, action)
            self.writes.charge(now)
            for update in action.updates:
                log.info("incident %s/%s: %s", stored.namespace, stored.name, update.message)
        self._put_incident(stored)

    async def _write_incident_status(self, runtime: AgreementRuntime, key: Key,
                                     status: Mapping[str, Any], now: datetime, force: bool,
                                     urgent: bool) -> None:
        await self._write_record_status(runtime, Kind.INCIDENT, key, status, now, force, urgent)

    async def _write_support_status(self, runtime: AgreementRuntime, key: Key,
                                    status: Mapping[str, Any], now: datetime, force: bool,
                                    urgent: bool) -> None:
        await self._write_record_status(runtime, Kind.SUPPORT_REQUEST, key, status, now, force,
                                        urgent)

    async def _write_record_status(self, runtime: AgreementRuntime, kind: Kind, key: Key,
                                   status: Mapping[str, Any], now: datetime, force: bool,
                                   urgent: bool) -> None:
        """The status of one of an agreement's records (an incident, a support request),
        within the write budget; remembered as written only once the API server took it."""
        if not self.writes.take(self.clock(), force):
            runtime.write_pending = runtime.write_pending or urgent
            self._held_back(runtime)
            return
        written, remove = ((self._incident_status, self.remove_incident)
                           if kind is Kind.INCIDENT
                           else (self._support_status, self.remove_support_request))
        try:
            await self.store.write_status(kind, key, status)
            self.writes.written()
            written[key] = dict(status)
        except Fenced:
            return
        except StoreError as error:
            if error.gone:
                remove(key)  # deleted, or collected with its agreement
            elif self._throttled(error, now):
                runtime.write_pending = runtime.write_pending or urgent
            else:
                log.warning("%s %s/%s: status not written: %s", kind.value, *key, error)

    async def _write_unmeasured_requests(self, now: datetime, force: bool = False) -> None:
        """A request whose agreement is not here (none of that name, or another kind's name)
        has no target to be measured against: its status says why, Ready=False, with a
        Warning Event when that news is new. Its agreement arriving clears both (its first
        evaluation writes the request's figures, Ready=True)."""
        for owner, requests in list(self._requests_by_agreement.items()):
            if owner in self.agreements or not requests:
                continue
            other = self.kind_named(*owner)
            for request in list(requests.values()):
                message = agreement_missing(request, other)
                previous = self._support_status.get(request.key)
                status = with_ready(unmeasured_status(message), request,
                                    (previous or {}).get("conditions") or [], now)
                if previous == status or not self.writes.take(self.clock(), force):
                    continue
                try:
                    await self.store.write_status(Kind.SUPPORT_REQUEST, request.key, status)
                except Fenced:
                    return
                except StoreError as error:
                    if error.gone:
                        self.remove_support_request(request.key)
                    elif not self._throttled(error, now):
                        log.warning("support request %s/%s: status not written: %s",
                                    *request.key, error)
                    continue
                self.writes.written()
                self._support_status[request.key] = status
                if (previous or {}).get("message") != message:
                    log.warning("support request %s/%s: %s", *request.key, message)
                    await self.store.record_event(Kind.SUPPORT_REQUEST, request.key,
                                                  "AgreementNotFound", message, warning=True)

    async def _write_maintenance_status(self, now: datetime, force: bool = False) -> None:
        """A window's status is written when it changes; one the budget cannot pay for this
        round still differs in the next, and goes out then."""
        for key, window in list(self.maintenance.items()):
            if not self.owns(Kind.MAINTENANCE, key):
                continue  # its status is another shard's to write
            previous = self._maintenance_status.get(key)
            status = maintenance_status(window, previous, now,
                                        self._maintenance_rejections.get(key))
            if previous == status or not self.writes.take(self.clock(), force):
                continue
            try:
                await self.store.write_status(Kind.MAINTENANCE, key, status)
                self.writes.written()
                self._maintenance_status[key] = status
            except Fenced:
                return
            except StoreError as error:
                if error.gone:
                    log.info("maintenance window %s/%s: no longer on the API server", *key)
                    self.remove_maintenance(key)
                elif not self._throttled(error, now):
                    log.warning("maintenance window %s/%s: status not written: %s", *key, error)
