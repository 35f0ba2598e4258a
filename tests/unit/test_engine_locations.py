"""The engine's one intake for every location's view, and the quorum deciding on them.

A location's view enters through ``AgreementRuntime.take`` whether it comes from this
process's own probes (``observe``) or from another location."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from test_engine_deletion import RecordingStore

from sla_operator.domain.errors import SpecError
from sla_operator.domain.health import EndpointHealth
from sla_operator.domain.incidents import Open
from sla_operator.domain.location_reports import Heartbeat, LocationReport
from sla_operator.domain.model import (
    Agreement,
    Endpoint,
    HttpProbe,
    ProbeResult,
    Probing,
    State,
    StatusPageOptions,
)
from sla_operator.domain.parse import agreement_from_manifest
from sla_operator.domain.views import Dissent
from sla_operator.engine import Engine, EngineSettings
from sla_operator.engine.evaluate import evaluate_agreement
from sla_operator.engine.runtime import AgreementRuntime
from sla_operator.probes.base import user_agent

CREATED = datetime(2026, 11, 1, tzinfo=UTC)
T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
SECOND = timedelta(seconds=1)
API = Endpoint("api", HttpProbe("http://127.0.0.1:8099/healthz"), interval=SECOND,
               timeout=SECOND / 2, failure_threshold=3, success_threshold=2)
THREE = Probing(locations=("a", "b", "c"), quorum=2)


def agreement(probing: Probing | None = THREE) -> Agreement:
    return Agreement(namespace="shop", name="checkout", service="Checkout",
                     objective=Decimal("99.9"), endpoints=(API,), created_at=CREATED,
                     probing=probing)


def seen(state: State, since: datetime, last: datetime) -> EndpointHealth:
    """A location's view as a report carries it: its state since when, its newest result."""
    ok = state is not State.DOWN
    return EndpointHealth(state=state, since=since,
                          last=ProbeResult(last, ok, 0.01, "200 OK" if ok else "503"))


def probe(runtime: AgreementRuntime, start: datetime, ok: bool, count: int) -> datetime:
    """``count`` of this process's own probes one second apart; the time after the last."""
    for n in range(count):
        runtime.observe(API, ProbeResult(start + n * SECOND, ok, 0.01, "200 OK" if ok else "503"))
    return start + count * SECOND


def report(runtime: AgreementRuntime, location: str, state: State, since: datetime,
           until: datetime) -> None:
    """Another location's view, renewed every second from ``since`` to ``until``."""
    time = since
    while time <= until:
        runtime.take(API, location, seen(state, since, time))
        time += SECOND


def test_one_location_failing_of_three_is_no_downtime() -> None:
    runtime = AgreementRuntime(agreement(), started=T0, location="a")
    now = probe(runtime, T0, False, 5)
    report(runtime, "b", State.UP, T0, now)
    report(runtime, "c", State.UP, T0, now)
    evaluation = evaluate_agreement(runtime, [], [], now)
    assert runtime.locations["api"]["a"].state is State.DOWN
    assert (evaluation.status["state"], evaluation.actions) == ("Up", [])


def test_two_of_three_failing_open_one_incident_from_when_the_second_began() -> None:
    runtime = AgreementRuntime(agreement(), started=T0, location="a")
    report(runtime, "c", State.UP, T0, T0 + 20 * SECOND)
    report(runtime, "b", State.UP, T0, T0 + 9 * SECOND)
    report(runtime, "b", State.DOWN, T0 + 10 * SECOND, T0 + 20 * SECOND)
    now = probe(runtime, T0, True, 12)
    second_began = now  # this location's first failure of the streak that made it Down
    now = probe(runtime, now, False, 5)
    evaluation = evaluate_agreement(runtime, [], [], now)
    [action] = evaluation.actions
    assert isinstance(action, Open)
    assert action.incident.started_at == second_began
    assert evaluation.status["state"] == "Down"


