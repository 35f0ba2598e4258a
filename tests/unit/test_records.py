"""Incident and MaintenanceWindow manifests: a lossless round trip, and support response times."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from sla_operator.domain.errors import SpecError
from sla_operator.domain.model import (
    DEFAULT_SUPPORT_RESPONSE,
    Exclusion,
    ExclusionReason,
    Impact,
    Incident,
    IncidentState,
    IncidentType,
    IncidentUpdate,
    LabelSelector,
    MaintenanceWindow,
    Origin,
    Requirement,
    Severity,
)
from sla_operator.domain.records import (
    AGREEMENT_LABEL,
    format_time,
    incident_from_manifest,
    incident_spec,
    incident_status,
    maintenance_from_manifest,
    response_breached,
)

STARTED = datetime(2026, 11, 26, 4, 12, 3, tzinfo=UTC)


def at(minutes: float) -> datetime:
    return STARTED + timedelta(minutes=minutes)


def incident(**fields: Any) -> Incident:
    values: dict[str, Any] = {
        "namespace": "payments", "name": "payments-api-20261126-0412", "agreement": "payments-api",
        "type": IncidentType.OUTAGE, "severity": Severity.P1,
        "title": "Payments API is down: api failing", "started_at": STARTED,
    }
    return Incident(**{**values, **fields})


def as_manifest(item: Incident) -> dict[str, Any]:
    return {"metadata": {"namespace": item.namespace, "name": item.name, "uid": item.uid},
            "spec": incident_spec(item)}


# ---------------------------------------------------------------- round trip


@pytest.mark.parametrize(
    "original",
    [
        pytest.param(incident(), id="a fresh automatic outage"),
        pytest.param(incident(
            severity=Severity.P2, state=IncidentState.RESOLVED, resolved_at=at(7),
            endpoints=("api", "webhooks"), uid="5d0e",
            exclusion=Exclusion(ExclusionReason.THIRD_PARTY, "upstream outage"),
            acknowledged_at=at(4), acknowledged_by="alice",
            updates=(
                IncidentUpdate(STARTED, IncidentState.INVESTIGATING, "api failing", Severity.P2),
                IncidentUpdate(at(3), IncidentState.IDENTIFIED, "card network down"),
                IncidentUpdate(at(5), IncidentState.MONITORING, "raised", Severity.P1),
                IncidentUpdate(at(7), IncidentState.RESOLVED, "recovered"),
            )), id="a resolved incident with exclusion, acknowledgement and updates"),
        pytest.param(incident(
            type=IncidentType.OUTAGE, severity=Severity.P4, impact=Impact.NONE, dependency=True,
            endpoints=("card-network",)), id="a dependency outage"),
        pytest.param(incident(
            type=IncidentType.DEGRADATION, severity=Severity.P3, impact=Impact.DEGRADED,
            origin=Origin.MANUAL, exclusion=Exclusion(ExclusionReason.BLOCKED)),
            id="a manual degradation excluded as blocked, without a note"),
        pytest.param(incident(type=IncidentType.BREACH, severity=Severity.P2, impact=Impact.NONE),
                     id="a budget breach"),
    ],
)
def test_an_incident_survives_the_manifest_round_trip(original: Incident) -> None:
    assert incident_from_manifest(as_manifest(original)) == original


def test_the_incident_spec_uses_the_field_names_of_the_contract() -> None:
    spec = incident_spec(incident(
        resolved_at=at(7), acknowledged_at=at(2), acknowledged_by="alice",
        exclusion=Exclusion(ExclusionReason.OTHER, "test traffic"),
        updates=(IncidentUpdate(STARTED, IncidentState.INVESTIGATING, "api failing", Severity.P1),)))
    assert spec == {
        "agreement": "payments-api", "origin": "automatic", "type": "outage", "severity": "P1",
        "title": "Payments API is down: api failing",
        "startedAt": "2026-11-26T04:12:03Z", "resolvedAt": "2026-11-26T04:19:03Z",
        "state": "investigating", "impact": "downtime", "endpoints": [], "dependency": False,
        "updates": [{"time": "2026-11-26T04:12:03Z", "state": "investigating",
                     "message": "api failing", "severity": "P1"}],
        "exclusion": {"reason": "other", "note": "test traffic"},
        "acknowledgedAt": "2026-11-26T04:14:03Z", "acknowledgedBy": "alice",
    }


def test_an_incident_filed_by_a_person_takes_its_agreement_from_the_label() -> None:
    parsed = incident_from_manifest({
        "metadata": {"name": "db-slow", "namespace": "payments", "labels": {AGREEMENT_LABEL: "payments-api"}},
        "spec": {"startedAt": "2026-11-26T04:12:03+01:00", "severity": "P3", "title": "DB slow"}})
    assert parsed.agreement == "payments-api"
    assert parsed.origin is Origin.MANUAL
    assert parsed.started_at == datetime(2026, 11, 26, 3, 12, 3, tzinfo=UTC)
    assert (parsed.type, parsed.state, parsed.impact) == (
        IncidentType.OUTAGE, IncidentState.INVESTIGATING, Impact.DOWNTIME)


def test_a_broken_incident_reports_every_problem_with_its_path() -> None:
    with pytest.raises(SpecError) as caught:
        incident_from_manifest({"metadata": {"name": "x"}, "spec": {
            "startedAt": "2026-11-26T04:12:03Z", "resolvedAt": "2026-11-26T04:00:00Z",
            "severity": "P0", "exclusion": {"reason": "weather"},
            "updates": [{"time": "yesterday", "message": "?"}]}})
    assert {p.path for p in caught.value.problems} == {
        "spec.resolvedAt", "spec.severity", "spec.exclusion.reason", "spec.updates[0].time",
        "spec.agreement"}


def test_times_are_written_in_utc_with_a_z_to_the_second() -> None:
    moment = datetime(2026, 11, 26, 5, 12, 3, 999_999, tzinfo=timezone(timedelta(hours=1)))
    assert format_time(moment) == "2026-11-26T04:12:03Z"
    assert format_time(None) is None


def test_each_second_has_its_own_text_whichever_was_written_before() -> None:
    """The text of a second is made once and kept: a kept text must never stand for
    another second, another instant of the same wall time, or survive the memo's bound."""
    first = datetime(2026, 11, 26, 4, 12, 3, 250_000, tzinfo=UTC)
    assert format_time(first) == "2026-11-26T04:12:03Z"
    assert format_time(first.replace(microsecond=999_999)) == "2026-11-26T04:12:03Z"
    assert format_time(first + timedelta(seconds=1)) == "2026-11-26T04:12:04Z"
    assert format_time(first - timedelta(microseconds=250_001)) == "2026-11-26T04:12:02Z"
    # The two 01:30 of the night the clocks go back in Berlin: equal as datetimes, an hour apart.
    berlin = ZoneInfo("Europe/Berlin")
    early = datetime(2026, 10, 25, 2, 30, tzinfo=berlin)
    late = early.replace(fold=1)
    assert format_time(early) == "2026-10-25T00:30:00Z"
    assert format_time(late) == "2026-10-25T01:30:00Z"
    for minute in range(5000):  # more seconds than the memo keeps: it starts afresh
        moment = first + timedelta(minutes=minute)
        assert format_time(moment) == moment.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert format_time(first) == "2026-11-26T04:12:03Z"


