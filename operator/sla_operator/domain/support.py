"""Support requests: a customer's request, its response target and whether it was met.

A SupportRequest is a record, like an Incident: people file it (or a ticketing system does)
and set ``respondedAt`` when the first human reply went out. The operator computes when the
response is due (the agreement's ``spec.supportResponse``, in support hours for a severity
whose hours are business), whether it was late, and per period and severity how many were
answered in time.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from statistics import median_low
from typing import Any

from sla_operator.domain import model as m
from sla_operator.domain.durations import format_duration
from sla_operator.domain.fields import Collector, enum_value, optional_time, parse_time
from sla_operator.domain.intervals import Interval
from sla_operator.domain.records import AGREEMENT_LABEL, format_time
from sla_operator.domain.render import Condition, conditions
from sla_operator.domain.support_hours import counts_business, response_due, response_time
from sla_operator.domain.views import SupportRequestView


@dataclass(frozen=True)
class SupportRequest:
    namespace: str
    name: str
    agreement: str
    severity: m.Severity
    title: str
    opened_at: datetime
    customer: str = ""
    reference: str = ""
    responded_at: datetime | None = None
    resolved_at: datetime | None = None
    uid: str | None = None
    generation: int = 0

    @property
    def key(self) -> tuple[str, str]:
        return (self.namespace, self.name)


def support_request_from_manifest(obj: Mapping[str, Any]) -> SupportRequest:
    """A SupportRequest manifest into a SupportRequest, or SpecError with every problem.

    ``openedAt`` defaults to the object's creation time."""
    meta = obj.get("metadata") or {}
    spec = obj.get("spec") or {}
    errors = Collector()
    agreement = spec.get("agreement") or (meta.get("labels") or {}).get(AGREEMENT_LABEL)
    if not agreement:
        errors.add("spec.agreement", "must name the ServiceLevelAgreement this request is under")
    severity = errors.run(lambda: enum_value(m.Severity, spec.get("severity"), "spec.severity"),
                          m.Severity.P4)
    opened: datetime | None = None
    if spec.get("openedAt") is not None:
        opened = errors.run(lambda: parse_time(spec["openedAt"], "spec.openedAt"), None)
    elif meta.get("creationTimestamp") is not None:
        opened = errors.run(lambda: parse_time(meta["creationTimestamp"],
                                               "metadata.creationTimestamp"), None)
    else:
        errors.add("spec.openedAt", "is needed when the object has no creation time")
    responded = errors.run(lambda: optional_time(spec, "respondedAt", "spec"), None)
    resolved = errors.run(lambda: optional_time(spec, "resolvedAt", "spec"), None)
    for key, moment in (("respondedAt", responded), ("resolvedAt", resolved)):
        if opened is not None and moment is not None and moment < opened:
            errors.add(f"spec.{key}", f"is before spec.openedAt ({format_time(opened)})")
    errors.raise_if_any()
    assert opened is not None
    return SupportRequest(
        namespace=str(meta.get("namespace") or "default"),
        name=str(meta.get("name", "")),
        agreement=str(agreement),
        severity=severity,
        title=str(spec.get("title") or ""),
        opened_at=opened,
        customer=str(spec.get("customer") or ""),
        reference=str(spec.get("reference") or ""),
        responded_at=responded,
        resolved_at=resolved,
        uid=meta.get("uid"),
        generation=int(meta.get("generation") or 0),
    )


@dataclass(frozen=True)
class Response:
    """Where one request's response stands at some instant."""

    due: datetime
    breached: bool
    seconds: int | None  # how long the response took, as its target counts it; None: none yet


def response_of(request: SupportRequest, agreement: m.Agreement, now: datetime) -> Response:
    """Late when answered after it was due, or not answered by ``now`` when it is past due."""
    due = response_due(agreement, request.severity, request.opened_at)
    answered = request.responded_at
    if answered is None:
        return Response(due, now > due, None)
    took = response_time(agreement, request.severity, request.opened_at, answered)
    return Response(due, answered > due, int(took.total_seconds()))


