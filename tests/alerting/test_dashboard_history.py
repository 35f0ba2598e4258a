"""Every dashboard panel and annotation against a Prometheus holding a known history.

The history is written as OpenMetrics and loaded with `promtool tsdb create-blocks-from
openmetrics` (no recording rules: as for agreements with `spec.alerting.enabled: false`):
one day, a sample every 30 s, of two agreements as the operator exports them:

- shop/checkout (objective 99.9%, endpoints api and web): Up, a 7-minute outage of api at
  20:03-20:10 with a P1 incident open 20:03-20:40 (its response late at 20:08) and the page
  alert firing 20:05-20:20, scheduled maintenance 22:10-23:10, then Up again;
- shop/search (objective 99%, endpoint api): Up, a 2-minute outage at 21:05-21:07, a P4
  incident (a certificate warning) open all day, its certificate expiring 10 days after the
  history ends.

Each query is evaluated the way Grafana sends it (variables filled, `$__interval` = the step)
at chosen instants, and asserted to show what its panel's title promises.
"""

from __future__ import annotations

import json
import math
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
from alerting_support import REPO, Process, binary, free_port, get_json, wait_for

STEP = 30
HOUR, MINUTE, DAY = 3600, 60, 86400
START = (int(time.time()) // DAY - 2) * DAY
"""Midnight (UTC) two days ago: history from there, one day long."""
END = START + DAY
OUTAGE = (20 * HOUR + 3 * MINUTE, 20 * HOUR + 10 * MINUTE)
INCIDENT = (20 * HOUR + 3 * MINUTE, 20 * HOUR + 40 * MINUTE)
LATE_AT = 20 * HOUR + 8 * MINUTE
PAGE = (20 * HOUR + 5 * MINUTE, 20 * HOUR + 20 * MINUTE)
MAINTENANCE = (22 * HOUR + 10 * MINUTE, 23 * HOUR + 10 * MINUTE)
SHORT_OUTAGE = (21 * HOUR + 5 * MINUTE, 21 * HOUR + 7 * MINUTE)
PERIOD = 30 * DAY
OPERATOR = {"job": "sla-operator", "instance": "10.0.0.7:9090"}


def within(span: tuple[int, int], offset: int) -> bool:
    """A sample at ``offset`` covers the 30 s before it."""
    return span[0] < offset <= span[1]


@dataclass(eq=False)
class Agreement:
    namespace: str
    name: str
    service: str
    objective: float
    endpoints: tuple[str, ...]
    outage: tuple[int, int]
    maintenance: tuple[int, int] | None

    @property
    def labels(self) -> dict[str, str]:
        return {"namespace": self.namespace, "agreement": self.name, "service": self.service,
                "environment": "production", **OPERATOR}

    def state(self, offset: int) -> str:
        if self.maintenance and within(self.maintenance, offset):
            return "Maintenance"
        return "Down" if within(self.outage, offset) else "Up"

    @cached_property
    def _counted(self) -> list[tuple[int, int]]:
        """Samples Down and samples outside maintenance up to each sample, by index."""
        down = eligible = 0
        counted = [(0, 0)]
        for offset in range(STEP, DAY + 1, STEP):
            down += self.state(offset) == "Down"
            eligible += self.state(offset) != "Maintenance"
            counted.append((down, eligible))
        return counted

    def downtime(self, offset: int) -> float:
        """sla_downtime_seconds_total at ``offset`` (a sample's)."""
        return float(STEP * self._counted[offset // STEP][0])

    def eligible(self, offset: int) -> float:
        return float(STEP * self._counted[offset // STEP][1])

    def probes(self, offset: int, endpoints: tuple[str, ...]) -> tuple[int, int]:
        """Probes run and probes failed up to ``offset``."""
        failed = self._counted[offset // STEP][0] if "api" in endpoints else 0
        return offset // STEP * len(endpoints), failed

    @property
    def budget(self) -> float:
        return (1 - self.objective) * PERIOD

    def failing(self, endpoint: str, offset: int) -> bool:
        return endpoint == "api" and self.state(offset) == "Down"


CHECKOUT = Agreement("shop", "checkout", "Checkout", 0.999, ("api", "web"), OUTAGE, MAINTENANCE)
SEARCH = Agreement("shop", "search", "Search", 0.99, ("api",), SHORT_OUTAGE, None)
AGREEMENTS = (CHECKOUT, SEARCH)
CLOSED = {"checkout": 0.9985, "search": 0.995}
CREDIT = {"checkout": 10.0, "search": 0.0}  # checkout's last period missed 99.9%: its first tier
SUPPORT_LATE_AT = 21 * HOUR  # a P2 support request of search answered too late
"""The last closed period's availability: checkout missed its objective, search met its."""
CERTIFICATE = ("search", "api", END + 10 * DAY)
TIMEOUTS = 4
"""An outage's first failed probes time out; the rest are refused (reason connect)."""


LOCATIONS = ("a", "b", "c")
LOCATION_STALE = (6 * HOUR, 7 * HOUR)
"""Location c's results (or its Lease) stale for an hour."""
LOCATION_DISAGREES = (12 * HOUR, 12 * HOUR + 20 * MINUTE)
"""Location b sees an endpoint otherwise than the quorum for 20 minutes."""


def text(labels: dict[str, str]) -> str:
    return "{" + ",".join(f'{k}="{v}"' for k, v in labels.items()) + "}"


def history() -> Iterator[str]:
    """The OpenMetrics lines of the whole history, one series after the other."""
    offsets = range(0, DAY + 1, STEP)
    series: dict[str, list[tuple[dict[str, str], Callable[[int], float | None]]]] = {}

    def add(name: str, labels: dict[str, str], value: Callable[[int], float | None]) -> None:
        series.setdefault(name, []).append((labels, value))

    for a in AGREEMENTS:
        base = a.labels
        add("sla_objective_ratio", base, lambda o, a=a: a.objective)
        add("sla_availability_ratio", base,
            lambda o, a=a: 1 - a.downtime(o) / a.eligible(o) if a.eligible(o) else None)
        add("sla_error_budget_total_seconds", base, lambda o, a=a: a.budget)
        add("sla_error_budget_remaining_seconds", base, lambda o, a=a: a.budget - a.downtime(o))
        add("sla_error_budget_remaining_ratio", base,
            lambda o, a=a: (a.budget - a.downtime(o)) / a.budget)
        for state in ("Up", "Degraded", "Down", "Maintenance", "Unknown"):
            add("sla_state", {**base, "state": state},
                lambda o, a=a, s=state: float(a.state(o) == s))
        add("sla_maintenance_active", base, lambda o, a=a: float(a.state(o) == "Maintenance"))
        add("sla_downtime_seconds_total", base, a.downtime)
        add("sla_eligible_seconds_total", base, a.eligible)
        for severity in ("P1", "P2", "P3", "P4"):
            def open_incidents(o: int, a: Agreement = a, s: str = severity) -> float:
                if a is CHECKOUT and s == "P1":
                    return float(within(INCIDENT, o))
                return float(a is SEARCH and s == "P4" and o > HOUR)

            add("sla_incidents_open", {**base, "severity": severity}, open_incidents)
            add("sla_incident_response_breached_total", {**base, "severity": severity},
                lambda o, a=a, s=severity: float(a is CHECKOUT and s == "P1" and o >= LATE_AT))
            add("sla_support_response_breached_total", {**base, "severity": severity},
                lambda o, a=a, s=severity: float(a is SEARCH and s == "P2"
                                                 and o >= SUPPORT_LATE_AT))
        add("sla_period_availability_ratio", {**base, "period": "previous"},
            lambda o, a=a: CLOSED[a.name])
        add("sla_period_credit_percent", {**base, "period": "previous"},
            lambda o, a=a: CREDIT[a.name])
        for le, ok, failed in (("0.1", 1, 0), ("0.5", 1, 1), ("+Inf", 1, 1)):
            def bucket(o: int, a: Agreement = a, ok: int = ok, failed: int = failed,
                       endpoints: tuple[str, ...] = a.endpoints) -> float:
                run, failures = a.probes(o, endpoints)
                return float(ok * (run - failures) + failed * failures)

            add("sla_agreement_probe_duration_seconds_bucket", {**base, "le": le}, bucket)
            for endpoint in a.endpoints:
                add("sla_probe_duration_seconds_bucket", {**base, "endpoint": endpoint, "le": le},
                    lambda o, b=bucket, e=endpoint: b(o, endpoints=(e,)))
        for endpoint in a.endpoints:
            probe = {**base, "endpoint": endpoint}
            add("sla_probe_success", {**probe, "location": "default"},
                lambda o, a=a, e=endpoint: 0.0 if a.failing(e, o) else 1.0)
            for result in ("success", "failure"):
                add("sla_probes_total", {**probe, "result": result},
                    lambda o, a=a, e=endpoint, r=result: float(
                        a.probes(o, (e,))[1] if r == "failure"
                        else a.probes(o, (e,))[0] - a.probes(o, (e,))[1]))
            def failures(o: int, a: Agreement = a, e: str = endpoint) -> int:
                return a.probes(o, (e,))[1]

            for reason, count in (("timeout", lambda n: min(n, TIMEOUTS)),
                                  ("connect", lambda n: max(n - TIMEOUTS, 0))):
                # A reason's series appears with its first failure, as the operator exports it.
                add("sla_probe_failures_total", {**probe, "reason": reason},
                    lambda o, f=failures, c=count: float(c(f(o))) if c(f(o)) else None)
            if (a.name, endpoint) == CERTIFICATE[:2]:
                add("sla_probe_certificate_expiry_timestamp_seconds", probe,
                    lambda o: float(CERTIFICATE[2]))
    for location in LOCATIONS:  # the operator runs --location a; b and c report to it
        add("sla_location_up", {**OPERATOR, "location": location},
            lambda o, n=location: 0.0 if n == "c" and within(LOCATION_STALE, o) else 1.0)
        add("sla_location_disagreement", {**OPERATOR, "location": location},
            lambda o, n=location: float(n == "b" and within(LOCATION_DISAGREES, o)))
    add("sla_operator_leader", OPERATOR, lambda o: 1.0)
    add("sla_operator_shard", {**OPERATOR, "shard": "0", "shards": "1"}, lambda o: 1.0)
    for le in ("0.1", "1", "10", "+Inf"):
        add("sla_operator_probe_lag_seconds_bucket", {**OPERATOR, "le": le}, lambda o: 10.0 * o)
    add("ALERTS", {"alertname": "SLAErrorBudgetBurn", "alertstate": "firing", "severity": "page",
                   "namespace": "shop", "agreement": "checkout", "service": "Checkout",
                   "environment": "production", "long_window": "1h", "short_window": "5m"},
        lambda o: 1.0 if within(PAGE, o) else None)
    for name, members in series.items():
        for labels, value in members:
            for offset in offsets:
                sample = value(offset)
                if sample is not None:
                    yield f"{name}{text(labels)} {sample!r} {START + offset}\n"
    yield "# EOF\n"


class HistoryPrometheus:
    def __init__(self, workdir: Path) -> None:
        source, data = workdir / "history.om", workdir / "data"
        with source.open("w") as out:
            out.writelines(history())
        created = subprocess.run([binary("/usr/bin/promtool"), "tsdb", "create-blocks-from",
                                  "openmetrics", str(source), str(data)],
                                 capture_output=True, text=True, timeout=300)
        assert created.returncode == 0, created.stderr
        config = workdir / "prometheus.yml"
        config.write_text(json.dumps({"global": {"evaluation_interval": "1m"}}))
        self.port = free_port()
        self.process = Process("prometheus", [
            binary("/usr/bin/prometheus"), f"--config.file={config}",
            f"--storage.tsdb.path={data}", "--storage.tsdb.retention.time=3650d",
            f"--web.listen-address=127.0.0.1:{self.port}"], workdir / "prometheus.log")

    def api(self, path: str, **params: str) -> Any:
        answer = get_json(f"http://127.0.0.1:{self.port}/api/v1/{path}?{urlencode(params)}")
        assert answer["status"] == "success", answer
        return answer["data"]

    def ready(self) -> bool:
        self.process.assert_running()
        return bool(self.api("query", query="sla_objective_ratio", time=str(END))["result"])


@pytest.fixture(scope="module")
def prometheus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HistoryPrometheus]:
    server = HistoryPrometheus(tmp_path_factory.mktemp("history"))
    try:
        wait_for("Prometheus to load the history", server.ready, 90)
        yield server
    except AssertionError:
        print(server.process.log())
        raise
    finally:
        server.process.stop()


# ---------------------------------------------------------------- evaluating panels

Series = dict[tuple[tuple[str, str], ...], Any]


@dataclass
class Query:
    board: str
    title: str
    ref: str
    expr: str
    prometheus: HistoryPrometheus
    variables: dict[str, str]

    def filled(self, interval: int, range_seconds: int) -> str:
        expr = self.expr
        for name, value in (("$__rate_interval", "2m"), ("$__interval", f"{interval}s"),
                            ("$__range", f"{range_seconds}s"), *self.variables.items()):
            expr = expr.replace(name, value)
        assert "$" not in expr, expr
        return expr

    def at(self, offset: int, range_seconds: int = DAY) -> Series:
        """Instant query at START + offset: labels (without the name) -> value."""
        result = self.prometheus.api("query", query=self.filled(STEP, range_seconds),
                                     time=str(START + offset))["result"]
        return {key(r["metric"]): float(r["value"][1]) for r in result}

    def over(self, step: int, start: int = 0, end: int = DAY) -> Series:
        """Range query as Grafana sends it ($__interval = step, start aligned to the step):
        labels -> {offset: value}."""
        first = (START + start) // step * step
        result = self.prometheus.api("query_range", query=self.filled(step, end - start),
                                     start=str(first), end=str(START + end), step=str(step))["result"]
        return {key(r["metric"]): {int(t) - START: float(v) for t, v in r["values"]}
                for r in result}


def key(metric: dict[str, str]) -> tuple[tuple[str, str], ...]:
    return tuple(sorted((k, v) for k, v in metric.items() if k != "__name__"))


def only(series: Series, **labels: str) -> Any:
    [value] = [v for k, v in series.items() if all(dict(k).get(n) == x for n, x in labels.items())]
    return value


def close(actual: float, expected: float, rel: float = 1e-6) -> bool:
    return math.isclose(actual, expected, rel_tol=rel, abs_tol=1e-12)


def increase(counter: Callable[[int], float], window: int, at: int) -> float:
    """Prometheus' increase(counter[window]) at ``at`` (between two samples), extrapolated
    to the window's edges as promql/functions.go does (never below the counter's zero)."""
    first, last = max(0, -(-(at - window) // STEP) * STEP), at // STEP * STEP
    delta, sampled = counter(last) - counter(first), last - first
    average = sampled / (last - first) * STEP
    to_start, to_end = first - (at - window), at - last
    if delta > 0 and counter(first) >= 0:
        to_start = min(to_start, sampled * counter(first) / delta)
    extrapolated = sampled + sum(gap if gap < average * 1.1 else average / 2
                                 for gap in (to_start, to_end))
    return delta * extrapolated / sampled


def ratio_over(a: Agreement, window: int, at: int) -> float:
    """rate(downtime[window]) / rate(eligible[window]) at ``at``."""
    return increase(a.downtime, window, at) / increase(a.eligible, window, at)


def worst_steps(a: Agreement, step: int) -> dict[int, str]:
    """The worst state of each step of ``step`` seconds (ending at its offset)."""
    order = ("Up", "Maintenance", "Unknown", "Degraded", "Down")
    return {end: max((a.state(o) for o in range(max(0, end - step + STEP), end + 1, STEP)),
                     key=order.index)
            for end in range(0, DAY + 1, step)}


CODES = {"Up": 1, "Maintenance": 2, "Unknown": 3, "Degraded": 4, "Down": 5}
AFTER_OUTAGE = OUTAGE[1] + STEP // 2
"""Between two samples: which samples a range selector holds does not depend on whether
Prometheus closes its ranges on the left (2.x) or not (3.x)."""
DURING_OUTAGE = OUTAGE[0] + 4 * MINUTE
DURING_MAINTENANCE = MAINTENANCE[0] + 30 * MINUTE
A30D = 1800
"""Grafana's step for 30 days on a wide panel: one point per 30 minutes."""


def check_state_timeline(q: Query, agreements: tuple[Agreement, ...]) -> None:
    shown = q.over(A30D)
    assert len(shown) == len(agreements), "one row per agreement"
    for a in agreements:
        row = only(shown, agreement=a.name)
        assert row == {end: CODES[state] for end, state in worst_steps(a, A30D).items()}
        # The 7- and 2-minute outages fall between steps, and still show as Down.
        assert CODES["Down"] in row.values()
    assert only(shown, agreement="checkout")[23 * HOUR] == CODES["Maintenance"]


def check_burn(q: Query, window: str, agreements: tuple[Agreement, ...]) -> None:
    seconds = {"5m": 300, "30m": 1800, "1h": HOUR, "2h": 2 * HOUR, "6h": 6 * HOUR,
               "1d": DAY, "3d": 3 * DAY}[window]
    shown = q.at(AFTER_OUTAGE)
    assert len(shown) == len(agreements), "one line per agreement, from the raw counters"
    for a in agreements:
        expected = ratio_over(a, min(seconds, AFTER_OUTAGE), AFTER_OUTAGE) / (1 - a.objective)
        assert close(only(shown, agreement=a.name), expected), (window, a.name)
    if window == "5m":
        assert close(only(shown, agreement="checkout"), 1000)  # all Down: 1000x at 99.9%


def exhaustion_seconds(a: Agreement, at: int) -> float:
    """Budget left over the downtime rate of the last hour."""
    left = a.budget - a.downtime(at // STEP * STEP)
    return max(left, 0) / (increase(a.downtime, HOUR, at) / HOUR)


def availability(a: Agreement, offset: int) -> float:
    return 1 - a.downtime(offset) / a.eligible(offset)


Check = Callable[[Query], None]


def overview_checks() -> dict[tuple[str, str], Check]:
    both = AGREEMENTS

    def alerts(q: Query) -> None:
        assert list(q.at(DURING_OUTAGE)) == [key({
            "alertname": "SLAErrorBudgetBurn", "severity": "page", "namespace": "shop",
            "agreement": "checkout", "long_window": "1h", "short_window": "5m"})]
        assert q.at(DAY) == {}

    def table(q: Query) -> None:
        at, values = DURING_OUTAGE + STEP // 2, {}
        for a in both:
            values[a.name] = {
                "A": availability(a, at), "B": a.objective,
                "C": availability(a, at) - a.objective,
                "D": (a.budget - a.downtime(at)) / a.budget,
                "E": (a.budget - a.downtime(at)) / 60,
                "G": CODES[a.state(at)], "H": float(a is CHECKOUT)}
        shown = q.at(at)
        assert {dict(k)["agreement"] for k in shown} == {"checkout", "search"} or q.ref == "F"
        if q.ref == "F":  # only checkout burns budget in the last hour
            assert len(shown) == 1
            assert close(only(shown, agreement="checkout"), exhaustion_seconds(CHECKOUT, at))
            return
        for a in both:
            assert close(only(shown, agreement=a.name), values[a.name][q.ref]), (q.ref, a.name)
        if q.ref == "A":  # the label columns of the table
            assert {dict(k)["service"] for k in shown} == {"Checkout", "Search"}
        if q.ref == "G":
            assert only(q.at(DURING_MAINTENANCE), agreement="checkout") == CODES["Maintenance"]

    def met(q: Query) -> None:
        shown = q.at(DAY)
        # search's 99.87% is below checkout's 99.9% but meets its own 99%: green;
        # checkout's 99.53% misses its objective: red.
        assert close(availability(SEARCH, DAY), 0.998611, 1e-5)
        names = {"A": ["search"], "B": ["checkout"]}[q.ref]
        assert [dict(k)["agreement"] for k in shown] == names
        for a in AGREEMENTS:
            if a.name in names:
                assert close(only(shown, agreement=a.name), availability(a, DAY))

    def budget(q: Query) -> None:
        shown = q.at(DAY)
        for a in both:
            assert close(only(shown, agreement=a.name), (a.budget - a.downtime(DAY)) / a.budget)

    def severities(q: Query) -> None:
        expected = {"A": 1.0, "B": 0.0, "C": 0.0, "D": 1.0}[q.ref]  # checkout's P1, search's P4
        assert list(q.at(DURING_OUTAGE).values()) == [expected]
        assert list(q.at(DAY).values()) == [{"D": 1.0}.get(q.ref, 0.0)]

    def leading(q: Query) -> None:
        assert list(q.at(DAY).values()) == [1.0]

    def shards(q: Query) -> None:
        assert q.at(DAY) == {(("shards", "1"),): 1.0}

    def lag(q: Query) -> None:
        [p90] = q.at(DAY).values()
        assert close(p90, 0.09)  # every start within 0.1 s

    def budget_minutes(q: Query) -> None:
        shown = q.over(A30D)
        for a in both:
            assert only(shown, agreement=a.name)[DAY] == (a.budget - a.downtime(DAY)) / 60

    def failing(q: Query) -> None:
        shown = q.at(DAY)
        assert shown == {key({"namespace": "shop", "agreement": "checkout", "endpoint": "api"}): 14.0,
                         key({"namespace": "shop", "agreement": "search", "endpoint": "api"}): 4.0}

    def late(q: Query) -> None:
        if q.ref == "A":  # incidents
            assert q.at(DAY) == {key({"namespace": "shop", "agreement": "checkout",
                                      "severity": "P1"}): 1.0}
        else:  # support requests
            assert q.at(DAY) == {key({"namespace": "shop", "agreement": "search",
                                      "severity": "P2"}): 1.0}
            assert q.at(SUPPORT_LATE_AT - HOUR, range_seconds=HOUR) == {}

    def closed(q: Query) -> None:
        shown = q.at(DAY)
        for a in both:
            expected = (CREDIT[a.name] if q.ref == "C"
                        else CLOSED[a.name] - (a.objective if q.ref == "B" else 0))
            assert close(only(shown, agreement=a.name, period="previous"), expected)
        if q.ref == "B":
            assert only(shown, agreement="checkout") < 0 < only(shown, agreement="search")

    def locations(q: Query) -> None:
        shown = q.over(A30D, start=A30D)
        assert {dict(k)["location"] for k in shown} == set(LOCATIONS)
        assert set(only(shown, location="a").values()) == {1.0}  # fresh all day
        stale, disagrees = only(shown, location="c"), only(shown, location="b")
        # Each step shows the worst of the half hour it ends; boundaries aside, exactly:
        assert stale[6 * HOUR + A30D] == stale[7 * HOUR] == 0.0
        assert {v for t, v in stale.items() if t <= 6 * HOUR or t > 7 * HOUR + A30D} == {1.0}
        assert disagrees[12 * HOUR + A30D] == 2.0
        assert {v for t, v in disagrees.items() if t <= 12 * HOUR or t > 13 * HOUR} == {1.0}

    checks: dict[tuple[str, str], Check] = {
        ("SLA alerts firing now", "A"): alerts,
        ("Locations (worst in each interval)", "A"): locations,
        ("Operator: replicas leading", "A"): leading,
        ("Operator: shards with a leader", "A"): shards,
        ("Operator: probe start lag p90 (10m)", "A"): lag,
        **{("Agreements", ref): table for ref in "ABCDEFGH"},
        ("Availability (current period) against each objective", "A"): met,
        ("Availability (current period) against each objective", "B"): met,
        ("Error budget left", "A"): budget,
        **{("Open incidents by severity", ref): severities for ref in "ABCD"},
        ("State (worst in each interval)", "A"): lambda q: check_state_timeline(q, both),
        **{("Burn rate (1 = spending the budget exactly)", ref):
           (lambda q, w=w: check_burn(q, w, both))
           for ref, w in zip("ABCD", ("1h", "6h", "1d", "3d"), strict=True)},
        ("Error budget left (minutes; red below zero)", "A"): budget_minutes,
        ("Endpoints with failed probes (top 10 over the time range)", "A"): failing,
        **{("Responses late (over the time range)", ref): late for ref in "AB"},
        **{("Closed periods", ref): closed for ref in "ABC"},
    }
    return checks


def agreement_checks() -> dict[tuple[str, str], Check]:
    one = (CHECKOUT,)

    def availability_line(q: Query) -> None:
        value = list(q.at(DAY).values())
        assert value == [pytest.approx(availability(CHECKOUT, DAY) if q.ref == "A" else 0.999)]

    def budget_minutes(q: Query) -> None:
        assert list(q.at(DAY).values()) == [pytest.approx((CHECKOUT.budget - 420) / 60)]

    def downtime(q: Query) -> None:
        # The bars add up to the 420 s of the outage at any zoom, and stay put.
        for step in (600, A30D, HOUR):
            [bars] = q.over(step, start=step).values()
            assert sum(bars.values()) == 420, step
        [bars] = q.over(A30D).values()
        assert bars[OUTAGE[0] // A30D * A30D + A30D] == 420

    def spent_in(q: Query) -> None:
        [value] = q.at(AFTER_OUTAGE).values()
        assert close(value, exhaustion_seconds(CHECKOUT, AFTER_OUTAGE))
        assert close(value, (CHECKOUT.budget - 420) * HOUR / 420, 1e-2)  # 5.2 hours
        assert q.at(DAY) == {}  # no downtime in the last hour: not burning

    def alerts(q: Query) -> None:
        assert len(q.at(DURING_OUTAGE)) == 1 and q.at(DAY) == {}

    def probe_success(q: Query) -> None:
        shown = q.over(A30D)
        api, web = only(shown, endpoint="api"), only(shown, endpoint="web")
        assert [end for end, v in api.items() if v == 0] == [OUTAGE[0] // A30D * A30D + A30D]
        assert set(web.values()) == {1.0}

    def per_location(q: Query) -> None:
        # One location (run without --location): its worst is the worst endpoint's.
        shown = only(q.over(A30D), location="default")
        assert [end for end, v in shown.items() if v == 0] == [OUTAGE[0] // A30D * A30D + A30D]

    def failed(q: Query) -> None:
        shown = q.over(A30D, start=A30D)
        api, web = only(shown, endpoint="api"), only(shown, endpoint="web")
        assert sum(api.values()) == 14 and max(api.values()) == 14 and set(web.values()) == {0}

    def by_reason(q: Query) -> None:
        # Each reason's bars add up to its failures, its first ones included, at any zoom.
        for step in (600, A30D):
            shown = q.over(step, start=step)
            assert {dict(k)["reason"]: sum(v.values()) for k, v in shown.items()} == {
                "timeout": TIMEOUTS, "connect": 14 - TIMEOUTS}, step

    def latency(q: Query) -> None:
        shown = q.at(DAY)
        assert shown and all(close(v, 0.095) for v in shown.values())

    def severities(q: Query) -> None:
        during, after = list(q.at(DURING_OUTAGE).values()), list(q.at(DAY).values())
        assert during == [1.0 if q.ref == "A" else 0.0] and after == [0.0]

    def late(q: Query) -> None:  # checkout's: a late incident response, no late support
        expected = {key({"namespace": "shop", "agreement": "checkout", "severity": "P1"}): 1.0}
        assert q.at(DAY) == (expected if q.ref == "A" else {})

    def closed(q: Query) -> None:
        [value] = q.at(DAY).values()
        if q.ref == "C":
            assert value == CREDIT["checkout"]
        else:
            assert close(value, 0.9985 - (0.999 if q.ref == "B" else 0))

    def certificate(q: Query) -> None:
        assert q.at(DAY) == {}  # checkout's endpoints are plain http

    checks: dict[tuple[str, str], Check] = {
        ("State (worst in each interval)", "A"): lambda q: check_state_timeline(q, one),
        ("Availability against the objective", "A"): availability_line,
        ("Availability against the objective", "B"): availability_line,
        ("Error budget left (minutes; red below zero)", "A"): budget_minutes,
        **{("Burn rate per window (1 = spending the budget exactly)", chr(ord("A") + i)):
           (lambda q, w=w: check_burn(q, w, one)) for i, w in enumerate(
               ("5m", "30m", "1h", "2h", "6h", "1d", "3d"))},
        ("Downtime per interval (seconds)", "A"): downtime,
        ("Budget spent in (at the last 1h's burn)", "A"): spent_in,
        ("SLA alerts firing now", "A"): alerts,
        ("Probe success per endpoint (worst in each interval)", "A"): probe_success,
        ("Probe success per location (worst in each interval)", "A"): per_location,
        ("Failed probes per endpoint and interval", "A"): failed,
        ("Failed probes by reason per interval", "A"): by_reason,
        ("Probe latency p95", "A"): latency,
        ("Probe latency p95", "B"): latency,
        **{("Open incidents by severity", ref): severities for ref in "ABCD"},
        **{("Responses late (over the time range)", ref): late for ref in "AB"},
        **{("Closed periods", ref): closed for ref in "ABC"},
        ("Certificate expiry per endpoint (days left)", "A"): certificate,
    }
    return checks


BOARDS = {
    "sla-overview.json": ({"$namespace": ".*", "$agreement": ".*"}, overview_checks),
    "sla-agreement.json": ({"$namespace": "shop", "$agreement": "checkout"}, agreement_checks),
}


def board(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((REPO / "dashboards" / name).read_text())
    return loaded


@pytest.mark.parametrize("name", sorted(BOARDS))
def test_every_panel_query_shows_what_its_title_promises(prometheus: HistoryPrometheus,
                                                         name: str) -> None:
    variables, made = BOARDS[name]
    checks = made()
    panels = {(p["title"], t["refId"]): t["expr"] for p in board(name)["panels"] for t in p["targets"]}
    assert set(panels) == set(checks), "every query has a check, every check a query"
    for (title, ref), expr in panels.items():
        checks[(title, ref)](Query(name, title, ref, expr, prometheus, variables))


def test_the_search_certificate_shows_days_left(prometheus: HistoryPrometheus) -> None:
    [panel] = [p for p in board("sla-agreement.json")["panels"]
               if p["title"].startswith("Certificate expiry")]
    query = Query("sla-agreement.json", panel["title"], "A", panel["targets"][0]["expr"],
                  prometheus, {"$namespace": "shop", "$agreement": "search"})
    assert query.at(DAY) == {(("endpoint", "api"),): pytest.approx(10.0)}
    # 10 days left: below the panel's red line
    assert panel["fieldConfig"]["defaults"]["thresholds"]["steps"][1]["value"] > 10


def annotation_events(prometheus: HistoryPrometheus, name: str, title: str) -> Series:
    variables, _ = BOARDS[name]
    [annotation] = [a for a in board(name)["annotations"]["list"] if a["name"] == title]
    query = Query(name, title, "", annotation["expr"], prometheus, variables)
    return query.over(60)


def test_the_overview_marks_p1_and_p2_incidents_and_maintenance(prometheus: HistoryPrometheus) -> None:
    incidents = annotation_events(prometheus, "sla-overview.json", "Open P1/P2 incidents")
    # search's all-day P4 marks nothing on the overview; checkout's P1 marks its minutes.
    [(labels, points)] = incidents.items()
    assert dict(labels) == {"namespace": "shop", "agreement": "checkout", "severity": "P1"}
    assert min(points) == INCIDENT[0] + MINUTE and max(points) == INCIDENT[1]
    [(labels, points)] = annotation_events(prometheus, "sla-overview.json", "Maintenance").items()
    assert dict(labels) == {"namespace": "shop", "agreement": "checkout"}
    assert min(points) == MAINTENANCE[0] + MINUTE and max(points) == MAINTENANCE[1]


def test_the_agreement_marks_its_incidents_and_maintenance(prometheus: HistoryPrometheus) -> None:
    [(labels, points)] = annotation_events(prometheus, "sla-agreement.json", "Open incidents").items()
    assert dict(labels)["severity"] == "P1" and len(points) == 37
    [(_, points)] = annotation_events(prometheus, "sla-agreement.json", "Maintenance").items()
    assert len(points) == 60
