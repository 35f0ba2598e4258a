"""`kubectl-sla`: exit 0 when done, 1 when the cluster refused or failed, 2 on a usage error."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

import yaml

from sla_operator.plugin import edits, reports, support, views, windows
from sla_operator.plugin.cluster import Cluster, ClusterError, connect
from sla_operator.plugin.completion import run_completion, script
from sla_operator.plugin.parser import PROG, build_parser
from sla_operator.plugin.table import render, terminal
from sla_operator.plugin.times import TimeError, parse_span, parse_when


class UsageError(Exception):
    """A value the command cannot use; exit 2."""


def dump(value: Any, output: str) -> str:
    if output == "json":
        return json.dumps(value, indent=2, ensure_ascii=False) + "\n"
    return str(yaml.safe_dump(value, sort_keys=False, allow_unicode=True))


def _when(text: str, now: datetime, flag: str) -> datetime:
    try:
        return parse_when(text, now)
    except TimeError as error:
        raise UsageError(f"{flag}: {error}") from None


def _table(headers: list[str], rows: list[Any], shrink: Sequence[tuple[str, int]]) -> str:
    width, colour = terminal(sys.stdout)
    return render(headers, rows, width, colour, shrink)


def _namespace(args: argparse.Namespace, default: str) -> str | None:
    if getattr(args, "all_namespaces", False):
        return None
    return getattr(args, "namespace", None) or default


def _none_found(namespace: str | None) -> str:
    print("No resources found" + (f" in {namespace} namespace." if namespace else "."),
          file=sys.stderr)
    return ""


def status(cluster: Cluster, args: argparse.Namespace, namespace: str | None, now: datetime) -> str:
    summaries = views.agreement_summaries(cluster.list("servicelevelagreements", namespace),
                                          cluster.list("incidents", namespace))
    if args.output != "table":
        return dump({"items": summaries}, args.output)
    if not summaries:
        return _none_found(namespace)
    return _table(*views.status_table(summaries, namespace is None), views.STATUS_SHRINK)


def incidents(cluster: Cluster, args: argparse.Namespace, namespace: str | None,
              now: datetime) -> str:
    listed = [i for i in views.sort_incidents(cluster.list("incidents", namespace))
              if (not args.open or views.is_open(i))
              and (args.agreement is None or (i.get("spec") or {}).get("agreement") == args.agreement)]
    if args.output != "table":
        return dump({"apiVersion": "v1", "kind": "List", "items": listed}, args.output)
    if not listed:
        return _none_found(namespace)
    summaries = [views.incident_summary(i, now) for i in listed]
    return _table(*views.incidents_table(summaries, namespace is None), views.INCIDENT_SHRINK)


def _decision(args: argparse.Namespace, author: edits.Author
              ) -> tuple[Callable[[dict[str, Any]], edits.Edit], str]:
    if args.command == "ack":
        return (lambda i: edits.acknowledge(i, author, args.message)), "acknowledged"
    if args.command == "update":
        return (lambda i: edits.update(i, author, args.message, args.state)), "updated"
    if args.command == "resolve":
        return (lambda i: edits.resolve(i, author, args.message)), "resolved"
    return (lambda i: edits.exclude(i, author, args.reason, args.message)), "excluded"


def _who(args: argparse.Namespace, user: str) -> str:
    who = (args.by or user).strip()
    if not who:
        raise UsageError("cannot tell who you are (the kubeconfig context names no user): "
                         "pass --by NAME")
    return who


def edit_incident(cluster: Cluster, args: argparse.Namespace, namespace: str,
                  now: datetime) -> str:
    at = _when(args.at, now, "--at")
    if at > now:
        raise UsageError(f"--at {args.at!r} is in the future ({edits.stamp(at)})")
    decide, done = _decision(args, edits.Author(_who(args, cluster.connection.user), at))

    def patch(incident: dict[str, Any]) -> tuple[list[dict[str, Any]], str | None]:
        edit = decide(incident)
        return edit.ops, edit.note

    written, note = cluster.edit("incidents", namespace, args.incident, patch)
    if note:
        print(f"note: {note}", file=sys.stderr)
    return _written("incident", written, args.output, done)


def _written(kind: str, obj: dict[str, Any], output: str | None, done: str) -> str:
    name = f"{kind}.sla.dev/{obj['metadata']['name']}"
    if output is None:
        return f"{name} {done}\n"
    return f"{name}\n" if output == "name" else dump(obj, output)


def maintenance(cluster: Cluster, args: argparse.Namespace, namespace: str,
                now: datetime) -> str:
    if args.action == "end":
        written, _ = cluster.edit("maintenancewindows", namespace, args.window,
                                  lambda w: (windows.end_now(w, now), None))
        return _written("maintenancewindow", written, args.output, "ended")
    start = now if args.action == "start" else _when(args.start, now, "--start")
    try:
        end = (_when(args.end, now, "--end") if getattr(args, "end", None)
               else start + parse_span(args.duration))
    except TimeError as error:
        raise UsageError(f"--for: {error}") from None
    cluster.get("servicelevelagreements", namespace, args.agreement)  # a typo fails here
    body = windows.window_manifest(
        namespace, args.name or windows.window_name(args.agreement, start), args.agreement,
        start, end, args.message or "Maintenance", _who(args, cluster.connection.user))
    created = cluster.create("maintenancewindows", namespace, body)
    return _written("maintenancewindow", created, args.output, "created")


def request(cluster: Cluster, args: argparse.Namespace, namespace: str | None,
            now: datetime) -> str:
    if args.action == "list":
        listed = [r for r in support.sort_requests(cluster.list("supportrequests", namespace))
                  if (not args.open or support.is_open(r))
                  and (args.agreement is None
                       or (r.get("spec") or {}).get("agreement") == args.agreement)]
        if args.output != "table":
            return dump({"apiVersion": "v1", "kind": "List", "items": listed}, args.output)
        if not listed:
            return _none_found(namespace)
        summaries = [support.request_summary(r, now) for r in listed]
        return _table(*support.requests_table(summaries, namespace is None, now),
                      support.REQUEST_SHRINK)
    assert namespace is not None
    at = _when(args.at, now, "--at")
    if at > now:
        raise UsageError(f"--at {args.at!r} is in the future ({edits.stamp(at)})")
    author = edits.Author(_who(args, cluster.connection.user), at)
    if args.action == "open":
        cluster.get("servicelevelagreements", namespace, args.agreement)  # a typo fails here
        taken = [str((r.get("metadata") or {}).get("name"))
                 for r in ([] if args.name else cluster.list("supportrequests", namespace))]
        number = support.next_number(args.agreement, taken)
        for attempt in range(number, number + 10):
            body = support.request_manifest(
                namespace, args.name or support.request_name(args.agreement, attempt),
                args.agreement, args.severity, args.title, at, author.name, args.customer,
                args.reference)
            try:
                created = cluster.create("supportrequests", namespace, body)
            except ClusterError as error:  # someone took the number meanwhile: the next one
                if args.name or "already exists" not in str(error):
                    raise
                continue
            return _written("supportrequest", created, args.output, "opened")
        raise ClusterError("the next ten numbers were taken meanwhile; choose a name with --name")
    decide = support.respond if args.action == "respond" else support.resolve

    def patch(obj: dict[str, Any]) -> tuple[list[dict[str, Any]], str | None]:
        edit = decide(obj, author)
        return edit.ops, edit.note

    written, note = cluster.edit("supportrequests", namespace, args.request, patch)
    if note:
        print(f"note: {note}", file=sys.stderr)
    done = "responded" if args.action == "respond" else "resolved"
    return _written("supportrequest", written, args.output, done)


COMMANDS: dict[str, Callable[..., str | bytes]] = {
    "status": status, "incidents": incidents, "ack": edit_incident, "update": edit_incident,
    "resolve": edit_incident, "exclude": edit_incident, "maintenance": maintenance,
    "report": reports.report, "statement": reports.statement, "request": request}


def main(argv: Sequence[str] | None = None) -> int:
    words = list(sys.argv[1:] if argv is None else argv)
    if words[:1] == ["__complete"]:  # what the completion scripts call
        return run_completion(words[1:], sys.stdout)
    args = build_parser().parse_args(words)
    if args.command == "completion":
        sys.stdout.write(script(args.shell))
        return 0
    try:
        connection = connect(getattr(args, "kubeconfig", None), getattr(args, "context", None))
        namespace = _namespace(args, connection.namespace)
        listing = args.command in ("status", "incidents", "report", "statement") or (
            args.command == "request" and args.action == "list")
        if namespace is None and not listing:
            raise UsageError("-A is for listing; name the object's namespace with -n")
        text = COMMANDS[args.command](Cluster(connection), args, namespace, datetime.now(UTC))
    except (UsageError, reports.Refused) as error:
        print(f"error: {error}\nSee '{PROG} {args.command} --help' for usage.", file=sys.stderr)
        return 2
    except (ClusterError, edits.EditRefused) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    if isinstance(text, bytes):
        sys.stdout.buffer.write(text)
    else:
        sys.stdout.write(text)
    return 0


def complete_main() -> int:
    """`kubectl_complete-sla`: what kubectl runs to complete `kubectl sla ...`."""
    return run_completion(sys.argv[1:], sys.stdout)


def run() -> None:
    """The console script: exit with main's code (a closed pipe, as with `| head`, is no error)."""
    try:
        code = main()
        sys.stdout.flush()
    except BrokenPipeError:
        sys.stderr.close()
        code = 0
    except KeyboardInterrupt:
        code = 130
    raise SystemExit(code)
