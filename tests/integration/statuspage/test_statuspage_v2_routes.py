"""/api/v2/*.json: Statuspage's public API v2 shape, from the same snapshot as the page."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from status_snapshots import NOW, agreement, incident, snapshot, window

from sla_operator.domain.model import Environment, IncidentState, IncidentUpdate, Severity, State
from sla_operator.domain.views import Snapshot
from sla_operator.statuspage import status_app

HOSTILE = '<script>alert(1)</script><img src=x onerror="alert(2)"> & \u2028'
ROUTES = ["summary.json", "status.json", "components.json", "incidents.json",
          "incidents/unresolved.json", "scheduled-maintenances.json",
          "scheduled-maintenances/upcoming.json", "scheduled-maintenances/active.json"]
COMPONENT_STATUSES = {"operational", "degraded_performance", "partial_outage", "major_outage",
                      "under_maintenance"}


def world(**states: State) -> Snapshot:
    return snapshot(
        agreement("payments-api", group="Payments", state=states.get("payments", State.DOWN)),
        agreement("payouts", group="Payments", state=State.UP),
        agreement("search", namespace="shop", state=State.UP),
        agreement("playground", namespace="shop", environment=Environment.SANDBOX, state=State.DOWN),
        agreement("internal-db", public=False, service="Internal DB at db.corp.example"),
        incidents=(
            incident("payments-api-1", title=HOSTILE, state=IncidentState.MONITORING, updates=(
                IncidentUpdate(NOW - timedelta(hours=2), IncidentState.INVESTIGATING, HOSTILE),
                IncidentUpdate(NOW - timedelta(hours=1), IncidentState.MONITORING, "fix deployed"))),
            incident("payments-api-0", resolved=NOW - timedelta(days=3),
                     started=NOW - timedelta(days=3, hours=1), severity=Severity.P3),
            incident("internal-db-1", "internal-db", title="internal outage"),
        ),
        windows=(window("db-upgrade"), window("reindex", namespace="shop", agreements=("search",),
                                              active=True),
                 window("internal-window", agreements=("internal-db",))))


class Source:
    def __init__(self, current: Snapshot) -> None:
        self.current = current

    def __call__(self) -> Snapshot:
        return self.current


@pytest.fixture
def source() -> Source:
    return Source(world())


@pytest.fixture
async def client(source: Source) -> AsyncIterator[TestClient[Any, Any]]:
    async with TestClient(TestServer(status_app(source))) as test_client:
        yield test_client


async def read(client: TestClient[Any, Any], route: str) -> dict[str, Any]:
    response = await client.get(f"/api/v2/{route}")
    assert response.status == 200, route
    assert response.headers["Content-Type"].startswith("application/json")
    document: dict[str, Any] = json.loads(await response.text())
    return document


@pytest.mark.parametrize("route", ROUTES)
async def test_every_route_is_json_any_origin_may_read(client: TestClient[Any, Any], route: str) -> None:
    response = await client.get(f"/api/v2/{route}", headers={"Origin": "https://elsewhere.example"})
    assert response.status == 200
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    document = json.loads(await response.text())
    assert document["page"]["name"] and document["page"]["updated_at"].startswith("2026-11-27T03:30")
    preflight = await client.options(f"/api/v2/{route}", headers={
        "Origin": "https://elsewhere.example", "Access-Control-Request-Method": "GET"})
    assert preflight.status == 204 and preflight.headers["Access-Control-Allow-Origin"] == "*"


async def test_cors_stays_on_the_statuspage_routes(client: TestClient[Any, Any]) -> None:
    for path in ("/", "/api/v1/status", "/feed.atom"):
        assert "Access-Control-Allow-Origin" not in (await client.get(path)).headers


@pytest.mark.parametrize("route", ROUTES)
async def test_nothing_of_a_non_public_agreement_is_served(client: TestClient[Any, Any],
                                                            route: str) -> None:
    body = await (await client.get(f"/api/v2/{route}")).text()
    for secret in ("internal", "db.corp.example", "Internal DB"):
        assert secret not in body


async def test_people_s_text_is_json_that_no_html_reader_can_run(client: TestClient[Any, Any]) -> None:
    body = await (await client.get("/api/v2/incidents.json")).text()
    assert "<" not in body and ">" not in body and "&" not in body and "\u2028" not in body
    [latest, _] = json.loads(body)["incidents"]
    assert latest["name"] == HOSTILE and latest["incident_updates"][-1]["body"] == HOSTILE


async def test_components_are_agreements_nested_in_group_components(client: TestClient[Any, Any]) -> None:
    components = (await read(client, "components.json"))["components"]
    assert {c["status"] for c in components} <= COMPONENT_STATUSES
    by_name = {c["name"]: c for c in components}
    group = by_name["Payments"]
    assert group["group"] is True and group["status"] == "major_outage"
    assert group["components"] == [by_name["Payments Api"]["id"], by_name["Payouts"]["id"]]
    assert by_name["Payments Api"]["group_id"] == group["id"] and by_name["Search"]["group_id"] is None
    assert by_name["Payments Api"]["status"] == "major_outage"
    assert by_name["Playground"]["description"].startswith("Sandbox")
    assert len({c["id"] for c in components}) == len(components)
    assert [c["position"] for c in components] == list(range(1, len(components) + 1))


async def test_ids_are_stable_across_renders(client: TestClient[Any, Any], source: Source) -> None:
    before = await read(client, "summary.json")
    source.current = world(payments=State.UP)
    after = await read(client, "summary.json")
    assert [c["id"] for c in before["components"]] == [c["id"] for c in after["components"]]


async def test_incidents_updates_newest_first_and_unresolved(client: TestClient[Any, Any]) -> None:
    incidents = (await read(client, "incidents.json"))["incidents"]
    assert [i["status"] for i in incidents] == ["monitoring", "resolved"]
    open_one, resolved = incidents
    assert open_one["impact"] == "critical" and resolved["impact"] == "minor"
    assert [u["status"] for u in open_one["incident_updates"]] == ["monitoring", "investigating"]
    assert open_one["monitoring_at"] == "2026-11-27T02:30:00.000+00:00"
    assert open_one["resolved_at"] is None and resolved["resolved_at"].startswith("2026-11-24")
    assert [c["name"] for c in open_one["components"]] == ["Payments Api"]
    assert open_one["shortlink"] == "/#incident-payments_payments-api-1"
    unresolved = (await read(client, "incidents/unresolved.json"))["incidents"]
    assert [i["id"] for i in unresolved] == [open_one["id"]]


async def test_maintenance_scheduled_and_in_progress(client: TestClient[Any, Any]) -> None:
    every = (await read(client, "scheduled-maintenances.json"))["scheduled_maintenances"]
    assert [(m["status"], m["impact"]) for m in every] == [("in_progress", "maintenance"),
                                                            ("scheduled", "maintenance")]
    upcoming = (await read(client, "scheduled-maintenances/upcoming.json"))["scheduled_maintenances"]
    active = (await read(client, "scheduled-maintenances/active.json"))["scheduled_maintenances"]
    assert [m["status"] for m in upcoming] == ["scheduled"]
    assert [m["status"] for m in active] == ["in_progress"]
    assert upcoming[0]["scheduled_for"] == "2026-11-29T03:30:00.000+00:00"
    assert [c["name"] for c in active[0]["components"]] == ["Search"]


async def test_summary_and_status_give_the_worst_of_production(client: TestClient[Any, Any],
                                                               source: Source) -> None:
    summary = await read(client, "summary.json")
    assert summary["status"] == {"indicator": "critical", "description": "Major Service Outage"}
    assert [i["status"] for i in summary["incidents"]] == ["monitoring"]
    assert len(summary["scheduled_maintenances"]) == 2
    source.current = snapshot(agreement("payments-api"),
                              agreement("playground", environment=Environment.SANDBOX,
                                        state=State.DOWN))
    status = (await read(client, "status.json"))["status"]
    assert status == {"indicator": "none", "description": "All Systems Operational"}
