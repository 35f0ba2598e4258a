"""Alert rules of an agreement as plain data: recording rules of its error ratio, burn-rate
alerts after the Google SRE workbook's multiwindow, multi-burn-rate tiers (as
``spec.alerting.tiers`` changed them, see alert_tiers.py), and the alerts on an exhausted
budget, a late response and absent metrics (docs/API.md, "Alert rules").

The output is dicts shaped like a Prometheus rule file, so `sla-operator rules` and the
PrometheusRule the operator keeps are the same rules. Agreement names, service names and
labels are written by users: they reach PromQL only as escaped string literals, and alert
labels and annotations only through ``$labels`` or with template delimiters escaped, so no
manifest can inject Prometheus template syntax.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Any

from sla_operator.domain.alert_tiers import DEFAULT_TIERS, BurnTier
from sla_operator.domain.model import Agreement, Environment

DOWNTIME = "sla_downtime_seconds_total"
ELIGIBLE = "sla_eligible_seconds_total"
AGREEMENT_LABELS = ("namespace", "agreement", "service", "environment")
WINDOWS = ("5m", "30m", "1h", "2h", "6h", "1d", "3d")
MANAGED_BY = {"app.kubernetes.io/managed-by": "sla-operator"}
ABSENT_FOR = "10m"
EXHAUSTED_FOR = "1m"
BREACH_LOOKBACK = "1h"
"""How long a response breach keeps its alert firing: long enough for a ticket to be filed."""


TIERS = DEFAULT_TIERS
"""The SRE workbook's tiers: every agreement's unless its spec.alerting.tiers changes them."""

# Alert labels the rules set themselves; spec.alerting.labels may not override them.
RESERVED_LABELS = frozenset({*AGREEMENT_LABELS, "alertname", "severity", "long_window",
                             "short_window", "tier", "incident_severity", "request_severity"})
_INVALID_LABEL_CHARS = re.compile(r"[^a-zA-Z0-9_]")


def recording_name(window: str) -> str:
    return f"sla:error_ratio:rate{window}"


def budget_ratio(agreement: Agreement) -> Decimal:
    """The error ratio the objective allows: 1 - objective (0.001 for 99.9%)."""
    return (Decimal(100) - agreement.objective) / Decimal(100)


FULL_OUTAGE_RATIO = Decimal("0.999999")
"""The error ratio a capped tier fires at (>=): an entirely Down window, give or take float
rounding. The engine adds the same float seconds to the downtime and the eligible counter each
round; the two sums round differently, so a fully Down window's ratio comes out a few parts in
10^15 above or below 1 (about every other hour below). A millionth (3.6 ms per hour) covers
that for counters of any realistic age and still needs the whole window Down to the
millisecond."""


def tier_threshold(agreement: Agreement, tier: BurnTier) -> tuple[Decimal, bool]:
    """The error ratio above which ``tier`` fires, and whether it was capped at 1.

    A tier whose factor x (1 - objective) exceeds 1 could never fire (an error ratio is at
    most 1: every eligible second Down). Such a tier is kept, and fires on a total outage over
    both of its windows (ratio >= FULL_OUTAGE_RATIO, that is 1 up to float rounding): a
    service that is fully down for an hour still pages.
    """
    threshold = tier.factor * budget_ratio(agreement)
    if threshold >= 1:
        return Decimal(1), True
    return threshold, False


def tiers_for(agreement: Agreement) -> tuple[BurnTier, ...]:
    """The agreement's enabled tiers; sandbox agreements are best effort: they never page."""
    tiers = agreement.alerting.tiers
    if agreement.environment is Environment.SANDBOX:
        return tuple(t for t in tiers if t.severity != "page")
    return tiers


def windows_for(agreement: Agreement) -> tuple[str, ...]:
    """The windows with a recording rule: the seven of the contract (dashboards read them),
    then any other window a tier of the agreement uses."""
    extra = (w for t in tiers_for(agreement) for w in (t.long_window, t.short_window))
    return tuple(dict.fromkeys((*WINDOWS, *extra)))


# ---------------------------------------------------------------- escaping


def promql_string(text: str) -> str:
    """A PromQL double-quoted string literal holding ``text`` exactly."""
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{escaped}"'


def template_literal(text: str) -> str:
    """``text`` as it must be written where Prometheus expands templates (alert labels and
    annotations) to come out unchanged: every ``{{`` is written as a template printing it."""
    return text.replace("{{", '{{ "{{" }}')


def label_name(key: str) -> str:
    """A Kubernetes label key (``team``, ``app.kubernetes.io/part-of``) as a Prometheus label
    name: characters Prometheus does not allow become ``_``, as Prometheus' own Kubernetes
    discovery does."""
    name = _INVALID_LABEL_CHARS.sub("_", key)
    return f"_{name}" if not name or name[0].isdigit() else name


