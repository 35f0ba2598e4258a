"""`kubectl sla` against a real API server, run as an on-call engineer runs it: the installed
`kubectl-sla` console script, and `kubectl sla` found by kubectl on PATH."""

from __future__ import annotations

import html
import json
import os
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from support import OperatorProcess, Target, get, namespace_with_crds, parse_time, wait_for

pytestmark = pytest.mark.e2e
Kubectl = Callable[..., Any]
BIN = Path(sys.executable).parent
PLUGIN = str(BIN / "kubectl-sla")


@pytest.fixture
def namespace(kubectl: Kubectl) -> Iterator[str]:
    with namespace_with_crds(kubectl, "e2e-plugin") as name:
        yield name


@pytest.fixture
def sla(kubeconfig: str) -> Callable[..., subprocess.CompletedProcess[str]]:
    """Runs the installed `kubectl-sla` (or, with via_kubectl, `kubectl sla`) in a terminal-less
    environment whose KUBECONFIG is the cluster under test."""
    env = {**os.environ, "KUBECONFIG": kubeconfig, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"}
    env.pop("NO_COLOR", None)

    def run(*args: str, via_kubectl: bool = False, by_env: dict[str, str] | None = None
            ) -> subprocess.CompletedProcess[str]:
        command = ["kubectl", "sla", *args] if via_kubectl else [PLUGIN, *args]
        return subprocess.run(command, env={**env, **(by_env or {})}, text=True,
                              capture_output=True, timeout=60)
    return run


def stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def file_incident(kubectl: Kubectl, namespace: str, minutes_ago: int = 20, **spec: Any) -> str:
    name = f"manual-{uuid.uuid4().hex[:6]}"
    body = {"apiVersion": "sla.dev/v1alpha1", "kind": "Incident",
            "metadata": {"name": name, "namespace": namespace},
            "spec": {"agreement": "payments-api", "severity": "P2", "origin": "manual",
                     "title": "Card payments time out for a third of requests",
                     "startedAt": stamp(datetime.now(UTC) - timedelta(minutes=minutes_ago)),
                     **spec}}
    kubectl("apply", "-f", "-", input=yaml.safe_dump(body))
    return name


def spec_of(kubectl: Kubectl, namespace: str, name: str) -> dict[str, Any]:
    return dict(get(kubectl, namespace, f"incident/{name}")["spec"])


def test_update_resolve_and_exclude_record_who_and_when_through_kubectl(
        kubectl: Kubectl, namespace: str, sla: Callable[..., Any]) -> None:
    name = file_incident(kubectl, namespace)
    done = sla("update", name, "-n", namespace, "--state", "identified", "-m",
               "A bad deploy of the gateway", "--at", "5m ago", via_kubectl=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout == f"incident.sla.dev/{name} updated\n"
    resolved_at = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(minutes=1)
    local = resolved_at.astimezone().strftime("%Y-%m-%d %H:%M")  # as typed, in local time
    done = sla("resolve", name, "-n", namespace, "-m", "Rolled back", "--at", local,
               via_kubectl=True)
    assert done.returncode == 0, done.stderr
    done = sla("exclude", name, "-n", namespace, "--reason", "thirdParty", "-m",
               "The card network was down", "--by", "carol", via_kubectl=True)
    assert done.returncode == 0, done.stderr

    spec = spec_of(kubectl, namespace, name)
    assert spec["state"] == "resolved" and spec["resolvedAt"] == stamp(resolved_at)
    assert spec["exclusion"] == {"reason": "thirdParty", "note": "The card network was down"}
    entries = [(u["state"], u["message"], u.get("by")) for u in spec["updates"]]
    assert entries == [("identified", "A bad deploy of the gateway", "admin"),
                       ("resolved", "Rolled back", "admin"),
                       ("resolved", "Excluded from the agreement (thirdParty)", "carol")]
    first = parse_time(spec["updates"][0]["time"])
    assert abs(first - (datetime.now(UTC) - timedelta(minutes=5))) < timedelta(seconds=30)
    listed = sla("incidents", "-n", namespace)
    assert "resolved (thirdParty)" in listed.stdout and "\x1b[" not in listed.stdout
    kubectl("apply", "-n", namespace, "-f", "-", input=yaml.safe_dump(agreement("http://127.0.0.1:9/")))
    month = datetime.now(UTC).strftime("%Y-%m")
    made = sla("statement", "-n", namespace, "--period", month, "-o", "markdown", via_kubectl=True)
    assert made.returncode == 0, made.stderr
    # without an operator every second is unmonitored; the incident is listed all the same
    assert f"Card payments time out for a third of requests ({name})" in made.stdout.replace("\\", "")
    assert all(len(line) <= 100 for line in listed.stdout.splitlines())


def test_two_people_acknowledging_at_once_both_succeed_and_every_update_survives(
        kubectl: Kubectl, namespace: str, sla: Callable[..., Any]) -> None:
    name = file_incident(kubectl, namespace)
    people = ["alice", "bob", "carol", "dave", "erin", "frank"]
    with ThreadPoolExecutor(len(people)) as pool:
        runs = list(pool.map(lambda who: sla("ack", name, "-n", namespace, "--by", who,
                                             "-m", f"{who} is on it"), people))
    assert [r.returncode for r in runs] == [0] * len(people), [r.stderr for r in runs]
    spec = spec_of(kubectl, namespace, name)
    assert sorted(u["message"] for u in spec["updates"]) == sorted(f"{p} is on it" for p in people)
    first = spec["acknowledgedBy"]
    assert first in people
    # everyone but the first was told who had acknowledged it already
    assert sum("already acknowledged by" in r.stderr for r in runs) == len(people) - 1


def test_a_conflicting_edit_is_decided_again_on_the_fresh_object(
        kubectl: Kubectl, namespace: str, kubeconfig: str) -> None:
    from sla_operator.plugin import edits
    from sla_operator.plugin.cluster import Cluster, connect

    name = file_incident(kubectl, namespace)
    cluster = Cluster(connect(kubeconfig, None))
    seen: list[str] = []

    def decide(incident: dict[str, Any]) -> tuple[list[dict[str, Any]], None]:
        seen.append(incident["metadata"]["resourceVersion"])
        if len(seen) == 1:  # someone else writes between our read and our write
            kubectl("patch", "incident", name, "-n", namespace, "--type=json", "-p", json.dumps(
                [{"op": "add", "path": "/spec/updates", "value": [
                    {"time": stamp(datetime.now(UTC)), "message": "theirs", "by": "bob"}]}]))
        edit = edits.update(incident, edits.Author("alice", datetime.now(UTC)), "mine", "monitoring")
        return edit.ops, None

    written, _ = cluster.edit("incidents", namespace, name, decide)
    assert len(seen) == 2 and seen[0] != seen[1]
    assert [u["message"] for u in written["spec"]["updates"]] == ["theirs", "mine"]
    assert spec_of(kubectl, namespace, name)["state"] == "monitoring"


def test_json_and_yaml_output_parse(kubectl: Kubectl, namespace: str,
                                    sla: Callable[..., Any]) -> None:
    name = file_incident(kubectl, namespace)
    acked = sla("ack", name, "-n", namespace, "-o", "json")
    assert acked.returncode == 0, acked.stderr
    assert json.loads(acked.stdout)["spec"]["acknowledgedBy"] == "admin"
    listed = json.loads(sla("incidents", "-n", namespace, "--open", "-o", "json").stdout)
    assert [i["metadata"]["name"] for i in listed["items"]] == [name]
    again = yaml.safe_load(sla("incidents", "-A", "-o", "yaml").stdout)
    assert name in [i["metadata"]["name"] for i in again["items"]]


def test_bad_input_exits_2_with_a_clear_message_and_a_refusal_exits_1(
        kubectl: Kubectl, namespace: str, sla: Callable[..., Any]) -> None:
    name = file_incident(kubectl, namespace)
    for args, said in [
        (("ack", name, "-n", namespace, "--at", "yesterday-ish"), "'yesterday-ish' is not a time"),
        (("ack", name, "-n", namespace, "--at", "in 1h"), "is in the future"),
        (("exclude", name, "-n", namespace, "--reason", "aliens", "-m", "x"), "invalid choice"),
        (("update", name, "-n", namespace), "-m/--message"),
        (("-A", "ack", name), "-A is for listing"),
        (("ack", name, "-A"), "unrecognized arguments: -A"),
    ]:
        result = sla(*args, via_kubectl=True)
        assert result.returncode == 2, (args, result.stderr)
        assert said in result.stderr and "--help' for usage" in result.stderr
    missing = sla("ack", "no-such-incident", "-n", namespace)
    assert missing.returncode == 1 and '"no-such-incident" not found' in missing.stderr
    assert sla("resolve", name, "-n", namespace, "-m", "ok").returncode == 0
    twice = sla("resolve", name, "-n", namespace, "-m", "ok")
    assert twice.returncode == 1 and "already resolved" in twice.stderr
    assert spec_of(kubectl, namespace, name)["updates"][-1]["message"] == "ok"


def test_context_and_kubeconfig_flags_choose_the_cluster_and_namespace(
        kubectl: Kubectl, namespace: str, kubeconfig: str, sla: Callable[..., Any],
        tmp_path: Path) -> None:
    name = file_incident(kubectl, namespace)
    config = yaml.safe_load(Path(kubeconfig).read_text())
    working = dict(config["contexts"][0], name="on-call")
    working["context"] = {**working["context"], "namespace": namespace}
    config["contexts"] = [*config["contexts"], working]
    path = tmp_path / "kubeconfig"
    path.write_text(yaml.safe_dump(config))
    listed = sla("incidents", "--kubeconfig", str(path), "--context", "on-call")
    assert listed.returncode == 0 and name in listed.stdout, listed.stderr
    wrong = sla("incidents", "--kubeconfig", str(path), "--context", "nowhere")
    assert wrong.returncode == 1 and "context 'nowhere' not found" in wrong.stderr


def test_maintenance_start_end_and_schedule(kubectl: Kubectl, namespace: str,
                                            sla: Callable[..., Any]) -> None:
    kubectl("apply", "-n", namespace, "-f", "-", input=yaml.safe_dump(agreement("http://127.0.0.1:9/")))
    started = sla("maintenance", "start", "payments-api", "-n", namespace, "--for", "30m",
                  "-m", "Database failover drill", "--name", "drill", via_kubectl=True)
    assert started.returncode == 0, started.stderr
    ended = sla("maintenance", "end", "drill", "-n", namespace)
    assert ended.returncode == 0, ended.stderr
    window = get(kubectl, namespace, "mw/drill")
    assert parse_time(window["spec"]["end"]) <= datetime.now(UTC)
    assert window["metadata"]["annotations"]["sla.dev/created-by"] == "admin"
    planned = sla("maintenance", "schedule", "payments-api", "-n", namespace, "--start",
                  "2030-01-05 02:00 Europe/London", "--for", "2h", "-o", "name")
    assert planned.stdout == "maintenancewindow.sla.dev/payments-api-maintenance-20300105-0200\n"
    typo = sla("maintenance", "start", "payments-apj", "-n", namespace)
    assert typo.returncode == 1 and "not found" in typo.stderr


def agreement(url: str, name: str = "payments-api") -> dict[str, Any]:
    return {"apiVersion": "sla.dev/v1alpha1", "kind": "ServiceLevelAgreement",
            "metadata": {"name": name},
            "spec": {"service": "Payments API", "objective": "99.9",
                     "supportResponse": {"P1": "20s", "P2": "20s"},
                     "endpoints": [{"name": "api", "interval": "1s", "timeout": "500ms",
                                    "failureThreshold": 2, "successThreshold": 1,
                                    "http": {"url": url}}]}}


def test_ack_stops_the_response_clock_and_status_lists_every_agreement(
        kubectl: Kubectl, namespace: str, kubeconfig: str, sla: Callable[..., Any],
        tmp_path: Path) -> None:
    target = Target()
    target.set_healthy(False)
    operator = OperatorProcess(kubeconfig, namespace, tmp_path)
    try:
        kubectl("apply", "-n", namespace, "-f", "-", input=yaml.safe_dump(agreement(target.url)))
        operator.start()
        incident = wait_for("the operator to open an incident", lambda: next(
            (i for i in get(kubectl, namespace, "incidents")["items"]), None))
        name = incident["metadata"]["name"]
        acked = sla("ack", name, "-n", namespace, "-m", "Looking at the gateway",
                    via_kubectl=True)
        assert acked.returncode == 0, acked.stderr
        spec = spec_of(kubectl, namespace, name)
        assert spec["acknowledgedBy"] == "admin"
        assert parse_time(spec["acknowledgedAt"]) <= datetime.now(UTC)
        assert spec["updates"][-1]["message"] == "Looking at the gateway"
        due = wait_for("responseDue", lambda: get(kubectl, namespace, f"incident/{name}")
                       ["status"]["responseDue"])
        wait_for("the response target to pass", lambda: datetime.now(UTC) > parse_time(due)
                 + timedelta(seconds=3), timeout=60)
        assert get(kubectl, namespace, f"incident/{name}")["status"]["responseBreached"] is False
        wait_for("the agreement's status", lambda: (get(
            kubectl, namespace, "sla/payments-api")["status"]["currentPeriod"]["availability"]))
        table = sla("status", "-A", via_kubectl=True).stdout
        row = next(line for line in table.splitlines() if line.startswith(namespace)).split()
        # NAMESPACE NAME STATE OBJECTIVE AVAILABILITY BUDGET OPEN SERVICE
        assert row[1:4] == ["payments-api", "Down", "99.9%"] and row[4].endswith("%")
        assert row[6] == "1"
        summary = json.loads(sla("status", "-A", "-o", "json").stdout)
        mine = [s for s in summary["items"] if s["namespace"] == namespace]
        assert mine[0]["openIncidents"] == 1 and mine[0]["budgetRemainingPercent"] is not None
    finally:
        operator.stop()
        target.close()


def test_update_and_exclude_by_a_named_person_show_on_the_status_page_and_in_the_statement(
        kubectl: Kubectl, namespace: str, kubeconfig: str, sla: Callable[..., Any],
        tmp_path: Path) -> None:
    target = Target()
    target.set_healthy(False)
    operator = OperatorProcess(kubeconfig, namespace, tmp_path, status_page=True)
    manifest = agreement(target.url)
    manifest["spec"]["statusPage"] = {"public": True}
    try:
        kubectl("apply", "-n", namespace, "-f", "-", input=yaml.safe_dump(manifest))
        operator.start()
        incident = wait_for("the operator to open an incident", lambda: next(
            (i for i in get(kubectl, namespace, "incidents")["items"]), None))
        name = incident["metadata"]["name"]
        message = "The card network refuses our connections; we are in touch with them"
        updated = sla("update", name, "-n", namespace, "--state", "identified", "-m", message,
                      "--by", "dana", via_kubectl=True)
        assert updated.returncode == 0, updated.stderr
        excluded = sla("exclude", name, "-n", namespace, "--reason", "thirdParty", "-m",
                       "Card network outage, their case 4711", "--by", "erin", via_kubectl=True)
        assert excluded.returncode == 0, excluded.stderr
        spec = spec_of(kubectl, namespace, name)
        entry = spec["updates"][-1]
        assert (entry["by"], entry["message"]) == ("erin", "Excluded from the agreement (thirdParty)")
        assert abs(parse_time(entry["time"]) - datetime.now(UTC)) < timedelta(seconds=30)

        def on_the_page() -> dict[str, Any] | None:
            text = operator.status_page("/api/v1/status")
            listed = json.loads(text)["incidents"] if text else []
            mine = [i for i in listed if i["name"] == name]
            return mine[0] if mine and mine[0]["excluded"] else None

        shown = wait_for("the exclusion on the status page", on_the_page)
        assert shown["excluded"] == "thirdParty" and shown["state"] == "identified"
        assert message in [u["message"] for u in shown["updates"]]
        page = html.unescape(operator.status_page("/") or "")
        assert message in page
        assert "not counted against the agreement: a third party's outage" in page
        for path in ("/", "/api/v1/status", "/feed.atom"):  # the note stays internal
            assert "4711" not in (operator.status_page(path) or ""), path

        month = datetime.now(UTC).strftime("%Y-%m")
        made = sla("statement", "-n", namespace, "--period", month, "-o", "json",
                   via_kubectl=True)
        assert made.returncode == 0, made.stderr
        line = next(i for i in json.loads(made.stdout)["incidents"] if i["name"] == name)
        part = next(p for p in line["notCounted"] if p["reason"] == "thirdParty")
        assert part["by"] == "erin" and part["at"] == entry["time"] and part["seconds"] > 0
        assert "Card network outage, their case 4711" in part["explanation"]
        text = sla("statement", "-n", namespace, "--period", month, "-o", "markdown").stdout
        assert f"by erin at {entry['time']}" in text.replace("\\", "")
    finally:
        operator.stop()
        target.close()


def test_support_requests_opened_answered_and_resolved_with_kubectl_sla(
        kubectl: Kubectl, namespace: str, kubeconfig: str, sla: Callable[..., Any],
        tmp_path: Path) -> None:
    target = Target()
    operator = OperatorProcess(kubeconfig, namespace, tmp_path)
    manifest = agreement(target.url)
    manifest["spec"]["supportResponse"] = {"P2": "20s", "P3": "20s"}
    try:
        kubectl("apply", "-n", namespace, "-f", "-", input=yaml.safe_dump(manifest))
        operator.start()
        opened = sla("request", "open", "payments-api", "-n", namespace, "--severity", "P3",
                     "--title", "Refund webhooks arrive late", "--customer", "acme",
                     "--reference", "https://tickets.example.com/1042", "--name", "acme-1042",
                     "--by", "frank", via_kubectl=True)
        assert (opened.returncode, opened.stdout) == (0, "supportrequest.sla.dev/acme-1042 opened\n"), \
            opened.stderr
        late = sla("request", "open", "payments-api", "-n", namespace, "--severity", "P2",
                   "--title", "Invoices show the wrong VAT", "--at", "2m ago", "-o", "name")
        assert late.returncode == 0, late.stderr
        assert late.stdout == "supportrequest.sla.dev/payments-api-1\n"
        unanswered = "payments-api-1"

        def status(name: str) -> dict[str, Any]:
            return dict((get(kubectl, namespace, f"sreq/{name}") or {}).get("status") or {})

        due = parse_time(wait_for("the operator's due time", lambda: status("acme-1042")
                                  .get("responseDue")))
        request = get(kubectl, namespace, "sreq/acme-1042")
        assert due == parse_time(request["spec"]["openedAt"]) + timedelta(seconds=20)
        assert request["metadata"]["annotations"]["sla.dev/created-by"] == "frank"
        responded = sla("request", "respond", "acme-1042", "-n", namespace, "--by", "grace",
                        via_kubectl=True)
        assert responded.returncode == 0, responded.stderr
        spec = get(kubectl, namespace, "sreq/acme-1042")["spec"]
        assert spec["respondedBy"] == "grace" and parse_time(spec["respondedAt"]) < due
        again = sla("request", "respond", "acme-1042", "-n", namespace, "--by", "heidi")
        assert again.returncode == 0 and "already responded to by grace" in again.stderr
        assert get(kubectl, namespace, "sreq/acme-1042")["spec"]["respondedBy"] == "grace"

        wait_for("the response target to pass", lambda: datetime.now(UTC) > due
                 + timedelta(seconds=3), timeout=60)
        answered = wait_for("the response measured", lambda: status("acme-1042")
                            if status("acme-1042").get("responseSeconds") is not None else None)
        assert answered["responseBreached"] is False and answered["responseSeconds"] < 20
        assert wait_for("the unanswered one late", lambda: status(unanswered)
                        .get("responseBreached"))

        table = sla("request", "list", "-A", via_kubectl=True).stdout
        rows = {line.split()[1]: line for line in table.splitlines()
                if line.startswith(namespace + " ")}
        assert set(rows) == {"acme-1042", unanswered}
        assert "OVERDUE" in rows[unanswered] and " no " in rows["acme-1042"]
        mine = sla("request", "list", "-n", namespace).stdout
        assert all(len(line) <= 100 for line in mine.splitlines()), mine
        assert "\x1b[" not in mine and "after " in mine
        resolved = sla("request", "resolve", "acme-1042", "-n", namespace, "-o", "json")
        assert resolved.returncode == 0, resolved.stderr
        assert json.loads(resolved.stdout)["spec"]["resolvedBy"] == "admin"
        twice = sla("request", "resolve", "acme-1042", "-n", namespace)
        assert twice.returncode == 1 and "already resolved" in twice.stderr
        still_open = json.loads(sla("request", "list", "-n", namespace, "--open", "-o",
                                    "json").stdout)
        assert [r["metadata"]["name"] for r in still_open["items"]] == [unanswered]
        typo = sla("request", "open", "payments-apj", "-n", namespace, "--severity", "P2",
                   "--title", "x")
        assert typo.returncode == 1 and "not found" in typo.stderr
    finally:
        operator.stop()
        target.close()
