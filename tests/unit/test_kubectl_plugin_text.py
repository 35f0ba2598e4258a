"""`kubectl sla`'s pure parts: times as people type them, tables at 100 columns, colours only
for a terminal, the incident edits, the command line's exit codes and completion."""

from __future__ import annotations

import io
import re
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from sla_operator.plugin import edits, support, views, windows
from sla_operator.plugin.completion import candidates, script
from sla_operator.plugin.main import main
from sla_operator.plugin.table import Cell, output_width, render, use_colour
from sla_operator.plugin.times import TimeError, parse_span, parse_when

NOW = datetime(2026, 12, 7, 6, 30, 15, 123456, tzinfo=UTC)
PARIS = ZoneInfo("Europe/Paris")
ANSI = re.compile(r"\x1b\[[0-9;]*m")


@pytest.mark.parametrize(("text", "expected"), [
    ("now", datetime(2026, 12, 7, 6, 30, 15, tzinfo=UTC)),
    ("  NOW ", datetime(2026, 12, 7, 6, 30, 15, tzinfo=UTC)),
    ("10m ago", datetime(2026, 12, 7, 6, 20, 15, tzinfo=UTC)),
    ("1h30m ago", datetime(2026, 12, 7, 5, 0, 15, tzinfo=UTC)),
    ("2 hours ago", datetime(2026, 12, 7, 4, 30, 15, tzinfo=UTC)),
    ("in 2h", datetime(2026, 12, 7, 8, 30, 15, tzinfo=UTC)),
    ("2026-12-07T06:21:00Z", datetime(2026, 12, 7, 6, 21, tzinfo=UTC)),
    ("2026-12-07T07:21:00+01:00", datetime(2026, 12, 7, 6, 21, tzinfo=UTC)),
    ("2026-12-07 06:21 UTC", datetime(2026, 12, 7, 6, 21, tzinfo=UTC)),
    ("2026-12-07 06:21 +0100", datetime(2026, 12, 7, 5, 21, tzinfo=UTC)),
    ("2026-12-07 06:21 Europe/London", datetime(2026, 12, 7, 6, 21, tzinfo=UTC)),
    # without a zone: the person's local time (Paris here, UTC+1 in December)
    ("2026-12-07 06:21", datetime(2026, 12, 7, 5, 21, tzinfo=UTC)),
    ("2026-12-07T06:21:30", datetime(2026, 12, 7, 5, 21, 30, tzinfo=UTC)),
    ("2026-07-01 06:21", datetime(2026, 7, 1, 4, 21, tzinfo=UTC)),  # summer time: UTC+2
    ("07:05", datetime(2026, 12, 7, 6, 5, tzinfo=UTC)),
    ("7:05", datetime(2026, 12, 7, 6, 5, tzinfo=UTC)),
])
def test_times_are_read_as_people_type_them(text: str, expected: datetime) -> None:
    assert parse_when(text, NOW, PARIS) == expected


@pytest.mark.parametrize("text", ["yesterday", "10 parsecs ago", "2026-13-07 06:21",
                                  "25:00", "2026-12-07 06:21 Mars/Olympus", "", "0m ago"])
def test_a_time_that_cannot_be_read_says_what_is_accepted(text: str) -> None:
    with pytest.raises(TimeError, match="not a"):
        parse_when(text, NOW, PARIS)


def test_spans_take_units_and_words() -> None:
    assert parse_span("1h30m") == timedelta(minutes=90)
    assert parse_span("90 seconds") == timedelta(seconds=90)
    assert parse_span("1d") == timedelta(days=1)
    with pytest.raises(TimeError):
        parse_span("1 fortnight")


def incident(**spec: object) -> dict[str, object]:
    base = {"agreement": "payments-api", "severity": "P1", "state": "investigating",
            "title": "Payments API is down: api, webhooks failing with connection refused "
                     "from the load balancer in every zone",
            "startedAt": "2026-12-07T06:12:00Z", "origin": "automatic",
            "updates": [{"time": "2026-12-07T06:12:00Z", "message": "api failing"}]}
    return {"metadata": {"name": "payments-api-20261207-0612", "namespace": "payments",
                         "resourceVersion": "7"}, "spec": {**base, **spec}, "status": {}}


