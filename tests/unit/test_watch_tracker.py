"""The watch tracker: what the watches owe after a list, and when that means they stopped."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sla_operator.kube.watch import WatchTracker
from sla_operator.store.base import Kind

T0 = datetime(2026, 11, 26, 4, 0, tzinfo=UTC)
WEB = ("shop", "web")


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


def meta(version: str) -> dict[str, str]:
    return {"namespace": "shop", "name": "web", "resourceVersion": version}


def test_watches_that_keep_up_owe_nothing() -> None:
    clock = Clock()
    tracker = WatchTracker(clock, timedelta(seconds=60))
    tracker.delivered(Kind.AGREEMENT, WEB, meta("12"))
    tracker.listed(Kind.AGREEMENT, {WEB: 12})
    clock.now += timedelta(minutes=10)
    assert tracker.problems() == []


def test_a_change_delivered_after_the_list_settles_what_was_owed() -> None:
    clock = Clock()
    tracker = WatchTracker(clock, timedelta(seconds=60))
    tracker.delivered(Kind.AGREEMENT, WEB, meta("12"))
    tracker.listed(Kind.AGREEMENT, {WEB: 15})  # the list was quicker than the watch
    tracker.delivered(Kind.AGREEMENT, WEB, meta("15"))
    clock.now += timedelta(minutes=10)
    assert tracker.problems() == []


def test_a_change_never_delivered_within_grace_means_the_watches_stopped() -> None:
    clock = Clock()
    tracker = WatchTracker(clock, timedelta(seconds=60))
    tracker.delivered(Kind.AGREEMENT, WEB, meta("12"))
    tracker.listed(Kind.AGREEMENT, {WEB: 15, ("shop", "new"): 16})
    clock.now += timedelta(seconds=30)
    tracker.listed(Kind.AGREEMENT, {WEB: 17, ("shop", "new"): 16})  # still owed since the first
    assert tracker.problems() == []
    clock.now += timedelta(seconds=31)
    (problem,) = tracker.problems()
    assert problem.startswith("watches stopped: no event for ServiceLevelAgreement shop/new, "
                              "ServiceLevelAgreement shop/web in 60s")


def test_an_object_deleted_meanwhile_owes_nothing() -> None:
    clock = Clock()
    tracker = WatchTracker(clock, timedelta(seconds=60))
    tracker.listed(Kind.MAINTENANCE, {WEB: 15})
    tracker.listed(Kind.MAINTENANCE, {})
    clock.now += timedelta(minutes=5)
    assert tracker.problems() == []
    tracker.delivered(Kind.MAINTENANCE, WEB, meta("20"), deleted=True)
    assert tracker.seen(Kind.MAINTENANCE, WEB) is None


def test_versions_that_are_not_numbers_are_not_compared() -> None:
    clock = Clock()
    tracker = WatchTracker(clock, timedelta(seconds=60))
    tracker.delivered(Kind.AGREEMENT, WEB, meta("opaque"))
    assert tracker.seen(Kind.AGREEMENT, WEB) is None