def test_without_a_quorum_of_fresh_locations_the_time_is_unmonitored_not_downtime() -> None:
    runtime = AgreementRuntime(agreement(), started=T0, location="a")
    report(runtime, "b", State.DOWN, T0, T0 + 10 * SECOND)
    report(runtime, "c", State.UP, T0, T0 + 10 * SECOND)
    now = probe(runtime, T0, False, 11)  # a and b: Down
    assert evaluate_agreement(runtime, [], [], now).status["state"] == "Down"
    later = probe(runtime, now, False, 60)  # b and c silent: only a is fresh
    evaluation = evaluate_agreement(runtime, [], [], later)
    assert evaluation.status["state"] == "Unknown"
    gaps = evaluation.status["unmonitored"]
    assert gaps and gaps[-1]["start"] <= (now + SECOND).isoformat().replace("+00:00", "Z")


def test_a_location_the_agreement_does_not_name_is_not_counted() -> None:
    runtime = AgreementRuntime(agreement(), started=T0, location="elsewhere")
    now = probe(runtime, T0, False, 5)
    report(runtime, "a", State.UP, T0, now)
    report(runtime, "b", State.UP, T0, now)
    assert evaluate_agreement(runtime, [], [], now).status["state"] == "Up"


def test_without_probing_the_one_location_is_the_endpoint_as_before() -> None:
    runtime = AgreementRuntime(agreement(probing=None), started=T0)
    probe(runtime, T0, False, 3)
    assert runtime.healths["api"].state is State.DOWN
    assert runtime.locations == {}


def test_probing_added_later_keeps_the_location_s_own_view_and_removed_gives_it_back() -> None:
    runtime = AgreementRuntime(agreement(probing=None), started=T0, location="a")
    now = probe(runtime, T0, False, 3)
    own = runtime.healths["api"]
    runtime.replace_agreement(agreement(Probing(quorum=1)))
    assert runtime.locations == {"api": {"a": own}}
    probe(runtime, now, False, 1)
    runtime.replace_agreement(agreement(probing=None))
    assert runtime.healths["api"].consecutive_failures == 4 and runtime.locations == {}


def test_the_engine_probes_as_its_location() -> None:
    engine = Engine(RecordingStore(), EngineSettings(location="b"))  # type: ignore[arg-type]
    engine.upsert_agreement(agreement())
    runtime = engine.agreements[("shop", "checkout")]
    assert runtime.location == "b"
    assert engine._context("shop").user_agent == user_agent("b")
    alone = Engine(RecordingStore())  # type: ignore[arg-type]
    assert alone._context("shop").user_agent == user_agent(None)


def manifest(probing: object) -> dict[str, object]:
    return {"metadata": {"name": "checkout", "namespace": "shop"},
            "spec": {"objective": "99.9", "probing": probing,
                     "endpoints": [{"name": "api", "http": {"url": "http://x/"}}]}}


def test_spec_probing_is_read_with_its_defaults() -> None:
    assert agreement_from_manifest(manifest({"locations": ["a", "b", "c"]})).probing == Probing(
        ("a", "b", "c"), None)
    assert agreement_from_manifest(manifest({"quorum": 2})).probing == Probing((), 2)
    assert agreement_from_manifest(manifest(None)).probing is None


@pytest.mark.parametrize(("probing", "path", "words"), [
    ({"locations": ["a", "B_1"]}, "spec.probing.locations[1]", "not a location name"),
    ({"locations": ["a", "a"]}, "spec.probing.locations[1]", "named twice"),
    ({"locations": ["a", "b"], "quorum": 3}, "spec.probing.quorum", "at most 2"),
    ({"quorum": 0}, "spec.probing.quorum", "at least 1"),
    ({"locations": "a"}, "spec.probing.locations", "list"),
    ("everywhere", "spec.probing", "object"),
])
def test_a_wrong_spec_probing_names_the_field(probing: object, path: str, words: str) -> None:
    with pytest.raises(SpecError) as raised:
        agreement_from_manifest(manifest(probing))
    assert path in str(raised.value) and words in str(raised.value)



# ---------------------------------------------------------------- other locations' reports


def report_of(location: str, state: State, since: datetime, probed: datetime) -> LocationReport:
    return LocationReport("shop", "checkout", location, {"api": seen(state, since, probed)})


def located_engine(clock: list[datetime]) -> Engine:
    engine = Engine(RecordingStore(), EngineSettings(location="a"),  # type: ignore[arg-type]
                    clock=lambda: clock[0])
    engine.upsert_agreement(agreement())
    return engine


