"""The quorum rule (domain/quorum.py): an endpoint's state from several locations' views.

The properties run the rule over interleavings of the locations' state changes and lapses of
freshness: between two events the views stand still, so the rule's answer on each stretch is
the decided state of all of it."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from itertools import pairwise

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sla_operator.domain.intervals import Interval, intersect, subtract, union
from sla_operator.domain.model import Probing, State
from sla_operator.domain.quorum import LocationView, QuorumDecision, decide, quorum_seen_until

T0 = datetime(2026, 12, 1, tzinfo=UTC)
UP, DOWN, DEGRADED, UNKNOWN = State.UP, State.DOWN, State.DEGRADED, State.UNKNOWN
FEW = settings(max_examples=150, deadline=None)


def at(second: int) -> datetime:
    return T0 + timedelta(seconds=second)


def view(state: State, since: int, fresh: bool = True) -> LocationView:
    return LocationView(state, at(since), fresh)


# ---------------------------------------------------------------- the rule, case by case


def test_down_takes_a_quorum_of_fresh_locations_and_dates_from_when_it_was_reached() -> None:
    views = [view(DOWN, 10), view(DOWN, 30), view(UP, 0)]
    assert decide(views, 2) == QuorumDecision(DOWN, at(30))
    assert decide(views, 1).since == at(10)  # the first location alone decides
    assert decide(views, 3).state is UP  # two of three are short of three


def test_one_location_down_of_three_with_quorum_two_is_up() -> None:
    decision = decide([view(DOWN, 10), view(UP, 0), view(UP, 5)], 2)
    assert (decision.state, decision.since) == (UP, at(5))


def test_stale_locations_do_not_count_and_too_few_fresh_ones_are_unmonitored() -> None:
    views = [view(DOWN, 10), view(DOWN, 20, fresh=False), view(UP, 0, fresh=False)]
    decision = decide(views, 2)
    assert (decision.state, decision.since) == (UNKNOWN, None)
    assert decide(views, 1).state is DOWN


def test_a_location_with_no_state_yet_says_nothing() -> None:
    assert decide([view(UNKNOWN, 0), view(UP, 0)], 2).state is UNKNOWN


def test_degraded_counts_the_locations_that_see_it_degraded_or_down() -> None:
    decision = decide([view(DOWN, 10), view(DEGRADED, 20), view(UP, 0)], 2)
    assert (decision.state, decision.since) == (DEGRADED, at(20))


def test_up_dates_from_when_trouble_lost_its_quorum() -> None:
    # Down by a and b until b recovered at 50; c recovered later but changed nothing.
    decision = decide([view(DOWN, 10), view(UP, 50), view(UP, 70)], 2)
    assert (decision.state, decision.since) == (UP, at(70))
    decision = decide([view(UP, 40), view(UP, 50), view(UP, 70)], 2)
    assert decision.since == at(50)


def test_a_quorum_below_one_is_refused() -> None:
    with pytest.raises(ValueError, match="quorum 0"):
        decide([], 0)


def test_the_quorum_is_a_majority_unless_named() -> None:
    assert [Probing().quorum_of(n) for n in (0, 1, 2, 3, 4, 5)] == [1, 1, 2, 2, 3, 3]
    assert Probing(locations=("a", "b", "c")).quorum_of(1) == 2  # of the named, not reporting
    assert Probing(quorum=1).quorum_of(3) == 1


def test_results_are_seen_until_the_quorum_th_newest() -> None:
    assert quorum_seen_until([at(5), at(30), at(20)], 2) == at(20)
    assert quorum_seen_until([at(5)], 2) is None


# ---------------------------------------------------------------- over interleavings

HORIZON = 100
KINDS = (UP, DOWN, DEGRADED, "stale", "fresh")


@dataclass(frozen=True)
class Stretch:
    """Between two events: each location's view (as of the stretch's start)."""

    span: Interval
    views: tuple[LocationView, ...]


def stretches(count: int, events: list[tuple[int, int, object]]) -> list[Stretch]:
    """The views on each stretch between events; a location starts Up and fresh at 0, and a
    state it already has changes nothing (its since stays)."""
    views = [LocationView(UP, at(0), True) for _ in range(count)]
    times = sorted({0, HORIZON, *(t for t, _, _ in events)})
    by_time: dict[int, list[tuple[int, object]]] = {}
    for time, location, kind in events:
        by_time.setdefault(time, []).append((location % count, kind))
    result = []
    for start, end in pairwise(times):
        for location, kind in by_time.get(start, []):
            current = views[location]
            if kind == "stale" or kind == "fresh":
                views[location] = replace(current, fresh=kind == "fresh")
            elif kind is not current.state:
                assert isinstance(kind, State)
                views[location] = LocationView(kind, at(start), current.fresh)
        result.append(Stretch(Interval(at(start), at(end)), tuple(views)))
    return result


def downtime(timeline: list[Stretch], quorum: int) -> list[Interval]:
    return union(s.span for s in timeline if decide(s.views, quorum).state is DOWN)


def location_downtime(timeline: list[Stretch], location: int) -> list[Interval]:
    return union(s.span for s in timeline
                 if s.views[location].fresh and s.views[location].state is DOWN)


def same(left: list[Interval], right: list[Interval]) -> bool:
    return not subtract(left, right) and not subtract(right, left)


interleavings = st.integers(min_value=1, max_value=4).flatmap(lambda count: st.tuples(
    st.just(count),
    st.lists(st.tuples(st.integers(0, HORIZON - 1), st.integers(0, count - 1),
                       st.sampled_from(KINDS)), max_size=30)))
steady = st.integers(min_value=1, max_value=4).flatmap(lambda count: st.tuples(
    st.just(count),
    st.lists(st.tuples(st.integers(0, HORIZON - 1), st.integers(0, count - 1),
                       st.sampled_from((UP, DOWN, DEGRADED))), max_size=30)))


@FEW
@given(interleavings)
def test_raising_the_quorum_never_adds_downtime(case: tuple[int, list]) -> None:
    count, events = case
    timeline = stretches(count, events)
    for quorum in range(1, count):
        assert not subtract(downtime(timeline, quorum + 1), downtime(timeline, quorum))


@FEW
@given(interleavings)
def test_quorum_one_is_the_union_and_quorum_n_the_intersection(case: tuple[int, list]) -> None:
    count, events = case
    timeline = stretches(count, events)
    each = [location_downtime(timeline, i) for i in range(count)]
    assert same(downtime(timeline, 1), union(span for spans in each for span in spans))
    common = each[0]
    for spans in each[1:]:
        common = intersect(common, spans)
    assert same(downtime(timeline, count), common)


@FEW
@given(interleavings, st.integers(min_value=1, max_value=4))
def test_time_with_fewer_than_quorum_fresh_locations_is_never_downtime(
        case: tuple[int, list], quorum: int) -> None:
    count, events = case
    for stretch in stretches(count, events):
        if sum(v.fresh for v in stretch.views) < quorum:
            assert decide(stretch.views, quorum).state is UNKNOWN


@FEW
@given(steady)
def test_downtime_starts_when_the_quorum_was_reached_and_ends_when_it_was_lost(
        case: tuple[int, list]) -> None:
    count, events = case
    for quorum in range(1, count + 1):
        before = State.UP
        for stretch in stretches(count, events):
            decision = decide(stretch.views, quorum)
            if decision.state is DOWN and before is not DOWN:
                assert decision.since == stretch.span.start
            if decision.state is UP and before is not UP:
                assert decision.since == stretch.span.start
            before = decision.state
