"""Endpoint state machines (thresholds, dated by probe time) and the service state over them."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from sla_operator.domain.health import (
    EndpointHealth,
    observe,
    service_health,
)
from sla_operator.domain.model import (
    Agreement,
    DowntimeWhen,
    Endpoint,
    HttpProbe,
    ProbeResult,
    State,
)

T0 = datetime(2026, 11, 26, 4, 0, tzinfo=UTC)
STEP = timedelta(seconds=30)
API = Endpoint("api", HttpProbe("http://127.0.0.1:8099/healthz"), degraded_latency=timedelta(seconds=0.8))


def at(step: int) -> datetime:
    return T0 + step * STEP


def probes(pattern: str, endpoint: Endpoint = API, health: EndpointHealth | None = None,
           first_step: int = 0) -> EndpointHealth:
    """Feed one probe per letter, 30 s apart: S success, F failure, L slow success."""
    current = health or EndpointHealth()
    for offset, letter in enumerate(pattern):
        latency = 2.0 if letter == "L" else 0.05
        result = ProbeResult(at(first_step + offset), letter != "F", latency, letter)
        current = observe(current, endpoint, result)
    return current


# ---------------------------------------------------------------- thresholds


@pytest.mark.parametrize(
    ("pattern", "state", "since_step"),
    [
        pytest.param("", State.UNKNOWN, None, id="no probe yet"),
        pytest.param("S", State.UP, 0, id="unknown to up on the first success"),
        pytest.param("FF", State.UNKNOWN, None, id="two failures from unknown are not enough"),
        pytest.param("FFF", State.DOWN, 0, id="three failures from unknown"),
        pytest.param("SFFF", State.DOWN, 1, id="down dated at the first failure of the streak"),
        pytest.param("SFFFFF", State.DOWN, 1, id="more failures keep the start of the outage"),
        pytest.param("SFFSFF", State.UP, 0, id="a success among failures resets the streak"),
        pytest.param("SFFSFFF", State.DOWN, 4, id="down after a reset dates from the new streak"),
        pytest.param("SFFFS", State.DOWN, 1, id="one success does not end an outage"),
        pytest.param("SFFFSS", State.UP, 4, id="up dated at the first success of the recovery"),
        pytest.param("SFFFSFSS", State.UP, 6, id="a failure during recovery restarts it"),
        pytest.param("SL", State.DEGRADED, 1, id="a slow success marks it degraded"),
        pytest.param("SLLS", State.UP, 3, id="a fast success ends the degradation"),
        pytest.param("SFFFLL", State.DEGRADED, 4, id="slow recovery from down is degraded"),
    ],
)
def test_thresholds_decide_the_endpoint_state_and_when_it_began(
        pattern: str, state: State, since_step: int | None) -> None:
    health = probes(pattern)
    assert health.state is state
    assert health.since == (None if since_step is None else at(since_step))


def test_thresholds_of_the_endpoint_are_the_ones_used() -> None:
    strict = Endpoint("api", API.probe, failure_threshold=1, success_threshold=3)
    assert probes("SF", strict).state is State.DOWN
    assert probes("SFSS", strict).state is State.DOWN
    recovered = probes("SFSSS", strict)
    assert (recovered.state, recovered.since) == (State.UP, at(2))


def test_counters_follow_the_probes() -> None:
    health = probes("SSFF")
    assert (health.consecutive_failures, health.consecutive_successes) == (2, 0)
    assert health.failure_streak_start == at(2)
    assert health.last is not None and health.last.time == at(3)
    slow = probes("SLLL")
    assert (slow.consecutive_slow, slow.slow_streak_start) == (3, at(1))


def test_without_a_latency_target_slow_probes_are_up() -> None:
    plain = Endpoint("api", API.probe)
    assert probes("SLLL", plain).state is State.UP


# ---------------------------------------------------------------- the service


def agreement(downtime_when: DowntimeWhen = DowntimeWhen.ANY) -> Agreement:
    probe = HttpProbe("http://127.0.0.1:8099/")
    return Agreement(
        namespace="payments", name="payments-api", service="Payments API",
        objective=Decimal("99.9"), downtime_when=downtime_when,
        endpoints=(Endpoint("api", probe), Endpoint("webhooks", probe),
                   Endpoint("card-network", probe, dependency=True)))


def healths(**patterns: str) -> Mapping[str, EndpointHealth]:
    return {name.replace("_", "-"): probes(pattern) for name, pattern in patterns.items()}


@pytest.mark.parametrize(
    ("downtime_when", "api", "webhooks", "state", "down"),
    [
        (DowntimeWhen.ANY, "SSSS", "SSSS", State.UP, ()),
        (DowntimeWhen.ANY, "SFFF", "SSSS", State.DOWN, ("api",)),
        (DowntimeWhen.ANY, "SFFF", "FFFF", State.DOWN, ("api", "webhooks")),
        (DowntimeWhen.ALL, "SFFF", "SSSS", State.DEGRADED, ("api",)),
        (DowntimeWhen.ALL, "SFFF", "FFFF", State.DOWN, ("api", "webhooks")),
        (DowntimeWhen.ANY, "SSSL", "SSSS", State.DEGRADED, ()),
        (DowntimeWhen.ANY, "", "", State.UNKNOWN, ()),
    ],
    ids=["any, all up", "any, one down", "any, both down", "all, one down", "all, both down",
         "any, one slow", "no results yet"],
)
def test_the_service_state_follows_downtime_when(
        downtime_when: DowntimeWhen, api: str, webhooks: str, state: State,
        down: tuple[str, ...]) -> None:
    service = service_health(agreement(downtime_when), healths(api=api, webhooks=webhooks))
    assert service.state is state
    assert service.down_endpoints == down


def test_the_service_is_down_since_the_first_endpoint_failed_when_any_counts() -> None:
    service = service_health(agreement(), healths(api="SFFF", webhooks="FFFF"))
    assert service.since == at(0)
    assert service.every_endpoint_down


def test_the_service_is_down_since_the_last_endpoint_failed_when_all_count() -> None:
    service = service_health(agreement(DowntimeWhen.ALL), healths(api="SFFF", webhooks="FFFF"))
    assert service.since == at(1)
    assert service.every_endpoint_down


def test_some_endpoints_answering_is_not_every_endpoint_down() -> None:
    service = service_health(agreement(), healths(api="SFFF", webhooks="SSSS"))
    assert not service.every_endpoint_down


def test_a_dependency_that_is_down_never_makes_the_service_down() -> None:
    service = service_health(agreement(DowntimeWhen.ALL),
                             healths(api="SSSS", webhooks="SSSS", card_network="FFFF"))
    assert service.state is State.UP
    only_dependency = service_health(agreement(), healths(card_network="FFFF"))
    assert only_dependency.state is State.UNKNOWN


def test_the_service_is_up_since_the_last_endpoint_recovered() -> None:
    both = healths(api="SFFFSS", webhooks="FFFSSS")
    service = service_health(agreement(), both)
    assert service.state is State.UP
    assert service.since == max(h.since for h in both.values() if h.since is not None) == at(4)