def test_a_report_enters_through_the_same_intake_and_a_held_lease_keeps_it_fresh() -> None:
    clock = [T0]
    engine = located_engine(clock)
    runtime = engine.agreements[("shop", "checkout")]
    engine.note_heartbeats({"b": Heartbeat(T0, timedelta(seconds=15)),
                            "c": Heartbeat(T0, timedelta(seconds=15))})
    engine.take_report(report_of("b", State.DOWN, T0, T0))
    engine.take_report(report_of("c", State.UP, T0 - 60 * SECOND, T0 - 60 * SECOND))
    now = probe(runtime, T0, False, 5)
    clock[0] = now
    # b's report is 5 s old and c's a minute: their Leases say both still hold.
    assert evaluate_agreement(runtime, [], [], now).status["state"] == "Down"
    assert set(runtime.locations["api"]) == {"a", "b", "c"}


def test_a_location_whose_lease_lapsed_turns_stale_and_its_report_no_longer_counts() -> None:
    clock = [T0]
    engine = located_engine(clock)
    runtime = engine.agreements[("shop", "checkout")]
    engine.take_report(report_of("b", State.DOWN, T0, T0))
    engine.note_heartbeats({"b": Heartbeat(T0, timedelta(seconds=4))})
    runtime.dirty = False
    clock[0] = T0 + 10 * SECOND
    engine.note_heartbeats({"b": Heartbeat(T0, timedelta(seconds=4))})
    assert runtime.dirty  # a location gone: decided again at once
    now = probe(runtime, T0 + 5 * SECOND, False, 5)
    evaluation = evaluate_agreement(runtime, [], [], now)
    assert (evaluation.status["state"], evaluation.actions) == ("Unknown", [])


def test_a_report_before_its_agreement_is_taken_when_the_agreement_comes() -> None:
    engine = Engine(RecordingStore(), EngineSettings(location="a"))  # type: ignore[arg-type]
    engine.take_report(report_of("b", State.DOWN, T0, T0))
    engine.upsert_agreement(agreement())
    assert engine.agreements[("shop", "checkout")].locations["api"]["b"].state is State.DOWN
    engine.drop_report("shop", "checkout", "b")
    assert engine.agreements[("shop", "checkout")].locations["api"] == {}


def test_without_a_location_reports_are_not_taken() -> None:
    engine = Engine(RecordingStore())  # type: ignore[arg-type]
    engine.upsert_agreement(agreement(probing=None))
    engine.take_report(report_of("b", State.DOWN, T0, T0))
    assert engine.agreements[("shop", "checkout")].locations == {}


# ---------------------------------------------------------------- a location that disagrees


def test_a_location_disagreeing_for_long_is_told_once_and_shown_never_counted() -> None:
    clock = [T0]
    engine = located_engine(clock)
    runtime = engine.agreements[("shop", "checkout")]
    engine.note_heartbeats({"b": Heartbeat(T0, timedelta(hours=1)),
                            "c": Heartbeat(T0, timedelta(hours=1))})
    engine.take_report(report_of("b", State.UP, T0, T0))
    engine.take_report(report_of("c", State.DOWN, T0, T0))
    after = timedelta(seconds=engine.settings.disagreement_after)
    now = probe(runtime, T0, True, 3)
    evaluate_agreement(runtime, [], [], now)
    assert runtime.disagreements.news(now, after) == []
    later = now + after
    clock[0] = later
    evaluation = evaluate_agreement(runtime, [], [], later)
    assert (evaluation.status["state"], evaluation.actions) == ("Up", [])
    assert runtime.disagreements.news(later, after) == [("api", "c", now)]
    assert runtime.disagreements.news(later, after) == []  # told once
    engine.publish()
    assert [(s.name, s.up, s.disagreeing) for s in engine.snapshot.locations] == [
        ("a", True, False), ("b", True, False), ("c", True, True)]
    [entry] = evaluation.status["endpoints"]
    assert [(v["name"], v["state"]) for v in entry["locations"]] == [
        ("a", "Up"), ("b", "Up"), ("c", "Down")]
    engine.take_report(report_of("c", State.UP, later, later))
    evaluate_agreement(runtime, [], [], later)
    assert runtime.disagreements.lasting(later, after) == set()


