"""`sla-operator run | local | demo-target | report | rules | export | import`.

Errors go to stderr with a non-zero exit."""

from __future__ import annotations

import argparse
import asyncio
import gc
import ipaddress
import logging
import os
import re
import sys
from collections.abc import Sequence

from sla_operator import __version__
from sla_operator.domain.durations import parse_duration
from sla_operator.domain.errors import SpecError
from sla_operator.domain.shards import Sharding
from sla_operator.engine.writes import DEFAULT_MAX_STATUS_WRITES_PER_SECOND, DEFAULT_STATUS_HEARTBEAT
from sla_operator.probes.policy_file import read_policy_file
from sla_operator.settings import LeaseSettings, Settings, lease_name

UVLOOP_ENVIRONMENT = "SLA_OPERATOR_UVLOOP"
# The collector's thresholds while the operator starts (reading in a thousand agreements
# makes millions of objects that all live on: fewer passes over them); once it runs, the
# engine takes the collector over and runs it after its rounds (engine/collector.py).
GC_THRESHOLDS = (25_000, 20, 20)


def _cidr(text: str) -> str:
    try:
        ipaddress.ip_network(text, strict=False)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a CIDR range (e.g. 10.0.0.0/8)") from None
    return text


def _port(text: str) -> int:
    value = int(text)
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"{value} is not a port (0 disables, 1..65535)")
    return value


def _rule_label(text: str) -> tuple[str, str]:
    key, equals, value = text.partition("=")
    if not equals or not key:
        raise argparse.ArgumentTypeError(f"{text!r} is not a label (K=V, e.g. release=prometheus)")
    return key, value


def _serving_options(parser: argparse.ArgumentParser, bind_address: str) -> None:
    parser.add_argument("--metrics-port", type=_port, default=9090,
                        help="port of /metrics and /healthz (0 disables; default 9090)")
    parser.add_argument("--status-port", type=_port, default=8080,
                        help="port of the public status page: /, /api/v1/status, "
                             "Statuspage's /api/v2/*.json, /feed.atom, /badge/NS/NAME.svg "
                             "(0 disables; default 8080)")
    parser.add_argument("--bind-address", default=bind_address,
                        help="address the metrics and status page listeners bind to "
                             f"(default {bind_address}"
                             + (": all interfaces, as a pod needs)" if bind_address == "0.0.0.0"
                                else ": this machine only; 0.0.0.0 for all interfaces)"))
    parser.add_argument("--endpoint-histograms", nargs="?", const="on", default="auto",
                        choices=("auto", "on", "off"),
                        help="export sla_probe_duration_seconds per endpoint (14 series per "
                             "endpoint) besides the histogram per agreement: on, off, or auto "
                             "(the default: while the process probes at most 1000 endpoints); "
                             "the flag alone means on")
    parser.add_argument("--deny-cidr", action="append", type=_cidr, default=[],
                        help="a range probes may not connect to, after DNS resolution (repeatable; "
                             "cloud metadata 169.254.0.0/16 and fd00:ec2::254 are always denied)")
    parser.add_argument("--allow-cidr", action="append", type=_cidr, default=[],
                        help="when given, probes may connect only to these ranges (repeatable)")
    parser.add_argument("--probe-policy", metavar="FILE",
                        help="the administrators' per-namespace ranges: which namespaces may "
                             "probe which addresses (YAML; see docs/API.md, 'Probe security')")
    parser.add_argument("--status-interval", type=float, default=30.0,
                        help="seconds between routine status writes per object (default 30)")
    parser.add_argument("--evaluate-interval", type=float, default=1.0,
                        help="seconds between evaluation rounds (default 1)")
    parser.add_argument("--probe-concurrency", type=int, default=256,
                        help="probes in flight at once (default 256)")
    parser.add_argument("--no-uvloop", action="store_true",
                        help="run on the standard asyncio event loop even where uvloop is "
                             f"installed (also: {UVLOOP_ENVIRONMENT}=0)")


