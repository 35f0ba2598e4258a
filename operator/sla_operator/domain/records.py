"""MaintenanceWindow and Incident manifests to domain objects and back.

Incidents are the durable record of downtime, so the round trip must be lossless: the
operator rebuilds every figure from them after a restart.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

from sla_operator.domain import model as m
from sla_operator.domain.durations import format_duration, parse_duration
from sla_operator.domain.fields import (
    Collector,
    check_zone,
    enum_value,
    optional_time,
    parse_time,
    selector,
)

AGREEMENT_LABEL = "sla.dev/agreement"
API_VERSION = "sla.dev/v1alpha1"
_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")


def label_value_ok(value: str) -> bool:
    """Whether ``value`` may be a Kubernetes label value (names may be longer than labels)."""
    return len(value) <= 63 and bool(_LABEL_VALUE.match(value))


def same_decision_basis(stored: m.Incident, decided_on: m.Incident) -> bool:
    """Whether a change decided on ``decided_on`` may be applied to ``stored``.

    Timeline entries appended meanwhile do not matter (changes append too); anything else a
    person changed (severity, state, exclusion, ...) does: the decision is made again."""
    return (replace(stored, updates=(), uid=None, owner_uid=None)
            == replace(decided_on, updates=(), uid=None, owner_uid=None))


# Incidents dated when the operator first saw the condition, not when it began: two attempts
# at filing one differ in startedAt. Their name carries the episode instead.
_DATED_WHEN_SEEN = (m.IncidentType.CERTIFICATE.value, m.IncidentType.BREACH.value)


def same_incident(existing: Mapping[str, Any], spec: Mapping[str, Any]) -> bool:
    """A stored incident under the name ``spec`` would take is the one it describes when it
    records the same streak; for a certificate or breach incident, when it is still open for
    the same endpoints (the name already fixes the episode)."""
    other = existing.get("spec") or {}
    if not all(other.get(k) == spec.get(k) for k in ("agreement", "type", "dependency")):
        return False
    if spec.get("type") in _DATED_WHEN_SEEN:
        return other.get("state") != m.IncidentState.RESOLVED.value and \
            list(other.get("endpoints") or []) == list(spec.get("endpoints") or [])
    return bool(other.get("startedAt") == spec.get("startedAt"))


def format_time(moment: datetime | None) -> str | None:
    """RFC 3339 in UTC with a Z, second precision: the form Kubernetes itself writes."""
    if moment is None:
        return None
    if moment.tzinfo is not UTC:  # other zones compare by wall time (fold): not remembered
        return _format_second(moment.replace(microsecond=0))
    # The same second is written many times (every probe of that second, each endpoint's
    # `since`, the evaluation's time): its text is made once.
    second = (moment - _EPOCH) // _SECOND  # whole seconds, exactly (datetime.replace is slower)
    text = _FORMATTED.get(second)
    if text is None:
        if len(_FORMATTED) >= _FORMATTED_KEPT:
            _FORMATTED.clear()
        text = _FORMATTED[second] = _format_second(moment.replace(microsecond=0))
    return text


def _format_second(second: datetime) -> str:
    return second.astimezone(UTC).isoformat().replace("+00:00", "Z")


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_SECOND = timedelta(seconds=1)
_FORMATTED: dict[int, str] = {}  # seconds since the epoch -> their text
_FORMATTED_KEPT = 4096  # seconds remembered; beyond, forgotten all at once


# ---------------------------------------------------------------- maintenance


def maintenance_from_manifest(obj: Mapping[str, Any]) -> m.MaintenanceWindow:
    meta = obj.get("metadata") or {}
    spec = obj.get("spec") or {}
    errors = Collector()
    zone = errors.run(lambda: check_zone(spec.get("timeZone", "UTC"), "spec.timeZone"), "UTC")
    start = errors.run(lambda: optional_time(spec, "start", "spec"), None)
    end = errors.run(lambda: optional_time(spec, "end", "spec"), None)
    valid_from = errors.run(lambda: optional_time(spec, "validFrom", "spec"), None)
    valid_until = errors.run(lambda: optional_time(spec, "validUntil", "spec"), None)
    duration = None
    if spec.get("duration") is not None:
        duration = errors.run(lambda: parse_duration(spec["duration"], "spec.duration"), None)
    announce = errors.run(lambda: parse_duration(spec.get("announce", "168h"), "spec.announce"),
                          timedelta(hours=168))
    sla_selector = None
    if spec.get("slaSelector") is not None:
        sla_selector = errors.run(lambda: selector(spec["slaSelector"], "spec.slaSelector"), None)
    errors.raise_if_any()
    return m.MaintenanceWindow(
        namespace=str(meta.get("namespace") or "default"),
        name=str(meta.get("name", "")),
        description=str(spec.get("description") or ""),
        labels=dict(meta.get("labels") or {}),
        sla_selector=sla_selector,
        sla_names=tuple(str(n) for n in spec.get("slaNames") or ()),
        start=start,
        end=end,
        schedule=spec.get("schedule") or None,
        duration=duration,
        time_zone=zone,
        valid_from=valid_from,
        valid_until=valid_until,
        announce=announce,
        generation=int(meta.get("generation") or 0),
    )


# ---------------------------------------------------------------- incidents


def incident_from_manifest(obj: Mapping[str, Any]) -> m.Incident:
    meta = obj.get("metadata") or {}
    spec = obj.get("spec") or {}
    errors = Collector()

    def enum(kind: type[Any], key: str, default: str) -> Any:
        return errors.run(lambda: enum_value(kind, spec.get(key, default), f"spec.{key}"), kind(default))

    started = errors.run(lambda: parse_time(spec.get("startedAt"), "spec.startedAt"),
                         datetime.fromtimestamp(0, UTC))
    resolved = errors.run(lambda: optional_time(spec, "resolvedAt", "spec"), None)
    acknowledged = errors.run(lambda: optional_time(spec, "acknowledgedAt", "spec"), None)
    if resolved is not None and resolved < started:
        errors.add("spec.resolvedAt", "is before spec.startedAt")
    exclusion = None
    if spec.get("exclusion"):
        reason = errors.run(lambda: enum_value(m.ExclusionReason, spec["exclusion"].get("reason"),
                                          "spec.exclusion.reason"), m.ExclusionReason.OTHER)
        exclusion = m.Exclusion(reason, str(spec["exclusion"].get("note") or ""))
    parsed: list[m.IncidentUpdate | None] = [
        errors.run(partial(_update, u, f"spec.updates[{i}]"), None)
        for i, u in enumerate(spec.get("updates") or ())
    ]
    agreement = spec.get("agreement") or (meta.get("labels") or {}).get(AGREEMENT_LABEL)
    if not agreement:
        errors.add("spec.agreement", "must name the ServiceLevelAgreement this incident affects")
    severity = enum(m.Severity, "severity", "P1")
    incident_type = enum(m.IncidentType, "type", "outage")
    state = enum(m.IncidentState, "state", "investigating")
    impact = enum(m.Impact, "impact", "downtime")
    origin = enum(m.Origin, "origin", "manual")
    errors.raise_if_any()
    return m.Incident(
        namespace=str(meta.get("namespace") or "default"),
        name=str(meta.get("name", "")),
        agreement=str(agreement),
        type=incident_type,
        severity=severity,
        title=str(spec.get("title") or ""),
        started_at=started,
        state=state,
        impact=impact,
        origin=origin,
        resolved_at=resolved,
        endpoints=tuple(str(e) for e in spec.get("endpoints") or ()),
        dependency=bool(spec.get("dependency", False)),
        exclusion=exclusion,
        acknowledged_at=acknowledged,
        acknowledged_by=spec.get("acknowledgedBy") or None,
        updates=tuple(u for u in parsed if u is not None),
        uid=meta.get("uid"),
        owner_uid=_owner_uid(meta, str(agreement)),
    )


def _owner_uid(meta: Mapping[str, Any], agreement: str) -> str | None:
    """The uid of the owning agreement: an incident of an earlier agreement of the same
    name (deleted, created again) belongs to that one, not to its successor."""
    owners = meta.get("ownerReferences")
    for owner in owners if isinstance(owners, list) else ():
        if (isinstance(owner, Mapping) and owner.get("kind") == "ServiceLevelAgreement"
                and owner.get("name") == agreement and isinstance(owner.get("uid"), str)):
            return str(owner["uid"])
    return None


def _update(raw: Mapping[str, Any], path: str) -> m.IncidentUpdate:
    severity = raw.get("severity")
    return m.IncidentUpdate(
        time=parse_time(raw.get("time"), f"{path}.time"),
        state=enum_value(m.IncidentState, raw.get("state", "investigating"), f"{path}.state"),
        message=str(raw.get("message") or ""),
        severity=None if severity is None else enum_value(m.Severity, severity, f"{path}.severity"),
        by=str(raw["by"]) if raw.get("by") else None,
    )


def incident_spec(incident: m.Incident) -> dict[str, Any]:
    """The spec of an Incident manifest; the exact inverse of incident_from_manifest."""
    spec: dict[str, Any] = {
        "agreement": incident.agreement,
        "origin": incident.origin.value,
        "type": incident.type.value,
        "severity": incident.severity.value,
        "title": incident.title,
        "startedAt": format_time(incident.started_at),
        "resolvedAt": format_time(incident.resolved_at),
        "state": incident.state.value,
        "impact": incident.impact.value,
        "endpoints": list(incident.endpoints),
        "dependency": incident.dependency,
        "updates": [update_dict(u) for u in incident.updates],
    }
    if incident.exclusion is not None:
        spec["exclusion"] = {"reason": incident.exclusion.reason.value,
                             "note": incident.exclusion.note}
    if incident.acknowledged_at is not None:
        spec["acknowledgedAt"] = format_time(incident.acknowledged_at)
    if incident.acknowledged_by:
        spec["acknowledgedBy"] = incident.acknowledged_by
    return spec


_SPEC_NAMES = {"severity": "severity", "state": "state", "resolved_at": "resolvedAt",
               "endpoints": "endpoints"}


def spec_values(fields: Mapping[str, object]) -> dict[str, Any]:
    """The spec entries for the fields an incident change sets, as a manifest holds them."""
    return {_SPEC_NAMES[name]: _plain(value) for name, value in fields.items()}


def change_entries(spec: Mapping[str, Any], incident: m.Incident, fields: Mapping[str, object],
                   updates: Sequence[m.IncidentUpdate], readable: bool
                   ) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The spec entries and timeline entries a change to ``incident`` writes into ``spec``.

    Over a stored copy a person made unreadable (the change was decided on the operator's last
    valid version) a severity the person changed stays theirs, and timeline entries already
    there (a change written before whose answer was lost) are not added twice.
    """
    values = spec_values(fields)
    entries = [update_dict(u) for u in updates]
    if readable:
        return values, entries
    if "severity" in values and spec.get("severity") != incident.severity.value:
        del values["severity"]
    stored = spec.get("updates")
    present: list[Any] = stored if isinstance(stored, list) else []
    return values, [entry for entry in entries if entry not in present]


