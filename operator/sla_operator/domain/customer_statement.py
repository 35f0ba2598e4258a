"""The customer's statement of one agreement and one period: every figure with the lines it
adds up from, so a customer can check the arithmetic by hand.

Each instant of an incident's time in the period is attributed once: to maintenance, to an
exclusion (with its reason, who decided it and when), to unmonitored time, to downtime, or,
where incidents overlap, to the earlier incident's line. So the counted seconds of the lines
add up to the downtime, their excluded seconds to the excluded time, the maintenance lines to
the maintenance and the unmonitored lines to the unmonitored time; the availability follows
from those totals by the formula of the accounting.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from itertools import chain

from sla_operator.domain.accounting import (
    AccountingInput,
    compute_days,
    compute_period,
    period_split,
)
from sla_operator.domain.credits import credit_percent
from sla_operator.domain.durations import format_duration
from sla_operator.domain.intervals import Interval, intersect, subtract, total_seconds, union
from sla_operator.domain.model import Agreement, Impact, Incident, MaintenanceWindow, Severity
from sla_operator.domain.periods import local_day, period_label, zone
from sla_operator.domain.records import response_breached
from sla_operator.domain.render import percent
from sla_operator.domain.schedule import maintenance_intervals
from sla_operator.domain.statement import statement_period
from sla_operator.domain.support import SupportRequest
from sla_operator.domain.support_statement import (
    RequestFigures,
    RequestLine,
    request_figures,
    request_lines,
)


@dataclass(frozen=True)
class NotCounted:
    """A part of an incident's time in the period that is not downtime, and why."""

    # maintenance | thirdParty | blocked | other | unmonitored | overlap | notDowntime | dependency
    reason: str
    seconds: int
    explanation: str  # one sentence a customer reads
    by: str | None = None  # who excluded it (from the incident's updates)
    at: datetime | None = None  # when they did


@dataclass(frozen=True)
class IncidentLine:
    name: str
    title: str
    severity: str
    type: str
    impact: str
    started_at: datetime
    resolved_at: datetime | None
    seconds_in_period: int
    counted_seconds: int
    not_counted: tuple[NotCounted, ...]


@dataclass(frozen=True)
class Span:
    """A stretch of maintenance or unmonitored time inside the period."""

    start: datetime
    end: datetime
    seconds: int


@dataclass(frozen=True)
class DayLine:
    date: date
    availability: str | None  # percent, None: no eligible time ("no data")
    downtime_seconds: int
    maintenance_seconds: int


@dataclass(frozen=True)
class ResponseLine:
    """Responses of one severity: to the incidents that began in the period (acknowledged in
    time or not) and to the support requests opened in it (``support``, from their lines)."""

    severity: str
    target: str
    incidents: int
    in_time: int
    breached: int
    support: RequestFigures | None = None


@dataclass(frozen=True)
class CustomerStatement:
    namespace: str
    agreement: str
    service: str
    environment: str
    period: str
    start: datetime
    end: datetime
    time_zone: str
    closed: bool  # False: the period is still running, its figures are so far
    generated_at: datetime
    objective: str
    availability: str | None
    met: bool
    credit_percent: int
    credit_tiers: tuple[tuple[str, int], ...]
    elapsed_seconds: int
    maintenance_seconds: int
    excluded_seconds: int
    unmonitored_seconds: int
    eligible_seconds: int
    downtime_seconds: int
    incidents: tuple[IncidentLine, ...]
    maintenance: tuple[Span, ...]
    unmonitored: tuple[Span, ...]
    days: tuple[DayLine, ...]
    responses: tuple[ResponseLine, ...]
    support_requests: tuple[RequestLine, ...] = ()


def _whole(intervals: Sequence[Interval]) -> int:
    return round(total_seconds(union(intervals)))


