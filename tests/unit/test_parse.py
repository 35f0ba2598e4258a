"""ServiceLevelAgreement manifests into Agreements: defaults, the API.md example, and errors
that name every problem with its field path in one go."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
import yaml

from sla_operator.domain.errors import SpecError
from sla_operator.domain.model import (
    Agreement,
    Alerting,
    CalendarPeriod,
    DnsProbe,
    DowntimeWhen,
    Endpoint,
    Environment,
    GrpcProbe,
    Header,
    HttpProbe,
    LabelSelector,
    SecretRef,
    Severity,
    StatusPageOptions,
    TcpProbe,
    TlsProbe,
    Window,
    WindowType,
)
from sla_operator.domain.parse import agreement_from_manifest


def http_endpoint(name: str = "api", **fields: Any) -> dict[str, Any]:
    return {"name": name, "http": {"url": "https://payments.example.com/healthz"}, **fields}


def manifest(**spec: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"objective": "99.9", "endpoints": [http_endpoint()]}
    return {"metadata": {"name": "payments-api", "namespace": "payments"}, "spec": {**base, **spec}}


def problems(obj: Mapping[str, Any]) -> dict[str, str]:
    """Field path -> message of every problem reported for ``obj``."""
    with pytest.raises(SpecError) as caught:
        agreement_from_manifest(obj)
    found: dict[str, str] = {}
    for problem in caught.value.problems:
        found.setdefault(problem.path, problem.message)
    assert len(caught.value.problems) == len(found), "one problem per field path"
    return found


# ---------------------------------------------------------------- one problem each


@pytest.mark.parametrize(
    ("spec", "path", "says"),
    [
        pytest.param({"objective": "abc"}, "spec.objective", "strictly between 0 and 100",
                     id="objective that is not a number"),
        pytest.param({"objective": "100"}, "spec.objective", "strictly between 0 and 100",
                     id="objective of 100"),
        pytest.param({"objective": "0"}, "spec.objective", "strictly between 0 and 100",
                     id="objective of 0"),
        pytest.param({"objective": None}, "spec.objective", "strictly between 0 and 100",
                     id="objective missing"),
        pytest.param({"objective": "NaN"}, "spec.objective", "strictly between 0 and 100",
                     id="objective NaN"),
        pytest.param({"endpoints": [http_endpoint(tcp={"host": "db", "port": 5432})]},
                     "spec.endpoints[0]", "exactly one probe", id="two probe kinds on one endpoint"),
        pytest.param({"endpoints": [{"name": "api"}]}, "spec.endpoints[0]", "found: none",
                     id="no probe on an endpoint"),
        pytest.param({"endpoints": []}, "spec.endpoints", "at least one endpoint",
                     id="no endpoints at all"),
        pytest.param({"endpoints": [http_endpoint(interval="-5s")]}, "spec.endpoints[0].interval",
                     "is not a duration", id="negative interval"),
        pytest.param({"endpoints": [http_endpoint(interval="0.5s")]}, "spec.endpoints[0].interval",
                     "at least 1s", id="interval under a second"),
        pytest.param({"endpoints": [http_endpoint(interval="10s", timeout="10s")]},
                     "spec.endpoints[0].timeout", "shorter than the interval",
                     id="timeout equal to the interval"),
        pytest.param({"endpoints": [http_endpoint(timeout="1m")]}, "spec.endpoints[0].timeout",
                     "shorter than the interval (30s)", id="timeout over the default interval"),
        pytest.param({"endpoints": [http_endpoint(), http_endpoint()]}, "spec.endpoints[1].name",
                     "duplicate endpoint name 'api'", id="duplicate endpoint names"),
        pytest.param({"endpoints": [http_endpoint("Payments_API")]}, "spec.endpoints[0].name",
                     "must be a DNS label", id="name that is not a DNS label"),
        pytest.param({"endpoints": [http_endpoint("x" * 64)]}, "spec.endpoints[0].name",
                     "at most 63 characters", id="name longer than a DNS label"),
        pytest.param({"endpoints": [{"name": "api", "http": {"url": "ftp://example.com/"}}]},
                     "spec.endpoints[0].http.url", "absolute http:// or https:// URL",
                     id="URL with another scheme"),
        pytest.param({"endpoints": [{"name": "api", "http": {"url": "/healthz"}}]},
                     "spec.endpoints[0].http.url", "absolute http:// or https:// URL",
                     id="relative URL"),
        pytest.param({"endpoints": [{"name": "api", "http": {"url": "http://[::1/"}}]},
                     "spec.endpoints[0].http.url", "absolute http:// or https:// URL",
                     id="URL with a broken IPv6 literal"),
        pytest.param({"endpoints": [{"name": "api", "http": {"url": "http://a.example:99999/"}}]},
                     "spec.endpoints[0].http.url", "absolute http:// or https:// URL",
                     id="URL with a port out of range"),
        pytest.param({"endpoints": [{"name": "api", "http": {"url": "http://a.example/",
                                                             "bodyRegex": '"status":("ok"'}}]},
                     "spec.endpoints[0].http.bodyRegex", "not a valid regular expression",
                     id="body regex that does not compile"),
        pytest.param({"window": {"timeZone": "Europe/Atlantis"}}, "spec.window.timeZone",
                     "unknown time zone 'Europe/Atlantis'", id="unknown time zone"),
        pytest.param({"endpoints": [{"name": "api", "http": {
            "url": "http://a.example/",
            "headers": [{"name": "Authorization", "value": "Bearer x",
                         "valueFrom": {"secretKeyRef": {"name": "auth", "key": "token"}}}]}}]},
                     "spec.endpoints[0].http.headers[0]", "exactly one of value or valueFrom",
                     id="header with both a value and a secret"),
        pytest.param({"endpoints": [{"name": "api", "http": {
            "url": "http://a.example/", "headers": [{"name": "Authorization"}]}}]},
                     "spec.endpoints[0].http.headers[0]", "exactly one of value or valueFrom",
                     id="header with neither a value nor a secret"),
        pytest.param({"endpoints": [http_endpoint(dependency=True)]}, "spec.endpoints",
                     "at least one endpoint must be the service's own", id="only dependency endpoints"),
        pytest.param({"endpoints": [http_endpoint(failureThreshold=0)]},
                     "spec.endpoints[0].failureThreshold", "at least 1", id="failure threshold of 0"),
        pytest.param({"endpoints": [{"name": "db", "tcp": {"host": "db", "port": 70000}}]},
                     "spec.endpoints[0].tcp.port", "at most 65535", id="TCP port out of range"),
        pytest.param({"supportResponse": {"P5": "1h"}}, "spec.supportResponse.P5",
                     "use one of: P1, P2, P3, P4", id="support response for an unknown severity"),
        pytest.param({"window": {"type": "sliding"}}, "spec.window.type",
                     "use one of: calendar, rolling", id="unknown window type"),
        pytest.param({"downtimeWhen": "some"}, "spec.downtimeWhen", "use one of: any, all",
                     id="unknown downtimeWhen"),
    ],
)
def test_a_bad_field_is_reported_at_its_path(spec: dict[str, Any], path: str, says: str) -> None:
    found = problems(manifest(**spec))
    assert list(found) == [path]
    assert says in found[path]


def test_every_problem_of_a_manifest_is_reported_at_once() -> None:
    bad = manifest(
        objective="abc",
        window={"timeZone": "Mars/Olympus", "period": "fortnight"},
        endpoints=[
            http_endpoint("api", interval="-5s"),
            {"name": "Bad_Name", "interval": "0.5s", "timeout": "2s",
             "http": {"url": "gopher://x", "bodyRegex": "(",
                      "headers": [{"name": "A", "value": "v",
                                   "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}}]}},
            http_endpoint("api", timeout="40s"),
            {"name": "both", "http": {"url": "http://a.example/"}, "tcp": {"host": "h", "port": 1}},
        ],
    )
    assert set(problems(bad)) == {
        "spec.objective",
        "spec.window.period",
        "spec.window.timeZone",
        "spec.endpoints[0].interval",
        "spec.endpoints[1].name",
        "spec.endpoints[1].interval",
        "spec.endpoints[1].http.url",
        "spec.endpoints[1].http.bodyRegex",
        "spec.endpoints[1].http.headers[0]",
        "spec.endpoints[2].name",  # the duplicate of "api"
        "spec.endpoints[2].timeout",
        "spec.endpoints[3]",
    }


def test_a_problem_message_says_what_is_allowed() -> None:
    found = problems(manifest(endpoints=[http_endpoint(interval="soon")]))
    assert "use a number with a unit" in found["spec.endpoints[0].interval"]
    with pytest.raises(SpecError, match=r"spec\.endpoints\[0\]\.interval: 'soon' is not a duration"):
        agreement_from_manifest(manifest(endpoints=[http_endpoint(interval="soon")]))


# ---------------------------------------------------------------- defaults


def test_absent_fields_take_the_documented_defaults() -> None:
    agreement = agreement_from_manifest(manifest())
    (endpoint,) = agreement.endpoints
    assert endpoint.interval == timedelta(seconds=30)
    assert endpoint.timeout == timedelta(seconds=5)
    assert (endpoint.failure_threshold, endpoint.success_threshold) == (3, 2)
    assert endpoint.degraded_latency is None
    assert endpoint.dependency is False
    assert agreement.window == Window(WindowType.CALENDAR, CalendarPeriod.MONTH,
                                      timedelta(days=30), "UTC")
    assert agreement.support_response == {
        Severity.P1: timedelta(minutes=15),
        Severity.P2: timedelta(hours=1),
        Severity.P3: timedelta(hours=8),
        Severity.P4: timedelta(hours=24),
    }
    assert agreement.environment is Environment.PRODUCTION
    assert agreement.downtime_when is DowntimeWhen.ANY
    assert agreement.service == "payments-api"  # the name, when no display name is given
    assert agreement.maintenance_selector is None
    assert agreement.status_page == StatusPageOptions(public=False, group=None)


def test_a_partial_support_response_keeps_the_defaults_of_the_other_severities() -> None:
    agreement = agreement_from_manifest(manifest(supportResponse={"P1": "5m"}))
    assert agreement.support_response[Severity.P1] == timedelta(minutes=5)
    assert agreement.support_response[Severity.P4] == timedelta(hours=24)


def test_an_http_probe_without_options_accepts_any_2xx() -> None:
    (endpoint,) = agreement_from_manifest(manifest()).endpoints
    assert endpoint.probe == HttpProbe(url="https://payments.example.com/healthz")
    assert isinstance(endpoint.probe, HttpProbe)
    assert endpoint.probe.status_ok(204) and not endpoint.probe.status_ok(301)


# ---------------------------------------------------------------- the API.md example

API_EXAMPLE = """
apiVersion: sla.dev/v1alpha1
kind: ServiceLevelAgreement
metadata:
  name: payments-api
  namespace: payments
  labels: {team: payments}
  uid: 0c4f4b1e-2d1a-4b7e-9d55-1f7f3b8e2a10
  generation: 3
  creationTimestamp: "2026-10-14T09:30:00Z"
