"""The real kopf registration against kmock: kopf itself calls the operator's handlers.

Handler tests elsewhere call the coroutines directly; these run ``kopf.operator`` with the
handlers as the operator registers them (decorators, startup settings, no finalizer) over
kmock's watch streams, for create, update, resume and delete of each kind.
"""

from __future__ import annotations

import asyncio
import copy
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import timedelta
from typing import Any

import aiohttp
import kmock as km
import kopf
import pytest
from kube_support import AGREEMENTS, INCIDENTS, T0, Clock, agreement_manifest, requests_to

from sla_operator.engine import Engine, EngineSettings
from sla_operator.kube import handlers, startup
from sla_operator.kube.connect import PRELOADED_KINDS, FirstLists, first_lists
from sla_operator.kube.primed import PrimedLists, primed
from sla_operator.kube.rules import RuleKeeper
from sla_operator.kube.watch import Resync, WatchTracker
from sla_operator.store.base import Kind
from sla_operator.store.kube import KubeStore

WINDOWS = km.resource("sla.dev", "v1alpha1", "maintenancewindows")
SLA_KEY = ("payments", "payments-api")
MW_KEY = ("payments", "db-upgrade")
INC_KEY = ("payments", "payments-api-20261126-0400")
assert handlers and startup  # imported for their kopf registrations


def window() -> dict[str, Any]:
    return {"apiVersion": "sla.dev/v1alpha1", "kind": "MaintenanceWindow",
            "metadata": {"name": "db-upgrade", "namespace": "payments", "generation": 1,
                         "uid": "mw-uid"},
            "spec": {"description": "Database upgrade", "slaNames": ["payments-api"],
                     "start": "2026-11-26T04:00:00Z", "end": "2026-11-26T06:00:00Z"}}


def incident() -> dict[str, Any]:
    return {"apiVersion": "sla.dev/v1alpha1", "kind": "Incident",
            "metadata": {"name": INC_KEY[1], "namespace": "payments", "uid": "inc-uid"},
            "spec": {"agreement": "payments-api", "severity": "P2", "type": "outage",
                     "title": "Payments API is slow to answer", "origin": "manual",
                     "startedAt": "2026-11-26T04:00:00Z", "impact": "downtime"}}


async def eventually(what: str, check: Callable[[], object], timeout: float = 20.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not check():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"kopf never got to: {what}")
        await asyncio.sleep(0.05)


EMULATOR: dict[str, str] = {}  # the URL of the current test's emulator


@kopf.on.login()
def login_to_the_emulator(**_: Any) -> kopf.ConnectionInfo:
    """Only for these tests: the operator itself logs in through the client library."""
    return kopf.ConnectionInfo(server=EMULATOR["url"], token="t", insecure=True)


@kopf.on.startup()
def serve_the_named_namespace(settings: kopf.OperatorSettings, **_: Any) -> None:
    """Only for these tests: kmock cannot answer a list of namespaces (/api/v1/namespaces),
    which kopf reads to learn which named namespaces exist; it takes them as given instead."""
    settings.scanning.disabled = True


@pytest.fixture
def emulator(apiserver: km.KubernetesEmulator) -> Iterator[None]:
    EMULATOR["url"] = str(apiserver.url).rstrip("/")
    for plural, kind in (("servicelevelagreements", "ServiceLevelAgreement"),
                         ("maintenancewindows", "MaintenanceWindow"), ("incidents", "Incident")):
        apiserver.resources[f"sla.dev/v1alpha1/{plural}"] = {
            "namespaced": True, "kind": kind, "subresources": {"status"},
            "verbs": {"get", "list", "watch", "create", "patch", "update", "delete"}}
    # kopf waits for these two to be discoverable before it starts any watch.
    apiserver.resources["v1/namespaces"] = {"namespaced": False, "kind": "Namespace",
                                            "verbs": {"get", "list", "watch"}}
    apiserver.resources["apiextensions.k8s.io/v1/customresourcedefinitions"] = {
        "namespaced": False, "kind": "CustomResourceDefinition", "verbs": {"get", "list", "watch"}}
    yield
    EMULATOR.clear()


class Operator:
    """kopf.operator in a thread of its own, as kopf.testing.KopfRunner runs it (kopf cancels
    every task of its loop it did not start when it stops), over one engine."""

    def __init__(self, store: KubeStore) -> None:
        self.store = store
        self.engine = self.new_engine()
        self.tracker = WatchTracker(self.engine.clock, timedelta(minutes=5))
        self.thread: threading.Thread | None = None
        self.stop_flag = threading.Event()

    def new_engine(self) -> Engine:
        return Engine(self.store, EngineSettings(status_interval=300), clock=Clock(T0))

    def start(self) -> None:
        self.stop_flag = threading.Event()
        memo = kopf.Memo(engine=self.engine, watches=self.tracker,
                         rule_keeper=RuleKeeper(self.store.custom, {}), handled={})
        self.thread = threading.Thread(target=lambda: asyncio.run(kopf.operator(
            namespaces=["payments"], standalone=True, stop_flag=self.stop_flag, memo=memo)))
        self.thread.start()

    async def stop(self) -> None:
        if self.thread is not None:
            self.stop_flag.set()
            await asyncio.to_thread(self.thread.join, 30)
            assert not self.thread.is_alive(), "kopf did not stop"
        self.thread = None


