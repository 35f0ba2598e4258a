"""The operator's load on the API server, bounded: status writes counted at kmock per round.

The engine's clock is the test's; one evaluation round stands for one second of it, so the
cap is checked as writes per round, never by timing."""

from __future__ import annotations

import copy
import logging
from collections import Counter
from datetime import timedelta
from typing import Any

import kmock as km
import pytest
from kube_support import AGREEMENTS, INCIDENTS, T0, Clock, World, agreement_manifest, requests_to

from sla_operator.domain.model import ProbeResult
from sla_operator.domain.parse import agreement_from_manifest
from sla_operator.engine import Engine, EngineSettings
from sla_operator.store.kube import KubeStore

SECOND = timedelta(seconds=1)


class Fleet:
    """``count`` agreements on the API server and in an engine capped at ``rate`` writes/s;
    every status patch the API server receives is noted as it arrives (name, status)."""

    def __init__(self, apiserver: km.KubernetesEmulator, store: KubeStore, count: int,
                 rate: float, status_interval: float = 30.0) -> None:
        self.clock = Clock(T0)
        # Rounds without a time limit: what a round writes is decided by the cap alone here
        # (the limit is shown in tests/unit/test_engine_shutdown.py).
        self.engine = Engine(store, EngineSettings(status_interval=status_interval,
                                                   max_status_writes_per_second=rate,
                                                   round_seconds=3600, write_seconds=3600),
                             clock=self.clock)
        self.apiserver = apiserver
        self.patches: list[tuple[str, dict[str, Any]]] = []
        self._seen = 0
        self.concurrency: int | None = None  # writes in flight at once; None: the engine's
        stored = isinstance(apiserver, km.KubernetesEmulator)
        if not stored:
            # A server that keeps no objects answers each status patch with what it was sent.
            apiserver["patch", AGREEMENTS, km.subresource("status")] << (
                lambda request: {"apiVersion": "sla.dev/v1alpha1", "kind": "ServiceLevelAgreement",
                                 "metadata": {"namespace": request.namespace, "name": request.name},
                                 "status": request.data["status"]})
        for index in range(count):
            manifest = agreement_manifest()
            manifest["metadata"].update(name=f"svc-{index:04d}", uid=f"uid-{index}")
            if stored:
                apiserver.objects[AGREEMENTS, "payments", f"svc-{index:04d}"] = manifest
            self.engine.upsert_agreement(agreement_from_manifest(manifest))

    def _note_patches(self) -> None:
        """The status patches of agreements received since last time (plain attribute checks:
        kmock's own filters are slow over thousands of requests)."""
        requests = list(self.apiserver)
        for request in requests[self._seen:]:
            if (request.method.value == "PATCH" and request.subresource == "status"
                    and request.resource is not None
                    and request.resource.plural == "servicelevelagreements"):
                self.patches.append((str(request.name), request.data["status"]))
        self._seen = len(requests)

    async def rounds(self, count: int) -> list[list[str]]:
        """Run ``count`` rounds a second apart; the agreements whose status each round wrote."""
        written = []
        for _ in range(count):
            before = len(self.patches)
            if self.concurrency is None:
                await self.engine.evaluate_round()
            else:
                await self.engine.evaluate_round(concurrency=self.concurrency)
            self._note_patches()
            written.append([name for name, _ in self.patches[before:]])
            self.clock.advance(SECOND)
        return written


def status_patches(apiserver: km.KubernetesEmulator) -> list[km.Request]:
    return requests_to(apiserver, AGREEMENTS, method="PATCH", subresource="status")


def answer_every_probe(engine: Engine, ok: bool, names: list[str] | None = None) -> None:
    """One probe result for each endpoint (of the named agreements), stamped now."""
    for key, runtime in engine.agreements.items():
        if names is None or key[1] in names:
            for endpoint in runtime.agreement.endpoints:
                engine.on_probe_result(key, endpoint, ProbeResult(engine.clock(), ok, 0.01, "200 OK"))


BURST = 300  # agreements changing at once; 1,000 take minutes here (evaluation, not writes)