spec:
  service: Payments API
  environment: production
  objective: "99.9"
  window: {type: calendar, period: month, duration: 30d, timeZone: UTC}
  downtimeWhen: any
  endpoints:
  - name: api
    interval: 30s
    timeout: 5s
    failureThreshold: 3
    successThreshold: 2
    degradedLatency: 800ms
    dependency: false
    http:
      url: https://payments.example.com/healthz
      method: GET
      headers:
      - name: Authorization
        valueFrom: {secretKeyRef: {name: probe-auth, key: token}}
      - name: X-Probe
        value: sla-operator
      body: ""
      expectedStatus: [200]
      bodyRegex: '"status":"ok"'
      followRedirects: true
      insecureSkipVerify: false
      certificateExpiryWarning: 336h
  - name: db
    tcp: {host: db.payments.svc, port: 5432}
  - name: dns
    dns: {name: payments.example.com, type: A, server: "10.0.0.10:53", expect: ["203.0.113.7"]}
  - name: grpc
    grpc: {host: api.payments.svc, port: 9090, service: "", tls: false}
  - name: cert
    tls: {host: payments.example.com, port: 443, certificateExpiryWarning: 336h}
  - name: card-network
    dependency: true
    interval: 1m
    http: {url: "https://cards.example.net/health"}
  maintenanceSelector: {matchLabels: {team: payments}}
  supportResponse: {P1: 15m, P2: 1h, P3: 8h, P4: 24h}
  alerting:
    enabled: true
    labels: {team: payments}
    runbookURL: https://runbooks.example.com/payments
  statusPage: {public: true, group: Payments}
