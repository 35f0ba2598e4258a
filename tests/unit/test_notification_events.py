"""Notification events are what changed between two snapshots, and nothing else."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta

import pytest
from status_snapshots import NOW, agreement, incident, period, snapshot, window

from sla_operator.domain.errors import SpecError
from sla_operator.domain.intervals import Interval
from sla_operator.domain.model import IncidentState, IncidentUpdate, LabelSelector, Severity
from sla_operator.domain.notification_events import derive_events
from sla_operator.domain.notifications import EventType, PayloadFormat, route_from_manifest
from sla_operator.domain.views import Snapshot, SupportRequestView

LATER = NOW + timedelta(seconds=5)
E = EventType


def kinds(before, after) -> list[tuple[EventType, str]]:  # type: ignore[no-untyped-def]
    return [(e.type, e.subject) for e in derive_events(before, after)]


def test_the_same_snapshot_twice_says_nothing() -> None:
    same = snapshot(agreement(), incidents=(incident("down-1"),), windows=(window(),))
    assert derive_events(same, replace(same, taken_at=LATER)) == []


def test_an_incident_that_appears_open_is_opened() -> None:
    before = snapshot(agreement())
    after = snapshot(agreement(), incidents=(incident("down-1", started=NOW),), taken_at=LATER)
    (event,) = derive_events(before, after)
    assert (event.type, event.subject, event.agreements) == (E.INCIDENT_OPENED, "incident/down-1",
                                                             ("payments-api",))
    assert event.occurred_at == NOW


def test_an_incident_resolved_since_is_resolved_and_its_own_entry_is_no_update() -> None:
    opened = incident("down-1", started=NOW)
    resolved = replace(opened, resolved_at=LATER, state=IncidentState.RESOLVED,
                       updates=(*opened.updates,
                                IncidentUpdate(LATER, IncidentState.RESOLVED, "back up")))
    assert kinds(snapshot(incidents=(opened,)), snapshot(incidents=(resolved,), taken_at=LATER)) \
        == [(E.INCIDENT_RESOLVED, "incident/down-1")]


def test_an_incident_opened_and_resolved_between_two_snapshots_says_both_in_order() -> None:
    flap = incident("flap", started=NOW + timedelta(seconds=1), resolved=NOW + timedelta(seconds=3))
    assert kinds(snapshot(), snapshot(incidents=(flap,), taken_at=LATER)) == [
        (E.INCIDENT_OPENED, "incident/flap"), (E.INCIDENT_RESOLVED, "incident/flap")]


def test_an_incident_resolved_long_ago_that_comes_into_view_is_no_news() -> None:
    old = incident("old", started=NOW - timedelta(days=3), resolved=NOW - timedelta(days=2))
    assert derive_events(snapshot(), snapshot(incidents=(old,), taken_at=LATER)) == []


def test_a_raised_severity_is_an_escalation_not_an_update() -> None:
    p3 = incident("slow", severity=Severity.P3, started=NOW)
    p1 = replace(p3, severity=Severity.P1, updates=(
        *p3.updates, IncidentUpdate(LATER, IncidentState.INVESTIGATING,
                                    "severity raised to P1: down", Severity.P1)))
    (event,) = derive_events(snapshot(incidents=(p3,)), snapshot(incidents=(p1,), taken_at=LATER))
    assert (event.type, event.previous_severity, event.occurred_at) == (E.INCIDENT_ESCALATED,
                                                                        Severity.P3, LATER)


def test_an_update_a_person_appended_is_an_update_once() -> None:
    first = incident("down-1", started=NOW)
    by_hand = IncidentUpdate(LATER, IncidentState.IDENTIFIED, "a bad deploy", by="alice")
    second = replace(first, state=IncidentState.IDENTIFIED, updates=(*first.updates, by_hand))
    before, after = snapshot(incidents=(first,)), snapshot(incidents=(second,), taken_at=LATER)
    (event,) = derive_events(before, after)
    assert (event.type, event.update) == (E.INCIDENT_UPDATED, by_hand)
    assert derive_events(after, replace(after, taken_at=LATER + timedelta(seconds=5))) == []


def test_the_same_change_derived_twice_has_the_same_identity() -> None:
    before = snapshot()
    after = snapshot(incidents=(incident("down-1", started=NOW),), taken_at=LATER)
    assert derive_events(before, after)[0].identity == derive_events(before, after)[0].identity
    again = replace(after, taken_at=LATER + timedelta(seconds=1))
    assert derive_events(before, again)[0].identity == derive_events(before, after)[0].identity


def test_maintenance_is_announced_when_it_enters_its_announcement_time() -> None:
    far = window(starts_in=timedelta(days=8), announce=timedelta(days=7))
    near = snapshot(windows=(far,), taken_at=NOW + timedelta(days=1, minutes=1))
    assert kinds(snapshot(windows=(far,)), near) == [(E.MAINTENANCE_ANNOUNCED, "maintenance/db-upgrade")]
    assert kinds(near, replace(near, taken_at=near.taken_at + timedelta(minutes=1))) == []


def test_maintenance_starts_then_ends() -> None:
    upcoming = window(starts_in=timedelta(seconds=3), announce=timedelta(days=1))
    occurrence = upcoming.upcoming
    assert occurrence is not None
    under_way = replace(upcoming, active=occurrence, upcoming=None)
    over = replace(upcoming, active=None, upcoming=Interval(occurrence.start + timedelta(days=7),
                                                            occurrence.end + timedelta(days=7)))
    first = snapshot(windows=(upcoming,))
    second = snapshot(windows=(under_way,), taken_at=occurrence.start + timedelta(seconds=1))
    third = snapshot(windows=(over,), taken_at=occurrence.end + timedelta(seconds=1))
    assert kinds(first, second) == [(E.MAINTENANCE_STARTED, "maintenance/db-upgrade")]
    (ended,) = derive_events(second, third)
    assert (ended.type, ended.occurrence, ended.occurred_at) == (E.MAINTENANCE_ENDED, occurrence,
                                                                 occurrence.end)


def test_a_window_removed_while_under_way_ends_its_maintenance() -> None:
    under_way = window(active=True)
    assert kinds(snapshot(windows=(under_way,)), snapshot(taken_at=LATER)) == [
        (E.MAINTENANCE_ENDED, "maintenance/db-upgrade")]


def test_the_budget_is_exhausted_once_when_it_runs_out_within_a_period() -> None:
    healthy = agreement(period=period(downtime=2000.0))
    spent = agreement(period=period(downtime=2600.0, availability=0.998))
    before, after = snapshot(healthy), snapshot(spent, taken_at=LATER)
    (event,) = derive_events(before, after)
    assert (event.type, event.subject, event.agreements) == (E.BUDGET_EXHAUSTED,
                                                             "agreement/payments-api", ("payments-api",))
    assert derive_events(after, snapshot(spent, taken_at=LATER + timedelta(seconds=5))) == []


def test_a_new_period_or_a_new_agreement_is_no_exhaustion() -> None:
    spent = agreement(period=period(downtime=2600.0))
    next_month = agreement(period=replace(period(downtime=2600.0), label="2026-12"))
    assert derive_events(snapshot(), snapshot(spent, taken_at=LATER)) == []
    assert derive_events(snapshot(agreement(period=period(downtime=10.0))),
                         snapshot(next_month, taken_at=LATER)) == []


# ---------------------------------------------------------------- routes


def test_a_route_follows_only_its_own_namespaces_agreements() -> None:
    route = route_from_manifest({"metadata": {"namespace": "payments", "name": "r"},
                                 "spec": {"url": "http://127.0.0.1:9/hook"}})
    assert route.selects("payments", "payments-api", {})
    assert not route.selects("other-team", "payments-api", {})
    assert route.events == frozenset(EventType) and route.format is PayloadFormat.GENERIC


def test_a_route_selects_by_name_or_labels() -> None:
    route = route_from_manifest({"metadata": {"namespace": "payments", "name": "r"}, "spec": {
        "urlFrom": {"secretKeyRef": {"name": "hook", "key": "url"}}, "format": "slack",
        "agreements": ["checkout"], "agreementSelector": {"matchLabels": {"tier": "gold"}},
        "events": ["incidentOpened", "incidentResolved"]}})
    assert route.selector == LabelSelector({"tier": "gold"})
    assert route.selects("payments", "checkout", {})
    assert route.selects("payments", "api", {"tier": "gold"})
    assert not route.selects("payments", "api", {"tier": "silver"})
    assert route.wants(EventType.INCIDENT_OPENED) and not route.wants(EventType.BUDGET_EXHAUSTED)


@pytest.mark.parametrize(("spec", "says"), [
    ({}, "spec: give exactly one of url and urlFrom"),
    ({"url": "ftp://example.com/"}, "spec.url: 'ftp://example.com/' must be an http"),
    ({"url": "http://x/", "events": ["incidentExploded"]}, "spec.events[0]: 'incidentExploded'"),
    ({"url": "http://x/", "headers": [{"name": "A", "value": "1", "valueFrom": {}}]},
     "spec.headers[0]: header A: give exactly one of value and valueFrom"),
])
def test_a_bad_route_says_which_field_is_wrong(spec: dict[str, object], says: str) -> None:
    with pytest.raises(SpecError) as raised:
        route_from_manifest({"metadata": {"namespace": "ns", "name": "r"}, "spec": spec})
    assert says in str(raised.value)


# ---------------------------------------------------------------- support response


TARGETS = {Severity.P1: timedelta(minutes=15)}


def test_an_incident_unacknowledged_past_its_response_target_is_breached_once() -> None:
    view = agreement(support_response=TARGETS)
    down = incident("down-1", started=NOW)
    due = NOW + timedelta(minutes=15)
    waiting = snapshot(view, incidents=(down,), taken_at=due - timedelta(seconds=1))
    late = snapshot(view, incidents=(down,), taken_at=due + timedelta(seconds=1))
    (event,) = derive_events(waiting, late)
    assert (event.type, event.subject, event.occurred_at) == (E.SUPPORT_RESPONSE_BREACHED,
                                                              "incident/down-1", due)
    assert derive_events(late, replace(late, taken_at=due + timedelta(minutes=1))) == []


def test_an_acknowledgement_in_time_is_no_breach_and_a_late_one_is_one() -> None:
    view = agreement(support_response=TARGETS)
    down = incident("down-1", started=NOW)
    before = snapshot(view, incidents=(down,), taken_at=NOW + timedelta(minutes=14))
    in_time = replace(down, acknowledged_at=NOW + timedelta(minutes=10))
    assert derive_events(before, snapshot(view, incidents=(in_time,),
                                          taken_at=NOW + timedelta(minutes=20))) == []
    late = replace(down, acknowledged_at=NOW + timedelta(minutes=16))
    assert kinds(before, snapshot(view, incidents=(late,), taken_at=NOW + timedelta(minutes=20))) \
        == [(E.SUPPORT_RESPONSE_BREACHED, "incident/down-1")]


def test_a_breach_long_past_that_comes_into_view_is_no_news() -> None:
    view = agreement(support_response=TARGETS)
    old = incident("down-1", started=NOW - timedelta(hours=2))
    found = kinds(snapshot(view), snapshot(view, incidents=(old,), taken_at=LATER))
    assert found == [(E.INCIDENT_OPENED, "incident/down-1")]  # and no breach


# ---------------------------------------------------------------- support requests


def support_request(name: str = "acme-1042", due: timedelta | None = timedelta(hours=1),
                    at: datetime | None = None, responded: datetime | None = None,
                    severity: Severity = Severity.P2) -> SupportRequestView:
    """A request opened at NOW, as a snapshot taken ``at`` shows it (None ``due``: its
    agreement is not there)."""
    moment = at or NOW
    deadline = NOW + due if due is not None else None
    late = deadline is not None and (responded > deadline if responded is not None
                                     else moment > deadline)
    return SupportRequestView("payments", name, "payments-api", severity, "Webhooks delayed",
                              NOW, deadline, late, customer="acme", responded_at=responded,
                              uid=f"uid-{name}")


def with_requests(at: datetime, *requests: SupportRequestView) -> Snapshot:
    return replace(snapshot(agreement(), taken_at=at), support_requests=requests)


def test_a_support_request_left_unanswered_past_its_due_time_is_breached_once() -> None:
    due = NOW + timedelta(hours=1)
    waiting = with_requests(due - timedelta(seconds=1), support_request(at=due - timedelta(seconds=1)))
    late = with_requests(due + timedelta(seconds=1), support_request(at=due + timedelta(seconds=1)))
    (event,) = derive_events(waiting, late)
    assert (event.type, event.subject, event.occurred_at, event.agreements) == (
        E.SUPPORT_RESPONSE_BREACHED, "supportrequest/acme-1042", due, ("payments-api",))
    assert event.support_request is not None and event.support_request.name == "acme-1042"
    assert event.incident is None
    later = with_requests(due + timedelta(minutes=5), support_request(at=due + timedelta(minutes=5)))
    assert derive_events(late, later) == []  # said once


def test_a_support_requests_breach_has_the_same_identity_whoever_derives_it_and_after_edits() -> None:
    due = NOW + timedelta(hours=1)
    waiting = with_requests(due - timedelta(seconds=1), support_request(at=due - timedelta(seconds=1)))
    late = with_requests(due + timedelta(seconds=1), support_request(at=due + timedelta(seconds=1)))
    (first,), (again,) = derive_events(waiting, late), derive_events(waiting, late)
    assert first.identity == again.identity
    raised = with_requests(due + timedelta(seconds=1),
                           support_request(at=due + timedelta(seconds=1), severity=Severity.P1))
    (edited,) = derive_events(waiting, raised)
    assert edited.identity == first.identity  # once per request, whatever its severity now
    other = with_requests(due + timedelta(seconds=1),
                          support_request("acme-1043", at=due + timedelta(seconds=1)))
    (different,) = derive_events(with_requests(due - timedelta(seconds=1),
                                               support_request("acme-1043", at=due)), other)
    assert different.identity != first.identity


def test_a_support_request_answered_in_time_is_no_breach_and_one_answered_late_is_one() -> None:
    due = NOW + timedelta(hours=1)
    before = with_requests(due - timedelta(minutes=1), support_request(at=due - timedelta(minutes=1)))
    in_time = support_request(at=due + timedelta(minutes=5), responded=due - timedelta(seconds=30))
    assert derive_events(before, with_requests(due + timedelta(minutes=5), in_time)) == []
    answered_late = support_request(at=due + timedelta(minutes=5),
                                    responded=due + timedelta(minutes=2))
    assert kinds(before, with_requests(due + timedelta(minutes=5), answered_late)) == [
        (E.SUPPORT_RESPONSE_BREACHED, "supportrequest/acme-1042")]


def test_a_support_request_late_before_it_came_into_view_is_no_news() -> None:
    long_late = support_request(at=NOW + timedelta(hours=3))
    assert derive_events(with_requests(NOW + timedelta(hours=2)),
                         with_requests(NOW + timedelta(hours=3), long_late)) == []
    # Its agreement arriving after the due time: not measured before, late long ago.
    unmeasured = support_request(due=None, at=NOW + timedelta(hours=2))
    assert derive_events(with_requests(NOW + timedelta(hours=2), unmeasured),
                         with_requests(NOW + timedelta(hours=3), long_late)) == []


def test_a_support_request_without_its_agreement_is_never_breached() -> None:
    unmeasured = support_request(due=None, at=NOW + timedelta(days=1))
    assert derive_events(with_requests(NOW), with_requests(NOW + timedelta(days=1), unmeasured)) == []
