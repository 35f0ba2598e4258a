"""Agreements as OpenSLO v1 documents: a Service, an SLO, and an AlertPolicy per burn-rate tier.

The SLO's indicator is the operator's own metrics: the share of eligible seconds that were not
down, ``sla_downtime_seconds_total`` over ``sla_eligible_seconds_total`` (a ratio of counted
events, so ``budgetingMethod: Occurrences``, one event per second). Each enabled burn-rate tier
becomes an AlertPolicy with one ``burnrate`` condition over the tier's long window; OpenSLO
has one window per condition, so the short window travels in the ``sla.dev/short-window``
annotation (``import openslo`` reads it back). What OpenSLO cannot hold (endpoints, support,
credits, the status page) stays in the agreement.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from decimal import Decimal
from typing import Any, Final

from sla_operator.domain.alert_tiers import BurnTier, window_seconds
from sla_operator.domain.alerts import tiers_for
from sla_operator.domain.errors import SpecError
from sla_operator.domain.model import Agreement, CalendarPeriod, WindowType

Document = dict[str, Any]
NAME: Final = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
API_VERSION: Final = "openslo/v1"
# A Monday that is also the first day of a month, a quarter and a year: every calendar period
# of an agreement starts at local midnight on such a day.
CALENDAR_START: Final = "2024-01-01 00:00:00"
CALENDAR_DURATION: Final = {CalendarPeriod.WEEK: "1w", CalendarPeriod.MONTH: "1M",
                            CalendarPeriod.QUARTER: "1Q", CalendarPeriod.YEAR: "1Y"}
SHORTHAND_UNITS: Final = (("w", 604800), ("d", 86400), ("h", 3600), ("m", 60))
ANNOTATION_NAMESPACE: Final = "sla.dev/namespace"
ANNOTATION_AGREEMENT: Final = "sla.dev/agreement"
ANNOTATION_ALERTING: Final = "sla.dev/alerting-enabled"
ANNOTATION_ENVIRONMENT: Final = "sla.dev/environment"
ANNOTATION_TIER: Final = "sla.dev/tier"
ANNOTATION_SHORT_WINDOW: Final = "sla.dev/short-window"


def notification_target() -> Document:
    """A fresh one each time: a YAML writer would otherwise tie shared objects with anchors."""
    return {"kind": "AlertNotificationTarget", "metadata": {"name": "alertmanager"},
            "spec": {"target": "alertmanager",
                     "description": "Prometheus Alertmanager, routed by the alert's severity "
                                    "and tier labels (sla-operator's PrometheusRule)"}}


def shorthand(seconds: float) -> str | None:
    """OpenSLO's duration shorthand (one number, one unit) for whole minutes; None otherwise."""
    whole = round(seconds)
    if whole <= 0 or whole != seconds or whole % 60:
        return None
    return next(f"{whole // size}{unit}" for unit, size in SHORTHAND_UNITS if whole % size == 0)


def export_all(agreements: Sequence[Agreement]) -> tuple[list[Document], list[str],
                                                         list[tuple[Agreement, SpecError]]]:
    """Every agreement's documents in one stream (a Service shared by the agreements of one
    service once), notes on what was left out, and the agreements that cannot be expressed."""
    names = Counter(a.name for a in agreements)
    documents: list[Document] = []
    services: set[str] = set()
    notes: list[str] = []
    refused: list[tuple[Agreement, SpecError]] = []
    for agreement in sorted(agreements, key=lambda a: a.key):
        name = f"{agreement.namespace}-{agreement.name}" if names[agreement.name] > 1 else agreement.name
        try:
            exported, left_out = export_agreement(agreement, name)
        except SpecError as error:
            refused.append((agreement, error))
            continue
        notes.extend(left_out)
        service, rest = exported[0], exported[1:]
        if service["metadata"]["name"] not in services:
            services.add(service["metadata"]["name"])
            documents.append(service)
        documents.extend(rest)
    return documents, notes, refused


def service_name(agreement: Agreement, name: str) -> str:
    """The OpenSLO Service: the service's own name where it is a DNS label (agreements of one
    service share it), else the agreement's."""
    return agreement.service if NAME.match(agreement.service) else name


