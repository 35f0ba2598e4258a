"""The cyclic garbage collector of the operator's process, run on the engine's rounds.

CPython starts a collection when the tracked objects made outnumber those freed by a
threshold. An operator at a steady state frees about as many as it makes (each probe result
replaces the last one of its endpoint), so collections came rarely, and each one then walked
every object made since: at 100,000 endpoints that is the last minute of probe results and
views, about a million objects, and the loop stood still for 1.1-1.4 s while probes fell due.

Run on a clock instead, collections walk what is young, and all of it only rarely:

- at start-up, what exists (modules, agreements, restored states) is collected once and
  frozen out of the collector's reach, before the first probe;
- after a round, when ``YOUNG_EVERY_SECONDS`` have passed since the last one, the young
  objects: those made since that are still alive. Nearly all of them live on (a probe
  result lives until the endpoint's next probe) and move to an older generation, which the
  next young collection does not walk again: each object is walked once however often they
  run, so running them often costs no more and keeps each pause short. At 100,000
  endpoints, every 5 s they were about 100,000 objects, 0.1-0.3 s; every second, a median
  of 0.04 s, at most 0.2 s;
- a full collection: the only pause that walks every object made since start-up that still
  lives, for cyclic garbage that lived long enough to grow old. At 100,000 endpoints that is
  about 1.2 million objects and 1.5 s, which leaves some 24,000 probes more than a second
  late. The operator makes little such garbage (the probes make none:
  tests/integration/probes/test_http_wire.py), and a full collection that finds little
  (under ``FEW_FOUND`` objects; at 100,000 endpoints it found none) makes the next one
  twice as far off: after ``FULL_EVERY_SECONDS``, then 2, 4, 8 hours..., at most
  ``FULL_EVERY_MAX_SECONDS``. One that finds more brings the hour back. So a process that
  makes no cyclic garbage pauses about once a day, and one that does is still collected
  hourly.

The automatic collector stays off meanwhile; ``stop`` turns it on again.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable
from typing import Protocol

YOUNG_EVERY_SECONDS = 1.0
FULL_EVERY_SECONDS = 3600.0
FULL_EVERY_MAX_SECONDS = 86400.0
FEW_FOUND = 1000  # unreachable objects a full collection may find and still come less often


class GarbageCollector(Protocol):
    """What of the ``gc`` module this uses (a test passes a recorder)."""

    def collect(self, generation: int = 2) -> int: ...
    def freeze(self) -> None: ...
    def disable(self) -> None: ...
    def enable(self) -> None: ...
    def isenabled(self) -> bool: ...


class PacedCollector:
    """Collections after rounds: the young every second, all once an hour, or less often
    while full collections find little."""

    def __init__(self, *, young_every: float | None = None, full_every: float | None = None,
                 monotonic: Callable[[], float] = time.monotonic,
                 collector: GarbageCollector | None = None) -> None:
        self._young_every = YOUNG_EVERY_SECONDS if young_every is None else young_every
        self._full_base = FULL_EVERY_SECONDS if full_every is None else full_every
        self._full_every = self._full_base
        self._monotonic = monotonic
        self._gc: GarbageCollector = collector or gc
        self._young_at = self._full_at = 0.0
        self._was_enabled = False
        self.started = False

    def start(self) -> None:
        """Collect and freeze what start-up made, then take over from the automatic collector."""
        if self.started:
            return
        self._gc.collect()
        self._gc.freeze()
        self._was_enabled = self._gc.isenabled()
        self._gc.disable()
        self._young_at = self._full_at = self._monotonic()
        self.started = True

    def after_round(self) -> None:
        """The collection due, if any: all generations, or the youngest."""
        if not self.started:
            return
        now = self._monotonic()
        if now - self._full_at >= self._full_every:
            if self._gc.collect(2) < FEW_FOUND:
                longest = max(FULL_EVERY_MAX_SECONDS, self._full_base)
                self._full_every = min(2 * self._full_every, longest)
            else:
                self._full_every = self._full_base
            self._young_at = self._full_at = now
        elif now - self._young_at >= self._young_every:
            self._gc.collect(0)
            self._young_at = now

    def stop(self) -> None:
        """Hand collections back to the automatic collector (if it was on before)."""
        if self.started and self._was_enabled:
            self._gc.enable()
        self.started = False