# ---------------------------------------------------------------- maintenance


def test_a_one_off_maintenance_window_parses_with_its_selector() -> None:
    window = maintenance_from_manifest({
        "metadata": {"name": "db-upgrade", "namespace": "payments", "labels": {"team": "payments"},
                     "generation": 2},
        "spec": {"description": "Database upgrade",
                 "slaSelector": {"matchLabels": {"team": "payments"},
                                 "matchExpressions": [{"key": "tier", "operator": "NotIn",
                                                       "values": ["sandbox"]}]},
                 "start": "2026-12-01T02:00:00Z", "end": "2026-12-01T04:00:00Z", "announce": "24h"}})
    assert window == MaintenanceWindow(
        namespace="payments", name="db-upgrade", description="Database upgrade",
        labels={"team": "payments"},
        sla_selector=LabelSelector({"team": "payments"},
                                   (Requirement("tier", "NotIn", ("sandbox",)),)),
        start=datetime(2026, 12, 1, 2, tzinfo=UTC), end=datetime(2026, 12, 1, 4, tzinfo=UTC),
        announce=timedelta(hours=24), generation=2)


def test_a_recurring_maintenance_window_keeps_its_schedule_zone_and_bounds() -> None:
    window = maintenance_from_manifest({
        "metadata": {"name": "weekly", "namespace": "payments"},
        "spec": {"slaNames": ["payments-api"], "schedule": "0 2 * * SUN", "duration": "2h",
                 "timeZone": "Europe/London", "validFrom": "2026-01-01T00:00:00Z", "validUntil": None}})
    assert (window.schedule, window.duration, window.time_zone) == (
        "0 2 * * SUN", timedelta(hours=2), "Europe/London")
    assert window.sla_names == ("payments-api",)
    assert window.valid_from == datetime(2026, 1, 1, tzinfo=UTC)
    assert window.valid_until is None
    assert window.announce == timedelta(hours=168)  # the default


