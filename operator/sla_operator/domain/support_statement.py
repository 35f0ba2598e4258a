"""The support part of a customer's statement: each support request opened in the period,
and per severity the responses to incidents and to support requests, so that every count
adds up from the lines above it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sla_operator.domain.intervals import Interval
from sla_operator.domain.model import Agreement, Severity
from sla_operator.domain.support import SupportRequest, response_of
from sla_operator.domain.support_hours import counts_business


@dataclass(frozen=True)
class RequestLine:
    """One support request opened in the period, and how its response went."""

    name: str
    severity: str
    title: str
    opened_at: datetime
    due: datetime
    responded_at: datetime | None
    response_seconds: int | None  # as the target counts it (support hours only, for business)
    breached: bool


@dataclass(frozen=True)
class RequestFigures:
    """Per severity: the requests of the lines, answered in time, late, still waiting."""

    hours: str  # always | business
    requests: int
    in_time: int
    breached: int
    waiting: int
    median_seconds: int | None
    worst_seconds: int | None


def request_lines(agreement: Agreement, requests: Sequence[SupportRequest], period: Interval,
                  now: datetime) -> tuple[RequestLine, ...]:
    mine = sorted((r for r in requests if r.namespace == agreement.namespace
                   and r.agreement == agreement.name
                   and period.start <= r.opened_at < period.end),
                  key=lambda r: (r.opened_at, r.name))
    lines = []
    for request in mine:
        response = response_of(request, agreement, now)
        lines.append(RequestLine(request.name, request.severity.value, request.title,
                                 request.opened_at, response.due, request.responded_at,
                                 response.seconds, response.breached))
    return tuple(lines)


def request_figures(agreement: Agreement, severity: str,
                    lines: Sequence[RequestLine]) -> RequestFigures:
    """The figures of ``severity`` from the lines (so they add up by construction)."""
    mine = [line for line in lines if line.severity == severity]
    answered = sorted(line.response_seconds for line in mine if line.response_seconds is not None)
    return RequestFigures(
        hours="business" if counts_business(agreement, Severity(severity)) else "always",
        requests=len(mine),
        in_time=sum(1 for line in mine if line.responded_at is not None and not line.breached),
        breached=sum(1 for line in mine if line.breached),
        waiting=sum(1 for line in mine if line.responded_at is None and not line.breached),
        median_seconds=answered[(len(answered) - 1) // 2] if answered else None,
        worst_seconds=answered[-1] if answered else None)
