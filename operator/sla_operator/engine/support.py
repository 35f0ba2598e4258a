"""Support requests in an evaluation: each request's status, the period's compliance per
severity (current period and history), and the counters behind the support metrics."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sla_operator.domain.intervals import Interval
from sla_operator.domain.model import Agreement, Severity
from sla_operator.domain.periods import period_label, previous_periods
from sla_operator.domain.support import (
    SupportRequest,
    response_of,
    support_compliance,
    support_status,
)

Key = tuple[str, str]


@dataclass
class SupportCounts:
    """What sla_support_requests_total and sla_support_response_breached_total count.

    Like any counter they start with the process. Every request seen counts once, and a
    deleted one is not taken back (a counter never goes down). A breach counts once, under
    the severity it had then, when its response came due while this process ran: breaches
    of before its start are the baseline, whichever order the requests arrive in after a
    restart, so a restart never raises the alert on old breaches."""

    seen: dict[str, str] = field(default_factory=dict)  # request -> severity when first seen
    breached: dict[str, str] = field(default_factory=dict)  # request -> severity when it went late

    def by_severity(self, counted: Mapping[str, str]) -> dict[Severity, int]:
        totals: dict[Severity, int] = {}
        for severity in counted.values():
            totals[Severity(severity)] = totals.get(Severity(severity), 0) + 1
        return totals


def support_statuses(agreement: Agreement, counts: SupportCounts,
                     requests: Sequence[SupportRequest], since: datetime, now: datetime
                     ) -> dict[Key, dict[str, Any]]:
    """Each request's status; counts for the metrics what came in and went late ``since``
    (when the process started watching the agreement)."""
    statuses = {}
    for request in requests:
        response = response_of(request, agreement, now)
        statuses[request.key] = support_status(request, agreement, now, response)
        counts.seen.setdefault(request.name, request.severity.value)
        if response.breached and response.due >= since:
            counts.breached.setdefault(request.name, request.severity.value)
    return statuses


def with_support(period_entry: dict[str, Any], agreement: Agreement,
                 requests: Sequence[SupportRequest], period: Interval,
                 now: datetime) -> dict[str, Any]:
    """``status.currentPeriod`` with its ``support`` figures, when the period has requests."""
    figures = support_compliance(agreement, requests, period, now) if requests else {}
    return {**period_entry, "support": figures} if figures else period_entry


def support_history(agreement: Agreement, history: dict[str, dict[str, Any]],
                    requests: Sequence[SupportRequest], now: datetime, keep: int) -> None:
    """Each closed period's support figures in its history entry, from the requests held.

    Only periods with requests get figures, and a period whose requests were all deleted
    keeps the figures it had. Entries are replaced, never changed in place: readers know an
    entry by its identity."""
    if not requests:
        return
    periods = {period_label(agreement.window, p): p
               for p in previous_periods(agreement.window, now, keep)}
    for label, entry in list(history.items()):
        period = periods.get(label)
        if period is None or not any(period.start <= r.opened_at < period.end for r in requests):
            continue
        figures = support_compliance(agreement, requests, period, now)
        if entry.get("support") != figures:
            history[label] = {**entry, "support": figures}
