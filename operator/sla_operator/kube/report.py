"""`sla-operator report`: the SLA statement of every agreement, read from the cluster."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from kubernetes.client.exceptions import ApiException

from sla_operator.domain.errors import SpecError
from sla_operator.domain.fields import parse_time
from sla_operator.domain.intervals import Interval
from sla_operator.domain.parse import agreement_from_manifest
from sla_operator.domain.records import incident_from_manifest, maintenance_from_manifest
from sla_operator.domain.statement import StatementLine, format_statement, statement_line
from sla_operator.kube.connect import StartupError, api_client
from sla_operator.store.kube import GROUP, VERSION, KubeStore


def _list(store: KubeStore, plural: str, namespaces: Sequence[str]) -> list[dict[str, Any]]:
    if not namespaces:
        return list(store.custom.list_cluster_custom_object(GROUP, VERSION, plural)["items"])
    return [item for ns in namespaces for item in
            store.custom.list_namespaced_custom_object(GROUP, VERSION, ns, plural)["items"]]


def _unmonitored(status: dict[str, Any]) -> list[Interval]:
    return [Interval(parse_time(g["start"], "start"), parse_time(g["end"], "end"))
            for g in status.get("unmonitored") or ()]


def collect(store: KubeStore, namespaces: Sequence[str], period: str | None,
            now: datetime) -> list[StatementLine]:
    windows = [maintenance_from_manifest(w) for w in _list(store, "maintenancewindows", namespaces)]
    incidents = []
    for item in _list(store, "incidents", namespaces):
        try:
            incidents.append(incident_from_manifest(item))
        except SpecError as error:
            print(f"incident {item['metadata'].get('name')} skipped: {error}", file=sys.stderr)
    lines = []
    for item in _list(store, "servicelevelagreements", namespaces):
        try:
            agreement = agreement_from_manifest(item)
        except SpecError as error:
            print(f"agreement {item['metadata'].get('name')} skipped: {error}", file=sys.stderr)
            continue
        lines.append(statement_line(agreement, windows, incidents,
                                    _unmonitored(item.get("status") or {}), period, now))
    return sorted(lines, key=lambda line: (line.namespace, line.agreement))


def run_report(namespaces: Sequence[str], period: str | None, output: str) -> int:
    try:
        store = KubeStore(api_client())
        lines = collect(store, namespaces, period, datetime.now(UTC))
    except (SpecError, StartupError) as error:
        print(f"sla-operator report: {error}", file=sys.stderr)
        return 2
    except ApiException as error:
        print(f"sla-operator report: API {error.status}: {error.reason}", file=sys.stderr)
        return 1
    sys.stdout.write(format_statement(lines, output))
    return 0
