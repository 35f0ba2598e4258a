"""`sla-operator report`: the SLA report of every agreement, read from the cluster or from
local mode's folders (``--manifests``/``--state``, read as the customer statement reads them).

An object the operator would reject is skipped with one line on stderr, never aborting the
report of the others.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar

from kubernetes import client

from sla_operator.domain.errors import SpecError
from sla_operator.domain.model import MaintenanceWindow
from sla_operator.domain.parse import agreement_from_manifest
from sla_operator.domain.records import incident_from_manifest, maintenance_from_manifest
from sla_operator.domain.schedule import validate_maintenance
from sla_operator.domain.statement import StatementLine, format_statement, statement_line
from sla_operator.kube.connect import StartupError, api_client, list_kind
from sla_operator.statement.command import (
    Obj,
    Records,
    StatementRefused,
    folder_records,
    unmonitored_of,
)

T = TypeVar("T")


@dataclass
class Statement:
    lines: list[StatementLine] = field(default_factory=list)
    skipped_agreements: int = 0


def _skip(kind: str, item: Obj, error: SpecError) -> None:
    meta = item.get("metadata") or {}
    print(f"{kind} {meta.get('namespace')}/{meta.get('name')} skipped: {error}", file=sys.stderr)


def _readable(items: list[Obj], kind: str, read: Callable[[Obj], T]) -> list[T]:
    readable = []
    for item in items:
        try:
            readable.append(read(item))
        except SpecError as error:
            _skip(kind, item, error)
    return readable


def _window(item: Obj) -> MaintenanceWindow:
    window = maintenance_from_manifest(item)
    validate_maintenance(window)  # the operator ignores such a window too
    return window


def cluster_records(api: client.ApiClient, namespaces: Sequence[str]) -> Records:
    return Records(list_kind(api, "servicelevelagreements", namespaces),
                   list_kind(api, "maintenancewindows", namespaces),
                   list_kind(api, "incidents", namespaces))


def collect(records: Records, period: str | None, now: datetime) -> Statement:
    windows = _readable(list(records.windows), "maintenance window", _window)
    incidents = _readable(list(records.incidents), "incident", incident_from_manifest)
    statement = Statement()
    for item in records.agreements:
        try:
            line = statement_line(agreement_from_manifest(item), windows, incidents,
                                  unmonitored_of(item.get("status") or {}, now), period, now)
        except SpecError as error:
            _skip("agreement", item, error)
            statement.skipped_agreements += 1
            continue
        statement.lines.append(line)
    statement.lines.sort(key=lambda line: (line.namespace, line.agreement))
    return statement


def run_report(namespaces: Sequence[str], period: str | None, output: str,
               manifests: str | None = None, state: str | None = None) -> int:
    try:
        if (manifests is None) != (state is None):
            raise StatementRefused("--manifests and --state go together (local mode's folders)")
        records = (folder_records(Path(manifests), Path(state), namespaces)
                   if manifests is not None and state is not None
                   else cluster_records(api_client(), namespaces))
        statement = collect(records, period, datetime.now(UTC))
    except StatementRefused as error:
        print(f"sla-operator report: {error}", file=sys.stderr)
        return 2
    except StartupError as error:
        print(f"sla-operator report: {error}", file=sys.stderr)
        return 1
    if period and statement.skipped_agreements and not statement.lines:
        print(f"sla-operator report: no agreement could be reported for {period!r} (reasons above)",
              file=sys.stderr)
        return 2
    sys.stdout.write(format_statement(statement.lines, output))
    return 0
