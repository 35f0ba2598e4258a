"""Support requests on a real API server: the CRD's schema, and the operator's figures.

A SupportRequest applied with kubectl gets its responseDue; one left unanswered goes late and
sla_support_response_breached_total rises; one answered late is breached, one answered in
time is met, and the agreement's status counts them per severity; a business-hours P4 opened
on a Friday afternoon in London before the October change is due on Monday at 16:30 GMT."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from support import CRDS, REPO, OperatorProcess, Target, get, wait_for

pytestmark = pytest.mark.e2e
Kubectl = Callable[..., Any]


@pytest.fixture(scope="module")
def namespace(kubectl: Kubectl) -> Iterator[str]:
    kubectl("apply", "-f", str(CRDS))
    kubectl("wait", "--for=condition=Established", "--timeout=60s",
            "crd/supportrequests.sla.dev", "crd/servicelevelagreements.sla.dev",
            "crd/incidents.sla.dev", "crd/maintenancewindows.sla.dev")
    name = f"e2e-sreq-{uuid.uuid4().hex[:6]}"
    kubectl("create", "namespace", name)
    yield name
    kubectl("delete", "namespace", name, "--wait=false", check=False)


def stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def support_request(name: str, severity: str, **spec: Any) -> dict[str, Any]:
    return {"apiVersion": "sla.dev/v1alpha1", "kind": "SupportRequest",
            "metadata": {"name": name},
            "spec": {"agreement": "helpdesk", "severity": severity, "title": f"Request {name}",
                     "customer": "acme", **spec}}


def agreement(url: str, **spec: Any) -> dict[str, Any]:
    return {"apiVersion": "sla.dev/v1alpha1", "kind": "ServiceLevelAgreement",
            "metadata": {"name": "helpdesk"},
            "spec": {"service": "Helpdesk", "objective": "99.9", "endpoints": [
                {"name": "api", "interval": "1s", "timeout": "500ms",
                 "http": {"url": url}}], **spec}}


def apply(kubectl: Kubectl, namespace: str, *documents: dict[str, Any],
          check: bool = True) -> Any:
    return kubectl("apply", "-n", namespace, "--validate=false", "-f", "-",
                   input=yaml.safe_dump_all(documents), check=check)


REJECTED: list[tuple[str, dict[str, Any], str]] = [
    ("severity-p5", support_request("bad-severity", "P5"), "spec.severity"),
    ("no-title", {**support_request("no-title", "P2"),
                  "spec": {"agreement": "helpdesk", "severity": "P2"}}, "spec.title"),
    ("opened-at-noon", support_request("bad-opened", "P2", openedAt="noon"), "spec.openedAt"),
    ("hours-from-9am", agreement("http://127.0.0.1:9/", supportHours={"from": "9am"}),
     "spec.supportHours.from"),
    ("hours-office", agreement("http://127.0.0.1:9/", supportHours={"hours": {"P4": "office"}}),
     "spec.supportHours.hours.P4"),
    ("hours-monday", agreement("http://127.0.0.1:9/", supportHours={"days": ["Monday"]}),
     "spec.supportHours.days"),
]


@pytest.mark.parametrize(("case", "document", "field"), REJECTED, ids=[c[0] for c in REJECTED])
def test_the_api_server_rejects_bad_support_manifests_naming_the_field(
        kubectl: Kubectl, namespace: str, case: str, document: dict[str, Any],
        field: str) -> None:
    result = apply(kubectl, namespace, document, check=False)
    assert result.returncode != 0, f"{case} was accepted"
    assert "is invalid" in result.stderr and field in result.stderr, result.stderr


def test_support_requests_are_in_the_sla_dev_category_with_their_columns(
        kubectl: Kubectl, namespace: str) -> None:
    apply(kubectl, namespace, support_request("listed", "P3", openedAt="2026-11-26T09:00:00Z"))
    names = kubectl("get", "sla-dev", "-n", namespace, "-o", "name").stdout.split()
    assert "supportrequest.sla.dev/listed" in names
    header = kubectl("get", "sreq", "-n", namespace).stdout.splitlines()[0].split()
    assert header == ["NAME", "AGREEMENT", "SEVERITY", "CUSTOMER", "OPENED", "DUE", "RESPONDED",
                      "BREACHED"]


def test_the_operator_writes_due_times_breaches_and_compliance_per_severity(
        kubectl: Kubectl, kubeconfig: str, namespace: str, tmp_path: Path) -> None:
    target = Target()
    operator = OperatorProcess(kubeconfig, namespace, tmp_path)
    now = datetime.now(UTC).replace(microsecond=0)
    opened = now - timedelta(hours=3)
    apply(kubectl, namespace, agreement(
        target.url, supportResponse={"P3": "20s", "P4": "8h"},
        supportHours={"timeZone": "Europe/London", "days": ["Mon", "Tue", "Wed", "Thu", "Fri"],
                      "from": "09:00", "to": "17:00", "hours": {"P4": "business"}}))
    apply(kubectl, namespace,
          support_request("in-time", "P2", openedAt=stamp(opened),
                          respondedAt=stamp(opened + timedelta(minutes=30))),
          support_request("unanswered", "P2", openedAt=stamp(opened)),
          # Friday 16:30 in London (BST); the clocks go back on Sunday: due Monday 16:30 GMT.
          support_request("friday", "P4", openedAt="2026-10-23T15:30:00Z"))
    operator.start()
    try:
        def status(name: str) -> dict[str, Any]:
            return dict((get(kubectl, namespace, f"sreq/{name}") or {}).get("status") or {})

        wait_for("the due times written", lambda: status("friday").get("responseDue"))
        assert status("friday")["responseDue"] == "2026-10-26T16:30:00Z"
        assert status("friday")["hours"] == "business"
        met = wait_for("in-time's status", lambda: status("in-time") or None)
        assert (met["responseBreached"], met["responseSeconds"]) == (False, 1800)
        assert met["responseDue"] == stamp(opened + timedelta(hours=1))

        # Answered late: breached.
        kubectl("patch", "-n", namespace, "sreq/unanswered", "--type=merge", "-p", json.dumps(
            {"spec": {"respondedAt": stamp(opened + timedelta(hours=2))}}))
        wait_for("the late answer breached", lambda: status("unanswered").get("responseSeconds"))
        assert status("unanswered")["responseBreached"] is True

        # Left unanswered past its 20 s target while the operator runs: late, and counted.
        kubectl("apply", "-n", namespace, "-f", "-", input=yaml.safe_dump(
            support_request("fresh", "P3")))  # opened: its creation time
        wait_for("fresh's due time", lambda: status("fresh").get("responseDue"))
        assert status("fresh")["responseBreached"] is False
        wait_for("fresh to go late", lambda: status("fresh").get("responseBreached"), 60)

        def breached_metric() -> float | None:
            text = operator.metrics() or ""
            for line in text.splitlines():
                if line.startswith("sla_support_response_breached_total{") \
                        and 'severity="P3"' in line and f'namespace="{namespace}"' in line:
                    return float(line.rsplit(" ", 1)[1]) or None
            return None

        assert wait_for("the breach counter to rise", breached_metric) == 1.0

        def support() -> dict[str, Any] | None:
            sla = get(kubectl, namespace, "sla/helpdesk") or {}
            figures = ((sla.get("status") or {}).get("currentPeriod") or {}).get("support")
            return figures if figures and "P3" in figures else None

        figures = wait_for("the agreement's compliance per severity", support)
        assert {k: figures["P2"][k] for k in ("requests", "respondedInTime", "breached")} == \
            {"requests": 2, "respondedInTime": 1, "breached": 1}
        assert figures["P2"]["worstResponseSeconds"] == 7200
        assert figures["P3"]["breached"] == 1

        # The customer's statement of the month reads the requests from the cluster.
        month = opened.strftime("%Y-%m")
        result = subprocess.run(
            [sys.executable, "-m", "sla_operator", "statement", "--namespace", namespace,
             "--agreement", "helpdesk", "--period", month, "-o", "json"],
            env={**os.environ, "KUBECONFIG": kubeconfig}, capture_output=True, text=True,
            timeout=120, cwd=REPO)
        assert result.returncode == 0, result.stderr
        document = json.loads(result.stdout)
        lines = {line["name"]: line for line in document["supportRequests"]}
        assert set(lines) == {"in-time", "unanswered", "fresh"}  # friday is October's
        assert (lines["unanswered"]["breached"], lines["in-time"]["breached"]) == (True, False)
        p2 = next(r for r in document["responses"] if r["severity"] == "P2")["supportRequests"]
        assert (p2["requests"], p2["inTime"], p2["breached"]) == (2, 1, 1)
    finally:
        operator.stop()
        target.close()


def test_a_request_naming_no_agreement_says_so_and_is_measured_once_it_exists(
        kubectl: Kubectl, kubeconfig: str, namespace: str, tmp_path: Path) -> None:
    target = Target()
    operator = OperatorProcess(kubeconfig, namespace, tmp_path)
    opened = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=10)
    apply(kubectl, namespace, support_request("orphan", "P2", agreement="helpdesk-eu",
                                              openedAt=stamp(opened)))
    operator.start()
    try:
        def status() -> dict[str, Any]:
            return dict((get(kubectl, namespace, "sreq/orphan") or {}).get("status") or {})

        said = wait_for("the orphan's status", lambda: status().get("message") or None)
        assert said.startswith("spec.agreement: no ServiceLevelAgreement 'helpdesk-eu' in "
                               f"namespace {namespace}")
        (ready,) = status()["conditions"]
        assert (ready["status"], ready["reason"]) == ("False", "AgreementNotFound")
        assert "responseDue" not in status()

        def warnings() -> list[dict[str, Any]] | None:
            events = json.loads(kubectl("get", "events", "-n", namespace, "-o", "json",
                                        "--field-selector", "involvedObject.name=orphan").stdout)
            found = [e for e in events["items"] if e["reason"] == "AgreementNotFound"]
            return found or None

        (event,) = wait_for("the Warning Event", warnings)
        assert (event["type"], event["involvedObject"]["kind"]) == ("Warning", "SupportRequest")

        arrived = agreement(target.url)
        arrived["metadata"]["name"] = "helpdesk-eu"
        apply(kubectl, namespace, arrived)
        measured = wait_for("the request measured", lambda: (s := status()).get("responseDue")
                            and s)
        assert measured["responseDue"] == stamp(opened + timedelta(hours=1))
        assert measured["message"] == "" and measured["conditions"][0]["status"] == "True"
        assert measured["responseBreached"] is False
    finally:
        operator.stop()
        target.close()
