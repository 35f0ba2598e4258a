"""Which incidents the operator opens, escalates and resolves, decided from probe histories."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from sla_operator.domain.health import EndpointHealth, observe, service_health
from sla_operator.domain.incidents import (
    Action,
    Change,
    Open,
    Situation,
    apply_change,
    decide,
)
from sla_operator.domain.model import (
    Agreement,
    DowntimeWhen,
    Endpoint,
    HttpProbe,
    Impact,
    Incident,
    IncidentState,
    IncidentType,
    IncidentUpdate,
    Origin,
    ProbeResult,
    Severity,
    State,
)
from sla_operator.domain.records import incident_spec, same_incident

T0 = datetime(2026, 11, 26, 4, 12, tzinfo=UTC)
STEP = timedelta(seconds=30)
PROBE = HttpProbe("http://127.0.0.1:8099/healthz")
HTTPS = HttpProbe("https://127.0.0.1:8443/healthz", certificate_expiry_warning=timedelta(days=14))


def at(step: float) -> datetime:
    return T0 + step * STEP


def payments(downtime_when: DowntimeWhen = DowntimeWhen.ANY) -> Agreement:
    return Agreement(
        namespace="payments", name="payments-api", service="Payments API",
        objective=Decimal("99.9"), downtime_when=downtime_when,
        endpoints=(
            Endpoint("api", HTTPS, degraded_latency=timedelta(milliseconds=800)),
            Endpoint("webhooks", PROBE, degraded_latency=timedelta(milliseconds=800)),
            Endpoint("card-network", PROBE, dependency=True),
        ))


@dataclass
class World:
    """An agreement, its endpoints' probe histories, and the incidents the store holds."""

    agreement: Agreement = field(default_factory=payments)
    healths: dict[str, EndpointHealth] = field(default_factory=dict)
    incidents: list[Incident] = field(default_factory=list)

    def probe(self, name: str, pattern: str, first_step: int = 0,
              not_after: datetime | None = None) -> None:
        """One probe per letter, 30 s apart: S success, F failure, L slow success."""
        endpoint = self.agreement.endpoint(name)
        assert endpoint is not None
        for offset, letter in enumerate(pattern):
            result = ProbeResult(at(first_step + offset), letter != "F",
                                 2.0 if letter == "L" else 0.05, letter, not_after)
            self.healths[name] = observe(self.healths.get(name, EndpointHealth()), endpoint, result)

    def decide(self, step: float, maintenance: bool = False, exhausted: bool = False) -> list[Action]:
        service = service_health(self.agreement, self.healths)
        situation = Situation(self.agreement, service, self.healths, maintenance, exhausted,
                              period_start=datetime(2026, 11, 1, tzinfo=UTC), now=at(step))
        return decide(situation, self.incidents)

    def apply(self, actions: list[Action]) -> None:
        for action in actions:
            if isinstance(action, Open):
                self.incidents.append(action.incident)
            else:
                index = self.incidents.index(action.incident)
                self.incidents[index] = apply_change(action.incident, action)

    def step(self, step: float, **options: bool) -> list[Action]:
        actions = self.decide(step, **options)
        self.apply(actions)
        return actions


def only_open(actions: list[Action]) -> Incident:
    assert len(actions) == 1 and isinstance(actions[0], Open), actions
    return actions[0].incident


def only_change(actions: list[Action]) -> Change:
    assert len(actions) == 1 and isinstance(actions[0], Change), actions
    return actions[0]


# ---------------------------------------------------------------- outages


def test_every_own_endpoint_down_opens_one_p1_outage_dated_at_the_first_failure() -> None:
    world = World()
    world.probe("api", "SFFF")
    world.probe("webhooks", "SSFFF")
    opened = only_open(world.decide(5))
    assert (opened.type, opened.severity, opened.impact) == (
        IncidentType.OUTAGE, Severity.P1, Impact.DOWNTIME)
    assert opened.started_at == at(1)
    assert opened.endpoints == ("api", "webhooks")
    assert (opened.origin, opened.state, opened.resolved_at) == (
        Origin.AUTOMATIC, IncidentState.INVESTIGATING, None)
    assert opened.name == "payments-api-20261126-0412"
    assert opened.title == "Payments API is down: api, webhooks failing"
    assert opened.updates == (IncidentUpdate(at(5), IncidentState.INVESTIGATING, opened.title,
                                             Severity.P1),)


