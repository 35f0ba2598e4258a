"""`kubectl sla report` and `kubectl sla statement`: the code paths of `sla-operator report`
and `sla-operator statement`, over the cluster that --kubeconfig/--context select."""

from __future__ import annotations

import argparse
from datetime import datetime
from pathlib import Path
from typing import Any

from sla_operator.plugin.cluster import Cluster, ClusterError


class Refused(Exception):
    """The report or statement cannot be made as asked (exit 2)."""


def report(cluster: Cluster, args: argparse.Namespace, namespace: str | None,
           now: datetime) -> str:
    from sla_operator.domain.statement import format_statement
    from sla_operator.statement.command import Records
    from sla_operator.statement.report import collect
    records = Records(cluster.list("servicelevelagreements", namespace),
                      cluster.list("maintenancewindows", namespace),
                      cluster.list("incidents", namespace))
    return format_statement(collect(records, args.period, now).lines, args.output)


def statement(cluster: Cluster, args: argparse.Namespace, namespace: str | None,
              now: datetime) -> str | bytes:
    from sla_operator.statement.command import Records, StatementRefused, make_statement, render
    records = Records(cluster.list("servicelevelagreements", namespace),
                      cluster.list("maintenancewindows", namespace),
                      cluster.list("incidents", namespace), _requests(cluster, namespace))
    try:
        data = render(make_statement(records, args.agreement, args.period, now), args.output)
    except StatementRefused as error:
        raise Refused(str(error)) from None
    if args.out is not None:
        Path(args.out).write_bytes(data)
        return ""
    return data if args.output == "pdf" else data.decode()


def _requests(cluster: Cluster, namespace: str | None) -> list[dict[str, Any]]:
    """The SupportRequests, for the statement's support section; none on a cluster whose
    CRDs predate the kind (its statement then has no requests to list)."""
    try:
        return cluster.list("supportrequests", namespace)
    except ClusterError as error:
        if "CustomResourceDefinitions are not installed" in str(error):
            return []
        raise
