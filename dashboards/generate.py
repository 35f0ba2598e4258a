"""Writes the Grafana dashboards of sla-operator (docs/API.md, "Dashboards"): `make dashboards`.

The JSON in dashboards/ and the chart's copy are this script's output, never edited by hand;
a test fails when they drift from it. Burn rates read the recording rules of `sla-operator
rules` (sla:error_ratio:rate*) where there is one, so Grafana and the alerts read the same
numbers, and the raw counters where there is none (`spec.alerting.enabled: false`).

How Grafana draws what is set here (read in its source, as no Grafana runs in the tests):
- a state timeline defaults to a continuous green-yellow-red scale that ignores thresholds, so
  every timeline sets `color.mode: thresholds` and value mappings with their own colours;
- an instant query joined by a "merge" transformation must be `format: table`, or the merge
  keeps only Time and Value;
- a Prometheus annotation is titled, described and tagged only by its `titleFormat`,
  `textFormat` and `tagKeys` (comma separated label names).
Panels that read one sample per step use `min_over_time` / `max_over_time` over
`$__interval` (Grafana's step), so an outage shorter than a step still shows.
"""

from __future__ import annotations

import copy
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from grafana_foundation_sdk.builders import dashboard as d
from grafana_foundation_sdk.builders import prometheus, stat, statetimeline, table, timeseries
from grafana_foundation_sdk.builders.common import ReduceDataOptions
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models import dashboard as m
from grafana_foundation_sdk.models.prometheus import PromQueryFormat

REPO = Path(__file__).resolve().parents[1]
OUTPUTS = (REPO / "dashboards", REPO / "charts" / "sla-operator" / "dashboards")
OVERVIEW_UID, AGREEMENT_UID = "sla-overview", "sla-agreement"
TAGS = ["sla", "sla-operator"]
DATASOURCE = m.DataSourceRef(type_val="prometheus", uid="${datasource}")
ONE = 'namespace="$namespace",agreement="$agreement"'
MANY = 'namespace=~"$namespace",agreement=~"$agreement"'
BY = "namespace, agreement"
WINDOWS = ("5m", "30m", "1h", "2h", "6h", "1d", "3d")
OVERVIEW_WINDOWS = ("1h", "6h", "1d", "3d")
"""The long window of each alert pair (14.4x, 6x, 3x, 1x): one line each on the overview."""
BURN_LINES = ((1, "yellow"), (3, "orange"), (6, "red"), (14.4, "dark-red"))
"""The burn rates the alerts compare against (docs/API.md, "Alert rules"), drawn as lines."""
EXHAUSTION_WINDOW = "1h"
CERTIFICATE_DAYS = 14
PROBE_LAG_SECONDS = 5
"""The chart's operatorAlerts.probeLagSeconds default: SLAOperatorProbeLagHigh's threshold."""
TO_AGREEMENT = (f"/d/{AGREEMENT_UID}?var-namespace=${{__field.labels.namespace}}"
                "&var-agreement=${__field.labels.agreement}&${__url_time_range}"
                "&var-datasource=${datasource}")
TO_AGREEMENT_ROW = (f"/d/{AGREEMENT_UID}?var-namespace=${{__data.fields.namespace}}"
                    "&var-agreement=${__data.fields.agreement}&${__url_time_range}"
                    "&var-datasource=${datasource}")
"""From a table row: a table's fields carry no labels, its label columns are fields."""

# State of an agreement as one number per agreement, worse states higher, so that
# max_over_time keeps the worst state of each step: (state, code, colour).
STATES = (("Up", 1, "green"), ("Maintenance", 2, "blue"), ("Unknown", 3, "text"),
          ("Degraded", 4, "orange"), ("Down", 5, "red"))


SEVERE = 'severity=~"P1|P2"'
FAILURE = 'result="failure"'


def severity_is(severity: str) -> str:
    return f'severity="{severity}"'


def sel(metric: str, scope: str, extra: str = "") -> str:
    return f"{metric}{{{scope}{',' + extra if extra else ''}}}"


def query(expr: str, legend: str = "", instant: bool = False, table_format: bool = False,
          ref: str = "") -> prometheus.Dataquery:
    q = prometheus.Dataquery().expr(expr).legend_format(legend or "__auto").datasource(DATASOURCE)
    q = q.instant() if instant else q.range()
    if table_format:
        q = q.format(PromQueryFormat.TABLE)
    return q.ref_id(ref) if ref else q


def state_code(scope: str, over: str | None, by: str = BY) -> str:
    """The worst state of each agreement (of each step with ``over``) as its STATES code."""
    parts = []
    for name, code, _ in STATES:
        series = sel("sla_state", scope, f'state="{name}"')
        if over:
            series = f"max_over_time({series}[{over}])"
        parts.append(f"({series} == 1) * 0 + {code}")
    return f"max by ({by}) ({' or '.join(parts)})"