@pytest.fixture
async def operator(emulator: None, store: KubeStore) -> AsyncIterator[Operator]:
    running = Operator(store)
    running.start()
    yield running
    await running.stop()


def patch(apiserver: km.KubernetesEmulator, resource: Any, key: tuple[str, str],
          change: Callable[[dict[str, Any]], None]) -> None:
    body = copy.deepcopy(apiserver.objects[resource, *key].raw)
    change(body)
    apiserver.objects[resource, *key] = body


async def test_agreements_are_created_updated_and_deleted_through_kopf(
        apiserver: km.KubernetesEmulator, operator: Operator) -> None:
    await operator_client_create(apiserver, AGREEMENTS, agreement_manifest())
    engine = operator.engine
    await eventually("the agreement created", lambda: SLA_KEY in engine.agreements)
    assert engine.scheduler.endpoint_count == 1

    edited = agreement_manifest(objective="99.5")
    edited["metadata"]["generation"] = 2
    await operator_client_patch(apiserver, AGREEMENTS, SLA_KEY, {"spec": edited["spec"],
                                                                 "metadata": {"generation": 2}})
    await eventually("the agreement updated",
                     lambda: str(engine.agreements[SLA_KEY].agreement.objective) == "99.5")

    await operator_client_delete(apiserver, AGREEMENTS, SLA_KEY)
    await eventually("the agreement deleted", lambda: SLA_KEY not in engine.agreements)
    assert engine.scheduler.endpoint_count == 0
    finalizers = [r for r in requests_to(apiserver, AGREEMENTS) if "finalizers" in str(r.data)]
    assert finalizers == []  # deletion never waits for the operator


async def test_windows_are_created_updated_and_deleted_through_kopf(
        apiserver: km.KubernetesEmulator, operator: Operator) -> None:
    engine = operator.engine
    await operator_client_create(apiserver, WINDOWS, window())
    await eventually("the window created", lambda: MW_KEY in engine.maintenance)
    await operator_client_patch(apiserver, WINDOWS, MW_KEY, {
        "spec": {"end": "2026-11-26T05:00:00Z"}, "metadata": {"generation": 2}})
    await eventually("the window updated",
                     lambda: engine.maintenance[MW_KEY].end is not None
                     and engine.maintenance[MW_KEY].end.hour == 5)
    await operator_client_delete(apiserver, WINDOWS, MW_KEY)
    await eventually("the window deleted", lambda: MW_KEY not in engine.maintenance)


async def test_incidents_are_created_updated_and_deleted_through_kopf(
        apiserver: km.KubernetesEmulator, operator: Operator) -> None:
    engine = operator.engine
    await operator_client_create(apiserver, INCIDENTS, incident())
    await eventually("the incident recorded", lambda: INC_KEY in engine.incidents)
    await operator_client_patch(apiserver, INCIDENTS, INC_KEY, {
        "spec": {"exclusion": {"reason": "blocked", "note": "a customer's firewall"}}})
    await eventually("the exclusion recorded",
                     lambda: engine.incidents[INC_KEY].exclusion is not None)
    await operator_client_delete(apiserver, INCIDENTS, INC_KEY)
    await eventually("the incident forgotten", lambda: INC_KEY not in engine.incidents)


async def test_a_restart_resumes_what_exists_and_not_what_was_deleted_meanwhile(
        apiserver: km.KubernetesEmulator, operator: Operator, store: KubeStore) -> None:
    apiserver.objects[AGREEMENTS, *SLA_KEY] = agreement_manifest()
    other = agreement_manifest()
    other["metadata"].update(name="checkout", uid="checkout-uid")
    apiserver.objects[AGREEMENTS, "payments", "checkout"] = other
    apiserver.objects[WINDOWS, *MW_KEY] = window()
    await eventually("both agreements and the window",
                     lambda: len(operator.engine.agreements) == 2 and operator.engine.maintenance)
    await operator.stop()
    del apiserver.objects[AGREEMENTS, "payments", "checkout"]  # deleted while stopped
    fresh = operator.engine = operator.new_engine()
    operator.start()
    await eventually("the agreement resumed", lambda: SLA_KEY in fresh.agreements)
    await eventually("the window resumed", lambda: MW_KEY in fresh.maintenance)
    await asyncio.sleep(0.5)
    assert list(fresh.agreements) == [SLA_KEY]


