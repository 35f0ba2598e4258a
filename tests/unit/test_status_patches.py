"""Status writes send what differs from what the object holds; a whole status now and then."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from decimal import Decimal
from typing import Any

from engine_clock import API, SECOND, T0, Clock

from sla_operator.domain.model import Agreement, Incident, ProbeResult
from sla_operator.engine import Engine, EngineSettings
from sla_operator.engine.writes import WHOLE_STATUS_EVERY, status_patch
from sla_operator.store.base import Key, Kind


class MergingStore:
    """Applies each status write as the API server does (a merge patch of the status), and
    keeps the patches as they were sent."""

    def __init__(self) -> None:
        self.held: dict[Key, dict[str, Any]] = {}
        self.sent: list[dict[str, Any]] = []

    async def write_status(self, kind: Kind, key: Key, status: Mapping[str, Any]) -> None:
        if kind is not Kind.AGREEMENT:
            return
        self.sent.append(dict(status))
        held = self.held.setdefault(key, {})
        for name, value in status.items():
            if value is None:
                held.pop(name, None)
            else:
                held[name] = value

    async def create_incident(self, incident: Incident, owner_uid: str | None) -> Incident:
        return replace(incident, owner_uid=owner_uid)

    async def change_incident(self, incident: Incident, change: object) -> Incident:
        return incident

    async def read_secret(self, namespace: str, name: str, key: str) -> str:
        raise AssertionError("no secrets here")

    async def record_event(self, kind: Kind, key: Key, reason: str, message: str,
                           warning: bool = False) -> None:
        pass


KEY = ("shop", "web")


def agreement() -> Agreement:
    return Agreement(namespace="shop", name="web", service="Web", objective=Decimal("99.9"),
                     endpoints=(API,), created_at=T0, uid="uid-1")


def engine_with(store: MergingStore, clock: Clock) -> Engine:
    return Engine(store, EngineSettings(status_interval=5), clock=clock)  # type: ignore[arg-type]


async def refresh(engine: Engine, clock: Clock) -> None:
    """Ten seconds later, the endpoint still answering: a routine refresh is due."""
    clock.now += 10 * SECOND
    engine.on_probe_result(KEY, API, ProbeResult(clock.now, True, 0.01, "200 OK"))
    await engine.evaluate_round()


def test_a_patch_holds_the_fields_that_differ_and_deletes_those_gone() -> None:
    held = {"state": "Up", "daily": [{"date": "2026-11-26"}], "lastEvaluated": "a", "old": 1}
    status = {"state": "Up", "daily": [{"date": "2026-11-26"}], "lastEvaluated": "b", "new": 2}
    assert status_patch(held, status) == {"lastEvaluated": "b", "new": 2, "old": None}
    assert status_patch(None, status) == status
    assert status_patch(status, dict(status)) == {}


async def test_refreshes_send_only_what_changed_and_the_object_holds_the_whole_status() -> None:
    clock, store = Clock(), MergingStore()
    engine = engine_with(store, clock)
    engine.upsert_agreement(agreement())
    await engine.evaluate_round()
    first = store.sent[0]
    assert {"state", "daily", "lastEvaluated", "conditions"} <= first.keys()
    # Today's bar changes as long as the first probe result is not in (unmonitored time
    # grows, then the day gets its availability), and is sent each time; then it has no news.
    for _ in range(3):
        await refresh(engine, clock)
    assert "daily" in store.sent[2]
    latest = store.sent[-1]
    assert len(store.sent) == 4
    assert "lastEvaluated" in latest and "daily" not in latest  # today's bar had no news
    # What the object holds is the status the engine computed, field for field.
    assert store.held[KEY] == engine.agreements[KEY].last_written


async def test_every_so_many_writes_the_whole_status_goes_out_again() -> None:
    clock, store = Clock(), MergingStore()
    engine = engine_with(store, clock)
    engine.upsert_agreement(agreement())
    await engine.evaluate_round()
    for _ in range(WHOLE_STATUS_EVERY):
        await refresh(engine, clock)
    whole = [index for index, sent in enumerate(store.sent) if "observedGeneration" in sent]
    assert whole == [0, WHOLE_STATUS_EVERY]
    # A field someone else changed in between is set right by the whole status.
    store.held[KEY]["daily"] = []
    for _ in range(WHOLE_STATUS_EVERY):
        await refresh(engine, clock)
    assert store.held[KEY] == engine.agreements[KEY].last_written


async def test_after_a_restart_the_first_write_is_measured_against_the_status_read_back() -> None:
    clock, store = Clock(), MergingStore()
    first = engine_with(store, clock)
    first.upsert_agreement(agreement())
    # Probed from the start: the day's figures already have eligible time to compare.
    first.on_probe_result(KEY, API, ProbeResult(clock.now, True, 0.01, "200 OK"))
    await refresh(first, clock)
    held = dict(store.held[KEY])
    held["stray"] = "left by hand"  # a field this version does not write
    store.sent.clear()
    clock.now += SECOND
    second = engine_with(store, clock)  # the operator started again at once (no gap to count)
    second.upsert_agreement(agreement(), held)
    second.on_probe_result(KEY, API, ProbeResult(clock.now, True, 0.01, "200 OK"))
    await second.evaluate_round()
    (sent,) = store.sent
    assert "daily" not in sent and "lastEvaluated" in sent and sent["stray"] is None
    assert store.held[KEY] == second.agreements[KEY].last_written


def test_a_status_write_asks_for_the_metadata_only_and_leaves_the_answer_unparsed() -> None:
    """The API server encodes what the answer asks for: metadata (about 3 kB) instead of the
    whole object with its 90 daily bars (issue 21); a server that cannot falls back to JSON."""
    from sla_operator.store.kube import METADATA_ONLY, _patch_unread

    class Answer:
        def __init__(self) -> None:
            self.drained = self.released = False

        def drain_conn(self) -> None:
            self.drained = True

        def release_conn(self) -> None:
            self.released = True

    answer = Answer()
    calls: list[tuple[tuple[Any, ...], dict[str, Any]]] = []

    class Custom:
        def patch_namespaced_custom_object_status(self, *args: Any, **kwargs: Any) -> Answer:
            calls.append((args, kwargs))
            return answer

    _patch_unread(Custom(), "payments", "servicelevelagreements", "api",  # type: ignore[arg-type]
                  {"status": {"state": "Up"}})
    [(args, kwargs)] = calls
    assert args[2:] == ("payments", "servicelevelagreements", "api", {"status": {"state": "Up"}})
    assert kwargs["_content_type"] == "application/merge-patch+json"
    assert kwargs["_preload_content"] is False
    assert kwargs["_headers"] == {"Accept": METADATA_ONLY}
    assert METADATA_ONLY.startswith("application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1")
    assert METADATA_ONLY.endswith(", application/json")
    assert answer.drained and answer.released
