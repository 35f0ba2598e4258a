"""Published readers of Statuspage's API v2, written by others, read our /api/v2 routes.

Both come from PyPI through the dev extras:
- ``DiscordStatus`` (a client of the public API v2, written for Discord's Statuspage) reads all
  eight routes; its base address is pointed at ours.
- ``statuspage-prometheus-exporter`` (polls a Statuspage's summary.json and exposes it as
  Prometheus metrics) runs as its own process, once, and its metrics say what ours say.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestServer
from discordstatus import DiscordStatus
from prometheus_client.parser import text_string_to_metric_families
from status_snapshots import NOW, agreement, incident, snapshot, window

from sla_operator.domain.model import IncidentState, IncidentUpdate, State
from sla_operator.domain.views import Snapshot
from sla_operator.statuspage import status_app

TITLE = 'Payments answer 503 <script>alert("x")</script>'
READERS = {"summary": "status", "status": "status", "components": "components",
           "unresolved_incidents": "incidents", "all_incidents": "incidents",
           "upcoming_maintenances": "scheduled_maintenances",
           "active_maintenances": "scheduled_maintenances",
           "all_maintenances": "scheduled_maintenances"}


def world(down: bool) -> Snapshot:
    opened = IncidentUpdate(NOW - timedelta(hours=1), IncidentState.INVESTIGATING, "looking")
    return snapshot(
        agreement("payments-api", group="Payments", state=State.DOWN if down else State.UP),
        agreement("search", namespace="shop"),
        agreement("internal-db", public=False, service="Internal DB"),
        incidents=(incident("payments-api-1", title=TITLE, updates=(opened,)),) if down else (),
        windows=(window("db-upgrade"), window("reindex", namespace="shop", agreements=("search",),
                                              active=True)))


@pytest.fixture(params=[False, True], ids=["healthy", "down"])
async def server(request: pytest.FixtureRequest) -> AsyncIterator[tuple[str, bool]]:
    down: bool = request.param
    async with TestServer(status_app(lambda: world(down)), host="127.0.0.1") as test_server:
        yield str(test_server.make_url("")).rstrip("/"), down


async def test_discordstatus_reads_all_eight_routes(server: tuple[str, bool]) -> None:
    url, down = server
    client = DiscordStatus()
    client.base_target = f"{url}/api/v2"
    documents: dict[str, Any] = {}
    for reader, key in READERS.items():
        documents[reader] = await asyncio.to_thread(getattr, client, reader)
        assert key in documents[reader] and "page" in documents[reader], reader
    assert documents["status"]["status"]["indicator"] == ("critical" if down else "none")
    assert [c["name"] for c in documents["components"]["components"]] == [
        "Search", "Payments", "Payments Api"]
    assert len(documents["unresolved_incidents"]["incidents"]) == (1 if down else 0)
    assert [m["status"] for m in documents["active_maintenances"]["scheduled_maintenances"]] == [
        "in_progress"]
    assert [m["status"] for m in documents["upcoming_maintenances"]["scheduled_maintenances"]] == [
        "scheduled"]
    assert len(documents["all_maintenances"]["scheduled_maintenances"]) == 2
    assert "Internal DB" not in json.dumps(documents)


def exporter() -> str:
    found = shutil.which("statuspage-prometheus-exporter", path=str(Path(sys.executable).parent))
    if found is None:
        pytest.fail("statuspage-prometheus-exporter is missing: `pip install -e '.[dev]'` "
                    "(or any make target, which does) installs it", pytrace=False)
    return found


async def test_the_prometheus_exporter_reads_the_summary(server: tuple[str, bool],
                                                         tmp_path: Path) -> None:
    url, down = server
    services = tmp_path / "services.json"
    services.write_text(json.dumps({"sla": {"url": f"{url}/api/v2/summary.json", "name": "SLA"}}))
    metrics = tmp_path / "statuspage.prom"
    env = {**os.environ, "RUN_MODE": "once", "SERVICES_JSON_PATH": str(services),
           "METRICS_TEXTFILE_PATH": str(metrics)}
    run = await asyncio.to_thread(subprocess.run, [exporter()], cwd=tmp_path, env=env,
                                  capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert "error" not in run.stderr.lower(), run.stderr
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value
               for family in text_string_to_metric_families(metrics.read_text())
               for s in family.samples}

    def value(name: str, **labels: str) -> float | None:
        return next((v for (n, ls), v in samples.items()
                     if n == name and set(labels.items()) <= set(ls)), None)

    assert value("statuspage_probe_check", service_name="SLA") == 1
    assert value("statuspage_service_status", service_name="SLA") == (0 if down else 1)
    assert value("statuspage_component_status", component_name="Search") == 1
    assert value("statuspage_component_status", component_name="Payments Api") == (0 if down else 1)
    # With nothing open it writes one placeholder series ("No Active Incidents") at 0.
    incident_names = [dict(ls)["incident_name"] for (n, ls), v in samples.items()
                      if n == "statuspage_incident_info" and v == 1]
    assert incident_names == ([TITLE] if down else [])
    maintenance = {dict(ls)["maintenance_id"] for (n, ls) in samples
                   if n == "statuspage_maintenance_info"}
    assert len(maintenance) == 2
