"""LocationReports and the locations' Leases as plain data (domain/location_reports.py), and
the CRD the reports are written against."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from test_crds import CRDS, openapi_schema, schema_nodes, validation_errors

from sla_operator.domain.errors import SpecError
from sla_operator.domain.health import EndpointHealth
from sla_operator.domain.location_reports import (
    Heartbeat,
    changed,
    heartbeat_from_lease,
    report_from_manifest,
    report_manifest,
    view_entries,
)
from sla_operator.domain.model import Agreement, Endpoint, HttpProbe, ProbeResult, State

T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
SECOND = timedelta(seconds=1)
API = Endpoint("api", HttpProbe("http://127.0.0.1:8099/healthz"), interval=SECOND)
WEB = Endpoint("web", HttpProbe("http://127.0.0.1:8099/"), interval=SECOND)
AGREEMENT = Agreement(namespace="shop", name="checkout", service="Checkout",
                      objective=Decimal("99.9"), endpoints=(API, WEB), uid="u-1")


def down_since(start: datetime, probed: datetime) -> EndpointHealth:
    return EndpointHealth(state=State.DOWN, since=start,
                          last=ProbeResult(probed, False, 0.01, "503 Service Unavailable"))


def test_a_report_carries_each_probed_endpoint_and_reads_back_as_it_was_seen() -> None:
    entries = view_entries(AGREEMENT, {"api": down_since(T0, T0 + 2 * SECOND)})
    manifest = report_manifest(AGREEMENT, "eu-west", entries)
    assert manifest["metadata"]["name"] == "checkout.eu-west"
    assert manifest["metadata"]["ownerReferences"][0]["uid"] == "u-1"  # goes with the agreement
    assert validation_errors(manifest) == []
    report = report_from_manifest(manifest)
    assert (report.namespace, report.agreement, report.location) == ("shop", "checkout", "eu-west")
    view = report.views["api"]
    assert (view.state, view.since) == (State.DOWN, T0)
    assert view.last is not None and view.last.message == "503 Service Unavailable"
    assert "web" not in report.views  # not probed yet: no view


def test_only_a_new_state_or_since_is_worth_a_write() -> None:
    written = view_entries(AGREEMENT, {"api": down_since(T0, T0)})
    later = view_entries(AGREEMENT, {"api": down_since(T0, T0 + 30 * SECOND)})
    assert not changed(later, written)  # a newer probe alone: the Lease says it still holds
    assert changed(view_entries(AGREEMENT, {"api": down_since(T0 + SECOND, T0 + SECOND)}), written)
    assert changed(written, None)


def test_a_report_with_a_wrong_field_names_it() -> None:
    manifest = report_manifest(AGREEMENT, "eu-west", [
        {"name": "api", "state": "Sideways", "since": None, "lastProbeTime": "2026-12-01T09:00:00Z"}])
    with pytest.raises(SpecError, match=r"spec.endpoints\[0\].state"):
        report_from_manifest(manifest)


def test_a_location_is_there_while_its_lease_is_held() -> None:
    lease = {"metadata": {"name": "sla-location-eu-west"},
             "spec": {"holderIdentity": "probe-0", "leaseDurationSeconds": 15,
                      "renewTime": "2026-12-01T09:00:00.000000Z"}}
    found = heartbeat_from_lease(lease)
    assert found == ("eu-west", Heartbeat(T0, 15 * SECOND))
    beat = found[1]
    assert beat.held(T0 + 15 * SECOND) and beat.seen(T0 + 10 * SECOND) == T0 + 10 * SECOND
    assert not beat.held(T0 + 16 * SECOND) and beat.seen(T0 + 16 * SECOND) == T0
    handed_back = {**lease, "spec": {**lease["spec"], "holderIdentity": None}}
    assert heartbeat_from_lease(handed_back) is None
    assert heartbeat_from_lease({**lease, "metadata": {"name": "sla-operator"}}) is None


def test_the_crd_documents_every_field() -> None:
    nodes = schema_nodes(openapi_schema("LocationReport"))
    assert [p for p, node in nodes if not node.get("description") and p != "metadata"] == []
    assert CRDS["LocationReport"]["spec"]["names"]["shortNames"] == ["lrep"]
