"""The families made from the agreements (``FAMILIES``), and their samples as prometheus_client
makes them: for a reader that asks for samples (``generate_latest``); the /metrics body is
written straight from the same views by ``metrics/text.py``, and a test holds the two equal.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Literal

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily

from sla_operator.domain.failure_reasons import FAILURE_REASONS
from sla_operator.domain.model import Severity, State
from sla_operator.domain.views import AgreementView, Histogram

log = logging.getLogger("sla_operator.metrics")
AGREEMENT_LABELS = ("namespace", "agreement", "service", "environment")
PROBE_LABELS = (*AGREEMENT_LABELS, "endpoint")


@dataclass(frozen=True, eq=False)  # each one is unique: compared and hashed by identity
class Spec:
    """One family made from the agreements: both renders (samples, text) read it from here."""

    name: str
    documentation: str
    kind: Literal["gauge", "counter", "histogram"]
    labels: tuple[str, ...]


def _agreement(name: str, documentation: str, kind: Literal["gauge", "counter"] = "gauge",
               extra: tuple[str, ...] = ()) -> Spec:
    return Spec(name, documentation, kind, (*AGREEMENT_LABELS, *extra))


OBJECTIVE = _agreement("sla_objective_ratio", "Objective of the agreement, 0..1.")
AVAILABILITY = _agreement("sla_availability_ratio", "Current-period availability, 0..1.")
BUDGET_TOTAL = _agreement("sla_error_budget_total_seconds", "Error budget of the current period.")
BUDGET_REMAINING = _agreement("sla_error_budget_remaining_seconds",
                              "Error budget left (may be negative).")
BUDGET_RATIO = _agreement("sla_error_budget_remaining_ratio", "Remaining error budget / total.")
STATE = _agreement("sla_state", "1 on the agreement's current state.", extra=("state",))
MAINTENANCE = _agreement("sla_maintenance_active", "1 during scheduled maintenance.")
OPEN_INCIDENTS = _agreement("sla_incidents_open", "Open incidents by severity.",
                            extra=("severity",))
PERIOD = _agreement("sla_period_availability_ratio", "Availability of the last closed period.",
                    extra=("period",))
CREDIT = _agreement("sla_period_credit_percent",
                    "Service credit earned by the last closed period, percent of its fees.",
                    extra=("period",))
DOWNTIME = _agreement("sla_downtime_seconds", "Seconds Down, outside maintenance and exclusions.",
                      "counter")
ELIGIBLE = _agreement("sla_eligible_seconds",
                      "Seconds monitored, outside maintenance and exclusions.", "counter")
BREACHED = _agreement("sla_incident_response_breached",
                      "Incidents not acknowledged within the response target.", "counter",
                      ("severity",))
SUPPORT_REQUESTS = _agreement("sla_support_requests",
                              "Support requests, each counted once from the process's start.", "counter",
                              ("severity",))
SUPPORT_BREACHED = _agreement("sla_support_response_breached",
                              "Support requests not answered within the response target.",
                              "counter", ("severity",))
SUCCESS = Spec("sla_probe_success", "1 if the last probe succeeded (for another location: its "
               "last reported result).", "gauge", (*PROBE_LABELS, "location"))
DURATION = Spec("sla_probe_duration_seconds",
                "Probe latency per endpoint (only with --endpoint-histograms).", "histogram",
                PROBE_LABELS)
AGREEMENT_DURATION = Spec("sla_agreement_probe_duration_seconds",
                          "Probe latency of all the agreement's endpoints together.", "histogram",
                          AGREEMENT_LABELS)
PROBES = Spec("sla_probes", "Probes run, by result.", "counter", (*PROBE_LABELS, "result"))
FAILURES = Spec("sla_probe_failures", "Failed probes, by reason (a reason's series appears with "
                "its first failure).", "counter", (*PROBE_LABELS, "reason"))
EXPIRY = Spec("sla_probe_certificate_expiry_timestamp_seconds",
              "notAfter of the endpoint's TLS certificate.", "gauge", PROBE_LABELS)
FAMILIES = (OBJECTIVE, AVAILABILITY, BUDGET_TOTAL, BUDGET_REMAINING, BUDGET_RATIO, STATE,
            MAINTENANCE, OPEN_INCIDENTS, PERIOD, CREDIT, DOWNTIME, ELIGIBLE, BREACHED,
            SUPPORT_REQUESTS, SUPPORT_BREACHED, SUCCESS, DURATION, AGREEMENT_DURATION, PROBES,
            FAILURES, EXPIRY)
"""The families made from the agreements, in the order they are exposed."""

# (family, label values, value) to add once all of one agreement's samples are known.
Sample = tuple[Spec, list[str], float | Histogram]


Family = GaugeMetricFamily | CounterMetricFamily | HistogramMetricFamily


def families(views: Sequence[AgreementView], endpoint_histograms: bool) -> list[Family]:
    """FAMILIES as prometheus_client families, with their samples."""
    made: dict[Spec, Family] = {}
    for spec in FAMILIES:
        kind = {"gauge": GaugeMetricFamily, "counter": CounterMetricFamily,
                "histogram": HistogramMetricFamily}[spec.kind]
        made[spec] = kind(spec.name, spec.documentation, labels=spec.labels)
    for view in views:
        try:
            samples = list(agreement_samples(view, endpoint_histograms))
        except Exception:
            log.exception("agreement %s/%s: left out of this scrape", *view.key)
            continue
        for spec, labels, value in samples:
            add_sample(made[spec], labels, value)
    return [made[spec] for spec in FAMILIES]


def label_values(view: AgreementView) -> list[str]:
    """The values of AGREEMENT_LABELS."""
    return [view.namespace, view.name, view.service, view.environment.value]


def agreement_samples(view: AgreementView, endpoint_histograms: bool) -> Iterator[Sample]:
    labels = label_values(view)
    yield OBJECTIVE, labels, view.objective_ratio
    if view.period is not None:
        if view.period.eligible_seconds > 0:  # nothing eligible yet: no data, not 100%
            yield AVAILABILITY, labels, view.period.availability
        yield BUDGET_TOTAL, labels, view.period.budget_total_seconds
        yield BUDGET_REMAINING, labels, view.period.budget_remaining_seconds
        yield BUDGET_RATIO, labels, view.period.budget_remaining_ratio
    for candidate in State:
        yield STATE, [*labels, candidate.value], float(view.state is candidate)
    yield MAINTENANCE, labels, float(view.maintenance_active)
    yield DOWNTIME, labels, view.downtime_total_seconds
    yield ELIGIBLE, labels, view.eligible_total_seconds
    for severity in Severity:
        yield OPEN_INCIDENTS, [*labels, severity.value], view.open_incidents.get(severity, 0)
        yield BREACHED, [*labels, severity.value], view.responses_breached.get(severity, 0)
    for severity in Severity:
        yield SUPPORT_REQUESTS, [*labels, severity.value], view.support_requests.get(severity, 0)
        yield SUPPORT_BREACHED, [*labels, severity.value], view.support_breached.get(severity, 0)
    closed = view.last_closed
    if closed is not None and closed.availability is not None:
        yield PERIOD, [*labels, closed.label], closed.availability
    if closed is not None and closed.credit_percent is not None:
        yield CREDIT, [*labels, closed.label], closed.credit_percent
    probed = [probe for probe in view.probes if probe.last_ok is not None]
    if probed:
        yield AGREEMENT_DURATION, labels, merged([probe.latency for probe in probed])
    for probe in probed:
        probe_labels = [*labels, probe.name]
        yield SUCCESS, [*probe_labels, probe.location], 1.0 if probe.last_ok else 0.0
        for location, ok in probe.reported:
            yield SUCCESS, [*probe_labels, location], 1.0 if ok else 0.0
        yield PROBES, [*probe_labels, "success"], probe.successes
        yield PROBES, [*probe_labels, "failure"], probe.failures
        for reason, count in zip(FAILURE_REASONS, probe.failures_by_reason, strict=False):
            if count:
                yield FAILURES, [*probe_labels, reason.value], count
        if endpoint_histograms:
            yield DURATION, probe_labels, probe.latency
        if probe.certificate_not_after is not None:
            yield EXPIRY, probe_labels, probe.certificate_not_after.timestamp()


def merged(histograms: Sequence[Histogram]) -> Histogram:
    """One histogram of several with the same bounds (every endpoint uses the same)."""
    if not histograms:
        return Histogram((), 0.0)
    # Bucket by bucket: the i-th count of every histogram together.
    columns = zip(*(histogram.counts for histogram in histograms), strict=True)
    return Histogram.of(histograms[0].bounds, tuple(map(sum, columns)),
                        sum(histogram.sum for histogram in histograms))


def add_sample(family: Family, labels: list[str], value: float | Histogram) -> None:
    if isinstance(value, Histogram):
        assert isinstance(family, HistogramMetricFamily)
        family.add_metric(labels, buckets(value), value.sum)
    else:
        assert not isinstance(family, HistogramMetricFamily)
        family.add_metric(labels, value)


def buckets(histogram: Histogram) -> list[tuple[str, float]]:
    return [(bound_text(bound), count) for bound, count in histogram.buckets]


def bound_text(value: float) -> str:
    return "+Inf" if value == float("inf") else repr(value)
