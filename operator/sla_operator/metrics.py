"""Prometheus metrics: one custom collector over the engine's snapshot, read at every scrape.

Series per endpoint are bounded by default: ``sla_probe_success``, ``sla_probes_total`` (two),
``sla_probe_failures_total`` (one per reason that occurred, of nine) and, for TLS endpoints,
``sla_probe_certificate_expiry_timestamp_seconds``. Probe latency is a
histogram per agreement (``sla_agreement_probe_duration_seconds``); the per-endpoint histogram
``sla_probe_duration_seconds`` (14 series per endpoint) is exported only with
``--endpoint-histograms``. The /metrics route renders off the event loop (``exposition``).

The families made from the agreements are listed once (``FAMILIES``) and made two ways from
the same views: as text, written straight into the /metrics body (``_write``), and as
prometheus_client samples for a reader that asks for them (``_agreement_samples``, e.g.
``generate_latest``). A test holds the two equal over a rich snapshot.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Literal, Protocol

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.openmetrics import exposition as openmetrics
from prometheus_client.registry import Collector
from prometheus_client.samples import Sample as PrometheusSample

from sla_operator.content_coding import gzip_wanted
from sla_operator.domain.failure_reasons import FAILURE_REASONS
from sla_operator.domain.model import Severity, State
from sla_operator.domain.views import AgreementView, Histogram, Snapshot
from sla_operator.engine import EngineSettings
from sla_operator.engine.writes import WriteBudget
from sla_operator.exposition import Exposition, WrittenFamily, escape_label_value, go_float, pause

log = logging.getLogger("sla_operator.metrics")
AGREEMENT_LABELS = ("namespace", "agreement", "service", "environment")
PROBE_LABELS = (*AGREEMENT_LABELS, "endpoint")
# --endpoint-histograms auto (the default): sla_probe_duration_seconds per endpoint while the
# process probes at most this many endpoints (14 series each: 14,000 at most); above it, the
# per-agreement histogram alone, so a large fleet's scrape stays bounded.
ENDPOINT_HISTOGRAMS_UP_TO = 1000


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
SUCCESS = Spec("sla_probe_success", "1 if the last probe succeeded.", "gauge", PROBE_LABELS)
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


class SnapshotSource(Protocol):
    """What the outputs read of the engine (the Engine itself in the operator)."""

    @property
    def snapshot(self) -> Snapshot: ...

    @property
    def active(self) -> bool: ...

    @property
    def settings(self) -> EngineSettings: ...

    @property
    def writes(self) -> WriteBudget: ...

    def health_problems(self, stale_after: float) -> list[str]: ...


class EngineCollector(Collector):
    """Yields every sla_* family from the engine's current snapshot (API.md, "Metrics").

    It reads ``engine.snapshot`` only, never the runtime: a scrape sees one whole round. An
    agreement whose figures cannot be exported is left out of that scrape (and logged); the
    others are not. ``endpoint_histograms`` adds ``sla_probe_duration_seconds`` per endpoint
    (True), never (False), or while the process probes at most ENDPOINT_HISTOGRAMS_UP_TO
    endpoints (None, the default); without it that family is announced with no samples.

    The agreements' families are ``WrittenFamily``: the /metrics render writes their text
    straight from the views (``_write``), a reader of their samples gets them made from the
    same views (``_agreement_samples``)."""

    def __init__(self, engine: SnapshotSource, endpoint_histograms: bool | None = None) -> None:
        self.engine = engine
        self.endpoint_histograms = endpoint_histograms
        self.labels: LabelCache = {}
        """The label text of the agreements written by the last render (``_write``)."""

    def collect(self) -> Iterator[Metric]:
        snapshot: Snapshot = self.engine.snapshot
        # A standby shows the holder's statuses on its page; its /metrics leaves them to the
        # holder, so that no series is counted twice.
        # Other shards' agreements are on the page, and in their own shard's /metrics.
        sharding = self.engine.settings.sharding
        views = [view for view in (snapshot.agreements if self.engine.active else ())
                 if sharding.owns(view.namespace, view.name)]
        histograms = self.endpoint_histograms
        if histograms is None:
            histograms = sum(len(view.probes) for view in views) <= ENDPOINT_HISTOGRAMS_UP_TO
        scrape = _Scrape(views, histograms, self)
        for index, spec in enumerate(FAMILIES):
            yield WrittenFamily(spec.name, spec.documentation, spec.kind,
                                partial(scrape.samples, index), partial(scrape.text, index))
        yield GaugeMetricFamily(
            "sla_operator_leader", "1 on the replica that probes and writes (the Lease holder, "
            "or the only replica), 0 on a standby.", value=float(self.engine.active))
        shard = GaugeMetricFamily("sla_operator_shard", "1, labelled with the shard this "
                                  "process handles and how many there are (--shard, --shards).",
                                  labels=["shard", "shards"])
        shard.add_metric([str(sharding.index), str(sharding.count)], 1.0)
        yield shard
        writes = self.engine.writes
        for name, doc, value in (
                ("sla_operator_status_writes", "Status writes sent.", writes.sent),
                ("sla_operator_status_writes_deferred", "Status writes held back by "
                 "--max-status-writes-per-second or a Retry-After, each once.", writes.deferred),
                ("sla_operator_api_throttled", "API answers that asked to wait (429, Retry-After).",
                 writes.throttled)):
            yield CounterMetricFamily(name, doc, value=value)
        lag = snapshot.probe_lag
        yield HistogramMetricFamily(
            "sla_operator_probe_lag_seconds", "How late probes start against their schedule.",
            buckets=_buckets(lag), sum_value=lag.sum)


class _Scrape:
    """The agreements' families of one collection, made once in the form first asked for:
    samples (every family's, from one pass) or text (likewise)."""

    def __init__(self, views: Sequence[AgreementView], endpoint_histograms: bool,
                 collector: EngineCollector) -> None:
        self.views = views
        self.endpoint_histograms = endpoint_histograms
        self.collector = collector
        self._families: list[Family] | None = None
        self._text: list[list[bytes]] | None = None

    def samples(self, index: int) -> list[PrometheusSample]:
        if self._families is None:
            self._families = _families(self.views, self.endpoint_histograms)
        return self._families[index].samples

    def text(self, index: int) -> list[bytes]:
        if self._text is None:
            self._text, self.collector.labels = _write(self.views, self.endpoint_histograms,
                                                       self.collector.labels)
        chunks, self._text[index] = self._text[index], []  # held no longer than needed
        return chunks


Family = GaugeMetricFamily | CounterMetricFamily | HistogramMetricFamily


def _families(views: Sequence[AgreementView], endpoint_histograms: bool) -> list[Family]:
    """FAMILIES as prometheus_client families, with their samples."""
    made: dict[Spec, Family] = {}
    for spec in FAMILIES:
        kind = {"gauge": GaugeMetricFamily, "counter": CounterMetricFamily,
                "histogram": HistogramMetricFamily}[spec.kind]
        made[spec] = kind(spec.name, spec.documentation, labels=spec.labels)
    for view in views:
        try:
            samples = list(_agreement_samples(view, endpoint_histograms))
        except Exception:
            log.exception("agreement %s/%s: left out of this scrape", *view.key)
            continue
        for spec, labels, value in samples:
            _add(made[spec], labels, value)
    return [made[spec] for spec in FAMILIES]


def _label_values(view: AgreementView) -> list[str]:
    """The values of AGREEMENT_LABELS."""
    return [view.namespace, view.name, view.service, view.environment.value]


def _agreement_samples(view: AgreementView, endpoint_histograms: bool) -> Iterator[Sample]:
    labels = _label_values(view)
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
        yield AGREEMENT_DURATION, labels, _merged([probe.latency for probe in probed])
    for probe in probed:
        probe_labels = [*labels, probe.name]
        yield SUCCESS, probe_labels, 1.0 if probe.last_ok else 0.0
        yield PROBES, [*probe_labels, "success"], probe.successes
        yield PROBES, [*probe_labels, "failure"], probe.failures
        for reason, count in zip(FAILURE_REASONS, probe.failures_by_reason, strict=False):
            if count:
                yield FAILURES, [*probe_labels, reason.value], count
        if endpoint_histograms:
            yield DURATION, probe_labels, probe.latency
        if probe.certificate_not_after is not None:
            yield EXPIRY, probe_labels, probe.certificate_not_after.timestamp()


def _write(views: Sequence[AgreementView], endpoint_histograms: bool,
           cache: LabelCache) -> tuple[list[list[bytes]], LabelCache]:
    """The sample lines of FAMILIES (one list of UTF-8 chunks each): what ``_families`` holds,
    as ``render_text`` would write it, without a sample object per line. ``cache`` holds the
    label text of the agreements of the last render; the one returned, of this render's
    (an agreement gone is forgotten)."""
    output: list[list[bytes]] = [[] for _ in FAMILIES]
    kept: LabelCache = {}
    counts, bounds = _GoFloats(), _Bounds()
    for view in views:
        pause()
        try:
            key = tuple(_label_values(view))
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
        text = escape_label_value(_bound(bound))
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
        head, tail = _template(SUCCESS.labels, values)
        self.success = (_sample_name(SUCCESS) + head, tail + " ")
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
    """One agreement's lines of each of FAMILIES (in the order of ``_agreement_samples``)."""
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
                   *labels.agreement_bucket, _merged([probe.latency for probe in probed]),
                   counts, bounds)
    success_head, success_tail = labels.success
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
        success.append(f"{success_head}{endpoint}{success_tail}"
                       f"{'1.0' if probe.last_ok else '0.0'}\n")
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


