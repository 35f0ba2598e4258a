"""kopf handlers: parse at the boundary, hand domain objects to the engine, report bad specs."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import kopf

from sla_operator.domain.errors import SpecError
from sla_operator.domain.parse import agreement_from_manifest
from sla_operator.domain.records import incident_from_manifest, maintenance_from_manifest
from sla_operator.domain.render import conditions, invalid_spec_condition
from sla_operator.domain.schedule import validate_maintenance
from sla_operator.domain.support import support_request_from_manifest
from sla_operator.engine import Engine
from sla_operator.kube.discovery import DISCOVERIES
from sla_operator.kube.watch import WatchTracker
from sla_operator.store.base import Key, Kind, StoreError
from sla_operator.store.kube import GROUP, VERSION, KubeStore

log = logging.getLogger("sla_operator.kube")


def _engine(memo: kopf.Memo) -> Engine:
    engine: Engine = memo["engine"]
    return engine


async def _report_invalid(engine: Engine, kind: Kind, body: Mapping[str, Any],
                          error: SpecError) -> None:
    """Ready=False with every problem on the object, and an Event, once per generation."""
    meta = body.get("metadata") or {}
    key = (meta.get("namespace", "default"), meta.get("name", ""))
    message = str(error)
    kept = _previous_version_kept(engine, kind, key, message)
    if not engine.owns(kind, key):
        return  # another shard's to report (a window's last valid version stays here too)
    if not kept:
        status = {"observedGeneration": meta.get("generation", 0),
                  "conditions": conditions((body.get("status") or {}).get("conditions") or [],
                                           [invalid_spec_condition(message)],
                                           meta.get("generation", 0), engine.clock())}
        if kind is Kind.AGREEMENT:
            status["state"] = "Unknown"
            status["message"] = f"invalid spec: {message}"
        try:
            await engine.store.write_status(kind, key, status)
        except StoreError as failure:
            log.warning("%s %s/%s: could not record the invalid spec: %s", kind.value, *key, failure)
    await engine.store.record_event(kind, key, "InvalidSpec", message, warning=True)
    log.warning("%s %s/%s: invalid spec: %s", kind.value, *key, message)


def _previous_version_kept(engine: Engine, kind: Kind, key: Key, message: str) -> bool:
    """Whether the last valid version stays in effect; its status then carries the message."""
    if kind is Kind.AGREEMENT:
        return engine.reject_agreement(key, message)
    if kind is Kind.MAINTENANCE:
        return engine.reject_maintenance(key, message)
    return False


@kopf.on.event(GROUP, VERSION, "servicelevelagreements")
async def agreement_event(event: kopf.RawEvent, memo: kopf.Memo, **_: Any) -> None:
    """Every watch event of an agreement: listed at start (resume), added, changed, deleted.

    Plain events, not kopf's create/update handlers: those keep their progress in the
    object's annotations, shared by every replica, so with several replicas one would mark
    a change handled that the other never saw. Agreements carry no finalizer either, so a
    deletion arrives here too."""
    key, meta, gone = _watched(memo, Kind.AGREEMENT, event)
    engine = _engine(memo)
    if gone:
        _forget(memo, Kind.AGREEMENT, key)
        engine.remove_agreement(key, meta.get("uid"))
        return
    body = event["object"]
    error = take_in_agreement(engine, memo["handled"], body)
    if error is not None:
        await _report_invalid(engine, Kind.AGREEMENT, body, error)


def take_in_agreement(engine: Engine, handled: dict[tuple[Kind, Key], object],
                      body: Mapping[str, Any]) -> SpecError | None:
    """Hand a listed or watched agreement to the engine, unless this version was taken in
    already (a status write comes back as an event too); the error when its spec is invalid."""
    meta = body.get("metadata") or {}
    key = (str(meta.get("namespace", "default")), str(meta.get("name", "")))
    engine.note_status(key, meta.get("uid"), body.get("status"))
    if not _spec_changed(handled, Kind.AGREEMENT, key, meta):
        return None  # a status write (the Lease holder's): what a standby shows, nothing new
    try:
        agreement = agreement_from_manifest(body)
    except SpecError as error:
        return error
    # With --discover, the endpoints annotated Services and Ingresses add (else none).
    engine.upsert_agreement(DISCOVERIES.agreement(agreement), body.get("status"))
    return None


@kopf.on.event(GROUP, VERSION, "maintenancewindows")
async def maintenance_event(event: kopf.RawEvent, memo: kopf.Memo, **_: Any) -> None:
    """Every watch event of a window (see agreement_event); a deleted window's maintenance
    ends at once."""
    key, meta, gone = _watched(memo, Kind.MAINTENANCE, event)
    engine = _engine(memo)
    if gone:
        _forget(memo, Kind.MAINTENANCE, key)
        engine.remove_maintenance(key)
        return
    body = event["object"]
    if not _spec_changed(memo["handled"], Kind.MAINTENANCE, key, meta):
        return
    try:
        window = maintenance_from_manifest(body)
        validate_maintenance(window)
    except SpecError as error:
        # Maintenance in progress must not turn into eligible time over a typo: the last
        # valid version of the window stays in effect until the spec is fixed or deleted.
        await _report_invalid(engine, Kind.MAINTENANCE, body, error)
        return
    engine.upsert_maintenance(window)


def _spec_changed(handled: dict[tuple[Kind, Key], object], kind: Kind, key: Key,
                  meta: Mapping[str, Any]) -> bool:
    """Whether this version differs from the last one taken in: its uid, its generation
    (the spec) or its labels (selectors match them). Remembered in this process only."""
    version = (meta.get("uid"), meta.get("generation"),
               tuple(sorted((meta.get("labels") or {}).items())))
    if handled.get((kind, key)) == version:
        return False
    handled[(kind, key)] = version
    return True


def _forget(memo: kopf.Memo, kind: Kind, key: Key) -> None:
    memo["handled"].pop((kind, key), None)


def _watched(memo: kopf.Memo, kind: Kind, event: kopf.RawEvent) -> tuple[Key, Mapping[str, Any], bool]:
    """The object's key and metadata, noted as delivered; and whether it is going away
    (deleted, or marked for deletion while another controller's finalizer holds it)."""
    body = event.get("object") or {}
    meta = body.get("metadata") or {}
    key = (str(meta.get("namespace", "default")), str(meta.get("name", "")))
    gone = event.get("type") == "DELETED" or bool(meta.get("deletionTimestamp"))
    tracker: WatchTracker | None = memo.get("watches")
    if tracker is not None:
        tracker.delivered(kind, key, meta, deleted=event.get("type") == "DELETED")
    return key, meta, gone


@kopf.on.event(GROUP, VERSION, "incidents")
async def incident_event(event: kopf.RawEvent, memo: kopf.Memo, **_: Any) -> None:
    """Incidents are records, not reconciled objects: keep the engine's copy current."""
    engine = _engine(memo)
    body = event["object"]
    meta = body.get("metadata") or {}
    key = (meta.get("namespace", "default"), meta.get("name", ""))
    store = engine.store
    if event["type"] == "DELETED":
        engine.remove_incident(key)
        if isinstance(store, KubeStore):
            store.forget(key)
        return
    if isinstance(store, KubeStore) and store.outdated(body):
        return  # an echo of an earlier write, delivered after the engine's newer one
    try:
        engine.upsert_incident(incident_from_manifest(body))
    except SpecError as error:
        # The last valid version stays counted: dropping it would take a resolved outage out
        # of the figures, or open an open certificate incident again under a new name.
        await _report_invalid_record(engine, Kind.INCIDENT, key, body, error,
                                     kept=key in engine.incidents)


@kopf.on.event(GROUP, VERSION, "supportrequests")
async def support_request_event(event: kopf.RawEvent, memo: kopf.Memo, **_: Any) -> None:
    """Support requests are records, like incidents: keep the engine's copy current."""
    engine = _engine(memo)
    body = event["object"]
    meta = body.get("metadata") or {}
    key = (meta.get("namespace", "default"), meta.get("name", ""))
    if event["type"] == "DELETED":
        engine.remove_support_request(key)
        return
    try:
        engine.upsert_support_request(support_request_from_manifest(body))
    except SpecError as error:
        # As for an incident: the last valid version stays counted.
        await _report_invalid_record(engine, Kind.SUPPORT_REQUEST, key, body, error,
                                     kept=key in engine.support_requests)


async def _report_invalid_record(engine: Engine, kind: Kind, key: Key, body: Mapping[str, Any],
                                 error: SpecError, kept: bool) -> None:
    """An Event on a record (an incident, a support request) whose new version cannot be read:
    whether its last valid version stays counted; left to the shard of its agreement."""
    if not kept and not engine.owns(kind, key, _agreement_named(body)):
        return  # another shard's agreement: that shard says it
    await engine.store.record_event(
        kind, key, "InvalidSpec",
        f"{error}; " + ("the previous version stays in effect" if kept else "not counted"),
        warning=True)


def _agreement_named(body: Mapping[str, Any]) -> str | None:
    """The agreement a record names, read without parsing the rest (which may be wrong)."""
    spec = body.get("spec")
    agreement = spec.get("agreement") if isinstance(spec, Mapping) else None
    return agreement if isinstance(agreement, str) else None
