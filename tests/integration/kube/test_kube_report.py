"""`sla-operator report` against kmock: objects the operator would reject are skipped, named."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from typing import Any

import kmock as km
import pytest
from kube_support import AGREEMENTS, INCIDENTS, agreement_manifest
from kubernetes import client

from sla_operator.statement import report

WINDOWS = km.resource("sla.dev", "v1alpha1", "maintenancewindows")
NOW = datetime(2026, 12, 1, tzinfo=UTC)


def window(name: str, **spec: Any) -> dict[str, Any]:
    return {"apiVersion": "sla.dev/v1alpha1", "kind": "MaintenanceWindow",
            "metadata": {"name": name, "namespace": "payments"},
            "spec": {"description": "Database upgrade", "slaNames": ["payments-api"], **spec}}


def rolling_agreement() -> dict[str, Any]:
    manifest = agreement_manifest(window={"type": "rolling", "duration": "30d"})
    manifest["metadata"] = {**manifest["metadata"], "name": "search-api", "uid": "b7c1-uid"}
    return manifest


@pytest.fixture
def cluster(apiserver: km.KubernetesEmulator, api_client: client.ApiClient,
            monkeypatch: pytest.MonkeyPatch) -> km.KubernetesEmulator:
    monkeypatch.setattr(report, "api_client", lambda: api_client)
    apiserver.objects[AGREEMENTS, "payments", "payments-api"] = agreement_manifest()
    apiserver.objects[WINDOWS, "payments", "db-upgrade"] = window(
        "db-upgrade", start="2026-11-10T02:00:00Z", end="2026-11-10T04:00:00Z")
    apiserver.objects[INCIDENTS, "payments", "payments-api-20261120-0912"] = {
        "apiVersion": "sla.dev/v1alpha1", "kind": "Incident",
        "metadata": {"name": "payments-api-20261120-0912", "namespace": "payments"},
        "spec": {"agreement": "payments-api", "type": "outage", "severity": "P1",
                 "title": "Payments failing", "startedAt": "2026-11-20T09:12:00Z",
                 "resolvedAt": "2026-11-20T09:22:00Z", "state": "resolved",
                 "impact": "downtime"}}
    return apiserver


async def statement(period: str | None) -> report.Statement:
    records = await asyncio.to_thread(report.cluster_records, report.api_client(), [])
    return report.collect(records, period, NOW)


async def test_invalid_windows_are_skipped_with_a_line_each_and_the_rest_reported(
        cluster: km.KubernetesEmulator, capsys: pytest.CaptureFixture[str]) -> None:
    cluster.objects[WINDOWS, "payments", "backwards"] = window(
        "backwards", start="2026-11-12T04:00:00Z", end="2026-11-12T02:00:00Z")
    cluster.objects[WINDOWS, "payments", "atlantis"] = window(
        "atlantis", schedule="0 2 * * SUN", duration="2h", timeZone="Europe/Atlantis")

    (line,) = (await statement("2026-11")).lines

    assert (line.agreement, line.period) == ("payments-api", "2026-11")
    assert line.maintenance_seconds == 7200  # db-upgrade still counts
    assert (line.downtime_seconds, line.incidents) == (600, 1)
    skipped = sorted(capsys.readouterr().err.splitlines())
    assert [text.split(": ")[0] for text in skipped] == [
        "maintenance window payments/atlantis skipped", "maintenance window payments/backwards skipped"]
    assert "spec.timeZone" in skipped[0] and "spec.end" in skipped[1]


async def test_a_rolling_agreement_is_skipped_for_a_named_period_and_said_so(
        cluster: km.KubernetesEmulator, capsys: pytest.CaptureFixture[str]) -> None:
    cluster.objects[AGREEMENTS, "payments", "search-api"] = rolling_agreement()

    named = await statement("2026-11")
    assert [line.agreement for line in named.lines] == ["payments-api"]
    assert capsys.readouterr().err == (
        "agreement payments/search-api skipped: period: '2026-11' names a calendar period, but "
        "this agreement is measured over a rolling window (rolling-30d), which has only its "
        "current window: report it without a period\n")

    current = await statement(None)
    assert [(line.agreement, line.period) for line in current.lines] == [
        ("payments-api", "2026-12"), ("search-api", "rolling-30d")]


async def test_a_period_no_agreement_has_exits_2_and_prints_no_statement(
        cluster: km.KubernetesEmulator, capsys: pytest.CaptureFixture[str]) -> None:
    code = await asyncio.to_thread(report.run_report, [], "2026-W47", "json")
    assert code == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.splitlines()[-1] == (
        "sla-operator report: no agreement could be reported for '2026-W47' (reasons above)")

    assert await asyncio.to_thread(report.run_report, [], "2026-11", "json") == 0
    (line,) = json.loads(capsys.readouterr().out)["agreements"]
    assert (line["agreement"], line["period"], line["downtime_seconds"]) == ("payments-api", "2026-11", 600)
