"""The agreements' families as Prometheus text, written straight from the views: what
``families`` holds, as ``render_text`` would write it, without a sample object per line (the
largest fleets' scrapes are mostly these lines)."""

from __future__ import annotations

import functools
import logging
from collections.abc import Mapping, Sequence

from prometheus_client.openmetrics import exposition as openmetrics

from sla_operator.domain.failure_reasons import FAILURE_REASONS
from sla_operator.domain.model import Severity, State
from sla_operator.domain.views import AgreementView, Histogram
from sla_operator.exposition import escape_label_value, go_float, pause
from sla_operator.metrics.families import (
    AGREEMENT_DURATION,
    AGREEMENT_LABELS,
    AVAILABILITY,
    BREACHED,
    BUDGET_RATIO,
    BUDGET_REMAINING,
    BUDGET_TOTAL,
    CREDIT,
    DOWNTIME,
    DURATION,
    ELIGIBLE,
    EXPIRY,
    FAILURES,
    FAMILIES,
    MAINTENANCE,
    OBJECTIVE,
    OPEN_INCIDENTS,
    PERIOD,
    PROBES,
    STATE,
    SUCCESS,
    SUPPORT_BREACHED,
    SUPPORT_REQUESTS,
    Spec,
    bound_text,
    label_values,
    merged,
)

log = logging.getLogger("sla_operator.metrics")


def write_text(views: Sequence[AgreementView], endpoint_histograms: bool,
           cache: LabelCache) -> tuple[list[list[bytes]], LabelCache]:
    """The sample lines of FAMILIES (one list of UTF-8 chunks each): what ``families`` holds,
    as ``render_text`` would write it, without a sample object per line. ``cache`` holds the
    label text of the agreements of the last render; the one returned, of this render's
    (an agreement gone is forgotten)."""
    output: list[list[bytes]] = [[] for _ in FAMILIES]
    kept: LabelCache = {}
    counts, bounds = _GoFloats(), _Bounds()
    for view in views:
        pause()
        try:
            key = tuple(label_values(view))
            labels = kept.get(key) or cache.get(key) or _Labels(key)
            chunks = _agreement_text(view, endpoint_histograms, labels, counts, bounds)
        except Exception:
            log.exception("agreement %s/%s: left out of this scrape", *view.key)
            continue
        kept[key] = labels
        for family, chunk in zip(output, chunks, strict=True):
            if chunk:
                family.append(chunk.encode("utf-8"))
    return output, kept


class _GoFloats(dict[int, str]):
    """Go's text of whole numbers (counters, bucket counts), each made once per render.

    Indexed by the counters and bucket counts (ints); called with any figure, it looks up
    ints only: equal floats may differ in text (0.0, -0.0)."""

    def __missing__(self, value: int) -> str:
        text = self[value] = go_float(value)
        return text

    def __call__(self, value: float) -> str:
        return self[value] if type(value) is int else go_float(value)


class _Bounds(dict[float, str]):
    """The ``le`` label value of each bucket bound, made once per render (zero each time:
    0.0 and -0.0 are one key but two texts)."""

    def __missing__(self, bound: float) -> str:
        text = escape_label_value(bound_text(bound))
        if bound != 0:
            self[bound] = text
        return text


def _template(names: Sequence[str], values: Mapping[str, str]) -> list[str]:
    """The label set ``{name="value",...}`` of a line, names sorted as prometheus_client sorts
    them, cut where a name has no value (a hole filled per line, in sorted name order): the
    parts around the holes. Values are escaped already."""
    parts: list[str] = []
    current = "{"
    for index, name in enumerate(sorted(names)):
        current += ("," if index else "") + _label_name(name) + '="'
        if name in values:
            current += values[name] + '"'
        else:
            parts.append(current)
            current = '"'
    parts.append(current + "}")
    return parts


@functools.cache
def _label_name(name: str) -> str:
    return openmetrics.escape_label_name(name, openmetrics.UNDERSCORES)


@functools.cache
def _sample_name(spec: Spec, suffix: str = "") -> str:
    name = spec.name + ("_total" if spec.kind == "counter" else "") + suffix
    return openmetrics.escape_metric_name(name, openmetrics.UNDERSCORES)