def test_incident_tables_fit_100_columns_and_never_cut_names() -> None:
    many = [incident(), incident(state="resolved", resolvedAt="2026-12-07T06:19:00Z",
                                 acknowledgedAt="2026-12-07T06:15:00Z", acknowledgedBy="alice",
                                 exclusion={"reason": "thirdParty", "note": "upstream"})]
    for namespaces in (False, True):
        summaries = [views.incident_summary(i, NOW) for i in many]
        text = render(*views.incidents_table(summaries, namespaces), width=100,
                      shrink=views.INCIDENT_SHRINK)
        lines = text.splitlines()
        assert all(len(line) <= 100 for line in lines), text
        assert lines[0].split()[:2] == (["NAMESPACE", "NAME"] if namespaces else ["NAME", "AGREEMENT"])
        assert "payments-api-20261207-0612" in lines[1]
        assert "resolved (thirdParty)" in lines[2] and "alice" in lines[2]
        assert "…" in lines[1]  # the title gave way
        assert "\x1b" not in text


def test_status_table_fits_100_columns_and_counts_open_incidents() -> None:
    sla = {"metadata": {"name": "payments-api", "namespace": "payments"},
           "spec": {"service": "Payments API for every merchant in every region of the world",
                    "objective": "99.9"},
           "status": {"state": "Down", "currentPeriod": {
               "label": "2026-12", "availability": "99.8123",
               "errorBudget": {"remainingPercent": "12.50"}}}}
    summaries = views.agreement_summaries([sla], [incident(), incident(state="resolved")])
    assert summaries[0]["openIncidents"] == 1
    assert summaries[0]["budgetRemainingPercent"] == "12.50"
    text = render(*views.status_table(summaries, True), width=100, colour=True,
                  shrink=views.STATUS_SHRINK)
    assert all(len(ANSI.sub("", line)) <= 100 for line in text.splitlines())
    assert "\x1b[31mDown\x1b[0m" in text  # red on a terminal
    assert "99.8123%" in text and "12.50%" in text


def test_columns_stay_aligned_with_colours() -> None:
    text = render(["A", "B"], [[Cell("Up", "green"), Cell("x")], [Cell("Down", "red"), Cell("y")]],
                  colour=True)
    plain = [ANSI.sub("", line) for line in text.splitlines()]
    assert [line.index(c) for line, c in zip(plain[1:], "xy", strict=True)] == [6, 6]


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_colour_only_on_a_terminal_and_never_with_no_color() -> None:
    assert use_colour(Tty(), {"TERM": "xterm"})
    assert not use_colour(io.StringIO(), {"TERM": "xterm"})
    assert not use_colour(Tty(), {"TERM": "xterm", "NO_COLOR": ""})
    assert not use_colour(Tty(), {"TERM": "dumb"})
    assert output_width(io.StringIO(), {}) == 100
    assert output_width(io.StringIO(), {"COLUMNS": "132"}) == 132


def author(minutes_ago: int = 0) -> edits.Author:
    return edits.Author("alice", NOW - timedelta(minutes=minutes_ago))


def test_ack_sets_who_and_when_and_appends_to_the_timeline() -> None:
    edit = edits.acknowledge(incident(), author(5), None)
    assert edit.ops == [
        {"op": "add", "path": "/spec/acknowledgedAt", "value": "2026-12-07T06:25:15Z"},
        {"op": "add", "path": "/spec/acknowledgedBy", "value": "alice"},
        {"op": "add", "path": "/spec/updates/-", "value": {
            "time": "2026-12-07T06:25:15Z", "state": "investigating",
            "message": "Acknowledged by alice", "by": "alice"}}]


def test_a_second_ack_keeps_the_first_and_still_records_the_second_person() -> None:
    edit = edits.acknowledge(incident(acknowledgedAt="2026-12-07T06:20:00Z",
                                      acknowledgedBy="bob"), author(), "on it too")
    assert [op["path"] for op in edit.ops] == ["/spec/updates/-"]
    assert edit.ops[0]["value"]["message"] == "on it too"
    assert edit.note is not None and "bob" in edit.note