"""


def test_the_api_example_parses_to_the_expected_agreement() -> None:
    agreement = agreement_from_manifest(yaml.safe_load(API_EXAMPLE))
    two_weeks = timedelta(hours=336)
    expected_endpoints = (
        Endpoint(
            name="api",
            probe=HttpProbe(
                url="https://payments.example.com/healthz",
                method="GET",
                headers=(Header("Authorization", secret=SecretRef("probe-auth", "token")),
                         Header("X-Probe", value="sla-operator")),
                expected_status=(200,),
                body_regex='"status":"ok"',
                certificate_expiry_warning=two_weeks,
            ),
            degraded_latency=timedelta(milliseconds=800),
        ),
        Endpoint(name="db", probe=TcpProbe("db.payments.svc", 5432)),
        Endpoint(name="dns", probe=DnsProbe("payments.example.com", "A", "10.0.0.10:53",
                                            ("203.0.113.7",))),
        Endpoint(name="grpc", probe=GrpcProbe("api.payments.svc", 9090)),
        Endpoint(name="cert", probe=TlsProbe("payments.example.com", 443,
                                             certificate_expiry_warning=two_weeks)),
        Endpoint(name="card-network", probe=HttpProbe(url="https://cards.example.net/health"),
                 interval=timedelta(minutes=1), dependency=True),
    )
    assert agreement == Agreement(
        namespace="payments",
        name="payments-api",
        service="Payments API",
        objective=Decimal("99.9"),
        endpoints=expected_endpoints,
        environment=Environment.PRODUCTION,
        window=Window(WindowType.CALENDAR, CalendarPeriod.MONTH, timedelta(days=30), "UTC"),
        downtime_when=DowntimeWhen.ANY,
        maintenance_selector=LabelSelector({"team": "payments"}),
        alerting=Alerting(True, {"team": "payments"}, "https://runbooks.example.com/payments"),
        status_page=StatusPageOptions(public=True, group="Payments"),
        labels={"team": "payments"},
        created_at=datetime(2026, 10, 14, 9, 30, tzinfo=UTC),
        uid="0c4f4b1e-2d1a-4b7e-9d55-1f7f3b8e2a10",
        generation=3,
    )
    assert [e.name for e in agreement.own_endpoints] == ["api", "db", "dns", "grpc", "cert"]
    assert agreement.objective_ratio == pytest.approx(0.999)


def test_a_rolling_window_in_a_time_zone_keeps_its_duration_and_zone() -> None:
    agreement = agreement_from_manifest(manifest(
        window={"type": "rolling", "duration": "28d", "timeZone": "Europe/London"},
        downtimeWhen="all", environment="sandbox"))
    assert agreement.window == Window(WindowType.ROLLING, CalendarPeriod.MONTH,
                                      timedelta(days=28), "Europe/London")
    assert agreement.downtime_when is DowntimeWhen.ALL
    assert agreement.environment is Environment.SANDBOX