def test_a_broken_maintenance_window_reports_every_problem_with_its_path() -> None:
    with pytest.raises(SpecError) as caught:
        maintenance_from_manifest({"metadata": {"name": "w"}, "spec": {
            "timeZone": "Europe/Atlantis", "start": "tomorrow", "end": "2026-12-01T04:00:00",
            "duration": "2 hours", "slaSelector": {"matchExpressions": [{"key": "a", "operator": "Is"}]}}})
    assert {p.path for p in caught.value.problems} == {
        "spec.timeZone", "spec.start", "spec.end", "spec.duration",
        "spec.slaSelector.matchExpressions[0].operator"}


# ---------------------------------------------------------------- support response

SUPPORT = dict(DEFAULT_SUPPORT_RESPONSE)  # P1 15m, P2 1h, P3 8h, P4 24h


@pytest.mark.parametrize(
    ("severity", "acknowledged", "now", "breached"),
    [
        pytest.param(Severity.P1, at(20), at(30), True, id="P1 acknowledged after 20 minutes"),
        pytest.param(Severity.P1, None, at(16), True, id="P1 not acknowledged past its 15 minutes"),
        pytest.param(Severity.P1, at(14), at(600), False, id="P1 acknowledged in time, checked later"),
        pytest.param(Severity.P1, at(15), at(20), False, id="P1 acknowledged exactly at the due time"),
        pytest.param(Severity.P1, None, at(10), False, id="P1 not acknowledged yet, still in time"),
        pytest.param(Severity.P3, None, at(7 * 60), False, id="P3 unacknowledged for 7 of its 8 hours"),
        pytest.param(Severity.P2, at(61), at(61), True, id="P2 acknowledged a minute late"),
    ],
)
def test_response_is_breached_only_when_acknowledged_late_or_not_by_the_due_time(
        severity: Severity, acknowledged: datetime | None, now: datetime, breached: bool) -> None:
    item = incident(severity=severity, acknowledged_at=acknowledged)
    assert response_breached(item, SUPPORT, now) is breached
    assert incident_status(item, SUPPORT, 0, now)["responseBreached"] is breached


def test_incident_status_reports_duration_due_time_and_counted_downtime() -> None:
    item = incident(severity=Severity.P2, resolved_at=at(6.5))
    status = incident_status(item, SUPPORT, counted_downtime_seconds=212.7, now=at(90))
    assert status == {
        "durationSeconds": 390,
        "duration": "6m30s",
        "countedDowntimeSeconds": 212,
        "responseDue": "2026-11-26T05:12:03Z",
        "responseBreached": True,
    }


def test_an_open_incident_lasts_until_now() -> None:
    status = incident_status(incident(), SUPPORT, counted_downtime_seconds=0, now=at(2))
    assert status["durationSeconds"] == 120
