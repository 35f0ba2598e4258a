"""SupportRequests as a person opens, answers and resolves them with `kubectl sla request`,
and how `request list` shows them.

Pure: manifests, JSON patch operations over the object as read (the caller guards them with
the resourceVersion), rows for the table. A SupportRequest has no timeline: who answered and
who resolved it are kept in ``spec.respondedBy`` and ``spec.resolvedBy``, who opened it in the
annotation ``sla.dev/created-by`` (as for maintenance windows)."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from sla_operator.plugin.edits import Author, Edit, EditRefused, stamp
from sla_operator.plugin.table import Cell
from sla_operator.plugin.times import span_text
from sla_operator.plugin.views import SEVERITY_COLOURS
from sla_operator.plugin.windows import CREATED_BY, NAME_LIMIT

Obj = Mapping[str, Any]
SEVERITIES = ("P1", "P2", "P3", "P4")
REQUEST_SHRINK = (("TITLE", 16), ("CUSTOMER", 8), ("AGREEMENT", 8), ("TITLE", 5))


def _meta(obj: Obj) -> Mapping[str, Any]:
    return obj.get("metadata") or {}


def _spec(obj: Obj) -> Mapping[str, Any]:
    return obj.get("spec") or {}


def _status(obj: Obj) -> Mapping[str, Any]:
    return obj.get("status") or {}


def _parse(text: object) -> datetime | None:
    if not isinstance(text, str) or not text:
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None


def opened_at(request: Obj) -> datetime | None:
    """``spec.openedAt``, else the creation time (the operator's default too)."""
    return _parse(_spec(request).get("openedAt")) or _parse(_meta(request).get("creationTimestamp"))


def is_open(request: Obj) -> bool:
    return not _spec(request).get("resolvedAt")


def request_name(agreement: str, number: int) -> str:
    """AGREEMENT-N, numbered like tickets (short enough for `request list -A`)."""
    suffix = f"-{number}"
    return re.sub(r"[^a-z0-9.-]", "-", agreement.lower())[:NAME_LIMIT - len(suffix)].rstrip("-.") \
        + suffix


def next_number(agreement: str, taken: Iterable[str]) -> int:
    """One more than the highest N of the AGREEMENT-N names taken."""
    head = request_name(agreement, 0)[:-2]
    numbers = [int(found.group(1)) for name in taken
               if (found := re.fullmatch(rf"{re.escape(head)}-(\d+)", name))]
    return max(numbers, default=0) + 1


def request_manifest(namespace: str, name: str, agreement: str, severity: str, title: str,
                     opened: datetime, author: str, customer: str | None = None,
                     reference: str | None = None) -> dict[str, Any]:
    if severity not in SEVERITIES:
        raise EditRefused(f"--severity must be one of {', '.join(SEVERITIES)}")
    if not title.strip():
        raise EditRefused("--title must say what the customer asked")
    spec: dict[str, Any] = {"agreement": agreement, "severity": severity, "title": title.strip(),
                            "openedAt": stamp(opened)}
    if customer:
        spec["customer"] = customer
    if reference:
        spec["reference"] = reference
    return {"apiVersion": "sla.dev/v1alpha1", "kind": "SupportRequest",
            "metadata": {"name": name, "namespace": namespace,
                         "labels": {"sla.dev/agreement": agreement},
                         "annotations": {CREATED_BY: author}},
            "spec": spec}


def _name(request: Obj) -> str:
    return str(_meta(request).get("name"))


def _not_before_opening(request: Obj, author: Author, what: str) -> None:
    opened = opened_at(request)
    if opened is not None and author.time < opened:
        raise EditRefused(f"support request {_name(request)} was opened at {stamp(opened)}: it "
                          f"cannot be {what} at {stamp(author.time)}, before it was opened")


def _set(field: str, value: object) -> dict[str, Any]:
    return {"op": "add", "path": f"/spec/{field}", "value": value}


def respond(request: Obj, author: Author) -> Edit:
    """Records the first human reply: respondedAt (which the operator measures against
    responseDue) and respondedBy. A request answered already keeps its first reply (that is
    what the target measures) and nothing is written; the note says who answered when."""
    spec = _spec(request)
    if spec.get("respondedAt"):
        return Edit([], f"already responded to by {spec.get('respondedBy') or 'someone'} at "
                        f"{spec['respondedAt']}; the first response is kept, nothing was changed")
    _not_before_opening(request, author, "responded to")
    return Edit([_set("respondedAt", stamp(author.time)), _set("respondedBy", author.name)])


def resolve(request: Obj, author: Author) -> Edit:
    spec = _spec(request)
    if spec.get("resolvedAt"):
        raise EditRefused(f"support request {_name(request)} is already resolved (at "
                          f"{spec['resolvedAt']} by {spec.get('resolvedBy') or 'someone'})")
    _not_before_opening(request, author, "resolved")
    note = None
    if not spec.get("respondedAt"):
        note = (f"no response is recorded for {_name(request)}: it counts as unanswered (breached "
                f"once due); if a reply went out, record it with: kubectl sla request respond "
                f"{_name(request)} --at TIME")
    return Edit([_set("resolvedAt", stamp(author.time)), _set("resolvedBy", author.name)], note)


def sort_requests(requests: Iterable[Obj]) -> list[Obj]:
    """Open ones first, each group the most recently opened first."""
    newest = sorted(requests, key=lambda r: (stamp(o) if (o := opened_at(r)) else "",
                                             _name(r)), reverse=True)
    return sorted(newest, key=lambda r: not is_open(r))


def _relative(moment: datetime, now: datetime) -> str:
    seconds = int((moment - now).total_seconds())
    return f"in {span_text(seconds)}" if seconds > 0 else f"{span_text(-seconds)} ago"


def request_summary(request: Obj, now: datetime) -> dict[str, Any]:
    meta, spec, status = _meta(request), _spec(request), _status(request)
    return {"namespace": meta.get("namespace"), "name": meta.get("name"),
            "agreement": spec.get("agreement"), "severity": spec.get("severity"),
            "customer": spec.get("customer") or "", "title": spec.get("title") or "",
            "openedAt": opened_at(request), "responseDue": _parse(status.get("responseDue")),
            "respondedAt": _parse(spec.get("respondedAt")), "respondedBy": spec.get("respondedBy"),
            "resolvedAt": spec.get("resolvedAt"),
            "breached": status.get("responseBreached") if status else None}


def requests_table(summaries: Sequence[Mapping[str, Any]], namespaces: bool, now: datetime
                   ) -> tuple[list[str], list[list[Cell]]]:
    headers = ["NAMESPACE"] * namespaces + ["NAME", "AGREEMENT", "SEV", "CUSTOMER", "OPENED",
                                            "DUE", "RESPONDED", "BREACHED", "TITLE"]
    rows = []
    for s in summaries:
        opened, due, responded = s["openedAt"], s["responseDue"], s["respondedAt"]
        if responded is not None and opened is not None:
            answered = Cell(f"after {span_text(max(0, int((responded - opened).total_seconds())))}",
                            "green")
        else:
            answered = Cell("-")
        if s["breached"] is None:
            breached = Cell("-")  # the operator has not looked at it yet
        elif s["breached"]:
            breached = Cell("yes" if responded else "OVERDUE", "red")
        else:
            breached = Cell("no")
        rows.append([Cell(s["namespace"] or "")] * namespaces + [
            Cell(s["name"] or ""), Cell(s["agreement"] or ""),
            Cell(s["severity"] or "", SEVERITY_COLOURS.get(s["severity"] or "")),
            Cell(s["customer"] or "-"),
            Cell(span_text(max(0, int((now - opened).total_seconds()))) if opened else "-"),
            Cell(_relative(due, now) if due else "-"), answered, breached,
            Cell(("(resolved) " if s["resolvedAt"] else "") + s["title"])])
    return headers, rows
