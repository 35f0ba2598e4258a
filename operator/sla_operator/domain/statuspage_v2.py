"""Atlassian Statuspage's public API v2, as plain data, from the status page's view model.

The documents of /api/v2/*.json (API.md, "Statuspage-compatible API"), built from the same
``StatusPage`` as the HTML page, so they hold only what the page shows: public agreements,
their public incidents and announced maintenance. Ids are stable hashes, shaped like
Statuspage's own (12 lowercase characters), so clients that put them in URLs keep working.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from sla_operator.domain.model import State
from sla_operator.domain.statuspage import PublicAgreement, PublicIncident, PublicWindow, StatusPage

Document = dict[str, Any]
PAGE_ID = "slaoperator0"
PAGE_NAME = "Service status"
MOST_RECENT = 50  # Statuspage's incidents.json and scheduled-maintenances.json: the latest 50
COMPONENT_STATUS = {State.UP: "operational", State.DEGRADED: "degraded_performance",
                    State.DOWN: "major_outage", State.MAINTENANCE: "under_maintenance",
                    # Statuspage has no "unknown": not measured yet is shown as nothing wrong,
                    # and the component's description says so.
                    State.UNKNOWN: "operational"}
STATUS_WORST_FIRST = ("major_outage", "partial_outage", "degraded_performance",
                      "under_maintenance", "operational")
INCIDENT_IMPACT = {"P1": "critical", "P2": "major", "P3": "minor", "P4": "minor"}
# The page indicator, mildest first, with the words Statuspage puts beside each.
INDICATORS = {"none": "All Systems Operational", "maintenance": "Service Under Maintenance",
              "minor": "Partially Degraded Service", "major": "Partial System Outage",
              "critical": "Major Service Outage"}
ROUTES = ("summary.json", "status.json", "components.json", "incidents.json",
          "incidents/unresolved.json", "scheduled-maintenances.json",
          "scheduled-maintenances/upcoming.json", "scheduled-maintenances/active.json")


def stable_id(*parts: str) -> str:
    """12 lowercase hex characters of the object's name: the same on every replica and restart."""
    return hashlib.sha256("/".join(parts).encode()).hexdigest()[:12]


def time_text(moment: datetime) -> str:
    """Statuspage's times: ISO 8601 with milliseconds and an offset."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds")


def v2_documents(page: StatusPage) -> dict[str, Document]:
    """Every route's document, by its path under /api/v2/."""
    head = _page(page)
    status = page_status(page)
    by_agreement: dict[tuple[str, str], Document] = {}
    public_components = _components(page, by_agreement)
    incidents = [_incident(i, by_agreement) for i in page.incidents]
    unresolved = [d for d, i in zip(incidents, page.incidents, strict=True) if i.is_open]
    windows = [_window(w, by_agreement) for w in page.maintenance]
    upcoming = [d for d in windows if d["status"] == "scheduled"]
    active = [d for d in windows if d["status"] == "in_progress"]
    return {
        "summary.json": {"page": head, "components": public_components, "incidents": unresolved,
                         "scheduled_maintenances": windows, "status": status},
        "status.json": {"page": head, "status": status},
        "components.json": {"page": head, "components": public_components},
        "incidents.json": {"page": head, "incidents": incidents[:MOST_RECENT]},
        "incidents/unresolved.json": {"page": head, "incidents": unresolved},
        "scheduled-maintenances.json": {"page": head,
                                        "scheduled_maintenances": windows[:MOST_RECENT]},
        "scheduled-maintenances/upcoming.json": {"page": head, "scheduled_maintenances": upcoming},
        "scheduled-maintenances/active.json": {"page": head, "scheduled_maintenances": active},
    }


def page_status(page: StatusPage) -> Document:
    """The worst of what the production components and the open incidents say."""
    production = [a for a in page.agreements if not a.sandbox]
    statuses = {COMPONENT_STATUS[a.state] for a in production}
    indicator = "none"
    if "major_outage" in statuses:
        indicator = "critical" if statuses == {"major_outage"} else "major"
    elif "degraded_performance" in statuses:
        indicator = "minor"
    elif "under_maintenance" in statuses:
        indicator = "maintenance"
    shown = {(a.namespace, a.name) for a in production}
    for incident in page.incidents:
        if incident.is_open and (incident.namespace, incident.agreement) in shown:
            indicator = _worse(indicator, INCIDENT_IMPACT.get(incident.severity, "minor"))
    return {"indicator": indicator, "description": INDICATORS[indicator]}


def _worse(one: str, other: str) -> str:
    order = list(INDICATORS)
    return one if order.index(one) >= order.index(other) else other