def build_statement(agreement: Agreement, windows: Sequence[MaintenanceWindow],
                    incidents: Sequence[Incident], unmonitored: Sequence[Interval],
                    label: str, now: datetime,
                    requests: Sequence[SupportRequest] = ()) -> CustomerStatement:
    """The statement of the period ``label`` names, as known at ``now``."""
    period = statement_period(agreement, label, now)
    bounds = Interval(period.start - timedelta(days=1), period.end)
    maintenance = union(chain.from_iterable(
        maintenance_intervals(w, bounds) for w in windows if w.applies_to(agreement)))
    mine = sorted((i for i in incidents if i.namespace == agreement.namespace
                   and i.agreement == agreement.name), key=lambda i: (i.started_at, i.name))
    inputs = AccountingInput(agreement.objective, agreement.created_at, maintenance, mine,
                             tuple(unmonitored))
    figures = compute_period(inputs, period, now, period_label(agreement.window, period))
    split = period_split(inputs, period, now)
    availability = percent(figures.availability) if figures.eligible_seconds > 0 else None
    lines = _incident_lines(mine, split.maintenance, split.excluded, split.unmonitored,
                            split.downtime, split.elapsed, now)
    downtime = sum(line.counted_seconds for line in lines)
    maintenance_spans = _spans(split.maintenance)
    unmonitored_spans = _spans(split.unmonitored)
    excluded = sum(part.seconds for line in lines for part in line.not_counted
                   if part.reason in ("thirdParty", "blocked", "other"))
    elapsed = _whole(split.elapsed)
    requested = request_lines(agreement, requests, period, now)
    return CustomerStatement(
        namespace=agreement.namespace, agreement=agreement.name, service=agreement.service,
        environment=agreement.environment.value, period=figures.label,
        start=period.start, end=period.end, time_zone=agreement.window.time_zone,
        closed=now >= period.end, generated_at=now,
        objective=str(agreement.objective), availability=availability,
        met=figures.met, credit_percent=credit_percent(
            agreement.credits, None if availability is None else Decimal(availability)),
        credit_tiers=tuple((str(t.below), t.percent) for t in agreement.credits),
        elapsed_seconds=elapsed,
        maintenance_seconds=sum(s.seconds for s in maintenance_spans),
        excluded_seconds=excluded,
        unmonitored_seconds=sum(s.seconds for s in unmonitored_spans),
        eligible_seconds=round(figures.eligible_seconds), downtime_seconds=downtime,
        incidents=tuple(lines), maintenance=maintenance_spans, unmonitored=unmonitored_spans,
        days=_days(inputs, agreement.window.time_zone, period, now),
        responses=_responses(agreement, mine, requested, period, now),
        support_requests=requested,
    )


def _spans(intervals: Sequence[Interval]) -> tuple[Span, ...]:
    return tuple(Span(i.start, i.end, round((i.end - i.start).total_seconds()))
                 for i in union(intervals) if i.end > i.start)


def _incident_lines(incidents: Sequence[Incident], maintenance: list[Interval],
                    excluded: list[Interval], unmonitored: list[Interval],
                    downtime: list[Interval], elapsed: list[Interval],
                    now: datetime) -> list[IncidentLine]:
    service_down = union(i.interval(now) for i in incidents
                         if i.impact is Impact.DOWNTIME and not i.dependency)
    causes = _exclusion_causes(incidents, service_down, now)
    attributed: list[Interval] = []
    lines = []
    for incident in incidents:
        span = intersect([incident.interval(now)], elapsed)
        if not span and not _begins_inside(incident, elapsed):
            continue
        parts: list[NotCounted] = []
        counted = 0
        if incident.dependency or incident.impact is not Impact.DOWNTIME:
            if _whole(span):
                parts.append(_not_downtime(incident, _whole(span)))
        else:
            rest = span
            overlap = intersect(rest, attributed)
            if overlap:
                parts.append(NotCounted("overlap", _whole(overlap),
                                        "counted once, in the line of an earlier incident"))
                rest = subtract(rest, overlap)
            attributed = union([*attributed, *rest])
            taken = intersect(rest, maintenance)
            if taken:
                parts.append(NotCounted("maintenance", _whole(taken), "scheduled maintenance"))
            for cause, reason, explanation, by, at in causes:
                piece = intersect(intersect(rest, excluded), cause)
                if piece:
                    parts.append(NotCounted(reason, _whole(piece), explanation, by, at))
                    rest = subtract(rest, piece)
            gap = intersect(rest, unmonitored)
            if gap:
                parts.append(NotCounted("unmonitored", _whole(gap),
                                        "no probe data: neither available nor down"))
            counted = _whole(intersect(rest, downtime))
        lines.append(IncidentLine(
            name=incident.name, title=incident.title, severity=incident.severity.value,
            type=incident.type.value, impact=incident.impact.value,
            started_at=incident.started_at, resolved_at=incident.resolved_at,
            seconds_in_period=_whole(span), counted_seconds=counted, not_counted=tuple(parts)))
    return lines


