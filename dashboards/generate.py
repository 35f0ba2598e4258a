"""Writes the Grafana dashboards of sla-operator (docs/API.md, "Dashboards"): `make dashboards`.

The JSON in dashboards/ and the chart's copy are this script's output, never edited by hand;
a test fails when they drift from it. Queries use the recording rules of `sla-operator rules`
(sla:error_ratio:rate*) where there is one, so Grafana and the alerts read the same numbers.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from grafana_foundation_sdk.builders import dashboard as d
from grafana_foundation_sdk.builders import prometheus, stat, statetimeline, table, timeseries
from grafana_foundation_sdk.builders.common import ReduceDataOptions
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models import dashboard as m

REPO = Path(__file__).resolve().parents[1]
OUTPUTS = (REPO / "dashboards", REPO / "charts" / "sla-operator" / "dashboards")
OVERVIEW_UID, AGREEMENT_UID = "sla-overview", "sla-agreement"
TAGS = ["sla", "sla-operator"]
DATASOURCE = m.DataSourceRef(type_val="prometheus", uid="${datasource}")
ONE = '{namespace="$namespace",agreement="$agreement"}'
MANY = '{namespace=~"$namespace",agreement=~"$agreement"}'
WINDOWS = ("5m", "30m", "1h", "2h", "6h", "1d", "3d")
TO_AGREEMENT = (f"/d/{AGREEMENT_UID}?var-namespace=${{__field.labels.namespace}}"
                "&var-agreement=${__field.labels.agreement}&${__url_time_range}"
                "&var-datasource=${datasource}")


def query(expr: str, legend: str = "", instant: bool = False) -> prometheus.Dataquery:
    q = prometheus.Dataquery().expr(expr).legend_format(legend or "__auto").datasource(DATASOURCE)
    return q.instant() if instant else q.range()


def burn(window: str, scope: str) -> str:
    """Error ratio over ``window`` divided by what the objective allows: the burn rate."""
    return (f"sla:error_ratio:rate{window}{scope} / on (namespace, agreement) group_left () "
            f"(1 - max by (namespace, agreement) (sla_objective_ratio{scope}))")


def variables(multi: bool) -> list[d.DatasourceVariable | d.QueryVariable]:
    def label_values(name: str, selector: str) -> d.QueryVariable:
        return (d.QueryVariable(name).label(name.capitalize()).datasource(DATASOURCE)
                .query({"query": f"label_values({selector}, {name})", "refId": name})
                .refresh(m.VariableRefresh.ON_TIME_RANGE_CHANGED).sort(m.VariableSort.ALPHABETICAL_ASC)
                .multi(multi).include_all(multi))

    return [d.DatasourceVariable("datasource").label("Data source").type("prometheus"),
            label_values("namespace", "sla_objective_ratio"),
            label_values("agreement", 'sla_objective_ratio{namespace=~"$namespace"}')]


def incident_annotations(scope: str) -> list[d.AnnotationQuery]:
    """Open incidents and maintenance marked on every time series panel."""
    return [
        d.AnnotationQuery().name("Open incidents").datasource(DATASOURCE).enable(True)
        .icon_color("red").expr(f"sum by (namespace, agreement, severity) "
                                f"(sla_incidents_open{scope}) > 0"),
        d.AnnotationQuery().name("Maintenance").datasource(DATASOURCE).enable(True)
        .icon_color("blue").expr(f"max by (namespace, agreement) (sla_maintenance_active{scope}) > 0"),
    ]


def link(title: str, uid: str) -> d.DashboardLink:
    return (d.DashboardLink(title).type(m.DashboardLinkType.LINK).url(f"/d/{uid}")
            .include_vars(True).keep_time(True).icon("dashboard"))


def to_detail(title: str) -> d.DashboardLink:
    return d.DashboardLink(title).url(TO_AGREEMENT)


def percent_stat(title: str, expr: str, legend: str, red_below: float) -> stat.Panel:
    return (stat.Panel().title(title).with_target(query(expr, legend, instant=True))
            .unit("percentunit").decimals(3).height(6).span(8)
            .reduce_options(ReduceDataOptions().calcs(["lastNotNull"]))
            .thresholds(d.ThresholdsConfig().mode(m.ThresholdsMode.ABSOLUTE).steps([
                m.Threshold(color="red", value=None), m.Threshold(color="green", value=red_below)]))
            .data_links([to_detail("Open the agreement")]))


def overview() -> d.Dashboard:
    board = (d.Dashboard("SLA overview").uid(OVERVIEW_UID).tags(TAGS).time("now-7d", "now")
             .refresh("1m").editable().tooltip(m.DashboardCursorSync.CROSSHAIR)
             .description("Every agreement: availability against its objective, error budget "
                          "left, burn rate, state and open incidents.")
             .variables(variables(multi=True)).annotations(incident_annotations(MANY))
             .link(link("Agreement detail", AGREEMENT_UID)))
    board.with_panel(
        table.Panel().title("Agreements").height(8).span(24)
        .with_target(query(f"max by (namespace, agreement, service, environment) "
                           f"(sla_availability_ratio{MANY})", instant=True).ref_id("A"))
        .with_target(query(f"max by (namespace, agreement) (sla_objective_ratio{MANY})",
                           instant=True).ref_id("B"))
        .with_target(query(f"max by (namespace, agreement) (sla_error_budget_remaining_ratio{MANY})",
                           instant=True).ref_id("C"))
        .with_target(query(f"max by (namespace, agreement, state) (sla_state{MANY}) == 1",
                           instant=True).ref_id("D"))
        .unit("percentunit").data_links([to_detail("Open ${__field.labels.agreement}")])
        # One row per agreement: the four instant queries joined on their labels.
        .with_transformation(m.DataTransformerConfig(id_val="merge", options={})))
    board.with_panel(percent_stat("Availability (current period)",
                                  f"max by (namespace, agreement) (sla_availability_ratio{MANY})",
                                  "{{namespace}}/{{agreement}}", 0.999))
    board.with_panel(percent_stat("Error budget left",
                                  f"max by (namespace, agreement) (sla_error_budget_remaining_ratio{MANY})",
                                  "{{namespace}}/{{agreement}}", 0.25))
    board.with_panel(
        stat.Panel().title("Open incidents").height(6).span(8)
        .with_target(query(f"sum by (namespace, agreement) (sla_incidents_open{MANY})",
                           "{{namespace}}/{{agreement}}", instant=True))
        .thresholds(d.ThresholdsConfig().mode(m.ThresholdsMode.ABSOLUTE).steps([
            m.Threshold(color="green", value=None), m.Threshold(color="red", value=1)]))
        .data_links([to_detail("Open the agreement")]))
    board.with_panel(
        timeseries.Panel().title("Burn rate over 1h (1 = spending the budget exactly)")
        .height(8).span(12).with_target(query(burn("1h", MANY), "{{namespace}}/{{agreement}}"))
        .data_links([to_detail("Open the agreement")]))
    board.with_panel(
        statetimeline.Panel().title("State").height(8).span(12)
        .with_target(query(f"max by (namespace, agreement, state) (sla_state{MANY}) == 1",
                           "{{agreement}}: {{state}}")))
    return board


def agreement() -> d.Dashboard:
    board = (d.Dashboard("SLA agreement").uid(AGREEMENT_UID).tags(TAGS).time("now-30d", "now")
             .refresh("1m").editable().tooltip(m.DashboardCursorSync.CROSSHAIR)
             .description("One agreement: availability and budget over the period, burn "
                          "rates, downtime, state, incidents and its endpoints' probes.")
             .variables(variables(multi=False)).annotations(incident_annotations(ONE))
             .link(link("SLA overview", OVERVIEW_UID)))
    series = [
        ("Availability against the objective", "percentunit", [
            (f"max(sla_availability_ratio{ONE})", "availability"),
            (f"max(sla_objective_ratio{ONE})", "objective")]),
        ("Error budget left", "percentunit", [
            (f"max(sla_error_budget_remaining_ratio{ONE})", "budget left")]),
        ("Burn rate per window", "short", [(burn(w, ONE), w) for w in WINDOWS]),
        ("Downtime (seconds per interval)", "s", [
            (f"sum(increase(sla_downtime_seconds_total{ONE}[$__rate_interval]))", "downtime"),
            (f"max(sla_maintenance_active{ONE})", "maintenance")]),
        ("Open incidents by severity", "short", [
            (f"sum by (severity) (sla_incidents_open{ONE})", "{{severity}}")]),
        # Per endpoint only where the operator runs with --endpoint-histograms.
        ("Probe latency p95", "s", [
            ("histogram_quantile(0.95, sum by (le) "
             f"(rate(sla_agreement_probe_duration_seconds_bucket{ONE}[$__rate_interval])))",
             "all endpoints"),
            ("histogram_quantile(0.95, sum by (endpoint, le) "
             f"(rate(sla_probe_duration_seconds_bucket{ONE}[$__rate_interval])))", "{{endpoint}}")]),
        ("Certificate expiry per endpoint", "s", [
            (f"max by (endpoint) (sla_probe_certificate_expiry_timestamp_seconds{ONE}) - time()",
             "{{endpoint}}")]),
    ]
    for title, unit, targets in series:
        panel = timeseries.Panel().title(title).unit(unit).height(8).span(12)
        for expr, legend in targets:
            panel.with_target(query(expr, legend))
        board.with_panel(panel)
    board.with_panel(
        statetimeline.Panel().title("State").height(5).span(24)
        .with_target(query(f"max by (state) (sla_state{ONE}) == 1", "{{state}}")))
    board.with_panel(
        statetimeline.Panel().title("Probe success per endpoint").height(6).span(24)
        .with_target(query(f"max by (endpoint) (sla_probe_success{ONE})", "{{endpoint}}"))
        .thresholds(d.ThresholdsConfig().mode(m.ThresholdsMode.ABSOLUTE).steps([
            m.Threshold(color="red", value=None), m.Threshold(color="green", value=1)])))
    return board


def numbered(board: d.Dashboard) -> m.Dashboard:
    """Stable panel ids (links and the API address panels by them), query refIds, and an
    empty options object where none was set: Grafana fills its defaults into {}, not null."""
    built = board.build()
    for number, panel in enumerate(built.panels or [], start=1):
        if isinstance(panel, m.Panel):
            panel.id_val = number
            panel.datasource = DATASOURCE
            panel.options = panel.options if panel.options is not None else {}
            for index, target in enumerate(panel.targets or []):
                if hasattr(target, "ref_id"):
                    target.ref_id = target.ref_id or chr(ord("A") + index)
    return built


def render() -> dict[str, str]:
    """File name -> JSON text of each dashboard."""
    boards = {"sla-overview.json": overview(), "sla-agreement.json": agreement()}
    return {name: json.dumps(numbered(board), cls=JSONEncoder, indent=2, sort_keys=True) + "\n"
            for name, board in boards.items()}


def main() -> int:
    for folder in OUTPUTS:
        folder.mkdir(parents=True, exist_ok=True)
        for name, text in render().items():
            (folder / name).write_text(text)
            print(f"wrote {(folder / name).relative_to(REPO)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