def selector(agreement: Agreement, *, with_service: bool = False) -> str:
    """The label matchers that scope a series to this agreement and no other."""
    pairs = [("namespace", agreement.namespace), ("agreement", agreement.name)]
    if with_service:
        pairs += [("service", agreement.service), ("environment", agreement.environment.value)]
    return "{" + ",".join(f"{key}={promql_string(value)}" for key, value in pairs) + "}"


def _number(value: Decimal) -> str:
    """A decimal as a PromQL number: 0.0144, 14.4, 1 (no exponent, no trailing zeros)."""
    return format(value.normalize(), "f")


# ---------------------------------------------------------------- rules


def _by_agreement(expression: str) -> str:
    # Summed over the operator's own labels (instance, pod, job): a restarted or second
    # replica must not split an agreement's ratio into several series.
    return f"sum by ({', '.join(AGREEMENT_LABELS)}) ({expression})"


def recording_rules(agreement: Agreement) -> list[dict[str, Any]]:
    scope = selector(agreement)
    return [{
        "record": recording_name(window),
        "expr": (f"{_by_agreement(f'rate({DOWNTIME}{scope}[{window}])')} / "
                 f"{_by_agreement(f'rate({ELIGIBLE}{scope}[{window}])')}"),
        "labels": _identity(agreement),
    } for window in windows_for(agreement)]


def _identity(agreement: Agreement) -> dict[str, str]:
    # The series carry these already; written out as well, they tell the rules of two
    # agreements apart for `promtool check rules`, which flags rules of equal name and labels.
    return {"namespace": agreement.namespace, "agreement": agreement.name}


def _user_labels(agreement: Agreement) -> dict[str, str]:
    labels = _identity(agreement)
    for key, value in sorted(agreement.alerting.labels.items()):
        name = label_name(key)
        if name not in RESERVED_LABELS:
            labels[name] = template_literal(value)
    return labels


def _annotations(agreement: Agreement, summary: str, description: str) -> dict[str, str]:
    annotations = {"summary": summary, "description": description}
    if agreement.alerting.runbook_url:
        annotations["runbook_url"] = template_literal(agreement.alerting.runbook_url)
    return annotations


_BUDGET_LEFT = (
    '{{ with printf "sla_error_budget_remaining_ratio{namespace=%q,agreement=%q}" '
    "$labels.namespace $labels.agreement | query }}"
    "{{ . | first | value | humanizePercentage }}{{ else }}an unknown share{{ end }}")
"""How much of the period's error budget is left, asked of Prometheus when the alert fires."""


def burn_alert(agreement: Agreement, tier: BurnTier) -> dict[str, Any]:
    threshold, capped = tier_threshold(agreement, tier)
    budget = _number(budget_ratio(agreement))
    scope = selector(agreement)
    compare, bound = (">=", FULL_OUTAGE_RATIO) if capped else (">", threshold)
    condition = " and ".join(
        f"{recording_name(window)}{scope} {compare} {_number(bound)}"
        for window in (tier.long_window, tier.short_window))
    # Divided by the allowed ratio, the alert's value is the burn rate over the long window.
    expression = f"({condition}) / {budget}"
    return {
        "alert": "SLAErrorBudgetBurn",
        "expr": expression,
        "labels": {**_user_labels(agreement), "severity": tier.severity, "tier": tier.name,
                   "long_window": tier.long_window, "short_window": tier.short_window},
        "annotations": _annotations(
            agreement,
            "{{ $labels.service }} is burning its error budget "
            + ("fast" if tier.severity == "page" else "steadily"),
            "{{ $labels.service }} ({{ $labels.namespace }}/{{ $labels.agreement }}) burns its "
            "error budget at {{ $value | printf \"%.1f\" }}x the sustainable rate over the last "
            f"{tier.long_window} (alert above {_number(threshold / budget_ratio(agreement))}x "
            f"over {tier.long_window} and {tier.short_window}); {_BUDGET_LEFT} of the period's "
            "budget is left."),
    }


def exhausted_alert(agreement: Agreement) -> dict[str, Any]:
    remaining = f"sla_error_budget_remaining_seconds{selector(agreement)}"
    return {
        "alert": "SLAErrorBudgetExhausted",
        "expr": f"max by ({', '.join(AGREEMENT_LABELS)}) ({remaining}) <= 0",
        "for": EXHAUSTED_FOR,
        "labels": {**_user_labels(agreement), "severity": "ticket"},
        "annotations": _annotations(
            agreement,
            "{{ $labels.service }} has used up its error budget",
            "{{ $labels.service }} ({{ $labels.namespace }}/{{ $labels.agreement }}) has no "
            "error budget left in the current period (remaining: {{ $value | humanizeDuration }}): "
            "any further downtime misses the objective."),
    }


