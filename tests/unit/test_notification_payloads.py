"""Notification bodies: the generic document matches its schema, Slack's and Teams' messages their
documented shapes, and nothing a person wrote can break the JSON, add markup or make a link."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import timedelta
from itertools import pairwise
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from status_snapshots import NOW, agreement, incident, period, snapshot, window

from sla_operator.domain.model import IncidentState, IncidentUpdate, Severity
from sla_operator.domain.notification_events import NotificationEvent, derive_events
from sla_operator.domain.notification_payloads import (
    generic_document,
    render,
    slack_escape,
    teams_escape,
)
from sla_operator.domain.notifications import PayloadFormat
from sla_operator.domain.views import SupportRequestView

SCHEMA = json.loads((Path(__file__).parents[2] / "docs" / "notification.schema.json").read_text())
LATER = NOW + timedelta(seconds=5)
SERVICES = {"payments-api": "Payments API"}
HOSTILE = ('Down <!channel> <https://evil.example|click> [here](https://evil.example) '
           '**bold** "quoted" \\ \u202eevil\u0000 https://evil.example www.evil.example\n- item')

# Slack's documented shape of an incoming-webhook message (api.slack.com/reference/block-kit):
# text objects are plain_text or mrkdwn (verbatim only on mrkdwn), a section's text is at most
# 3000 characters and it holds at most 10 fields of 2000, a context at most 10 elements.
TEXT_OBJECT: dict[str, Any] = {
    "type": "object", "required": ["type", "text"], "additionalProperties": False,
    "properties": {"type": {"enum": ["mrkdwn", "plain_text"]},
                   "text": {"type": "string", "minLength": 1, "maxLength": 3000},
                   "verbatim": {"type": "boolean"}, "emoji": {"type": "boolean"}},
    "allOf": [{"if": {"properties": {"type": {"const": "plain_text"}}},
               "then": {"not": {"required": ["verbatim"]}}},
              {"if": {"properties": {"type": {"const": "mrkdwn"}}},
               "then": {"not": {"required": ["emoji"]}}}]}
SLACK_MESSAGE: dict[str, Any] = {
    "type": "object", "required": ["text"], "additionalProperties": False,
    "properties": {
        "text": {"type": "string", "minLength": 1, "maxLength": 40000},
        "blocks": {"type": "array", "maxItems": 50, "items": {"oneOf": [
            {"type": "object", "required": ["type"], "additionalProperties": False,
             "anyOf": [{"required": ["text"]}, {"required": ["fields"]}],
             "properties": {"type": {"const": "section"}, "block_id": {"type": "string"},
                            "text": TEXT_OBJECT,
                            "fields": {"type": "array", "maxItems": 10, "items": {
                                **TEXT_OBJECT, "properties": {
                                    **TEXT_OBJECT["properties"],
                                    "text": {"type": "string", "minLength": 1,
                                             "maxLength": 2000}}}}}},
            {"type": "object", "required": ["type", "elements"], "additionalProperties": False,
             "properties": {"type": {"const": "context"}, "block_id": {"type": "string"},
                            "elements": {"type": "array", "minItems": 1, "maxItems": 10,
                                         "items": TEXT_OBJECT}}}]}}}}


def opened(title: str = "Payments API is down") -> NotificationEvent:
    before = snapshot(agreement())
    after = snapshot(agreement(), incidents=(incident("down-1", started=NOW, title=title),),
                     taken_at=LATER)
    (event,) = derive_events(before, after)
    return event


def every_kind_of_event() -> list[NotificationEvent]:
    first = incident("down-1", started=NOW, severity=Severity.P3, title=HOSTILE)
    second = replace(first, severity=Severity.P1, state=IncidentState.IDENTIFIED, updates=(
        *first.updates, IncidentUpdate(LATER, IncidentState.IDENTIFIED, HOSTILE, by=HOSTILE)))
    third = replace(second, resolved_at=LATER, state=IncidentState.RESOLVED)
    maintenance = replace(window(starts_in=timedelta(seconds=2), announce=timedelta(days=1)),
                          description=HOSTILE)
    assert maintenance.upcoming is not None
    under_way = replace(maintenance, active=maintenance.upcoming, upcoming=None)
    targets = {Severity.P1: timedelta(minutes=15)}
    healthy = agreement(period=period(downtime=1.0), support_response=targets)
    spent = agreement(period=period(downtime=3000.0), support_response=targets)
    snapshots = [snapshot(healthy), snapshot(healthy, incidents=(first,), windows=(maintenance,)),
                 snapshot(healthy, incidents=(second,), windows=(under_way,), taken_at=LATER),
                 snapshot(spent, incidents=(third,), taken_at=LATER + timedelta(hours=3))]
    events = [e for a, b in pairwise(snapshots) for e in derive_events(a, b)]
    assert {e.type for e in events} >= {"incidentOpened", "incidentEscalated", "incidentUpdated",
                                        "incidentResolved", "maintenanceAnnounced",
                                        "maintenanceStarted", "maintenanceEnded", "budgetExhausted",
                                        "supportResponseBreached"}
    return events


@pytest.mark.parametrize("event", every_kind_of_event(), ids=lambda e: str(e.type))
def test_every_generic_document_has_exactly_the_fields_of_the_schema(event: NotificationEvent) -> None:
    body = json.loads(render(PayloadFormat.GENERIC, event, "0" * 32, "on-call", SERVICES))
    jsonschema.validate(body, SCHEMA, format_checker=jsonschema.FormatChecker())


@pytest.mark.parametrize("event", every_kind_of_event(), ids=lambda e: str(e.type))
def test_every_slack_message_has_slacks_documented_shape(event: NotificationEvent) -> None:
    body = json.loads(render(PayloadFormat.SLACK, event, "0" * 32, "on-call", SERVICES))
    jsonschema.validate(body, SLACK_MESSAGE)


@pytest.mark.parametrize("event", every_kind_of_event(), ids=lambda e: str(e.type))
def test_every_teams_message_carries_one_adaptive_card(event: NotificationEvent) -> None:
    body = json.loads(render(PayloadFormat.MSTEAMS, event, "0" * 32, "on-call", SERVICES))
    assert body["type"] == "message"
    (attachment,) = body["attachments"]
    assert attachment["contentType"] == "application/vnd.microsoft.card.adaptive"
    card = attachment["content"]
    assert (card["type"], card["version"]) == ("AdaptiveCard", "1.4")
    assert [b["type"] for b in card["body"]] == ["TextBlock", "TextBlock", "FactSet"]


def test_hostile_text_cannot_break_the_json_or_carry_control_characters() -> None:
    event = opened(HOSTILE)
    for fmt in PayloadFormat:
        text = render(fmt, event, "0" * 32, "on-call", SERVICES).decode()
        body = json.loads(text)
        assert "\u0000" not in text and "\u202e" not in text
        assert body  # parsed whole: nothing closed a string early
    document = generic_document(event, "0" * 32, "on-call", SERVICES)
    assert document["incident"]["title"].startswith("Down <!channel> <https://evil.example|click>")


def test_slack_text_can_form_no_link_mention_or_auto_link() -> None:
    body = json.loads(render(PayloadFormat.SLACK, opened(HOSTILE), "0" * 32, "r", SERVICES))
    texts = [body["text"], body["blocks"][0]["text"]["text"],
             *(f["text"] for f in body["blocks"][1]["fields"])]
    for text in texts:
        assert "<" not in text and ">" not in text  # no <url|label>, <!channel>, <@U123>
    assert "&lt;!channel&gt; &lt;https://evil.example|click&gt;" in body["text"]
    for block in body["blocks"]:
        for obj in [block.get("text"), *block.get("fields", []), *block.get("elements", [])]:
            if obj is not None:
                assert obj["verbatim"] is True  # no automatic links, mentions or channel names


def test_slack_escaping_is_slacks_three_entities() -> None:
    assert slack_escape("a & b < c > d") == "a &amp; b &lt; c &gt; d"


def test_teams_text_can_form_no_markdown_link_emphasis_or_auto_link() -> None:
    escaped = teams_escape("[here](https://evil.example) **bold** www.evil.example")
    assert escaped.startswith("\\[here\\]\\(https:\u2060//evil")
    assert "\\*\\*bold\\*\\*" in escaped and "www\u2060.evil" in escaped
    assert "://" not in escaped
    assert teams_escape("- item\n1. two") == "\\- item\n1\\. two"


def test_long_text_is_cut_and_said_to_be() -> None:
    document = generic_document(opened("x" * 5000), "0" * 32, "r", SERVICES)
    assert len(document["incident"]["title"]) == 1000 and document["incident"]["title"].endswith("…")


def late_support_request(title: str = HOSTILE, customer: str = HOSTILE,
                         reference: str = HOSTILE) -> NotificationEvent:
    due = NOW + timedelta(hours=1)

    def seen(at: Any, late: bool) -> Any:
        request = SupportRequestView("payments", "acme-1042", "payments-api", Severity.P2, title,
                                     NOW, due, late, customer=customer, reference=reference,
                                     uid="r-1")
        return replace(snapshot(agreement(), taken_at=at), support_requests=(request,))

    (event,) = derive_events(seen(due - timedelta(seconds=1), False),
                             seen(due + timedelta(seconds=1), True))
    return event


@pytest.mark.parametrize("fmt", list(PayloadFormat), ids=str)
def test_a_late_support_request_renders_in_every_format(fmt: PayloadFormat) -> None:
    body = json.loads(render(fmt, late_support_request("Webhooks delayed", "acme", ""), "0" * 32,
                             "on-call", SERVICES))
    if fmt is PayloadFormat.GENERIC:
        jsonschema.validate(body, SCHEMA, format_checker=jsonschema.FormatChecker())
        assert body["event"] == "supportResponseBreached" and "incident" not in body
        assert body["supportRequest"] == {
            "name": "acme-1042", "agreement": "payments-api", "severity": "P2",
            "title": "Webhooks delayed", "customer": "acme", "reference": "",
            "openedAt": "2026-11-27T03:30:00Z", "responseDue": "2026-11-27T04:30:00Z",
            "respondedAt": None}
        assert body["summary"] == ("Support response breached: [P2] Webhooks delayed for acme "
                                   "(Payments API), due 2026-11-27T04:30:00Z")
        assert body["occurredAt"] == "2026-11-27T04:30:00Z"
    elif fmt is PayloadFormat.SLACK:
        jsonschema.validate(body, SLACK_MESSAGE)
        facts = [f["text"].split("\n")[0] for f in body["blocks"][1]["fields"]]
        assert facts == ["*Event*", "*Namespace*", "*Severity*", "*Request*", "*Customer*",
                         "*Opened*", "*Due*"]
    else:
        (attachment,) = body["attachments"]
        facts = [f["title"] for f in attachment["content"]["body"][2]["facts"]]
        assert "Due" in facts and "Request" in facts


def test_a_support_requests_untrusted_text_is_escaped_as_an_incidents_is() -> None:
    event = late_support_request()
    document = generic_document(event, "0" * 32, "on-call", SERVICES)
    jsonschema.validate(document, SCHEMA)
    for field in ("title", "customer", "reference"):
        assert "\u0000" not in document["supportRequest"][field]
        assert "\u202e" not in document["supportRequest"][field]
    slack = json.loads(render(PayloadFormat.SLACK, event, "0" * 32, "r", SERVICES))
    for text in [slack["text"], *(f["text"] for f in slack["blocks"][1]["fields"])]:
        assert "<" not in text and ">" not in text
    assert all(f["verbatim"] is True for f in slack["blocks"][1]["fields"])
    teams = json.loads(render(PayloadFormat.MSTEAMS, event, "0" * 32, "r", SERVICES))
    card = teams["attachments"][0]["content"]
    for value in [card["body"][1]["text"], *(f["value"] for f in card["body"][2]["facts"])]:
        assert "://" not in value and "](" not in value
