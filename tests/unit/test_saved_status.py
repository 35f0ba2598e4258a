"""A status read back is untrusted: bad entries are dropped with their field path, never used."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from sla_operator.domain.saved import describe, read_saved_status

NOW = datetime(2026, 11, 26, 4, 0, tzinfo=UTC)
GOOD = {"period": "2026-10", "start": "2026-10-01T00:00:00Z", "end": "2026-11-01T00:00:00Z",
        "availability": "99.9912", "objective": "99.9", "met": True, "downtimeSeconds": 236,
        "maintenanceSeconds": 3600, "excludedSeconds": 0, "unmonitoredSeconds": 0, "incidents": 2}


def test_a_well_formed_status_is_taken_back_whole() -> None:
    saved = read_saved_status({
        "history": [GOOD],
        "unmonitored": [{"start": "2026-11-20T00:00:00Z", "end": "2026-11-20T01:00:00Z"}],
        "conditions": [{"type": "Ready", "status": "True", "reason": "Evaluated", "message": "",
                        "lastTransitionTime": "2026-11-20T00:00:00Z", "observedGeneration": 2}],
        "lastEvaluated": "2026-11-26T03:59:58Z",
        "endpoints": [{"name": "api", "state": "Down", "since": "2026-11-26T03:50:00Z",
                       "consecutiveFailures": 7}]}, NOW)
    assert saved.problems == ()
    assert saved.history == {"2026-10": GOOD}
    assert len(saved.unmonitored) == 1 and len(saved.conditions) == 1
    assert saved.last_evaluated == datetime(2026, 11, 26, 3, 59, 58, tzinfo=UTC)
    assert [(s.endpoint, s.consecutive_failures) for s in saved.down_streaks] == [("api", 7)]


@pytest.mark.parametrize(("entry", "path"), [
    ({**GOOD, "availability": "n/a"}, "status.history[0].availability"),
    ({**GOOD, "availability": 99.5}, "status.history[0].availability"),
    ({**GOOD, "availability": "1e400"}, "status.history[0].availability"),
    ({**GOOD, "availability": "-3"}, "status.history[0].availability"),
    ({**GOOD, "availability": "_1"}, "status.history[0].availability"),
    ({**GOOD, "availability": "9_9"}, "status.history[0].availability"),
    ({**GOOD, "availability": " 99"}, "status.history[0].availability"),
    ({**GOOD, "availability": "\u0669\u0669"}, "status.history[0].availability"),
    ({**GOOD, "objective": "_99.9"}, "status.history[0].objective"),
    ({k: v for k, v in GOOD.items() if k != "availability"}, "status.history[0].availability"),
    ({**GOOD, "period": "last month"}, "status.history[0].period"),
    ({**GOOD, "period": ["2026-10"]}, "status.history[0].period"),
    ({**GOOD, "objective": "NaN"}, "status.history[0].objective"),
    ({**GOOD, "met": "yes"}, "status.history[0].met"),
    ({**GOOD, "downtimeSeconds": -1}, "status.history[0].downtimeSeconds"),
    ({**GOOD, "downtimeSeconds": 1e300}, "status.history[0].downtimeSeconds"),
    ({**GOOD, "incidents": "two"}, "status.history[0].incidents"),
    ({**GOOD, "start": "yesterday"}, "status.history[0].start"),
    ({**GOOD, "period": "2027-01"}, "status.history[0].period"),
    ({**GOOD, "period": "2026-W50"}, "status.history[0].period"),
    ({**GOOD, "period": "2025-W53"}, "status.history[0].period"),
    ({**GOOD, "end": "2026-12-01T00:00:00Z"}, "status.history[0].end"),
    ("2026-10", "status.history[0]"),
])
def test_a_bad_history_entry_is_dropped_naming_its_field(entry: Any, path: str) -> None:
    saved = read_saved_status({"history": [entry, {**GOOD, "period": "2026-09"}]}, NOW)
    assert list(saved.history) == ["2026-09"]  # the good one stays; the bad one is recomputed
    assert [p.path for p in saved.problems] == [path]
    assert "entry dropped" in str(saved.problems[0])


def test_a_day_or_period_without_data_may_have_a_null_availability() -> None:
    saved = read_saved_status({"history": [{**GOOD, "availability": None}]}, NOW)
    assert saved.problems == () and saved.history["2026-10"]["availability"] is None


@pytest.mark.parametrize("status", [
    "garbage", 42, ["a"],
    {"history": "2026-10", "unmonitored": {"start": 1}, "conditions": 7, "endpoints": "api"},
    {"unmonitored": [{"start": "2026-11-20T01:00:00Z", "end": "2026-11-20T00:00:00Z"}, {}]},
    {"conditions": [{"type": "Ready", "status": "maybe", "lastTransitionTime": "x"},
                    {"type": "Ready", "status": "True"}]},
    {"lastEvaluated": "not a time"},
    {"lastEvaluated": "2099-01-01T00:00:00Z"},
    {"endpoints": [{"name": None, "state": "Down", "since": "2026-11-26T03:00:00Z"},
                   {"name": "api", "state": "Down", "since": 12}]},
])
def test_poisoned_parts_leave_nothing_behind_but_problems(status: Any) -> None:
    saved = read_saved_status(status, NOW)
    assert saved.problems
    assert not saved.history and not saved.unmonitored and not saved.conditions
    assert saved.last_evaluated is None and not saved.down_streaks
    assert describe(saved.problems)


def test_a_long_list_of_problems_is_cut_for_an_event() -> None:
    saved = read_saved_status({"history": [{"period": i} for i in range(40)]}, NOW)
    assert len(saved.problems) == 40
    assert describe(saved.problems).endswith("and 35 more")


def test_an_unmonitored_gap_in_the_future_is_dropped_and_one_running_into_it_is_cut_at_now() -> None:
    saved = read_saved_status({"unmonitored": [
        {"start": "2026-11-26T05:00:00Z", "end": "2026-12-26T00:00:00Z"},
        {"start": "2026-11-26T03:00:00Z", "end": "2099-01-01T00:00:00Z"},
        {"start": "2026-11-20T00:00:00Z", "end": "2026-11-20T01:00:00Z"}]}, NOW)
    assert [(g.start, g.end) for g in saved.unmonitored] == [
        (datetime(2026, 11, 26, 3, 0, tzinfo=UTC), NOW),
        (datetime(2026, 11, 20, 0, 0, tzinfo=UTC), datetime(2026, 11, 20, 1, 0, tzinfo=UTC))]
    assert [p.path for p in saved.problems] == ["status.unmonitored[0].start",
                                                "status.unmonitored[1].end"]
    assert "in the future; entry dropped" in str(saved.problems[0])
    assert "cut at 2026-11-26T04:00:00Z" in str(saved.problems[1])


def test_conditions_and_down_streaks_dated_after_the_read_back_are_dropped() -> None:
    saved = read_saved_status({
        "conditions": [{"type": "Ready", "status": "True",
                        "lastTransitionTime": "2026-11-27T00:00:00Z"}],
        "endpoints": [{"name": "api", "state": "Down", "since": "2026-11-26T04:10:00Z",
                       "consecutiveFailures": 3}]}, NOW)
    assert not saved.conditions and not saved.down_streaks
    assert [p.path for p in saved.problems] == ["status.conditions[0].lastTransitionTime",
                                                "status.endpoints[0].since"]