# kmock's emulator looks through every object it keeps for each request, which grows slow
# with hundreds of them; its scaffold keeps none and answers from the reaction.
@pytest.mark.kmock(cls=km.KubernetesScaffold)
async def test_the_cap_holds_under_a_burst_of_changed_agreements(
        apiserver: km.KubernetesScaffold, store: KubeStore) -> None:
    names = [f"svc-{i:04d}" for i in range(BURST)]
    rate = BURST // 15  # a second or so of writes for each phase
    fleet = Fleet(apiserver, store, BURST, rate=rate)
    started = await fleet.rounds(20)
    # Start-up: every agreement's first status, ``rate`` a second, before any routine refresh.
    assert max(len(r) for r in started) == rate
    assert sorted(name for name, _ in fleet.patches[:BURST]) == names

    answer_every_probe(fleet.engine, ok=True)  # all of them change state at once: Unknown -> Up
    changed = await fleet.rounds(20)
    assert max(len(r) for r in changed) <= rate
    burst = fleet.patches[-sum(len(r) for r in changed):][:BURST]
    # The state changes went before the refreshes that fell due meanwhile, and all went.
    assert sorted(name for name, _ in burst) == names
    assert {status["state"] for _, status in burst} == {"Up"}
    assert fleet.engine.writes.deferred >= 2 * (BURST - rate)  # each once, not once per round
    assert fleet.engine.writes.sent == len(fleet.patches)


async def test_state_changes_are_written_before_routine_refreshes(
        apiserver: km.KubernetesEmulator, store: KubeStore) -> None:
    fleet = Fleet(apiserver, store, 20, rate=5, status_interval=30)
    await fleet.rounds(4)  # every first status written
    assert len(fleet.patches) == 20
    fleet.clock.advance(timedelta(seconds=45))  # every routine refresh is due now
    deferred = fleet.engine.writes.deferred
    movers = ["svc-0003", "svc-0007", "svc-0011", "svc-0015", "svc-0019"]
    answer_every_probe(fleet.engine, ok=True, names=movers)

    first, second, *rest = await fleet.rounds(5)
    assert sorted(first) == movers  # the state changes, before any refresh
    assert [status["state"] for _, status in fleet.patches[20:25]] == ["Up"] * 5
    assert len(second) == 5 and not set(second) & set(movers)  # then refreshes, as the cap allows
    assert sorted(second + [n for r in rest for n in r]) == sorted(
        f"svc-{i:04d}" for i in range(20) if f"svc-{i:04d}" not in movers)
    assert fleet.engine.writes.deferred - deferred == 15  # held back once each, not per round


async def test_routine_refreshes_spread_evenly_over_the_status_interval(
        apiserver: km.KubernetesEmulator, store: KubeStore) -> None:
    fleet = Fleet(apiserver, store, 60, rate=0, status_interval=30)
    (start,) = await fleet.rounds(1)
    assert len(start) == 60  # no cap: every first status at once
    settling = await fleet.rounds(45)
    steady = await fleet.rounds(30)  # one whole status interval
    # Each agreement refreshes once per interval, at its own phase: about 2 a second
    # instead of all 60 every 30th second.
    assert Counter(n for r in steady for n in r) == {f"svc-{i:04d}": 1 for i in range(60)}
    assert max(len(r) for r in steady + settling) <= 6


@pytest.mark.parametrize("status, reason", [(429, "TooManyRequests"), (503, "ServiceUnavailable")])
async def test_a_retry_after_pauses_every_write_for_that_long(
        apiserver: km.KubernetesEmulator, store: KubeStore, caplog: pytest.LogCaptureFixture,
        status: int, reason: str) -> None:
    fleet = Fleet(apiserver, store, 3, rate=50)
    # One write at a time shows the pause exactly: writes already in flight when the answer
    # comes (up to WRITES_AT_ONCE) are not called back.
    fleet.concurrency = 1
    refusal = {"apiVersion": "v1", "kind": "Status", "status": "Failure", "code": status,
               "reason": reason, "message": "too many requests, please try again later"}
    refused = apiserver["patch", AGREEMENTS, km.subresource("status")][:2] \
        << status << km.headers({"Retry-After": "7"}) << refusal
    caplog.set_level(logging.DEBUG, logger="sla_operator")

    assert await fleet.rounds(1) == [["svc-0000"]]  # refused: the rest wait
    assert len(refused) == 1
    assert await fleet.rounds(6) == [[]] * 6  # T0+1s .. T0+6s: paused
    assert len(refused) == 1
    (again,) = await fleet.rounds(1)  # T0+7s: asked once more
    assert again == ["svc-0000"] and len(refused) == 2
    assert await fleet.rounds(6) == [[]] * 6
    (resumed,) = await fleet.rounds(1)  # T0+14s: accepted
    assert sorted(resumed) == ["svc-0000", "svc-0001", "svc-0002"]
    assert fleet.engine.writes.throttled == 2
    said = [r for r in caplog.records if "slow down" in r.getMessage()]
    assert [r.levelno for r in said] == [logging.WARNING, logging.DEBUG]  # once, not per write
    assert any("accepts writes again" in r.getMessage() for r in caplog.records)