def error_ratio(window: str, scope: str) -> str:
    """The recorded error ratio, or the same ratio from the raw counters for an agreement
    without recording rules (alerting disabled, or rules not loaded)."""
    raw = (f"sum by ({BY}) (rate({sel('sla_downtime_seconds_total', scope)}[{window}])) / "
           f"sum by ({BY}) (rate({sel('sla_eligible_seconds_total', scope)}[{window}]))")
    return f"({sel(f'sla:error_ratio:rate{window}', scope)} or on ({BY}) ({raw}))"


def burn(window: str, scope: str) -> str:
    """Error ratio over ``window`` divided by what the objective allows: the burn rate."""
    return (f"{error_ratio(window, scope)} / on ({BY}) group_left () "
            f"(1 - max by ({BY}) ({sel('sla_objective_ratio', scope)}))")


def exhaustion(scope: str) -> str:
    """Seconds until the budget left is spent at the downtime rate of the last hour
    (0 once spent; none while nothing is spent)."""
    return (f"clamp_min(max by ({BY}) ({sel('sla_error_budget_remaining_seconds', scope)}), 0) "
            f"/ (sum by ({BY}) (rate({sel('sla_downtime_seconds_total', scope)}"
            f"[{EXHAUSTION_WINDOW}])) > 0)")


def per_interval(metric: str, scope: str, by: str, extra: str = "") -> str:
    """A counter's growth in each step: the difference of its values one $__interval apart.
    Steps tile the range (Grafana aligns them), so the bars add up to the counter's growth
    and stay put when zooming (increase over overlapping $__rate_interval windows did not)."""
    series = sel(metric, scope, extra)
    return (f"clamp_min(sum by ({by}) ({series}) - sum by ({by}) ({series} offset $__interval), 0)"
            if by else f"clamp_min(sum({series}) - sum({series} offset $__interval), 0)")


def per_interval_appearing(metric: str, scope: str, by: str) -> str:
    """``per_interval`` of a counter whose series appear with their first increment (failures
    by reason): a series absent one $__interval before counts from zero."""
    now = f"sum by ({by}) ({sel(metric, scope)})"
    before = f"sum by ({by}) ({sel(metric, scope)} offset $__interval)"
    return f"clamp_min({now} - ({before} or {now} * 0), 0)"


def alerts_firing(scope: str) -> str:
    firing = sel("ALERTS", scope, 'alertstate="firing",alertname=~"SLA.+"')
    return f"max by (alertname, severity, {BY}, long_window, short_window) ({firing})"


def thresholds(*steps: tuple[float | None, str]) -> d.ThresholdsConfig:
    return d.ThresholdsConfig().mode(m.ThresholdsMode.ABSOLUTE).steps(
        [m.Threshold(color=color, value=value) for value, color in steps])


def link(title: str, uid: str, url: str, include_vars: bool) -> d.DashboardLink:
    return (d.DashboardLink(title).type(m.DashboardLinkType.LINK).url(url)
            .include_vars(include_vars).keep_time(True).icon("dashboard"))


def to_detail(title: str, url: str = TO_AGREEMENT) -> d.DashboardLink:
    return d.DashboardLink(title).url(url)


def state_mappings() -> list[dict[str, Any]]:
    return [{"type": "value", "options": {
        str(code): {"text": name, "color": color, "index": index}
        for index, (name, code, color) in enumerate(STATES)}}]


STATE_TIMELINE = {"fieldConfig": {"defaults": {
    "color": {"mode": "thresholds"}, "mappings": state_mappings(),
    "thresholds": {"mode": "absolute", "steps": [{"color": "text", "value": None}]}}},
    "options": {"mergeValues": True, "showValue": "auto", "alignValue": "left",
                "rowHeight": 0.9}}
"""A state timeline of STATES codes: each state its own colour, never the default scale."""


def fixed(ref: str, color: str) -> dict[str, Any]:
    return {"matcher": {"id": "byFrameRefID", "options": ref},
            "properties": [{"id": "color", "value": {"mode": "fixed", "fixedColor": color}}]}


def by_name(name: str, *properties: tuple[str, Any]) -> dict[str, Any]:
    return {"matcher": {"id": "byName", "options": name},
            "properties": [{"id": key, "value": value} for key, value in properties]}


def ref_thresholds(ref: str, color: str) -> dict[str, Any]:
    return {"matcher": {"id": "byFrameRefID", "options": ref}, "properties": [
        {"id": "thresholds", "value": {"mode": "absolute", "steps": [
            {"color": "green", "value": None}, {"color": color, "value": 1}]}}]}


