"""One evaluation of one agreement, without I/O: counters, maintenance edges, restored gaps."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from sla_operator.domain.incidents import Open
from sla_operator.domain.model import (
    Agreement,
    Endpoint,
    HttpProbe,
    Incident,
    IncidentType,
    MaintenanceWindow,
    ProbeResult,
    Severity,
)
from sla_operator.engine.evaluate import evaluate_agreement
from sla_operator.engine.restore import restore_status as _restore
from sla_operator.engine.runtime import AgreementRuntime

CREATED = datetime(2026, 11, 1, tzinfo=UTC)
T0 = datetime(2026, 11, 26, 4, 0, tzinfo=UTC)
SECOND = timedelta(seconds=1)
API = Endpoint("api", HttpProbe("http://127.0.0.1:8099/healthz"), interval=SECOND,
               timeout=SECOND / 2, failure_threshold=3, success_threshold=2)


def agreement() -> Agreement:
    return Agreement(namespace="shop", name="checkout", service="Checkout",
                     objective=Decimal("99.9"), endpoints=(API,), created_at=CREATED)


def probe(runtime: AgreementRuntime, start: datetime, ok: bool, count: int) -> datetime:
    """``count`` probes one second apart from ``start``; returns the time after the last."""
    for n in range(count):
        runtime.observe(API, ProbeResult(start + n * SECOND, ok, 0.01, "200 OK" if ok else "503"))
    return start + count * SECOND


def outage(started: datetime, resolved: datetime | None = None) -> Incident:
    return Incident(namespace="shop", name="checkout-outage", agreement="checkout",
                    type=IncidentType.OUTAGE, severity=Severity.P1, title="down",
                    started_at=started, resolved_at=resolved)


def test_counters_take_an_incident_dated_back_to_its_first_failure_in_full_once() -> None:
    runtime = AgreementRuntime(agreement(), started=T0)
    now = probe(runtime, T0, True, 10)
    evaluate_agreement(runtime, [], [], now)  # the counters' starting point
    assert runtime.downtime_total == 0
    now = probe(runtime, now, False, 3)
    first_failure = now - 3 * SECOND
    incidents = [outage(first_failure)]
    evaluate_agreement(runtime, incidents, [], now)
    assert runtime.downtime_total == pytest.approx(3)
    later = probe(runtime, now, False, 60)
    evaluate_agreement(runtime, incidents, [], later)
    evaluate_agreement(runtime, incidents, [], later)  # the same instant again adds nothing
    assert runtime.downtime_total == pytest.approx(63)
    assert runtime.eligible_total == pytest.approx((later - T0 - 10 * SECOND).total_seconds())


def test_counters_never_go_down_when_downtime_is_excluded_afterwards() -> None:
    runtime = AgreementRuntime(agreement(), started=T0)
    evaluate_agreement(runtime, [], [], T0)
    incidents = [outage(T0, T0 + 30 * SECOND)]
    now = probe(runtime, T0, True, 60)
    evaluate_agreement(runtime, incidents, [], now)
    counted = runtime.downtime_total
    assert counted == pytest.approx(30)
    now = probe(runtime, now, True, 1)
    evaluate_agreement(runtime, [], [], now)  # the incident vanished from the records
    assert runtime.downtime_total == counted


def test_an_incident_that_leaves_the_records_and_comes_back_is_counted_once() -> None:
    runtime = AgreementRuntime(agreement(), started=T0)
    evaluate_agreement(runtime, [], [], T0)
    incidents = [outage(T0 + 10 * SECOND, T0 + 90 * SECOND)]
    now = probe(runtime, T0, True, 100)
    evaluate_agreement(runtime, incidents, [], now)
    assert runtime.downtime_total == pytest.approx(80)
    now = probe(runtime, now, True, 1)
    evaluate_agreement(runtime, [], [], now)  # a file caught mid-write, a delete and re-apply
    now = probe(runtime, now, True, 1)
    evaluate_agreement(runtime, incidents, [], now)
    assert runtime.downtime_total == pytest.approx(80)
    assert runtime.eligible_total == pytest.approx(102)
    # New downtime after it still counts, and only the new part.
    incidents = [*incidents, replace(outage(now - 5 * SECOND, now), name="checkout-again")]
    evaluate_agreement(runtime, incidents, [], now)
    assert runtime.downtime_total == pytest.approx(85)


def test_an_outage_that_began_inside_maintenance_is_dated_from_the_windows_end() -> None:
    window_end = T0 + 10 * SECOND
    window = MaintenanceWindow(namespace="shop", name="db", start=T0 - timedelta(hours=1),
                               end=window_end)
    runtime = AgreementRuntime(agreement(), started=T0 - timedelta(hours=2))
    now = probe(runtime, T0, False, 15)  # failing since T0, through the window's end
    result = evaluate_agreement(runtime, [], [window], now)
    opened = [a.incident for a in result.actions if isinstance(a, Open)]
    assert [i.type for i in opened] == [IncidentType.OUTAGE]
    assert opened[0].started_at == window_end


def test_failures_inside_maintenance_open_nothing_and_the_state_says_maintenance() -> None:
    window = MaintenanceWindow(namespace="shop", name="db", start=T0 - timedelta(hours=1),
                               end=T0 + timedelta(hours=1))
    runtime = AgreementRuntime(agreement(), started=T0 - timedelta(hours=2))
    now = probe(runtime, T0, False, 5)
    result = evaluate_agreement(runtime, [], [window], now)
    assert result.actions == []
    assert result.status["state"] == "Maintenance"
    assert result.status["endpoints"][0]["state"] == "Down"


def test_an_agreement_never_evaluated_before_is_unmonitored_since_its_creation() -> None:
    runtime = AgreementRuntime(agreement(), started=T0)
    _restore(runtime, {}, T0)
    assert [(g.start, g.end) for g in runtime.unmonitored] == [(CREATED, T0)]


def test_a_restart_adds_the_time_since_the_last_evaluation_as_unmonitored() -> None:
    runtime = AgreementRuntime(agreement(), started=T0)
    _restore(runtime, {"lastEvaluated": "2026-11-26T03:00:00Z",
                       "unmonitored": [{"start": "2026-11-02T00:00:00Z",
                                        "end": "2026-11-02T01:00:00Z"}]}, T0)
    gaps = [(g.start, g.end) for g in runtime.unmonitored]
    assert gaps == [(datetime(2026, 11, 2, 0, tzinfo=UTC), datetime(2026, 11, 2, 1, tzinfo=UTC)),
                    (datetime(2026, 11, 26, 3, 0, 1, tzinfo=UTC), T0)]


def test_a_short_pause_is_not_unmonitored() -> None:
    runtime = AgreementRuntime(agreement(), started=T0)
    _restore(runtime, {"lastEvaluated": "2026-11-26T03:59:59Z"}, T0)
    assert runtime.unmonitored == []


def test_closed_periods_are_rebuilt_from_the_records_when_the_status_is_lost() -> None:
    runtime = AgreementRuntime(agreement(), started=T0)
    runtime.agreement = Agreement(namespace="shop", name="checkout", service="Checkout",
                                  objective=Decimal("99.9"), endpoints=(API,),
                                  created_at=datetime(2026, 9, 15, tzinfo=UTC))
    october_outage = outage(datetime(2026, 10, 3, tzinfo=UTC), datetime(2026, 10, 3, 1, tzinfo=UTC))
    result = evaluate_agreement(runtime, [october_outage], [], T0)
    history = {entry["period"]: entry for entry in result.status["history"]}
    assert list(history) == ["2026-09", "2026-10"]
    # October: 31 days = 2,678,400 s eligible, 3,600 s down -> 99.8655%, objective missed
    assert history["2026-10"]["downtimeSeconds"] == 3600
    assert history["2026-10"]["availability"] == "99.8655"
    assert history["2026-10"]["met"] is False
    assert history["2026-09"]["unmonitoredSeconds"] == 14 * 86400


def test_a_frozen_period_keeps_its_figures_when_the_records_change_later() -> None:
    runtime = AgreementRuntime(agreement(), started=T0)
    frozen = {"period": "2026-11", "availability": "99.9500", "met": True}
    _restore(runtime, {"history": [frozen], "lastEvaluated": "2026-12-01T00:00:00Z"},
             datetime(2026, 12, 1, 0, 0, 1, tzinfo=UTC))
    result = evaluate_agreement(runtime, [outage(T0, T0 + timedelta(hours=5))], [],
                                datetime(2026, 12, 1, 0, 0, 1, tzinfo=UTC))
    november = [e for e in result.status["history"] if e["period"] == "2026-11"]
    assert november == [{**frozen, "creditPercent": 0}]  # the credit of its tiers (none) added


def test_responses_already_late_when_the_process_starts_are_the_counters_baseline() -> None:
    runtime = AgreementRuntime(agreement(), started=T0)
    week_old = outage(T0 - timedelta(days=7), T0 - timedelta(days=7) + timedelta(hours=1))
    now = probe(runtime, T0, True, 1)
    evaluate_agreement(runtime, [week_old], [], now)
    assert runtime.breached == {}
    fresh = replace(outage(now), name="checkout-fresh")
    later = probe(runtime, now, False, 20 * 60)  # 20 minutes: past the 15 of a P1
    evaluate_agreement(runtime, [week_old, fresh], [], later)
    assert runtime.breached == {"checkout-fresh": "P1"}


def test_counters_keep_the_end_of_yesterday_when_the_day_turns() -> None:
    runtime = AgreementRuntime(agreement(), started=T0)
    before_midnight = datetime(2026, 11, 26, 23, 59, 0, tzinfo=UTC)
    now = probe(runtime, before_midnight - 5 * SECOND, True, 5)
    evaluate_agreement(runtime, [], [], now)  # the starting point, 23:59:00
    now = probe(runtime, now, True, 120)  # 00:01:00 the next day
    evaluate_agreement(runtime, [], [], now)
    assert runtime.eligible_total == pytest.approx(120)


def test_an_endpoint_entry_is_made_again_only_after_a_probe_or_a_new_spec() -> None:
    runtime = AgreementRuntime(agreement(), started=T0)
    now = probe(runtime, T0, True, 2)
    [first] = evaluate_agreement(runtime, [], [], now).status["endpoints"]
    [same] = evaluate_agreement(runtime, [], [], now + SECOND).status["endpoints"]
    assert same is first
    now = probe(runtime, now + SECOND, False, 1)
    [probed] = evaluate_agreement(runtime, [], [], now).status["endpoints"]
    assert probed is not first and probed["consecutiveFailures"] == 1
    assert probed["message"] == "503"
    runtime.replace_agreement(replace(agreement(), endpoints=(replace(API, dependency=True),)))
    [flagged] = evaluate_agreement(runtime, [], [], now).status["endpoints"]
    assert flagged is not probed and flagged["dependency"] is True


WEB = replace(API, name="web")


def test_entries_signature_and_newest_probe_follow_the_endpoints_a_new_spec_keeps() -> None:
    both = replace(agreement(), endpoints=(API, WEB))
    runtime = AgreementRuntime(both, started=T0)
    runtime.observe(API, ProbeResult(T0, True, 0.01, "200 OK"))
    first = evaluate_agreement(runtime, [], [], T0 + SECOND)
    assert [e["name"] for e in first.status["endpoints"]] == ["api", "web"]
    assert first.status["endpoints"][1]["message"] == "no probe has run yet"
    runtime.observe(WEB, ProbeResult(T0 + 5 * SECOND, False, 0.01, "503"))
    assert runtime.newest_probe_time() == T0 + 5 * SECOND
    second = evaluate_agreement(runtime, [], [], T0 + 6 * SECOND)
    assert second.status["endpoints"][0] is first.status["endpoints"][0]
    assert second.status["endpoints"][1]["message"] == "503"
    assert second.signature[1] == (("api", first.signature[1][0][1]), ("web", runtime.healths["web"].state))
    runtime.replace_agreement(replace(agreement(), endpoints=(API,)))
    assert runtime.newest_probe_time() == T0  # the web probe no longer counts
    third = evaluate_agreement(runtime, [], [], T0 + 7 * SECOND)
    assert [e["name"] for e in third.status["endpoints"]] == ["api"]
    assert set(runtime.endpoint_entries) == {"api"}
    assert [name for name, _ in third.signature[1]] == ["api"]
    third_party = replace(API, dependency=True)
    runtime.replace_agreement(replace(agreement(), endpoints=(third_party, WEB)))
    runtime.observe(WEB, ProbeResult(T0 + 8 * SECOND, True, 0.01, "200 OK"))
    assert runtime.newest_probe_time() == T0 + 8 * SECOND
    runtime.observe(third_party, ProbeResult(T0 + 9 * SECOND, True, 0.01, "ok"))
    assert runtime.newest_probe_time() == T0 + 8 * SECOND  # a dependency's probes never count
    runtime.observe(WEB, ProbeResult(T0 + 10 * SECOND, True, 0.01, "200 OK"))
    assert runtime.newest_probe_time() == T0 + 10 * SECOND


def test_only_a_first_up_that_can_change_a_decision_calls_for_an_evaluation() -> None:
    both = replace(agreement(), endpoints=(API, WEB))
    runtime = AgreementRuntime(both, started=T0)
    evaluate_agreement(runtime, [], [], T0)
    runtime.dirty = False
    runtime.observe(API, ProbeResult(T0, True, 0.01, "200 OK"))
    assert runtime.dirty  # the service's first known endpoint: Unknown turns Up
    evaluate_agreement(runtime, [], [], T0 + SECOND)
    runtime.dirty = False
    runtime.observe(WEB, ProbeResult(T0 + SECOND, True, 0.01, "200 OK"))
    assert not runtime.dirty  # one more Up of a service Up with nothing open
    runtime.observe(WEB, ProbeResult(T0 + 2 * SECOND, False, 0.01, "503"))
    runtime.observe(WEB, ProbeResult(T0 + 3 * SECOND, False, 0.01, "503"))
    assert not runtime.dirty  # below the failure threshold (3): still Up
    runtime.observe(WEB, ProbeResult(T0 + 4 * SECOND, False, 0.01, "503"))
    assert runtime.dirty  # Down


def test_a_first_up_after_a_restart_with_an_incident_open_is_evidence_to_weigh() -> None:
    both = replace(agreement(), endpoints=(API, WEB))
    runtime = AgreementRuntime(both, started=T0)
    runtime.observe(API, ProbeResult(T0, True, 0.01, "200 OK"))
    evaluate_agreement(runtime, [outage(T0 - 60 * SECOND)], [], T0 + SECOND)
    assert runtime.state.value == "Up" and runtime.open_incidents
    runtime.dirty = False
    runtime.observe(WEB, ProbeResult(T0 + SECOND, True, 0.01, "200 OK"))
    assert runtime.dirty  # may resolve the outage now that every endpoint it names answers
