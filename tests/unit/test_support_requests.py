"""Support requests: read from manifests, their response due and breached, and compliance
per severity per period."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, time, timedelta
from decimal import Decimal
from typing import Any

import pytest

from sla_operator.domain.errors import SpecError
from sla_operator.domain.intervals import Interval
from sla_operator.domain.model import (
    Agreement,
    Endpoint,
    HttpProbe,
    ResponseHours,
    Severity,
    SupportHours,
)
from sla_operator.domain.support import (
    SupportRequest,
    support_compliance,
    support_request_from_manifest,
    support_status,
)

T0 = datetime(2026, 11, 26, 9, 0, tzinfo=UTC)
NOVEMBER = Interval(datetime(2026, 11, 1, tzinfo=UTC), datetime(2026, 12, 1, tzinfo=UTC))
AGREEMENT = Agreement("payments", "payments-api", "Payments API", Decimal("99.9"),
                      endpoints=(Endpoint("api", HttpProbe("http://127.0.0.1:1/")),))


def request(name: str, severity: Severity = Severity.P2, opened: datetime = T0,
            responded: datetime | None = None) -> SupportRequest:
    return SupportRequest("payments", name, "payments-api", severity, "help", opened,
                          responded_at=responded)


def manifest(**spec: Any) -> dict[str, Any]:
    return {"metadata": {"name": "acme-1042", "namespace": "payments",
                         "creationTimestamp": "2026-11-26T08:59:00Z"},
            "spec": {"agreement": "payments-api", "severity": "P2", "title": "Webhooks delayed",
                     **spec}}


def test_a_manifest_becomes_a_request_opened_at_its_creation_time_by_default() -> None:
    parsed = support_request_from_manifest(manifest(customer="acme",
                                                    reference="https://tickets.example.com/1042"))
    assert parsed.opened_at == datetime(2026, 11, 26, 8, 59, tzinfo=UTC)
    assert (parsed.customer, parsed.reference, parsed.severity) == \
        ("acme", "https://tickets.example.com/1042", Severity.P2)
    given = support_request_from_manifest(manifest(openedAt="2026-11-26T09:00:00Z"))
    assert given.opened_at == T0


def test_a_bad_request_says_every_problem_with_its_field() -> None:
    with pytest.raises(SpecError) as caught:
        support_request_from_manifest({"metadata": {"name": "x"},
                                       "spec": {"severity": "P9", "openedAt": "2026-11-26T09:00:00Z",
                                                "respondedAt": "2026-11-26T08:00:00Z"}})
    paths = {p.path for p in caught.value.problems}
    assert paths == {"spec.agreement", "spec.severity", "spec.respondedAt"}


def test_the_response_is_due_after_the_target_of_its_severity() -> None:
    status = support_status(request("a"), AGREEMENT, T0)
    assert status == {"responseDue": "2026-11-26T10:00:00Z", "responseBreached": False,
                      "responseSeconds": None, "target": "1h", "hours": "always"}


def test_an_unanswered_request_past_due_is_breached() -> None:
    assert support_status(request("a"), AGREEMENT, T0 + timedelta(hours=1))["responseBreached"] \
        is False
    assert support_status(request("a"), AGREEMENT, T0 + timedelta(hours=1, seconds=1))[
        "responseBreached"] is True


def test_a_late_answer_stays_breached_and_an_answer_in_time_stays_met() -> None:
    late = support_status(request("a", responded=T0 + timedelta(minutes=61)), AGREEMENT,
                          T0 + timedelta(days=3))
    assert (late["responseBreached"], late["responseSeconds"]) == (True, 3660)
    in_time = support_status(request("b", responded=T0 + timedelta(minutes=60)), AGREEMENT,
                             T0 + timedelta(days=3))
    assert (in_time["responseBreached"], in_time["responseSeconds"]) == (False, 3600)


def test_a_business_hours_request_counts_only_support_hours() -> None:
    hours = SupportHours("Europe/London", frozenset(range(5)), time(9), time(17),
                         {Severity.P4: ResponseHours.BUSINESS})
    agreement = replace(AGREEMENT, support_hours=hours,
                        support_response={**AGREEMENT.support_response,
                                          Severity.P4: timedelta(hours=8)})
    friday = datetime(2026, 11, 20, 16, 30, tzinfo=UTC)  # GMT in November
    monday_noon = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
    status = support_status(request("a", Severity.P4, friday, monday_noon), agreement, monday_noon)
    assert status == {"responseDue": "2026-11-23T16:30:00Z", "responseBreached": False,
                      "responseSeconds": 3 * 3600 + 1800, "target": "8h", "hours": "business"}
    # P1 keeps the 24/7 clock
    assert support_status(request("b", Severity.P1, friday), agreement, friday)["responseDue"] == \
        "2026-11-20T16:45:00Z"


def test_compliance_per_severity_counts_requests_opened_in_the_period() -> None:
    now = datetime(2026, 11, 30, tzinfo=UTC)
    requests = [
        request("in-time", Severity.P2, T0, T0 + timedelta(minutes=20)),
        request("also-in-time", Severity.P2, T0, T0 + timedelta(minutes=40)),
        request("late", Severity.P2, T0, T0 + timedelta(minutes=90)),
        request("unanswered", Severity.P1, T0),
        request("waiting", Severity.P3, now - timedelta(hours=1)),
        request("october", Severity.P2, datetime(2026, 10, 31, 23, tzinfo=UTC)),
    ]
    figures = support_compliance(AGREEMENT, requests, NOVEMBER, now)
    assert figures["P2"] == {"requests": 3, "respondedInTime": 2, "breached": 1, "waiting": 0,
                             "medianResponseSeconds": 2400, "worstResponseSeconds": 5400,
                             "target": "1h", "hours": "always"}
    assert figures["P1"]["requests"] == 1 and figures["P1"]["breached"] == 1
    assert figures["P1"]["medianResponseSeconds"] is None
    assert figures["P3"] == {"requests": 1, "respondedInTime": 0, "breached": 0, "waiting": 1,
                             "medianResponseSeconds": None, "worstResponseSeconds": None,
                             "target": "8h", "hours": "always"}
    assert "P4" not in figures  # only severities with requests
    for line in figures.values():
        assert line["respondedInTime"] + line["breached"] + line["waiting"] == line["requests"]