def _begins_inside(incident: Incident, elapsed: list[Interval]) -> bool:
    return any(i.start <= incident.started_at < i.end for i in elapsed)


def _not_downtime(incident: Incident, seconds: int) -> NotCounted:
    if incident.dependency:
        return NotCounted("dependency", seconds, "a third-party dependency's outage: its "
                          "overlap with the service's own downtime is excluded there")
    return NotCounted("notDowntime", seconds, f"impact {incident.impact.value}: the service "
                      "was impaired or at risk, not down")


_REASONS = {"thirdParty": "a third party's outage", "blocked": "blocked data communication",
            "other": "excluded"}

Cause = tuple[list[Interval], str, str, str | None, datetime | None]


def _exclusion_causes(incidents: Sequence[Incident], service_down: list[Interval],
                      now: datetime) -> list[Cause]:
    """Why excluded time is excluded: incidents a person excluded (their reason, who, when),
    then dependency outages over the service's downtime."""
    causes: list[Cause] = []
    for incident in incidents:
        if incident.exclusion is not None and incident.impact is Impact.DOWNTIME:
            reason = incident.exclusion.reason.value
            by, at = _who_excluded(incident)
            note = incident.exclusion.note
            explanation = f"{_REASONS[reason]}{': ' + note if note else ''} (excluded in {incident.name})"
            causes.append(([incident.interval(now)], reason, explanation, by, at))
    for incident in incidents:
        if incident.dependency:
            causes.append((intersect([incident.interval(now)], service_down), "thirdParty",
                           f"a third-party dependency was down ({incident.name}: "
                           f"{', '.join(incident.endpoints) or 'dependency'})", None,
                           incident.started_at))
    return causes


def _who_excluded(incident: Incident) -> tuple[str | None, datetime | None]:
    """The newest timeline entry that speaks of the exclusion: its author and time."""
    for update in reversed(incident.updates):
        if "exclu" in update.message.lower():
            return update.by, update.time
    return None, None


def _days(inputs: AccountingInput, time_zone: str, period: Interval,
          now: datetime) -> tuple[DayLine, ...]:
    tz = zone(time_zone, "spec.window.timeZone")
    first = period.start.astimezone(tz).date()
    last = (period.end - timedelta(microseconds=1)).astimezone(tz).date()
    count = (last - first).days + 1
    until = min(now, period.end - timedelta(microseconds=1))
    days = compute_days(inputs, time_zone, until, count) if now > period.start else []
    shown = {d.date: d for d in days}
    lines = []
    for index in range(count):
        day = first + timedelta(days=index)
        figures = shown.get(day)
        if figures is None or local_day(time_zone, day).start >= now:
            lines.append(DayLine(day, None, 0, 0))
            continue
        lines.append(DayLine(
            day, None if figures.availability is None else percent(figures.availability),
            round(figures.downtime_seconds), round(figures.maintenance_seconds)))
    return tuple(lines)


def _responses(agreement: Agreement, incidents: Sequence[Incident],
               requested: Sequence[RequestLine], period: Interval,
               now: datetime) -> tuple[ResponseLine, ...]:
    lines = []
    for severity in Severity:
        begun = [i for i in incidents if i.severity is severity and not i.dependency
                 and period.start <= i.started_at < period.end]
        breached = sum(1 for i in begun if response_breached(i, agreement.support_response, now))
        answered = sum(1 for i in begun if i.acknowledged_at is not None
                       and not response_breached(i, agreement.support_response, now))
        lines.append(ResponseLine(severity.value,
                                  format_duration(agreement.support_response[severity]),
                                  len(begun), answered, breached,
                                  request_figures(agreement, severity.value, requested)))
    return tuple(lines)
