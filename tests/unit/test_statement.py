"""The report's periods: a named calendar period, the current one, and rolling windows."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from sla_operator.domain.errors import SpecError
from sla_operator.domain.intervals import Interval
from sla_operator.domain.model import (
    Agreement,
    CalendarPeriod,
    Endpoint,
    HttpProbe,
    Window,
    WindowType,
)
from sla_operator.domain.statement import statement_line, statement_period

NOW = datetime(2026, 11, 26, 4, 12, tzinfo=UTC)


def agreement(window: Window) -> Agreement:
    return Agreement(
        namespace="payments", name="payments-api", service="Payments API",
        objective=Decimal("99.9"),
        endpoints=(Endpoint(name="api", probe=HttpProbe(url="http://127.0.0.1:8099/healthz")),),
        window=window, created_at=datetime(2026, 1, 1, tzinfo=UTC),
    )


MONTHLY = agreement(Window())
WEEKLY = agreement(Window(period=CalendarPeriod.WEEK))
ROLLING = agreement(Window(type=WindowType.ROLLING, duration=timedelta(days=30)))


def test_a_named_month_is_that_month() -> None:
    assert statement_period(MONTHLY, "2026-10", NOW) == Interval(
        datetime(2026, 10, 1, tzinfo=UTC), datetime(2026, 11, 1, tzinfo=UTC))


def test_without_a_name_the_current_period_is_reported() -> None:
    assert statement_period(MONTHLY, None, NOW) == Interval(
        datetime(2026, 11, 1, tzinfo=UTC), datetime(2026, 12, 1, tzinfo=UTC))
    assert statement_period(ROLLING, None, NOW) == Interval(NOW - timedelta(days=30), NOW)


def test_a_rolling_window_asked_for_a_named_period_is_refused_not_shown_as_its_current_one() -> None:
    with pytest.raises(SpecError) as refused:
        statement_line(ROLLING, [], [], [], "2026-11", NOW)
    (problem,) = refused.value.problems
    assert problem.path == "period"
    assert problem.message == (
        "'2026-11' names a calendar period, but this agreement is measured over a rolling "
        "window (rolling-30d), which has only its current window: report it without a period")


def test_a_label_of_another_calendar_period_is_refused_with_the_expected_form() -> None:
    with pytest.raises(SpecError, match=r"expected an ISO week like 2026-W44"):
        statement_period(WEEKLY, "2026-11", NOW)


def test_the_current_rolling_window_is_reported_under_its_own_name() -> None:
    line = statement_line(ROLLING, [], [], [], None, NOW)
    assert line.period == "rolling-30d"
    assert (line.start, line.end) == ((NOW - timedelta(days=30)).isoformat(), NOW.isoformat())
    assert line.availability.startswith("100")


def test_the_time_since_the_last_evaluation_is_unmonitored_from_the_second_after_it() -> None:
    from sla_operator.statement.command import unmonitored_of

    # lastEvaluated is written to the whole second: the figures it came with were computed
    # up to a second later, so that second is theirs, not unmonitored time (a report run right
    # after the status said 2 s of downtime counted only 1).
    status = {"lastEvaluated": "2026-11-26T04:11:50Z",
              "unmonitored": [{"start": "2026-11-26T04:00:00Z", "end": "2026-11-26T04:01:00Z"}]}
    assert unmonitored_of(status, NOW) == [
        Interval(datetime(2026, 11, 26, 4, 0, tzinfo=UTC), datetime(2026, 11, 26, 4, 1, tzinfo=UTC)),
        Interval(datetime(2026, 11, 26, 4, 11, 51, tzinfo=UTC), NOW)]
    assert unmonitored_of({"lastEvaluated": "2026-11-26T04:11:59.500000Z"}, NOW) == []
