"""Delivery to a real HTTP receiver on loopback: retries with backoff, one idempotency key per
notification, order per incident, the address policy, and Secrets only when labelled.

The notifier runs as in the operator (its own task, polling a snapshot), fed snapshots the test
replaces; the routes come from an in-memory source, or from a manifests folder read by local
mode's own loader (for the Secret rules).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest
import yaml
from aiohttp import web
from status_snapshots import NOW, agreement, incident, snapshot

from sla_operator.domain.errors import SecretRefused
from sla_operator.domain.model import IncidentState
from sla_operator.domain.views import Snapshot
from sla_operator.engine import Engine
from sla_operator.local.notify_routes import LocalRoutes
from sla_operator.local.store import LocalStore
from sla_operator.local.sync import LocalSync
from sla_operator.notify.delivery import DELIVERY_HEADER, DeliverySettings
from sla_operator.notify.notifier import Notifier, NotifierSettings
from sla_operator.probes.policy import AddressPolicy, parse_cidr

FAST = NotifierSettings(poll_seconds=0.02, routes_seconds=0.05, status_interval=0.05,
                        delivery=DeliverySettings(timeout=2.0, first_backoff=0.1, max_backoff=0.4,
                                                  retry_for=30.0))
SECRET_URL_TOKEN = "T0KEN-in-the-path-never-shown"


@dataclass
class Receiver:
    """A webhook on 127.0.0.1: answers ``answers`` in turn (then 200), records every request."""

    answers: list[int] = field(default_factory=list)
    seen: list[tuple[float, dict[str, str], dict[str, Any]]] = field(default_factory=list)
    runner: web.AppRunner | None = None
    port: int = 0

    async def start(self) -> None:
        async def hook(request: web.Request) -> web.Response:
            body = await request.json()
            self.seen.append((asyncio.get_running_loop().time(), dict(request.headers), body))
            return web.Response(status=self.answers.pop(0) if self.answers else 200)

        app = web.Application()
        app.router.add_post("/{tail:.*}", hook)
        self.runner = web.AppRunner(app, access_log=None)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    def url(self, path: str = "/hook") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def events(self) -> list[tuple[str, str]]:
        return [(body["event"], body["incident"]["name"]) for _, _, body in self.seen]


@dataclass
class Routes:
    """An in-memory RouteSource."""

    manifests: list[dict[str, Any]] = field(default_factory=list)
    statuses: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)

    async def routes(self) -> list[Mapping[str, Any]]:
        return self.manifests

    async def read_secret(self, namespace: str, name: str, key: str) -> str:
        raise SecretRefused(f"no secret {name} in namespace {namespace}")

    async def write_status(self, key: tuple[str, str], status: Mapping[str, Any]) -> None:
        self.statuses[key] = {**self.statuses.get(key, {}), **status}


def route(url: str, name: str = "on-call", **spec: Any) -> dict[str, Any]:
    return {"apiVersion": "sla.dev/v1alpha1", "kind": "NotificationRoute",
            "metadata": {"namespace": "payments", "name": name, "uid": f"uid-{name}"},
            "spec": {"url": url, **spec}}


class Feed:
    """The engine's side: a snapshot replaced now and then, an active switch."""

    def __init__(self) -> None:
        self.current = Snapshot(taken_at=NOW - timedelta(hours=1))
        self.placeholder = self.current
        self.moment = NOW
        self.active = True  # the engine's switch: the Lease holder's

    def publish(self, *incidents: Any) -> None:
        self.moment += timedelta(seconds=1)
        self.current = snapshot(agreement(), incidents=incidents, taken_at=self.moment)


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    server = Receiver()
    await server.start()
    yield server
    assert server.runner is not None
    await server.runner.cleanup()


@pytest.fixture
async def start() -> AsyncIterator[Callable[..., Notifier]]:
    tasks: list[asyncio.Task[None]] = []

    def make(feed: Feed, source: Any, policy: AddressPolicy | None = None,
             owns: Callable[[str, str], bool] = lambda namespace, name: True) -> Notifier:
        notifier = Notifier(lambda: feed.current, lambda: feed.active, source,
                            lambda namespace: policy or AddressPolicy(),
                            lambda: datetime.now(UTC), FAST, owns)
        tasks.append(asyncio.create_task(notifier.run()))
        return notifier

    yield make
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


async def until(what: str, check: Callable[[], object], seconds: float = 20.0) -> None:
    end = asyncio.get_running_loop().time() + seconds
    while not check():
        assert asyncio.get_running_loop().time() < end, f"gave up waiting for {what}"
        await asyncio.sleep(0.02)


async def outage(feed: Feed, name: str = "down-1") -> None:
    """Baseline, then the incident opened, then resolved."""
    feed.publish()
    await asyncio.sleep(0.2)  # the baseline is taken
    opened = incident(name, started=feed.moment)
    feed.publish(opened)
    await asyncio.sleep(0.1)
    feed.publish(incident(name, started=opened.started_at, resolved=feed.moment,
                          state=IncidentState.RESOLVED))