def test_a_located_engine_exports_its_locations() -> None:
    from prometheus_client import CollectorRegistry, generate_latest

    from sla_operator.metrics import EngineCollector

    clock = [T0]
    engine = located_engine(clock)
    engine.note_heartbeats({"b": Heartbeat(T0 - timedelta(minutes=5), timedelta(seconds=15))})
    engine.publish()
    registry = CollectorRegistry()
    registry.register(EngineCollector(engine))
    text = generate_latest(registry).decode()
    assert 'sla_location_up{location="a"} 1.0' in text
    assert 'sla_location_up{location="b"} 0.0' in text
    assert 'sla_location_disagreement{location="b"} 0.0' in text



def test_each_location_s_last_result_is_a_series_of_sla_probe_success() -> None:
    from prometheus_client import CollectorRegistry, generate_latest

    from sla_operator.metrics import EngineCollector

    clock = [T0]
    engine = located_engine(clock)
    runtime = engine.agreements[("shop", "checkout")]
    engine.take_report(report_of("b", State.DOWN, T0, T0))
    clock[0] = now = probe(runtime, T0, True, 2)
    evaluate_agreement(runtime, [], [], now)
    engine.publish()
    registry = CollectorRegistry()
    collector = EngineCollector(engine)
    registry.register(collector)
    lines = {line.rsplit(" ", 1)[0].split('location="')[1].split('"')[0]: line.rsplit(" ", 1)[1]
             for line in generate_latest(registry).decode().splitlines()
             if line.startswith("sla_probe_success{")}
    assert lines == {"a": "1.0", "b": "0.0"}
    # The text written straight from the views says the same.
    from sla_operator.metrics.families import SUCCESS, agreement_samples

    [view] = engine.snapshot.agreements
    assert sorted((labels[-1], value) for spec, labels, value in agreement_samples(view, False)
                  if spec is SUCCESS) == [("a", 1.0), ("b", 0.0)]


def test_the_status_page_says_what_a_minority_of_locations_sees_without_calling_it_an_outage(
        ) -> None:
    from sla_operator.domain.statuspage import build_status_page

    clock = [T0]
    engine = Engine(RecordingStore(), EngineSettings(location="a"),  # type: ignore[arg-type]
                    clock=lambda: clock[0])
    engine.upsert_agreement(replace(agreement(), status_page=StatusPageOptions(public=True)))
    runtime = engine.agreements[("shop", "checkout")]
    engine.note_heartbeats({"b": Heartbeat(T0, timedelta(hours=1)),
                            "c": Heartbeat(T0, timedelta(hours=1))})
    engine.take_report(report_of("b", State.UP, T0, T0))
    engine.take_report(report_of("c", State.DOWN, T0, T0))
    clock[0] = now = probe(runtime, T0, True, 3)
    evaluate_agreement(runtime, [], [], now)
    engine.publish()
    [view] = engine.snapshot.agreements
    assert (view.state, view.dissent) == (State.UP, Dissent(State.DOWN, 1, 3))
    [shown] = build_status_page(engine.snapshot).agreements
    assert (shown.state, shown.location_note) == (State.UP, "Down from 1 of 3 locations")


def test_with_a_location_and_no_spec_probing_a_majority_of_the_reporting_locations_decides(
        ) -> None:
    clock = [T0]
    engine = Engine(RecordingStore(), EngineSettings(location="a"),  # type: ignore[arg-type]
                    clock=lambda: clock[0])
    engine.upsert_agreement(agreement(probing=None))
    runtime = engine.agreements[("shop", "checkout")]
    engine.note_heartbeats({"b": Heartbeat(T0, timedelta(hours=1)),
                            "c": Heartbeat(T0, timedelta(hours=1))})
    engine.take_report(report_of("b", State.DOWN, T0, T0))
    engine.take_report(report_of("c", State.UP, T0, T0))
    clock[0] = now = probe(runtime, T0, True, 3)
    assert evaluate_agreement(runtime, [], [], now).status["state"] == "Up"  # 1 of 3
    engine.take_report(report_of("c", State.DOWN, T0 + SECOND, T0 + SECOND))
    evaluation = evaluate_agreement(runtime, [], [], now)  # 2 of 3: a majority
    assert evaluation.status["state"] == "Down"
    [action] = evaluation.actions
    assert isinstance(action, Open) and action.incident.started_at == T0 + SECOND
