"""The command line of `kubectl sla`, with kubectl's global flags on every subcommand."""

from __future__ import annotations

import argparse

from sla_operator.plugin.edits import REASONS, STATES
from sla_operator.plugin.support import SEVERITIES
from sla_operator.plugin.times import EXAMPLES

PROG = "kubectl sla"
LIST_OUTPUTS = ("table", "json", "yaml")
WRITE_OUTPUTS = ("name", "json", "yaml")
INCIDENT_COMMANDS = ("ack", "update", "resolve", "exclude")


class Parser(argparse.ArgumentParser):
    """argparse that ends a usage error the way kubectl does: a hint, then exit 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"error: {message}\nSee '{self.prog} --help' for usage.\n")


def _globals(all_namespaces: bool) -> argparse.ArgumentParser:
    # SUPPRESS: a flag given before the subcommand is not reset by the subcommand's default.
    shared = argparse.ArgumentParser(add_help=False, argument_default=argparse.SUPPRESS)
    shared.add_argument("--kubeconfig", metavar="FILE",
                        help="path to the kubeconfig file (default: $KUBECONFIG or ~/.kube/config)")
    shared.add_argument("--context", help="the kubeconfig context to use")
    shared.add_argument("-n", "--namespace", help="the namespace (default: the context's)")
    if all_namespaces:
        shared.add_argument("-A", "--all-namespaces", action="store_true",
                            help="every namespace")
    return shared


def _author(command: argparse.ArgumentParser, at_help: str) -> None:
    command.add_argument("--by", metavar="NAME",
                         help="who is making the change (default: the kubeconfig user)")
    command.add_argument("--at", metavar="TIME", default="now",
                         help=f"{at_help} (default now; e.g. {EXAMPLES}; without a zone: "
                              "local time)")


def _output(command: argparse.ArgumentParser, choices: tuple[str, ...], listing: bool = True
            ) -> None:
    if listing:
        command.add_argument("-o", "--output", choices=choices, default=choices[0],
                             help=f"output format: {'|'.join(choices)} (default {choices[0]})")
    else:
        command.add_argument("-o", "--output", choices=choices,
                             help=f"print the object written: {'|'.join(choices)} "
                                  "(default: one line saying what was done)")


def build_parser() -> Parser:
    shared, listing = _globals(False), _globals(True)
    parser = Parser(prog=PROG, parents=[listing],
                    description="Incidents, maintenance, support requests and reports of "
                                "sla-operator's agreements, from kubectl. Every change records "
                                "who and when: in the incident's timeline (spec.updates), in a "
                                "support request's respondedBy/resolvedBy.")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    commands.required = True

    status = commands.add_parser("status", parents=[listing], help="agreements: state, "
                                 "availability, error budget left, open incidents")
    _output(status, LIST_OUTPUTS)
    incidents = commands.add_parser("incidents", parents=[listing], help="incidents, open first")
    incidents.add_argument("--open", action="store_true", help="only open incidents")
    incidents.add_argument("--agreement", metavar="NAME", help="only this agreement's incidents")
    _output(incidents, LIST_OUTPUTS)

    ack = commands.add_parser("ack", parents=[shared], help="acknowledge an incident "
                              "(sets acknowledgedAt/By; stops the support-response clock)")
    ack.add_argument("incident", metavar="INCIDENT")
    ack.add_argument("-m", "--message", help="timeline entry (default: 'Acknowledged by NAME')")
    _author(ack, "when it was acknowledged")
    update = commands.add_parser("update", parents=[shared], help="add an update to the "
                                 "incident's timeline, optionally moving its state")
    update.add_argument("incident", metavar="INCIDENT")
    update.add_argument("--state", choices=STATES, help="the response's new state")
    update.add_argument("-m", "--message", required=True, help="what is known and being done")
    _author(update, "when the update was made")
    resolve = commands.add_parser("resolve", parents=[shared], help="resolve an incident")
    resolve.add_argument("incident", metavar="INCIDENT")
    resolve.add_argument("-m", "--message", required=True, help="the closing timeline entry")
    _author(resolve, "when the impairment ended")
    exclude = commands.add_parser("exclude", parents=[shared], help="exclude an incident's "
                                  "time from the agreement (third party, blocking, other)")
    exclude.add_argument("incident", metavar="INCIDENT")
    exclude.add_argument("--reason", required=True, choices=REASONS, help="why it does not count")
    exclude.add_argument("-m", "--message", required=True, help="the note: what happened")
    _author(exclude, "when the decision was made")
    for command in (ack, update, resolve, exclude):
        _output(command, WRITE_OUTPUTS, listing=False)

    _maintenance(commands, shared)
    _request(commands, shared, listing)
    report = commands.add_parser("report", parents=[listing],
                                 help="each agreement's SLA report for a period "
                                      "(as sla-operator report)")
    report.add_argument("--period", metavar="YYYY-MM", help="a closed period (default: current)")
    _output(report, ("table", "json", "csv"))
    statement = commands.add_parser("statement", parents=[listing],
                                    help="the customer's statement of one agreement for one "
                                         "period (as sla-operator statement)")
    statement.add_argument("--period", metavar="YYYY-MM", required=True, help="e.g. 2026-11")
    statement.add_argument("--agreement", metavar="NAME",
                           help="the agreement (needed when the namespace has several)")
    _output(statement, ("markdown", "html", "pdf", "json"))
    statement.add_argument("--out", metavar="FILE", help="write here instead of stdout")
    completion = commands.add_parser("completion", help="shell completion: "
                                     "source <(kubectl-sla completion bash)")
    completion.add_argument("shell", choices=("bash", "zsh"))
    return parser


def _maintenance(commands: argparse._SubParsersAction[Parser],
                 shared: argparse.ArgumentParser) -> None:
    maintenance = commands.add_parser("maintenance", help="one-off maintenance windows")
    actions = maintenance.add_subparsers(dest="action", metavar="ACTION", parser_class=Parser)
    actions.required = True
    start = actions.add_parser("start", parents=[shared], help="maintenance of an agreement "
                               "from now on")
    start.add_argument("agreement", metavar="AGREEMENT")
    start.add_argument("--for", dest="duration", metavar="DURATION", default="1h",
                       help="how long (default 1h; e.g. 30m, 2h)")
    schedule = actions.add_parser("schedule", parents=[shared], help="announce maintenance "
                                  "of an agreement")
    schedule.add_argument("agreement", metavar="AGREEMENT")
    schedule.add_argument("--start", required=True, metavar="TIME",
                          help=f"when it starts (e.g. {EXAMPLES}, 'in 2d')")
    ends = schedule.add_mutually_exclusive_group(required=True)
    ends.add_argument("--end", metavar="TIME", help="when it ends")
    ends.add_argument("--for", dest="duration", metavar="DURATION", help="how long (e.g. 2h)")
    for command in (start, schedule):
        command.add_argument("-m", "--message", help="what is done (the status page shows it)")
        command.add_argument("--name", help="the MaintenanceWindow's name "
                                            "(default AGREEMENT-maintenance-YYYYMMDD-HHMM)")
        command.add_argument("--by", metavar="NAME",
                             help="who (default: the kubeconfig user), kept in an annotation")
    end = actions.add_parser("end", parents=[shared], help="end a running one-off window now")
    end.add_argument("window", metavar="WINDOW")
    for command in (start, schedule, end):
        _output(command, WRITE_OUTPUTS, listing=False)


def _request(commands: argparse._SubParsersAction[Parser], shared: argparse.ArgumentParser,
             listing: argparse.ArgumentParser) -> None:
    request = commands.add_parser("request", help="support requests: list, open, respond, "
                                  "resolve (who and when kept in the request)")
    actions = request.add_subparsers(dest="action", metavar="ACTION", parser_class=Parser)
    actions.required = True
    listed = actions.add_parser("list", parents=[listing], help="support requests, open first, "
                                "with when the response is due and whether it was late")
    listed.add_argument("--open", action="store_true", help="only requests not resolved")
    listed.add_argument("--agreement", metavar="NAME", help="only this agreement's requests")
    _output(listed, LIST_OUTPUTS)
    opened = actions.add_parser("open", parents=[shared], help="file a support request under "
                                "an agreement (the operator computes when the response is due)")
    opened.add_argument("agreement", metavar="AGREEMENT")
    opened.add_argument("--severity", required=True, choices=SEVERITIES,
                        help="P1 critical, P2 high, P3 medium, P4 low: sets the response target")
    opened.add_argument("--title", required=True, help="one line saying what the customer asked")
    opened.add_argument("--customer", help="who asked (free text)")
    opened.add_argument("--reference", metavar="URL", help="the request in the ticketing system")
    opened.add_argument("--name", help="the SupportRequest's name, e.g. the ticket's "
                                       "(default AGREEMENT-N, numbered from 1)")
    _author(opened, "when the request came in")
    respond = actions.add_parser("respond", parents=[shared], help="record the first reply "
                                 "to the customer (sets respondedAt/By; stops the response clock)")
    respond.add_argument("request", metavar="REQUEST")
    _author(respond, "when the first reply was sent")
    resolve = actions.add_parser("resolve", parents=[shared], help="resolve a support request "
                                 "(sets resolvedAt/By)")
    resolve.add_argument("request", metavar="REQUEST")
    _author(resolve, "when it was resolved")
    for command in (opened, respond, resolve):
        _output(command, WRITE_OUTPUTS, listing=False)