def test_an_outage_while_some_endpoints_answer_is_p2() -> None:
    world = World()
    world.probe("api", "SFFF")
    world.probe("webhooks", "SSSS")
    opened = only_open(world.decide(4))
    assert opened.severity is Severity.P2
    assert opened.endpoints == ("api",)


def test_deciding_again_with_the_opened_incident_in_place_does_nothing() -> None:
    world = World()
    world.probe("api", "SFFF")
    world.probe("webhooks", "SFFF")
    assert world.step(4)
    assert world.decide(4) == []
    assert world.decide(5) == []
    assert len(world.incidents) == 1


def test_a_p2_outage_escalates_to_p1_and_records_it_in_the_updates() -> None:
    world = World()
    world.probe("api", "SFFF")
    world.probe("webhooks", "SSSS")
    opened = only_open(world.step(4))
    world.probe("webhooks", "FFF", first_step=4)
    change = only_change(world.step(7))
    assert change.incident == opened
    assert change.fields == {"severity": Severity.P1, "endpoints": ("api", "webhooks")}
    (update,) = change.updates
    assert (update.time, update.severity) == (at(7), Severity.P1)
    assert update.message.startswith("severity raised to P1")
    escalated = world.incidents[0]
    assert escalated.severity is Severity.P1
    assert [u.severity for u in escalated.updates] == [Severity.P2, Severity.P1]


def test_an_outage_never_lowers_its_severity_when_endpoints_come_back() -> None:
    world = World()
    world.probe("api", "SFFF")
    world.probe("webhooks", "SFFF")
    world.step(4)
    world.probe("webhooks", "SS", first_step=4)
    assert world.step(6) == []
    assert world.incidents[0].severity is Severity.P1
    assert world.incidents[0].is_open


@pytest.mark.parametrize("set_by_person", [Severity.P3, Severity.P4, Severity.P1])
def test_a_severity_set_by_a_person_is_never_overwritten(set_by_person: Severity) -> None:
    world = World()
    world.probe("api", "SFFF")
    world.probe("webhooks", "SSSS")
    world.step(4)  # the operator opened it as P2
    world.incidents[0] = replace(world.incidents[0], severity=set_by_person)
    world.probe("webhooks", "FFF", first_step=4)  # the operator would now want P1
    actions = world.decide(7)
    for action in actions:
        assert isinstance(action, Change)
        assert "severity" not in action.fields
        assert all(u.severity is None for u in action.updates)


def test_no_outage_is_opened_during_maintenance() -> None:
    world = World()
    world.probe("api", "SFFF")
    world.probe("webhooks", "SFFF")
    assert world.decide(4, maintenance=True) == []


def test_an_outage_open_before_maintenance_stays_open_during_it() -> None:
    world = World()
    world.probe("api", "SFFF")
    world.probe("webhooks", "SFFF")
    world.step(4)
    world.probe("api", "FF", first_step=4)
    assert world.decide(6, maintenance=True) == []
    assert world.incidents[0].is_open


def test_recovery_resolves_the_outage_at_the_first_success_of_the_recovery_streak() -> None:
    world = World()
    world.probe("api", "SFFF")
    world.probe("webhooks", "SSSS")
    world.step(4)
    world.probe("api", "SFSSS", first_step=4)  # recovery streak starts at step 6
    world.probe("webhooks", "SSSSS", first_step=4)
    change = only_change(world.step(9))
    assert change.fields == {"state": IncidentState.RESOLVED, "resolved_at": at(6)}
    (update,) = change.updates
    assert (update.time, update.state) == (at(6), IncidentState.RESOLVED)
    resolved = world.incidents[0]
    assert (resolved.started_at, resolved.resolved_at) == (at(1), at(6))


def test_recovery_while_another_endpoint_is_slow_still_ends_at_the_recovery() -> None:
    world = World()
    world.probe("webhooks", "LLLL")  # slow since step 0, before the outage
    world.probe("api", "SFFF")
    world.step(4)
    world.probe("webhooks", "LLL", first_step=4)
    world.probe("api", "SSS", first_step=4)
    actions = world.step(7)
    resolution = next(a for a in actions if isinstance(a, Change))
    assert resolution.fields["resolved_at"] == at(4)


def test_with_downtime_when_all_the_outage_ends_when_the_first_endpoint_is_back() -> None:
    world = World(agreement=payments(DowntimeWhen.ALL))
    world.probe("api", "SFFF")
    world.probe("webhooks", "SFFF")
    world.step(4)
    world.probe("api", "SSSS", first_step=4)
    world.probe("webhooks", "FFSS", first_step=4)
    change = only_change(world.step(8))
    assert change.fields["resolved_at"] == at(4)


