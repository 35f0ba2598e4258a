"""The /metrics body: rendered off the event loop, once per snapshot, shared by every scrape.

At 100,000 endpoints one exposition is hundreds of thousands of lines; rendered on the loop
it would stop probes from starting (and stretch the latencies of those in flight) for the
whole render. The engine's snapshot is immutable, so the text is made from it in a worker
thread of its own while the loop keeps turning, and kept until the next snapshot: two scrapes
of the same snapshot (e.g. two Prometheus replicas) render once. A scrape that arrives while
a render is under way waits for that render instead of starting another, so renders never
queue up behind each other. The gzip form is made from the same text, at most once, when a
scraper asks for it (as Prometheus does).

The worker shares the interpreter with the loop, and a thread that never lets go of it takes
nearly all of it: the loop waits for the interpreter at each of its callbacks, up to the
switch interval (5 ms) each time. At 100,000 endpoints a render of 0.5 s of CPU held the
loop to half its pace for a second, and probes started up to 0.8 s late for seconds after.
So a render paces itself (``Pacer``): after each slice of its own CPU time it sleeps,
leaving the loop the rest.

The text is the one prometheus_client's ``generate_latest`` makes (a test holds them equal),
written several times faster. A family may write its own text (``WrittenFamily``): the
engine's per-agreement and per-endpoint families are written straight from the snapshot,
without a ``Sample`` per series (hundreds of thousands of objects held at once at 100,000
endpoints), and make their samples only for a reader that asks for them (``generate_latest``).
Other families are written from their samples, each distinct label and metric name escaped
once per render. Each family's text goes into one buffer as it comes, in encoded chunks let
go once copied: a render holds about the text once.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import gzip
import io
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry
from prometheus_client.metrics_core import Metric
from prometheus_client.openmetrics import exposition as openmetrics
from prometheus_client.registry import Collector
from prometheus_client.samples import Sample
from prometheus_client.utils import floatToGoString

# Level 1 compresses this repetitive text about 40 times, several times faster than level 9.
GZIP_LEVEL = 1

# A render takes at most this share of the interpreter, in slices of CPU shorter than the
# switch interval: at 100,000 endpoints its 0.5-0.7 s of CPU is spread over 2.5-3.5 s.
RENDER_SHARE = 0.25
RENDER_SLICE_SECONDS = 0.002

Version = Sequence[object]
"""What the body is made from (the snapshot, the leader flag): a change of any item, by
identity, calls for a new render. A figure the snapshot does not hold is shown as of the last
render; the snapshot changes every evaluation round, so that is at most a round old."""


@dataclass
class _Body:
    version: Version
    plain: bytes
    gzipped: asyncio.Future[bytes] | None = field(default=None)


def _same(one: Version, other: Version) -> bool:
    return len(one) == len(other) and all(a is b for a, b in zip(one, other, strict=True))


class Exposition:
    """Renders ``registry`` in a dedicated single worker thread, cached per ``version()``."""

    def __init__(self, registry: CollectorRegistry, version: Callable[[], Version]) -> None:
        self._registry = registry
        self._version = version
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sla-metrics")
        self._body: _Body | None = None
        self._pending: asyncio.Future[_Body] | None = None
        self.renders = 0
        """How many times the text was made (for tests and the benchmark)."""
        self.paused_seconds = 0.0
        """Time renders spent asleep to leave the loop its share (see ``Pacer``)."""

    async def body(self, gzipped: bool = False) -> bytes:
        """The current exposition, plain or gzip-compressed."""
        body = self._body
        if body is None or not _same(body.version, self._version()):
            body = await self._fresh()
        if not gzipped:
            return body.plain
        if body.gzipped is None:
            loop = asyncio.get_running_loop()
            body.gzipped = loop.run_in_executor(self._executor, _compress, body.plain)
        return await asyncio.shield(body.gzipped)

    async def _fresh(self) -> _Body:
        if self._pending is None:
            loop = asyncio.get_running_loop()
            version = tuple(self._version())
            self._pending = loop.run_in_executor(self._executor, self._render, version)
            self._pending.add_done_callback(self._rendered)
        # Shielded: a scraper that hangs up must not cancel the render the others wait for.
        return await asyncio.shield(self._pending)

    def _render(self, version: Version) -> _Body:
        pacer = Pacer(RENDER_SHARE, RENDER_SLICE_SECONDS)
        try:
            with pacing(pacer):
                return self._render_now(version)
        finally:
            self.paused_seconds += pacer.slept

    def _render_now(self, version: Version) -> _Body:
        """In the worker thread: the collectors read the immutable snapshot, nothing else.

        The cyclic garbage collector waits meanwhile: a render makes millions of short-lived
        objects that would set off full collections, each holding the interpreter (and with
        it the loop) for as long as it walks the heap, while none of them is cyclic garbage:
        they all go as soon as the text is made."""
        collecting = gc.isenabled()
        gc.disable()
        try:
            return _Body(version, render_text(self._registry))
        finally:
            if collecting:
                gc.enable()

    def _rendered(self, future: asyncio.Future[_Body]) -> None:
        self._pending = None
        if not future.cancelled() and future.exception() is None:
            self._body = future.result()
            self.renders += 1

    def close(self) -> None:
        """Stop the worker thread (a render under way is abandoned)."""
        self._executor.shutdown(wait=False, cancel_futures=True)


class Pacer:
    """Keeps a worker thread's share of the interpreter at ``share``: once the thread has used
    ``slice_seconds`` of CPU since it last paused, it sleeps for as long as the others are then
    due (CPU time, not wall time: time the thread waited for the interpreter is not its own)."""

    def __init__(self, share: float, slice_seconds: float, *,
                 cpu: Callable[[], float] = time.thread_time,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        if not 0 < share <= 1:
            raise ValueError(f"share must be in (0, 1], got {share}")
        self.share, self.slice_seconds = share, slice_seconds
        self._cpu, self._sleep = cpu, sleep
        self._since = cpu()
        self.slept = 0.0

    def __call__(self) -> None:
        used = self._cpu() - self._since
        if used >= self.slice_seconds:
            rest = used * (1 - self.share) / self.share
            if rest > 0:
                self._sleep(rest)
                self.slept += rest
            self._since = self._cpu()


_pacers = threading.local()


@contextlib.contextmanager
def pacing(pacer: Callable[[], None]) -> Iterator[None]:
    """``pause()`` in this thread calls ``pacer`` until the block ends."""
    before = getattr(_pacers, "pacer", None)
    _pacers.pacer = pacer
    try:
        yield
    finally:
        _pacers.pacer = before


def pause() -> None:
    """A point where a long render may let the loop run (see ``Pacer``); called by the
    writers of large families between agreements. Free outside a paced render."""
    pacer = getattr(_pacers, "pacer", None)
    if pacer is not None:
        pacer()


def _compress(text: bytes) -> bytes:
    return gzip.compress(text, compresslevel=GZIP_LEVEL)


# Samples the Prometheus text format puts in a gauge of their own after their family.
_OPENMETRICS_ONLY = ("_created", "_gsum", "_gcount")
go_float: Callable[[float], str] = floatToGoString  # Go's float text, as Prometheus reads it
_TYPES = {"info": "gauge", "stateset": "gauge", "gaugehistogram": "histogram", "unknown": "untyped"}


class WrittenFamily(Metric):
    """A family that writes its own sample lines: ``render_text`` asks once for ``text()``
    (the lines, UTF-8 encoded, in chunks it may empty as it goes) and writes it after the
    family's HELP and TYPE lines. ``samples`` are made by ``make_samples`` only when read
    (``generate_latest``, tests), at most once. Both must say the same (a test holds the two
    renders equal)."""

    def __init__(self, name: str, documentation: str, typ: str,
                 make_samples: Callable[[], list[Sample]],
                 text: Callable[[], list[bytes]]) -> None:
        self._make_samples: Callable[[], list[Sample]] | None = None
        super().__init__(name, documentation, typ)
        self._make_samples = make_samples
        self.text = text

    @property  # an attribute of Metric: here made when first read
    def samples(self) -> list[Sample]:
        if self._make_samples is not None:
            self._samples = self._make_samples()
            self._make_samples = None
        return self._samples

    @samples.setter
    def samples(self, samples: list[Sample]) -> None:
        self._samples = samples
        self._make_samples = None


def render_text(registry: Collector) -> bytes:
    """The Prometheus text format (0.0.4) of everything ``registry`` collects: byte for byte
    what ``prometheus_client.generate_latest`` makes, with its default name escaping."""
    names: dict[str, str] = {}
    label_names: dict[str, str] = {}

    def name_of(name: str) -> str:
        escaped = names.get(name)
        if escaped is None:
            escaped = names[name] = openmetrics.escape_metric_name(name, openmetrics.UNDERSCORES)
        return escaped

    def label_name_of(name: str) -> str:
        escaped = label_names.get(name)
        if escaped is None:
            escaped = label_names[name] = openmetrics.escape_label_name(name, openmetrics.UNDERSCORES)
        return escaped

    def line(sample: Sample) -> str:
        labels = ""
        if sample.labels:
            labels = "{" + ",".join([
                f'{label_name_of(key)}="{escape_label_value(value)}"'
                for key, value in sorted(sample.labels.items())]) + "}"
        stamp = "" if sample.timestamp is None else f" {int(float(sample.timestamp) * 1000):d}"
        return f"{name_of(sample.name)}{labels} {go_float(sample.value)}{stamp}\n"

    # Written as it comes into one buffer, each chunk let go once copied: the text is held
    # about once, not as chunks and a joined copy (getvalue() hands the buffer over).
    output = io.BytesIO()
    for metric in registry.collect():
        header = _header(name_of(exposed_name(metric.name, metric.type)), metric.documentation,
                         _TYPES.get(metric.type, metric.type))
        if isinstance(metric, WrittenFamily):
            output.write(header.encode("utf-8"))
            chunks = metric.text()
            for index, chunk in enumerate(chunks):
                output.write(chunk)
                chunks[index] = b""
            continue
        lines = [header]
        separate: dict[str, list[str]] = {}
        for sample in metric.samples:
            suffix = _openmetrics_suffix(metric.name, sample.name)
            if suffix is None:
                lines.append(line(sample))
            else:
                separate.setdefault(suffix, []).append(line(sample))
        for suffix, more in sorted(separate.items()):
            lines.append(_header(name_of(metric.name + suffix), metric.documentation, "gauge"))
            lines.extend(more)
        output.write("".join(lines).encode("utf-8"))
    return output.getvalue()


def exposed_name(name: str, kind: str) -> str:
    """The name of a family in the text format: counters end in _total, infos in _info."""
    return name + ("_total" if kind == "counter" else "_info" if kind == "info" else "")


def _header(name: str, documentation: str, kind: str) -> str:
    help_text = documentation.replace("\\", r"\\").replace("\n", r"\n")
    return f"# HELP {name} {help_text}\n# TYPE {name} {kind}\n"


def _openmetrics_suffix(family: str, sample: str) -> str | None:
    if not sample.startswith(family) or len(sample) == len(family):
        return None
    return next((s for s in _OPENMETRICS_ONLY if sample == family + s), None)


def escape_label_value(value: str) -> str:
    """A label value as the text format quotes it."""
    return value.replace("\\", r"\\").replace("\n", r"\n").replace('"', r'\"')
