"""Manifests (plain dicts, as the API server or a YAML file gives them) into domain objects.

Every check the CRD schema cannot express lives here, and every problem found is reported at
once with its field path, so a user fixes a manifest in one round.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from functools import partial
from typing import Any, TypeVar
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sla_operator.domain import model as m
from sla_operator.domain.durations import parse_duration
from sla_operator.domain.errors import Problem, SpecError

T = TypeVar("T")
PROBE_KINDS = ("http", "tcp", "dns", "grpc", "tls")
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")


class _Collector:
    """Gathers problems so one parse reports all of them."""

    def __init__(self) -> None:
        self.problems: list[Problem] = []

    def run(self, fn: Callable[[], T], default: T) -> T:
        try:
            return fn()
        except SpecError as error:
            self.problems.extend(error.problems)
            return default

    def add(self, path: str, message: str) -> None:
        self.problems.append(Problem(path, message))

    def raise_if_any(self) -> None:
        if self.problems:
            raise SpecError(self.problems)


def parse_time(value: object, path: str) -> datetime:
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise SpecError.at(path, f"{value!r} is not an RFC 3339 time") from None
    else:
        raise SpecError.at(path, f"{value!r} is not an RFC 3339 time")
    if moment.tzinfo is None:
        raise SpecError.at(path, f"{value!r} has no time zone offset (add Z or +00:00)")
    return moment


def _optional_time(spec: Mapping[str, Any], key: str, path: str) -> datetime | None:
    value = spec.get(key)
    return None if value is None else parse_time(value, f"{path}.{key}")


def check_zone(name: object, path: str) -> str:
    if not isinstance(name, str) or not name:
        raise SpecError.at(path, "must be an IANA time zone name such as UTC or Europe/London")
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise SpecError.at(path, f"unknown time zone {name!r}; use an IANA name such as "
                                 "UTC, Europe/London or America/New_York") from None
    return name


def _int(value: object, path: str, minimum: int, maximum: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise SpecError.at(path, f"{value!r} is not an integer")
    if value < minimum or (maximum is not None and value > maximum):
        upper = f" and at most {maximum}" if maximum is not None else ""
        raise SpecError.at(path, f"{value} is out of range: must be at least {minimum}{upper}")
    return value


def _string(value: object, path: str) -> str:
    if not isinstance(value, str) or not value:
        raise SpecError.at(path, "must be a non-empty string")
    return value


def _selector(raw: object, path: str) -> m.LabelSelector:
    if not isinstance(raw, Mapping):
        raise SpecError.at(path, "must be a label selector (matchLabels / matchExpressions)")
    expressions = []
    for i, expr in enumerate(raw.get("matchExpressions") or []):
        operator = expr.get("operator")
        if operator not in ("In", "NotIn", "Exists", "DoesNotExist"):
            raise SpecError.at(f"{path}.matchExpressions[{i}].operator",
                               f"{operator!r}: allowed are In, NotIn, Exists, DoesNotExist")
        expressions.append(
            m.Requirement(str(expr.get("key", "")), operator, tuple(expr.get("values") or ()))
        )
    labels = {str(k): str(v) for k, v in (raw.get("matchLabels") or {}).items()}
    return m.LabelSelector(labels, tuple(expressions))


# ---------------------------------------------------------------- agreement


def agreement_from_manifest(obj: Mapping[str, Any]) -> m.Agreement:
    """A ServiceLevelAgreement manifest into an Agreement, or SpecError with every problem."""
    meta = obj.get("metadata") or {}
    spec = obj.get("spec") or {}
    errors = _Collector()
    objective = errors.run(lambda: _objective(spec.get("objective")), Decimal("99.9"))
    window = errors.run(lambda: _window(spec.get("window") or {}), m.Window())
    endpoints = _endpoints(spec.get("endpoints"), errors)
    support = errors.run(lambda: _support(spec.get("supportResponse") or {}),
                         dict(m.DEFAULT_SUPPORT_RESPONSE))
    selector = None
    if spec.get("maintenanceSelector") is not None:
        selector = errors.run(
            lambda: _selector(spec["maintenanceSelector"], "spec.maintenanceSelector"), None)
    environment = errors.run(lambda: _enum(m.Environment, spec.get("environment", "production"),
                                           "spec.environment"), m.Environment.PRODUCTION)
    downtime_when = errors.run(lambda: _enum(m.DowntimeWhen, spec.get("downtimeWhen", "any"),
                                             "spec.downtimeWhen"), m.DowntimeWhen.ANY)
    created = errors.run(lambda: _optional_time(meta, "creationTimestamp", "metadata"), None)
    if endpoints and not any(not e.dependency for e in endpoints):
        errors.add("spec.endpoints", "at least one endpoint must be the service's own "
                                     "(dependency: false); dependencies only explain outages")
    errors.raise_if_any()
    alerting = spec.get("alerting") or {}
    status_page = spec.get("statusPage") or {}
    return m.Agreement(
        namespace=str(meta.get("namespace") or "default"),
        name=str(meta.get("name", "")),
        service=str(spec.get("service") or meta.get("name", "")),
        objective=objective,
        endpoints=tuple(endpoints),
        environment=environment,
        window=window,
        downtime_when=downtime_when,
        maintenance_selector=selector,
        support_response=support,
        alerting=m.Alerting(
            enabled=bool(alerting.get("enabled", True)),
            labels={str(k): str(v) for k, v in (alerting.get("labels") or {}).items()},
            runbook_url=alerting.get("runbookURL"),
        ),
        status_page=m.StatusPageOptions(public=bool(status_page.get("public", False)),
                                        group=status_page.get("group")),
        labels=dict(meta.get("labels") or {}),
        created_at=created,
        uid=meta.get("uid"),
        generation=int(meta.get("generation") or 0),
    )


def _enum(kind: type[Any], value: object, path: str) -> Any:
    try:
        return kind(value)
    except ValueError:
        allowed = ", ".join(str(v.value) for v in kind)
        raise SpecError.at(path, f"{value!r} is not allowed; use one of: {allowed}") from None


def _objective(raw: object) -> Decimal:
    path = "spec.objective"
    try:
        value = Decimal(str(raw))
    except InvalidOperation:
        value = Decimal("NaN")
    if raw is None or not value.is_finite() or not Decimal(0) < value < Decimal(100):
        raise SpecError.at(path, f"{raw!r} is not a percentage strictly between 0 and 100 "
                                 '(a decimal string such as "99.9")')
    return value


def _window(raw: Mapping[str, Any]) -> m.Window:
    path = "spec.window"
    errors = _Collector()
    kind = errors.run(lambda: _enum(m.WindowType, raw.get("type", "calendar"), f"{path}.type"),
                      m.WindowType.CALENDAR)
    period = errors.run(lambda: _enum(m.CalendarPeriod, raw.get("period", "month"),
                                      f"{path}.period"), m.CalendarPeriod.MONTH)
    duration = errors.run(lambda: parse_duration(raw.get("duration", "30d"), f"{path}.duration"),
                          None)
    if duration is not None and duration <= timedelta(0):
        errors.add(f"{path}.duration", "must be longer than zero")
    zone = errors.run(lambda: check_zone(raw.get("timeZone", "UTC"), f"{path}.timeZone"), "UTC")
    errors.raise_if_any()
    assert duration is not None
    return m.Window(type=kind, period=period, duration=duration, time_zone=zone)


def _support(raw: Mapping[str, Any]) -> dict[m.Severity, timedelta]:
    targets = dict(m.DEFAULT_SUPPORT_RESPONSE)
    for key, value in raw.items():
        severity = _enum(m.Severity, key, f"spec.supportResponse.{key}")
        targets[severity] = parse_duration(value, f"spec.supportResponse.{key}")
    return targets


def _endpoints(raw: object, errors: _Collector) -> list[m.Endpoint]:
    if not isinstance(raw, list) or not raw:
        errors.add("spec.endpoints", "must list at least one endpoint to probe")
        return []
    endpoints: list[m.Endpoint] = []
    seen: set[str] = set()
    for index, item in enumerate(raw):
        path = f"spec.endpoints[{index}]"
        # Names are compared before parsing, so a duplicate is reported even when its entry
        # has other problems too.
        name = item.get("name") if isinstance(item, Mapping) else None
        if isinstance(name, str):
            if name in seen:
                errors.add(f"{path}.name", f"duplicate endpoint name {name!r}")
            seen.add(name)
        endpoint: m.Endpoint | None = errors.run(partial(_endpoint, item, path), None)
        if endpoint is not None:
            endpoints.append(endpoint)
    return endpoints


def _endpoint(raw: Mapping[str, Any], path: str) -> m.Endpoint:
    errors = _Collector()
    name = raw.get("name")
    if not isinstance(name, str) or not _DNS_LABEL.match(name):
        errors.add(f"{path}.name", f"{name!r} must be a DNS label (lower-case letters, "
                                   "digits and '-', at most 63 characters)")
    kinds = [k for k in PROBE_KINDS if raw.get(k) is not None]
    if len(kinds) != 1:
        found = ", ".join(kinds) or "none"
        errors.add(path, f"needs exactly one probe of http, tcp, dns, grpc, tls (found: {found})")
    interval = errors.run(lambda: _interval(raw, path), None)
    timeout = errors.run(lambda: parse_duration(raw.get("timeout", "5s"), f"{path}.timeout"), None)
    if interval is not None and timeout is not None and not timedelta(0) < timeout < interval:
        errors.add(f"{path}.timeout", f"must be longer than 0 and shorter than the "
                                      f"interval ({raw.get('interval', '30s')})")
    probe = None if len(kinds) != 1 else errors.run(
        lambda: _probe(kinds[0], raw[kinds[0]], f"{path}.{kinds[0]}"), None)
    failures = errors.run(
        lambda: _int(raw.get("failureThreshold", 3), f"{path}.failureThreshold", 1), 3)
    successes = errors.run(
        lambda: _int(raw.get("successThreshold", 2), f"{path}.successThreshold", 1), 2)
    degraded = raw.get("degradedLatency")
    degraded_latency = None if degraded is None else errors.run(
        lambda: parse_duration(degraded, f"{path}.degradedLatency"), None)
    errors.raise_if_any()
    assert probe is not None and interval is not None and timeout is not None
    return m.Endpoint(
        name=str(name),
        probe=probe,
        interval=interval,
        timeout=timeout,
        failure_threshold=failures,
        success_threshold=successes,
        degraded_latency=degraded_latency,
        dependency=bool(raw.get("dependency", False)),
    )


def _interval(raw: Mapping[str, Any], path: str) -> timedelta:
    interval = parse_duration(raw.get("interval", "30s"), f"{path}.interval")
    if interval < timedelta(seconds=1):
        raise SpecError.at(f"{path}.interval", "must be at least 1s")
    return interval


def _probe(kind: str, raw: Mapping[str, Any], path: str) -> m.ProbeSpec:
    if kind == "http":
        return _http(raw, path)
    port_path = f"{path}.port"
    if kind == "tcp":
        return m.TcpProbe(_string(raw.get("host"), f"{path}.host"),
                          _int(raw.get("port"), port_path, 1, 65535))
    if kind == "dns":
        return m.DnsProbe(name=_string(raw.get("name"), f"{path}.name"),
                          type=str(raw.get("type", "A")).upper(),
                          server=raw.get("server") or None,
                          expect=tuple(str(v) for v in raw.get("expect") or ()))
    if kind == "grpc":
        return m.GrpcProbe(host=_string(raw.get("host"), f"{path}.host"),
                           port=_int(raw.get("port"), port_path, 1, 65535),
                           service=str(raw.get("service") or ""),
                           tls=bool(raw.get("tls", False)),
                           insecure_skip_verify=bool(raw.get("insecureSkipVerify", False)))
    return m.TlsProbe(host=_string(raw.get("host"), f"{path}.host"),
                      port=_int(raw.get("port", 443), port_path, 1, 65535),
                      server_name=raw.get("serverName") or None,
                      insecure_skip_verify=bool(raw.get("insecureSkipVerify", False)),
                      certificate_expiry_warning=_expiry(raw, path))


def _expiry(raw: Mapping[str, Any], path: str) -> timedelta | None:
    value = raw.get("certificateExpiryWarning")
    return None if value is None else parse_duration(value, f"{path}.certificateExpiryWarning")


def _http(raw: Mapping[str, Any], path: str) -> m.HttpProbe:
    errors = _Collector()
    url = errors.run(lambda: _url(raw.get("url"), f"{path}.url"), "")
    regex = raw.get("bodyRegex") or None
    if regex is not None:
        try:
            re.compile(regex)
        except re.error as error:
            errors.add(f"{path}.bodyRegex", f"not a valid regular expression: {error}")
    statuses = tuple(errors.run(partial(_int, s, f"{path}.expectedStatus[{i}]", 100, 599), 0)
                     for i, s in enumerate(raw.get("expectedStatus") or ()))
    headers = tuple(errors.run(partial(_header, h, f"{path}.headers[{i}]"), None)
                    for i, h in enumerate(raw.get("headers") or ()))
    expiry = errors.run(lambda: _expiry(raw, path), None)
    errors.raise_if_any()
    return m.HttpProbe(
        url=url,
        method=str(raw.get("method", "GET")).upper(),
        headers=tuple(h for h in headers if h is not None),
        body=str(raw.get("body") or ""),
        expected_status=statuses,
        body_regex=regex,
        follow_redirects=bool(raw.get("followRedirects", True)),
        insecure_skip_verify=bool(raw.get("insecureSkipVerify", False)),
        certificate_expiry_warning=expiry,
    )


def _url(value: object, path: str) -> str:
    url = _string(value, path)
    message = f"{url!r} must be an absolute http:// or https:// URL"
    try:
        parts = urlsplit(url)
        port_ok = parts.port is None or parts.port > 0
    except ValueError:  # a malformed IPv6 literal or a port out of range
        raise SpecError.at(path, message) from None
    if parts.scheme not in ("http", "https") or not parts.hostname or not port_ok:
        raise SpecError.at(path, message)
    return url


def _header(raw: Mapping[str, Any], path: str) -> m.Header:
    name = _string(raw.get("name"), f"{path}.name")
    secret = ((raw.get("valueFrom") or {}).get("secretKeyRef")) or None
    if (raw.get("value") is None) == (secret is None):
        raise SpecError.at(path, "needs exactly one of value or valueFrom.secretKeyRef")
    if secret is not None:
        return m.Header(name, secret=m.SecretRef(_string(secret.get("name"), f"{path}.valueFrom"
                                                         ".secretKeyRef.name"),
                                                 _string(secret.get("key"), f"{path}.valueFrom"
                                                         ".secretKeyRef.key")))
    return m.Header(name, value=str(raw["value"]))
