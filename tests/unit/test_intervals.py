"""Half-open interval arithmetic: the set operations every availability figure rests on."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from sla_operator.domain.intervals import (
    Interval,
    clip_all,
    intersect,
    subtract,
    total_seconds,
    union,
)

BASE = datetime(2026, 11, 1, tzinfo=UTC)


def span(start_minute: int, end_minute: int) -> Interval:
    """[start, end) in minutes after 2026-11-01T00:00Z."""
    return Interval(BASE + timedelta(minutes=start_minute), BASE + timedelta(minutes=end_minute))


def spans(*pairs: tuple[int, int]) -> list[Interval]:
    return [span(a, b) for a, b in pairs]


def test_an_interval_that_ends_before_it_starts_is_rejected() -> None:
    with pytest.raises(ValueError, match="ends before it starts"):
        span(10, 5)


def test_an_interval_contains_its_start_but_not_its_end() -> None:
    interval = span(0, 10)
    assert interval.contains(BASE)
    assert not interval.contains(BASE + timedelta(minutes=10))
    assert interval.seconds == 600


def test_touching_intervals_do_not_overlap() -> None:
    assert not span(0, 10).overlaps(span(10, 20))
    assert span(0, 10).overlaps(span(9, 20))


def test_clipping_outside_the_bounds_gives_nothing() -> None:
    assert span(0, 10).clip(span(10, 20)) is None
    assert span(0, 15).clip(span(10, 20)) == span(10, 15)


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ([], []),
        ([(0, 10)], [(0, 10)]),
        ([(20, 30), (0, 10)], [(0, 10), (20, 30)]),  # sorted
        ([(0, 10), (10, 20)], [(0, 20)]),  # touching intervals merge
        ([(0, 10), (5, 8)], [(0, 10)]),  # contained
        ([(0, 10), (5, 15), (14, 30)], [(0, 30)]),  # chained overlaps
        ([(5, 5), (0, 1)], [(0, 1)]),  # empty intervals vanish
    ],
)
def test_union_merges_overlapping_and_touching_time(
    given: list[tuple[int, int]], expected: list[tuple[int, int]]
) -> None:
    assert union(spans(*given)) == spans(*expected)


@pytest.mark.parametrize(
    ("left", "right", "expected"),
    [
        ([(0, 10)], [(10, 20)], []),
        ([(0, 10)], [(5, 20)], [(5, 10)]),
        ([(0, 100)], [(10, 20), (30, 40)], [(10, 20), (30, 40)]),
        ([(0, 15), (25, 40)], [(10, 30)], [(10, 15), (25, 30)]),
        ([(0, 10), (5, 20)], [(8, 12)], [(8, 12)]),  # overlapping inputs are merged first
    ],
)
def test_intersect_keeps_time_covered_by_both(
    left: list[tuple[int, int]], right: list[tuple[int, int]], expected: list[tuple[int, int]]
) -> None:
    assert intersect(spans(*left), spans(*right)) == spans(*expected)
    assert intersect(spans(*right), spans(*left)) == spans(*expected)


@pytest.mark.parametrize(
    ("base", "removed", "expected"),
    [
        ([(0, 10)], [], [(0, 10)]),
        ([(0, 10)], [(0, 10)], []),
        ([(0, 10)], [(3, 5)], [(0, 3), (5, 10)]),
        ([(0, 10)], [(-5, 3), (8, 20)], [(3, 8)]),
        ([(0, 10), (20, 30)], [(5, 25)], [(0, 5), (25, 30)]),
        ([(0, 30)], [(5, 10), (8, 12), (20, 25)], [(0, 5), (12, 20), (25, 30)]),
    ],
)
def test_subtract_removes_the_covered_time(
    base: list[tuple[int, int]], removed: list[tuple[int, int]], expected: list[tuple[int, int]]
) -> None:
    assert subtract(spans(*base), spans(*removed)) == spans(*expected)


def test_clip_all_drops_intervals_outside_the_bounds() -> None:
    # (0,10) is clipped to (5,10); (30,40) touches the end and is dropped
    assert clip_all(spans((0, 10), (12, 20), (30, 40)), span(5, 30)) == spans((5, 10), (12, 20))


def test_total_seconds_counts_overlapping_time_once() -> None:
    # (0,10) with (5,15) covers (0,15): 15 minutes = 900 s; plus (20,21): 60 s
    assert total_seconds(spans((0, 10), (5, 15), (20, 21))) == 960
