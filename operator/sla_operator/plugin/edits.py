"""The changes a person makes to an Incident, as JSON patch operations over the object as read.

Pure: each function looks at the current object and returns the operations, or refuses with
an EditRefused a person can act on. Every change appends one timeline entry saying who and
when; the caller adds the resourceVersion test that makes a concurrent edit fail and be
decided again on the fresh object, so nobody's entry or field is overwritten unseen.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

Obj = Mapping[str, Any]
Ops = list[dict[str, Any]]

STATES = ("investigating", "identified", "monitoring")
REASONS = ("thirdParty", "blocked", "other")


class EditRefused(Exception):
    """The incident is not in a state that allows this change; the message says why."""


@dataclass(frozen=True)
class Author:
    """Who makes a change (the kubeconfig user, or --by) and when they say it happened."""

    name: str
    time: datetime


@dataclass(frozen=True)
class Edit:
    ops: Ops
    note: str | None = None  # said to the person besides "done" (e.g. already acknowledged)


def stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def _spec(incident: Obj) -> Mapping[str, Any]:
    return incident.get("spec") or {}


def _name(incident: Obj) -> str:
    return str((incident.get("metadata") or {}).get("name"))


def _resolved(incident: Obj) -> bool:
    spec = _spec(incident)
    return bool(spec.get("resolvedAt")) or spec.get("state") == "resolved"


def _not_before_start(incident: Obj, author: Author, what: str) -> None:
    started = _spec(incident).get("startedAt")
    if isinstance(started, str) and author.time < datetime.fromisoformat(started.replace("Z", "+00:00")):
        raise EditRefused(f"incident {_name(incident)} started at {started}: it cannot be "
                          f"{what} at {stamp(author.time)}, before it started")


def _entry(incident: Obj, author: Author, message: str, state: str | None = None) -> Ops:
    entry = {"time": stamp(author.time), "state": state or _spec(incident).get("state")
             or "investigating", "message": message, "by": author.name}
    ops: Ops = []
    if not isinstance(_spec(incident).get("updates"), list):
        ops.append({"op": "add", "path": "/spec/updates", "value": []})
    return [*ops, {"op": "add", "path": "/spec/updates/-", "value": entry}]


def _set(field: str, value: object) -> dict[str, Any]:
    return {"op": "add", "path": f"/spec/{field}", "value": value}


def acknowledge(incident: Obj, author: Author, message: str | None) -> Edit:
    """Sets acknowledgedAt/By (which stops the support-response clock) and says so in the
    timeline. A second acknowledgement keeps the first one's time and name (the clock stopped
    then) and still records the second person's entry."""
    _not_before_start(incident, author, "acknowledged")
    spec = _spec(incident)
    text = message or f"Acknowledged by {author.name}"
    if spec.get("acknowledgedAt"):
        note = (f"already acknowledged by {spec.get('acknowledgedBy') or 'someone'} at "
                f"{spec['acknowledgedAt']}; your entry was added to the timeline")
        return Edit(_entry(incident, author, text), note)
    ops = [_set("acknowledgedAt", stamp(author.time)), _set("acknowledgedBy", author.name)]
    return Edit(ops + _entry(incident, author, text))


def update(incident: Obj, author: Author, message: str, state: str | None) -> Edit:
    """Appends a timeline entry; with ``state``, moves the response to that state."""
    if state is not None and state not in STATES:
        raise EditRefused(f"--state must be one of {', '.join(STATES)} (resolve with "
                          "`kubectl sla resolve`)")
    if state is not None and _resolved(incident):
        raise EditRefused(f"incident {_name(incident)} is resolved; a resolved incident is not "
                          "reopened (file a new one, or add an update without --state)")
    ops: Ops = []
    if state is not None and state != _spec(incident).get("state"):
        ops.append(_set("state", state))
    return Edit(ops + _entry(incident, author, message, state))


def resolve(incident: Obj, author: Author, message: str) -> Edit:
    if _resolved(incident):
        raise EditRefused(f"incident {_name(incident)} is already resolved (at "
                          f"{_spec(incident).get('resolvedAt') or 'an unrecorded time'})")
    _not_before_start(incident, author, "resolved")
    note = None
    if _spec(incident).get("origin") == "automatic":
        note = ("the operator opened this incident; it will not open it again for the same "
                "outage, so the downtime now ends at the resolution time you gave")
    ops = [_set("state", "resolved"), _set("resolvedAt", stamp(author.time))]
    return Edit(ops + _entry(incident, author, message, "resolved"), note)


def exclude(incident: Obj, author: Author, reason: str, note: str) -> Edit:
    """Takes the incident's time out of the calculation, saying why in spec.exclusion and who
    decided it in the timeline. The note stays out of the timeline: the status page shows the
    timeline to the public, and the exclusion's note is not for it (the statement reads it
    from spec.exclusion)."""
    if reason not in REASONS:
        raise EditRefused(f"--reason must be one of {', '.join(REASONS)}")
    previous = _spec(incident).get("exclusion") or {}
    said = None
    if previous.get("reason"):
        said = f"it was excluded before ({previous['reason']}); the new reason replaces it"
    ops = [_set("exclusion", {"reason": reason, "note": note})]
    message = f"Excluded from the agreement ({reason})"
    return Edit(ops + _entry(incident, author, message), said)