def export_agreement(agreement: Agreement, name: str) -> tuple[list[Document], list[str]]:
    """The agreement's documents, and notes on what OpenSLO could not hold (tiers left out).

    Raises SpecError naming the field when the agreement itself cannot be expressed."""
    notes: list[str] = []
    where = f"{agreement.namespace}/{agreement.name}"
    if len(name) > 63:
        raise SpecError.at("metadata.name", f"{name!r} is longer than OpenSLO's 63 characters")
    annotations = {ANNOTATION_NAMESPACE: agreement.namespace, ANNOTATION_AGREEMENT: agreement.name,
                   ANNOTATION_ENVIRONMENT: agreement.environment.value}
    policies: list[Document] = []
    if agreement.alerting.enabled:
        for tier in tiers_for(agreement):
            policy = _policy(agreement, name, tier)
            if policy is None:
                notes.append(f"agreement {where}: tier {tier.name!r} left out: its windows "
                             f"({tier.long_window}, {tier.short_window}) are not whole minutes, "
                             "which OpenSLO's duration shorthand cannot hold")
            else:
                policies.append(policy)
    else:
        annotations[ANNOTATION_ALERTING] = "false"
    service: Document = {
        "apiVersion": API_VERSION, "kind": "Service",
        "metadata": {"name": service_name(agreement, name), "displayName": agreement.service},
        "spec": {"description": f"{agreement.service}, measured by sla-operator"}}
    slo: Document = {
        "apiVersion": API_VERSION, "kind": "SLO",
        "metadata": {"name": name, "displayName": agreement.service,
                     **({"labels": dict(agreement.labels)} if agreement.labels else {}),
                     "annotations": annotations},
        "spec": {
            "description": f"{agreement.service} is available {agreement.objective}% of the "
                           "time (eligible time: maintenance and exclusions left out)",
            "service": service_name(agreement, name),
            "indicator": _indicator(agreement, name),
            "timeWindow": [_time_window(agreement)],
            "budgetingMethod": "Occurrences",
            "objectives": [{"displayName": agreement.service,
                            "target": float(agreement.objective / Decimal(100))}],
            "alertPolicies": [{"alertPolicyRef": p["metadata"]["name"]} for p in policies]}}
    return [service, slo, *policies], notes


def _indicator(agreement: Agreement, name: str) -> Document:
    selector = f'namespace="{agreement.namespace}",agreement="{agreement.name}"'

    def source(metric: str) -> Document:
        # A counter (counter: true): the reader takes its increase over each window itself.
        return {"metricSource": {"type": "Prometheus",
                                 "spec": {"query": f"sum({metric}{{{selector}}})"}}}

    return {"metadata": {"name": f"{name}-availability",
                         "displayName": f"{agreement.service}: seconds down of seconds eligible"},
            "spec": {"ratioMetric": {"counter": True, "bad": source("sla_downtime_seconds_total"),
                                     "total": source("sla_eligible_seconds_total")}}}


def _time_window(agreement: Agreement) -> Document:
    window = agreement.window
    if window.type is WindowType.CALENDAR:
        return {"duration": CALENDAR_DURATION[window.period], "isRolling": False,
                "calendar": {"startTime": CALENDAR_START, "timeZone": window.time_zone}}
    duration = shorthand(window.duration.total_seconds())
    if duration is None:
        raise SpecError.at("spec.window.duration",
                           f"a rolling window of {window.duration} is not whole minutes, which "
                           "OpenSLO's duration shorthand cannot hold")
    return {"duration": duration, "isRolling": True}


def _policy(agreement: Agreement, name: str, tier: BurnTier) -> Document | None:
    long_window = shorthand(window_seconds(tier.long_window))
    if long_window is None or shorthand(window_seconds(tier.short_window)) is None:
        return None
    factor = float(tier.factor)
    return {
        "apiVersion": API_VERSION, "kind": "AlertPolicy",
        "metadata": {"name": f"{name}-{tier.name}",
                     "displayName": f"{agreement.service}: {tier.name} burn ({tier.severity})",
                     "annotations": {ANNOTATION_TIER: tier.name,
                                     ANNOTATION_SHORT_WINDOW: tier.short_window}},
        "spec": {
            "description": f"The error budget burns faster than {tier.factor}x over "
                           f"{tier.long_window} and over {tier.short_window} (the short window "
                           f"is in the {ANNOTATION_SHORT_WINDOW} annotation)",
            "alertWhenBreaching": True, "alertWhenResolved": False, "alertWhenNoData": False,
            "conditions": [{
                "kind": "AlertCondition", "metadata": {"name": f"{name}-{tier.name}-burn"},
                "spec": {"severity": tier.severity,
                         "condition": {"kind": "burnrate", "op": "gt",
                                       "threshold": int(factor) if factor.is_integer() else factor,
                                       "lookbackWindow": long_window, "alertAfter": "0m"}}}],
            "notificationTargets": [notification_target()]}}
