"""The write budget: a token bucket on the engine's clock, pauses the API server asks for,
each object's refresh phase, and the flag that sets the rate."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

import pytest
from kubernetes.client.exceptions import ApiException

from sla_operator.cli import _settings, build_parser
from sla_operator.engine.writes import DEFAULT_MAX_STATUS_WRITES_PER_SECOND, WriteBudget, refresh_slot
from sla_operator.store.kube import MAX_RETRY_AFTER, retry_after

T0 = datetime(2026, 11, 26, 4, 12, 0, tzinfo=UTC)


def taken(budget: WriteBudget, now: datetime, tries: int) -> int:
    return sum(budget.take(now) for _ in range(tries))


def test_the_bucket_pays_its_burst_then_its_rate() -> None:
    budget = WriteBudget(rate=50, burst=50)
    assert taken(budget, T0, 80) == 50
    assert taken(budget, T0 + timedelta(milliseconds=100), 80) == 5
    assert taken(budget, T0 + timedelta(seconds=10), 200) == 50  # never more than the burst


def test_over_a_minute_the_bucket_pays_rate_times_seconds_plus_burst() -> None:
    budget = WriteBudget(rate=20, burst=20)
    total = sum(taken(budget, T0 + timedelta(seconds=s / 4), 100) for s in range(240))
    assert total <= 20 * 60 + 20


def test_a_rate_of_zero_is_no_cap() -> None:
    budget = WriteBudget(rate=0, burst=0)
    assert taken(budget, T0, 10_000) == 10_000


def test_a_negative_rate_is_refused_by_name() -> None:
    with pytest.raises(ValueError, match="max status writes per second must be 0"):
        WriteBudget(rate=-1, burst=1)


def test_incident_writes_are_never_refused_but_the_refreshes_after_them_wait() -> None:
    budget = WriteBudget(rate=10, burst=10)
    for _ in range(15):
        budget.charge(T0)
    assert taken(budget, T0, 10) == 0
    # The 15 incident writes spent 15 of the 20 writes of the burst and the next second.
    assert taken(budget, T0 + timedelta(seconds=1), 10) == 5
    assert taken(budget, T0 + timedelta(seconds=2), 20) == 10


def test_a_pause_stops_every_write_even_forced_ones_until_it_ends(
        caplog: pytest.LogCaptureFixture) -> None:
    budget = WriteBudget(rate=0, burst=0)
    caplog.set_level(logging.DEBUG, logger="sla_operator")
    budget.pause(T0, 5, "API 429: Too Many Requests")
    budget.pause(T0 + timedelta(seconds=1), 2, "API 429: Too Many Requests")  # ends sooner: kept
    assert not budget.take(T0 + timedelta(seconds=4), force=True)
    assert not budget.can_write(T0 + timedelta(seconds=4))
    assert budget.take(T0 + timedelta(seconds=5))
    budget.written()
    messages = [(r.levelno, r.getMessage()) for r in caplog.records]
    assert [level for level, _ in messages] == [logging.WARNING, logging.DEBUG, logging.INFO]
    assert "writes paused for 5s" in messages[0][1]
    assert budget.throttled == 2


def test_forced_writes_ignore_the_cap() -> None:
    budget = WriteBudget(rate=1, burst=1)
    assert taken(budget, T0, 5) == 1
    assert all(budget.take(T0, force=True) for _ in range(5))


def test_each_object_refreshes_at_its_own_phase_of_the_interval() -> None:
    slots = [refresh_slot(("payments", f"svc-{i}"), T0, 30.0) for i in range(600)]
    assert all(T0 <= s < T0 + timedelta(seconds=30) for s in slots)
    per_second = [sum(1 for s in slots if int((s - T0).total_seconds()) == k) for k in range(30)]
    assert max(per_second) <= 40  # 20 a second on average, never all at once
    key = ("payments", "svc-7")
    first = refresh_slot(key, T0, 30.0)
    assert refresh_slot(key, first, 30.0) == first
    assert refresh_slot(key, first + timedelta(milliseconds=1), 30.0) == first + timedelta(seconds=30)


def refusal(status: int, header: str | None) -> ApiException:
    error = ApiException(status=status, reason="Too Many Requests")
    error.headers = {"Retry-After": header} if header is not None else {}
    return error


@pytest.mark.parametrize("status, header, seconds", [
    (429, "7", 7.0), (429, None, 1.0), (429, "soon", 1.0), (503, "3", 3.0), (503, None, None),
    (500, None, None), (429, "-4", 0.0), (429, "86400", MAX_RETRY_AFTER),
])
def test_retry_after_is_read_from_the_answer(status: int, header: str | None,
                                             seconds: float | None) -> None:
    assert retry_after(refusal(status, header)) == seconds


def test_retry_after_may_be_an_http_date() -> None:
    later = datetime.now(UTC) + timedelta(seconds=120)
    seconds = retry_after(refusal(429, later.strftime("%a, %d %b %Y %H:%M:%S GMT")))
    assert seconds is not None and 100 < seconds <= 120


def test_run_caps_status_writes_by_default_and_local_mode_does_not() -> None:
    run = _settings(build_parser().parse_args(["run"]))
    assert run.engine_settings().max_status_writes_per_second == DEFAULT_MAX_STATUS_WRITES_PER_SECOND
    capped = _settings(build_parser().parse_args(["run", "--max-status-writes-per-second", "5"]))
    assert capped.engine_settings().max_status_writes_per_second == 5.0
    local = _settings(build_parser().parse_args(["local", "--manifests", "m", "--state", "s"]))
    assert local.engine_settings().max_status_writes_per_second == 0.0


@pytest.mark.parametrize("value", ["-1", "fast", "nan", "inf"])
def test_a_bad_write_rate_is_refused_naming_the_flag(value: str,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        build_parser().parse_args(["run", "--max-status-writes-per-second", value])
    assert exited.value.code != 0
    err = capsys.readouterr().err
    assert "argument --max-status-writes-per-second" in err
    assert "a number of 0 (no cap) or more" in err
