"""Half-open time intervals [start, end) and the set arithmetic accounting is built on."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from operator import attrgetter


@dataclass(frozen=True, order=True)
class Interval:
    """A half-open span of time; ``start <= end``, both timezone-aware."""

    start: datetime
    end: datetime

    def __post_init__(self) -> None:
        if self.end < self.start:
            raise ValueError(f"interval ends before it starts: {self.start} > {self.end}")

    @property
    def seconds(self) -> float:
        return (self.end - self.start).total_seconds()

    def contains(self, moment: datetime) -> bool:
        return self.start <= moment < self.end

    def overlaps(self, other: Interval) -> bool:
        return self.start < other.end and other.start < self.end

    def clip(self, bounds: Interval) -> Interval | None:
        """The part of this interval inside ``bounds``, or None when they do not overlap."""
        start, end = max(self.start, bounds.start), min(self.end, bounds.end)
        return Interval(start, end) if start < end else None


def union(intervals: Iterable[Interval]) -> list[Interval]:
    """Sorted, non-overlapping intervals covering exactly the same time (touching ones merge)."""
    # An evaluation calls this about a hundred times, mostly on none or one interval.
    items = [i for i in intervals if i.start < i.end]
    if len(items) < 2:
        return items
    # Sorted as Interval's own order (start, then end), compared in C rather than by the
    # dataclass's __lt__.
    items.sort(key=_start_end)
    merged = [items[0]]
    last = items[0]
    for current in items[1:]:
        if current.start <= last.end:
            if current.end > last.end:
                last = merged[-1] = Interval(last.start, current.end)
        else:
            merged.append(current)
            last = current
    return merged


_start_end = attrgetter("start", "end")


def intersect(left: Iterable[Interval], right: Iterable[Interval]) -> list[Interval]:
    """Time covered by both sets."""
    a, b = union(left), union(right)
    result: list[Interval] = []
    i = j = 0
    while i < len(a) and j < len(b):
        start, end = max(a[i].start, b[j].start), min(a[i].end, b[j].end)
        if start < end:
            result.append(Interval(start, end))
        if a[i].end < b[j].end:
            i += 1
        else:
            j += 1
    return result


def subtract(base: Iterable[Interval], removed: Iterable[Interval]) -> list[Interval]:
    """Time covered by ``base`` and not by ``removed``."""
    result: list[Interval] = []
    cuts = union(removed)
    for piece in union(base):
        start = piece.start
        for cut in cuts:
            if cut.end <= start or cut.start >= piece.end:
                continue
            if cut.start > start:
                result.append(Interval(start, cut.start))
            start = max(start, cut.end)
            if start >= piece.end:
                break
        if start < piece.end:
            result.append(Interval(start, piece.end))
    return result


def clip_all(intervals: Iterable[Interval], bounds: Interval) -> list[Interval]:
    """Each interval clipped to ``bounds``, dropping those outside it."""
    return [c for c in (i.clip(bounds) for i in intervals) if c is not None]


def total_seconds(intervals: Sequence[Interval] | Iterable[Interval]) -> float:
    """Seconds covered, counting overlapping time once."""
    return sum(i.seconds for i in union(intervals))
