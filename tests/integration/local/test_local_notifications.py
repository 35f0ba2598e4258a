"""Local mode notifies as a cluster does: a NotificationRoute among the manifests, an outage of
the target, and the receiver gets the opening then the resolution, each a valid document."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from aiohttp import web
from local_support import LocalProcess, Target, agreement, write_manifests

from sla_operator.domain.records import format_time

SCHEMA = json.loads((Path(__file__).parents[3] / "docs" / "notification.schema.json").read_text())


class Receiver:
    def __init__(self) -> None:
        self.seen: list[tuple[dict[str, str], dict[str, Any]]] = []
        self.runner: web.AppRunner | None = None
        self.port = 0

    async def start(self) -> None:
        async def hook(request: web.Request) -> web.Response:
            self.seen.append((dict(request.headers), await request.json()))
            return web.Response(status=204)

        app = web.Application()
        app.router.add_post("/hook", hook)
        self.runner = web.AppRunner(app, access_log=None)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    def events(self) -> list[str]:
        return [body["event"] for _, body in self.seen]


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    server = Receiver()
    await server.start()
    yield server
    assert server.runner is not None
    await server.runner.cleanup()


async def test_an_outage_is_notified_opened_then_resolved(
        target: Target, receiver: Receiver, manifests: Path,
        local: Callable[[], LocalProcess]) -> None:
    route = {"apiVersion": "sla.dev/v1alpha1", "kind": "NotificationRoute",
             "metadata": {"name": "on-call", "namespace": "demo"},
             "spec": {"agreements": ["shop"], "format": "generic",
                      "events": ["incidentOpened", "incidentResolved"],
                      "url": f"http://127.0.0.1:{receiver.port}/hook"}}
    write_manifests(manifests / "shop.yaml", agreement("shop", target.port), route)
    operator = local().start()
    await operator.wait_for("the agreement Up", lambda: operator.status("shop").get("state") == "Up")
    target.failing.add("/api")
    await operator.wait_for("the opening delivered", lambda: "incidentOpened" in receiver.events())
    target.failing.clear()
    await operator.wait_for("the resolution delivered",
                            lambda: "incidentResolved" in receiver.events())
    assert receiver.events() == ["incidentOpened", "incidentResolved"]
    for headers, body in receiver.seen:
        jsonschema.validate(body, SCHEMA)
        assert headers["X-SLA-Delivery-Id"] == body["deliveryId"]
        assert body["agreements"] == [{"name": "shop", "service": "Shop"}]
    status = await operator.wait_for("the route's status", lambda: (
        s := operator.status("on-call", plural="notificationroutes")).get("delivered") == 2 and s)
    assert status["pending"] == 0 and status["conditions"][0]["status"] == "True"
    assert status["lastDelivery"]["event"] == "incidentResolved"
    assert operator.stop() == 0


async def test_a_support_request_left_unanswered_past_its_due_time_is_notified_once(
        target: Target, receiver: Receiver, manifests: Path,
        local: Callable[[], LocalProcess]) -> None:
    route = {"apiVersion": "sla.dev/v1alpha1", "kind": "NotificationRoute",
             "metadata": {"name": "support-desk", "namespace": "demo"},
             "spec": {"agreements": ["shop"], "format": "generic",
                      "events": ["supportResponseBreached"],
                      "url": f"http://127.0.0.1:{receiver.port}/hook"}}
    write_manifests(manifests / "shop.yaml", agreement("shop", target.port), route)
    operator = local().start()
    await operator.wait_for("the agreement Up", lambda: operator.status("shop").get("state") == "Up")
    # A P2 (answer within 1h) filed by the ticketing system 59m50s after it was opened.
    due = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=10)
    request = {"apiVersion": "sla.dev/v1alpha1", "kind": "SupportRequest",
               "metadata": {"name": "acme-7", "namespace": "demo"},
               "spec": {"agreement": "shop", "severity": "P2", "title": "Refunds <stuck>",
                        "customer": "acme", "openedAt": format_time(due - timedelta(hours=1))}}
    write_manifests(manifests / "requests.yaml", request)
    await operator.wait_for("the breach delivered",
                            lambda: "supportResponseBreached" in receiver.events(), 60)
    await asyncio.sleep(2)  # a few more rounds: nothing is said twice
    assert receiver.events() == ["supportResponseBreached"]
    ((headers, body),) = receiver.seen
    jsonschema.validate(body, SCHEMA)
    assert headers["X-SLA-Delivery-Id"] == body["deliveryId"]
    assert body["occurredAt"] == format_time(due)
    assert body["supportRequest"] == {
        "name": "acme-7", "agreement": "shop", "severity": "P2", "title": "Refunds <stuck>",
        "customer": "acme", "reference": "", "openedAt": format_time(due - timedelta(hours=1)),
        "responseDue": format_time(due), "respondedAt": None}
    assert operator.stop() == 0
