"""The engine's windows: by namespace, and occurrences from a memo that never goes stale."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sla_operator.domain.intervals import Interval
from sla_operator.domain.model import Agreement, MaintenanceWindow
from sla_operator.domain.schedule import maintenance_intervals
from sla_operator.engine.windows import Windows

T0 = datetime(2026, 11, 26, 4, 12, 3, tzinfo=UTC)
QUARTER_HOURLY = MaintenanceWindow(namespace="shop", name="often", schedule="*/15 * * * *",
                                   duration=timedelta(minutes=5), time_zone="Europe/London")
WEEKLY = MaintenanceWindow(namespace="shop", name="weekly", schedule="0 2 * * SUN",
                           duration=timedelta(hours=2), time_zone="Europe/London")
ONE_OFF = MaintenanceWindow(namespace="shop", name="once", start=T0, end=T0 + timedelta(hours=3))


def agreement(namespace: str = "shop") -> Agreement:
    return Agreement(namespace=namespace, name="web", service="Web", objective=Decimal("99.9"),
                     endpoints=(), created_at=T0)


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(window=st.sampled_from([QUARTER_HOURLY, WEEKLY, ONE_OFF]),
       starts=st.lists(st.integers(min_value=-100 * 24 * 60, max_value=30 * 24 * 60), min_size=1,
                       max_size=4),
       length=st.integers(min_value=0, max_value=95 * 24 * 60))
def test_the_memo_gives_what_the_schedule_gives_for_any_bounds(
        window: MaintenanceWindow, starts: list[int], length: int) -> None:
    windows = Windows()
    windows.put(window)
    for start in starts:  # several bounds one after another: the memo is reused or replaced
        bounds = Interval(T0 + timedelta(minutes=start), T0 + timedelta(minutes=start + length))
        assert windows.intervals(window, bounds) == maintenance_intervals(window, bounds)


def test_a_changed_window_is_never_answered_from_its_old_occurrences() -> None:
    windows = Windows()
    bounds = Interval(T0 - timedelta(days=1), T0 + timedelta(days=1))
    windows.put(WEEKLY)
    windows.intervals(WEEKLY, bounds)
    moved = replace(WEEKLY, schedule="0 4 * * *", generation=2)
    windows.put(moved)
    assert windows.intervals(moved, bounds) == maintenance_intervals(moved, bounds)


def test_an_agreement_gets_the_windows_of_its_own_namespace_only() -> None:
    windows = Windows()
    windows.put(WEEKLY)
    windows.put(replace(WEEKLY, namespace="other"))
    assert windows.of(agreement()) == [WEEKLY]
    assert windows.of(agreement("empty")) == []
    windows.drop(WEEKLY.key)
    assert windows.of(agreement()) == []
