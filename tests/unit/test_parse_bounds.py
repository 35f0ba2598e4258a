"""Huge durations and far-away times are refused with their field path, never an overflow.

The CRD patterns accept any number of digits and any RFC 3339 year, so these values reach the
parser; refused there, they can never reach the arithmetic of schedules and accounting.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from sla_operator.domain.accounting import AccountingInput, compute_days, compute_period
from sla_operator.domain.durations import DURATION_PATTERN, MAX_DURATION, parse_duration
from sla_operator.domain.errors import SpecError
from sla_operator.domain.fields import parse_time
from sla_operator.domain.intervals import Interval
from sla_operator.domain.model import Severity
from sla_operator.domain.parse import agreement_from_manifest
from sla_operator.domain.records import (
    incident_from_manifest,
    incident_status,
    maintenance_from_manifest,
)
from sla_operator.domain.schedule import active_and_next, maintenance_intervals, validate_maintenance

NOW = datetime(2026, 11, 15, 12, 0, tzinfo=UTC)
NOVEMBER = Interval(datetime(2026, 11, 1, tzinfo=UTC), datetime(2026, 12, 1, tzinfo=UTC))
LATEST_TIME = "8999-12-31T23:59:59Z"


def problem_paths(error: SpecError) -> dict[str, str]:
    return {p.path: p.message for p in error.problems}


def window(**spec: Any) -> dict[str, Any]:
    return {"metadata": {"name": "nightly", "namespace": "payments"}, "spec": spec}


def incident(**spec: Any) -> dict[str, Any]:
    base = {"agreement": "payments-api", "startedAt": "2026-11-10T10:00:00Z"}
    return {"metadata": {"name": "outage", "namespace": "payments"}, "spec": {**base, **spec}}


# ---------------------------------------------------------------- durations


@pytest.mark.parametrize("text", ["99999999999w", "3651d", "3650d1ms", "1" + "0" * 400 + "s"])
def test_a_duration_beyond_ten_years_is_refused_at_its_path(text: str) -> None:
    with pytest.raises(SpecError) as caught:
        parse_duration(text, "spec.endpoints[0].interval")
    assert list(problem_paths(caught.value)) == ["spec.endpoints[0].interval"]
    assert "at most 3650d" in caught.value.problems[0].message


def test_ten_years_is_the_longest_duration_accepted() -> None:
    assert parse_duration("3650d", "spec.window.duration") == MAX_DURATION == timedelta(days=3650)
    assert parse_duration("521w3d", "spec.window.duration") == timedelta(days=3650)


@given(st.from_regex(DURATION_PATTERN, fullmatch=True))
def test_every_text_the_crd_pattern_admits_parses_or_is_refused_as_a_spec_error(text: str) -> None:
    try:
        parsed = parse_duration(text, "spec.duration")
    except SpecError as refused:
        assert list(problem_paths(refused)) == ["spec.duration"]
    else:
        assert timedelta(0) <= parsed <= MAX_DURATION


def test_a_huge_interval_is_an_invalid_agreement_not_a_crash() -> None:
    manifest = {
        "metadata": {"name": "payments-api", "namespace": "payments"},
        "spec": {"objective": "99.9", "endpoints": [
            {"name": "api", "interval": "99999999999w", "http": {"url": "http://127.0.0.1:1/"}}]},
    }
    with pytest.raises(SpecError) as caught:
        agreement_from_manifest(manifest)
    assert "spec.endpoints[0].interval" in problem_paths(caught.value)


# ---------------------------------------------------------------- times


@pytest.mark.parametrize("text", ["9999-12-31T23:00:00Z", "9000-01-01T00:00:00Z",
                                  "0001-01-01T00:00:00Z", "1969-12-31T23:59:59Z",
                                  "9999-12-31T23:59:59-05:00", "0001-01-01T00:00:00+05:00"])
def test_a_time_outside_1970_to_8999_is_refused_at_its_path(text: str) -> None:
    with pytest.raises(SpecError) as caught:
        parse_time(text, "spec.startedAt")
    assert list(problem_paths(caught.value)) == ["spec.startedAt"]
    assert "out of range" in caught.value.problems[0].message


@pytest.mark.parametrize("text", ["1970-01-01T00:00:00Z", LATEST_TIME, "8999-12-31T23:59:59+05:00"])
def test_times_at_the_edges_of_the_range_are_accepted(text: str) -> None:
    assert parse_time(text, "spec.startedAt") == datetime.fromisoformat(text.replace("Z", "+00:00"))


def test_a_far_future_time_read_by_yaml_as_a_datetime_is_refused_and_shown_as_text() -> None:
    loaded = yaml.safe_load("startedAt: 9999-12-31T23:00:00Z")["startedAt"]
    with pytest.raises(SpecError) as caught:
        parse_time(loaded, "spec.startedAt")
    assert "'9999-12-31T23:00:00+00:00' is out of range" in caught.value.problems[0].message


# ---------------------------------------------------------------- schedules


def test_a_window_valid_from_year_9999_is_refused_before_its_schedule_is_searched() -> None:
    with pytest.raises(SpecError) as caught:
        maintenance_from_manifest(window(schedule="0 2 * * SUN", duration="2h",
                                         validFrom="9999-01-01T00:00:00Z"))
    assert list(problem_paths(caught.value)) == ["spec.validFrom"]


def test_a_window_with_a_huge_duration_is_refused_at_spec_duration() -> None:
    with pytest.raises(SpecError) as caught:
        maintenance_from_manifest(window(schedule="0 2 * * SUN", duration="99999999999w"))
    assert list(problem_paths(caught.value)) == ["spec.duration"]


def test_a_one_off_window_at_the_latest_times_is_validated_and_scheduled() -> None:
    parsed = maintenance_from_manifest(window(start="8999-12-31T00:00:00Z", end=LATEST_TIME))
    validate_maintenance(parsed)
    assert maintenance_intervals(parsed, NOVEMBER) == []
    assert active_and_next(parsed, NOW) == (None, Interval(parsed.start, parsed.end))


def test_a_rare_schedule_valid_from_the_latest_time_is_searched_without_overflow() -> None:
    # 29 February at midnight: the search for a firing looks eight years past validFrom.
    parsed = maintenance_from_manifest(window(schedule="0 0 29 2 *", duration="3650d",
                                              validFrom=LATEST_TIME))
    validate_maintenance(parsed)
    assert maintenance_intervals(parsed, NOVEMBER) == []
    assert active_and_next(parsed, NOW) == (None, None)


# ---------------------------------------------------------------- accounting


def test_an_incident_started_in_year_9999_is_refused_at_spec_started_at() -> None:
    with pytest.raises(SpecError) as caught:
        incident_from_manifest(incident(startedAt="9999-12-31T23:00:00Z"))
    assert list(problem_paths(caught.value)) == ["spec.startedAt"]


def test_an_incident_at_the_latest_time_with_the_longest_response_target_is_accounted() -> None:
    late = incident_from_manifest(incident(startedAt=LATEST_TIME, resolvedAt=LATEST_TIME))
    support = dict.fromkeys(Severity, MAX_DURATION)
    status = incident_status(late, support, 0, NOW)
    assert status["responseDue"] == "9009-12-29T23:59:59Z"
    inputs = AccountingInput(Decimal("99.9"), None, [], [late])
    figures = compute_period(inputs, NOVEMBER, NOW, "2026-11")
    assert figures.downtime_seconds == 0
    assert all(day.downtime_seconds == 0 for day in compute_days(inputs, "UTC", NOW))