class _Labels:
    """The label text of one agreement's lines, every family's, ready to be followed by the
    value (or by the endpoint's name): made once and reused while the agreement's label
    values stay the same (``EngineCollector`` keeps them from one render to the next)."""

    def __init__(self, label_values: Sequence[str]) -> None:
        values = dict(zip(AGREEMENT_LABELS, map(escape_label_value, label_values), strict=True))

        def ahead(spec: Spec, **more: str) -> str:
            """The line up to its value."""
            (labels,) = _template(spec.labels, {**values, **more})
            return f"{_sample_name(spec)}{labels} "

        (self.labels,) = _template(AGREEMENT_LABELS, values)
        self.plain = {spec: ahead(spec) for spec in (
            OBJECTIVE, AVAILABILITY, BUDGET_TOTAL, BUDGET_REMAINING, BUDGET_RATIO, MAINTENANCE,
            DOWNTIME, ELIGIBLE)}
        self.state = [(candidate, ahead(STATE, state=escape_label_value(candidate.value)))
                      for candidate in State]
        self.open_incidents, self.breached = (
            [(severity, ahead(spec, severity=escape_label_value(severity.value)))
             for severity in Severity] for spec in (OPEN_INCIDENTS, BREACHED))
        self.support_requests, self.support_breached = (
            [(severity, ahead(spec, severity=escape_label_value(severity.value)))
             for severity in Severity] for spec in (SUPPORT_REQUESTS, SUPPORT_BREACHED))
        head, tail = _template(PERIOD.labels, values)
        self.period = (_sample_name(PERIOD) + head, tail + " ")
        self.credit = (_sample_name(CREDIT) + head, tail + " ")
        bucket, tail = _template((*AGREEMENT_DURATION.labels, "le"), values)
        self.agreement_bucket = (_sample_name(AGREEMENT_DURATION, "_bucket") + bucket, tail)
        # Per endpoint: the text before the endpoint's name, and after it up to the value.
        head, middle, tail = _template(SUCCESS.labels, values)
        self.success = (_sample_name(SUCCESS) + head, middle, tail + " ")
        head, ok = _template(PROBES.labels, {**values, "result": "success"})
        _, failed = _template(PROBES.labels, {**values, "result": "failure"})
        self.probes = (_sample_name(PROBES) + head, ok + " ", failed + " ")
        head = _template(FAILURES.labels, {**values, "reason": ""})[0]
        self.failures = (_sample_name(FAILURES) + head, tuple(
            _template(FAILURES.labels, {**values, "reason": escape_label_value(reason.value)})[1]
            + " " for reason in FAILURE_REASONS))
        head, tail = _template(EXPIRY.labels, values)
        self.expiry = (_sample_name(EXPIRY) + head, tail + " ")
        head, tail = _template(DURATION.labels, values)
        self.duration = (head, tail)
        head, middle, tail = _template((*DURATION.labels, "le"), values)
        self.duration_bucket = (_sample_name(DURATION, "_bucket") + head, middle, tail)


LabelCache = dict[tuple[str, ...], _Labels]