def test_a_timeline_missing_is_created_before_the_entry() -> None:
    edit = edits.update(incident(updates=None), author(), "rolling back", "identified")
    assert edit.ops[:2] == [{"op": "add", "path": "/spec/state", "value": "identified"},
                            {"op": "add", "path": "/spec/updates", "value": []}]


def test_resolve_refuses_a_resolved_incident_and_a_time_before_it_started() -> None:
    with pytest.raises(edits.EditRefused, match="already resolved"):
        edits.resolve(incident(state="resolved", resolvedAt="2026-12-07T06:20:00Z"), author(), "x")
    with pytest.raises(edits.EditRefused, match="before it started"):
        edits.resolve(incident(), author(60), "x")
    done = edits.resolve(incident(), author(), "fixed")
    assert done.ops[1] == {"op": "add", "path": "/spec/resolvedAt", "value": "2026-12-07T06:30:15Z"}
    assert done.note is not None  # an automatic incident: the operator's part is said


def test_update_does_not_reopen_a_resolved_incident() -> None:
    with pytest.raises(edits.EditRefused, match="not reopened"):
        edits.update(incident(state="resolved"), author(), "x", "monitoring")
    assert len(edits.update(incident(state="resolved"), author(), "postmortem", None).ops) == 1


def test_exclude_records_reason_note_and_who() -> None:
    edit = edits.exclude(incident(), author(), "thirdParty", "cloud LB outage")
    assert edit.ops[0]["value"] == {"reason": "thirdParty", "note": "cloud LB outage"}
    assert edit.ops[1]["value"]["by"] == "alice"


def test_maintenance_end_refuses_windows_not_running() -> None:
    window = windows.window_manifest("payments", "w", "payments-api", NOW + timedelta(hours=1),
                                     NOW + timedelta(hours=2), "db", "alice")
    with pytest.raises(edits.EditRefused, match="kubectl delete mw w"):
        windows.end_now(window, NOW)
    assert windows.end_now(window, NOW + timedelta(minutes=90)) == [
        {"op": "replace", "path": "/spec/end", "value": "2026-12-07T08:00:15Z"}]
    with pytest.raises(edits.EditRefused, match="before it starts"):
        windows.window_manifest("payments", "w", "a", NOW, NOW, "db", "alice")


@pytest.mark.parametrize("argv", [["ack"], ["nope"], ["exclude", "x", "--reason", "aliens", "-m", "n"],
                                  ["update", "x"], ["status", "-o", "xml"]])
