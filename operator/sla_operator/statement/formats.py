"""The statement as JSON (with the SHA-256 of its canonical form) and as Markdown."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from sla_operator.domain.customer_statement import (
    CustomerStatement,
    IncidentLine,
    NotCounted,
    ResponseLine,
)
from sla_operator.domain.durations import format_duration
from sla_operator.domain.records import format_time
from sla_operator.domain.support_statement import RequestLine

KIND = "ServiceLevelStatement"


def statement_dict(statement: CustomerStatement) -> dict[str, Any]:
    """The JSON document (docs/statement.schema.json), its ``sha256`` included."""
    s = statement
    document: dict[str, Any] = {
        "apiVersion": "sla.dev/v1alpha1",
        "kind": KIND,
        "namespace": s.namespace,
        "agreement": s.agreement,
        "service": s.service,
        "environment": s.environment,
        "period": {"label": s.period, "start": format_time(s.start), "end": format_time(s.end),
                   "timeZone": s.time_zone, "closed": s.closed},
        "generatedAt": format_time(s.generated_at),
        "objective": s.objective,
        "availability": s.availability,
        "met": s.met,
        "creditPercent": s.credit_percent,
        "creditTiers": [{"below": below, "percent": pct} for below, pct in s.credit_tiers],
        "totals": {
            "elapsedSeconds": s.elapsed_seconds,
            "maintenanceSeconds": s.maintenance_seconds,
            "excludedSeconds": s.excluded_seconds,
            "unmonitoredSeconds": s.unmonitored_seconds,
            "eligibleSeconds": s.eligible_seconds,
            "downtimeSeconds": s.downtime_seconds,
        },
        "incidents": [_incident(line) for line in s.incidents],
        "maintenance": [_span(span) for span in s.maintenance],
        "unmonitored": [_span(span) for span in s.unmonitored],
        "daily": [{"date": d.date.isoformat(), "availability": d.availability,
                   "downtimeSeconds": d.downtime_seconds,
                   "maintenanceSeconds": d.maintenance_seconds} for d in s.days],
        "responses": [_response(r) for r in s.responses],
        "supportRequests": [_request(line) for line in s.support_requests],
    }
    document["sha256"] = canonical_sha256(document)
    return document


def canonical_sha256(document: dict[str, Any]) -> str:
    """SHA-256 of the document without its ``sha256`` member: keys sorted, no spaces, UTF-8."""
    body = {k: v for k, v in document.items() if k != "sha256"}
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()


def _incident(line: IncidentLine) -> dict[str, Any]:
    return {
        "name": line.name, "title": line.title, "severity": line.severity, "type": line.type,
        "impact": line.impact, "startedAt": format_time(line.started_at),
        "resolvedAt": format_time(line.resolved_at),
        "secondsInPeriod": line.seconds_in_period, "countedSeconds": line.counted_seconds,
        "notCounted": [{"reason": p.reason, "seconds": p.seconds, "explanation": p.explanation,
                        "by": p.by, "at": format_time(p.at)} for p in line.not_counted],
    }


def _response(r: ResponseLine) -> dict[str, Any]:
    """Incidents (acknowledged in time or not) and support requests of one severity."""
    line: dict[str, Any] = {"severity": r.severity, "target": r.target, "incidents": r.incidents,
                            "inTime": r.in_time, "breached": r.breached}
    if r.support is not None:
        f = r.support
        line["supportRequests"] = {
            "hours": f.hours, "requests": f.requests, "inTime": f.in_time,
            "breached": f.breached, "waiting": f.waiting,
            "medianResponseSeconds": f.median_seconds, "worstResponseSeconds": f.worst_seconds}
    return line


def _request(line: RequestLine) -> dict[str, Any]:
    return {"name": line.name, "severity": line.severity, "title": line.title,
            "openedAt": format_time(line.opened_at), "responseDue": format_time(line.due),
            "respondedAt": format_time(line.responded_at),
            "responseSeconds": line.response_seconds, "breached": line.breached}


def _span(span: Any) -> dict[str, Any]:
    return {"start": format_time(span.start), "end": format_time(span.end),
            "seconds": span.seconds}


def who(part: NotCounted, escape: Callable[[str], str] = str) -> str:
    """`` (by NAME at TIME)`` for a part a person excluded, else empty."""
    if not part.by:
        return ""
    return f" (by {escape(part.by)}" + (f" at {format_time(part.at)})" if part.at else ")")


def to_json(statement: CustomerStatement) -> str:
    return json.dumps(statement_dict(statement), indent=2, ensure_ascii=False) + "\n"


def seconds_text(seconds: int) -> str:
    """``2593`` → ``43m13s (2593 s)``: readable, and the exact figure to add up."""
    return f"{format_duration(timedelta(seconds=seconds))} ({seconds} s)" if seconds else "0 s"


_MARKDOWN_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|<>~])")


def _or_dash(value: int | None) -> str:
    return "-" if value is None else str(value)


def md(text: object) -> str:
    """Text people wrote, inert in Markdown: specials escaped, one line."""
    return _MARKDOWN_SPECIAL.sub(r"\\\1", " ".join(str(text).split()))


def to_markdown(statement: CustomerStatement) -> str:
    s = statement
    availability = "no data" if s.availability is None else f"{s.availability}%"
    out = [
        f"# Service statement: {md(s.service)}, {s.period}",
        "",
        f"Agreement `{s.namespace}/{s.agreement}` ({s.environment}), period "
        f"{format_time(s.start)} to {format_time(s.end)} ({s.time_zone})"
        + ("" if s.closed else ", still running: figures so far") + ".",
        "",
        "| | |",
        "|---|---|",
        f"| Objective | {s.objective}% |",
        f"| Availability | {availability} |",
        f"| Objective met | {'yes' if s.met else 'no'} |",
        f"| Service credit | {s.credit_percent}% of the period's fees |",
        "",
        "## How the availability is computed",
        "",
        "| | seconds |",
        "|---|---:|",
        f"| Elapsed | {s.elapsed_seconds} |",
        f"| minus scheduled maintenance | {s.maintenance_seconds} |",
        f"| minus excluded | {s.excluded_seconds} |",
        f"| minus unmonitored | {s.unmonitored_seconds} |",
        f"| = eligible | {s.eligible_seconds} |",
        f"| Downtime | {s.downtime_seconds} |",
        "",
        "Availability = (eligible - downtime) ÷ eligible, to 4 decimals, never rounded up.",
        "",
        "## Incidents",
        "",
    ]
    if not s.incidents:
        out += ["No incident overlapped the period.", ""]
    else:
        out += ["| Incident | Severity | Started | Resolved | In period | Counted | Not counted |",
                "|---|---|---|---|---:|---:|---|"]
        for line in s.incidents:
            parts = "; ".join(f"{p.seconds} s {p.reason}: {md(p.explanation)}{who(p, md)}"
                              for p in line.not_counted) or "-"
            out.append(f"| {md(line.title) or md(line.name)} ({md(line.name)}) | {line.severity} | "
                       f"{format_time(line.started_at)} | {format_time(line.resolved_at) or 'open'} | "
                       f"{line.seconds_in_period} | {line.counted_seconds} | {parts} |")
        out.append("")
    out += ["## Scheduled maintenance taken", ""]
    out += [f"- {format_time(m.start)} to {format_time(m.end)}: {m.seconds} s"
            for m in s.maintenance] or ["None."]
    out += ["", "## Unmonitored time", ""]
    out += [f"- {format_time(u.start)} to {format_time(u.end)}: {u.seconds} s"
            for u in s.unmonitored] or ["None."]
    out += ["", "## Response times", "",
            "| Severity | Target | Incidents | In time | Breached | Support requests | Hours "
            "| In time | Breached | Waiting | Median (s) | Worst (s) |",
            "|---|---|---:|---:|---:|---:|---|---:|---:|---:|---:|---:|"]
    for r in s.responses:
        f = r.support
        support = ("| 0 | always | 0 | 0 | 0 | - | - |" if f is None else
                   f"| {f.requests} | {f.hours} | {f.in_time} | {f.breached} | {f.waiting} "
                   f"| {_or_dash(f.median_seconds)} | {_or_dash(f.worst_seconds)} |")
        out.append(f"| {r.severity} | {r.target} | {r.incidents} | {r.in_time} | {r.breached} "
                   + support)
    out += ["", "### Support requests", ""]
    if not s.support_requests:
        out.append("None opened in the period.")
    else:
        out += ["| Request | Severity | Opened | Due | Responded | Response (s) | Late |",
                "|---|---|---|---|---|---:|---|"]
        out += [f"| {md(r.title) or md(r.name)} ({md(r.name)}) | {r.severity} "
                f"| {format_time(r.opened_at)} | {format_time(r.due)} "
                f"| {format_time(r.responded_at) or 'not yet'} | {_or_dash(r.response_seconds)} "
                f"| {'yes' if r.breached else 'no'} |" for r in s.support_requests]
    out += ["", "## Daily availability", "", "| Date | Availability | Downtime (s) | Maintenance (s) |",
            "|---|---:|---:|---:|"]
    out += [f"| {d.date.isoformat()} | {'no data' if d.availability is None else d.availability + '%'} "
            f"| {d.downtime_seconds} | {d.maintenance_seconds} |" for d in s.days]
    out += ["", f"Generated {format_time(s.generated_at)}."]
    return "\n".join(out) + "\n"