# The emulator applies a write and streams its watch event, as the API server does.


def url(apiserver: km.KubernetesEmulator, resource: Any, namespace: str, name: str = "") -> str:
    base = str(apiserver.url).rstrip("/")
    path = f"{base}/apis/sla.dev/v1alpha1/namespaces/{namespace}/{resource.plural}"
    return f"{path}/{name}" if name else path


async def send(method: str, address: str, body: dict[str, Any] | None = None) -> None:
    async with aiohttp.ClientSession() as http, http.request(
            method, address, json=body,
            headers={"Content-Type": "application/merge-patch+json"} if method == "PATCH" else {},
    ) as answer:
        assert answer.status in (200, 201), await answer.text()


async def operator_client_create(apiserver: km.KubernetesEmulator, resource: Any,
                                 body: dict[str, Any]) -> None:
    await send("POST", url(apiserver, resource, body["metadata"]["namespace"]), body)


async def operator_client_patch(apiserver: km.KubernetesEmulator, resource: Any,
                                key: tuple[str, str], change: dict[str, Any]) -> None:
    await send("PATCH", url(apiserver, resource, *key), change)


async def operator_client_delete(apiserver: km.KubernetesEmulator, resource: Any,
                                 key: tuple[str, str]) -> None:
    await send("DELETE", url(apiserver, resource, *key))


# Watch restarts: a stream that breaks resumes where it stopped; one whose resourceVersion has
# expired (410 Gone) is listed afresh, and the resync removes what was deleted meanwhile.


def versioned(resource_version: str, generation: int, objective: str,
              name: str = "payments-api") -> dict[str, Any]:
    manifest = agreement_manifest(objective=objective)
    manifest["metadata"].update(name=name, uid=f"{name}-uid", generation=generation,
                                resourceVersion=resource_version)
    return manifest


def generation(engine: Any, key: tuple[str, str] = SLA_KEY) -> int | None:
    """The generation of the agreement's spec the engine works with."""
    runtime = engine.agreements.get(key)
    return None if runtime is None else runtime.agreement.generation


async def test_a_broken_watch_resumes_from_the_last_resource_version_and_loses_no_event(
        apiserver: km.KubernetesEmulator, emulator: None, store: KubeStore) -> None:
    apiserver.objects[AGREEMENTS, *SLA_KEY] = versioned("5", 1, "99.9")
    watches: list[dict[str, str]] = []

    def breaks_after_one_event(request: km.Request) -> tuple[dict[str, Any], ...]:
        watches.append(dict(request.params))
        # One change, then the connection closes (a load balancer's idle timeout, say).
        return ({"type": "MODIFIED", "object": versioned("6", 2, "99.5")},)

    def resumed(request: km.Request) -> tuple[dict[str, Any], ...]:
        watches.append(dict(request.params))
        # What changed while the watch was down, as the API server replays it from there.
        apiserver.objects[AGREEMENTS, *SLA_KEY] = versioned("7", 3, "99.0")
        return ({"type": "MODIFIED", "object": versioned("7", 3, "99.0")},)

    apiserver[km.action.WATCH, AGREEMENTS][:1] << breaks_after_one_event
    apiserver[km.action.WATCH, AGREEMENTS][1:2] << resumed  # slices count the filter's requests
    running = Operator(store)
    running.start()
    try:
        await eventually("the change made while the watch was down",
                         lambda: generation(running.engine) == 3)
    finally:
        await running.stop()
    assert len(watches) >= 2
    assert watches[1]["resourceVersion"] == "6"  # from the last event seen, not a new list
    assert running.tracker.seen(Kind.AGREEMENT, SLA_KEY) == 7


async def test_an_expired_watch_is_listed_again_and_the_resync_drops_what_went_meanwhile(
        apiserver: km.KubernetesEmulator, emulator: None, store: KubeStore) -> None:
    apiserver.objects[AGREEMENTS, *SLA_KEY] = versioned("5", 1, "99.9")
    apiserver.objects[AGREEMENTS, "payments", "checkout"] = versioned("6", 1, "99.9", "checkout")
    expired: list[str] = []

    def expires(request: km.Request) -> tuple[dict[str, Any], ...]:
        # While the watch was away one agreement changed and another was deleted, and the
        # API server no longer has the events since the list: 410 Gone.
        apiserver.objects[AGREEMENTS, *SLA_KEY] = versioned("9", 2, "99.5")
        del apiserver.objects[AGREEMENTS, "payments", "checkout"]
        expired.append(request.params.get("resourceVersion", ""))
        return ({"type": "ERROR", "object": {"kind": "Status", "apiVersion": "v1",
                                             "status": "Failure", "code": 410,
                                             "reason": "Expired",
                                             "message": "too old resource version: 6 (8)"}},)

    apiserver[km.action.WATCH, AGREEMENTS][:1] << expires
    running = Operator(store)
    running.start()
    try:
        await eventually("the change, from the new list",
                         lambda: generation(running.engine) == 2)
        # A list says nothing of what is gone: the deletion had no event.
        assert ("payments", "checkout") in running.engine.agreements
        resync = Resync(running.engine, store, ["payments"], running.tracker, interval=60)
        await resync.once()
        assert list(running.engine.agreements) == [SLA_KEY]
    finally:
        await running.stop()
    assert expired