def organize(renames: dict[str, str], hide: tuple[str, ...] = ("Time",)) -> m.DataTransformerConfig:
    return m.DataTransformerConfig(id_val="organize", options={
        "excludeByName": dict.fromkeys(hide, True), "renameByName": renames})


MERGE = m.DataTransformerConfig(id_val="merge", options={})
BURN_AXIS = {"fieldConfig": {"defaults": {
    "custom": {"scaleDistribution": {"type": "symlog", "log": 10, "linearThreshold": 1},
               "thresholdsStyle": {"mode": "dashed"}},
    "thresholds": {"mode": "absolute", "steps": [
        {"color": "green", "value": None},
        *({"color": color, "value": value} for value, color in BURN_LINES)]}}}}
"""Lines at the alerts' burn rates, on a symmetric log axis: a full outage (1000x at 99.9%)
does not flatten the rest, and 0 (no downtime) still has a place."""
BELOW_ZERO_RED = {"fieldConfig": {"defaults": {
    "custom": {"thresholdsStyle": {"mode": "line+area"}},
    "thresholds": {"mode": "absolute", "steps": [
        {"color": "red", "value": None}, {"color": "green", "value": 0}]}}}}
BARS = {"fieldConfig": {"defaults": {"custom": {
    "drawStyle": "bars", "fillOpacity": 80, "barAlignment": -1, "lineWidth": 1}}}}
"""A value at t covers the step before t: the bar ends at t."""


@dataclass
class Board:
    """A dashboard and its panels, each with a stable id (links and the API address panels
    by id: a panel inserted later takes a new number, the others keep theirs), a size on the
    24-column grid and JSON merged over what the SDK writes."""
    dashboard: d.Dashboard
    panels: list[tuple[int, Any, int, int, dict[str, Any]]] = field(default_factory=list)
    annotations: list[Annotation] = field(default_factory=list)

    def add(self, panel_id: int, panel: Any, w: int, h: int, extra: dict[str, Any] | None = None) -> None:
        assert all(panel_id != known for known, *_ in self.panels), f"panel id {panel_id} twice"
        self.panels.append((panel_id, panel.id(panel_id), w, h, extra or {}))


def variables(multi: bool) -> list[d.DatasourceVariable | d.QueryVariable]:
    def label_values(name: str, selector: str) -> d.QueryVariable:
        variable = (d.QueryVariable(name).label(name.capitalize()).datasource(DATASOURCE)
                    .query({"query": f"label_values({selector}, {name})", "refId": name})
                    .refresh(m.VariableRefresh.ON_TIME_RANGE_CHANGED)
                    .sort(m.VariableSort.ALPHABETICAL_ASC).multi(multi).include_all(multi))
        # "All" as one regex, not every value spelled out (the queries use =~).
        return variable.all_value(".*") if multi else variable

    return [d.DatasourceVariable("datasource").label("Data source").type("prometheus"),
            label_values("namespace", "sla_objective_ratio"),
            label_values("agreement", 'sla_objective_ratio{namespace=~"$namespace"}')]


@dataclass
class Annotation:
    name: str
    color: str
    expr: str
    title: str
    text: str
    tags: str
    panels: list[int] | None = None

    def json(self) -> dict[str, Any]:
        built: dict[str, Any] = {
            "name": self.name, "datasource": {"type": "prometheus", "uid": "${datasource}"},
            "enable": True, "hide": False, "iconColor": self.color, "expr": self.expr,
            "step": "1m", "titleFormat": self.title, "textFormat": self.text,
            "tagKeys": self.tags, "useValueForTime": False}
        if self.panels is not None:
            built["filter"] = {"exclude": False, "ids": self.panels}
        return built


def incident_annotations(scope: str, severities: str | None,
                         panels: list[int] | None) -> list[Annotation]:
    extra = f'severity=~"{severities}"' if severities else ""
    label = f"Open {severities.replace('|', '/')} incidents" if severities else "Open incidents"
    return [
        Annotation(label, "red",
                   f"max by ({BY}, severity) ({sel('sla_incidents_open', scope, extra)}) > 0",
                   "{{severity}} incident open: {{namespace}}/{{agreement}}",
                   "{{namespace}}/{{agreement}} has an open {{severity}} incident",
                   "namespace,agreement,severity", panels),
        Annotation("Maintenance", "blue",
                   f"max by ({BY}) ({sel('sla_maintenance_active', scope)}) > 0",
                   "Maintenance: {{namespace}}/{{agreement}}",
                   "{{namespace}}/{{agreement}} in scheduled maintenance (not counted)",
                   "namespace,agreement", panels),
    ]


def percent_stat(title: str) -> stat.Panel:
    return (stat.Panel().title(title).unit("percentunit").decimals(3)
            .reduce_options(ReduceDataOptions().calcs(["lastNotNull"]))
            .data_links([to_detail("Open the agreement")]))


