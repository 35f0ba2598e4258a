"""The bodies sent for an event: generic JSON, Slack incoming webhook, Microsoft Teams.

Whatever people write (incident titles, update messages, maintenance descriptions, names of
who acted, a support request's title, customer and reference) is untrusted in every format.
It is made plain text first (control characters dropped, length bounded), then escaped for
where it goes:

- generic: JSON strings, escaped by the JSON encoder; nothing is interpreted;
- Slack mrkdwn: ``&``, ``<`` and ``>`` as entities (Slack's own rule: no ``<url|link>``,
  ``<!channel>`` or ``<@user>`` can be formed) and ``verbatim: true`` on every text object, so
  Slack does not turn a bare URL, ``@here`` or ``#channel`` into a link or a mention;
- Teams: Adaptive Card text is markdown: its characters (brackets, parentheses, emphasis,
  headings, a list marker at a line's start) are backslash-escaped, so no ``[text](url)`` or
  emphasis can be formed, and ``://`` and ``www.`` are broken with a word joiner so that Teams
  does not make a link of a bare URL.

The generic document's fields are described by docs/notification.schema.json.
"""

from __future__ import annotations

import json
import re
from datetime import datetime
from typing import Any

from sla_operator.domain.notification_events import NotificationEvent
from sla_operator.domain.notifications import EventType, PayloadFormat
from sla_operator.domain.records import format_time

SCHEMA_VERSION = "sla.dev/notification/v1"
MAX_TEXT = 1000  # characters of one untrusted text kept (Slack allows 3000 per section)
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
_TEAMS_MARKDOWN = re.compile(r"([\\`*_{}\[\]()#!|>~<&])")
_TEAMS_BULLET = re.compile(r"(?m)^(\s*)([-+])")  # list markers at a line's start
_TEAMS_NUMBERED = re.compile(r"(?m)^(\s*\d+)\.")
_WORD_JOINER = "\u2060"

HEADLINES = {
    EventType.INCIDENT_OPENED: "Incident opened",
    EventType.INCIDENT_ESCALATED: "Incident escalated",
    EventType.INCIDENT_UPDATED: "Incident updated",
    EventType.INCIDENT_RESOLVED: "Incident resolved",
    EventType.MAINTENANCE_ANNOUNCED: "Maintenance announced",
    EventType.MAINTENANCE_STARTED: "Maintenance started",
    EventType.MAINTENANCE_ENDED: "Maintenance ended",
    EventType.BUDGET_EXHAUSTED: "Error budget exhausted",
    EventType.SUPPORT_RESPONSE_BREACHED: "Support response breached",
}


def plain(text: str | None) -> str:
    """Untrusted text as one bounded plain string: no control or direction-override characters."""
    cleaned = _CONTROL.sub(" ", text or "").strip()
    return cleaned if len(cleaned) <= MAX_TEXT else cleaned[:MAX_TEXT - 1] + "…"


def _time(moment: datetime | None) -> str | None:
    return format_time(moment)


def generic_document(event: NotificationEvent, delivery_id: str, route: str,
                     services: dict[str, str]) -> dict[str, Any]:
    """The generic JSON document (docs/notification.schema.json). ``services``: agreement name
    to its service's name, for the agreements of the event's namespace."""
    document: dict[str, Any] = {
        "schema": SCHEMA_VERSION, "deliveryId": delivery_id, "event": str(event.type),
        "occurredAt": _time(event.occurred_at), "namespace": event.namespace, "route": route,
        "summary": summary(event, services),
        "agreements": [{"name": name, "service": plain(services.get(name, name))}
                       for name in event.agreements],
    }
    incident = event.incident
    if incident is not None:
        document["incident"] = {
            "name": incident.name, "agreement": incident.agreement, "type": str(incident.type),
            "severity": str(incident.severity), "state": str(incident.state),
            "impact": str(incident.impact), "title": plain(incident.title),
            "startedAt": _time(incident.started_at), "resolvedAt": _time(incident.resolved_at),
            "acknowledgedAt": _time(incident.acknowledged_at),
            "excluded": incident.exclusion is not None or incident.dependency,
        }
        if event.previous_severity is not None:
            document["incident"]["previousSeverity"] = str(event.previous_severity)
    if event.update is not None:
        document["update"] = {"time": _time(event.update.time), "state": str(event.update.state),
                              "message": plain(event.update.message),
                              "by": plain(event.update.by) if event.update.by else None}
    if event.window is not None and event.occurrence is not None:
        document["maintenance"] = {"name": event.window.name,
                                   "description": plain(event.window.description),
                                   "start": _time(event.occurrence.start),
                                   "end": _time(event.occurrence.end)}
    request = event.support_request
    if request is not None:
        document["supportRequest"] = {
            "name": request.name, "agreement": request.agreement,
            "severity": str(request.severity), "title": plain(request.title),
            "customer": plain(request.customer), "reference": plain(request.reference),
            "openedAt": _time(request.opened_at), "responseDue": _time(request.response_due),
            "respondedAt": _time(request.responded_at)}
    view = event.agreement
    if view is not None and view.period is not None:
        document["budget"] = {"period": view.period.label, "objective": str(view.objective),
                              "availability": round(view.period.availability * 100, 4),
                              "totalSeconds": round(view.period.budget_total_seconds, 3),
                              "remainingSeconds": round(view.period.budget_remaining_seconds, 3)}
    return document