_PERIOD_LABEL = re.compile(r"^\d{4}(-(0[1-9]|1[0-2])|-Q[1-4]|-W(0[1-9]|[1-4]\d|5[0-3]))?$")


def _period(text: str) -> str:
    """--period: checked before anything connects anywhere."""
    if not _PERIOD_LABEL.match(text):
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a period label: a month like 2026-11, a quarter like 2026-Q4, "
            "an ISO week like 2026-W47 or a year like 2026")
    return text


def _whole(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None


def _location(text: str) -> str:
    """--location: a DNS label, as the agreements' spec.probing.locations name it."""
    if not re.fullmatch(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?", text):
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a location name: a DNS label (lower-case letters, digits and "
            "'-', at most 63)")
    return text


def _sharding(args: argparse.Namespace) -> Sharding:
    """--shards and --shard together; a ValueError names the flag and what is allowed."""
    return Sharding(getattr(args, "shards", 1), getattr(args, "shard", 0))


def _settings(args: argparse.Namespace) -> Settings:
    return Settings(
        namespaces=tuple(getattr(args, "namespace", None) or ()),
        metrics_port=args.metrics_port,
        status_port=args.status_port,
        bind_address=args.bind_address,
        endpoint_histograms={"on": True, "off": False}.get(args.endpoint_histograms),
        deny_cidrs=tuple(args.deny_cidr),
        allow_cidrs=tuple(args.allow_cidr),
        probe_policy=read_policy_file(args.probe_policy) if getattr(args, "probe_policy", None)
        else (),
        evaluate_interval=args.evaluate_interval,
        status_interval=args.status_interval,
        probe_concurrency=args.probe_concurrency,
        resync_interval=getattr(args, "resync_interval", 60.0),
        # Local mode writes files, not to an API server: no cap there.
        max_status_writes_per_second=getattr(args, "max_status_writes_per_second", 0.0),
        lease=_lease(args),
        status_heartbeat=_status_heartbeat(args),
        rule_labels=tuple(getattr(args, "rule_label", None) or ()),
        sharding=_sharding(args),
        discover=getattr(args, "discover", False),
        location=getattr(args, "location", None),
        disagreement_after=getattr(args, "disagreement_after", 300.0),
        locations_namespace=getattr(args, "leader_elect_namespace", None)
        or os.environ.get("POD_NAMESPACE") or "default",
    )


def _status_heartbeat(args: argparse.Namespace) -> float:
    """Local mode writes files: every refresh. ``run`` with a Lease leaves the routine writes
    that change nothing shown to the heartbeat; without one the status is its own heartbeat."""
    chosen = getattr(args, "status_heartbeat", None)
    if chosen is not None:
        return float(chosen)
    return DEFAULT_STATUS_HEARTBEAT if getattr(args, "leader_elect", False) else 0.0


def _lease(args: argparse.Namespace) -> LeaseSettings | None:
    if not getattr(args, "leader_elect", False):
        return None
    lease = LeaseSettings(
        name=lease_name(args.leader_elect_lease, _sharding(args)),
        namespace=args.leader_elect_namespace or os.environ.get("POD_NAMESPACE") or "default",
        duration=args.leader_elect_lease_duration,
        renew_deadline=args.leader_elect_renew_deadline,
        retry_period=args.leader_elect_retry_period)
    if not 0 < lease.retry_period < lease.renew_deadline < lease.duration:
        raise ValueError("leader election needs retry period < renew deadline < lease duration "
                         f"(got {lease.retry_period:g}s, {lease.renew_deadline:g}s, "
                         f"{lease.duration:g}s)")
    return lease


def _heartbeat(text: str) -> float:
    """--status-heartbeat: seconds, 0 for a write at every routine refresh."""
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not 0 <= value < float("inf"):
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds (0 or more)")
    return value


def _write_rate(text: str) -> float:
    """--max-status-writes-per-second: a number of writes per second, 0 for no cap."""
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not value >= 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a rate: writes per second, a number of 0 (no cap) or more")
    return value


def _seconds(text: str) -> float:
    """A duration flag: 15s, 1m, 500ms, or plain seconds."""
    try:
        return float(text)
    except ValueError:
        pass
    try:
        return parse_duration(text, "duration").total_seconds()
    except SpecError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sla-operator",
        description="Service level agreements that a Kubernetes cluster enforces and proves.")
    parser.add_argument("--version", action="version", version=f"sla-operator {__version__}")
    parser.add_argument("--log-level", default="INFO",
                        choices=["DEBUG", "INFO", "WARNING", "ERROR"], help="default INFO")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = commands.add_parser("run", help="run the operator against a cluster (kopf underneath)",
                              description="Watch SLAs, maintenance windows and incidents; probe, "
                                          "account and report. Uses in-cluster credentials, "
                                          "else KUBECONFIG.")
    run.add_argument("--namespace", action="append", default=[],
                     help="namespace to watch (repeatable; default: all namespaces)")
    run.add_argument("--discover", action="store_true",
                     help="Services and Ingresses annotated sla.dev/agreement: NAME add an "
                          "endpoint to that agreement of their namespace (needs get/list/watch "
                          "on services and ingresses)")
    run.add_argument("--location", type=_location, metavar="NAME",
                     help="probe as this location: its results are NAME's view, decided on "
                          "with other locations' reports where an agreement's spec.probing "
                          "asks for a quorum; HTTP probes send User-Agent: sla-operator/VERSION "
                          "(location NAME) (default: the single location default)")
    run.add_argument("--disagreement-after", type=_seconds, default=300.0, metavar="DURATION",
                     help="with --location: how long a location may see an endpoint otherwise "
                          "than its quorum before a Warning Event LocationDisagrees and "
                          "sla_location_disagreement say so (default 5m)")
    run.add_argument("--resync-interval", type=float, default=60.0,
                     help="seconds between lists that catch deletions a watch missed and "
                          "prove the watches still deliver (default 60)")
    run.add_argument("--max-status-writes-per-second", type=_write_rate,
                     default=DEFAULT_MAX_STATUS_WRITES_PER_SECOND, metavar="R",
                     help="cap on status writes to the API server: state changes go first, "
                          "routine refreshes take what is left and wait when the cap binds "
                          f"(0: no cap; default {DEFAULT_MAX_STATUS_WRITES_PER_SECOND:g})")
    run.add_argument("--status-heartbeat", type=_heartbeat, default=None, metavar="SECONDS",
                     help="at most this long between two writes of an agreement's status when "
                          "nothing it shows changed (probe times, latencies); 0: every routine "
                          "refresh writes (default: "
                          f"{DEFAULT_STATUS_HEARTBEAT:g} with --leader-elect, whose Lease then "
                          "says until when the writer was alive; 0 without)")
    election = run.add_argument_group("leader election (several replicas, one writer)")
    election.add_argument("--leader-elect", action="store_true",
                          help="take a coordination.k8s.io/v1 Lease; only its holder probes "
                               "and writes, the others stand by")
    election.add_argument("--leader-elect-lease", default="sla-operator",
                          help="the Lease's name (default sla-operator); with --shards above 1 "
                               "each shard takes its own, NAME-shard-I")
    election.add_argument("--leader-elect-namespace",
                          help="the Lease's namespace (default: $POD_NAMESPACE, else default)")
    election.add_argument("--leader-elect-lease-duration", type=_seconds, default=15.0,
                          help="how long a candidate waits without a renewal (default 15s)")
    election.add_argument("--leader-elect-renew-deadline", type=_seconds, default=10.0,
                          help="how long the holder writes without renewing (default 10s)")
    election.add_argument("--leader-elect-retry-period", type=_seconds, default=2.0,
                          help="between attempts to take or renew (default 2s)")
    scale = run.add_argument_group("shards (a fleet split over several processes)")
    scale.add_argument("--shards", type=_whole, default=1, metavar="N",
                       help="how many shards the agreements are split into (default 1: all "
                            "of them here)")
    scale.add_argument("--shard", type=_whole, default=0, metavar="I",
                       help="which shard this process is, 0..N-1: it handles the agreements "
                            "whose stable hash of namespace/name falls in shard I, their "
                            "incidents and PrometheusRules (default 0)")
    _serving_options(run, "0.0.0.0")
    run.add_argument("--rule-label", action="append", type=_rule_label, default=[],
                     metavar="K=V", help="label of the PrometheusRules the operator keeps, e.g. "
                                         "for prometheus-operator's ruleSelector (repeatable)")

    probe = commands.add_parser(
        "probe", help="probe as one location and report to the deciding operator",
        description="Probe every agreement's endpoints as location NAME and write what this "
                    "location sees as LocationReports, only when a view changes; never writes "
                    "statuses or incidents. Takes the Lease sla-location-NAME: one replica of "
                    "a location reports, and its renewals tell the operator run --location "
                    "that the location is there. In-cluster credentials, else KUBECONFIG "
                    "(a remote home cluster's).")
    probe.add_argument("--location", type=_location, required=True, metavar="NAME",
                       help="this location's name (a DNS label, as spec.probing.locations "
                            "names it); HTTP probes send User-Agent: sla-operator/VERSION "
                            "(location NAME)")
    probe.add_argument("--namespace", action="append", default=[],
                       help="namespace whose agreements to probe (repeatable; default: all)")
    probe.add_argument("--metrics-port", type=_port, default=9090,
                       help="port of /metrics (sla_probe_success{location}, "
                            "sla_operator_leader) and /healthz (0 disables; default 9090)")
    probe.add_argument("--bind-address", default="0.0.0.0",
                       help="address the metrics listener binds to (default 0.0.0.0)")
    probe.add_argument("--deny-cidr", action="append", type=_cidr, default=[],
                       help="a range probes may not connect to (repeatable), as for run")
    probe.add_argument("--allow-cidr", action="append", type=_cidr, default=[],
                       help="when given, probes may connect only to these ranges (repeatable)")
    probe.add_argument("--probe-policy", metavar="FILE",
                       help="the administrators' per-namespace ranges, as for run")
    probe.add_argument("--probe-concurrency", type=int, default=256,
                       help="probes in flight at once (default 256)")
    lease = probe.add_argument_group("the location's Lease (one reporter per location)")
    lease.add_argument("--leader-elect", action="store_true",
                       help="elect one reporter among this location's replicas: always on, since "
                            "the location's Lease sla-location-NAME is also its heartbeat (the "
                            "flag is accepted as run takes it)")
    lease.add_argument("--leader-elect-namespace",
                       help="where the Lease is: the deciding operator's namespace (default: "
                            "$POD_NAMESPACE, else default)")
    lease.add_argument("--leader-elect-lease-duration", type=_seconds, default=15.0,
                       help="how long the location counts as there after a renewal, and a "
                            "standby replica waits (default 15s)")
    lease.add_argument("--leader-elect-renew-deadline", type=_seconds, default=10.0,
                       help="how long the holder writes without renewing (default 10s)")
    lease.add_argument("--leader-elect-retry-period", type=_seconds, default=2.0,
                       help="between renewals (default 2s)")

    local = commands.add_parser("local", help="run on manifest files, no cluster needed",
                                description="Read SLA, MaintenanceWindow and Incident manifests "
                                            "from a folder; keep state as YAML files.")
    local.add_argument("--manifests", required=True, help="folder of YAML manifests (watched)")
    local.add_argument("--state", required=True, help="folder for incidents and status files")
    _serving_options(local, "127.0.0.1")

    demo = commands.add_parser("demo-target", help="a local HTTP service that fails on a schedule")
    demo.add_argument("--port", type=_port, default=8099, help="default 8099")
    demo.add_argument("--host", default="127.0.0.1", help="default 127.0.0.1")

    report = commands.add_parser("report", help="the SLA report of each agreement, per period",
                                 description="Availability, objective, met, downtime, maintenance, "
                                             "exclusions and incidents, from the cluster, or "
                                             "from local mode's folders with --manifests and "
                                             "--state.")
    report.add_argument("--namespace", action="append", default=[],
                        help="namespace (repeatable; default: all)")
    report.add_argument("--period", type=_period, help="period label, e.g. 2026-11, 2026-Q4, 2026-W47 "
                                         "(default: the current period); agreements with a "
                                         "rolling window have no named periods and are skipped")
    report.add_argument("-o", "--output", choices=["table", "json", "csv"], default="table")
    report.add_argument("--manifests", help="local mode's manifests folder (with --state)")
    report.add_argument("--state", help="local mode's state folder (with --manifests)")

    statement = commands.add_parser(
        "statement", help="the customer's statement of one agreement for one period",
        description="Service, period, objective, availability, met, credit, daily bars, every "
                    "incident with what was counted and why not, maintenance, unmonitored time "
                    "and incident response; from the cluster, or from local mode's folders.")
    statement.add_argument("--period", type=_period, required=True,
                           help="period label, e.g. 2026-11 (calendar windows only)")
    statement.add_argument("--namespace", action="append", default=[],
                           help="namespace (repeatable; default: all)")
    statement.add_argument("--agreement", help="the agreement's name (needed when several match)")
    statement.add_argument("--manifests", help="local mode's manifests folder (with --state)")
    statement.add_argument("--state", help="local mode's state folder (with --manifests)")
    statement.add_argument("-o", "--output", choices=["html", "pdf", "json", "markdown"],
                           default="markdown", help="default markdown")
    statement.add_argument("--out", metavar="FILE", help="write here instead of stdout")

    rules = commands.add_parser("rules", help="the alert rules of every agreement",
                                description="Recording rules and burn-rate alerts of each "
                                            "agreement: a Prometheus rule file, or the "
                                            "PrometheusRule objects the operator keeps.")
    rules.add_argument("--namespace", action="append", default=[],
                       help="namespace (repeatable; default: all)")
    rules.add_argument("--manifests", help="read the agreements from this folder of manifests "
                                           "(as `local` does) instead of the cluster")
    rules.add_argument("-o", "--output", choices=["rules", "prometheusrule"], default="rules",
                       help="rules: one file for `promtool check rules` (default); "
                            "prometheusrule: the objects for prometheus-operator")
    rules.add_argument("--rule-label", action="append", type=_rule_label, default=[],
                       metavar="K=V", help="label of the PrometheusRule objects (repeatable)")

    export = commands.add_parser("export", help="the agreements in another tool's format",
                                 description="Each agreement as OpenSLO v1 documents (Service, "
                                             "SLO on the operator's metrics, an AlertPolicy per "
                                             "burn-rate tier), one YAML stream on stdout.")
    export.add_argument("format", choices=["openslo"])
    export.add_argument("--namespace", action="append", default=[],
                        help="namespace (repeatable; default: all)")
    export.add_argument("--manifests", help="read the agreements from this folder of manifests "
                                            "(as `local` does) instead of the cluster")
    import_ = commands.add_parser("import", help="agreements from another tool's format",
                                  description="OpenSLO v1 SLOs with a calendar or rolling window "
                                              "as ServiceLevelAgreement manifests on stdout, "
                                              "their endpoints left to fill in; what an "
                                              "agreement cannot express is refused on stderr, "
                                              "naming the field.")
    import_.add_argument("format", choices=["openslo"])
    import_.add_argument("file", metavar="FILE", help="an OpenSLO YAML file (several documents)")
    import_.add_argument("--namespace", help="metadata.namespace of the agreements (default: the "
                                             "sla.dev/namespace annotation, else none)")
    return parser


def use_event_loop(no_uvloop: bool) -> str:
    """uvloop where it is installed, unless turned off; the name of the loop chosen."""
    if no_uvloop or os.environ.get(UVLOOP_ENVIRONMENT, "1").lower() in ("0", "false", "no", "off"):
        return "asyncio"
    try:
        import uvloop
    except ImportError:
        return "asyncio"
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    return "uvloop"


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=args.log_level, stream=sys.stderr,
                        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s")
    if args.command in ("report", "rules", "statement", "export"):
        # One request each, one clear line when it fails (connect.list_kind): urllib3's own
        # word on every retry before it would only bury that line.
        logging.getLogger("urllib3.connectionpool").setLevel(logging.ERROR)
    if args.command in ("run", "local"):
        # Fewer passes of the collector during start-up; then the engine runs it (Engine.run).
        gc.set_threshold(*GC_THRESHOLDS)
        logging.getLogger("sla_operator").info("event loop: %s", use_event_loop(args.no_uvloop))
    try:
        # A flag's value that cannot be used is a usage error (2, as argparse's own); the
        # command failing at its work (a busy port, an API server out of reach) is 1.
        settings = _settings(args) if args.command in ("run", "local") else None
    except (OSError, ValueError) as error:
        print(f"sla-operator {args.command}: {error}", file=sys.stderr)
        return 2
    try:
        return _dispatch(args, settings)
    except KeyboardInterrupt:
        return 130
    except (OSError, ValueError) as error:
        print(f"sla-operator {args.command}: {error}", file=sys.stderr)
        return 1


def _probe(args: argparse.Namespace) -> int:
    from sla_operator.domain.location_reports import location_lease_name
    from sla_operator.engine.settings import EngineSettings
    from sla_operator.kube.reporter import ProbeOptions, run_probe
    from sla_operator.probes.policy import AddressPolicy

    lease = LeaseSettings(
        name=location_lease_name(args.location),
        namespace=args.leader_elect_namespace or os.environ.get("POD_NAMESPACE") or "default",
        duration=args.leader_elect_lease_duration,
        renew_deadline=args.leader_elect_renew_deadline,
        retry_period=args.leader_elect_retry_period)
    if not 0 < lease.retry_period < lease.renew_deadline < lease.duration:
        raise ValueError("the Lease needs retry period < renew deadline < lease duration")
    settings = EngineSettings(
        probe_concurrency=args.probe_concurrency,
        policy=AddressPolicy.from_cidrs(tuple(args.deny_cidr), tuple(args.allow_cidr)),
        namespace_rules=read_policy_file(args.probe_policy) if args.probe_policy else (),
        location=args.location)
    return run_probe(ProbeOptions(args.location, tuple(args.namespace), settings, lease,
                                  args.metrics_port, args.bind_address))


def _dispatch(args: argparse.Namespace, settings: Settings | None) -> int:
    if args.command == "run":
        from sla_operator.kube.startup import run

        assert settings is not None
        if settings.discover:
            from sla_operator.kube import discovery

            discovery.enable()
        if settings.location is not None:
            from sla_operator.kube import location_watch

            location_watch.enable()
        return run(settings)
    if args.command == "probe":
        return _probe(args)
    if args.command == "local":
        from sla_operator.local import run_local

        assert settings is not None
        return run_local(settings, args.manifests, args.state)
    if args.command == "demo-target":
        from sla_operator.local.demo import run_demo_target

        return run_demo_target(args.host, args.port)
    if args.command == "statement":
        from sla_operator.statement.command import run_statement

        return run_statement(args.namespace, args.agreement, args.period, args.manifests,
                             args.state, args.output, args.out)
    if args.command == "export":
        from sla_operator.openslo_command import run_export

        return run_export(args.namespace, args.manifests)
    if args.command == "import":
        from sla_operator.openslo_command import run_import

        return run_import(args.file, args.namespace)
    if args.command == "rules":
        from sla_operator.rules_command import run_rules

        return run_rules(args.namespace, args.manifests, args.output, dict(args.rule_label))
    from sla_operator.statement.report import run_report

    return run_report(args.namespace, args.period, args.output, args.manifests, args.state)
