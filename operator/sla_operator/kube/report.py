"""`sla-operator report`: the SLA statement of every agreement, read from the cluster.

An object the operator would reject is skipped with one line on stderr, never aborting the
statement of the others.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar

from kubernetes import client

from sla_operator.domain.errors import SpecError
from sla_operator.domain.fields import parse_time
from sla_operator.domain.intervals import Interval
from sla_operator.domain.model import MaintenanceWindow
from sla_operator.domain.parse import agreement_from_manifest
from sla_operator.domain.records import incident_from_manifest, maintenance_from_manifest
from sla_operator.domain.schedule import validate_maintenance
from sla_operator.domain.statement import StatementLine, format_statement, statement_line
from sla_operator.kube.connect import StartupError, api_client, list_kind

T = TypeVar("T")


@dataclass
class Statement:
    lines: list[StatementLine] = field(default_factory=list)
    skipped_agreements: int = 0


def _skip(kind: str, item: dict[str, Any], error: SpecError) -> None:
    meta = item.get("metadata") or {}
    print(f"{kind} {meta.get('namespace')}/{meta.get('name')} skipped: {error}", file=sys.stderr)


def _readable(items: list[dict[str, Any]], kind: str,
              read: Callable[[dict[str, Any]], T]) -> list[T]:
    readable = []
    for item in items:
        try:
            readable.append(read(item))
        except SpecError as error:
            _skip(kind, item, error)
    return readable


def _window(item: dict[str, Any]) -> MaintenanceWindow:
    window = maintenance_from_manifest(item)
    validate_maintenance(window)  # the operator ignores such a window too
    return window


def _unmonitored(status: dict[str, Any]) -> list[Interval]:
    return [Interval(parse_time(g.get("start"), "status.unmonitored[].start"),
                     parse_time(g.get("end"), "status.unmonitored[].end"))
            for g in status.get("unmonitored") or ()]


def collect(api: client.ApiClient, namespaces: Sequence[str], period: str | None,
            now: datetime) -> Statement:
    windows = _readable(list_kind(api, "maintenancewindows", namespaces),
                        "maintenance window", _window)
    incidents = _readable(list_kind(api, "incidents", namespaces), "incident",
                          incident_from_manifest)
    statement = Statement()
    for item in list_kind(api, "servicelevelagreements", namespaces):
        try:
            line = statement_line(agreement_from_manifest(item), windows, incidents,
                                  _unmonitored(item.get("status") or {}), period, now)
        except SpecError as error:
            _skip("agreement", item, error)
            statement.skipped_agreements += 1
            continue
        statement.lines.append(line)
    statement.lines.sort(key=lambda line: (line.namespace, line.agreement))
    return statement


def run_report(namespaces: Sequence[str], period: str | None, output: str) -> int:
    try:
        statement = collect(api_client(), namespaces, period, datetime.now(UTC))
    except StartupError as error:
        print(f"sla-operator report: {error}", file=sys.stderr)
        return 1
    if period and statement.skipped_agreements and not statement.lines:
        print(f"sla-operator report: no agreement could be reported for {period!r} (reasons above)",
              file=sys.stderr)
        return 2
    sys.stdout.write(format_statement(statement.lines, output))
    return 0