def alerts_table(scope: str, to_detail_row: bool) -> table.Panel:
    panel = (table.Panel().title("SLA alerts firing now")
             .with_target(query(alerts_firing(scope), instant=True, table_format=True))
             .no_value("No SLA alert is firing")
             .with_transformation(organize({"alertname": "Alert", "severity": "Severity",
                                            "long_window": "Long window",
                                            "short_window": "Short window"},
                                           hide=("Time", "Value"))))
    return panel.data_links([to_detail("Open ${__data.fields.agreement}", TO_AGREEMENT_ROW)]) \
        if to_detail_row else panel


def late_responses(scope: str) -> table.Panel:
    late = "round(sum by ({by}, severity) (increase({metric}[$__range]))) > 0"
    return (table.Panel().title("Responses late (over the time range)")
            .description("Incidents not acknowledged, and support requests not answered, "
                         "within the agreement's response target, by severity "
                         "(sla_incident_response_breached_total, "
                         "sla_support_response_breached_total).")
            .with_target(query(late.format(by=BY, metric=sel(
                "sla_incident_response_breached_total", scope)),
                instant=True, table_format=True, ref="A"))
            .with_target(query(late.format(by=BY, metric=sel(
                "sla_support_response_breached_total", scope)),
                instant=True, table_format=True, ref="B"))
            .no_value("None late")
            .with_transformation(MERGE)
            .with_transformation(organize({"Value #A": "Incidents",
                                           "Value #B": "Support requests"})))


def closed_periods(scope: str) -> table.Panel:
    period = sel("sla_period_availability_ratio", scope)
    return (table.Panel().title("Closed periods").unit("percentunit").decimals(3)
            .description("Availability of each agreement's last closed period, by how much "
                         "it met (or missed) the objective, and the service credit it earned "
                         "(percent of the period's fees, from spec.credits).")
            .with_target(query(f"max by ({BY}, period) ({period})", instant=True,
                               table_format=True, ref="A"))
            .with_target(query(f"max by ({BY}, period) ({period}) - on ({BY}) group_left () "
                               f"max by ({BY}) ({sel('sla_objective_ratio', scope)})",
                               instant=True, table_format=True, ref="B"))
            .with_target(query(f"max by ({BY}, period) "
                               f"({sel('sla_period_credit_percent', scope)})",
                               instant=True, table_format=True, ref="C"))
            .with_transformation(MERGE)
            .with_transformation(organize({"period": "Period", "Value #A": "Availability",
                                           "Value #B": "Above the objective by",
                                           "Value #C": "Credit earned"})))


MARGIN_CELLS = by_name("Above the objective by",
                       ("thresholds", {"mode": "absolute", "steps": [
                           {"color": "red", "value": None}, {"color": "green", "value": 0}]}),
                       ("custom.cellOptions", {"type": "color-background"}))
CREDIT_CELLS = by_name("Credit earned", ("unit", "percent"), ("decimals", 0),
                       ("thresholds", {"mode": "absolute", "steps": [
                           {"color": "green", "value": None}, {"color": "red", "value": 1}]}),
                       ("custom.cellOptions", {"type": "color-text"}))


# A probe-success timeline: 0 failing in red, 1 ok in green, by threshold and by value.
PROBE_SUCCESS_TIMELINE: dict[str, Any] = {"fieldConfig": {"defaults": {
    "color": {"mode": "thresholds"},
    "thresholds": {"mode": "absolute", "steps": [
        {"color": "red", "value": None}, {"color": "green", "value": 1}]},
    "mappings": [{"type": "value", "options": {
        "0": {"text": "failing", "color": "red", "index": 0},
        "1": {"text": "ok", "color": "green", "index": 1}}}]}},
    "options": STATE_TIMELINE["options"]}


LOCATION_TIMELINE: dict[str, Any] = {"fieldConfig": {"defaults": {
    "color": {"mode": "thresholds"},
    "thresholds": {"mode": "absolute", "steps": [
        {"color": "red", "value": None}, {"color": "green", "value": 1},
        {"color": "orange", "value": 2}]},
    "mappings": [{"type": "value", "options": {
        "0": {"text": "stale", "color": "red", "index": 0},
        "1": {"text": "fresh", "color": "green", "index": 1},
        "2": {"text": "disagrees", "color": "orange", "index": 2}}}]}},
    "options": STATE_TIMELINE["options"]}
"""sla_location_up x (1 + sla_location_disagreement): 0 stale, 1 fresh, 2 fresh and disagreeing."""