def test_an_unknown_state_after_a_restart_resolves_nothing() -> None:
    world = World()
    world.probe("api", "SFFF", not_after=at(0) + timedelta(days=3))
    world.probe("webhooks", "SFFF")
    world.probe("card-network", "FFF")
    assert len(world.step(4)) == 3  # outage, dependency, certificate
    restarted = World(incidents=list(world.incidents))
    assert restarted.decide(5) == []


def test_a_state_carried_over_from_an_older_status_resolves_nothing() -> None:
    # Up as the last status said, no probe result of this process yet: a status written
    # before a crash may predate the outage, the dependency's fall and their incidents.
    world = World()
    world.probe("api", "SFFF")
    world.probe("webhooks", "SFFF")
    world.probe("card-network", "FFF")
    assert len(world.step(4)) == 2  # outage, dependency
    carried = {name: EndpointHealth(state=State.UP, since=at(0), consecutive_successes=1)
               for name in ("api", "webhooks", "card-network")}
    restarted = World(healths=carried, incidents=list(world.incidents))
    assert restarted.decide(5) == []
    # Failures short of the threshold leave the carried Up standing: still no evidence.
    restarted.probe("api", "FF", first_step=5)
    restarted.probe("webhooks", "FF", first_step=5)
    restarted.probe("card-network", "FF", first_step=5)
    assert {name: h.state for name, h in restarted.healths.items()} == dict.fromkeys(carried, State.UP)
    assert restarted.decide(7) == []
    restarted.probe("api", "S", first_step=7)
    restarted.probe("webhooks", "S", first_step=7)
    assert [a.incident.type for a in restarted.decide(8)] == [IncidentType.OUTAGE]
    restarted.probe("card-network", "S", first_step=7)
    assert len(restarted.decide(8)) == 2


def test_manual_incidents_are_left_alone() -> None:
    world = World()
    manual = Incident(namespace="payments", name="db-slow", agreement="payments-api",
                      type=IncidentType.OUTAGE, severity=Severity.P3, title="DB slow",
                      started_at=at(0), origin=Origin.MANUAL)
    world.incidents.append(manual)
    world.probe("api", "SSSS")
    world.probe("webhooks", "SSSS")
    assert world.decide(4) == []  # the service is Up, but a person's incident is theirs
    world.probe("api", "FFF", first_step=4)
    opened = only_open(world.step(7))  # and it does not stand in for the automatic outage
    assert opened.origin is Origin.AUTOMATIC
    assert world.incidents[0] == manual


def test_incidents_of_a_resolved_slot_are_not_reopened_by_old_records() -> None:
    world = World()
    world.probe("api", "SFFF")
    world.probe("webhooks", "SSSS")
    world.step(4)
    world.probe("api", "SS", first_step=4)
    world.step(6)
    assert not world.incidents[0].is_open
    assert world.decide(7) == []


# ---------------------------------------------------------------- other kinds


def test_a_dependency_down_opens_a_p4_dependency_incident_without_impact() -> None:
    world = World()
    world.probe("api", "SSSS")
    world.probe("webhooks", "SSSS")
    world.probe("card-network", "SFFF")
    opened = only_open(world.step(4))
    assert (opened.type, opened.severity, opened.impact, opened.dependency) == (
        IncidentType.OUTAGE, Severity.P4, Impact.NONE, True)
    assert opened.endpoints == ("card-network",)
    assert opened.started_at == at(1)
    assert "card-network" in opened.name
    world.probe("card-network", "SS", first_step=4)
    change = only_change(world.step(6))
    assert change.fields == {"state": IncidentState.RESOLVED, "resolved_at": at(4)}


def test_a_certificate_close_to_expiry_opens_a_p4_certificate_incident() -> None:
    world = World()
    world.probe("api", "SS", not_after=at(1) + timedelta(days=13))
    world.probe("webhooks", "SS")
    opened = only_open(world.step(2))
    assert (opened.type, opened.severity, opened.impact) == (
        IncidentType.CERTIFICATE, Severity.P4, Impact.NONE)
    assert opened.endpoints == ("api",)
    assert opened.title == "Payments API: certificate of api expires 2026-12-09 04:12Z"
    world.probe("api", "S", first_step=2, not_after=at(2) + timedelta(days=90))
    change = only_change(world.step(3))
    assert change.fields["state"] is IncidentState.RESOLVED