def _merged(histograms: Sequence[Histogram]) -> Histogram:
    """One histogram of several with the same bounds (every endpoint uses the same)."""
    if not histograms:
        return Histogram((), 0.0)
    # Bucket by bucket: the i-th count of every histogram together.
    columns = zip(*(histogram.counts for histogram in histograms), strict=True)
    return Histogram.of(histograms[0].bounds, tuple(map(sum, columns)),
                        sum(histogram.sum for histogram in histograms))


def _add(family: Family, labels: list[str], value: float | Histogram) -> None:
    if isinstance(value, Histogram):
        assert isinstance(family, HistogramMetricFamily)
        family.add_metric(labels, _buckets(value), value.sum)
    else:
        assert not isinstance(family, HistogramMetricFamily)
        family.add_metric(labels, value)


def _buckets(histogram: Histogram) -> list[tuple[str, float]]:
    return [(_bound(bound), count) for bound, count in histogram.buckets]


def _bound(value: float) -> str:
    return "+Inf" if value == float("inf") else repr(value)


HealthCheck = Callable[[], list[str]]
EXPOSITION = web.AppKey("exposition", Exposition)
WRITE_SLICE = 256 * 1024


def metrics_app(engine: SnapshotSource, registry: CollectorRegistry, stale_after: float = 60.0,
                checks: Sequence[HealthCheck] = ()) -> web.Application:
    """/metrics in the Prometheus text format and /healthz, which fails (503, one line per
    reason) when the evaluation loop stalls, the probe scheduler stopped, or a check fails.

    /metrics is rendered in a worker thread, once per snapshot (see ``exposition``)."""
    exposition = Exposition(registry, lambda: (engine.snapshot, engine.active))

    async def metrics(request: web.Request) -> web.StreamResponse:
        gzipped = gzip_wanted(request.headers.get("Accept-Encoding"))
        body = await exposition.body(gzipped)
        response = web.StreamResponse(headers={"Content-Type": CONTENT_TYPE_LATEST})
        if gzipped:
            response.headers["Content-Encoding"] = "gzip"
        response.content_length = len(body)
        await response.prepare(request)
        # In slices: handed over whole, tens of megabytes would be copied into the socket's
        # buffer in one go on the loop.
        view = memoryview(body)
        for start in range(0, len(body), WRITE_SLICE):
            await response.write(view[start:start + WRITE_SLICE])
        await response.write_eof()
        return response

    async def healthz(_: web.Request) -> web.Response:
        problems = engine.health_problems(stale_after)
        for check in checks:
            problems += check()
        if problems:
            return web.Response(status=503, text="".join(f"{p}\n" for p in problems))
        return web.Response(text="ok\n")

    async def close(_: web.Application) -> None:
        exposition.close()

    app = web.Application()
    app[EXPOSITION] = exposition
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/healthz", healthz)
    app.on_cleanup.append(close)
    return app


async def serve(app: web.Application, host: str, port: int) -> web.AppRunner | None:
    """Start ``app`` on host:port (port 0 disables it); the caller cleans the runner up."""
    if port == 0:
        return None
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    return runner