def overview() -> Board:
    board = Board(d.Dashboard("SLA overview").uid(OVERVIEW_UID).tags(TAGS).time("now-7d", "now")
                  .refresh("1m").editable().tooltip(m.DashboardCursorSync.CROSSHAIR)
                  .description("Every agreement: alerts firing, the operator's health, state, "
                               "availability against each objective, error budget left and "
                               "when it runs out, burn rates, failing endpoints, late "
                               "responses and closed periods.")
                  .variables(variables(multi=True))
                  # A multi-value selection does not fit the detail's single-value variables:
                  # the header link keeps the time range and data source only.
                  .link(link("Agreement detail", AGREEMENT_UID,
                             f"/d/{AGREEMENT_UID}?var-datasource=${{datasource}}", False)))
    board.add(1, alerts_table(MANY, True), 12, 7)
    board.add(2, stat.Panel().title("Operator: replicas leading")
              .description("sla_operator_leader summed: one per shard when all is well. "
                           "Nothing here means no operator is scraped: nothing is probed.")
              .with_target(query("sum(sla_operator_leader)", "leading", instant=True))
              .no_value("No operator metrics: the operator is down or not scraped")
              .thresholds(thresholds((None, "red"), (1, "green"))), 4, 7)
    board.add(3, stat.Panel().title("Operator: shards with a leader")
              .with_target(query("count by (shards) (sla_operator_shard * on (job, instance) "
                                 "group_left () (sla_operator_leader == 1))",
                                 "of {{shards}}", instant=True))
              .no_value("No operator metrics").thresholds(thresholds((None, "red"), (1, "green"))),
              4, 7)
    board.add(4, stat.Panel().title("Operator: probe start lag p90 (10m)").unit("s").decimals(2)
              .with_target(query("histogram_quantile(0.9, sum by (le) "
                                 "(rate(sla_operator_probe_lag_seconds_bucket[10m])))", "p90",
                                 instant=True))
              .no_value("No operator metrics")
              .thresholds(thresholds((None, "green"), (PROBE_LAG_SECONDS, "red"))), 4, 7)
    state = (f"max by ({BY}, service, environment) ({sel('sla_availability_ratio', MANY)})")
    objective = f"max by ({BY}) ({sel('sla_objective_ratio', MANY)})"
    availability = f"max by ({BY}) ({sel('sla_availability_ratio', MANY)})"
    board.add(5, table.Panel().title("Agreements")
              .description("One row per agreement (worst state first); a row opens the "
                           "agreement's dashboard.")
              .with_target(query(state, instant=True, table_format=True, ref="A"))
              .with_target(query(objective, instant=True, table_format=True, ref="B"))
              .with_target(query(f"{availability} - on ({BY}) {objective}", instant=True,
                                 table_format=True, ref="C"))
              .with_target(query(f"max by ({BY}) "
                                 f"({sel('sla_error_budget_remaining_ratio', MANY)})",
                                 instant=True, table_format=True, ref="D"))
              .with_target(query(f"max by ({BY}) "
                                 f"({sel('sla_error_budget_remaining_seconds', MANY)}) / 60",
                                 instant=True, table_format=True, ref="E"))
              .with_target(query(exhaustion(MANY), instant=True, table_format=True, ref="F"))
              .with_target(query(state_code(MANY, None), instant=True, table_format=True, ref="G"))
              .with_target(query(f"sum by ({BY}) "
                                 f"({sel('sla_incidents_open', MANY, SEVERE)})",
                                 instant=True, table_format=True, ref="H"))
              .data_links([to_detail("Open ${__data.fields.agreement}", TO_AGREEMENT_ROW)])
              # One row per agreement: the instant queries joined on their label columns.
              .with_transformation(MERGE)
              .with_transformation(organize({
                  "namespace": "Namespace", "agreement": "Agreement", "service": "Service",
                  "environment": "Environment", "Value #A": "Availability",
                  "Value #B": "Objective", "Value #C": "Above the objective by",
                  "Value #D": "Budget left", "Value #E": "Budget left (minutes)",
                  "Value #F": "Budget spent in", "Value #G": "State",
                  "Value #H": "Open P1/P2 incidents"})), 24, 9, {
        "options": {"sortBy": [{"displayName": "State", "desc": True}]},
        "fieldConfig": {"overrides": [
            by_name("Availability", ("unit", "percentunit"), ("decimals", 3)),
            by_name("Objective", ("unit", "percentunit"), ("decimals", 3)),
            {**MARGIN_CELLS, "properties": [*MARGIN_CELLS["properties"],
                                            {"id": "unit", "value": "percentunit"},
                                            {"id": "decimals", "value": 3}]},
            by_name("Budget left", ("unit", "percentunit"), ("decimals", 1),
                    ("thresholds", {"mode": "absolute", "steps": [
                        {"color": "red", "value": None}, {"color": "orange", "value": 0},
                        {"color": "green", "value": 0.25}]}),
                    ("custom.cellOptions", {"type": "color-text"})),
            by_name("Budget left (minutes)", ("unit", "m"), ("decimals", 1)),
            by_name("Budget spent in", ("unit", "s"), ("mappings", [
                {"type": "value", "options": {"0": {"text": "spent", "color": "red"}}},
                {"type": "special", "options": {"match": "null", "result": {
                    "text": "not burning", "color": "green"}}}])),
            by_name("State", ("mappings", state_mappings()),
                    ("custom.cellOptions", {"type": "color-background"}),
                    ("color", {"mode": "thresholds"})),
            by_name("Open P1/P2 incidents", ("thresholds", {"mode": "absolute", "steps": [
                {"color": "green", "value": None}, {"color": "red", "value": 1}]}),
                ("custom.cellOptions", {"type": "color-text"})),
        ]}})
    board.add(6, percent_stat("Availability (current period) against each objective")
              .description("Green: at or above the agreement's own objective; red: below it.")
              .with_target(query(f"{availability} >= on ({BY}) {objective}",
                                 "{{namespace}}/{{agreement}}", instant=True, ref="A"))
              .with_target(query(f"{availability} < on ({BY}) {objective}",
                                 "{{namespace}}/{{agreement}}", instant=True, ref="B")),
              8, 6, {"fieldConfig": {"overrides": [fixed("A", "green"), fixed("B", "red")]},
                     "options": {"colorMode": "background"}})
    board.add(7, percent_stat("Error budget left")
              .description("Orange: under a quarter left; red: spent (negative: the "
                           "objective is breached).")
              .with_target(query(f"max by ({BY}) ({sel('sla_error_budget_remaining_ratio', MANY)})",
                                 "{{namespace}}/{{agreement}}", instant=True))
              .decimals(1)
              .thresholds(thresholds((None, "red"), (0, "orange"), (0.25, "green"))), 8, 6)
    incidents = stat.Panel().title("Open incidents by severity").data_links(
        [d.DashboardLink("Open the agreement detail").url(
            f"/d/{AGREEMENT_UID}?${{__url_time_range}}&var-datasource=${{datasource}}")])
    for ref, severity in zip("ABCD", ("P1", "P2", "P3", "P4"), strict=True):
        incidents.with_target(query(
            f"sum({sel('sla_incidents_open', MANY, severity_is(severity))})",
            severity, instant=True, ref=ref))
    board.add(8, incidents, 8, 6, {"fieldConfig": {"overrides": [
        ref_thresholds("A", "red"), ref_thresholds("B", "red"),
        ref_thresholds("C", "orange"), ref_thresholds("D", "yellow")]},
        "options": {"colorMode": "background"}})
    board.add(9, statetimeline.Panel().title("State (worst in each interval)")
              .with_target(query(state_code(MANY, "$__interval"), "{{namespace}}/{{agreement}}"))
              .data_links([to_detail("Open the agreement")]), 24, 7, STATE_TIMELINE)
    burns = timeseries.Panel().title("Burn rate (1 = spending the budget exactly)").unit("x")
    for window in OVERVIEW_WINDOWS:
        burns.with_target(query(burn(window, MANY), f"{{{{namespace}}}}/{{{{agreement}}}} {window}"))
    board.add(10, burns.data_links([to_detail("Open the agreement")]), 12, 9, BURN_AXIS)
    board.add(11, timeseries.Panel().title("Error budget left (minutes; red below zero)").unit("m")
              .with_target(query(f"max by ({BY}) "
                                 f"({sel('sla_error_budget_remaining_seconds', MANY)}) / 60",
                                 "{{namespace}}/{{agreement}}"))
              .data_links([to_detail("Open the agreement")]), 12, 9, BELOW_ZERO_RED)
    board.add(12, table.Panel().title("Endpoints with failed probes (top 10 over the time range)")
              .with_target(query(
                  f"topk(10, round(sum by ({BY}, endpoint) (increase("
                  f"{sel('sla_probes_total', MANY, FAILURE)}"
                  f"[$__range]))) > 0)", instant=True, table_format=True))
              .no_value("No failed probes")
              .data_links([to_detail("Open ${__data.fields.agreement}", TO_AGREEMENT_ROW)])
              .with_transformation(organize({"Value": "Failed probes"})), 8, 8,
              {"options": {"sortBy": [{"displayName": "Failed probes", "desc": True}]}})
    board.add(13, late_responses(MANY).data_links(
        [to_detail("Open ${__data.fields.agreement}", TO_AGREEMENT_ROW)]), 8, 8)
    board.add(14, closed_periods(MANY), 8, 8,
              {"fieldConfig": {"overrides": [MARGIN_CELLS, CREDIT_CELLS]}})
    board.add(15, statetimeline.Panel().title("Locations (worst in each interval)")
              .description("Where agreements are probed from several locations (run "
                           "--location, sla-operator probe): stale when a location's results "
                           "or its Lease went stale (its view no longer counts towards a "
                           "quorum); disagrees when it has seen an endpoint otherwise than "
                           "the quorum for longer than --disagreement-after (never downtime, "
                           "see the LocationDisagrees Events).")
              .with_target(query("min by (location) (min_over_time(sla_location_up[$__interval]))"
                                 " * on (location) (1 + max by (location) (max_over_time("
                                 "sla_location_disagreement[$__interval])))", "{{location}}"))
              .no_value("One location: the operator runs without --location"),
              24, 6, LOCATION_TIMELINE)
    board.annotations = incident_annotations(MANY, "P1|P2", [9, 10, 11, 15])
    return board