def support_status(request: SupportRequest, agreement: m.Agreement, now: datetime,
                   response: Response | None = None) -> dict[str, Any]:
    """The status the operator writes on a SupportRequest (``response``: where it stands,
    when the caller knows it already)."""
    response = response or response_of(request, agreement, now)
    return {
        "responseDue": format_time(response.due),
        "responseBreached": response.breached,
        "responseSeconds": response.seconds,
        "target": format_duration(agreement.support_response[request.severity]),
        "hours": "business" if counts_business(agreement, request.severity) else "always",
    }


def request_view(request: SupportRequest, agreement: m.Agreement | None, now: datetime,
                 due: datetime | None = None) -> SupportRequestView:
    """The request as a snapshot shows it (``due``: its response due time, when the caller
    knows it already). Without its agreement nothing is due, and nothing is late."""
    if agreement is not None and due is None:
        due = response_due(agreement, request.severity, request.opened_at)
    answered = request.responded_at
    breached = due is not None and (answered > due if answered is not None else now > due)
    return SupportRequestView(
        namespace=request.namespace, name=request.name, agreement=request.agreement,
        severity=request.severity, title=request.title, opened_at=request.opened_at,
        response_due=due if agreement is not None else None, breached=breached,
        customer=request.customer, reference=request.reference, responded_at=answered,
        uid=request.uid)


def agreement_missing(request: SupportRequest, other_kind: str | None = None) -> str:
    """Why a request's response is not measured: its agreement is not there (``other_kind``:
    the kind of another object of that name in the namespace, a common slip)."""
    named = f"spec.agreement: no ServiceLevelAgreement {request.agreement!r} in namespace " \
            f"{request.namespace} (or none with a valid spec)"
    if other_kind is not None:
        named += f"; {request.agreement!r} is a {other_kind}"
    return f"{named}; the response is not measured until the agreement exists"


def unmeasured_status(message: str) -> dict[str, Any]:
    """The status of a request with no agreement to measure it against: the figures of an
    earlier one cleared (a merge patch's null removes a field), and why."""
    return {"responseDue": None, "responseBreached": None, "responseSeconds": None,
            "target": None, "hours": None, "message": message}


def with_ready(status: dict[str, Any], request: SupportRequest,
               previous: Sequence[Mapping[str, Any]], now: datetime) -> dict[str, Any]:
    """``status`` with its ``message`` ("" when the response is measured) and a Ready
    condition: True while measured, False with the message when it cannot be."""
    problem = status.get("message") or ""
    ready = (Condition("Ready", False, "AgreementNotFound", problem) if problem else
             Condition("Ready", True, "Measured",
                       f"measured against {request.agreement}'s {request.severity.value} target"))
    return {**status, "message": problem,
            "conditions": conditions(previous, [ready], request.generation, now)}


def support_compliance(agreement: m.Agreement, requests: Sequence[SupportRequest],
                       period: Interval, now: datetime) -> dict[str, dict[str, Any]]:
    """Per severity, the requests opened in ``period``: how many, answered in time, breached,
    still waiting (not answered, not yet due), and the median and worst response among the
    answered ones (seconds as their target counts them; null when none was answered).

    Only severities with requests appear: most periods of most agreements have none, and a
    status is written often."""
    result = {}
    for severity in m.Severity:
        opened = [r for r in requests if r.severity is severity
                  and period.start <= r.opened_at < period.end]
        if not opened:
            continue
        responses = [response_of(r, agreement, now) for r in opened]
        answered = [r.seconds for r in responses if r.seconds is not None]
        result[severity.value] = {
            "requests": len(opened),
            "respondedInTime": sum(1 for r in responses if r.seconds is not None and not r.breached),
            "breached": sum(1 for r in responses if r.breached),
            "waiting": sum(1 for r in responses if r.seconds is None and not r.breached),
            "medianResponseSeconds": median_low(answered) if answered else None,
            "worstResponseSeconds": max(answered) if answered else None,
            "target": format_duration(agreement.support_response[severity]),
            "hours": "business" if counts_business(agreement, severity) else "always",
        }
    return result