async def test_a_failing_receiver_gets_it_again_with_backoff_and_the_same_key(
        receiver: Receiver, start: Callable[..., Notifier]) -> None:
    receiver.answers = [500, 503, 500]
    feed, routes = Feed(), Routes([route(receiver.url())])
    start(feed, routes)
    await asyncio.sleep(0.2)
    feed.publish()
    await asyncio.sleep(0.2)
    feed.publish(incident("down-1", started=feed.moment))
    await until("four attempts", lambda: len(receiver.seen) >= 4)
    times = [t for t, _, _ in receiver.seen]
    keys = {headers[DELIVERY_HEADER] for _, headers, _ in receiver.seen}
    bodies = {json.dumps(body, sort_keys=True) for _, _, body in receiver.seen}
    assert len(keys) == 1 and len(bodies) == 1  # the same notification, byte for byte
    assert next(iter(keys)) == receiver.seen[0][2]["deliveryId"]
    gaps = [b - a for a, b in pairwise(times)]
    assert gaps[0] >= 0.09 and gaps[1] >= 0.19 and gaps[2] >= 0.38, gaps  # 0.1, 0.2, 0.4 s
    await until("the status", lambda: routes.statuses.get(("payments", "on-call"), {}).get(
        "delivered") == 1)
    status = routes.statuses[("payments", "on-call")]
    assert status["pending"] == 0 and status["lastDelivery"]["attempts"] == 4
    assert "answered 500" in status["lastFailure"]["message"] or "answered 503" in status[
        "lastFailure"]["message"]


async def test_opened_is_delivered_before_resolved_even_when_it_needs_retries(
        receiver: Receiver, start: Callable[..., Notifier]) -> None:
    receiver.answers = [500, 500]  # the opening fails twice; the resolution waits for it
    feed = Feed()
    start(feed, Routes([route(receiver.url())]))
    await asyncio.sleep(0.2)
    await outage(feed)
    await until("both notifications", lambda: ("incidentResolved", "down-1") in receiver.events())
    delivered = [(body["event"]) for _, _, body in receiver.seen]
    assert delivered == ["incidentOpened", "incidentOpened", "incidentOpened", "incidentResolved"]


async def test_a_receiver_down_for_a_while_gets_everything_once_back_in_order_per_incident(
        receiver: Receiver, start: Callable[..., Notifier]) -> None:
    receiver.answers = [503] * 8
    feed = Feed()
    start(feed, Routes([route(receiver.url())]))
    await asyncio.sleep(0.2)
    feed.publish()
    await asyncio.sleep(0.2)
    first, second = incident("down-1", started=feed.moment), incident("down-2", started=feed.moment)
    feed.publish(first, second)
    await asyncio.sleep(0.1)
    feed.publish(incident("down-1", started=first.started_at, resolved=feed.moment,
                          state=IncidentState.RESOLVED),
                 incident("down-2", started=second.started_at, resolved=feed.moment,
                          state=IncidentState.RESOLVED))
    await until("all four delivered", lambda: len({
        h[DELIVERY_HEADER] for _, h, _ in receiver.seen[8:]}) == 4)
    by_key: dict[str, set[str]] = {}
    for _, headers, body in receiver.seen:
        by_key.setdefault(headers[DELIVERY_HEADER], set()).add(json.dumps(body, sort_keys=True))
    assert len(by_key) == 4 and all(len(bodies) == 1 for bodies in by_key.values())
    for name in ("down-1", "down-2"):  # each incident's copies: opened ones, then resolved ones
        mine = [event for event, incident_name in receiver.events() if incident_name == name]
        assert mine == sorted(mine, key=["incidentOpened", "incidentResolved"].index), mine
        assert mine[-1] == "incidentResolved"


async def test_a_standby_sends_nothing_and_a_new_holder_starts_from_what_it_sees(
        receiver: Receiver, start: Callable[..., Notifier]) -> None:
    feed, routes = Feed(), Routes([route(receiver.url())])
    feed.active = False
    start(feed, routes)
    await asyncio.sleep(0.2)
    await outage(feed, "while-standby")
    await asyncio.sleep(0.3)
    assert receiver.seen == [] and routes.statuses == {}  # not even a status write
    feed.active = True  # the Lease is taken: the snapshot now in view is the baseline
    await asyncio.sleep(0.3)
    feed.publish(incident("after-take-over", started=feed.moment))
    await until("the new incident", lambda: receiver.seen)
    assert receiver.events() == [("incidentOpened", "after-take-over")]


async def test_with_shards_each_event_is_sent_by_its_agreements_shard_only(
        receiver: Receiver, start: Callable[..., Notifier]) -> None:
    feed = Feed()
    start(feed, Routes([route(receiver.url())]), owns=lambda namespace, name: name == "payments-api")
    await asyncio.sleep(0.2)
    feed.publish()
    await asyncio.sleep(0.2)
    feed.publish(incident("theirs", agreement="checkout", started=feed.moment),
                 incident("mine", started=feed.moment))
    await until("this shard's incident", lambda: receiver.seen)
    await asyncio.sleep(0.3)
    assert receiver.events() == [("incidentOpened", "mine")]