async def test_an_incident_refused_with_429_is_created_once_after_the_pause(world: World) -> None:
    apiserver = world.apiserver
    refused = apiserver["post", INCIDENTS][:1] << 429 << km.headers({"Retry-After": "5"}) << {
        "kind": "Status", "code": 429, "reason": "TooManyRequests"}
    await world.probe(True)
    for _ in range(3):
        await world.probe(False)  # T0+120s: Down; the create is refused
    assert len(refused) == 1 and world.engine.incidents == {}
    # kmock keeps every create it receives, even one it refuses; a real 429 stores nothing.
    for key in [k for k in apiserver.objects if k[0] == INCIDENTS]:
        del apiserver.objects[key]
    world.clock.advance(SECOND * 2)
    await world.engine.evaluate_round()  # still paused: not even tried
    assert len(requests_to(apiserver, INCIDENTS, method="POST")) == 1
    world.clock.advance(SECOND * 3)
    await world.engine.evaluate_round()  # the pause is over: created
    posts = requests_to(apiserver, INCIDENTS, method="POST")
    assert len(posts) == 2
    assert [key[2] for key in apiserver.objects if key[0] == INCIDENTS] == [
        posts[-1].data["metadata"]["name"]]
    last: dict[str, Any] = status_patches(apiserver)[-1].data["status"]
    assert last["state"] == "Down"
    assert last["openIncidents"] == [posts[-1].data["metadata"]["name"]]


async def test_a_conflict_on_resolving_an_incident_is_retried_and_loses_nothing(
        world: World) -> None:
    apiserver = world.apiserver
    await world.probe(True)
    for _ in range(3):
        await world.probe(False)
    (post,) = requests_to(apiserver, INCIDENTS, method="POST")
    name = post.data["metadata"]["name"]
    spec_patches = apiserver["patch", INCIDENTS, km.name(name),
                             km.headers({"Content-Type": "application/json-patch+json"})]
    conflict = spec_patches[:1] << km.KubernetesError(
        409, "Conflict", "the object has been modified; please apply your changes to the "
                         "latest version and try again")
    before = copy.deepcopy(apiserver.objects[INCIDENTS, "payments", name].raw)
    await world.probe(True)
    await world.probe(True)  # Up again: the resolution meets the conflict
    assert len(conflict) == 1
    # kmock applies every write it receives, even one it refuses; a real 409 changes nothing.
    apiserver.objects[INCIDENTS, "payments", name] = before
    assert world.engine.incidents[("payments", name)].is_open
    world.clock.advance(SECOND)
    await world.engine.evaluate_round()  # retried a second later
    stored = apiserver.objects[INCIDENTS, "payments", name].raw
    assert stored["spec"]["state"] == "resolved"
    assert not world.engine.incidents[("payments", name)].is_open
    assert len(requests_to(apiserver, INCIDENTS, method="POST")) == 1  # the same incident
    assert status_patches(apiserver)[-1].data["status"]["openIncidents"] == []


async def test_a_new_agreement_gets_its_first_status_in_the_next_round_in_steady_state(
        apiserver: km.KubernetesScaffold, store: KubeStore) -> None:
    fleet = Fleet(apiserver, store, 120, rate=8, status_interval=30)
    await fleet.rounds(20)
    answer_every_probe(fleet.engine, ok=True)
    await fleet.rounds(60)  # refreshes due all along: the cap binds now and then
    manifest = agreement_manifest()
    manifest["metadata"].update(name="newcomer", uid="uid-new")
    fleet.engine.upsert_agreement(agreement_from_manifest(manifest))
    (first,) = await fleet.rounds(1)
    assert "newcomer" in first