def _agreement_text(view: AgreementView, endpoint_histograms: bool, labels: _Labels,
                    counts: _GoFloats, bounds: _Bounds) -> list[str]:
    """One agreement's lines of each of FAMILIES (in the order of ``agreement_samples``)."""
    text: dict[Spec, list[str]] = {spec: [] for spec in FAMILIES}
    plain = labels.plain

    def put(spec: Spec, value: float) -> None:
        text[spec].append(f"{plain[spec]}{counts(value)}\n")

    put(OBJECTIVE, view.objective_ratio)
    if view.period is not None:
        if view.period.eligible_seconds > 0:  # nothing eligible yet: no data, not 100%
            put(AVAILABILITY, view.period.availability)
        put(BUDGET_TOTAL, view.period.budget_total_seconds)
        put(BUDGET_REMAINING, view.period.budget_remaining_seconds)
        put(BUDGET_RATIO, view.period.budget_remaining_ratio)
    text[STATE] = [f"{head}{counts(float(view.state is candidate))}\n"
                   for candidate, head in labels.state]
    put(MAINTENANCE, float(view.maintenance_active))
    put(DOWNTIME, view.downtime_total_seconds)
    put(ELIGIBLE, view.eligible_total_seconds)
    text[OPEN_INCIDENTS] = [f"{head}{counts(view.open_incidents.get(severity, 0))}\n"
                            for severity, head in labels.open_incidents]
    text[BREACHED] = [f"{head}{counts(view.responses_breached.get(severity, 0))}\n"
                      for severity, head in labels.breached]
    text[SUPPORT_REQUESTS] = [f"{head}{counts(view.support_requests.get(severity, 0))}\n"
                              for severity, head in labels.support_requests]
    text[SUPPORT_BREACHED] = [f"{head}{counts(view.support_breached.get(severity, 0))}\n"
                              for severity, head in labels.support_breached]
    closed = view.last_closed
    if closed is not None and closed.availability is not None:
        head, tail = labels.period
        text[PERIOD].append(f"{head}{escape_label_value(closed.label)}{tail}"
                            f"{counts(closed.availability)}\n")
    if closed is not None and closed.credit_percent is not None:
        head, tail = labels.credit
        text[CREDIT].append(f"{head}{escape_label_value(closed.label)}{tail}"
                            f"{counts(closed.credit_percent)}\n")
    probed = [probe for probe in view.probes if probe.last_ok is not None]
    if probed:
        _histogram(text[AGREEMENT_DURATION], _sample_name(AGREEMENT_DURATION), labels.labels,
                   *labels.agreement_bucket, merged([probe.latency for probe in probed]),
                   counts, bounds)
    success_head, success_middle, success_tail = labels.success
    probes_head, ok_tail, failed_tail = labels.probes
    expiry_head, expiry_tail = labels.expiry
    duration_head, duration_tail = labels.duration
    bucket_head, bucket_middle, bucket_tail = labels.duration_bucket
    duration = _sample_name(DURATION)
    failures_head, failures_tails = labels.failures
    success, probes, histograms, expiry = (text[SUCCESS], text[PROBES], text[DURATION],
                                           text[EXPIRY])
    failures = text[FAILURES]
    for probe in probed:
        endpoint = escape_label_value(probe.name)
        success.append(f"{success_head}{endpoint}{success_middle}"
                       f"{escape_label_value(probe.location)}{success_tail}"
                       f"{'1.0' if probe.last_ok else '0.0'}\n")
        for location, ok in probe.reported:
            success.append(f"{success_head}{endpoint}{success_middle}"
                           f"{escape_label_value(location)}{success_tail}"
                           f"{'1.0' if ok else '0.0'}\n")
        probes.append(f"{probes_head}{endpoint}{ok_tail}{counts[probe.successes]}\n"
                      f"{probes_head}{endpoint}{failed_tail}{counts[probe.failures]}\n")
        if probe.failures:
            failures.extend([f"{failures_head}{endpoint}{tail}{counts[count]}\n"
                             for tail, count in zip(failures_tails, probe.failures_by_reason,
                                                    strict=False) if count])
        if endpoint_histograms:
            _histogram(histograms, duration, duration_head + endpoint + duration_tail,
                       f"{bucket_head}{endpoint}{bucket_middle}", bucket_tail,
                       probe.latency, counts, bounds)
        if probe.certificate_not_after is not None:
            expiry.append(f"{expiry_head}{endpoint}{expiry_tail}"
                          f"{go_float(probe.certificate_not_after.timestamp())}\n")
    return ["".join(text[spec]) for spec in FAMILIES]


def _histogram(lines: list[str], name: str, labels: str, bucket: str, tail: str,
               histogram: Histogram, counts: _GoFloats, bounds: _Bounds) -> None:
    """A histogram's lines as HistogramMetricFamily.add_metric makes its samples: ``bucket``
    is the bucket line up to the ``le`` value, ``tail`` what follows it."""
    lines.extend([f"{bucket}{bounds[bound]}{tail} {counts[count]}\n"
                  for bound, count in zip(histogram.bounds, histogram.counts, strict=True)])
    if histogram.bounds and histogram.bounds[0] >= 0:
        lines.append(f"{name}_count{labels} {counts[histogram.counts[-1]]}\n"
                     f"{name}_sum{labels} {go_float(histogram.sum)}\n")
