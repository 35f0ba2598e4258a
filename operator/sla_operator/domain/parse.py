"""ServiceLevelAgreement manifests (plain dicts, as the API server or a YAML file gives them)
into domain objects.

Every check the CRD schema cannot express lives here, and every problem found is reported at
once with its field path, so a user fixes a manifest in one round.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import timedelta
from decimal import Decimal, InvalidOperation
from functools import partial
from typing import Any

from sla_operator.domain import model as m
from sla_operator.domain.alert_tiers import DEFAULT_TIERS, parse_tiers
from sla_operator.domain.credits import parse_credits
from sla_operator.domain.durations import parse_duration
from sla_operator.domain.errors import SpecError
from sla_operator.domain.fields import (
    Collector,
    check_zone,
    enum_value,
    integer,
    optional_time,
    selector,
)
from sla_operator.domain.parse_probes import PROBE_KINDS, parse_probe
from sla_operator.domain.support_hours import parse_support_hours

_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")


# ---------------------------------------------------------------- agreement


def agreement_from_manifest(obj: Mapping[str, Any]) -> m.Agreement:
    """A ServiceLevelAgreement manifest into an Agreement, or SpecError with every problem."""
    meta = obj.get("metadata") or {}
    spec = obj.get("spec") or {}
    errors = Collector()
    objective = errors.run(lambda: _objective(spec.get("objective")), None)
    no_credits: tuple[m.CreditTier, ...] = ()
    credits = errors.run(lambda: parse_credits(spec.get("credits"), objective), no_credits)
    window = errors.run(lambda: _window(spec.get("window") or {}), m.Window())
    endpoints = _endpoints(spec.get("endpoints"), errors)
    support = errors.run(lambda: _support(spec.get("supportResponse") or {}),
                         dict(m.DEFAULT_SUPPORT_RESPONSE))
    support_hours = errors.run(lambda: parse_support_hours(spec.get("supportHours"), support),
                               None)
    maintenance_selector = None
    if spec.get("maintenanceSelector") is not None:
        maintenance_selector = errors.run(
            lambda: selector(spec["maintenanceSelector"], "spec.maintenanceSelector"), None)
    environment = errors.run(
        lambda: enum_value(m.Environment, spec.get("environment", "production"), "spec.environment"),
        m.Environment.PRODUCTION)
    downtime_when = errors.run(
        lambda: enum_value(m.DowntimeWhen, spec.get("downtimeWhen", "any"), "spec.downtimeWhen"),
        m.DowntimeWhen.ANY)
    created = errors.run(lambda: optional_time(meta, "creationTimestamp", "metadata"), None)
    alerting = spec.get("alerting") or {}
    tiers = errors.run(lambda: parse_tiers(alerting.get("tiers")), DEFAULT_TIERS)
    probing = errors.run(lambda: _probing(spec.get("probing")), None)
    if endpoints and not any(not e.dependency for e in endpoints):
        errors.add("spec.endpoints", "at least one endpoint must be the service's own "
                                     "(dependency: false); dependencies only explain outages")
    errors.raise_if_any()
    assert objective is not None
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
        maintenance_selector=maintenance_selector,
        support_response=support,
        alerting=m.Alerting(
            enabled=bool(alerting.get("enabled", True)),
            labels={str(k): str(v) for k, v in (alerting.get("labels") or {}).items()},
            runbook_url=alerting.get("runbookURL"),
            tiers=tiers,
        ),
        status_page=m.StatusPageOptions(public=bool(status_page.get("public", False)),
                                        group=status_page.get("group")),
        credits=credits,
        support_hours=support_hours,
        probing=probing,
        labels=dict(meta.get("labels") or {}),
        created_at=created,
        uid=meta.get("uid"),
        generation=int(meta.get("generation") or 0),
    )


def _probing(raw: object) -> m.Probing | None:
    """``spec.probing: {locations, quorum}``; None when absent (one location decides)."""
    if raw is None:
        return None
    path = "spec.probing"
    if not isinstance(raw, Mapping):
        raise SpecError.at(path, "must be an object {locations: [NAME...], quorum: N}")
    errors = Collector()
    locations = raw.get("locations") or []
    if not isinstance(locations, list):
        errors.add(f"{path}.locations", "must be a list of location names")
        locations = []
    for index, name in enumerate(locations):
        if not isinstance(name, str) or not _DNS_LABEL.match(name):
            errors.add(f"{path}.locations[{index}]",
                       f"{name!r} is not a location name (a DNS label: lower-case letters, "
                       "digits and '-', at most 63)")
        elif locations.index(name) != index:
            errors.add(f"{path}.locations[{index}]", f"{name!r} is named twice")
    quorum = None
    if raw.get("quorum") is not None:
        most = len(locations) or None
        quorum = errors.run(lambda: integer(raw["quorum"], f"{path}.quorum", 1, most), None)
    errors.raise_if_any()
    return m.Probing(tuple(locations), quorum)


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
    errors = Collector()
    kind = errors.run(lambda: enum_value(m.WindowType, raw.get("type", "calendar"), f"{path}.type"),
                      m.WindowType.CALENDAR)
    period = errors.run(lambda: enum_value(m.CalendarPeriod, raw.get("period", "month"),
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
        severity = enum_value(m.Severity, key, f"spec.supportResponse.{key}")
        targets[severity] = parse_duration(value, f"spec.supportResponse.{key}")
    return targets


def _endpoints(raw: object, errors: Collector) -> list[m.Endpoint]:
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
    errors = Collector()
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
        lambda: parse_probe(kinds[0], raw[kinds[0]], f"{path}.{kinds[0]}"), None)
    failures = errors.run(
        lambda: integer(raw.get("failureThreshold", 3), f"{path}.failureThreshold", 1), 3)
    successes = errors.run(
        lambda: integer(raw.get("successThreshold", 2), f"{path}.successThreshold", 1), 2)
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