def test_a_certificate_far_from_expiry_opens_nothing() -> None:
    world = World()
    world.probe("api", "S", not_after=at(0) + timedelta(days=15))
    world.probe("webhooks", "S")
    assert world.decide(1) == []


def test_an_exhausted_error_budget_opens_a_p2_breach() -> None:
    world = World()
    world.probe("api", "SS")
    world.probe("webhooks", "SS")
    opened = only_open(world.step(2, exhausted=True))
    assert (opened.type, opened.severity, opened.impact) == (
        IncidentType.BREACH, Severity.P2, Impact.NONE)
    assert world.decide(3, exhausted=True) == []


def test_sustained_slowness_opens_a_p3_degradation_with_degraded_impact() -> None:
    world = World()
    world.probe("api", "SLL")
    world.probe("webhooks", "SSS")
    assert world.decide(3) == []  # two slow probes are under the failure threshold
    world.probe("api", "L", first_step=3)
    opened = only_open(world.step(4))
    assert (opened.type, opened.severity, opened.impact) == (
        IncidentType.DEGRADATION, Severity.P3, Impact.DEGRADED)
    assert opened.started_at == at(1)
    assert opened.endpoints == ("api",)
    world.probe("api", "S", first_step=4)
    change = only_change(world.step(5))
    assert change.fields["state"] is IncidentState.RESOLVED


# ---------------------------------------------------------------- review follow-ups


def test_a_streak_that_began_before_a_window_keeps_its_start() -> None:
    from sla_operator.domain.intervals import Interval

    world = World()
    world.probe("api", "SFFFFFFFF")
    world.probe("webhooks", "SFFFFFFFF")
    service = service_health(world.agreement, world.healths)
    window = Interval(at(3), at(6))  # the streak began at step 1, before the window
    situation = Situation(world.agreement, service, world.healths, False, False,
                          period_start=datetime(2026, 11, 1, tzinfo=UTC), now=at(8),
                          maintenance=(window,))
    assert only_open(decide(situation, [])).started_at == at(1)


def test_a_streak_that_began_inside_a_window_counts_from_its_end() -> None:
    from sla_operator.domain.intervals import Interval

    world = World()
    world.probe("api", "SFFFFFFFF")
    world.probe("webhooks", "SFFFFFFFF")
    service = service_health(world.agreement, world.healths)
    situation = Situation(world.agreement, service, world.healths, False, False,
                          period_start=datetime(2026, 11, 1, tzinfo=UTC), now=at(8),
                          maintenance=(Interval(at(0), at(5)),))
    assert only_open(decide(situation, [])).started_at == at(5)


def test_an_outage_a_person_resolved_while_it_still_fails_is_not_opened_again() -> None:
    world = World()
    world.probe("api", "SFFF")
    world.probe("webhooks", "SFFF")
    opened = only_open(world.step(3))
    closed_by_person = replace(opened, resolved_at=at(3.5), state=IncidentState.RESOLVED,
                               origin=Origin.AUTOMATIC)
    world.incidents = [closed_by_person]
    world.probe("api", "F", first_step=4)
    world.probe("webhooks", "F", first_step=4)
    assert world.decide(4) == []


def test_names_and_titles_fit_what_the_api_server_accepts() -> None:
    from sla_operator.domain.incidents import incident_name

    long_name = "a" * 253
    name = incident_name(long_name, "certificate", T0)
    assert len(name) <= 250 and name.endswith("-certificate-20261126-0412")
    world = World()
    world.agreement = replace(world.agreement, service="S" * 5000)
    world.probe("api", "SFFF")
    world.probe("webhooks", "SFFF")
    incident = only_open(world.decide(3))
    assert len(incident.title) <= 1000 and incident.title.endswith("…")
    assert len(incident.updates[0].message) <= 1000


def test_a_person_resolution_stands_though_stored_times_are_whole_seconds() -> None:
    from sla_operator.domain.records import incident_from_manifest, incident_spec

    world = World()
    offset = 0.0041  # probes run at sub-second times; the API server keeps whole seconds
    world.probe("api", "SFFF", first_step=offset)
    world.probe("webhooks", "SFFF", first_step=offset)
    opened = only_open(world.step(3 + offset))
    assert opened.started_at.microsecond != 0
    stored = incident_from_manifest({"metadata": {"name": opened.name, "namespace": "payments"},
                                     "spec": incident_spec(opened)})
    world.incidents = [replace(stored, resolved_at=at(3.5), state=IncidentState.RESOLVED)]
    world.probe("api", "F", first_step=4 + offset)
    world.probe("webhooks", "F", first_step=4 + offset)
    assert world.decide(4 + offset) == []