async def test_a_destination_the_address_policy_denies_is_never_contacted(
        receiver: Receiver, start: Callable[..., Notifier]) -> None:
    routes = Routes([route(receiver.url())])
    feed = Feed()
    start(feed, routes, AddressPolicy(deny=(parse_cidr("127.0.0.0/8"),)))
    await until("the refusal", lambda: routes.statuses.get(("payments", "on-call"), {}).get(
        "message"))
    status = routes.statuses[("payments", "on-call")]
    assert status["message"] == "destination 127.0.0.1 refused: address 127.0.0.1 denied by policy"
    assert status["conditions"][0]["status"] == "False"
    assert status["conditions"][0]["reason"] == "DestinationRefused"
    await outage(feed)
    await until("the failure counted", lambda: routes.statuses[("payments", "on-call")].get(
        "failed") == 2)
    assert receiver.seen == []


async def test_an_invalid_route_says_why_in_its_status(start: Callable[..., Notifier]) -> None:
    routes = Routes([route("ftp://example.com/")])
    start(Feed(), routes)
    await until("the status", lambda: ("payments", "on-call") in routes.statuses)
    assert routes.statuses[("payments", "on-call")]["conditions"][0]["reason"] == "InvalidSpec"


def secret(name: str, url: str, labelled: bool) -> dict[str, Any]:
    labels = {"sla.dev/notification-credential": "true"} if labelled else {}
    return {"apiVersion": "v1", "kind": "Secret",
            "metadata": {"namespace": "payments", "name": name, "labels": labels},
            "stringData": {"url": url}}


@pytest.fixture
async def folder_routes(tmp_path: Path, receiver: Receiver) -> LocalRoutes:
    manifests, state = tmp_path / "manifests", tmp_path / "state"
    manifests.mkdir()
    url = receiver.url(f"/services/{SECRET_URL_TOKEN}")
    documents = [secret("labelled", url, True), secret("unlabelled", url, False),
                 {**route("", "via-labelled"),
                  "spec": {"urlFrom": {"secretKeyRef": {"name": "labelled", "key": "url"}}}},
                 {**route("", "via-unlabelled"),
                  "spec": {"urlFrom": {"secretKeyRef": {"name": "unlabelled", "key": "url"}}}}]
    (manifests / "routes.yaml").write_text(yaml.safe_dump_all(documents))
    store = LocalStore(state)
    sync = LocalSync(Engine(store), store, manifests)
    await sync.rescan()
    return LocalRoutes(sync, state)


async def test_a_secret_without_the_label_is_refused_and_never_shown(
        receiver: Receiver, folder_routes: LocalRoutes, start: Callable[..., Notifier],
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    with pytest.raises(SecretRefused, match=r"not labelled sla\.dev/notification-credential=true"):
        await folder_routes.read_secret("payments", "unlabelled", "url")
    feed = Feed()
    start(feed, folder_routes)
    await asyncio.sleep(0.2)
    await outage(feed)
    await until("the labelled route's deliveries", lambda: len(receiver.seen) == 2)

    def status(name: str) -> dict[str, Any]:
        path = folder_routes.status_path(("payments", name))
        return dict(yaml.safe_load(path.read_text())["status"]) if path.exists() else {}

    await until("the refusal in the status", lambda: "not labelled" in status(
        "via-unlabelled").get("message", ""))
    await until("the deliveries in the status", lambda: status("via-labelled").get("delivered") == 2)
    refused = status("via-unlabelled")
    assert refused["conditions"][0]["status"] == "False" and refused["delivered"] == 0
    state_text = "".join(p.read_text() for p in folder_routes.state.rglob("*.yaml"))
    assert SECRET_URL_TOKEN not in state_text
    assert SECRET_URL_TOKEN not in caplog.text


async def test_a_refused_secret_shows_before_any_event_and_clears_once_labelled(
        receiver: Receiver, folder_routes: LocalRoutes, start: Callable[..., Notifier]) -> None:
    start(Feed(), folder_routes)
    path = folder_routes.status_path(("payments", "via-unlabelled"))

    def status() -> dict[str, Any]:
        return dict(yaml.safe_load(path.read_text())["status"]) if path.exists() else {}

    await until("the refusal", lambda: "not labelled" in status().get("message", ""))
    manifests = folder_routes.sync.watches[1].root / "routes.yaml"
    documents = list(yaml.safe_load_all(manifests.read_text()))
    documents[1]["metadata"]["labels"] = {"sla.dev/notification-credential": "true"}
    manifests.write_text(yaml.safe_dump_all(documents))
    for _ in range(3):  # a changed file is taken in once it has settled
        await folder_routes.sync.rescan()
        await asyncio.sleep(0.05)
    await until("ready again", lambda: status()["conditions"][0]["status"] == "True", 30)
    assert status()["message"] == ""