def response_breached_alert(agreement: Agreement) -> dict[str, Any]:
    # The counter's own `severity` (P1..P4) would clash with the alert's routing severity,
    # so it travels as `incident_severity`.
    increase = (f"increase(sla_incident_response_breached_total{selector(agreement)}"
                f"[{BREACH_LOOKBACK}])")
    relabelled = f'label_replace({increase}, "incident_severity", "$1", "severity", "(.*)")'
    grouping = ", ".join((*AGREEMENT_LABELS, "incident_severity"))
    return {
        "alert": "SLAIncidentResponseBreached",
        "expr": f"sum by ({grouping}) ({relabelled}) > 0",
        "labels": {**_user_labels(agreement), "severity": "ticket"},
        "annotations": _annotations(
            agreement,
            "A {{ $labels.incident_severity }} incident of {{ $labels.service }} was not "
            "acknowledged in time",
            "{{ $labels.service }} ({{ $labels.namespace }}/{{ $labels.agreement }}): "
            "{{ $value | printf \"%.0f\" }} {{ $labels.incident_severity }} incident(s) passed "
            f"their support response target in the last {BREACH_LOOKBACK} without an "
            "acknowledgement (spec.acknowledgedAt)."),
    }


def support_breached_alert(agreement: Agreement) -> dict[str, Any]:
    """A support request answered late, or not answered by its due time (a ticket, as for
    incidents); the request's severity travels as ``request_severity``."""
    increase = (f"increase(sla_support_response_breached_total{selector(agreement)}"
                f"[{BREACH_LOOKBACK}])")
    relabelled = f'label_replace({increase}, "request_severity", "$1", "severity", "(.*)")'
    grouping = ", ".join((*AGREEMENT_LABELS, "request_severity"))
    return {
        "alert": "SLASupportResponseBreached",
        "expr": f"sum by ({grouping}) ({relabelled}) > 0",
        "labels": {**_user_labels(agreement), "severity": "ticket"},
        "annotations": _annotations(
            agreement,
            "A {{ $labels.request_severity }} support request of {{ $labels.service }} was "
            "not answered in time",
            "{{ $labels.service }} ({{ $labels.namespace }}/{{ $labels.agreement }}): "
            "{{ $value | printf \"%.0f\" }} {{ $labels.request_severity }} support request(s) "
            f"passed their response target in the last {BREACH_LOOKBACK} without a reply "
            "(spec.respondedAt)."),
    }


def absent_alert(agreement: Agreement) -> dict[str, Any]:
    # absent() carries the labels of its equality matchers: with service and environment in
    # the selector the alert has all four agreement labels without writing them as templates.
    severity = "ticket" if agreement.environment is Environment.SANDBOX else "page"
    return {
        "alert": "SLAMetricsAbsent",
        "expr": f"absent(sla_objective_ratio{selector(agreement, with_service=True)})",
        "for": ABSENT_FOR,
        "labels": {**_user_labels(agreement), "severity": severity},
        "annotations": _annotations(
            agreement,
            "No SLA metrics for {{ $labels.service }}",
            "Prometheus has had no sla_objective_ratio for {{ $labels.service }} "
            "({{ $labels.namespace }}/{{ $labels.agreement }}) for " + ABSENT_FOR + ": the "
            "operator is down, not scraped, or no longer knows the agreement. Its availability "
            "is not being measured."),
    }


def rule_groups(agreement: Agreement) -> list[dict[str, Any]]:
    """The rule groups of one agreement; none when its alerting is disabled."""
    if not agreement.alerting.enabled:
        return []
    alerts = [burn_alert(agreement, tier) for tier in tiers_for(agreement)]
    alerts += [exhausted_alert(agreement), response_breached_alert(agreement),
               support_breached_alert(agreement), absent_alert(agreement)]
    # One group: its rules run in order, so the alerts read this round's ratios.
    return [{"name": f"sla/{agreement.namespace}/{agreement.name}",
             "rules": [*recording_rules(agreement), *alerts]}]


def rule_file(agreements: Iterable[Agreement]) -> dict[str, Any]:
    """One Prometheus rule file (``promtool check rules``) with every agreement's groups."""
    ordered = sorted(agreements, key=lambda a: a.key)
    return {"groups": [group for a in ordered for group in rule_groups(a)]}


def prometheus_rule_name(agreement_name: str) -> str:
    return f"{agreement_name}-sla"


def prometheus_rule(agreement: Agreement,
                    extra_labels: Mapping[str, str] | None = None) -> dict[str, Any] | None:
    """The PrometheusRule object the operator keeps for ``agreement`` (None: alerting off).

    Owned by the agreement when its uid is known, so deleting the agreement deletes it.
    """
    groups = rule_groups(agreement)
    if not groups:
        return None
    metadata: dict[str, Any] = {
        "name": prometheus_rule_name(agreement.name),
        "namespace": agreement.namespace,
        "labels": {**(extra_labels or {}), **MANAGED_BY},
    }
    if agreement.uid:
        metadata["ownerReferences"] = [{
            "apiVersion": "sla.dev/v1alpha1", "kind": "ServiceLevelAgreement",
            "name": agreement.name, "uid": agreement.uid, "controller": True}]
    return {"apiVersion": "monitoring.coreos.com/v1", "kind": "PrometheusRule",
            "metadata": metadata, "spec": {"groups": groups}}
