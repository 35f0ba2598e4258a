"""Figures rendered into status shapes: honest percentages and stable conditions."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from itertools import pairwise
from typing import Any

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from sla_operator.domain.accounting import DayFigures, PeriodFigures
from sla_operator.domain.health import EndpointHealth
from sla_operator.domain.intervals import Interval
from sla_operator.domain.model import Agreement, Endpoint, HttpProbe, ProbeResult, State
from sla_operator.domain.published import read_published
from sla_operator.domain.render import (
    Condition,
    agreement_conditions,
    conditions,
    daily_runs,
    day_entry,
    endpoint_entry,
    history_entry,
    percent,
    period_dict,
)
from sla_operator.domain.saved import read_saved_status

NOW = datetime(2026, 11, 26, 4, 12, 3, tzinfo=UTC)
EARLIER = "2026-11-20T08:00:00Z"


@pytest.mark.parametrize(
    ("ratio", "shown"),
    [
        pytest.param(1.0, "100.0000", id="everything"),
        pytest.param(0.0, "0.0000", id="nothing"),
        pytest.param(0.99999999, "99.9999", id="a second of downtime in a month is not 100"),
        pytest.param(1 - 1e-15, "99.9999", id="a float just under one is not 100"),
        pytest.param(0.999731, "99.9731", id="four decimals as they are"),
        pytest.param(0.99973159, "99.9731", id="further decimals are cut, not rounded"),
        pytest.param(0.29, "29.0000", id="exact values are not cut by float error"),
        pytest.param(0.9995, "99.9500", id="half a thousandth"),
    ],
)
def test_a_ratio_shows_as_a_percentage_with_four_decimals(ratio: float, shown: str) -> None:
    assert percent(ratio) == shown


@given(st.floats(min_value=0.0, max_value=1.0))
@example(0.29)
@example(0.57)
def test_a_percentage_is_never_above_the_truth_nor_a_step_below_it(ratio: float) -> None:
    shown = Decimal(percent(ratio))
    truth = Decimal(repr(ratio)) * 100
    assert shown <= truth < shown + Decimal("0.0001")
    if ratio < 1.0:
        assert shown < 100


# ---------------------------------------------------------------- conditions


def previous(status: str, when: str = EARLIER) -> list[dict[str, Any]]:
    return [{"type": "Available", "status": status, "reason": "Up", "message": "up",
             "lastTransitionTime": when, "observedGeneration": 1}]


def test_a_condition_that_keeps_its_status_keeps_its_transition_time() -> None:
    (kept,) = conditions(previous("True"), [Condition("Available", True, "Degraded", "slow")], 2, NOW)
    assert kept == {"type": "Available", "status": "True", "reason": "Degraded", "message": "slow",
                    "lastTransitionTime": EARLIER, "observedGeneration": 2}


def test_a_condition_that_flips_moves_its_transition_time_to_now() -> None:
    (flipped,) = conditions(previous("True"), [Condition("Available", False, "Down", "down")], 1, NOW)
    assert (flipped["status"], flipped["lastTransitionTime"]) == ("False", "2026-11-26T04:12:03Z")


def test_a_new_condition_starts_now() -> None:
    (ready, available) = conditions(previous("True"), [Condition("Ready", True, "Reconciled", "ok"),
                                                       Condition("Available", True, "Up", "up")], 1, NOW)
    assert ready["lastTransitionTime"] == "2026-11-26T04:12:03Z"
    assert available["lastTransitionTime"] == EARLIER


def figures(remaining_seconds: float, total_seconds: float = 2592.0) -> PeriodFigures:
    return PeriodFigures(
        period=Interval(datetime(2026, 11, 1, tzinfo=UTC), datetime(2026, 12, 1, tzinfo=UTC)),
        label="2026-11", elapsed_seconds=2_000_000, maintenance_seconds=7200.4,
        excluded_seconds=120, unmonitored_seconds=0, downtime_seconds=697.5,
        eligible_seconds=1_992_679.6, availability=0.999731, objective=Decimal("99.9"),
        budget_total_seconds=total_seconds, budget_remaining_seconds=remaining_seconds,
        budget_remaining_ratio=remaining_seconds / total_seconds, incidents=2, met=True,
        excluded_incidents=())


AGREEMENT = Agreement(namespace="payments", name="payments-api", service="Payments API",
                      objective=Decimal("99.9"),
                      endpoints=(Endpoint("api", HttpProbe("http://127.0.0.1:8099/")),))


@pytest.mark.parametrize(
    ("state", "available"),
    [(State.UP, True), (State.DEGRADED, True), (State.MAINTENANCE, True), (State.DOWN, False),
     (State.UNKNOWN, False)],
)
def test_the_service_is_available_unless_down_or_unknown(state: State, available: bool) -> None:
    wanted = {c.type: c for c in agreement_conditions(AGREEMENT, state, figures(1888))}
    assert wanted["Available"].status is available
    assert wanted["Available"].reason == state.value
    assert wanted["Ready"].status is True


def test_budget_exhausted_is_true_once_nothing_is_left() -> None:
    spent = {c.type: c for c in agreement_conditions(AGREEMENT, State.UP, figures(-10))}
    assert (spent["BudgetExhausted"].status, spent["BudgetExhausted"].reason) == (
        True, "BudgetExhausted")
    left = {c.type: c for c in agreement_conditions(AGREEMENT, State.UP, figures(1888))}
    assert left["BudgetExhausted"].status is False
    assert left["BudgetExhausted"].message == "1888s of 2592s error budget left in 2026-11"


def test_a_rejected_spec_makes_the_agreement_not_ready() -> None:
    wanted = {c.type: c for c in agreement_conditions(AGREEMENT, State.UP, figures(1888),
                                                      rejection="spec.objective: bad")}
    assert (wanted["Ready"].status, wanted["Ready"].reason) == (False, "InvalidSpec")
    assert wanted["Ready"].message.startswith("spec.objective: bad")


# ---------------------------------------------------------------- shapes


def test_the_current_period_has_the_shape_of_the_contract() -> None:
    rendered = period_dict(figures(1888))
    assert rendered["start"] == "2026-11-01T00:00:00Z"
    assert rendered["end"] == "2026-12-01T00:00:00Z"
    assert (rendered["availability"], rendered["objective"]) == ("99.9731", "99.9")
    assert (rendered["downtimeSeconds"], rendered["maintenanceSeconds"],
            rendered["excludedSeconds"], rendered["unmonitoredSeconds"]) == (698, 7200, 120, 0)
    assert rendered["errorBudget"] == {"totalSeconds": 2592, "remainingSeconds": 1888,
                                       "remainingRatio": "0.7284", "remainingPercent": "72.84"}
    entry = history_entry(figures(1888))
    assert (entry["period"], entry["met"], entry["incidents"]) == ("2026-11", True, 2)


def test_a_day_entry_shows_its_date_and_percentage() -> None:
    day = DayFigures(date(2026, 11, 25), 0.99999, 0.864, 0, 0, 0)
    # API.md's four fields always, 0 included; excluded and unmonitored seconds only when not 0
    assert day_entry(day) == {"date": "2026-11-25", "availability": "99.9990",
                              "downtimeSeconds": 1, "maintenanceSeconds": 0}
    before = DayFigures(date(2026, 9, 1), None, 0, 0, 30, 86370)
    assert day_entry(before) == {"date": "2026-09-01", "availability": None, "downtimeSeconds": 0,
                                 "maintenanceSeconds": 0, "excludedSeconds": 30,
                                 "unmonitoredSeconds": 86370}


def test_the_entries_left_short_read_back_whole_in_the_standby_and_after_a_restart() -> None:
    """A figure left out where it is 0 is read as 0 by published.py (a standby's page) and
    saved.py (a restart): the shorter status loses nothing."""
    days = (DayFigures(date(2026, 11, 24), None, 0, 0, 0, 86400),
            DayFigures(date(2026, 11, 25), 0.99999, 1, 0, 30, 0),
            DayFigures(date(2026, 11, 26), 1.0, 0, 3600, 0, 0))
    entry = history_entry(figures(1888))
    assert "unmonitoredSeconds" not in entry and entry["excludedSeconds"] == 120  # API.md shows it
    status = {"state": "Up", "daily": [day_entry(d) for d in days], "history": [entry],
              "endpoints": [endpoint_entry("api", False, EndpointHealth(State.UP, since=NOW))]}
    published = read_published(status, Decimal("99.9"))
    assert published.problems == ()
    assert [(d.date, d.excluded_seconds, d.unmonitored_seconds) for d in published.days] == [
        (d.date, d.excluded_seconds, d.unmonitored_seconds) for d in days]
    assert published.endpoints == {"api": State.UP}
    saved = read_saved_status(status, NOW + timedelta(days=10))
    assert saved.problems == ()
    assert "unmonitoredSeconds" not in saved.history["2026-11"]
    assert [s.endpoint for s in saved.up_streaks] == ["api"]


def test_an_endpoint_entry_shows_the_last_probe() -> None:
    last = ProbeResult(NOW, True, 0.0414, "200 OK", NOW + timedelta(days=60))
    health = EndpointHealth(state=State.UP, since=NOW, consecutive_successes=4, last=last)
    assert endpoint_entry("api", False, health) == {
        "name": "api", "state": "Up", "since": "2026-11-26T04:12:03Z",
        "lastProbeTime": "2026-11-26T04:12:03Z", "latencyMs": 41, "consecutiveFailures": 0,
        "consecutiveSuccesses": 4, "message": "200 OK", "certificateNotAfter": "2027-01-25T04:12:03Z"}
    assert endpoint_entry("bank", True, health)["dependency"] is True  # false: left out
    before = endpoint_entry("api", False, EndpointHealth())
    assert (before["state"], before["latencyMs"], before["lastProbeTime"]) == ("Unknown", None, None)


def _day_entries(figures: list[tuple[str | None, int]]) -> list[dict[str, Any]]:
    first = date(2026, 9, 1)
    return [day_entry(DayFigures(first + timedelta(days=i), None if a is None else float(a) / 100,
                                 downtime, 0, 0, 0 if a is not None else 86400))
            for i, (a, downtime) in enumerate(figures)]


def test_daily_bars_are_stored_as_runs_of_days_alike_and_read_back_day_by_day() -> None:
    days = _day_entries([(None, 0)] * 3 + [("100", 0)] * 4 + [("99", 864)] + [("100", 0)] * 2)
    runs = daily_runs(days)
    assert runs == [
        {"date": "2026-09-01", "days": 3, "availability": None, "downtimeSeconds": 0,
         "maintenanceSeconds": 0, "unmonitoredSeconds": 86400},
        {"date": "2026-09-04", "days": 4, "availability": "100.0000", "downtimeSeconds": 0,
         "maintenanceSeconds": 0},
        {"date": "2026-09-08", "availability": "99.0000", "downtimeSeconds": 864,
         "maintenanceSeconds": 0},  # a day alone reads as a day always did
        {"date": "2026-09-09", "days": 2, "availability": "100.0000", "downtimeSeconds": 0,
         "maintenanceSeconds": 0},
    ]
    assert list(runs[0])[:2] == ["date", "days"]  # how kubectl shows it: the run first
    published = read_published({"daily": runs}, Decimal("99.9"))
    assert published.problems == ()
    assert [day_entry(d) for d in published.days] == days


@given(st.lists(st.sampled_from([(None, 0), ("100", 0), ("99.5", 432)]), min_size=1, max_size=90))
def test_runs_of_daily_bars_hold_every_day_once(figures: list[tuple[str | None, int]]) -> None:
    days = _day_entries(figures)
    runs = daily_runs(days)
    assert sum(r.get("days", 1) for r in runs) == len(days)
    figures_of = [{k: v for k, v in r.items() if k not in ("date", "days")} for r in runs]
    assert all(a != b for a, b in pairwise(figures_of))  # runs are maximal
    assert [day_entry(d) for d in read_published({"daily": runs}, Decimal("99.9")).days] == days
