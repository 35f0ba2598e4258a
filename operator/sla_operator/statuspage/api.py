"""The JSON of /api/v1/status (API.md, "Status page"; schema in docs/status.schema.json)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from sla_operator.domain.statuspage import PublicAgreement, PublicIncident, PublicWindow, StatusPage
from sla_operator.statuspage.text import utc_text


def status_document(page: StatusPage) -> dict[str, Any]:
    return {
        "generatedAt": utc_text(page.generated_at),
        "state": page.state.value,
        "agreements": [agreement_document(a) for a in page.agreements],
        "incidents": [incident_document(i) for i in page.incidents],
        "maintenance": [_window(w) for w in page.maintenance],
    }


def encode(document: Any) -> str:
    return json.dumps(document, ensure_ascii=False, separators=(",", ":"))


def status_json(page: StatusPage, agreement_json: Callable[[PublicAgreement], str],
                incident_json: Callable[[PublicIncident], str]) -> bytes:
    """The same as ``encode(status_document(page))``, from the caller's encoded parts: agreements
    and incidents that did not change are not encoded again."""
    head = encode({"generatedAt": utc_text(page.generated_at), "state": page.state.value})
    agreements = ",".join(agreement_json(a) for a in page.agreements)
    incidents = ",".join(incident_json(i) for i in page.incidents)
    maintenance = encode([_window(w) for w in page.maintenance])
    return (f'{head[:-1]},"agreements":[{agreements}],"incidents":[{incidents}],'
            f'"maintenance":{maintenance}}}').encode()


def agreement_document(agreement: PublicAgreement) -> dict[str, Any]:
    period = None
    if agreement.period_start is not None and agreement.period_end is not None:
        period = {"label": agreement.period_label, "start": utc_text(agreement.period_start),
                  "end": utc_text(agreement.period_end)}
    return {
        "namespace": agreement.namespace,
        "name": agreement.name,
        "service": agreement.service,
        "group": agreement.group,
        "environment": agreement.environment.value,
        "state": agreement.state.value,
        "objective": agreement.objective,
        "availability": agreement.availability,
        "met": agreement.met,
        "period": period,
        "daily": [{"date": bar.date.isoformat(), "availability": bar.availability,
                   "downtimeSeconds": bar.downtime_seconds,
                   "maintenanceSeconds": bar.maintenance_seconds} for bar in agreement.bars],
    }


def incident_document(incident: PublicIncident) -> dict[str, Any]:
    return {
        "namespace": incident.namespace,
        "name": incident.name,
        "agreement": incident.agreement,
        "service": incident.service,
        "type": incident.type,
        "severity": incident.severity,
        "impact": incident.impact,
        "state": incident.state,
        "title": incident.title,
        "startedAt": utc_text(incident.started_at),
        "resolvedAt": utc_text(incident.resolved_at) if incident.resolved_at else None,
        "durationSeconds": incident.duration_seconds,
        "updates": [{"time": utc_text(u.time), "state": u.state, "message": u.message}
                    for u in incident.updates],
        "excluded": incident.excluded,
    }


def _window(window: PublicWindow) -> dict[str, Any]:
    return {
        "namespace": window.namespace,
        "name": window.name,
        "description": window.description,
        "start": utc_text(window.start),
        "end": utc_text(window.end),
        "active": window.active,
        "agreements": list(window.agreements),
    }