# kopf's first lists: answered from the operator's own (kube.primed), not read again.


async def test_kopf_starts_its_watches_from_the_operators_first_lists_without_listing_again(
        apiserver: km.KubernetesEmulator, emulator: None, store: KubeStore,
        api_client: Any) -> None:
    apiserver.objects[AGREEMENTS, *SLA_KEY] = versioned("5", 1, "99.9")
    apiserver.objects[WINDOWS, *MW_KEY] = window()
    listed = await asyncio.to_thread(first_lists, api_client, ["payments"])
    assert set(listed.versions) == {(plural, "payments") for plural in PRELOADED_KINDS}
    before = len(list(apiserver))
    running = Operator(store)
    lists = PrimedLists(listed)
    with primed(lists) as answered:
        assert answered
        running.start()
        try:
            await eventually("the listed agreement handed over by kopf",
                             lambda: running.tracker.seen(Kind.AGREEMENT, SLA_KEY) == 5)
            await eventually("the listed window", lambda: MW_KEY in running.engine.maintenance)
            await eventually("every kind watched", lambda: {
                r.resource.plural for r in list(apiserver)[before:]
                if r.action == km.action.WATCH and r.resource is not None} >= set(PRELOADED_KINDS))
            assert lists.left == 0
        finally:
            await running.stop()
    requests = list(apiserver)[before:]
    ours = [r for r in requests if r.resource is not None and r.resource.group == "sla.dev"
            and r.resource.plural in PRELOADED_KINDS]  # not the discovery of the group
    assert [r for r in ours if r.action == km.action.LIST] == []
    watches = {r.resource.plural: r.params.get("resourceVersion")
               for r in ours if r.action == km.action.WATCH}
    assert watches == {plural: listed.versions[(plural, "payments")]
                       for plural in PRELOADED_KINDS}


async def test_after_the_first_lists_kopf_lists_by_itself_and_nothing_stays_replaced(
        apiserver: km.KubernetesEmulator, emulator: None, store: KubeStore,
        api_client: Any) -> None:
    from kopf._cogs.clients import fetching

    original = fetching.fetch_objs
    apiserver.objects[AGREEMENTS, *SLA_KEY] = versioned("5", 1, "99.9")
    listed = await asyncio.to_thread(first_lists, api_client, ["payments"])
    gone: list[str] = []

    def expires(request: km.Request) -> tuple[dict[str, Any], ...]:
        # The watch from the first list's resourceVersion has expired: kopf lists again.
        apiserver.objects[AGREEMENTS, *SLA_KEY] = versioned("9", 2, "99.5")
        gone.append(request.params.get("resourceVersion", ""))
        return ({"type": "ERROR", "object": {"kind": "Status", "apiVersion": "v1",
                                             "status": "Failure", "code": 410,
                                             "reason": "Expired", "message": "too old"}},)

    apiserver[km.action.WATCH, AGREEMENTS][:1] << expires
    before = len(list(apiserver))
    running = Operator(store)
    with primed(PrimedLists(listed)):
        running.start()
        try:
            await eventually("the change, from kopf's own list",
                             lambda: generation(running.engine) == 2)
        finally:
            await running.stop()
    assert gone == [listed.versions[("servicelevelagreements", "payments")]]
    lists = [r for r in list(apiserver)[before:]
             if r.action == km.action.LIST and r.resource is not None
             and r.resource.plural == "servicelevelagreements"]
    assert len(lists) == 1 and lists[0].params.get("resourceVersion") is None  # read through
    assert fetching.fetch_objs is original


def test_a_kopf_without_the_expected_list_function_lists_as_it_always_did(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from kopf._cogs.clients import fetching

    async def fetch_objs(*, settings: Any, resource: Any) -> Any:  # another signature
        yield [], "1"

    monkeypatch.setattr(fetching, "fetch_objs", fetch_objs)
    with primed(PrimedLists(FirstLists())) as answered:
        assert not answered
        assert fetching.fetch_objs is fetch_objs
