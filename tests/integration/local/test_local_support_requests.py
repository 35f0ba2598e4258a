"""Support requests in local mode: read from the manifests folder, their status written to the
state folder, the agreement's compliance per severity, the metrics and the alert's counter."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from engine_clock import Clock
from local_folders import SHOP, Folders
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from sla_operator.exposition import render_text
from sla_operator.local.files import read_yaml
from sla_operator.metrics import EngineCollector
from sla_operator.statement.command import folder_records, make_statement
from sla_operator.statement.formats import statement_dict
from sla_operator.store.base import Kind

FRIDAY = datetime(2026, 10, 23, 15, 30, tzinfo=UTC)  # 16:30 in London (BST)
KEY = ("demo", "acme-1")


def request(name: str = "acme-1", severity: str = "P2", **spec: Any) -> dict[str, Any]:
    return {"apiVersion": "sla.dev/v1alpha1", "kind": "SupportRequest",
            "metadata": {"name": name, "namespace": "demo"},
            "spec": {"agreement": "shop", "severity": severity, "title": "Help",
                     "openedAt": "2026-10-23T15:30:00Z", **spec}}


def shop_with_support_hours() -> dict[str, Any]:
    shop = copy.deepcopy(SHOP)
    shop["spec"]["supportResponse"] = {"P4": "8h"}
    shop["spec"]["supportHours"] = {"timeZone": "Europe/London", "hours": {"P4": "business"}}
    return shop


@pytest.fixture
def clock() -> Clock:
    clock = Clock()
    clock.now = FRIDAY
    return clock


@pytest.fixture
def folders(tmp_path: Path, clock: Clock) -> Folders:
    return Folders(tmp_path, clock=clock)


def samples(folders: Folders, name: str) -> dict[str, float]:
    """One family's samples by severity, from /metrics' text (held equal to the samples')."""
    registry = CollectorRegistry()
    registry.register(EngineCollector(folders.engine))
    folders.engine.publish()
    text = render_text(registry).decode()
    assert text == generate_latest(registry).decode()
    return {s.labels["severity"]: s.value for family in text_string_to_metric_families(text)
            for s in family.samples if s.name == name}


async def test_a_request_in_the_manifests_gets_its_due_time_and_the_agreement_its_figures(
        folders: Folders, clock: Clock) -> None:
    folders.put("shop.yaml", shop_with_support_hours(), request(),
                request("acme-2", "P4"))
    await folders.settle()
    await folders.engine.evaluate_round()
    status = folders.store.read_status(Kind.SUPPORT_REQUEST, KEY)
    assert status["responseDue"] == "2026-10-23T16:30:00Z" and status["responseBreached"] is False
    # P4 counts only support hours: 30 min on Friday, 7.5 h on Monday after the clocks went back.
    p4 = folders.store.read_status(Kind.SUPPORT_REQUEST, ("demo", "acme-2"))
    assert (p4["responseDue"], p4["hours"]) == ("2026-10-26T16:30:00Z", "business")
    path = folders.state / "status" / "supportrequests" / "demo" / "acme-1.yaml"
    assert read_yaml(path)["kind"] == "SupportRequest"
    figures = folders.store.read_status(Kind.AGREEMENT, ("demo", "shop"))["currentPeriod"]
    assert figures["support"]["P2"]["requests"] == 1 and figures["support"]["P2"]["waiting"] == 1
    assert set(figures["support"]) == {"P2", "P4"}
    assert samples(folders, "sla_support_requests_total") == {"P1": 0, "P2": 1, "P3": 0, "P4": 1}


async def test_an_unanswered_request_goes_late_and_the_breach_counter_rises(
        folders: Folders, clock: Clock) -> None:
    folders.put("shop.yaml", shop_with_support_hours(), request())
    await folders.settle()
    await folders.engine.evaluate_round()
    assert samples(folders, "sla_support_response_breached_total")["P2"] == 0
    clock.now = FRIDAY + timedelta(hours=1, seconds=1)
    await folders.engine.evaluate_round()
    assert folders.store.read_status(Kind.SUPPORT_REQUEST, KEY)["responseBreached"] is True
    assert samples(folders, "sla_support_response_breached_total")["P2"] == 1
    support = folders.store.read_status(Kind.AGREEMENT, ("demo", "shop"))["currentPeriod"]["support"]
    assert (support["P2"]["breached"], support["P2"]["waiting"]) == (1, 0)


async def test_an_answer_in_time_is_counted_as_met_and_a_late_one_as_breached(
        folders: Folders, clock: Clock) -> None:
    folders.put("shop.yaml", shop_with_support_hours(),
                request(respondedAt="2026-10-23T15:50:00Z"),
                request("acme-late", respondedAt="2026-10-23T17:00:00Z"))
    clock.now = FRIDAY + timedelta(hours=3)
    await folders.settle()
    await folders.engine.evaluate_round()
    met = folders.store.read_status(Kind.SUPPORT_REQUEST, KEY)
    assert (met["responseBreached"], met["responseSeconds"]) == (False, 1200)
    late = folders.store.read_status(Kind.SUPPORT_REQUEST, ("demo", "acme-late"))
    assert (late["responseBreached"], late["responseSeconds"]) == (True, 5400)
    p2 = folders.store.read_status(Kind.AGREEMENT, ("demo", "shop"))["currentPeriod"]["support"]["P2"]
    assert p2 == {"requests": 2, "respondedInTime": 1, "breached": 1, "waiting": 0,
                  "medianResponseSeconds": 1200, "worstResponseSeconds": 5400,
                  "target": "1h", "hours": "always"}


async def test_a_request_answered_later_is_taken_in_and_a_removed_one_dropped(
        folders: Folders, clock: Clock) -> None:
    path = folders.put("shop.yaml", shop_with_support_hours(), request())
    await folders.settle()
    await folders.engine.evaluate_round()
    folders.put(path.name, shop_with_support_hours(), request(respondedAt="2026-10-23T15:40:00Z"))
    await folders.settle()
    await folders.engine.evaluate_round()
    assert folders.store.read_status(Kind.SUPPORT_REQUEST, KEY)["responseSeconds"] == 600
    folders.put(path.name, shop_with_support_hours())
    await folders.settle()
    assert KEY not in folders.engine.support_requests


async def test_a_request_without_an_opening_time_is_opened_when_first_seen_across_restarts(
        folders: Folders, clock: Clock) -> None:
    undated = request()
    del undated["spec"]["openedAt"]
    folders.put("shop.yaml", shop_with_support_hours(), undated)
    await folders.settle()
    assert folders.engine.support_requests[KEY].opened_at == FRIDAY
    clock.now = FRIDAY + timedelta(hours=2)
    again = folders.restart()
    await again.settle()
    assert again.engine.support_requests[KEY].opened_at == FRIDAY
    # The statement from the folders reads the same time.
    statement = make_statement(folder_records(folders.manifests, folders.state, []), "shop",
                               "2026-10", clock.now)
    assert [(line.opened_at, line.breached) for line in statement.support_requests] == [
        (FRIDAY, True)]


async def test_a_request_replied_before_it_was_opened_is_refused_with_its_field(
        folders: Folders, caplog: pytest.LogCaptureFixture) -> None:
    folders.put("shop.yaml", shop_with_support_hours(),
                request(respondedAt="2026-10-23T15:00:00Z"))
    await folders.settle()
    assert KEY not in folders.engine.support_requests
    assert "spec.respondedAt" in caplog.text


async def test_the_statement_from_local_folders_lists_the_requests(
        folders: Folders, clock: Clock) -> None:
    folders.put("shop.yaml", shop_with_support_hours(), request(respondedAt="2026-10-23T15:50:00Z"),
                request("acme-2", "P4"))
    await folders.settle()
    await folders.engine.evaluate_round()
    records = folder_records(folders.manifests, folders.state, [])
    statement = make_statement(records, "shop", "2026-10", FRIDAY + timedelta(days=5))
    # acme-2 was due on Monday 26 October, 16:30 GMT, and is still unanswered.
    assert [(line.name, line.breached) for line in statement.support_requests] == [
        ("acme-1", False), ("acme-2", True)]
    document = statement_dict(statement)
    p4 = next(r for r in document["responses"] if r["severity"] == "P4")
    assert p4["supportRequests"]["hours"] == "business"
    assert p4["supportRequests"]["waiting"] == 0 and p4["supportRequests"]["breached"] == 1


async def test_a_request_naming_no_agreement_says_so_in_its_status_file_and_recovers(
        folders: Folders, clock: Clock, caplog: pytest.LogCaptureFixture) -> None:
    folders.put("requests.yaml", request(agreement="shopp"))
    await folders.settle()
    await folders.engine.evaluate_round()
    status = folders.store.read_status(Kind.SUPPORT_REQUEST, KEY)
    assert status["message"].startswith(
        "spec.agreement: no ServiceLevelAgreement 'shopp' in namespace demo")
    assert "responseDue" not in status and "responseBreached" not in status
    (ready,) = status["conditions"]
    assert (ready["type"], ready["status"], ready["reason"]) == ("Ready", "False",
                                                                "AgreementNotFound")
    clock.now = FRIDAY + timedelta(minutes=1)
    await folders.engine.evaluate_round()
    assert caplog.text.count("no ServiceLevelAgreement 'shopp'") == 1  # said once in the log
    # The agreement arrives under that name: the request is measured, Ready again.
    shopp = shop_with_support_hours()
    shopp["metadata"]["name"] = "shopp"
    folders.put("shopp.yaml", shopp)
    await folders.settle()
    await folders.engine.evaluate_round()
    status = folders.store.read_status(Kind.SUPPORT_REQUEST, KEY)
    assert status["responseDue"] == "2026-10-23T16:30:00Z" and status["message"] == ""
    assert status["conditions"][0]["status"] == "True"
    assert status["conditions"][0]["lastTransitionTime"] == "2026-10-23T15:31:00Z"


async def test_a_request_naming_a_maintenance_window_in_local_mode_says_so(
        folders: Folders) -> None:
    window = {"apiVersion": "sla.dev/v1alpha1", "kind": "MaintenanceWindow",
              "metadata": {"name": "weekly", "namespace": "demo"},
              "spec": {"schedule": "0 3 * * SUN", "duration": "2h", "slaNames": ["shop"]}}
    folders.put("shop.yaml", shop_with_support_hours(), window, request(agreement="weekly"))
    await folders.settle()
    await folders.engine.evaluate_round()
    status = folders.store.read_status(Kind.SUPPORT_REQUEST, KEY)
    assert "'weekly' is a MaintenanceWindow" in status["message"]
    assert status["conditions"][0]["reason"] == "AgreementNotFound"
