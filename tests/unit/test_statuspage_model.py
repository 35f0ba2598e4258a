"""The status page as data: who appears, the overall state, bars, incidents and windows."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, timedelta
from decimal import Decimal

import pytest
from status_snapshots import NOW, agreement, days, incident, snapshot, window

from sla_operator.domain.accounting import DayFigures
from sla_operator.domain.model import Environment, Impact, IncidentType, State
from sla_operator.domain.statuspage import (
    BarLevel,
    bar_level,
    build_status_page,
    duration_text,
    overall_state,
)


def test_only_public_agreements_appear() -> None:
    page = build_status_page(snapshot(agreement("shop"), agreement("internal", public=False)))
    assert [a.name for a in page.agreements] == ["shop"]


def test_nothing_of_a_non_public_agreement_appears_anywhere() -> None:
    page = build_status_page(snapshot(
        agreement("shop"), agreement("secret-db", public=False),
        incidents=(incident("secret-db-1", "secret-db"),),
        windows=(window("secret-window", agreements=("secret-db",)),
                 window("shared", agreements=("shop", "secret-db")))))
    assert page.incidents == ()
    assert [w.name for w in page.maintenance] == ["shared"]
    assert page.maintenance[0].agreements == ("shop",)
    assert "secret" not in repr(page)


@pytest.mark.parametrize(("states", "overall"), [
    ([State.UP, State.DOWN, State.DEGRADED], State.DOWN),
    ([State.UP, State.DEGRADED, State.MAINTENANCE], State.DEGRADED),
    ([State.UP, State.MAINTENANCE], State.MAINTENANCE),
    ([State.UP, State.UNKNOWN], State.UP),
    ([State.UNKNOWN], State.UNKNOWN),
    ([], State.UNKNOWN),
])
def test_the_overall_state_is_the_worst_known_one(states: list[State], overall: State) -> None:
    assert overall_state(states) is overall


def test_a_sandbox_appears_only_when_public_and_never_sets_the_banner() -> None:
    sandbox = agreement("playground", state=State.DOWN, environment=Environment.SANDBOX)
    page = build_status_page(snapshot(agreement("shop"), sandbox,
                                      agreement("hidden-sandbox", public=False,
                                                environment=Environment.SANDBOX)))
    assert [(a.name, a.sandbox) for a in page.agreements] == [("playground", True), ("shop", False)]
    assert page.state is State.UP


def test_groups_come_from_the_spec_with_ungrouped_agreements_first() -> None:
    page = build_status_page(snapshot(agreement("b", group="Payments"), agreement("a"),
                                      agreement("c", group="Checkout")))
    assert [(g.name, [a.name for a in g.agreements]) for g in page.groups] == [
        (None, ["a"]), ("Checkout", ["c"]), ("Payments", ["b"])]


@pytest.mark.parametrize(("figures", "level"), [
    (DayFigures(date(2026, 11, 1), None, 0, 0, 0, 86400), BarLevel.NO_DATA),
    (DayFigures(date(2026, 11, 1), 1.0, 0, 0, 0, 0), BarLevel.UP),
    (DayFigures(date(2026, 11, 1), 1.0, 0, 3600, 0, 0), BarLevel.MAINTENANCE),
    (DayFigures(date(2026, 11, 1), 0.9995, 43, 0, 0, 0), BarLevel.MINOR),
    (DayFigures(date(2026, 11, 1), 0.99, 864, 0, 0, 0), BarLevel.MAJOR),
])
def test_bar_levels(figures: DayFigures, level: BarLevel) -> None:
    assert bar_level(figures, Decimal("99.9")) is level


def test_there_are_always_ninety_bars_and_missing_days_have_no_data() -> None:
    young = agreement("young", days=days(count=3, **{"2026-11-25": {"availability": None}}))
    bars = build_status_page(snapshot(young)).agreements[0].bars
    assert len(bars) == 90
    assert bars[0].date == NOW.date() - timedelta(days=89) and bars[-1].date == NOW.date()
    assert [b.level for b in bars[-3:]] == [BarLevel.NO_DATA, BarLevel.UP, BarLevel.UP]
    assert all(b.level is BarLevel.NO_DATA and b.availability is None for b in bars[:-2])
    assert bars[-3].label == "2026-11-25: no data, no maintenance"


def test_a_bar_says_in_words_what_its_colour_shows() -> None:
    day = {"2026-11-20": {"availability": 0.99, "downtime_seconds": 864.0,
                          "maintenance_seconds": 7200.0}}
    bars = build_status_page(snapshot(agreement(days=days(**day)))).agreements[0].bars
    bar = next(b for b in bars if b.date == date(2026, 11, 20))
    assert bar.label == "2026-11-20: 99.0000% available, 14m 24s down, 2h maintenance"


def test_an_agreement_not_evaluated_yet_has_no_figures_and_ninety_empty_bars() -> None:
    fresh = agreement("fresh", state=State.UNKNOWN, period=None, days=())
    shown = build_status_page(snapshot(fresh)).agreements[0]
    assert shown.availability is None and shown.met is None and shown.period_label is None
    assert len(shown.bars) == 90 and {b.level for b in shown.bars} == {BarLevel.NO_DATA}


def test_public_incidents_are_outages_and_degradations_of_the_last_ninety_days() -> None:
    old = NOW - timedelta(days=91)
    page = build_status_page(snapshot(agreement(), incidents=(
        incident("open"),
        incident("recent", started=NOW - timedelta(days=89), resolved=NOW - timedelta(days=88)),
        incident("old", started=old, resolved=old + timedelta(hours=1)),
        incident("slow", type=IncidentType.DEGRADATION, impact=Impact.DEGRADED),
        incident("breach", type=IncidentType.BREACH, impact=Impact.NONE),
        incident("certificate", type=IncidentType.CERTIFICATE, impact=Impact.NONE),
        incident("provider", impact=Impact.NONE, dependency=True),
        incident("noted", impact=Impact.NONE))))
    assert {i.name for i in page.incidents} == {"open", "recent", "slow"}
    assert [i.name for i in page.agreements[0].open_incidents] == ["slow", "open"]


def test_incidents_are_newest_first_with_their_updates() -> None:
    page = build_status_page(snapshot(agreement(), incidents=(
        incident("first", started=NOW - timedelta(days=3),
                 resolved=NOW - timedelta(days=3) + timedelta(minutes=7)),
        incident("second", started=NOW - timedelta(hours=1)))))
    assert [i.name for i in page.incidents] == ["second", "first"]
    first = page.incidents[1]
    assert first.duration_seconds == 420 and first.updates[0].message == "looking into it"
    assert page.incidents[0].duration_seconds == 3600  # open: until the snapshot


def test_an_incident_a_person_wrote_with_only_the_required_fields_appears() -> None:
    bare = incident("bare", title="", updates=())
    shown = build_status_page(snapshot(agreement(), incidents=(bare,))).incidents
    assert [i.name for i in shown] == ["bare"] and shown[0].updates == ()


def test_maintenance_appears_when_active_or_announced() -> None:
    page = build_status_page(snapshot(agreement(), windows=(
        window("now", active=True),
        window("soon", starts_in=timedelta(days=2)),
        window("later", starts_in=timedelta(days=9)),
        window("short-notice", starts_in=timedelta(hours=5), announce=timedelta(hours=4)))))
    assert [(w.name, w.active) for w in page.maintenance] == [("now", True), ("soon", False)]
    assert [w.name for w in page.agreements[0].maintenance] == ["now", "soon"]


def test_the_current_period_has_no_availability_before_anything_was_eligible() -> None:
    empty = agreement(period=replace(agreement().period, eligible_seconds=0.0, availability=1.0))
    shown = build_status_page(snapshot(empty)).agreements[0]
    assert shown.availability is None and shown.met is None


def test_an_agreement_whose_figures_cannot_be_shown_stays_on_the_page_without_them() -> None:
    bad = agreement("bad", period=replace(agreement().period, availability=float("inf")))
    page = build_status_page(snapshot(bad, agreement("good")))
    shown = {a.name: a for a in page.agreements}
    assert set(shown) == {"bad", "good"}
    assert shown["bad"].availability is None and shown["bad"].state is bad.state
    assert shown["good"].availability is not None


def test_equal_content_makes_equal_pages_whatever_the_time() -> None:
    first = build_status_page(snapshot(agreement()))
    later = build_status_page(snapshot(agreement(), taken_at=NOW + timedelta(seconds=5)))
    assert first == later and first.generated_at != later.generated_at


@pytest.mark.parametrize(("seconds", "text"), [(0, "0s"), (45, "45s"), (412, "6m 52s"),
                                               (7500, "2h 5m"), (273600, "3d 4h")])
def test_durations_read_as_people_write_them(seconds: int, text: str) -> None:
    assert duration_text(seconds) == text
