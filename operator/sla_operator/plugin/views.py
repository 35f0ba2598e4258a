"""What `kubectl sla status` and `kubectl sla incidents` show, from the objects as listed.

Pure: objects in, rows (for tables) or plain dicts (for -o json|yaml) out."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from sla_operator.plugin.table import Cell
from sla_operator.plugin.times import span_text

Obj = Mapping[str, Any]

STATE_COLOURS = {"Up": "green", "Degraded": "yellow", "Down": "red", "Maintenance": "blue",
                 "Unknown": "dim", "investigating": "red", "identified": "yellow",
                 "monitoring": "blue", "resolved": "green"}
SEVERITY_COLOURS = {"P1": "red", "P2": "red", "P3": "yellow", "P4": None}


def _meta(obj: Obj) -> Mapping[str, Any]:
    return obj.get("metadata") or {}


def _spec(obj: Obj) -> Mapping[str, Any]:
    return obj.get("spec") or {}


def _status(obj: Obj) -> Mapping[str, Any]:
    return obj.get("status") or {}


def is_open(incident: Obj) -> bool:
    spec = _spec(incident)
    return not spec.get("resolvedAt") and spec.get("state") != "resolved"


def _parse(text: object) -> datetime | None:
    if not isinstance(text, str) or not text:
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None


def budget_percent(status: Mapping[str, Any]) -> str | None:
    budget = ((status.get("currentPeriod") or {}).get("errorBudget") or {})
    if budget.get("remainingPercent") is not None:
        return str(budget["remainingPercent"])
    ratio = budget.get("remainingRatio")
    try:
        return f"{float(ratio) * 100:.2f}" if ratio is not None else None
    except (TypeError, ValueError):
        return None


def agreement_summaries(agreements: Iterable[Obj], incidents: Iterable[Obj]) -> list[dict[str, Any]]:
    """One plain dict per agreement: what `status -o json` prints."""
    open_count = Counter((_meta(i).get("namespace"), _spec(i).get("agreement"))
                         for i in incidents if is_open(i))
    summaries = []
    for sla in agreements:
        meta, spec, status = _meta(sla), _spec(sla), _status(sla)
        period = status.get("currentPeriod") or {}
        summaries.append({
            "namespace": meta.get("namespace"), "name": meta.get("name"),
            "service": spec.get("service") or meta.get("name"),
            "state": status.get("state") or "Unknown",
            "objective": spec.get("objective"),
            "availability": period.get("availability"),
            "budgetRemainingPercent": budget_percent(status),
            "period": period.get("period") or period.get("label"),
            "openIncidents": open_count[(meta.get("namespace"), meta.get("name"))],
        })
    return sorted(summaries, key=lambda s: (s["namespace"] or "", s["name"] or ""))


def _percent(value: object) -> str:
    return "-" if value is None else f"{value}%"


def status_table(summaries: Sequence[Mapping[str, Any]], namespaces: bool
                 ) -> tuple[list[str], list[list[Cell]]]:
    headers = ["NAMESPACE"] * namespaces + ["NAME", "STATE", "OBJECTIVE", "AVAILABILITY",
                                            "BUDGET LEFT", "OPEN", "SERVICE"]
    rows = []
    for s in summaries:
        budget = s["budgetRemainingPercent"]
        low = budget is not None and _below(budget, 25)
        opened = s["openIncidents"]
        rows.append([Cell(s["namespace"] or "")] * namespaces + [
            Cell(s["name"] or ""), Cell(s["state"], STATE_COLOURS.get(s["state"])),
            Cell(_percent(s["objective"])), Cell(_percent(s["availability"]) if s["availability"]
                                                 is not None else "no data"),
            Cell(_percent(budget), "red" if low else None),
            Cell(str(opened), "red" if opened else None), Cell(str(s["service"]))])
    return headers, rows


def _below(number: str, limit: float) -> bool:
    try:
        return float(number) < limit
    except ValueError:
        return False


def incident_summary(incident: Obj, now: datetime) -> dict[str, Any]:
    meta, spec, status = _meta(incident), _spec(incident), _status(incident)
    started, resolved = _parse(spec.get("startedAt")), _parse(spec.get("resolvedAt"))
    seconds = int(((resolved or now) - started).total_seconds()) if started else None
    exclusion = spec.get("exclusion") or {}
    return {"namespace": meta.get("namespace"), "name": meta.get("name"),
            "agreement": spec.get("agreement"), "severity": spec.get("severity"),
            "state": spec.get("state") or "investigating", "open": is_open(incident),
            "title": spec.get("title") or "", "startedAt": spec.get("startedAt"),
            "resolvedAt": spec.get("resolvedAt"), "durationSeconds": seconds,
            "acknowledgedAt": spec.get("acknowledgedAt"),
            "acknowledgedBy": spec.get("acknowledgedBy"),
            "responseDue": status.get("responseDue"),
            "responseBreached": bool(status.get("responseBreached")),
            "excluded": exclusion.get("reason")}


INCIDENT_SHRINK = (("TITLE", 16), ("AGREEMENT", 8), ("TITLE", 5))
STATUS_SHRINK = (("SERVICE", 12),)


def incidents_table(summaries: Sequence[Mapping[str, Any]], namespaces: bool
                    ) -> tuple[list[str], list[list[Cell]]]:
    headers = ["NAMESPACE"] * namespaces + ["NAME", "AGREEMENT", "SEV", "STATE", "DURATION",
                                            "ACK", "TITLE"]
    rows = []
    for s in summaries:
        ack = s["acknowledgedBy"] or ("yes" if s["acknowledgedAt"] else "-")
        ack_cell = (Cell("OVERDUE", "red") if s["responseBreached"] and not s["acknowledgedAt"]
                    else Cell(ack, "green" if s["acknowledgedAt"] else None))
        state = s["state"] + (f" ({s['excluded']})" if s["excluded"] else "")
        duration = "-" if s["durationSeconds"] is None else span_text(s["durationSeconds"])
        rows.append([Cell(s["namespace"] or "")] * namespaces + [
            Cell(s["name"] or ""), Cell(s["agreement"] or ""),
            Cell(s["severity"] or "", SEVERITY_COLOURS.get(s["severity"] or "")),
            Cell(state, STATE_COLOURS.get(s["state"])),
            Cell(duration), ack_cell,
            Cell(s["title"])])
    return headers, rows


def sort_incidents(incidents: Iterable[Obj]) -> list[Obj]:
    """Open ones first, each group the most recent first."""
    newest = sorted(incidents, key=lambda i: (str(_spec(i).get("startedAt") or ""),
                                              str(_meta(i).get("name") or "")), reverse=True)
    return sorted(newest, key=lambda i: not is_open(i))