def agreement() -> Board:
    board = Board(d.Dashboard("SLA agreement").uid(AGREEMENT_UID).tags(TAGS).time("now-30d", "now")
                  .refresh("1m").editable().tooltip(m.DashboardCursorSync.CROSSHAIR)
                  .description("One agreement: state, availability and budget over the "
                               "period, burn rates, downtime, alerts, incidents, closed "
                               "periods and its endpoints' probes.")
                  .variables(variables(multi=False))
                  .link(link("SLA overview", OVERVIEW_UID, f"/d/{OVERVIEW_UID}", True)))
    board.add(1, statetimeline.Panel().title("State (worst in each interval)")
              .with_target(query(state_code(ONE, "$__interval"), "{{agreement}}")), 24, 4,
              STATE_TIMELINE)
    board.add(2, timeseries.Panel().title("Availability against the objective")
              .unit("percentunit").decimals(3)
              .with_target(query(f"max({sel('sla_availability_ratio', ONE)})", "availability"))
              .with_target(query(f"max({sel('sla_objective_ratio', ONE)})", "objective")),
              12, 8, {"fieldConfig": {"overrides": [
                  fixed("B", "red"),
                  {"matcher": {"id": "byFrameRefID", "options": "B"}, "properties": [
                      {"id": "custom.lineStyle", "value": {"fill": "dash", "dash": [10, 10]}}]}]}})
    board.add(3, timeseries.Panel().title("Error budget left (minutes; red below zero)").unit("m")
              .with_target(query(f"max({sel('sla_error_budget_remaining_seconds', ONE)}) / 60",
                                 "budget left")), 12, 8, BELOW_ZERO_RED)
    burns = timeseries.Panel().title("Burn rate per window (1 = spending the budget exactly)").unit("x")
    for window in WINDOWS:
        burns.with_target(query(burn(window, ONE), window))
    board.add(4, burns, 12, 8, BURN_AXIS)
    board.add(5, timeseries.Panel().title("Downtime per interval (seconds)").unit("s")
              .description("Seconds Down in each interval, outside maintenance and "
                           "exclusions; the bars add up to the downtime of the range.")
              .with_target(query(per_interval("sla_downtime_seconds_total", ONE, ""),
                                 "downtime")), 12, 8, BARS)
    board.add(6, stat.Panel().title(f"Budget spent in (at the last {EXHAUSTION_WINDOW}'s burn)")
              .unit("s").with_target(query(exhaustion(ONE), "spent in", instant=True))
              .no_value("Not burning")
              .reduce_options(ReduceDataOptions().calcs(["lastNotNull"]))
              .thresholds(thresholds((None, "red"), (86400, "orange"), (7 * 86400, "green"))),
              6, 6, {"fieldConfig": {"defaults": {"mappings": [
                  {"type": "value", "options": {"0": {"text": "spent", "color": "red"}}}]}}})
    board.add(7, alerts_table(ONE, False), 18, 6)
    board.add(8, statetimeline.Panel().title("Probe success per endpoint (worst in each interval)")
              .with_target(query(f"min by (endpoint) (min_over_time("
                                 f"{sel('sla_probe_success', ONE)}[$__interval]))", "{{endpoint}}")),
              24, 6, PROBE_SUCCESS_TIMELINE)
    board.add(9, timeseries.Panel().title("Failed probes per endpoint and interval")
              .with_target(query(per_interval("sla_probes_total", ONE, "endpoint",
                                              FAILURE), "{{endpoint}}")), 12, 8, BARS)
    board.add(10, timeseries.Panel().title("Probe latency p95").unit("s")
              # Per endpoint only where the operator runs with --endpoint-histograms.
              .with_target(query("histogram_quantile(0.95, sum by (le) "
                                 f"(rate({sel('sla_agreement_probe_duration_seconds_bucket', ONE)}"
                                 "[$__rate_interval])))", "all endpoints"))
              .with_target(query("histogram_quantile(0.95, sum by (endpoint, le) "
                                 f"(rate({sel('sla_probe_duration_seconds_bucket', ONE)}"
                                 "[$__rate_interval])))", "{{endpoint}}")), 12, 8)
    incidents = timeseries.Panel().title("Open incidents by severity")
    for ref, severity in zip("ABCD", ("P1", "P2", "P3", "P4"), strict=True):
        incidents.with_target(query(
            f"sum({sel('sla_incidents_open', ONE, severity_is(severity))})",
            severity, ref=ref))
    board.add(11, incidents, 8, 8, {"fieldConfig": {"overrides": [
        fixed("A", "red"), fixed("B", "orange"), fixed("C", "yellow"), fixed("D", "blue")]}})
    board.add(12, late_responses(ONE), 8, 8)
    board.add(13, closed_periods(ONE), 8, 8,
              {"fieldConfig": {"overrides": [MARGIN_CELLS, CREDIT_CELLS]}})
    board.add(14, timeseries.Panel().title("Certificate expiry per endpoint (days left)")
              .unit("suffix: days").decimals(1)
              .with_target(query(f"(max by (endpoint) "
                                 f"({sel('sla_probe_certificate_expiry_timestamp_seconds', ONE)})"
                                 " - time()) / 86400", "{{endpoint}}"))
              .thresholds(thresholds((None, "red"), (CERTIFICATE_DAYS, "green"))), 24, 7,
              {"fieldConfig": {"defaults": {"custom": {"thresholdsStyle": {"mode": "line+area"}}}}})
    board.add(15, timeseries.Panel().title("Failed probes by reason per interval")
              .description("Why the agreement's probes failed: dns, connect, timeout, tls, "
                           "certificate, status, body, policy or protocol (docs/API.md, "
                           "\"Why a probe failed\"); each endpoint's status message has "
                           "the detail.")
              .with_target(query(per_interval_appearing("sla_probe_failures_total", ONE,
                                                        "reason"), "{{reason}}")), 24, 8, BARS)
    board.add(16, statetimeline.Panel().title("Probe success per location (worst in each interval)")
              .description("Where the agreement is probed from several locations (run "
                           "--location, sla-operator probe): each location's worst result, "
                           "another location's as it last reported it. A quorum of them "
                           "decides; one location failing alone is not downtime.")
              .with_target(query(f"min by (location) (min_over_time("
                                 f"{sel('sla_probe_success', ONE)}[$__interval]))", "{{location}}")),
              24, 6, PROBE_SUCCESS_TIMELINE)
    board.annotations = incident_annotations(ONE, None, None)
    return board