def _page(page: StatusPage) -> Document:
    return {"id": PAGE_ID, "name": PAGE_NAME, "url": "/", "time_zone": "Etc/UTC",
            "updated_at": time_text(page.generated_at)}


def _components(page: StatusPage, by_agreement: dict[tuple[str, str], Document]) -> list[Document]:
    """Agreements as components, each group as a group component listing its children before
    them; ``by_agreement`` is filled with each agreement's component."""
    updated = time_text(page.generated_at)
    result: list[Document] = []
    position = 0
    for group in page.groups:
        group_id = stable_id("group", group.name) if group.name is not None else None
        children = [_component(a, group_id, updated) for a in group.agreements]
        by_agreement.update(((a.namespace, a.name), c) for a, c in zip(group.agreements, children,
                                                                       strict=True))
        if group.name is not None and group_id is not None:
            position += 1
            statuses = {c["status"] for c in children}
            result.append({
                "id": group_id, "name": group.name,
                "status": next(s for s in STATUS_WORST_FIRST if s in statuses),
                "created_at": updated, "updated_at": updated, "position": position,
                "description": None, "showcase": False, "start_date": None, "group_id": None,
                "page_id": PAGE_ID, "group": True, "only_show_if_degraded": False,
                "components": [c["id"] for c in children]})
        for child in children:
            position += 1
            child["position"] = position
            result.append(child)
    return result


def _component(agreement: PublicAgreement, group_id: str | None, updated: str) -> Document:
    notes = []
    if agreement.sandbox:
        notes.append("Sandbox: not covered by the agreement")
    if agreement.state is State.UNKNOWN:
        notes.append("Status not known yet")
    if agreement.availability is not None:
        notes.append(f"{agreement.availability}% available in {agreement.period_label} "
                     f"(objective {agreement.objective}%)")
    return {
        "id": stable_id(agreement.namespace, agreement.name), "name": agreement.service,
        "status": COMPONENT_STATUS[agreement.state], "created_at": updated, "updated_at": updated,
        "position": 0, "description": "; ".join(notes) or None, "showcase": True,
        "start_date": None, "group_id": group_id, "page_id": PAGE_ID, "group": False,
        "only_show_if_degraded": False}


def _affected(namespace: str, names: Iterable[str],
              components: dict[tuple[str, str], Document]) -> list[Document]:
    return [components[(namespace, n)] for n in names if (namespace, n) in components]


def _incident(incident: PublicIncident, components: dict[tuple[str, str], Document]) -> Document:
    incident_id = stable_id("incident", incident.namespace, incident.name)
    monitoring = next((u.time for u in incident.updates if u.state == "monitoring"), None)
    affected = _affected(incident.namespace, [incident.agreement], components)
    updates = [{
        "id": stable_id("update", incident.namespace, incident.name, str(number)),
        "status": update.state, "body": update.message, "incident_id": incident_id,
        "created_at": time_text(update.time), "updated_at": time_text(update.time),
        "display_at": time_text(update.time),
        "affected_components": [{"code": c["id"], "name": c["name"], "old_status": c["status"],
                                 "new_status": c["status"]} for c in affected]}
        for number, update in reversed(list(enumerate(incident.updates)))]  # newest first
    return {
        "id": incident_id, "name": incident.title, "status": incident.state,
        "created_at": time_text(incident.started_at), "updated_at": time_text(incident.updated_at),
        "monitoring_at": time_text(monitoring) if monitoring is not None else None,
        "resolved_at": time_text(incident.resolved_at) if incident.resolved_at else None,
        "impact": INCIDENT_IMPACT.get(incident.severity, "minor"),
        "shortlink": f"/#incident-{incident.namespace}_{incident.name}",
        "started_at": time_text(incident.started_at), "page_id": PAGE_ID,
        "incident_updates": updates, "components": affected}


def _window(window: PublicWindow, components: dict[tuple[str, str], Document]) -> Document:
    status = "in_progress" if window.active else "scheduled"
    return {
        "id": stable_id("maintenance", window.namespace, window.name, window.start.isoformat()),
        "name": window.description or window.name, "status": status,
        "created_at": time_text(window.start), "updated_at": time_text(window.start),
        "monitoring_at": None, "resolved_at": None, "impact": "maintenance",
        "shortlink": "/#maintenance", "started_at": time_text(window.start), "page_id": PAGE_ID,
        "incident_updates": [], "components": _affected(window.namespace, window.agreements,
                                                         components),
        "scheduled_for": time_text(window.start), "scheduled_until": time_text(window.end)}
