"""The statement's response section: support requests with incidents, per severity, counted
from the request lines it lists, business hours across October's DST change in London."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, time, timedelta
from decimal import Decimal
from pathlib import Path

import jsonschema
import pytest

from sla_operator.domain.customer_statement import CustomerStatement, build_statement
from sla_operator.domain.model import (
    Agreement,
    Endpoint,
    HttpProbe,
    Incident,
    IncidentState,
    IncidentType,
    ResponseHours,
    Severity,
    SupportHours,
    Window,
)
from sla_operator.domain.support import SupportRequest
from sla_operator.statement.formats import statement_dict, to_markdown
from sla_operator.statement.html import to_html

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = json.loads((ROOT / "docs" / "statement.schema.json").read_text())
NOW = datetime(2026, 11, 3, 12, 0, tzinfo=UTC)
EVIL = '<b>help</b> | **now**'

AGREEMENT = Agreement(
    namespace="shop", name="checkout", service="Checkout", objective=Decimal("99.9"),
    endpoints=(Endpoint("api", HttpProbe("http://127.0.0.1:8099/")),),
    window=Window(time_zone="Europe/London"), created_at=datetime(2026, 1, 1, tzinfo=UTC),
    support_response={Severity.P1: timedelta(minutes=15), Severity.P2: timedelta(hours=1),
                      Severity.P3: timedelta(hours=8), Severity.P4: timedelta(hours=8)},
    support_hours=SupportHours("Europe/London", frozenset(range(5)), time(9), time(17),
                               {Severity.P4: ResponseHours.BUSINESS}))


def request(name: str, severity: Severity, opened: datetime, responded: datetime | None = None,
            **more: object) -> SupportRequest:
    base = SupportRequest("shop", name, "checkout", severity, f"Request {name}", opened,
                          responded_at=responded)
    return replace(base, **more)  # type: ignore[arg-type]


FRIDAY = datetime(2026, 10, 23, 15, 30, tzinfo=UTC)  # 16:30 BST; the clocks go back on Sunday
REQUESTS = [
    # 30 min on Friday, 1 h on Monday (GMT): 5400 s of support hours, in time.
    request("friday-p4", Severity.P4, FRIDAY, datetime(2026, 10, 26, 10, 0, tzinfo=UTC)),
    request("p2-in-time", Severity.P2, datetime(2026, 10, 5, 9, 0, tzinfo=UTC),
            datetime(2026, 10, 5, 9, 20, tzinfo=UTC), title=EVIL),
    request("p2-late", Severity.P2, datetime(2026, 10, 6, 9, 0, tzinfo=UTC),
            datetime(2026, 10, 6, 11, 0, tzinfo=UTC)),
    request("p1-unanswered", Severity.P1, datetime(2026, 10, 7, 9, 0, tzinfo=UTC)),
    request("september", Severity.P2, datetime(2026, 9, 30, 22, 0, tzinfo=UTC)),  # 23:00 BST
    request("other-agreement", Severity.P2, FRIDAY, agreement="payments"),
]
INCIDENT = Incident(namespace="shop", name="down", agreement="checkout",
                    type=IncidentType.OUTAGE, severity=Severity.P2, title="Down",
                    started_at=datetime(2026, 10, 10, 9, 0, tzinfo=UTC),
                    resolved_at=datetime(2026, 10, 10, 9, 30, tzinfo=UTC),
                    state=IncidentState.RESOLVED,
                    acknowledged_at=datetime(2026, 10, 10, 9, 5, tzinfo=UTC))


@pytest.fixture(scope="module")
def statement() -> CustomerStatement:
    return build_statement(AGREEMENT, [], [INCIDENT], [], "2026-10", NOW, REQUESTS)


def test_the_requests_opened_in_the_period_are_listed_oldest_first(
        statement: CustomerStatement) -> None:
    assert [line.name for line in statement.support_requests] == [
        "p2-in-time", "p2-late", "p1-unanswered", "friday-p4"]


def test_a_business_hours_request_across_the_dst_change_counts_support_hours_only(
        statement: CustomerStatement) -> None:
    (friday,) = [line for line in statement.support_requests if line.name == "friday-p4"]
    assert friday.due == datetime(2026, 10, 26, 16, 30, tzinfo=UTC)
    assert (friday.response_seconds, friday.breached) == (5400, False)


def test_each_severity_adds_up_from_the_request_lines_beside_its_incidents(
        statement: CustomerStatement) -> None:
    by_severity = {r.severity: r for r in statement.responses}
    assert (by_severity["P2"].incidents, by_severity["P2"].in_time) == (1, 1)  # incidents too
    for response in statement.responses:
        figures = response.support
        assert figures is not None
        lines = [line for line in statement.support_requests
                 if line.severity == response.severity]
        assert figures.requests == len(lines)
        assert figures.in_time + figures.breached + figures.waiting == figures.requests
        assert figures.breached == sum(1 for line in lines if line.breached)
    p2 = by_severity["P2"].support
    assert p2 is not None
    assert (p2.in_time, p2.breached, p2.median_seconds, p2.worst_seconds) == (1, 1, 1200, 7200)
    p1 = by_severity["P1"].support
    assert p1 is not None and (p1.breached, p1.worst_seconds) == (1, None)
    p4 = by_severity["P4"].support
    assert p4 is not None and p4.hours == "business"


def test_the_json_carries_the_requests_and_meets_its_schema(
        statement: CustomerStatement) -> None:
    document = statement_dict(statement)
    jsonschema.validate(document, SCHEMA)
    lines = document["supportRequests"]
    for response in document["responses"]:
        mine = [line for line in lines if line["severity"] == response["severity"]]
        assert response["supportRequests"]["requests"] == len(mine)
        assert response["supportRequests"]["breached"] == sum(line["breached"] for line in mine)
    assert lines[-1] == {"name": "friday-p4", "severity": "P4", "title": "Request friday-p4",
                         "openedAt": "2026-10-23T15:30:00Z",
                         "responseDue": "2026-10-26T16:30:00Z",
                         "respondedAt": "2026-10-26T10:00:00Z", "responseSeconds": 5400,
                         "breached": False}


def test_markdown_and_html_show_the_requests_with_peoples_text_inert(
        statement: CustomerStatement) -> None:
    text = to_markdown(statement)
    assert "## Response times" in text and "### Support requests" in text
    assert "| P4 | 8h | 0 | 0 | 0 | 1 | business | 1 | 0 | 0 | 5400 | 5400 |" in text
    assert "<b>" not in text and "\\*\\*now\\*\\*" in text
    assert "| Request p1\\-unanswered (p1\\-unanswered) | P1 |" in text
    assert "| not yet | - | yes |" in text
    page = to_html(statement)
    assert "<b>help</b>" not in page and "&lt;b&gt;help&lt;/b&gt;" in page
    assert "friday-p4" in page and "business" in page


def test_without_requests_the_section_says_none(statement: CustomerStatement) -> None:
    empty = build_statement(AGREEMENT, [], [INCIDENT], [], "2026-10", NOW)
    assert empty.support_requests == ()
    assert "None opened in the period." in to_markdown(empty)
    jsonschema.validate(statement_dict(empty), SCHEMA)