def layout(sizes: list[tuple[int, int]]) -> list[dict[str, int]]:
    """Left to right, a new row when a panel would cross column 24."""
    placed, x, y, row = [], 0, 0, 0
    for w, h in sizes:
        if x + w > 24:
            x, y, row = 0, y + row, 0
        placed.append({"x": x, "y": y, "w": w, "h": h})
        x, row = x + w, max(row, h)
    return placed


def merged(base: Any, extra: Any) -> Any:
    if isinstance(base, dict) and isinstance(extra, dict):
        out = dict(base)
        for key, value in extra.items():
            out[key] = merged(base.get(key), value) if key in base else copy.deepcopy(value)
        return out
    return copy.deepcopy(extra)


def finished(board: Board) -> dict[str, Any]:
    """The dashboard's JSON: panels at their ids and places, the data source on each, query
    refIds, an options object where none was set (Grafana fills its defaults into {}, not
    null), and the annotations with their title, text and tags."""
    for _, panel, *_ in board.panels:
        board.dashboard.with_panel(panel)
    model: dict[str, Any] = json.loads(json.dumps(board.dashboard.build(), cls=JSONEncoder))
    panels = []
    places = layout([(w, h) for _, _, w, h, _ in board.panels])
    for built, (panel_id, _, _, _, extra), place in zip(model["panels"], board.panels, places,
                                                        strict=True):
        assert built["id"] == panel_id
        built["gridPos"] = place
        built["datasource"] = {"type": "prometheus", "uid": "${datasource}"}
        built["options"] = built.get("options") or {}
        built.setdefault("fieldConfig", {"defaults": {}, "overrides": []})
        for index, target in enumerate(built.get("targets") or []):
            target["refId"] = target.get("refId") or chr(ord("A") + index)
        panels.append(merged(built, extra))
    model["panels"] = panels
    model["annotations"] = {"list": [a.json() for a in board.annotations]}
    return model


def render() -> dict[str, str]:
    """File name -> JSON text of each dashboard."""
    boards = {"sla-overview.json": overview(), "sla-agreement.json": agreement()}
    return {name: json.dumps(finished(board), indent=2, sort_keys=True) + "\n"
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