def summary(event: NotificationEvent, services: dict[str, str]) -> str:
    """One plain line: what happened, to what (untrusted parts included, not yet escaped)."""
    named = ", ".join(plain(services.get(a, a)) for a in event.agreements) or event.namespace
    incident = event.incident
    if incident is not None:
        line = f"{HEADLINES[event.type]}: [{incident.severity}] {plain(incident.title)} ({named})"
        if event.previous_severity is not None:
            line += f", was {event.previous_severity}"
        if event.update is not None:
            line += f": {plain(event.update.message)}"
        return line
    request = event.support_request
    if request is not None:
        who = f" for {plain(request.customer)}" if request.customer else ""
        return (f"{HEADLINES[event.type]}: [{request.severity}] {plain(request.title)}{who} "
                f"({named}), due {_time(request.response_due)}")
    if event.window is not None and event.occurrence is not None:
        what = plain(event.window.description) or event.window.name
        return (f"{HEADLINES[event.type]}: {what} ({named}), {_time(event.occurrence.start)} "
                f"to {_time(event.occurrence.end)}")
    return f"{HEADLINES[event.type]}: {named}"


def render(fmt: PayloadFormat, event: NotificationEvent, delivery_id: str, route: str,
           services: dict[str, str]) -> bytes:
    """The request body for ``fmt``, as UTF-8 JSON."""
    document = generic_document(event, delivery_id, route, services)
    if fmt is PayloadFormat.SLACK:
        body = slack_message(document)
    elif fmt is PayloadFormat.MSTEAMS:
        body = teams_message(document)
    else:
        body = document
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8",
                                                                              "replace")


# ---------------------------------------------------------------- Slack


def slack_escape(text: str) -> str:
    """Slack's documented escaping for text in mrkdwn: &, < and > only."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _facts(document: dict[str, Any]) -> list[tuple[str, str]]:
    facts = [("Event", document["event"]), ("Namespace", document["namespace"])]
    incident = document.get("incident")
    if incident:
        facts += [("Severity", incident["severity"]), ("State", incident["state"]),
                  ("Started", incident["startedAt"])]
        if incident["resolvedAt"]:
            facts.append(("Resolved", incident["resolvedAt"]))
    request = document.get("supportRequest")
    if request:
        facts += [("Severity", request["severity"]), ("Request", request["name"])]
        if request["customer"]:
            facts.append(("Customer", request["customer"]))
        facts += [("Opened", request["openedAt"]), ("Due", request["responseDue"])]
        if request["respondedAt"]:
            facts.append(("Responded", request["respondedAt"]))
        if request["reference"]:
            facts.append(("Reference", request["reference"]))
    update = document.get("update")
    if update and update["by"]:
        facts.append(("By", update["by"]))
    maintenance = document.get("maintenance")
    if maintenance:
        facts += [("From", maintenance["start"]), ("Until", maintenance["end"])]
    budget = document.get("budget")
    if budget:
        facts += [("Period", budget["period"]), ("Availability", f"{budget['availability']}%"),
                  ("Objective", f"{budget['objective']}%")]
    return facts


def slack_message(document: dict[str, Any]) -> dict[str, Any]:
    """An incoming-webhook message: ``text`` (the notification's fallback) and blocks."""
    text = slack_escape(document["summary"])
    fields = [{"type": "mrkdwn", "verbatim": True,
               "text": f"*{title}*\n{slack_escape(str(value))}"}
              for title, value in _facts(document)][:10]  # a section holds at most 10 fields
    return {
        "text": text,
        "blocks": [
            {"type": "section", "text": {"type": "mrkdwn", "text": text, "verbatim": True}},
            {"type": "section", "fields": fields},
            {"type": "context", "elements": [
                {"type": "mrkdwn", "verbatim": True,
                 "text": f"sla-operator · delivery {slack_escape(document['deliveryId'])}"}]},
        ],
    }


# ---------------------------------------------------------------- Microsoft Teams


def teams_escape(text: str) -> str:
    """Plain text for Adaptive Card markdown: no link, emphasis or auto-linked URL."""
    escaped = _TEAMS_MARKDOWN.sub(r"\\\1", text)
    escaped = _TEAMS_NUMBERED.sub(r"\1\\.", _TEAMS_BULLET.sub(r"\1\\\2", escaped))
    return escaped.replace("://", f":{_WORD_JOINER}//").replace("www.", f"www{_WORD_JOINER}.")


def teams_message(document: dict[str, Any]) -> dict[str, Any]:
    """A message with one Adaptive Card (what Teams workflows' and connectors' webhooks take)."""
    card = {
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "type": "AdaptiveCard", "version": "1.4",
        "body": [
            {"type": "TextBlock", "size": "Medium", "weight": "Bolder", "wrap": True,
             "text": teams_escape(HEADLINES[EventType(document["event"])])},
            {"type": "TextBlock", "wrap": True, "text": teams_escape(document["summary"])},
            {"type": "FactSet", "facts": [{"title": title, "value": teams_escape(str(value))}
                                          for title, value in _facts(document)]},
        ],
    }
    return {"type": "message", "summary": plain(document["summary"])[:150],
            "attachments": [{"contentType": "application/vnd.microsoft.card.adaptive",
                             "contentUrl": None, "content": card}]}