def test_a_person_resolution_of_a_certificate_warning_stands_until_the_next_expiry() -> None:
    world = World()
    expiring = at(0) + timedelta(days=3)
    world.probe("api", "S", not_after=expiring)
    world.probe("webhooks", "S")
    opened = only_open(world.step(0))
    assert opened.type is IncidentType.CERTIFICATE
    world.incidents = [replace(opened, resolved_at=at(1), state=IncidentState.RESOLVED)]
    world.probe("api", "S", first_step=2, not_after=expiring)
    assert world.decide(2) == []
    renewed_then_close_again = at(0) + timedelta(days=100)  # a later certificate, a new episode
    world.probe("api", "S", first_step=3, not_after=renewed_then_close_again)
    assert world.decide(3) == []  # far from expiry: nothing wanted
    late = at(0) + timedelta(days=95)
    assert only_open(world.decide((late - T0).total_seconds() / 30)).type is IncidentType.CERTIFICATE


@pytest.mark.parametrize("kind", ["certificate", "breach"])
def test_filing_an_incident_dated_when_seen_again_after_losing_it_is_recognised(kind: str) -> None:
    """A create that reached the store but whose answer was lost: the next round decides again,
    minutes later, and its incident must take the same name and be taken for the same one."""
    def attempt(step: float) -> Incident:
        world = World()  # the engine lost its copy: it knows of no incident
        world.probe("api", "SS", first_step=int(step) - 2,
                    not_after=at(0) + timedelta(days=13) if kind == "certificate" else None)
        world.probe("webhooks", "SS", first_step=int(step) - 2)
        return only_open(world.decide(step, exhausted=kind == "breach"))

    first, retried = attempt(2), attempt(12)  # five minutes apart
    assert first.started_at != retried.started_at
    assert first.name == retried.name
    stored = {"spec": incident_spec(first)}
    assert same_incident(stored, incident_spec(retried))
    stored["spec"]["state"] = "resolved"  # once over, the next one is a new incident
    assert not same_incident(stored, incident_spec(retried))


def test_an_outage_is_the_same_incident_only_for_the_same_streak() -> None:
    world = World()
    world.probe("api", "FFF")
    world.probe("webhooks", "FFF")
    opened = only_open(world.decide(3))
    stored = {"spec": incident_spec(opened)}
    assert same_incident(stored, incident_spec(opened))
    later_streak = replace(opened, started_at=opened.started_at + STEP)
    assert not same_incident(stored, incident_spec(later_streak))


@pytest.mark.parametrize("pattern", ["FFF", "LLL"], ids=["outage", "degradation"])
def test_nothing_is_resolved_while_an_endpoint_is_not_probed_yet(pattern: str) -> None:
    world = World()
    world.probe("api", pattern)
    world.probe("webhooks", "SSS")
    opened = only_open(world.step(3))
    # After a restart (or an edit) only part of the picture is back: webhooks answers, api
    # has not been probed again. Its silence is no evidence that it recovered.
    del world.healths["api"]
    assert world.decide(4) == []
    world.probe("api", "S", first_step=4)
    world.probe("api", "S", first_step=5)
    change = only_change(world.step(6))
    assert change.incident.name == opened.name
    assert change.fields["state"] is IncidentState.RESOLVED


def test_an_endpoint_the_incident_is_not_about_does_not_hold_its_resolution() -> None:
    world = World()
    world.probe("api", "FFF")
    world.probe("webhooks", "SSS")
    only_open(world.step(3))
    del world.healths["webhooks"]  # restarted: webhooks (a long interval) not probed again yet
    world.probe("api", "SS", first_step=3)
    change = only_change(world.step(5))
    assert (change.fields["state"], change.fields["resolved_at"]) == (IncidentState.RESOLVED, at(3))


def test_an_outage_whose_endpoint_left_the_spec_lasts_until_then() -> None:
    world = World()
    world.probe("api", "FFF")
    world.probe("webhooks", "SSS")
    only_open(world.step(3))
    world.agreement = replace(world.agreement, endpoints=world.agreement.endpoints[1:])
    del world.healths["api"]
    change = only_change(world.step(8))
    assert change.fields["resolved_at"] == at(8)  # not back-dated to when webhooks came up
