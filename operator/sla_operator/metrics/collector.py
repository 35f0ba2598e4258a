"""The collector: every sla_* family from the engine's current snapshot, read at each scrape."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from functools import partial
from typing import Protocol

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector
from prometheus_client.samples import Sample as PrometheusSample

from sla_operator.domain.views import AgreementView, Snapshot
from sla_operator.engine import EngineSettings
from sla_operator.engine.writes import WriteBudget
from sla_operator.exposition import WrittenFamily
from sla_operator.metrics.families import FAMILIES, Family, buckets, families
from sla_operator.metrics.text import LabelCache, write_text

# --endpoint-histograms auto (the default): sla_probe_duration_seconds per endpoint while the
# process probes at most this many endpoints (14 series each: 14,000 at most); above it, the
# per-agreement histogram alone, so a large fleet's scrape stays bounded.
ENDPOINT_HISTOGRAMS_UP_TO = 1000


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
    straight from the views (``write_text``), a reader of their samples gets them made from the
    same views (``agreement_samples``)."""

    def __init__(self, engine: SnapshotSource, endpoint_histograms: bool | None = None) -> None:
        self.engine = engine
        self.endpoint_histograms = endpoint_histograms
        self.labels: LabelCache = {}
        """The label text of the agreements written by the last render (``write_text``)."""

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
        if snapshot.locations:  # run --location
            up = GaugeMetricFamily("sla_location_up", "1 while the location's results are "
                                   "fresh (this process's own, or its Lease held).",
                                   labels=["location"])
            disagreement = GaugeMetricFamily(
                "sla_location_disagreement", "1 while the location has seen an endpoint "
                "otherwise than its quorum for longer than --disagreement-after (never "
                "downtime).", labels=["location"])
            for location in snapshot.locations:
                up.add_metric([location.name], float(location.up))
                disagreement.add_metric([location.name], float(location.disagreeing))
            yield up
            yield disagreement
        lag = snapshot.probe_lag
        yield HistogramMetricFamily(
            "sla_operator_probe_lag_seconds", "How late probes start against their schedule.",
            buckets=buckets(lag), sum_value=lag.sum)


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
            self._families = families(self.views, self.endpoint_histograms)
        return self._families[index].samples

    def text(self, index: int) -> list[bytes]:
        if self._text is None:
            self._text, self.collector.labels = write_text(self.views, self.endpoint_histograms,
                                                       self.collector.labels)
        chunks, self._text[index] = self._text[index], []  # held no longer than needed
        return chunks