def _plain(value: object) -> object:
    if isinstance(value, datetime):
        return format_time(value)
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    return getattr(value, "value", value)


def update_dict(update: m.IncidentUpdate) -> dict[str, Any]:
    entry: dict[str, Any] = {"time": format_time(update.time), "state": update.state.value,
                             "message": update.message}
    if update.severity is not None:
        entry["severity"] = update.severity.value
    if update.by:
        entry["by"] = update.by
    return entry


def incident_status(incident: m.Incident, support: Mapping[m.Severity, timedelta],
                    counted_downtime_seconds: float, now: datetime) -> dict[str, Any]:
    """Duration and support-response figures; the response clock runs from startedAt."""
    duration = incident.interval(now).seconds
    due = incident.started_at + support[incident.severity]
    return {
        "durationSeconds": int(duration),
        "duration": format_duration(timedelta(seconds=int(duration))),
        "countedDowntimeSeconds": int(counted_downtime_seconds),
        "responseDue": format_time(due),
        "responseBreached": response_breached(incident, support, now),
    }


def response_breached(incident: m.Incident, support: Mapping[m.Severity, timedelta],
                      now: datetime) -> bool:
    """Not acknowledged within the support response target of its severity."""
    due = incident.started_at + support[incident.severity]
    answered = incident.acknowledged_at
    return answered > due if answered is not None else now > due
