"""The `incidents` figure: what the CRD says it counts is what accounting and the report count."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import yaml

from sla_operator.domain.model import (
    Agreement,
    Endpoint,
    HttpProbe,
    Impact,
    Incident,
    IncidentType,
    Severity,
)
from sla_operator.domain.statement import statement_line

CRD = Path(__file__).resolve().parents[2] / "crds" / "servicelevelagreements.yaml"
DECEMBER_FIRST = datetime(2026, 12, 1, tzinfo=UTC)
AGREEMENT = Agreement(
    namespace="payments", name="payments-api", service="Payments API",
    objective=Decimal("99.9"),
    endpoints=(Endpoint(name="api", probe=HttpProbe(url="http://127.0.0.1:8099/healthz")),),
    created_at=datetime(2026, 1, 1, tzinfo=UTC),
)


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def incident(name: str, start: str, end: str, kind: IncidentType = IncidentType.OUTAGE,
             impact: Impact = Impact.DOWNTIME, dependency: bool = False) -> Incident:
    return Incident(namespace="payments", name=name, agreement="payments-api", type=kind,
                    severity=Severity.P3, title=name, started_at=utc(start),
                    resolved_at=utc(end), impact=impact, dependency=dependency)


def status_properties() -> dict[str, Any]:
    crd = yaml.safe_load(CRD.read_text())
    schema = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    return dict(schema["properties"]["status"]["properties"])


@pytest.mark.parametrize("where", ["currentPeriod", "history"])
def test_the_crd_describes_the_count_as_overlapping_incidents_without_dependencies(
        where: str) -> None:
    node = status_properties()[where]
    fields = node["properties"] if "properties" in node else node["items"]["properties"]
    description = fields["incidents"]["description"]
    assert "overlapping the period" in description
    assert "any type" in description and "dependency endpoints are not counted" in description
    assert "started in the period" not in description


def test_incidents_overlapping_the_period_count_whatever_their_type_but_not_dependencies() -> None:
    incidents = [
        incident("began-in-october", "2026-10-31T23:00:00", "2026-11-01T01:00:00"),
        incident("slow", "2026-11-10T10:00:00", "2026-11-10T11:00:00",
                 IncidentType.DEGRADATION, Impact.NONE),
        incident("certificate", "2026-11-12T00:00:00", "2026-11-13T00:00:00",
                 IncidentType.CERTIFICATE, Impact.NONE),
        incident("card-network", "2026-11-15T09:00:00", "2026-11-15T09:30:00", dependency=True),
        incident("in-october-only", "2026-10-20T00:00:00", "2026-10-20T01:00:00"),
    ]
    line = statement_line(AGREEMENT, [], incidents, [], "2026-11", DECEMBER_FIRST)
    assert line.period == "2026-11"
    assert line.incidents == 3
    assert line.downtime_seconds == 3600  # the hour of the outage that lies in November