def test_usage_errors_exit_2_with_a_hint(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as stopped:
        main(argv)
    assert stopped.value.code == 2
    error = capsys.readouterr().err
    assert error.startswith("error: ") and "--help' for usage" in error


def test_a_time_nobody_can_read_exits_2_before_reaching_the_cluster(
        capsys: pytest.CaptureFixture[str], tmp_path: object, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("sla_operator.plugin.main.connect", lambda *_: _Offline())
    monkeypatch.setattr("sla_operator.plugin.main.Cluster", lambda c: _Offline())
    assert main(["ack", "x", "--at", "half past six"]) == 2
    assert "'half past six' is not a time" in capsys.readouterr().err


class _Offline:
    namespace, user = "default", "alice"
    connection = None


def test_completion_offers_commands_flags_values_and_names() -> None:
    def names(kind: str, flags: dict[str, str]) -> list[str]:
        return {"incidents": ["payments-api-1", "search-1"]}.get(kind, [])
    assert candidates(["a"], names) == (["ack"], 4)
    assert candidates(["ack", "pay"], names) == (["payments-api-1"], 4)
    assert candidates(["ack", "-n", "x", ""], names)[0] == ["payments-api-1", "search-1"]
    assert candidates(["exclude", "i", "--reason", "t"], names) == (["thirdParty"], 4)
    assert "--all-namespaces" in candidates(["status", "--a"], names)[0]
    assert candidates(["maintenance", ""], names)[0] == ["start", "schedule", "end"]
    assert candidates(["--kubeconfig", ""], names) == ([], 0)  # file names
    assert "complete -F _kubectl_sla kubectl-sla" in script("bash")
    assert "compdef _kubectl_sla kubectl-sla" in script("zsh")


def test_the_krew_launcher_runs_the_installed_plugin_and_the_manifest_names_it() -> None:
    import subprocess
    import sys
    from pathlib import Path

    import yaml

    krew = Path(__file__).resolve().parents[2] / "plugins" / "krew"
    shown = subprocess.run([str(krew / "kubectl-sla"), "--help"], capture_output=True, text=True,
                           env={"SLA_PYTHON": sys.executable, "PATH": "/usr/bin:/bin"}, timeout=60)
    assert shown.returncode == 0 and "usage: kubectl sla" in shown.stdout
    manifest = yaml.safe_load((krew / "sla.yaml").read_text())
    assert manifest["kind"] == "Plugin" and manifest["metadata"]["name"] == "sla"
    assert manifest["spec"]["platforms"][0]["bin"] == "kubectl-sla"


def test_exclude_keeps_the_note_out_of_the_public_timeline() -> None:
    edit = edits.exclude(incident(), author(), "thirdParty", "AWS eu-west-1 ELB, case 4711")
    assert edit.ops[1]["value"]["message"] == "Excluded from the agreement (thirdParty)"
    assert "4711" not in str(edit.ops[1:])  # the status page shows the timeline to everyone


def support_request(**spec: object) -> dict[str, object]:
    base = {"agreement": "payments-api", "severity": "P2", "customer": "Acme Corporation Ltd",
            "title": "Webhooks for refunds arrive hours late for every merchant in the EU",
            "openedAt": "2026-12-07T06:00:00Z"}
    return {"metadata": {"name": "acme-1042", "namespace": "payments", "resourceVersion": "3"},
            "spec": {**base, **spec},
            "status": {"responseDue": "2026-12-07T07:00:00Z", "responseBreached": False}}


def test_request_open_writes_what_the_operator_reads_and_who_filed_it() -> None:
    opened = NOW - timedelta(minutes=30)
    body = support.request_manifest("payments", support.request_name("Payments_API", 3),
                                    "payments-api", "P2", " Refund webhooks late ", opened,
                                    "alice", customer="acme", reference=None)
    assert body["metadata"]["name"] == "payments-api-3"
    taken = ["payments-api-2", "payments-api-10", "payments-api-x", "payments-api-2-1", "other-11"]
    assert support.next_number("payments-api", taken) == 11
    assert support.next_number("payments-api", []) == 1
    assert body["metadata"]["annotations"] == {"sla.dev/created-by": "alice"}
    assert body["spec"] == {"agreement": "payments-api", "severity": "P2",
                            "title": "Refund webhooks late", "openedAt": "2026-12-07T06:00:15Z",
                            "customer": "acme"}
    with pytest.raises(edits.EditRefused, match="--title"):
        support.request_manifest("payments", "x", "payments-api", "P2", "  ", opened, "alice")


def test_respond_sets_who_and_when_and_keeps_the_first_reply() -> None:
    edit = support.respond(support_request(), author(10))
    assert edit.ops == [
        {"op": "add", "path": "/spec/respondedAt", "value": "2026-12-07T06:20:15Z"},
        {"op": "add", "path": "/spec/respondedBy", "value": "alice"}]
    again = support.respond(support_request(respondedAt="2026-12-07T06:05:00Z",
                                            respondedBy="bob"), author())
    assert again.ops == [] and again.note is not None and "bob" in again.note
    with pytest.raises(edits.EditRefused, match="before it was opened"):
        support.respond(support_request(), author(60))


def test_resolve_records_who_refuses_twice_and_says_when_nobody_answered() -> None:
    done = support.resolve(support_request(respondedAt="2026-12-07T06:05:00Z"), author())
    assert done.ops[1] == {"op": "add", "path": "/spec/resolvedBy", "value": "alice"}
    assert done.note is None
    unanswered = support.resolve(support_request(), author())
    assert unanswered.note is not None and "kubectl sla request respond acme-1042" in unanswered.note
    with pytest.raises(edits.EditRefused, match="already resolved"):
        support.resolve(support_request(resolvedAt="2026-12-07T06:10:00Z"), author())


def test_request_tables_fit_100_columns_and_say_late_from_overdue() -> None:
    def named(name: str, status: dict[str, object] | None = None, **spec: object
              ) -> dict[str, object]:
        made = support_request(**spec)
        made["metadata"] = {**made["metadata"], "name": name}  # type: ignore[dict-item]
        return made if status is None else {**made, "status": status}
    late = {"responseDue": "2026-12-07T06:20:00Z", "responseBreached": True}
    many = [named("waiting"), named("answered", respondedAt="2026-12-07T06:42:00Z"),
            named("overdue", late), named("late", late, respondedAt="2026-12-07T06:25:00Z"),
            named("closed", resolvedAt="2026-12-07T06:10:00Z", openedAt="2026-12-07T06:01:00Z"),
            named("unseen", {})]
    ordered = support.sort_requests(many)
    assert [r["metadata"]["name"] for r in ordered][-1] == "closed"  # resolved ones last
    summaries = [support.request_summary(r, NOW) for r in ordered]
    summaries.append({**summaries[0], "name": support.request_name("payments-api", 1042)})
    for namespaces in (False, True):
        headers, rows = support.requests_table(summaries, namespaces, NOW)
        assert headers[namespaces:] == ["NAME", "AGREEMENT", "SEV", "CUSTOMER", "OPENED", "DUE",
                                        "RESPONDED", "BREACHED", "TITLE"]
        text = render(headers, rows, width=100, shrink=support.REQUEST_SHRINK)
        assert all(len(line) <= 100 for line in text.splitlines()), text
        assert all(str(r["metadata"]["name"]) in text for r in many)  # names are never cut
        assert "…" in text  # the title gave way
    cells = {row[0].text: [c.text for c in row[4:9]] for row in
             support.requests_table(summaries, False, NOW)[1]}
    assert cells["waiting"] == ["30m", "in 29m", "-", "no", cells["waiting"][4]]
    assert cells["answered"][2:4] == ["after 42m", "no"]
    assert cells["overdue"][1:4] == ["10m ago", "-", "OVERDUE"]
    assert cells["late"][2:4] == ["after 25m", "yes"]
    assert cells["unseen"][1:4] == ["-", "-", "-"]  # the operator has not computed it yet
    assert cells["closed"][4].startswith("(resolved) ")


def test_request_commands_parse_and_complete() -> None:
    def names(kind: str, flags: dict[str, str]) -> list[str]:
        return {"supportrequests": ["acme-1042"], "incidents": ["payments-api-1"],
                "servicelevelagreements": ["payments-api"]}.get(kind, [])
    assert candidates(["request", ""], names)[0] == ["list", "open", "respond", "resolve"]
    assert candidates(["request", "resolve", ""], names)[0] == ["acme-1042"]
    assert candidates(["resolve", ""], names)[0] == ["payments-api-1"]
    assert candidates(["request", "open", "p"], names)[0] == ["payments-api"]
    assert candidates(["request", "open", "x", "--severity", ""], names)[0] == ["P1", "P2", "P3", "P4"]
    assert "--all-namespaces" in candidates(["request", "list", "--a"], names)[0]


@pytest.mark.parametrize("argv", [["request"], ["request", "open", "payments-api", "--title", "x"],
                                  ["request", "open", "a", "--severity", "P5", "--title", "x"],
                                  ["request", "respond"], ["request", "respond", "x", "-A"]])
def test_request_usage_errors_exit_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as stopped:
        main(argv)
    assert stopped.value.code == 2
    assert "--help' for usage" in capsys.readouterr().err


def test_a_request_answered_in_the_future_exits_2_before_writing(
        capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("sla_operator.plugin.main.connect", lambda *_: _Offline())
    monkeypatch.setattr("sla_operator.plugin.main.Cluster", lambda c: _Offline())
    assert main(["request", "respond", "acme-1042", "--at", "in 5m"]) == 2
    assert "is in the future" in capsys.readouterr().err
    assert main(["-A", "request", "respond", "acme-1042"]) == 2
    assert "-A is for listing" in capsys.readouterr().err
